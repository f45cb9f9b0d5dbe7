"""Who did what: the user name behind a stored user id (for the views services return)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.store.models import User


def username_of(session: Session, user_id: int | None) -> str | None:
    """The user name of ``user_id``, or None when no user is recorded."""
    if user_id is None:
        return None
    return session.scalar(select(User.username).where(User.id == user_id))
