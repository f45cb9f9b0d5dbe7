"""The audit log: written inside the transaction of the action it records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, utcnow


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
    session.add(
        AuditEntry(
            at=utcnow(),
            user_id=actor.user_id,
            username=actor.username,
            role=actor.role,
            action=action,
            outcome=outcome,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            patient_id=patient_id,
            detail=detail or {},
        )
    )


class AuditView(BaseModel):
    id: int
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
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if patient_id is not None:
        query = query.where(AuditEntry.patient_id == patient_id)
    if username is not None:
        query = query.where(AuditEntry.username == username)
    return [AuditView.model_validate(row, from_attributes=True) for row in session.scalars(query)]


def record_denied(db: Database, actor: Actor, action: str, **where: Any) -> None:
    """A refused action is audited in a transaction of its own (the action never runs)."""
    with db.transaction() as session:
        record(session, actor, action, outcome="denied", **where)
