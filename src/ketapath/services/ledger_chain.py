"""The controlled-drug ledger's hash chain: appending a line, and verifying every line.

Each ledger line carries ``seq`` (1, 2, 3 ... with no gaps), the hash of the line before it
(``prev_hash``; the first line's is ``GENESIS_HASH``) and its own hash (``row_hash``): SHA-256
over ``"<seq>:<prev_hash>:<content hash>"`` (``audit.link_hash``), where the content hash is
SHA-256 over the canonical JSON (``audit.canonical_json``) of everything else the line says
(``CONTENT_FIELDS``) and the chain format. A line changed behind the application's back no
longer matches its hash; a line removed leaves a gap; ``verify`` names the first such line.

Appends are serialised so that the chain never forks: on SQLite every writing transaction
starts with ``BEGIN IMMEDIATE`` (``store.db``); on PostgreSQL the first append of a
transaction takes a transaction-level advisory lock keyed by the schema, held until commit.
The unique index on ``seq`` refuses a fork in any case.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, SessionTransaction

from ketapath.services.audit import GENESIS_HASH, canonical_json, link_hash, timestamp_text
from ketapath.store.db import Database
from ketapath.store.models import LedgerLine

CHAIN_FORMAT = 1
CONTENT_FIELDS = (
    "at",
    "kind",
    "product_id",
    "lot",
    "expiry",
    "location_id",
    "stock_change_ug",
    "amount_ug",
    "containers",
    "session_id",
    "patient_id",
    "user_id",
    "username",
    "role",
    "witness_id",
    "witness_username",
    "corrects_seq",
    "resolves_seq",
    "reason",
    "detail",
)
_LOCK_SQL = (
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'ketapath.ledger_lines:' || coalesce(current_schema(), ''), 0))"
)
_LOCKED = "ketapath.ledger_locked"


def content_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over the canonical JSON of a line's ``CONTENT_FIELDS``."""
    content: dict[str, Any] = {name: fields[name] for name in CONTENT_FIELDS}
    content["at"] = timestamp_text(content["at"])
    expiry = content["expiry"]
    content["expiry"] = expiry.isoformat() if isinstance(expiry, date) else expiry
    content["format"] = CHAIN_FORMAT
    return hashlib.sha256(canonical_json(content).encode("ascii")).hexdigest()


def line_hash(fields: Mapping[str, Any]) -> str:
    """The ``row_hash`` a line with these fields, ``seq`` and ``prev_hash`` must carry."""
    return link_hash(int(fields["seq"]), str(fields["prev_hash"]), content_hash(fields))


def lock(session: Session) -> None:
    """Make ``session``'s transaction the ledger's only writer until it ends.

    A writer takes it before it reads the balances it checks (a dispensing must not take
    what a concurrent one is taking). SQLite's ``BEGIN IMMEDIATE`` already admits one writer
    at a time; on PostgreSQL a transaction-level advisory lock keyed by the schema does.
    """
    if session.get_bind().dialect.name == "postgresql" and not session.info.get(_LOCKED):
        session.execute(text(_LOCK_SQL))
        session.info[_LOCKED] = True


