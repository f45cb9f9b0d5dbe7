"""Administration: users and the audit log (admin role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import RecordId
from ketapath.services import audit, auth
from ketapath.services.audit import AuditView
from ketapath.services.auth import UserView
from ketapath.services.unit import action

router = APIRouter(tags=["admin"], responses=SIGNED_IN)


class NewUser(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    role: str
    password: str = Field(min_length=auth.MIN_PASSWORD_LENGTH, max_length=1000)
    full_name: str = Field(default="", max_length=200)


@router.get("/users", response_model=list[UserView])
def list_users(actor: CurrentUser, db: DatabaseDep) -> list[UserView]:
    return auth.list_users(db, actor)


@router.post(
    "/users",
    response_model=UserView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 409, 422),
)
def add_user(body: NewUser, actor: CurrentUser, db: DatabaseDep) -> UserView:
    return auth.add_user(
        db, actor, body.username, body.role, body.password, full_name=body.full_name
    )


@router.post(
    "/users/{username}/unlock",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(404, 422),
)
def unlock_user(username: str, actor: CurrentUser, db: DatabaseDep) -> None:
    auth.unlock_user(db, actor, username)


@router.get("/audit", response_model=list[AuditView], responses=responses(422))
def read_audit(
    actor: CurrentUser,
    db: DatabaseDep,
    patient_id: Annotated[RecordId | None, Query()] = None,
    username: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[AuditView]:
    with action(db, actor, "audit.read", entity="audit") as session:
        found = audit.entries(session, patient_id=patient_id, username=username, limit=limit)
        audit.record(
            session,
            actor,
            "audit.read",
            entity="audit",
            detail={"patient_id": patient_id, "username": username, "count": len(found)},
        )
        return found
