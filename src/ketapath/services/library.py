"""The clinic's drug library: the active version, its history, and loading a new version.

- The clinical team reads it (``library.read``); a pharmacist or an administrator loads a new
  version (``library.manage``), which is their approval: a document in the schema of the
  packaged default (``ketapath.knowledge.library``), every citation resolving, a pump for the
  route of every protocol, a version number higher than every stored one, and the reason for
  the change. It is stored append-only and audited.
- Orders are planned against the active library (:func:`active_library`): the stored version
  with the highest number, or, with none stored, the default packaged with ketapath (version
  0). Every signed order records the version and digest it was checked against.
- Going back to an earlier library is a new version with that content.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.domain.library_check import ProtocolOutcome, protocol_outcomes
from ketapath.knowledge.base import KnowledgeError
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.library import (
    DrugLibrary,
    default_library,
    library_from_text,
    parse_library,
)
from ketapath.services import audit
from ketapath.services.errors import InvalidInput, NotFound
from ketapath.services.people import usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.unit import action, check
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.store.models import DrugLibraryVersion, User, utcnow

MAX_LIBRARY_BYTES = 512_000  # a library file is a few tens of kB; more is not a library
_PARSED: dict[tuple[int, str], DrugLibrary] = {}


class LibrarySummary(BaseModel):
    """One version of the drug library, without its content."""

    version: int
    name: str
    digest: str = Field(description="SHA-256 of the library's content.")
    packaged: bool = Field(description="The default packaged with ketapath (version 0).")
    active: bool = Field(description="The library orders are planned against now.")
    approved_by: str | None = None
    approved_at: datetime | None = None
    reason: str | None = None


class LibraryView(LibrarySummary):
    """One version of the drug library with its content."""

    document: DrugLibrary


class LibraryUpload(BaseModel):
    """A new version of the drug library, and why it replaces the active one."""

    model_config = ConfigDict(extra="forbid")

    document: DrugLibrary
    reason: str = Field(
        min_length=1, max_length=REASON_LENGTH, description="What changed, and why."
    )


class LibraryCandidate(BaseModel):
    """A drug library to check (nothing is stored)."""

    model_config = ConfigDict(extra="forbid")

    document: DrugLibrary


class OutcomeView(BaseModel):
    """A protocol in one of its settings at one weight, planned against a library."""

    protocol_id: str
    setting: str
    weight_kg: float
    outcome: str = Field(description="ready, needs_override, refused or invalid.")
    codes: list[str]
    messages: list[str] = Field(
        default=[], description="The plain words of each finding in codes, in the same order."
    )
    course_total_mg: float | None


class LibraryCheck(BaseModel):
    """A library that passed every check, and what it does to each protocol."""

    version: int
    name: str
    digest: str
    next_version: int = Field(description="The lowest version number a load would accept.")
    outcomes: list[OutcomeView]


# ------------------------------------------------------------------ the active library


def _latest(session: Session) -> DrugLibraryVersion | None:
    return session.scalars(
        select(DrugLibraryVersion).order_by(DrugLibraryVersion.version.desc()).limit(1)
    ).first()


def _parsed(row: DrugLibraryVersion) -> DrugLibrary:
    """The stored document as a library (validated once per process and version)."""
    key = (row.id, row.digest)
    if key not in _PARSED:
        if _canonical_digest(row.document) != row.digest:
            raise InvalidInput(
                f"library: the stored drug library version {row.version} does not match its "
                "digest; it was changed outside ketapath. Load a new version.",
                field="library",
            )
        try:
            library = DrugLibrary.model_validate(row.document)
        except ValidationError as error:
            raise InvalidInput(
                f"library: the stored drug library version {row.version} no longer validates "
                f"({error.errors()[0]['msg']}); load a new version.",
                field="library",
            ) from error
        if len(_PARSED) > 32:
            _PARSED.clear()
        _PARSED[key] = library
    return _PARSED[key]


def active_library(session: Session) -> DrugLibrary:
    """The library orders are planned against: the newest stored version, else the default."""
    row = _latest(session)
    return default_library() if row is None else _parsed(row)


def _canonical_digest(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# ------------------------------------------------------------------ reading


class StockedStrength(BaseModel):
    """A ketamine strength the active library stocks, and the pumps it is stocked for."""

    concentration_mg_per_ml: float
    pumps: list[str]
    routes: list[str]
    default_for: list[str] = Field(description="The pumps whose default strength it is.")


def stocked_strengths(
    db: Database, actor: Actor, route: str | None = None
) -> list[StockedStrength]:
    """The strengths of the active library (for ``route``'s pumps, or all), weakest first."""
    with action(db, actor, "library.read", entity="drug_library") as session:
        library = active_library(session)
        audit.record(session, actor, "library.strengths", entity="drug_library")
    pumps = [p for p in library.pumps if route is None or route in p.routes]
    out = []
    for c in sorted({c for p in pumps for c in p.concentrations_mg_per_ml}):
        holding = [p for p in pumps if p.stocks(c)]
        out.append(
            StockedStrength(
                concentration_mg_per_ml=c,
                pumps=[p.name for p in holding],
                routes=sorted({r for p in holding for r in p.routes}),
                default_for=[p.name for p in holding if p.default_concentration_mg_per_ml == c],
            )
        )
    return out


def _packaged_summary(active: bool) -> LibrarySummary:
    library = default_library()
    return LibrarySummary(
        version=0,
        name=library.name,
        digest=library.digest(),
        packaged=True,
        active=active,
    )


def _summary(
    row: DrugLibraryVersion, people: dict[int | None, str], active: bool
) -> LibrarySummary:
    return LibrarySummary(
        version=row.version,
        name=row.name,
        digest=row.digest,
        packaged=False,
        active=active,
        approved_by=people.get(row.approved_by_id),
        approved_at=row.approved_at,
        reason=row.reason,
    )


def _view(summary: LibrarySummary, library: DrugLibrary) -> LibraryView:
    return LibraryView(**summary.model_dump(), document=library)


def get_active(db: Database, actor: Actor) -> LibraryView:
    """The active library with its content."""
    with action(db, actor, "library.read", entity="drug_library") as session:
        row = _latest(session)
        audit.record(
            session,
            actor,
            "library.read",
            entity="drug_library",
            entity_id=0 if row is None else row.version,
        )
        if row is None:
            return _view(_packaged_summary(True), default_library())
        people = usernames_of(session, [row.approved_by_id])
        return _view(_summary(row, people, True), _parsed(row))


def list_versions(db: Database, actor: Actor) -> list[LibrarySummary]:
    """Every version, newest first, ending with the packaged default (version 0)."""
    with action(db, actor, "library.read", entity="drug_library") as session:
        rows = list(
            session.scalars(select(DrugLibraryVersion).order_by(DrugLibraryVersion.version.desc()))
        )
        audit.record(session, actor, "library.list", entity="drug_library")
        people = usernames_of(session, [r.approved_by_id for r in rows])
        out = [_summary(r, people, i == 0) for i, r in enumerate(rows)]
        return [*out, _packaged_summary(not rows)]


def get_version(db: Database, actor: Actor, version: int) -> LibraryView:
    """One version with its content (0 is the packaged default)."""
    with action(db, actor, "library.read", entity="drug_library", entity_id=version) as session:
        latest = _latest(session)
        audit.record(session, actor, "library.read", entity="drug_library", entity_id=version)
        if version == 0:
            return _view(_packaged_summary(latest is None), default_library())
        row = session.scalars(
            select(DrugLibraryVersion).where(DrugLibraryVersion.version == version)
        ).first()
        if row is None:
            raise NotFound(f"version: no drug library version {version}.", field="version")
        people = usernames_of(session, [row.approved_by_id])
        active = latest is not None and latest.id == row.id
        return _view(_summary(row, people, active), _parsed(row))


# ------------------------------------------------------------------ checking and loading


def document_from_text(text: str, filename: str = "library.yaml") -> dict[str, Any]:
    """The document of an uploaded library file (YAML or JSON), or InvalidInput naming it."""
    if len(text.encode()) > MAX_LIBRARY_BYTES:
        raise InvalidInput(
            f"file: a drug library file is at most {MAX_LIBRARY_BYTES // 1000} kB.", field="file"
        )
    suffix = ".json" if filename.lower().endswith(".json") else ".yaml"
    try:
        library = library_from_text(text, origin=filename or "library", suffix=suffix)
    except KnowledgeError as error:
        raise InvalidInput(f"file: {error}", field="file") from error
    return library.document()


def _unstorable(value: Any, path: str = "document") -> str | None:
    """The first text no database can hold (NUL, lone surrogates), by its path, if any."""
    if isinstance(value, str):
        if "\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            return path
        return None
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(f"{path}.{k}", v) for k, v in value.items()]
        items += [(path, k) for k in value]
    elif isinstance(value, list | tuple):
        items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for where, item in items:
        found = _unstorable(item, where)
        if found:
            return found
    return None


