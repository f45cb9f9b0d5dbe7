"""One transaction per user action, with the permission check and the audit entry inside."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ketapath.services import audit
from ketapath.services.errors import Conflict, PermissionDenied
from ketapath.services.permissions import Actor, roles_for
from ketapath.store.db import Database


def check(db: Database, actor: Actor, action: str, *, entity: str, **where: object) -> None:
    """Refuse (and audit the refusal) unless the actor's role may perform ``action``.

    This comes before anything is looked up, so a refusal reads the same whether or not the
    record asked for exists; its audit row keeps the ids as asked for (``where``).
    """
    if actor.may(action):
        return
    audit.record_denied(db, actor, action, entity=entity, **where)
    allowed = ", ".join(sorted(roles_for(action)))
    raise PermissionDenied(
        f"Not allowed: '{action}' needs the role {allowed}; you are signed in as a {actor.role}."
    )


@contextmanager
def action(
    db: Database, actor: Actor, name: str, *, entity: str, **where: object
) -> Iterator[Session]:
    """Check permission, then run the body in one transaction.

    A unique-constraint race (two people amending the same version) becomes ``Conflict``.
    """
    check(db, actor, name, entity=entity, **where)
    try:
        with db.transaction() as session:
            yield session
    except IntegrityError as error:
        raise Conflict(
            "The record was changed by someone else at the same time; reload and try again."
        ) from error
