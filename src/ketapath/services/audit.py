"""The audit log: written inside the transaction of the action it records, chained by hash.

Every row carries a sequence number (``seq``: 1, 2, 3 ... with no gaps), the hash of the row
before it (``prev_hash``; the first row's is ``GENESIS_HASH``) and its own hash
(``row_hash``): SHA-256 over ``"<seq>:<prev_hash>:<content hash>"``, where the content hash
is SHA-256 over a canonical serialisation of the row's content (``canonical_content``).
Changing a row breaks its own hash; removing one leaves a gap in ``seq`` and a next row
whose ``prev_hash`` matches nothing; rewriting everything after a point consistently
changes the head hash, which a clinic can record elsewhere
(``ketapath audit head``) and compare later (``ketapath audit verify --anchor``).

``record`` only notes the row; it joins the chain when its transaction commits (``seq`` is
commit order). Appends are serialised so that the chain never forks: on PostgreSQL one call
(``APPEND_SQL``) takes a transaction-level advisory lock, reads the head, computes the row's
hash and inserts it, and the commit releases the lock; on SQLite every writing transaction
starts with ``BEGIN IMMEDIATE`` (``store.db``), which already admits one writer at a time.
The unique index on ``seq`` refuses a fork in any case.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, SessionTransaction

from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, utcnow

GENESIS_HASH = "0" * 64
CHAIN_FORMAT = 1
# PostgreSQL: lock the chain, read its head, hash and insert the row, in one call to a
# function made by migration 0004. Advisory locks are per database, not per schema, so the
# lock's key is derived from the schema the tables live in: two ketapath schemas in one
# database (two clinics, parallel test runs) do not wait for each other.
APPEND_SQL = (
    "SELECT ketapath_audit_append(:at, :user_id, :username, :role, :action, :outcome, "
    ":entity, :entity_id, :patient_id, CAST(:detail AS jsonb), :hash)"
)
_PENDING = "ketapath.audit_pending"
# Beyond 2**53 a JSON number read back from PostgreSQL's jsonb may come back as an int
# where a float was written (1e300 -> 1000...0); such numbers are canonicalised as floats.
_EXACT_INT = 2**53

# The row's own content, covered by its content hash (everything but its place in the chain).
CONTENT_FIELDS = (
    "at",
    "user_id",
    "username",
    "role",
    "action",
    "outcome",
    "entity",
    "entity_id",
    "patient_id",
    "detail",
)
# Everything a row's hash covers: its place in the chain and its content.
CHAINED_FIELDS = ("seq", *CONTENT_FIELDS, "prev_hash")


def _number(value: float) -> str:
    if not math.isfinite(value):
        return repr(value)  # 'nan', 'inf': not JSON, but never stored on PostgreSQL anyway
    if value.is_integer() and abs(value) < _EXACT_INT:
        return str(int(value))
    return repr(value)


def _encode(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, ASCII, one spelling per number."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, int):
        if abs(value) < _EXACT_INT:
            return str(value)
        try:
            return _number(float(value))
        except OverflowError:
            return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = sorted((str(key), item) for key, item in value.items())
        return "{" + ",".join(f"{_encode(key)}:{_encode(item)}" for key, item in items) + "}"
    raise TypeError(f"audit detail: {type(value).__name__} is not JSON")


def canonical_json(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces, ASCII, one spelling per number): what a hash
    of the audit log or the controlled-drug ledger covers."""
    return _encode(value)


def timestamp_text(value: datetime) -> str:
    """A time as the chains hash it: UTC, microseconds, 'Z' ('2026-12-01T06:00:00.000000Z')."""
    return _timestamp(value)


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_content(fields: Mapping[str, Any]) -> bytes:
    """The bytes a row's content hash covers: its ``CONTENT_FIELDS`` and the chain format."""
    content = {name: fields[name] for name in CONTENT_FIELDS}
    content["at"] = _timestamp(content["at"])
    content["format"] = CHAIN_FORMAT
    return _encode(content).encode("ascii")