def _validated(document: DrugLibrary | dict[str, Any]) -> DrugLibrary:
    raw = document.document() if isinstance(document, DrugLibrary) else document
    bad = _unstorable(raw)
    if bad:
        raise InvalidInput(f"{bad}: text with a NUL or an unpaired surrogate.", field=bad)
    try:
        return parse_library(raw, origin="document")
    except KnowledgeError as error:
        raise InvalidInput(str(error), field="document") from error


def _next_version(session: Session) -> int:
    row = _latest(session)
    return 1 if row is None else row.version + 1


def _check_version(library: DrugLibrary, next_version: int) -> None:
    if library.version < next_version:
        raise InvalidInput(
            f"document.version: a new drug library needs a version of at least {next_version} "
            f"(got {library.version}): versions only go up.",
            field="document.version",
        )


def _outcome_views(library: DrugLibrary) -> list[OutcomeView]:
    return [
        OutcomeView(
            protocol_id=o.protocol_id,
            setting=o.setting,
            weight_kg=o.weight_kg,
            outcome=o.outcome,
            codes=list(o.codes),
            messages=list(o.messages),
            course_total_mg=o.course_total_mg,
        )
        for o in protocol_outcomes(library, knowledge())
    ]


def outcomes_of(library: DrugLibrary) -> list[ProtocolOutcome]:
    """What the library does to every protocol at light and heavy adult weights."""
    return protocol_outcomes(library, knowledge())


