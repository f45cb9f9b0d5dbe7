"""Users, passwords, sign-in with lock-out, API bearer tokens and web sessions.

Passwords are hashed with argon2id. Bearer tokens and session tokens are random secrets of
which only the SHA-256 is stored, with an expiry; they can be revoked. An account locks for
``lockout_window_min`` minutes after ``lockout_threshold`` failed sign-ins within that window
(defaults 5 in 15 minutes); an admin can unlock it earlier.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketapath.config import Settings
from ketapath.services import audit
from ketapath.services.errors import (
    AccountLocked,
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
)
from ketapath.services.permissions import ROLES, Actor
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import AuthToken, LoginAttempt, User, utcnow

MIN_PASSWORD_LENGTH = 10
USERNAME_LENGTH = 64
USERNAME_PATTERN = re.compile(rf"^[a-z0-9][a-z0-9._-]{{1,{USERNAME_LENGTH - 1}}}$")
# The longest password a sign-in form takes (a passphrase, not a file).
PASSWORD_LENGTH = 1024

# argon2id with the library's defaults (RFC 9106 low-memory profile). Tests swap in a cheaper
# hasher; nothing else should.
password_hasher = PasswordHasher()
# Verified against when the user name is unknown, so that the answer takes as long.
_DUMMY_HASH = password_hasher.hash("not a real password")


class UserView(BaseModel):
    id: int
    username: str
    full_name: str
    role: str
    active: bool
    locked_until: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    """A new secret (shown once), its expiry and who it belongs to."""

    token: str
    expires_at: datetime
    actor: Actor
    csrf_token: str | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password: must be at least {MIN_PASSWORD_LENGTH} characters long.",
            field="password",
        )


def add_user(
    db: Database,
    actor: Actor,
    username: str,
    role: str,
    password: str,
    *,
    full_name: str = "",
) -> UserView:
    """Create a user (admin only)."""
    if not USERNAME_PATTERN.match(username):
        raise InvalidInput(
            "username: use 2-64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
            field="username",
        )
    if role not in ROLES:
        raise InvalidInput(
            f"role: '{role}' is not a role; choose one of {', '.join(ROLES)}.", field="role"
        )
    _check_password_strength(password)
    with action(db, actor, "user.manage", entity="user") as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise Conflict(f"username: '{username}' already exists.", field="username")
        user = User(
            username=username,
            full_name=full_name,
            role=role,
            password_hash=password_hasher.hash(password),
            active=True,
            created_at=utcnow(),
            created_by=actor.username,
        )
        session.add(user)
        session.flush()
        audit.record(
            session,
            actor,
            "user.add",
            entity="user",
            entity_id=user.id,
            detail={"username": username, "role": role},
        )
        return UserView.model_validate(user, from_attributes=True)


def list_users(db: Database, actor: Actor) -> list[UserView]:
    with action(db, actor, "user.list", entity="user") as session:
        users = session.scalars(select(User).order_by(User.username)).all()
        audit.record(session, actor, "user.list", entity="user", detail={"count": len(users)})
        return [UserView.model_validate(u, from_attributes=True) for u in users]


def set_password(db: Database, actor: Actor, username: str, password: str) -> None:
    """Set a user's password (admin), which also clears a lock-out."""
    _check_password_strength(password)
    with action(db, actor, "user.manage", entity="user") as session:
        user = _find_user(session, username)
        user.password_hash = password_hasher.hash(password)
        user.locked_until = None
        user.failures_reset_at = utcnow()
        _revoke_all(session, user.id)
        audit.record(session, actor, "user.set_password", entity="user", entity_id=user.id)


def unlock_user(db: Database, actor: Actor, username: str) -> None:
    with action(db, actor, "user.manage", entity="user") as session:
        user = _find_user(session, username)
        user.locked_until = None
        user.failures_reset_at = utcnow()
        audit.record(session, actor, "user.unlock", entity="user", entity_id=user.id)


def set_active(db: Database, actor: Actor, username: str, active: bool) -> None:
    """Disable (or re-enable) an account; disabling revokes its tokens and sessions."""
    with action(db, actor, "user.manage", entity="user") as session:
        user = _find_user(session, username)
        user.active = active
        if not active:
            _revoke_all(session, user.id)
        audit.record(
            session,
            actor,
            "user.enable" if active else "user.disable",
            entity="user",
            entity_id=user.id,
        )


def _find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"username: no user '{username}'.", field="username")
    return user


def _revoke_all(session: Session, user_id: int) -> None:
    now = utcnow()
    for token in session.scalars(
        select(AuthToken).where(AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None))
    ):
        token.revoked_at = now


def authenticate(
    db: Database, settings: Settings, username: str, password: str, *, channel: str
) -> Actor:
    """Check a user name and password, counting failures towards the lock-out.

    The password hash is checked outside the write transaction: argon2 is slow on purpose,
    and SQLite's write lock should not wait for it.
    """
    now = utcnow()
    window = timedelta(minutes=settings.lockout_window_min)
    locked_until: datetime | None = None
    actor: Actor | None = None
    with db.read_only() as session:
        found = session.execute(
            select(User.password_hash, User.locked_until).where(User.username == username)
        ).first()
        if found is None:
            # an unknown user name locks exactly as an account would, so that the answers
            # to repeated attempts do not tell which user names exist
            locked_until = _unknown_name_lock(session, username, now, window, settings)
    if found is not None and found.locked_until is not None and found.locked_until > now:
        locked_until = found.locked_until
    elif locked_until is None:
        verified = _verify(found.password_hash if found is not None else None, password)
        with db.transaction() as session:
            user = session.scalar(select(User).where(User.username == username))
            ok = (
                found is not None
                and verified
                and user is not None
                and user.active
                and user.password_hash == found.password_hash  # not changed meanwhile
            )
            session.add(LoginAttempt(username=username, at=now, succeeded=ok, channel=channel))
            session.flush()
            if ok and user is not None:
                user.failures_reset_at = now
                user.locked_until = None
                if password_hasher.check_needs_rehash(user.password_hash):
                    user.password_hash = password_hasher.hash(password)
                actor = Actor(user.id, user.username, user.role)
            elif user is not None:
                locked_until = _count_failure(session, user, now, window, settings, channel)
            elif found is None:
                locked_until = _unknown_name_lock(session, username, now, window, settings)
    if locked_until is not None:
        raise AccountLocked(
            "This account is locked after repeated failed sign-ins; try again after "
            f"{locked_until:%H:%M} UTC or ask an administrator to unlock it."
        )
    if actor is None:
        raise AuthenticationFailed("The user name or password is not right.")
    return actor


