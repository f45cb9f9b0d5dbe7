"""The infusion day in the browser (PRODUCT step 7, issue 10): the nurse's worklist, the clinic
board, scheduling a signed course, and the session's chart.

The pages call ``services.sessions`` and show what its replay of the chart says: the state,
the actions allowed now (and those a rule holds back, with why), the pump programme from the
signed order and the drug library, the delivered dose, the prompts of the rules with their
sources and acknowledgements, observations due, the discharge score and readiness. Nothing
clinical is decided here: a form is turned into a chart entry (``web.session_forms``) and the
service accepts or refuses it; a refusal is shown beside the field it names, with what was
typed kept.

Every chart form carries ``expected_seq``, the last entry the page showed. When someone else
charted meanwhile, an observation still lands (the page then says what else was charted); a
change of state is refused by the service and the page shows the fresh chart with what
changed, the form kept for a second look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.session_events import NOTE_LENGTH, ProgrammeStep
from ketapath.domain.session_view import (
    KIND_WORDS,
    STATE_WORDS,
    BlockedAction,
    Prompt,
    SessionView,
)
from ketapath.knowledge.clinical import knowledge
from ketapath.services import exposure, exposure_summary, sessions
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import Conflict, InvalidInput, ServiceError
from ketapath.services.permissions import PHYSICIAN, Actor
from ketapath.services.sessions import (
    ChartResult,
    ChartWrite,
    Correction,
    ScheduleRequest,
    SessionDetail,
    SessionSummary,
    StoredEntry,
    VoidRequest,
)
from ketapath.services.signing import OrderNotUsable
from ketapath.services.validation import MAX_RECORD_ID, REASON_LENGTH
from ketapath.store.db import Database
from ketapath.web.exposure_charts import comparison_panel, summary_panel
from ketapath.web.ledger_forms import PostedForm, session_card
from ketapath.web.order_pages import render_order_page
from ketapath.web.pages import (
    PageRoute,
    PageUser,
    clinic_zone,
    error_page,
    format_time,
    number,
    posted_form,
    render,
)
from ketapath.web.patient_pages import patient_context
from ketapath.web.session_forms import (
    FORM_KINDS,
    FormState,
    add_service_error,
    add_validation_errors,
    entry_from_form,
    form_helpers,
    form_values,
    required_at_check_in,
)
from ketapath.web.session_views import (
    ENTRY_WORDS,
    LEVELS,
    PAUSE_REASONS,
    PREGNANCY_TESTS,
    SEVERITIES,
    STOP_REASONS,
    TROUBLESOME,
    VITAL_LABELS,
    latest_of,
    log_lines,
    session_charts,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

SeqQuery = Annotated[int | None, Query(ge=0, le=MAX_RECORD_ID)]
# What the controlled-drug card says after its forms were saved.
LEDGER_SAVED = {
    "dispense": "Dispensed: the bag is recorded in the controlled-drug ledger.",
    "waste": "Wasted: the remainder is recorded with its witness, beside the dose the chart gave.",
}
PromptId = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[a-z0-9-]+$")]

# ------------------------------------------------------------------ the worklist and the board


@dataclass(frozen=True)
class WorklistRow:
    """A session of the day and what to do next for it."""

    session: SessionSummary
    next_step: str


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def next_step(summary: SessionSummary, zone: tzinfo | None) -> str:
    """What the nurse does next for a session, in words (from its replayed state)."""
    due = summary.next_observation_due
    due_text = f"observations due {format_time(due, zone, '%H:%M')}" if due else ""
    words = {
        "scheduled": "Check the patient in",
        "checked_in": "Start the infusion",
        "running": _first_upper(due_text or "observe"),
        "paused": f"Paused: resume or stop; {due_text}".rstrip("; "),
        "stopped": "Begin the observation period",
        "completed": "Begin the observation period",
        "observation": "Discharge when the criteria are met",
    }
    text = words.get(summary.state, _first_upper(STATE_WORDS.get(summary.state, summary.state)))
    if summary.alerts:
        count = len(summary.alerts)
        text += f" ({count} prompt{'s' if count > 1 else ''} to answer)"
    return text


@router.get("/sessions", response_class=HTMLResponse)
def worklist_page(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    on: Annotated[date | None, Query()] = None,
    chair: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """The day's sessions (the clinic's today by default), by chair, with what to do next."""
    day = on or clock.today()
    found = sessions.worklist(db, actor, on=day, clock=clock)
    zone = clinic_zone(request)
    chair = chair.strip()
    rows = [WorklistRow(s, next_step(s, zone)) for s in found if not chair or s.chair == chair]
    context = {
        "day": day,
        "today": clock.today(),
        "chair": chair,
        "chairs": sorted({s.chair for s in found}),
        "rows": rows,
        "may_chart": actor.may("session.chart"),
    }
    return render(request, "sessions.html", context)


@router.get("/sessions/board", response_class=HTMLResponse)
def board_page(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    on: Annotated[date | None, Query()] = None,
) -> HTMLResponse:
    """Every chair of the clinic: patient, state, rate, next observations, alerts. It asks
    for itself again every minute (htmx; a meta refresh without scripts)."""
    board = sessions.board(db, actor, on=on, clock=clock)
    context = {"board": board, "today": clock.today(), "on": on}
    partial = request.headers.get("HX-Request") == "true"
    return render(request, "_board_chairs.html" if partial else "board.html", context)


# ------------------------------------------------------------------ scheduling a course


@router.post("/orders/{order_id}/sessions", response_model=None)
async def schedule_course(
    request: Request, order_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    """Schedule every session of a signed course from a first date, in a chair."""
    form = await posted_form(request)
    return await run_in_threadpool(_schedule, request, db, actor, order_id, clock, form)


def _schedule(
    request: Request,
    db: Database,
    actor: Actor,
    order_id: int,
    clock: ClinicClock,
    form: dict[str, str],
) -> Response:
    state = FormState(kind="schedule", values=form)
    data = {"first_date": form.get("first_date", "").strip(), "chair": form.get("chair", "")}
    data = {k: v.strip() for k, v in data.items() if v.strip()}
    try:
        request_body = ScheduleRequest.model_validate(data)
    except ValidationError as error:
        add_validation_errors(state, error, tagged=False)
        return render_order_page(request, db, actor, order_id, clock, schedule=state)
    try:
        scheduled = sessions.schedule_course(db, actor, order_id, request_body, clock=clock)
    except (InvalidInput, Conflict, OrderNotUsable) as error:
        if error.field in ("first_date", "chair"):
            state.errors[error.field] = error.message.removeprefix(f"{error.field}: ")
        else:
            state.message = error.message.split(": ", 1)[-1] if error.field else error.message
        return render_order_page(
            request, db, actor, order_id, clock, schedule=state, status_code=error.status_code
        )
    first = scheduled[0].id if scheduled else None
    target = f"/sessions/{first}" if first is not None else f"/orders/{order_id}"
    return RedirectResponse(f"{target}?scheduled={len(scheduled)}", status_code=303)


# ------------------------------------------------------------------ the session page


def _open(prompts: list[Prompt], code: str) -> list[Prompt]:
    return [p for p in prompts if p.code == code]


def _stop_default(prompts: list[Prompt]) -> str:
    """The stop reason a stop prompt names (its side effect), for the stop form."""
    for prompt in _open(prompts, "session:stop-infusion"):
        for effect in ("dissociation", "amnesia"):
            if prompt.message.lower().startswith(effect):
                return effect
        return "side_effect"
    return ""


def _step_label(step: ProgrammeStep) -> str:
    mg, ml = number(step.rate_mg_per_h, 3), number(step.rate_ml_per_h, 3)
    return f"Step {step.number}: {mg} mg/h = {ml} mL/h"


# Entries that use the signed order: held while it cannot be used (stale, cancelled, no
# consent); the service refuses them too.
USES_ORDER = ("check_in", "start", "resume")


def _actions(view: SessionView, actor: Actor, order_problem: str | None) -> dict[str, Any]:
    """Which forms the page shows: the kinds the chart allows now, and those a rule holds
    back that a physician may still chart (a physician signed in sees them)."""
    allowed = set(view.allowed_actions)
    held: dict[str, BlockedAction] = {b.kind: b for b in view.blocked_actions}
    if order_problem:
        for kind in USES_ORDER:
            if kind in allowed:
                allowed.discard(kind)
                held[kind] = BlockedAction(
                    kind=kind,
                    reason=f"the order cannot be used now: {order_problem}",
                    physician_may=False,
                )
    may_chart = actor.may("session.chart")
    physician = actor.role == PHYSICIAN

    def shown(kind: str) -> bool:
        if not may_chart:
            return False
        block = held.get(kind)
        if kind in allowed:
            return True
        return bool(block and block.physician_may and physician)

    return {
        "can": {kind: shown(kind) for kind in (*FORM_KINDS, "acknowledge")},
        "held": {kind: b.reason for kind, b in held.items()},
        "override": {kind for kind in held if kind not in allowed},
        "may_chart": may_chart,
        "physician": physician,
    }


def _focus(view: SessionView, can: dict[str, bool], form: FormState | None) -> tuple[str, str]:
    """The field the cursor starts in: the first refused field, else check-in, else a new
    set of observations (so a nurse types the numbers at once)."""
    if form is not None and form.failed:
        first = next(iter(form.errors), "")
        return form.kind, first
    if view.state == "scheduled" and can.get("check_in"):
        return "check_in", "consent_confirmed"
    if can.get("vitals"):
        return "vitals", "heart_rate"
    return "", ""


def _saved_notice(
    log: list[StoredEntry], saved: int | None, seen: int | None, actor: Actor
) -> dict[str, Any] | None:
    if saved is None:
        return None
    entry = next((e for e in log if e.seq == saved), None)
    if entry is None:
        return None
    others = [
        e
        for e in log
        if seen is not None and seen < e.seq < saved and e.recorded_by != actor.username
    ]
    return {"entry": entry, "words": ENTRY_WORDS.get(entry.kind, entry.kind), "others": others}


def chart_context(
    request: Request,
    detail: SessionDetail,
    log: list[StoredEntry],
    actor: Actor,
    clock: ClinicClock,
    form: FormState | None = None,
) -> dict[str, Any]:
    """What the session page shows (besides the patient): the chart as replayed, the forms
    allowed now, the prompts, the plots and the log."""
    view = detail.chart
    zone = clinic_zone(request)
    actions = _actions(view, actor, detail.order_problem)
    prompts = [p for p in view.prompts if p.resolved_by != "none"]
    active = [p for p in prompts if p.status != "resolved"]
    active.sort(key=lambda p: (p.status != "open", p.raised_at))
    rules = knowledge().session_rules
    programme = detail.programme
    log = [e for e in log if e.seq <= view.last_seq]
    return {
        "detail": detail,
        "view": view,
        "programme": programme,
        "seq": view.last_seq,
        "day": detail.scheduled_on,
        "active_prompts": active,
        "resolved_prompts": [p for p in prompts if p.status == "resolved"],
        "clock_prompts": [p for p in view.prompts if p.resolved_by == "none"],
        "charts": session_charts(view, zone),
        "log": log_lines(log, actions["may_chart"]),
        "form": form,
        "focus": _focus(view, actions["can"], form),
        "effects": rules.entries,
        "rass": rules.sedation_scale,
        "cadss": rules.dissociation_scale,
        "check_in_required": required_at_check_in(),
        "etco2_needed": bool(view.check_in and view.check_in.high_respiratory_risk),
        "pause_reasons": PAUSE_REASONS,
        "stop_reasons": STOP_REASONS,
        "pregnancy_tests": PREGNANCY_TESTS,
        "severities": SEVERITIES,
        "levels": LEVELS,
        "troublesome_choices": TROUBLESOME,
        "vital_labels": VITAL_LABELS,
        "other_rates": bool(
            programme and any(s.number != view.running_step for s in programme.steps)
        ),
        "bolus_ordered": bool(programme and programme.bolus_mg > 0),
        "rate_choices": [
            (repr(step.rate_ml_per_h), _step_label(step), step.number)
            for step in (programme.steps if programme else [])
        ],
        "pause_default": "side_effect" if _open(active, "session:pause-for-side-effect") else "",
        "stop_default": _stop_default(active),
        "pause_minutes": rules.pause.minutes,
        "rules": rules,
        **actions,
        **form_helpers(form),
    }


def _allergy(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    substance = str(item.get("substance") or "")
    return f"{substance} ({item['reaction']})" if item.get("reaction") else substance


def _patient_facts(context: dict[str, Any]) -> dict[str, Any]:
    """Whether check-in needs a pregnancy result for this patient (the rule of
    ``session_rules.yaml``: female, and the record does not say not applicable)."""
    doc = context["doc"]
    needed = doc.get("sex") == "female" and doc.get("pregnancy") != "not_applicable"
    allergies = [_allergy(a) for a in doc.get("allergies") or []]
    words = "the record: " + (", ".join(a for a in allergies if a) or "no allergies recorded")
    return {"pregnancy_test_needed": needed, "allergy_words": words}


def session_page_response(
    request: Request,
    db: Database,
    actor: Actor,
    session_id: int,
    clock: ClinicClock,
    *,
    form: FormState | None = None,
    conflict_since: int | None = None,
    saved: int | None = None,
    seen: int | None = None,
    scheduled: int | None = None,
    ledger_form: PostedForm | None = None,
    ledger_saved: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The session page, read fresh (after a refusal too: the chart as it is now); with the
    controlled-drug card for a role that reads the ledger (``web.ledger_forms``)."""
    detail = sessions.get_session(db, actor, session_id, clock=clock)
    log = sessions.session_log(db, actor, session_id)
    context = patient_context(db, actor, detail.patient_id)
    context.update(chart_context(request, detail, log, actor, clock, form))
    context.update(_patient_facts(context))
    context.update(
        {
            "conflict": _conflict_notice(log, conflict_since, form),
            "saved": _saved_notice(log, saved, seen, actor),
            "scheduled": scheduled,
            "exposure": _exposure(db, actor, detail, clock),
            **session_card(db, actor, detail, clock, ledger_form),
            "ledger_saved": LEDGER_SAVED.get(ledger_saved or ""),
        }
    )
    return render(request, "session.html", context, status_code=status_code)