def append(session: Session, fields: Mapping[str, Any]) -> LedgerLine:
    """Add a line after the chain's head, in ``session``'s transaction (taking the lock)."""
    lock(session)
    session.flush()
    head = session.execute(
        select(LedgerLine.seq, LedgerLine.row_hash).order_by(LedgerLine.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (0, GENESIS_HASH) if head is None else (int(head[0]), str(head[1]))
    values = {name: fields.get(name) for name in CONTENT_FIELDS}
    values["detail"] = dict(values["detail"] or {})
    values["seq"] = seq + 1
    values["prev_hash"] = prev_hash
    values["row_hash"] = line_hash(values)
    line = LedgerLine(**values)
    session.add(line)
    session.flush()
    return line


@event.listens_for(Session, "after_transaction_end")
def _forget_lock(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_LOCKED, None)


# --- verifying ----------------------------------------------------------------------------

Problem = Literal["missing lines", "wrong previous hash", "hash mismatch", "unreadable line"]


@dataclass(frozen=True)
class ChainBreak:
    """The first line where the chain does not hold, in words."""

    problem: Problem
    message: str
    seq: int | None
    line_id: int | None


@dataclass(frozen=True)
class ChainReport:
    lines_checked: int
    head_seq: int | None
    head_hash: str | None
    first_break: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


_COLUMNS = (
    LedgerLine.id,
    LedgerLine.seq,
    LedgerLine.prev_hash,
    LedgerLine.row_hash,
    *(getattr(LedgerLine, name) for name in CONTENT_FIELDS),
)


def _rows(session: Session, batch: int) -> Iterator[Any]:
    after = -1
    while True:
        query = select(*_COLUMNS).where(LedgerLine.seq > after).order_by(LedgerLine.seq)
        try:
            rows: list[Any] = list(session.execute(query.limit(batch)).all())
        except (ValueError, TypeError):  # a value written behind the application's back
            rows = _one_by_one(session, after, batch)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq


@dataclass(frozen=True)
class _Unreadable:
    id: int
    seq: int
    error: str


def _one_by_one(session: Session, after: int, batch: int) -> list[Any]:
    keys = session.execute(
        select(LedgerLine.id, LedgerLine.seq)
        .where(LedgerLine.seq > after)
        .order_by(LedgerLine.seq)
        .limit(batch)
    ).all()
    rows: list[Any] = []
    for key in keys:
        try:
            rows.append(session.execute(select(*_COLUMNS).where(LedgerLine.id == key.id)).one())
        except (ValueError, TypeError) as error:
            rows.append(_Unreadable(key.id, key.seq, f"{type(error).__name__}: {error}"))
    return rows


def verify(db: Database, *, batch: int = 2000) -> ChainReport:
    """Walk the ledger from its first line and report the first line that breaks the chain.

    Reads only; lines appended during the walk are either checked too or not reached.
    """
    expected, prev_hash = 1, GENESIS_HASH
    checked = 0
    head: tuple[int, str] | None = None
    with db.read_only() as session:
        for row in _rows(session, batch):
            problem = _check(row, expected, prev_hash)
            if problem is not None:
                return _report(checked, head, problem)
            checked += 1
            expected, prev_hash = row.seq + 1, row.row_hash
            head = (row.seq, row.row_hash)
    return _report(checked, head, None)


def _report(checked: int, head: tuple[int, str] | None, problem: ChainBreak | None) -> ChainReport:
    if head is None:
        return ChainReport(checked, None, None, problem)
    return ChainReport(checked, head[0], head[1], problem)


def _check(row: Any, expected: int, prev_hash: str) -> ChainBreak | None:
    if isinstance(row, _Unreadable):
        return ChainBreak(
            "unreadable line",
            f"ledger line {row.seq} (row {row.id}) cannot be read back ({row.error}): a value "
            "was written to it behind the application's back",
            row.seq,
            row.id,
        )
    if row.seq != expected:
        missing = (
            f"line {expected} is missing"
            if row.seq == expected + 1
            else f"lines {expected} to {row.seq - 1} are missing"
        )
        return ChainBreak(
            "missing lines",
            f"ledger {missing}: removed before line {row.seq} (row {row.id})",
            row.seq,
            row.id,
        )
    if row.prev_hash != prev_hash:
        return ChainBreak(
            "wrong previous hash",
            f"ledger line {row.seq} (row {row.id}) names {row.prev_hash} as the line before "
            f"it, but that line hashes to {prev_hash}",
            row.seq,
            row.id,
        )
    computed = line_hash(row._mapping)
    if computed != row.row_hash:
        return ChainBreak(
            "hash mismatch",
            f"ledger line {row.seq} (row {row.id}) does not match its hash: it was changed "
            f"after it was written (stored {row.row_hash}, its content hashes to {computed})",
            row.seq,
            row.id,
        )
    return None


def head_of(session: Session) -> tuple[int, str] | None:
    row = session.execute(
        select(LedgerLine.seq, LedgerLine.row_hash).order_by(LedgerLine.seq.desc()).limit(1)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))
