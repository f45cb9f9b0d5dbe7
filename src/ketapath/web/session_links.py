"""Infusion sessions where other pages show them: on a signed order (scheduling) and on the
patient page (every session and the lifetime dose). Kept apart from ``session_pages`` so the
order and patient pages can use it without importing the chart's pages."""

from __future__ import annotations

from typing import Any

from ketapath.services import sessions
from ketapath.services.clock import ClinicClock
from ketapath.services.orders import OrderView, refuse_unusable
from ketapath.services.permissions import Actor
from ketapath.services.signing import OrderNotUsable
from ketapath.store.db import Database


def why_not_usable(order: OrderView) -> str:
    """Why a signed order cannot be used now (scheduled, checked in, started), or ''."""
    try:
        refuse_unusable(order)
    except OrderNotUsable as error:
        return error.message.split(": ", 1)[1] if error.field else error.message
    return ""


def order_sessions(
    db: Database, actor: Actor, order: OrderView, clock: ClinicClock
) -> dict[str, Any]:
    """What the order page shows about the order's sessions: those scheduled, or whether
    (and why not) they can be scheduled now."""
    if not actor.may("session.read"):
        return {"order_sessions": None}
    scheduled = [
        s
        for s in sessions.patient_sessions(db, actor, order.patient_id, clock=clock).sessions
        if s.order_id == order.id
    ]
    return {
        "order_sessions": scheduled,
        "schedule_blocked": why_not_usable(order),
        "may_schedule": actor.may("session.schedule"),
        "today": clock.today(),
    }


def patient_sessions(
    db: Database, actor: Actor, patient_id: int, clock: ClinicClock
) -> dict[str, Any]:
    """The patient's sessions (every course) and the ketamine given over all of them."""
    if not actor.may("session.read"):
        return {"sessions": None}
    found = sessions.patient_sessions(db, actor, patient_id, clock=clock)
    return {
        "sessions": found,
        "scheduled_orders": {s.order_id for s in found.sessions},
    }