def _exposure(
    db: Database, actor: Actor, detail: SessionDetail, clock: ClinicClock
) -> dict[str, Any] | None:
    """The session's exposure as ordered and as given, once it is checked in (None for a
    role that may not read it); an input the engine refuses is said in the panel."""
    if detail.chart.state in ("scheduled", "cancelled", "did_not_attend"):
        return None
    if not actor.may("exposure.read"):
        return None
    try:
        view = exposure.session_exposure(db, actor, detail.id, clock=clock)
    except InvalidInput as error:
        return comparison_panel(None, error.message)
    return {**comparison_panel(view), "summary": _summary(db, actor, detail, clock)}


def _summary(
    db: Database, actor: Actor, detail: SessionDetail, clock: ClinicClock
) -> dict[str, Any]:
    """The session's stored exposure summary (computed and stored on this read if its inputs
    changed; provisional while the pump runs); an input the engine refuses is said."""
    try:
        view = exposure_summary.session_summary(db, actor, detail.id, clock=clock)
    except InvalidInput as error:
        return summary_panel(None, error.message)
    return summary_panel(view)


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
def session_page(
    request: Request,
    session_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    saved: SeqQuery = None,
    seen: SeqQuery = None,
    scheduled: SeqQuery = None,
    ledger: Annotated[Literal["dispense", "waste"] | None, Query()] = None,
) -> HTMLResponse:
    """The chart of one session: what to do now, the prompts, the dose, the plots, the log,
    and what the controlled-drug ledger holds for it."""
    return session_page_response(
        request,
        db,
        actor,
        session_id,
        clock,
        saved=saved,
        seen=seen,
        scheduled=scheduled,
        ledger_saved=ledger,
    )


