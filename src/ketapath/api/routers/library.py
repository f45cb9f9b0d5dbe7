"""The clinic's drug library: the active version, its history, checking and loading a new one.

The clinical team and administrators read it; a pharmacist or an administrator checks and
loads a new version (their approval), with the reason for the change.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.services import library
from ketapath.services.library import (
    LibraryCandidate,
    LibraryCheck,
    LibrarySummary,
    LibraryUpload,
    LibraryView,
    StockedStrength,
)

router = APIRouter(tags=["drug library"])
Version = Annotated[int, Path(ge=0, le=2**31 - 1, description="0 is the packaged default.")]


@router.get(
    "/library",
    response_model=LibraryView,
    summary="The active drug library (pumps, stocked strengths, limits per care setting)",
)
def get_active(actor: CurrentUser, db: DatabaseDep) -> LibraryView:
    return library.get_active(db, actor)


@router.get(
    "/library/strengths",
    response_model=list[StockedStrength],
    summary="The bag strengths the active drug library stocks, and for which pumps",
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


@router.get("/library/versions/{version}", response_model=LibraryView)
def get_version(version: Version, actor: CurrentUser, db: DatabaseDep) -> LibraryView:
    return library.get_version(db, actor, version)


@router.post(
    "/library/check",
    response_model=LibraryCheck,
    summary="Check a drug library as a load would (nothing stored), with every protocol's outcome",
)
def check_library(body: LibraryCandidate, actor: CurrentUser, db: DatabaseDep) -> LibraryCheck:
    return library.check_library(db, actor, body.document)


@router.post(
    "/library",
    response_model=LibraryView,
    status_code=status.HTTP_201_CREATED,
    summary="Approve and load a new version of the drug library (pharmacist or administrator)",
)
def load_library(body: LibraryUpload, actor: CurrentUser, db: DatabaseDep) -> LibraryView:
    return library.load_library(db, actor, body.document, reason=body.reason)