def content_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``canonical_content(fields)``."""
    return hashlib.sha256(canonical_content(fields)).hexdigest()


def link_hash(seq: int, prev_hash: str, content: str) -> str:
    """A row's hash: SHA-256 (hex) of ``"<seq>:<prev_hash>:<content hash>"`` in ASCII.

    The same formula runs in the database on PostgreSQL (``ketapath_audit_append``).
    """
    return hashlib.sha256(f"{seq}:{prev_hash}:{content}".encode("ascii")).hexdigest()


def chain_hash(fields: Mapping[str, Any]) -> str:
    """The ``row_hash`` a row with these ``CHAINED_FIELDS`` must carry."""
    return link_hash(int(fields["seq"]), str(fields["prev_hash"]), content_hash(fields))


def as_stored(detail: Mapping[str, Any]) -> dict[str, Any]:
    """``detail`` as it reads back from the database (JSON: tuples become lists, keys text)."""
    stored: dict[str, Any] = json.loads(json.dumps(detail))
    return stored


def _locked_head(session: Session) -> tuple[int, str]:
    """SQLite: (seq, hash) of the last row; BEGIN IMMEDIATE made this the only writer."""
    head = session.execute(
        select(AuditEntry.seq, AuditEntry.row_hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    if head is None:
        return 0, GENESIS_HASH
    return int(head[0]), str(head[1])


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    entity: str,
    entity_id: object = None,
    patient_id: int | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit ``action`` in ``session``'s transaction: the row is added to the chain when the
    transaction commits (``_append_to_chain``), and is lost with it if it rolls back.

    ``patient_id`` is the patient the action was about, as asked for: it need not exist (a
    refused request for a patient number that does not exist is audited like any other).
    For ``entity="patient"`` the entity id is that patient, so it is kept as ``patient_id``
    too when none is given.
    """
    if patient_id is None and entity == "patient" and entity_id is not None:
        patient_id = _patient_number(entity_id)
    fields: dict[str, Any] = {
        "at": utcnow(),
        "user_id": actor.user_id,
        "username": actor.username,
        "role": actor.role,
        "action": action,
        "outcome": outcome,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "patient_id": patient_id,
        "detail": as_stored(detail or {}),
    }
    session.info.setdefault(_PENDING, []).append(fields)


@event.listens_for(Session, "before_commit")
def _append_to_chain(session: Session) -> None:
    """Chain the transaction's audit rows just before it commits.

    The action's own rows are flushed first, so that while the chain is locked the
    transaction only inserts its audit rows and commits: the lock is held for as short a
    time as possible, and never while waiting on another transaction's row.
    """
    pending: list[dict[str, Any]] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        # Lock, head, hash and INSERT in one round trip: while the chain is locked this
        # thread only has to come back to send COMMIT.
        for fields in pending:
            session.execute(
                text(APPEND_SQL),
                {**fields, "detail": json.dumps(fields["detail"]), "hash": content_hash(fields)},
            )
        return
    seq, prev_hash = _locked_head(session)
    for fields in pending:
        seq += 1
        row_hash = link_hash(seq, prev_hash, content_hash(fields))
        session.add(AuditEntry(**fields, seq=seq, prev_hash=prev_hash, row_hash=row_hash))
        prev_hash = row_hash
    session.flush()


@event.listens_for(Session, "after_transaction_end")
def _forget_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def _patient_number(entity_id: object) -> int | None:
    if isinstance(entity_id, bool):
        return None
    if isinstance(entity_id, int):
        return entity_id
    return None


class AuditView(BaseModel):
    id: int
    seq: int
    at: datetime
    username: str
    role: str
    action: str
    outcome: str
    entity: str
    entity_id: str | None
    patient_id: int | None
    detail: dict[str, Any]


def entries(
    session: Session,
    *,
    patient_id: int | None = None,
    username: str | None = None,
    limit: int = 200,
) -> list[AuditView]:
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if patient_id is not None:
        query = query.where(AuditEntry.patient_id == patient_id)
    if username is not None:
        query = query.where(AuditEntry.username == username)
    return [AuditView.model_validate(row, from_attributes=True) for row in session.scalars(query)]


def record_denied(db: Database, actor: Actor, action: str, **where: Any) -> None:
    """A refused action is audited in a transaction of its own (the action never runs)."""
    with db.transaction() as session:
        record(session, actor, action, outcome="denied", **where)


# --- verifying the chain --------------------------------------------------------------------

Problem = Literal[
    "missing rows", "wrong previous hash", "hash mismatch", "unreadable row", "anchor mismatch"
]


@dataclass(frozen=True)
class ChainHead:
    """The last row of the chain: record ``seq`` and ``row_hash`` somewhere else."""

    seq: int
    row_id: int
    row_hash: str
    at: datetime


@dataclass(frozen=True)
class ChainBreak:
    """The first place where the chain does not hold."""

    problem: Problem
    message: str
    seq: int | None
    row_id: int | None


@dataclass(frozen=True)
class ChainReport:
    rows_checked: int
    head: ChainHead | None
    first_break: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


@dataclass(frozen=True)
class Anchor:
    """A head recorded earlier: the row with ``seq`` must still have ``row_hash``."""

    seq: int
    row_hash: str


@dataclass(frozen=True)
class _Unreadable:
    """A row whose stored values cannot be read back (e.g. a time that is not a time)."""

    id: int
    seq: int
    error: str


_COLUMNS = (AuditEntry.id, *(getattr(AuditEntry, n) for n in CHAINED_FIELDS), AuditEntry.row_hash)