@router.get("/sessions/{session_id}/live", response_class=HTMLResponse)
def session_live(
    request: Request,
    session_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    seen: SeqQuery = None,
) -> HTMLResponse:
    """The chart's live part (state, rate, dose, observations due, the plots), asked for
    again every minute by the page; it says when someone else has charted since."""
    detail = sessions.get_session(db, actor, session_id, clock=clock)
    view = detail.chart
    context = {
        "detail": detail,
        "view": view,
        "seq": seen if seen is not None else view.last_seq,
        "clock_prompts": [p for p in view.prompts if p.resolved_by == "none"],
        "charts": session_charts(view, clinic_zone(request)),
        "oob": True,
    }
    return render(request, "_session_live.html", context)


# ------------------------------------------------------------------ charting


def _expected_seq(form: dict[str, str]) -> int | None:
    text = form.get("expected_seq", "").strip()
    if not text.isdigit() or len(text) > 10 or int(text) > MAX_RECORD_ID:
        return None
    return int(text)


def _day(form: dict[str, str], clock: ClinicClock) -> date:
    try:
        return date.fromisoformat(form.get("day", "").strip())
    except ValueError:
        return clock.today()


def _conflict_notice(
    log: list[StoredEntry], since: int | None, form: FormState | None
) -> dict[str, Any] | None:
    """What was charted after the entry the refused form had seen, for the page to say."""
    if since is None:
        return None
    kind = form.kind if form is not None else ""
    if kind.startswith("ack-"):
        attempted = "acknowledge the prompt"
    else:
        attempted = KIND_WORDS.get(kind, "chart this")
    return {
        "since": since,
        "attempted": attempted,
        "entries": [
            {"entry": e, "words": ENTRY_WORDS.get(e.kind, e.kind).lower()}
            for e in log
            if e.seq > since
        ],
    }


