"""The protocol chooser: a protocol and its options give the computed course; a physician
signs it (with an override reason where soft limits or screening findings need one).

The course shown is the service's preview; the signature sends back the digest of that
preview, so that what is signed is exactly what was reviewed (the service refuses otherwise).
A course over a hard limit is shown as a refusal with its findings and has no sign button;
neither has a course for a patient whose record does not say consent was given. The facts a
signing physician needs (weight and its date, allergies, side of the pain, pregnancy) are
shown before signing and, frozen, on the order; the order page says whether the order may be
used, and a physician confirms a stale one there. Both pages show the predicted exposure of
one session of the course for this patient (``exposure_charts``), with the model chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.signing import dosing_fact_labels
from ketapath.knowledge.clinical import knowledge
from ketapath.services import exposure, library, orders
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import Conflict, InvalidInput, OrderRefused, ServiceError
from ketapath.services.exposure import ExposureOptions, SessionExposureView
from ketapath.services.orders import PlanRequest, SignRequest
from ketapath.services.permissions import Actor
from ketapath.services.signing import ConfirmRequest
from ketapath.services.unit import check
from ketapath.services.validation import REASON_LENGTH, validate
from ketapath.store.db import Database
from ketapath.web.assessment_pages import course_assessments
from ketapath.web.diary_card import order_diary
from ketapath.web.exposure_charts import exposure_panel
from ketapath.web.forms import FormErrors, submit, validated
from ketapath.web.indicator_pages import IndicatorsForm, order_indicators
from ketapath.web.letter_pages import order_letters
from ketapath.web.pages import PageRoute, PageUser, posted_form, render, templates
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
    "concentration_mg_per_ml": "Bag concentration",
    "weight_basis": "Weight basis",
    "ladder_steps": "Ladder steps",
    "ladder_ceiling": "Ladder ceiling",
    "ladder_ceiling_mg_per_kg_per_h": "Ladder ceiling",
    "consent": "Consent",
    "session": "Session shown",
    "model": "PK model",
    "override_reason": "Reason for override",
}
# The chooser's fields, in the form's order.
CHOOSER_FIELDS = (
    "protocol_id",
    "setting",
    "weight_basis",
    "concentration_mg_per_ml",
    "ladder_steps",
    "ladder_ceiling",
)
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


CHOOSER_PATHS = {
    "ladder_steps_mg_per_kg_per_h": "ladder_steps",
    "ladder_ceiling_mg_per_kg_per_h": "ladder_ceiling",
}


def order_errors(*fields: str) -> FormErrors:
    """Problems of the chooser (no ``fields``), or of a form of the order pages whose own
    fields are ``fields`` (their ids): a problem of the service's request is then shown in
    the summary, named by the chooser's label."""
    labels = {name: FIELD_LABELS[name] for name in CHOOSER_FIELDS}
    labels.update({name: FIELD_LABELS.get(name, name) for name in fields})

    def chooser_field(path: str) -> str:
        name = path.split("[")[0].split(".")[0]
        return CHOOSER_PATHS.get(name, name)

    def where(path: str) -> str:
        name = chooser_field(path)
        return name if name in labels and (name in fields or not fields) else ""

    def label(path: str, field: str) -> str:
        return "" if field else labels.get(chooser_field(path), "")

    return FormErrors(labels, where=where, path_label=label)


def _preview(
    db: Database, actor: Actor, patient_id: int, choice: dict[str, Any], clock: ClinicClock
) -> dict[str, Any]:
    """The preview, or the refusal / the chooser's problems to show in its place."""
    out: dict[str, Any] = {"preview": None, "refusal": None, "chooser_errors": None}
    if not choice["protocol_id"]:
        return out
    errors = order_errors()
    request = validated(errors, PlanRequest, choice)
    try:
        if request is not None:
            out["preview"] = orders.preview_course(db, actor, patient_id, request, clock=clock)
    except OrderRefused as error:
        out["refusal"] = {"message": error.message, "findings": error.details.get("findings", [])}
    except InvalidInput as error:
        errors.add_error(error)
    out["chooser_errors"] = errors or None
    return out


def labelled(error: ServiceError) -> str:
    """The error's message with the form's label for the field it names (not its code name)."""
    label = FIELD_LABELS.get((error.field or "").split("[")[0])
    prefix = f"{error.field}: "
    if label and error.message.startswith(prefix):
        return f"{label}: {error.message.removeprefix(prefix)}"
    return error.message