def require_manage(db: Database, actor: Actor) -> None:
    """Refuse (and audit) anyone who may not load a drug library, before reading a file."""
    check(db, actor, "library.manage", entity="drug_library")


def check_library(
    db: Database, actor: Actor, document: DrugLibrary | dict[str, Any]
) -> LibraryCheck:
    """Validate a library as a load would, without storing it; with its protocol outcomes."""
    check(db, actor, "library.manage", entity="drug_library")
    library = _validated(document)
    with action(db, actor, "library.manage", entity="drug_library") as session:
        next_version = _next_version(session)
        audit.record(
            session,
            actor,
            "library.check",
            entity="drug_library",
            entity_id=library.version,
            detail={"digest": library.digest()},
        )
    _check_version(library, next_version)
    return LibraryCheck(
        version=library.version,
        name=library.name,
        digest=library.digest(),
        next_version=next_version,
        outcomes=_outcome_views(library),
    )


def load_library(
    db: Database,
    actor: Actor,
    document: DrugLibrary | dict[str, Any],
    *,
    reason: str,
    checked_digest: str | None = None,
) -> LibraryView:
    """Approve and load a new version of the drug library (pharmacist or administrator).

    ``checked_digest``, when given, is the digest of the library the approver checked: a
    different document is refused rather than loaded in its place.
    """
    check(db, actor, "library.manage", entity="drug_library")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason: say what changed in this library, and why.", field="reason")
    if _unstorable(reason):
        raise InvalidInput("reason: text with a NUL or an unpaired surrogate.", field="reason")
    library = _validated(document)
    stored = library.document()
    digest = library.digest()
    if checked_digest and checked_digest != digest:
        raise InvalidInput(
            "document: this is not the library that was checked (its digest differs); check "
            "it again before approving it.",
            field="document",
        )
    with action(db, actor, "library.manage", entity="drug_library") as session:
        _check_version(library, _next_version(session))
        row = DrugLibraryVersion(
            version=library.version,
            name=library.name,
            digest=digest,
            document=stored,
            reason=reason,
            approved_at=utcnow(),
            approved_by_id=actor.user_id,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor,
            "library.load",
            entity="drug_library",
            entity_id=library.version,
            detail={"name": library.name, "digest": digest, "reason": reason},
        )
        people = usernames_of(session, [row.approved_by_id])
        return _view(_summary(row, people, True), library)


def approver(db: Database, username: str) -> Actor:
    """The user named as approver on the command line (who must exist and be active)."""
    with db.read_only() as session:
        user = session.scalars(select(User).where(User.username == username.strip())).first()
    if user is None or not user.active:
        raise InvalidInput(
            f"approved_by: no active user {username!r}; name the pharmacist or administrator "
            "who approves this library.",
            field="approved_by",
        )
    return Actor(user.id, user.username, user.role)
