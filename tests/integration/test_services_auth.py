"""Users, sign-in, lock-out, bearer tokens and sessions, on both databases."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from ketapath.config import Settings
from ketapath.services import auth
from ketapath.services.errors import (
    AccountLocked,
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    PermissionDenied,
)
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, AuthToken, LoginAttempt, User, utcnow

TEST_PASSWORD = "correct horse battery"  # the password of the `users` fixture

SETTINGS = Settings(secret_key="test-secret-key-0123456789", lockout_threshold=3)


def test_an_admin_adds_a_user_whose_password_is_stored_only_as_an_argon2_hash(
    database: Database,
) -> None:
    view = auth.add_user(database, SYSTEM, "dr.lee", "physician", TEST_PASSWORD)
    assert view.role == "physician"
    with database.transaction() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "dr.lee"))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert TEST_PASSWORD not in stored


def test_adding_a_user_is_audited(database: Database) -> None:
    auth.add_user(database, SYSTEM, "dr.lee", "physician", TEST_PASSWORD)
    with database.transaction() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.add")).one()
    assert entry.username == "system"
    assert entry.detail == {"username": "dr.lee", "role": "physician"}


@pytest.mark.parametrize("role", ["physician", "nurse", "pharmacist", "researcher"])
def test_only_an_admin_may_add_users_and_the_refusal_is_audited(
    database: Database, users: dict[str, Actor], role: str
) -> None:
    with pytest.raises(PermissionDenied, match="admin"):
        auth.add_user(database, users[role], "someone", "nurse", TEST_PASSWORD)
    with database.transaction() as session:
        denied = session.scalars(
            select(AuditEntry).where(AuditEntry.outcome == "denied", AuditEntry.username == role)
        ).all()
    assert [entry.action for entry in denied] == ["user.manage"]


def test_a_user_name_is_unique(database: Database) -> None:
    auth.add_user(database, SYSTEM, "dr.lee", "physician", TEST_PASSWORD)
    with pytest.raises(Conflict, match="username"):
        auth.add_user(database, SYSTEM, "dr.lee", "nurse", TEST_PASSWORD)


@pytest.mark.parametrize(
    ("username", "role", "password", "field"),
    [
        ("Dr Lee", "physician", TEST_PASSWORD, "username"),
        ("dr.lee", "surgeon", TEST_PASSWORD, "role"),
        ("dr.lee", "physician", "short", "password"),
    ],
)
def test_a_bad_user_is_refused_naming_the_field(
    database: Database, username: str, role: str, password: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        auth.add_user(database, SYSTEM, username, role, password)
    assert caught.value.field == field


def test_the_right_password_signs_in(database: Database, users: dict[str, Actor]) -> None:
    actor = auth.authenticate(database, SETTINGS, "nurse", TEST_PASSWORD, channel="api")
    assert actor == users["nurse"]


@pytest.mark.parametrize("username", ["nurse", "nobody"])
def test_a_wrong_password_or_unknown_user_gets_the_same_answer(
    database: Database, users: dict[str, Actor], username: str
) -> None:
    with pytest.raises(AuthenticationFailed, match="user name or password"):
        auth.authenticate(database, SETTINGS, username, "wrong password!", channel="api")


def test_the_account_locks_after_repeated_failures_even_for_the_right_password(
    database: Database, users: dict[str, Actor]
) -> None:
    for _ in range(SETTINGS.lockout_threshold - 1):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(database, SETTINGS, "nurse", "wrong password!", channel="web")
    with pytest.raises(AccountLocked):
        auth.authenticate(database, SETTINGS, "nurse", "wrong password!", channel="web")
    with pytest.raises(AccountLocked):
        auth.authenticate(database, SETTINGS, "nurse", TEST_PASSWORD, channel="web")


def test_an_unknown_user_name_answers_exactly_as_an_account_would(
    database: Database, users: dict[str, Actor]
) -> None:
    """Repeated attempts must not tell which user names exist (no account enumeration)."""

    def answers(username: str) -> list[str]:
        out = []
        for _ in range(SETTINGS.lockout_threshold + 2):
            with pytest.raises(AuthenticationFailed) as caught:
                auth.authenticate(database, SETTINGS, username, "wrong password!", channel="web")
            # the lock's end (HH:MM) may differ by a minute between the two runs
            message = re.sub(r"\d\d:\d\d", "HH:MM", caught.value.message)
            out.append(f"{type(caught.value).__name__}: {message}")
        return out

    assert answers("nurse") == answers("no-such-user")
    assert answers("nurse")[-1].startswith("AccountLocked")


def test_an_unknown_user_name_lock_ends_after_the_window(
    database: Database, users: dict[str, Actor]
) -> None:
    past = utcnow() - timedelta(minutes=SETTINGS.lockout_window_min + 1)
    with database.transaction() as session:
        for second in range(SETTINGS.lockout_threshold):
            session.add(
                LoginAttempt(
                    username="ghost",
                    at=past + timedelta(seconds=second),
                    succeeded=False,
                    channel="web",
                )
            )
    with pytest.raises(AuthenticationFailed) as caught:
        auth.authenticate(database, SETTINGS, "ghost", "wrong password!", channel="web")
    assert not isinstance(caught.value, AccountLocked)


def test_a_success_resets_the_failure_count(database: Database, users: dict[str, Actor]) -> None:
    for _ in range(SETTINGS.lockout_threshold - 1):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(database, SETTINGS, "nurse", "wrong password!", channel="web")
    auth.authenticate(database, SETTINGS, "nurse", TEST_PASSWORD, channel="web")
    with pytest.raises(AuthenticationFailed) as caught:
        auth.authenticate(database, SETTINGS, "nurse", "wrong password!", channel="web")
    assert not isinstance(caught.value, AccountLocked)


def test_an_admin_can_unlock_a_locked_account(database: Database, users: dict[str, Actor]) -> None:
    for _ in range(SETTINGS.lockout_threshold):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(database, SETTINGS, "nurse", "wrong password!", channel="web")
    auth.unlock_user(database, users["admin"], "nurse")
    assert auth.authenticate(database, SETTINGS, "nurse", TEST_PASSWORD, channel="web")


def test_the_lock_ends_when_its_time_is_over(database: Database, users: dict[str, Actor]) -> None:
    for _ in range(SETTINGS.lockout_threshold):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(database, SETTINGS, "nurse", "wrong password!", channel="web")
    with database.transaction() as session:
        session.execute(
            update(User)
            .where(User.username == "nurse")
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert auth.authenticate(database, SETTINGS, "nurse", TEST_PASSWORD, channel="web")


def test_after_a_lock_ends_one_more_failure_does_not_lock_again(
    database: Database, users: dict[str, Actor]
) -> None:
    for _ in range(SETTINGS.lockout_threshold):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(database, SETTINGS, "nurse", "wrong password!", channel="web")
    with database.transaction() as session:
        session.execute(
            update(User)
            .where(User.username == "nurse")
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
    with pytest.raises(AuthenticationFailed) as caught:
        auth.authenticate(database, SETTINGS, "nurse", "wrong password!", channel="web")
    assert not isinstance(caught.value, AccountLocked)


def test_a_disabled_account_cannot_sign_in_and_loses_its_tokens(
    database: Database, users: dict[str, Actor]
) -> None:
    issued = auth.issue_api_token(database, SETTINGS, "nurse", TEST_PASSWORD)
    auth.set_active(database, users["admin"], "nurse", False)
    with pytest.raises(AuthenticationFailed):
        auth.resolve_token(database, issued.token, kind="api")
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(database, SETTINGS, "nurse", TEST_PASSWORD, channel="api")


def test_a_bearer_token_identifies_its_user_and_only_its_hash_is_stored(
    database: Database, users: dict[str, Actor]
) -> None:
    issued = auth.issue_api_token(database, SETTINGS, "physician", TEST_PASSWORD)
    assert auth.resolve_token(database, issued.token, kind="api").actor == users["physician"]
    with database.transaction() as session:
        hashes = session.scalars(select(AuthToken.token_hash)).all()
    assert hashes == [auth.hash_token(issued.token)]
    assert issued.token not in hashes


def test_a_token_stops_working_when_revoked_or_expired(
    database: Database, users: dict[str, Actor]
) -> None:
    revoked = auth.issue_api_token(database, SETTINGS, "physician", TEST_PASSWORD)
    auth.revoke_token(database, revoked.token)
    with pytest.raises(AuthenticationFailed, match="expired"):
        auth.resolve_token(database, revoked.token, kind="api")

    expired = auth.issue_api_token(database, SETTINGS, "physician", TEST_PASSWORD)
    with database.transaction() as session:
        session.execute(
            update(AuthToken)
            .where(AuthToken.token_hash == auth.hash_token(expired.token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with pytest.raises(AuthenticationFailed, match="expired"):
        auth.resolve_token(database, expired.token, kind="api")


def test_a_session_carries_a_csrf_token_and_is_not_a_bearer_token(
    database: Database, users: dict[str, Actor]
) -> None:
    session = auth.start_session(database, SETTINGS, "nurse", TEST_PASSWORD)
    resolved = auth.resolve_token(database, session.token, kind="session")
    assert resolved.csrf_token == session.csrf_token
    assert resolved.csrf_token
    with pytest.raises(AuthenticationFailed):
        auth.resolve_token(database, session.token, kind="api")