def _rows(session: Session, batch: int) -> Iterator[Any]:
    after = -1
    while True:
        query = select(*_COLUMNS).where(AuditEntry.seq > after).order_by(AuditEntry.seq)
        try:
            rows: list[Any] = list(session.execute(query.limit(batch)).all())
        except (ValueError, TypeError):  # a value written behind the application's back
            rows = _one_by_one(session, after, batch)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq


def _one_by_one(session: Session, after: int, batch: int) -> list[Any]:
    """The batch read row by row, an unreadable row standing in for what cannot be read."""
    keys = session.execute(
        select(AuditEntry.id, AuditEntry.seq)
        .where(AuditEntry.seq > after)
        .order_by(AuditEntry.seq)
        .limit(batch)
    ).all()
    rows: list[Any] = []
    for key in keys:
        try:
            rows.append(session.execute(select(*_COLUMNS).where(AuditEntry.id == key.id)).one())
        except (ValueError, TypeError) as error:
            rows.append(_Unreadable(key.id, key.seq, f"{type(error).__name__}: {error}"))
    return rows


def head(db: Database) -> ChainHead | None:
    """The chain's last row (None while the audit log is empty)."""
    with db.read_only() as session:
        row = session.execute(
            select(AuditEntry.seq, AuditEntry.id, AuditEntry.row_hash, AuditEntry.at)
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    return ChainHead(seq=row.seq, row_id=row.id, row_hash=row.row_hash, at=row.at)


def verify(db: Database, *, anchor: Anchor | None = None, batch: int = 2000) -> ChainReport:
    """Walk the chain from its first row and report the first broken link.

    Reads only (no audit row is written), in batches ordered by ``seq``, while the clinic
    goes on writing: rows are only ever appended after the head, so rows committed during
    the walk are either checked too or simply not reached.
    """
    expected_seq, prev_hash = 1, GENESIS_HASH
    checked = 0
    last: Any = None
    anchor_seen = False
    with db.read_only() as session:
        for row in _rows(session, batch):
            problem = _check(row, expected_seq, prev_hash)
            if problem is not None:
                return ChainReport(checked, _head_of(last), problem)
            if anchor is not None and row.seq == anchor.seq:
                anchor_seen = True
                if row.row_hash != anchor.row_hash:
                    message = (
                        f"row {row.id} (seq {row.seq}) has hash {row.row_hash}, not the "
                        f"recorded {anchor.row_hash}: the chain was rewritten up to here"
                    )
                    return ChainReport(
                        checked,
                        _head_of(last),
                        ChainBreak("anchor mismatch", message, row.seq, row.id),
                    )
            checked += 1
            expected_seq, prev_hash, last = row.seq + 1, row.row_hash, row
    if anchor is not None and not anchor_seen:
        message = (
            f"the recorded head (seq {anchor.seq}) is not in the chain, which ends at seq "
            f"{expected_seq - 1}: rows were removed from its end, or it was rewritten"
        )
        return ChainReport(
            checked, _head_of(last), ChainBreak("anchor mismatch", message, anchor.seq, None)
        )
    return ChainReport(checked, _head_of(last), None)


def _head_of(row: Any) -> ChainHead | None:
    if row is None:
        return None
    return ChainHead(seq=row.seq, row_id=row.id, row_hash=row.row_hash, at=row.at)


def _check(row: Any, expected_seq: int, prev_hash: str) -> ChainBreak | None:
    if isinstance(row, _Unreadable):
        message = (
            f"row {row.id} (seq {row.seq}) cannot be read back ({row.error}): a value was "
            "written to it behind the application's back"
        )
        return ChainBreak("unreadable row", message, row.seq, row.id)
    if row.seq != expected_seq:
        if row.seq < expected_seq:  # cannot happen with the unique index; be explicit anyway
            message = f"row {row.id} repeats seq {row.seq}"
        elif row.seq == expected_seq + 1:
            message = f"seq {expected_seq} is missing: a row was removed before row {row.id}"
        else:
            message = (
                f"seq {expected_seq} to {row.seq - 1} are missing: {row.seq - expected_seq} "
                f"rows were removed before row {row.id}"
            )
        return ChainBreak("missing rows", message, row.seq, row.id)
    if row.prev_hash != prev_hash:
        message = (
            f"row {row.id} (seq {row.seq}) names {row.prev_hash} as the previous hash, but "
            f"the row before it hashes to {prev_hash}"
        )
        return ChainBreak("wrong previous hash", message, row.seq, row.id)
    computed = chain_hash(row._mapping)
    if computed != row.row_hash:
        message = (
            f"row {row.id} (seq {row.seq}) does not match its hash: its content was changed "
            f"after it was written (stored {row.row_hash}, content hashes to {computed})"
        )
        return ChainBreak("hash mismatch", message, row.seq, row.id)
    return None
