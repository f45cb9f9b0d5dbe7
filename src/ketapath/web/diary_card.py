"""The patient diary card on the order page: make a link (its address shown once, with a copy
button), the links with their state and a button to withdraw each, and the entries as a
table. Kept apart from ``diary_pages`` so that the order page can show it without importing
the pages that render the order page."""

from __future__ import annotations

from typing import Any

from ketapath.config import Settings
from ketapath.services import diary
from ketapath.services.clock import ClinicClock
from ketapath.services.orders import OrderView
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.web.forms import FormErrors

DIARY_DOSE_ROWS = 3
LINK_FIELDS = ("days_valid", "send_to")
LINK_LABELS = {"days_valid": "Days valid", "send_to": "E-mail the link to"}


def link_errors() -> FormErrors:
    """The problems of the form that makes a link, beside its two fields."""
    return FormErrors(LINK_LABELS)


def order_diary(
    db: Database,
    actor: Actor,
    order: OrderView,
    clock: ClinicClock,
    settings: Settings | None,
    form: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the order page shows of the course's diary (nothing for a role that may not read
    it); ``form`` is the link form just posted (what was typed, its problems, the new link)."""
    if not actor.may("diary.read"):
        return {"diary": None}
    form = form or {}
    return {
        "diary": {
            "links": diary.links_for_order(db, actor, order.id, clock=clock),
            "view": diary.diary_for_order(db, actor, order.id),
            "may_manage": actor.may("diary.manage") and order.status == "signed",
            "form_values": form.get("values") or {"days_valid": str(diary.DEFAULT_DAYS_VALID)},
            "errors": form.get("errors"),
            "issued": form.get("issued"),
            "can_mail": bool(settings and settings.smtp_configured),
            "state_labels": diary.LINK_STATE_LABELS,
            "max_days": diary.MAX_DAYS_VALID,
        }
    }