def _count_failure(
    session: Session,
    user: User,
    now: datetime,
    window: timedelta,
    settings: Settings,
    channel: str,
) -> datetime | None:
    """Lock the account if this failure reaches the threshold; returns the lock's end."""
    since = now - window
    if user.failures_reset_at is not None and user.failures_reset_at > since:
        since = user.failures_reset_at
    failures = session.scalar(
        select(func.count(LoginAttempt.id)).where(
            LoginAttempt.username == user.username,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at >= since,
        )
    )
    if (failures or 0) < settings.lockout_threshold:
        return None
    user.locked_until = now + window
    user.failures_reset_at = now  # after the lock, the count starts again
    audit.record(
        session,
        Actor(user.id, user.username, user.role),
        "user.locked",
        entity="user",
        entity_id=user.id,
        outcome="denied",
        detail={"failures": failures, "channel": channel},
    )
    return user.locked_until


def _unknown_name_lock(
    session: Session, username: str, now: datetime, window: timedelta, settings: Settings
) -> datetime | None:
    """The lock an account of this name would be under now, replayed from its failed attempts.

    Follows ``_count_failure``: the threshold-th failure within the window (counted since the
    last lock began) locks for one window, and attempts during a lock are not recorded. A lock
    now can only come from attempts of the last two windows.
    """
    attempts = session.scalars(
        select(LoginAttempt.at)
        .where(
            LoginAttempt.username == username,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at >= now - 2 * window,
        )
        .order_by(LoginAttempt.at)
    ).all()
    counted: list[datetime] = []
    locked_until: datetime | None = None
    for at in attempts:
        if locked_until is not None and at < locked_until:
            continue
        counted = [t for t in counted if t >= at - window] + [at]
        if len(counted) >= settings.lockout_threshold:
            locked_until, counted = at + window, []
    return locked_until if locked_until is not None and locked_until > now else None


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return password_hasher.verify(password_hash or _DUMMY_HASH, password) and (
            password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def _issue(db: Database, actor: Actor, kind: str, ttl_hours: float) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32) if kind == "session" else None
    now = utcnow()
    expires_at = now + timedelta(hours=ttl_hours)
    with db.transaction() as session:
        session.add(
            AuthToken(
                user_id=actor.user_id,
                kind=kind,
                token_hash=hash_token(token),
                csrf_token=csrf,
                created_at=now,
                expires_at=expires_at,
            )
        )
        audit.record(session, actor, f"auth.{kind}_issued", entity="user", entity_id=actor.user_id)
    return IssuedToken(token=token, expires_at=expires_at, actor=actor, csrf_token=csrf)


def issue_api_token(db: Database, settings: Settings, username: str, password: str) -> IssuedToken:
    """Sign in for the API: a bearer token valid for ``api_token_ttl_hours``."""
    actor = authenticate(db, settings, username, password, channel="api")
    return _issue(db, actor, "api", settings.api_token_ttl_hours)


def start_session(db: Database, settings: Settings, username: str, password: str) -> IssuedToken:
    """Sign in on the web: a session token (for the cookie) and its CSRF token."""
    actor = authenticate(db, settings, username, password, channel="web")
    return _issue(db, actor, "session", settings.session_ttl_hours)


@dataclass(frozen=True)
class Authenticated:
    actor: Actor
    kind: str
    csrf_token: str | None
    expires_at: datetime


def resolve_token(db: Database, token: str, *, kind: str) -> Authenticated:
    """Who a bearer or session token belongs to; refuses unknown, expired or revoked ones."""
    now = utcnow()
    with db.read_only() as session:
        row = session.execute(
            select(AuthToken, User)
            .join(User, User.id == AuthToken.user_id)
            .where(AuthToken.token_hash == hash_token(token), AuthToken.kind == kind)
        ).first()
        if row is None:
            raise AuthenticationFailed("Not signed in (unknown token).")
        token_row, user = row
        if token_row.revoked_at is not None or token_row.expires_at <= now:
            raise AuthenticationFailed("The sign-in has expired; sign in again.")
        if not user.active:
            raise AuthenticationFailed("This account is disabled.")
        return Authenticated(
            actor=Actor(user.id, user.username, user.role),
            kind=kind,
            csrf_token=token_row.csrf_token,
            expires_at=token_row.expires_at,
        )


def revoke_token(db: Database, token: str) -> None:
    """Sign out: the token or session stops working at once."""
    with db.transaction() as session:
        row = session.scalar(select(AuthToken).where(AuthToken.token_hash == hash_token(token)))
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
            user = session.get(User, row.user_id)
            if user is not None:
                audit.record(
                    session,
                    Actor(user.id, user.username, user.role),
                    f"auth.{row.kind}_revoked",
                    entity="user",
                    entity_id=user.id,
                )
