"""The protocol chooser: a protocol and its options give the computed course; a physician
signs it (with an override reason where soft limits or screening findings need one).

The course shown is the service's preview; the signature sends back the digest of that
preview, so that what is signed is exactly what was reviewed (the service refuses otherwise).
A course over a hard limit is shown as a refusal with its findings and has no sign button;
neither has a course for a patient whose record does not say consent was given. The facts a
signing physician needs (weight and its date, allergies, side of the pain, pregnancy) are
shown before signing and, frozen, on the order; the order page says whether the order may be
used, and a physician confirms a stale one there.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.signing import dosing_fact_labels
from ketapath.knowledge.clinical import knowledge
from ketapath.services import library, orders
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import Conflict, InvalidInput, OrderRefused, ServiceError
from ketapath.services.orders import PlanRequest, SignRequest
from ketapath.services.permissions import Actor
from ketapath.services.signing import ConfirmRequest
from ketapath.services.validation import validate
from ketapath.store.db import Database
from ketapath.web.pages import PageRoute, PageUser, render, templates
from ketapath.web.patient_pages import patient_context
from ketapath.web.session_links import order_sessions

router = APIRouter(route_class=PageRoute, include_in_schema=False)

SETTING_LABELS = {"clinic": "Day clinic", "ward": "Ward", "icu": "Intensive care"}
WEIGHT_BASIS_LABELS = {
    "actual": "Actual body weight",
    "ideal": "Ideal body weight",
    "adjusted": "Adjusted body weight",
}
FIELD_LABELS = {
    "protocol_id": "Protocol",
    "setting": "Care setting",
    "weight_basis": "Weight basis",
    "concentration_mg_per_ml": "Bag concentration",
    "override_reason": "Reason for override",
    "ladder_steps": "Ladder steps",
    "ladder_steps_mg_per_kg_per_h": "Ladder steps",
    "ladder_ceiling": "Ladder ceiling",
    "ladder_ceiling_mg_per_kg_per_h": "Ladder ceiling",
    "consent": "Consent",
}
# Whether an order may be used (services.signing.OrderChecks.state), in words.
ORDER_STATE_LABELS = {
    "usable": "Usable",
    "stale": "Stale: do not use",
    "no_consent": "No consent: do not use",
    "cancelled": "Cancelled",
}
templates.env.globals["order_state_labels"] = ORDER_STATE_LABELS
templates.env.globals["dosing_fact_words"] = lambda basis: ", ".join(dosing_fact_labels(basis))


def chooser_options(db: Database, actor: Actor, protocol_id: str = "") -> dict[str, Any]:
    """What the chooser offers: every protocol, the settings, and only the strengths the
    active drug library stocks (for the chosen protocol's route, once one is chosen)."""
    kb = knowledge()
    chosen = next((p for p in kb.protocols.entries if p.id == protocol_id), None)
    return {
        "protocols": kb.protocols.entries,
        "settings": SETTING_LABELS,
        "weight_bases": WEIGHT_BASIS_LABELS,
        "strengths": library.stocked_strengths(db, actor, chosen.route if chosen else None),
    }


def _choice(
    protocol_id: str,
    setting: str,
    weight_basis: str,
    concentration_mg_per_ml: str,
    ladder_steps: str = "",
    ladder_ceiling: str = "",
) -> dict[str, Any]:
    """The form's text as the service's request fields (empty means the protocol's default).

    Ladder steps are written as in the command line: numbers separated by commas or spaces.
    """
    steps = [part for part in ladder_steps.replace(",", " ").split() if part]
    return {
        "protocol_id": protocol_id.strip(),
        "setting": setting.strip() or None,
        "weight_basis": weight_basis.strip() or None,
        "concentration_mg_per_ml": concentration_mg_per_ml.strip() or None,
        "ladder_steps_mg_per_kg_per_h": steps or None,
        "ladder_ceiling_mg_per_kg_per_h": ladder_ceiling.strip() or None,
    }


def _field_label(field: str | None) -> str:
    name = (field or "").split("[")[0]
    return FIELD_LABELS.get(name, field or "input")


def _preview(
    db: Database, actor: Actor, patient_id: int, choice: dict[str, Any], clock: ClinicClock
) -> dict[str, Any]:
    """The preview, or the refusal / input error to show in its place."""
    out: dict[str, Any] = {"preview": None, "refusal": None, "input_error": None}
    if not choice["protocol_id"]:
        return out
    try:
        request = validate(PlanRequest, choice)
        out["preview"] = orders.preview_course(db, actor, patient_id, request, clock=clock)
    except OrderRefused as error:
        out["refusal"] = {"message": error.message, "findings": error.details.get("findings", [])}
    except InvalidInput as error:
        out["input_error"] = {
            "field": error.field,
            "label": _field_label(error.field),
            "message": error.message.removeprefix(f"{error.field}: "),
        }
    return out


def labelled(error: ServiceError) -> str:
    """The error's message with the form's label for the field it names (not its code name)."""
    label = FIELD_LABELS.get((error.field or "").split("[")[0])
    prefix = f"{error.field}: "
    if label and error.message.startswith(prefix):
        return f"{label}: {error.message.removeprefix(prefix)}"
    return error.message


def _course_context(
    db: Database,
    actor: Actor,
    patient_id: int,
    choice: dict[str, Any],
    clock: ClinicClock,
    sign_error: ServiceError | None = None,
    reason: str = "",
) -> dict[str, Any]:
    context = patient_context(db, actor, patient_id)
    context.update(chooser_options(db, actor, choice["protocol_id"]))
    context.update(_preview(db, actor, patient_id, choice, clock))
    chosen = next((p for p in context["protocols"] if p.id == choice["protocol_id"]), None)
    context.update(
        {
            "chosen": chosen,
            "choice": choice,
            "ladder_steps": " ".join(choice["ladder_steps_mg_per_kg_per_h"] or []),
            "ladder_ceiling": choice["ladder_ceiling_mg_per_kg_per_h"] or "",
            "sign_error": sign_error,
            "sign_message": labelled(sign_error) if sign_error else "",
            "reason": reason,
            "may_sign": actor.may("order.sign"),
            "orders": (
                orders.list_orders(db, actor, patient_id, clock=clock)
                if actor.may("order.read")
                else []
            ),
        }
    )
    preview = context["preview"]
    screening = preview.screening if preview else None
    context["needs_reason"] = bool(
        preview and (preview.soft_codes or (screening and screening.gating_codes))
    )
    return context


@router.get("/patients/{patient_id}/plan", response_class=HTMLResponse)
def plan_page(
    request: Request,
    patient_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    protocol_id: Annotated[str, Query(max_length=80)] = "",
    setting: Annotated[str, Query(max_length=20)] = "",
    weight_basis: Annotated[str, Query(max_length=20)] = "",
    concentration_mg_per_ml: Annotated[str, Query(max_length=20)] = "",
    ladder_steps: Annotated[str, Query(max_length=200)] = "",
    ladder_ceiling: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    choice = _choice(
        protocol_id, setting, weight_basis, concentration_mg_per_ml, ladder_steps, ladder_ceiling
    )
    context = _course_context(db, actor, patient_id, choice, clock)
    if request.headers.get("HX-Target") == "course-panel":
        return render(request, "_course.html", {**context, "panel_only": True})
    return render(request, "plan.html", context)


@router.post("/patients/{patient_id}/orders", response_model=None)
def sign_course(
    request: Request,
    patient_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    protocol_id: Annotated[str, Form(max_length=80)] = "",
    setting: Annotated[str, Form(max_length=20)] = "",
    weight_basis: Annotated[str, Form(max_length=20)] = "",
    concentration_mg_per_ml: Annotated[str, Form(max_length=20)] = "",
    ladder_steps: Annotated[str, Form(max_length=200)] = "",
    ladder_ceiling: Annotated[str, Form(max_length=20)] = "",
    course_digest: Annotated[str, Form(max_length=64)] = "",
    patient_version: Annotated[str, Form(max_length=10)] = "",
    override_reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    choice = _choice(
        protocol_id, setting, weight_basis, concentration_mg_per_ml, ladder_steps, ladder_ceiling
    )
    try:
        sign = validate(
            SignRequest,
            {
                **choice,
                "override_reason": override_reason.strip() or None,
                "course_digest": course_digest or None,
                "patient_version": patient_version or None,
            },
        )
        order = orders.sign_order(db, actor, patient_id, sign, clock=clock)
    except (OrderRefused, Conflict, InvalidInput) as error:
        context = _course_context(db, actor, patient_id, choice, clock, error, override_reason)
        return render(request, "plan.html", context, status_code=error.status_code)
    return RedirectResponse(f"/orders/{order.id}", status_code=303)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(
    request: Request, order_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> HTMLResponse:
    return render_order_page(request, db, actor, order_id, clock)


def render_order_page(
    request: Request,
    db: Database,
    actor: Actor,
    order_id: int,
    clock: ClinicClock,
    confirm_error: ServiceError | None = None,
    reason: str = "",
    *,
    schedule: Any = None,
    status_code: int | None = None,
) -> HTMLResponse:
    """The order page; ``confirm_error`` or ``schedule`` (a refused scheduling form, from
    ``session_pages``) shown again with what was typed."""
    order = orders.get_order(db, actor, order_id, clock=clock)
    context = patient_context(db, actor, order.patient_id)
    context.update(
        {
            "order": order,
            "course": order.course,
            "settings": SETTING_LABELS,
            "confirm_error": confirm_error,
            "confirm_reason": reason,
            "schedule": schedule,
        }
    )
    context.update(order_sessions(db, actor, order, clock))
    if status_code is None:
        status_code = confirm_error.status_code if confirm_error else 200
        if schedule is not None:
            status_code = 422
    return render(request, "order.html", context, status_code=status_code)


@router.post("/orders/{order_id}/confirm", response_model=None)
def confirm_order(
    request: Request,
    order_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
    patient_version: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """A physician confirms a stale order at the record's current facts, with a reason."""
    try:
        body = validate(
            ConfirmRequest,
            {"reason": reason.strip(), "patient_version": patient_version or None},
        )
        orders.confirm_order(db, actor, order_id, body, clock=clock)
    except (OrderRefused, Conflict, InvalidInput) as error:
        return render_order_page(request, db, actor, order_id, clock, error, reason)
    return RedirectResponse(f"/orders/{order_id}", status_code=303)


@router.post("/orders/{order_id}/cancel", response_model=None)
def cancel_order(
    order_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> RedirectResponse:
    orders.cancel_order(db, actor, order_id, reason=reason)
    return RedirectResponse(f"/orders/{order_id}", status_code=303)