def _exposure(
    actor: Actor,
    compute: Callable[[ExposureOptions], SessionExposureView],
    course: dict[str, Any],
    session_text: str,
    model_text: str,
) -> dict[str, Any] | None:
    """The exposure panel for one session of ``course`` (None when the role may not see it);
    an input the service refuses is shown in the panel, not instead of the page."""
    if not actor.may("exposure.read"):
        return None
    sessions = len(course.get("sessions") or [])
    requested = model_text.strip()
    try:
        options = validate(
            ExposureOptions, {"session": session_text.strip() or 1, "model": requested or None}
        )
        view = compute(options)
    except InvalidInput as error:
        return exposure_panel(
            None, sessions=sessions, session=1, requested_model="", error=labelled(error)
        )
    return exposure_panel(
        view, sessions=sessions, session=options.session, requested_model=requested
    )


def _course_context(
    db: Database,
    actor: Actor,
    patient_id: int,
    choice: dict[str, Any],
    clock: ClinicClock,
    sign_errors: FormErrors | None = None,
    reason: str = "",
    exposure_session: str = "",
    exposure_model: str = "",
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
            "sign_errors": sign_errors,
            "reason": reason,
            "reason_length": REASON_LENGTH,
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
    context["soft_findings"] = (
        [f for f in preview.course.get("findings", []) if f.get("severity") == "soft"]
        if preview
        else []
    )
    context["needs_reason"] = bool(
        preview and (preview.soft_codes or (screening and screening.gating_codes))
    )
    context["exposure"] = (
        _exposure(
            actor,
            lambda options: exposure.preview_exposure(db, actor, preview, options, clock=clock),
            preview.course,
            exposure_session,
            exposure_model,
        )
        if preview is not None
        else None
    )
    context["exposure_hidden"] = {
        "protocol_id": choice["protocol_id"],
        "setting": choice["setting"],
        "weight_basis": choice["weight_basis"],
        "concentration_mg_per_ml": choice["concentration_mg_per_ml"],
        "ladder_steps": context["ladder_steps"],
        "ladder_ceiling": context["ladder_ceiling"],
    }
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
    exposure_session: Annotated[str, Query(max_length=10)] = "",
    exposure_model: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    choice = _choice(
        protocol_id, setting, weight_basis, concentration_mg_per_ml, ladder_steps, ladder_ceiling
    )
    context = _course_context(
        db,
        actor,
        patient_id,
        choice,
        clock,
        exposure_session=exposure_session,
        exposure_model=exposure_model,
    )
    if request.headers.get("HX-Target") == "course-panel":
        return render(request, "_course.html", {**context, "panel_only": True})
    return render(request, "plan.html", context)


SIGN_FIELDS = (*CHOOSER_FIELDS, "course_digest", "patient_version", "override_reason")


@router.post("/patients/{patient_id}/orders", response_model=None)
async def sign_course(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_sign, request, db, actor, patient_id, clock, posted)


def _sign(
    request: Request,
    db: Database,
    actor: Actor,
    patient_id: int,
    clock: ClinicClock,
    posted: dict[str, str],
) -> Response:
    check(db, actor, "order.sign", entity="order", patient_id=patient_id)
    form = {name: posted.get(name, "") for name in SIGN_FIELDS}
    choice = _choice(*(form[name] for name in CHOOSER_FIELDS))
    reason = form["override_reason"]
    errors = order_errors("override_reason")
    errors.limit(form, "override_reason", REASON_LENGTH)
    sign = validated(
        errors,
        SignRequest,
        {
            **choice,
            "override_reason": reason.strip() or None,
            "course_digest": form["course_digest"] or None,
            "patient_version": form["patient_version"] or None,
        },
    )

    def again(status_code: int) -> Response:
        context = _course_context(db, actor, patient_id, choice, clock, errors, reason)
        return render(request, "plan.html", context, status_code=status_code)

    return submit(
        errors,
        sign,
        lambda data: orders.sign_order(db, actor, patient_id, data, clock=clock),
        lambda order: f"/orders/{order.id}",
        again,
        refusals=(OrderRefused, Conflict, InvalidInput),
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(
    request: Request,
    order_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    exposure_session: Annotated[str, Query(max_length=10)] = "",
    exposure_model: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    return render_order_page(
        request,
        db,
        actor,
        order_id,
        clock,
        exposure_session=exposure_session,
        exposure_model=exposure_model,
    )


def accepted_findings(order: orders.OrderView) -> list[dict[str, str]]:
    """What the physician's override accepted, in words: each code's message in the signed
    course, or else what the finding catalogue says the code means; the code stays for the
    tooltip."""
    messages = {f.get("code"): f.get("message") for f in order.course.get("findings") or []}
    catalogue = knowledge().finding_codes.entries
    accepted = []
    for part, codes in (order.override_codes or {}).items():
        for code in codes or []:
            meaning = messages.get(code) or next(
                (
                    c.meaning
                    for c in catalogue
                    if c.code == code or (c.is_family and code.startswith(c.family + ":"))
                ),
                "a finding ketapath no longer lists: check the signed course",
            )
            accepted.append({"part": part, "message": str(meaning), "code": str(code)})
    return accepted


def render_order_page(
    request: Request,
    db: Database,
    actor: Actor,
    order_id: int,
    clock: ClinicClock,
    *,
    confirm_errors: FormErrors | None = None,
    confirm_reason: str = "",
    cancel_errors: FormErrors | None = None,
    cancel_reason: str = "",
    schedule: Any = None,
    diary_form: dict[str, Any] | None = None,
    status_code: int | None = None,
    exposure_session: str = "",
    exposure_model: str = "",
    indicators_form: IndicatorsForm | None = None,
) -> HTMLResponse:
    """The order page; a refused confirmation, cancellation or ``schedule`` (a scheduling form, from
    ``session_pages``) shown again with what was typed; ``diary_form`` is the diary link form
    just posted (``diary_pages``), with the new link's address to show once."""
    order = orders.get_order(db, actor, order_id, clock=clock)
    context = patient_context(db, actor, order.patient_id)
    context.update(
        {
            "order": order,
            "course": order.course,
            "settings": SETTING_LABELS,
            "accepted": accepted_findings(order),
            "confirm_errors": confirm_errors,
            "confirm_reason": confirm_reason,
            "cancel_errors": cancel_errors,
            "cancel_reason": cancel_reason,
            "reason_length": REASON_LENGTH,
            "schedule": schedule,
            "exposure": _exposure(
                actor,
                lambda options: exposure.order_exposure(db, actor, order_id, options, clock=clock),
                order.course,
                exposure_session,
                exposure_model,
            ),
        }
    )
    context.update(order_sessions(db, actor, order, clock))
    context.update(course_assessments(db, actor, order.id))
    context.update(order_indicators(db, actor, order, indicators_form))
    settings = getattr(request.app.state, "settings", None)
    context.update(order_diary(db, actor, order, clock, settings, diary_form))
    context.update(order_letters(db, actor, order))
    if status_code is None:
        status_code = 422 if schedule is not None else 200
    return render(request, "order.html", context, status_code=status_code)


def reason_errors(field: str, label: str) -> FormErrors:
    """The problems of a form of one reason (its textarea's id ``field``)."""
    return FormErrors({field: label}, where=lambda path: field if path == "reason" else "")


def _reason_form(posted: dict[str, str], field: str, label: str) -> tuple[str, FormErrors]:
    """The reason posted (``reason``) and its problems: required, and not too long."""
    reason = posted.get("reason", "")
    errors = reason_errors(field, label)
    errors.require({field: reason}, field)
    errors.limit({field: reason}, field, REASON_LENGTH)
    return reason, errors


@router.post("/orders/{order_id}/confirm", response_model=None)
async def confirm_order(
    request: Request, order_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    """A physician confirms a stale order at the record's current facts, with a reason."""
    posted = await posted_form(request)
    return await run_in_threadpool(_confirm, request, db, actor, order_id, clock, posted)


def _confirm(
    request: Request,
    db: Database,
    actor: Actor,
    order_id: int,
    clock: ClinicClock,
    posted: dict[str, str],
) -> Response:
    check(db, actor, "order.confirm", entity="order", entity_id=order_id)
    reason, errors = _reason_form(posted, "confirm-reason", "Reason to use the order as signed")
    body = validated(
        errors,
        ConfirmRequest,
        {"reason": reason.strip(), "patient_version": posted.get("patient_version") or None},
    )
    return submit(
        errors,
        body,
        lambda data: orders.confirm_order(db, actor, order_id, data, clock=clock),
        lambda _: f"/orders/{order_id}",
        lambda status_code: render_order_page(
            request,
            db,
            actor,
            order_id,
            clock,
            confirm_errors=errors,
            confirm_reason=reason,
            status_code=status_code,
        ),
        refusals=(OrderRefused, Conflict, InvalidInput),
    )


@router.post("/orders/{order_id}/cancel", response_model=None)
async def cancel_order(
    request: Request, order_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_cancel, request, db, actor, order_id, clock, posted)


def _cancel(
    request: Request,
    db: Database,
    actor: Actor,
    order_id: int,
    clock: ClinicClock,
    posted: dict[str, str],
) -> Response:
    check(db, actor, "order.cancel", entity="order", entity_id=order_id)
    reason, errors = _reason_form(posted, "cancel-reason", "Reason for cancelling")
    return submit(
        errors,
        reason,
        lambda given: orders.cancel_order(db, actor, order_id, reason=given),
        lambda _: f"/orders/{order_id}",
        lambda status_code: render_order_page(
            request,
            db,
            actor,
            order_id,
            clock,
            cancel_errors=errors,
            cancel_reason=reason,
            status_code=status_code,
        ),
        refusals=(InvalidInput, Conflict),
    )