def _refused(
    request: Request,
    db: Database,
    actor: Actor,
    session_id: int,
    clock: ClinicClock,
    state: FormState,
    error: ServiceError,
    expected: int,
    render_page: Any = None,
) -> HTMLResponse:
    """The page again after a service refused a form: beside the field it names, or, when
    the chart moved on, above the fresh chart."""
    page = render_page or session_page_response
    if isinstance(error, Conflict) and error.field == "expected_seq":
        return page(
            request,
            db,
            actor,
            session_id,
            clock,
            form=state,
            conflict_since=expected,
            status_code=409,
        )
    add_service_error(state, error)
    return page(request, db, actor, session_id, clock, form=state, status_code=error.status_code)


def _saved(session_id: int, result: ChartResult, expected: int) -> RedirectResponse:
    """After a saved entry: the chart again, saying what was saved (and what others charted
    since the page was read)."""
    return RedirectResponse(
        f"/sessions/{session_id}?saved={result.seq}&seen={expected}", status_code=303
    )


@router.post("/sessions/{session_id}/entries", response_model=None)
async def chart_entry(
    request: Request, session_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    """Chart one entry from the page's forms (the ``kind`` field says which)."""
    form = await posted_form(request)
    return await run_in_threadpool(_chart_entry, request, db, actor, session_id, clock, form)


def _bad_form(request: Request, message: str) -> HTMLResponse:
    return error_page(request, 422, "Please check what was entered", message)


def _chart_entry(
    request: Request,
    db: Database,
    actor: Actor,
    session_id: int,
    clock: ClinicClock,
    form: dict[str, str],
) -> Response:
    kind = form.get("kind", "")
    expected = _expected_seq(form)
    if kind not in FORM_KINDS:
        return _bad_form(request, "kind: the form does not say what it charts.")
    if expected is None:
        return _bad_form(request, "expected_seq: the form does not say which entry you saw last.")
    entry, state = entry_from_form(kind, form, _day(form, clock), clock)
    if entry is None:
        return session_page_response(
            request, db, actor, session_id, clock, form=state, status_code=422
        )
    try:
        write = ChartWrite(expected_seq=expected, entry=entry)
        detail = sessions.chart(db, actor, session_id, write, clock=clock)
    except (InvalidInput, Conflict, OrderNotUsable) as error:
        return _refused(request, db, actor, session_id, clock, state, error, expected)
    return _saved(session_id, detail, expected)


@router.post("/sessions/{session_id}/prompts/{prompt_id}/acknowledge", response_model=None)
async def acknowledge_prompt(
    request: Request,
    session_id: RecordId,
    prompt_id: PromptId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> Response:
    """Acknowledge a prompt now (who and when are recorded), with a note or direction."""
    form = await posted_form(request)
    return await run_in_threadpool(
        _acknowledge, request, db, actor, session_id, prompt_id, clock, form
    )


def _acknowledge(
    request: Request,
    db: Database,
    actor: Actor,
    session_id: int,
    prompt_id: str,
    clock: ClinicClock,
    form: dict[str, str],
) -> Response:
    expected = _expected_seq(form)
    if expected is None:
        return _bad_form(request, "expected_seq: the form does not say which entry you saw last.")
    state = FormState(kind=f"ack-{prompt_id}", values=form)
    note = form.get("note", "").strip()
    if len(note) > NOTE_LENGTH:
        state.add("note", f"At most {NOTE_LENGTH} characters.")
        return session_page_response(
            request, db, actor, session_id, clock, form=state, status_code=422
        )
    try:
        detail = sessions.acknowledge(
            db, actor, session_id, prompt_id, expected_seq=expected, note=note, clock=clock
        )
    except (InvalidInput, Conflict) as error:
        if error.field not in ("expected_seq", "note"):
            error.field = None
        return _refused(request, db, actor, session_id, clock, state, error, expected)
    return _saved(session_id, detail, expected)


# ------------------------------------------------------------------ corrections


def correction_response(
    request: Request,
    db: Database,
    actor: Actor,
    session_id: int,
    clock: ClinicClock,
    *,
    seq: int,
    form: FormState | None = None,
    conflict_since: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The page that corrects (or voids) one entry: the entry as it stands and its form."""
    detail = sessions.get_session(db, actor, session_id, clock=clock)
    log = [e for e in sessions.session_log(db, actor, session_id) if e.seq <= detail.chart.last_seq]
    latest = latest_of(log, seq)
    if latest is None:
        return error_page(request, 404, "Not found", f"seq: the chart has no entry {seq}.")
    lines = {line.entry.seq: line for line in log_lines(log, actor.may("session.chart"))}
    line = lines[latest.seq]
    context = patient_context(db, actor, detail.patient_id)
    context.update(chart_context(request, detail, log, actor, clock, form))
    context.update(_patient_facts(context))
    kind = line.root_kind
    prefill = (
        form_values(latest.entry, detail.scheduled_on, clock, detail.programme)
        if kind in FORM_KINDS and latest.kind != "void"
        else {}
    )
    first_error = next(iter(form.errors), "") if form is not None else ""
    context.update(
        {
            "line": line,
            "target": latest,
            "kind": kind,
            "focus": (form.kind, first_error) if form is not None else (kind, ""),
            "conflict": _conflict_notice(log, conflict_since, form),
            "chain": [entry for entry in log if latest_of(log, entry.seq) is latest],
            **form_helpers(form, prefill, kind),
        }
    )
    return render(request, "session_correct.html", context, status_code=status_code)


@router.get("/sessions/{session_id}/entries/{seq}/correct", response_class=HTMLResponse)
def correct_page(
    request: Request,
    session_id: RecordId,
    seq: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> HTMLResponse:
    """Correct an entry: its form filled in as it stands, and why it is corrected."""
    return correction_response(request, db, actor, session_id, clock, seq=seq)


@router.post("/sessions/{session_id}/entries/{seq}/correct", response_model=None)
async def correct_entry(
    request: Request,
    session_id: RecordId,
    seq: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> Response:
    """Save a correction: a new entry that amends entry ``seq``; the original stays."""
    form = await posted_form(request)
    return await run_in_threadpool(_correct, request, db, actor, session_id, seq, clock, form)


def _correct(
    request: Request,
    db: Database,
    actor: Actor,
    session_id: int,
    seq: int,
    clock: ClinicClock,
    form: dict[str, str],
) -> Response:
    kind = form.get("kind", "")
    expected = _expected_seq(form)
    if kind not in FORM_KINDS or expected is None:
        return _bad_form(request, "kind: the form does not say what it corrects.")

    def again(*args: Any, **kwargs: Any) -> HTMLResponse:
        return correction_response(*args, seq=seq, **kwargs)

    entry, state = entry_from_form(kind, form, _day(form, clock), clock)
    reason = form.get("correction_reason", "").strip()
    if not reason:
        state.add("correction_reason", "Required: say why the entry is corrected.")
    elif len(reason) > REASON_LENGTH:
        state.add("correction_reason", f"At most {REASON_LENGTH} characters.")
    if entry is None or state.failed:
        return again(request, db, actor, session_id, clock, form=state, status_code=422)
    try:
        body = Correction(expected_seq=expected, entry=entry, reason=reason)
        detail = sessions.correct(db, actor, session_id, seq, body, clock=clock)
    except (InvalidInput, Conflict) as error:
        return _refused(request, db, actor, session_id, clock, state, error, expected, again)
    return _saved(session_id, detail, expected)


@router.post("/sessions/{session_id}/entries/{seq}/void", response_model=None)
async def void_entry(
    request: Request,
    session_id: RecordId,
    seq: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> Response:
    """Void an observation entered in error, with a reason; it stays in the log."""
    form = await posted_form(request)
    return await run_in_threadpool(_void, request, db, actor, session_id, seq, clock, form)


def _void(
    request: Request,
    db: Database,
    actor: Actor,
    session_id: int,
    seq: int,
    clock: ClinicClock,
    form: dict[str, str],
) -> Response:
    expected = _expected_seq(form)
    if expected is None:
        return _bad_form(request, "expected_seq: the form does not say which entry you saw last.")

    def again(*args: Any, **kwargs: Any) -> HTMLResponse:
        return correction_response(*args, seq=seq, **kwargs)

    state = FormState(kind="void", values=form)
    reason = form.get("reason", "").strip()
    if not reason or len(reason) > REASON_LENGTH:
        state.add(
            "reason",
            "Required: say why the entry is void."
            if not reason
            else f"At most {REASON_LENGTH} characters.",
        )
        return again(request, db, actor, session_id, clock, form=state, status_code=422)
    try:
        body = VoidRequest(expected_seq=expected, reason=reason)
        detail = sessions.void(db, actor, session_id, seq, body, clock=clock)
    except (InvalidInput, Conflict) as error:
        return _refused(request, db, actor, session_id, clock, state, error, expected, again)
    return _saved(session_id, detail, expected)
