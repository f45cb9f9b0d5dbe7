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


def usernames_of(session: Session, user_ids: list[int | None]) -> dict[int | None, str]:
    """The user names of several user ids in one query (ids not found, and None, are left out)."""
    wanted = {user_id for user_id in user_ids if user_id is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(wanted))).all()
    return {user_id: name for user_id, name in rows}
