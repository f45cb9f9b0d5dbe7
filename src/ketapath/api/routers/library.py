"""The clinic's drug library: the active version, its history, checking and loading a new one.

The clinical team and administrators read it; a pharmacist or an administrator checks and
loads a new version (their approval), with the reason for the change.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import RecordId
from ketapath.services import library
from ketapath.services.library import (
    LibraryCandidate,
    LibraryCheck,
    LibrarySummary,
    LibraryUpload,
    LibraryView,
    StockedStrength,
)

router = APIRouter(tags=["drug library"], responses=SIGNED_IN)


@router.get(
    "/library",
    response_model=LibraryView,
    summary="The active drug library (pumps, stocked strengths, limits per care setting)",
    responses=responses(422),
)
def get_active(actor: CurrentUser, db: DatabaseDep) -> LibraryView:
    return library.get_active(db, actor)


@router.get(
    "/library/strengths",
    response_model=list[StockedStrength],
    summary="The bag strengths the active drug library stocks, and for which pumps",
    responses=responses(422),
)
def stocked_strengths(actor: CurrentUser, db: DatabaseDep) -> list[StockedStrength]:
    return library.stocked_strengths(db, actor)


@router.get(
    "/library/versions",
    response_model=list[LibrarySummary],
    summary="Every version of the drug library, newest first (0: the packaged default)",
)
def list_versions(actor: CurrentUser, db: DatabaseDep) -> list[LibrarySummary]:
    return library.list_versions(db, actor)


@router.get(
    "/library/versions/{version}",
    response_model=LibraryView,
    summary="A version the clinic loaded (numbered from 1)",
    responses=responses(404, 422),
)
def get_version(version: RecordId, actor: CurrentUser, db: DatabaseDep) -> LibraryView:
    return library.get_version(db, actor, version)


@router.get(
    "/library/default",
    response_model=LibraryView,
    summary="The drug library packaged with ketapath (version 0)",
    responses=responses(422),
)
def get_default(actor: CurrentUser, db: DatabaseDep) -> LibraryView:
    return library.get_version(db, actor, 0)


@router.post(
    "/library/check",
    response_model=LibraryCheck,
    summary="Check a drug library as a load would (nothing stored), with every protocol's outcome",
    responses=responses(400, 422),
)
def check_library(body: LibraryCandidate, actor: CurrentUser, db: DatabaseDep) -> LibraryCheck:
    return library.check_library(db, actor, body.document)


@router.post(
    "/library",
    response_model=LibraryView,
    status_code=status.HTTP_201_CREATED,
    summary="Approve and load a new version of the drug library (pharmacist or administrator)",
    responses=responses(400, 409, 422),
)
def load_library(body: LibraryUpload, actor: CurrentUser, db: DatabaseDep) -> LibraryView:
    return library.load_library(db, actor, body.document, reason=body.reason)
