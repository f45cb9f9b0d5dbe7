"""The controlled-drug ledger in the browser (issue 11): the pharmacist's pages (stock and
receipts, counts, discrepancies and losses, a session's reconciliation, the ledger's lines
with their corrections, the reports) and the dispensing and waste steps of the nurse's session
page.

Every rule is in ``ketapath.services.ledger`` (who may do what, what is valid, the arithmetic);
a page reads the form (``web.ledger_forms``), calls one service and shows what it returns. A
refused form is shown again with every problem beside its field and what was typed kept
(never a password). The clinical team reads these pages; a pharmacist manages the stock;
nurses (and pharmacists) dispense and waste; researchers and administrators are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.ledger import CORRECTABLE
from ketapath.services import ledger
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.ledger import (
    CorrectionInput,
    CountInput,
    CountResolutionInput,
    DispenseInput,
    LineView,
    LocationInput,
    LossInput,
    ProductInput,
    ReceiptInput,
    SessionResolutionInput,
    StockLineView,
    WasteInput,
)
from ketapath.services.permissions import Actor
from ketapath.services.unit import check
from ketapath.services.validation import MAX_RECORD_ID, REASON_LENGTH
from ketapath.store.db import Database
from ketapath.web.forms import submit
from ketapath.web.ledger_forms import (
    COUNT_OUTCOMES,
    FORMS,
    LOSS_KINDS,
    PostedForm,
    bag_concentration,
    checked,
    kept,
    stock_options,
)
from ketapath.web.pages import PageRoute, PageUser, posted_form, render
from ketapath.web.session_pages import session_page_response

router = APIRouter(route_class=PageRoute, include_in_schema=False)

Saved = Literal["product", "location", "receipt", "resolved", "correction"]
SeqQuery = Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)]
LINES_SHOWN = 300
RECENT_COUNTS = 20
REPORTS = "/api/v1/ledger/reports"
SAVED_WORDS = {
    "product": "The product is added.",
    "location": "The storage location is added.",
    "receipt": "The receipt is recorded in the ledger.",
    "resolved": "The discrepancy is resolved; the resolution is a new line of the ledger.",
    "correction": "The correction is recorded as a new line; the line it corrects is unchanged.",
}


def _common(actor: Actor, posted: PostedForm | None) -> dict[str, Any]:
    return {
        "posted": posted,
        "may_manage": actor.may("ledger.manage"),
        "may_count": actor.may("ledger.count"),
        "may_report": actor.may("ledger.report"),
        "reason_length": REASON_LENGTH,
        "stock_options": stock_options,
    }


def _status(posted: PostedForm | None) -> int:
    return posted.status_code if posted is not None else 200


def _by_location(lines: list[StockLineView]) -> list[tuple[str, list[StockLineView]]]:
    groups: dict[str, list[StockLineView]] = {}
    for line in lines:
        groups.setdefault(line.location.name, []).append(line)
    return sorted(groups.items())


def _submit(
    kind: str,
    model: type[Any],
    form: dict[str, str],
    call: Callable[[Any], Any],
    again: Callable[[PostedForm], Response],
    done: Callable[[Any], str],
    *,
    name: str | None = None,
    **fixed: Any,
) -> Response:
    """Validate the form, call the service; the page again with every problem, or on. A
    product, location, session or line that the form names and the ledger lacks is a problem
    of the form (422)."""
    data, errors = checked(kind, model, form, name, **fixed)
    return submit(
        errors,
        data,
        call,
        done,
        lambda status_code: again(PostedForm(name or kind, kept(form), errors, status_code)),
        refusals=(InvalidInput, NotFound, Conflict),
        form_refusals=(NotFound,),
    )


# ------------------------------------------------------------------ stock and receipts


def stock_page_response(
    request: Request,
    db: Database,
    actor: Actor,
    clock: ClinicClock,
    posted: PostedForm | None = None,
    saved: str | None = None,
) -> HTMLResponse:
    view = ledger.stock(db, actor, clock=clock)
    context = {
        **_common(actor, posted),
        "stock": view,
        "locations_stock": _by_location(view.lines),
        "saved": SAVED_WORDS.get(saved or ""),
        "forms": FORMS,
        "today": clock.today(),
    }
    return render(request, "ledger.html", context, status_code=_status(posted))


@router.get("/ledger", response_class=HTMLResponse)
def stock_page(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    saved: Annotated[Saved | None, Query()] = None,
) -> HTMLResponse:
    """Every lot in every location: balance, expiry, count due; a pharmacist's forms."""
    return stock_page_response(request, db, actor, clock, saved=saved)


def _stock_form(
    request: Request,
    db: Database,
    actor: Actor,
    clock: ClinicClock,
    kind: str,
    form: dict[str, str],
) -> Response:
    check(db, actor, "ledger.manage", entity="ledger")
    model, call = {
        "product": (ProductInput, lambda data: ledger.add_product(db, actor, data)),
        "location": (LocationInput, lambda data: ledger.add_location(db, actor, data)),
        "receipt": (ReceiptInput, lambda data: ledger.receive(db, actor, data, clock=clock)),
    }[kind]
    return _submit(
        kind,
        model,
        form,
        call,
        lambda posted: stock_page_response(request, db, actor, clock, posted),
        lambda _: f"/ledger?saved={kind}#add-{kind}",
    )


@router.post("/ledger/products", response_model=None)
async def add_product(
    request: Request, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_stock_form, request, db, actor, clock, "product", form)


@router.post("/ledger/locations", response_model=None)
async def add_location(
    request: Request, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_stock_form, request, db, actor, clock, "location", form)


@router.post("/ledger/receipts", response_model=None)
async def receive(request: Request, actor: PageUser, db: DatabaseDep, clock: ClockDep) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_stock_form, request, db, actor, clock, "receipt", form)


# ------------------------------------------------------------------ counts


def counts_page_response(
    request: Request,
    db: Database,
    actor: Actor,
    clock: ClinicClock,
    posted: PostedForm | None = None,
    counted: int | None = None,
) -> HTMLResponse:
    view = ledger.stock(db, actor, clock=clock)
    recent = [x for x in ledger.lines(db, actor, limit=LINES_SHOWN) if x.kind == "count"]
    context = {
        **_common(actor, posted),
        "stock": view,
        "due": [x for x in view.lines if x.count_due],
        "recent": recent[:RECENT_COUNTS],
        "counted": next((x for x in recent if x.seq == counted), None),
    }
    return render(request, "ledger_counts.html", context, status_code=_status(posted))


@router.get("/ledger/counts", response_class=HTMLResponse)
def counts_page(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    counted: SeqQuery = None,
) -> HTMLResponse:
    """The count form (two people), recent counts, and the lots whose count is due."""
    return counts_page_response(request, db, actor, clock, counted=counted)


@router.post("/ledger/counts", response_model=None)
async def record_count(
    request: Request, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_count, request, db, actor, clock, form)


def _count(
    request: Request, db: Database, actor: Actor, clock: ClinicClock, form: dict[str, str]
) -> Response:
    check(db, actor, "ledger.count", entity="ledger")
    settings = request.app.state.settings
    return _submit(
        "count",
        CountInput,
        form,
        lambda data: ledger.count(db, actor, data, clock=clock, settings=settings),
        lambda posted: counts_page_response(request, db, actor, clock, posted),
        lambda line: f"/ledger/counts?counted={line.seq}#count-result",
    )


# ------------------------------------------------------------------ discrepancies and losses


def discrepancies_page_response(
    request: Request,
    db: Database,
    actor: Actor,
    clock: ClinicClock,
    posted: PostedForm | None = None,
    saved: str | None = None,
    loss: int | None = None,
) -> HTMLResponse:
    found = ledger.discrepancies(db, actor, clock=clock)
    recorded = None
    if loss is not None:
        recorded = next(
            (x for x in ledger.lines(db, actor, limit=LINES_SHOWN) if x.seq == loss), None
        )
    stock = ledger.stock(db, actor, clock=clock) if actor.may("ledger.manage") else None
    context = {
        **_common(actor, posted),
        "discrepancies": found,
        "stock_lines": [x for x in stock.lines if x.balance_mg > 0] if stock else [],
        "loss_kinds": LOSS_KINDS,
        "outcomes": COUNT_OUTCOMES,
        "saved": SAVED_WORDS.get(saved or ""),
        "loss_line": recorded if recorded and recorded.kind in ("loss", "theft") else None,
        "loss_finding": (
            ledger.loss_finding(recorded)
            if recorded and recorded.kind in ("loss", "theft")
            else None
        ),
    }
    return render(request, "ledger_discrepancies.html", context, status_code=_status(posted))


@router.get("/ledger/discrepancies", response_class=HTMLResponse)
def discrepancies_page(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    saved: Annotated[Saved | None, Query()] = None,
    loss: SeqQuery = None,
) -> HTMLResponse:
    """Open discrepancies of sessions and counts, each with its resolve form; a loss form."""
    return discrepancies_page_response(request, db, actor, clock, saved=saved, loss=loss)


@router.post("/ledger/sessions/{session_id}/resolve", response_model=None)
async def resolve_session(
    request: Request, session_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_resolve_session, request, db, actor, clock, session_id, form)


def _resolve_session(
    request: Request,
    db: Database,
    actor: Actor,
    clock: ClinicClock,
    session_id: int,
    form: dict[str, str],
) -> Response:
    check(db, actor, "ledger.manage", entity="session", entity_id=session_id)
    from_session = form.get("return_to") == "session"

    def again(posted: PostedForm) -> Response:
        if from_session:
            return reconciliation_response(request, db, actor, clock, session_id, posted)
        return discrepancies_page_response(request, db, actor, clock, posted)

    done = (
        f"/ledger/sessions/{session_id}?saved=resolved"
        if from_session
        else "/ledger/discrepancies?saved=resolved"
    )
    return _submit(
        "resolve-session",
        SessionResolutionInput,
        form,
        lambda data: ledger.resolve_session(db, actor, session_id, data, clock=clock),
        again,
        lambda _: done,
        name=f"resolve-session-{session_id}",
    )


@router.post("/ledger/counts/{seq}/resolve", response_model=None)
async def resolve_count(
    request: Request, seq: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_resolve_count, request, db, actor, clock, seq, form)


def _resolve_count(
    request: Request, db: Database, actor: Actor, clock: ClinicClock, seq: int, form: dict[str, str]
) -> Response:
    check(db, actor, "ledger.manage", entity="ledger_line", entity_id=seq)
    return _submit(
        "resolve-count",
        CountResolutionInput,
        form,
        lambda data: ledger.resolve_count(db, actor, seq, data, clock=clock),
        lambda posted: discrepancies_page_response(request, db, actor, clock, posted),
        lambda line: (
            f"/ledger/discrepancies?loss={line.seq}#loss-recorded"
            if line.kind in ("loss", "theft")
            else "/ledger/discrepancies?saved=resolved"
        ),
        name=f"resolve-count-{seq}",
    )


@router.post("/ledger/losses", response_model=None)
async def record_loss(
    request: Request, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_loss, request, db, actor, clock, form)


def _loss(
    request: Request, db: Database, actor: Actor, clock: ClinicClock, form: dict[str, str]
) -> Response:
    check(db, actor, "ledger.manage", entity="ledger")
    return _submit(
        "loss",
        LossInput,
        form,
        lambda data: ledger.record_loss(db, actor, data, clock=clock),
        lambda posted: discrepancies_page_response(request, db, actor, clock, posted),
        lambda line: f"/ledger/discrepancies?loss={line.seq}#loss-recorded",
    )


# ------------------------------------------------------------------ a session's reconciliation


def reconciliation_response(
    request: Request,
    db: Database,
    actor: Actor,
    clock: ClinicClock,
    session_id: int,
    posted: PostedForm | None = None,
    saved: str | None = None,
) -> HTMLResponse:
    view = ledger.session_ledger(db, actor, session_id, clock=clock)
    context = {
        **_common(actor, posted),
        "session": view,
        "r": view.reconciliation,
        "saved": SAVED_WORDS.get(saved or ""),
    }
    return render(request, "ledger_session.html", context, status_code=_status(posted))


@router.get("/ledger/sessions/{session_id}", response_class=HTMLResponse)
def reconciliation_page(
    request: Request,
    session_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    saved: Annotated[Saved | None, Query()] = None,
) -> HTMLResponse:
    """A session's reconciliation: dispensed = administered + wasted, its lines, witness."""
    return reconciliation_response(request, db, actor, clock, session_id, saved=saved)


# ------------------------------------------------------------------ the ledger's lines


def lines_page_response(
    request: Request,
    db: Database,
    actor: Actor,
    posted: PostedForm | None = None,
    saved: str | None = None,
) -> HTMLResponse:
    found: list[LineView] = ledger.lines(db, actor, limit=LINES_SHOWN)
    context = {
        **_common(actor, posted),
        "lines": found,
        "correctable": CORRECTABLE,
        "limit": LINES_SHOWN,
        "saved": SAVED_WORDS.get(saved or ""),
    }
    return render(request, "ledger_lines.html", context, status_code=_status(posted))


@router.get("/ledger/lines", response_class=HTMLResponse)
def lines_page(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    saved: Annotated[Saved | None, Query()] = None,
) -> HTMLResponse:
    """The ledger, newest line first, with a correction form per correctable line."""
    return lines_page_response(request, db, actor, saved=saved)


@router.post("/ledger/lines/{seq}/correct", response_model=None)
async def correct_line(
    request: Request, seq: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_correct, request, db, actor, clock, seq, form)


def _correct(
    request: Request, db: Database, actor: Actor, clock: ClinicClock, seq: int, form: dict[str, str]
) -> Response:
    check(db, actor, "ledger.manage", entity="ledger_line", entity_id=seq)
    return _submit(
        "correct",
        CorrectionInput,
        form,
        lambda data: ledger.correct(db, actor, seq, data, clock=clock),
        lambda posted: lines_page_response(request, db, actor, posted),
        lambda _: "/ledger/lines?saved=correction",
        name=f"correct-{seq}",
    )


# ------------------------------------------------------------------ reports


@router.get("/ledger/reports", response_class=HTMLResponse)
def reports_page(
    request: Request, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> HTMLResponse:
    """Links to the report downloads (the US inventory and dispensing records, the UK
    register), as small forms that ask the API for the file."""
    view = ledger.stock(db, actor, clock=clock)
    today = clock.today()
    context = {
        **_common(actor, None),
        "products": view.products,
        "today": today,
        "month_start": date(today.year, today.month, 1),
        "reports": REPORTS,
    }
    return render(request, "ledger_reports.html", context)


# ------------------------------------------------------------------ the session page's steps


@router.post("/sessions/{session_id}/ledger/dispense", response_model=None)
async def dispense(
    request: Request, session_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    """Drug taken from a lot for this session, and the bag or syringe made from it."""
    form = await posted_form(request)
    return await run_in_threadpool(
        _session_step, request, db, actor, clock, session_id, "dispense", form
    )


@router.post("/sessions/{session_id}/ledger/waste", response_model=None)
async def waste(
    request: Request, session_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    """What is left in the bag once the infusion has stopped, wasted with a witness."""
    form = await posted_form(request)
    return await run_in_threadpool(
        _session_step, request, db, actor, clock, session_id, "waste", form
    )


def _session_step(
    request: Request,
    db: Database,
    actor: Actor,
    clock: ClinicClock,
    session_id: int,
    kind: str,
    form: dict[str, str],
) -> Response:
    check(db, actor, f"ledger.{kind}", entity="session", entity_id=session_id)
    settings = request.app.state.settings
    if kind == "dispense":
        model: type[Any] = DispenseInput

        def call(data: Any) -> Any:
            return ledger.dispense(db, actor, data, clock=clock)

    else:
        model = WasteInput

        def call(data: Any) -> Any:
            return ledger.waste(db, actor, data, clock=clock, settings=settings)

    def again(posted: PostedForm) -> Response:
        return session_page_response(
            request,
            db,
            actor,
            session_id,
            clock,
            ledger_form=posted,
            status_code=posted.status_code,
        )

    return _submit(
        kind,
        model,
        form,
        call,
        again,
        lambda _: f"/sessions/{session_id}?ledger={kind}#controlled-drug",
        session_id=session_id,
    )


@router.get("/sessions/{session_id}/ledger/concentration", response_class=HTMLResponse)
def concentration(
    request: Request,
    session_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    stock: Annotated[str, Query(max_length=80)] = "",
    volume_ml: Annotated[str, Query(max_length=24)] = "",
    final_volume_ml: Annotated[str, Query(max_length=24)] = "",
    programme: Annotated[float | None, Query(gt=0, le=1000)] = None,
) -> HTMLResponse:
    """The concentration the dispensing form describes, beside the pump programme's (the
    form asks for it as it is filled in; the service checks it when the form is sent)."""
    check(db, actor, "ledger.dispense", entity="session", entity_id=session_id)
    view = ledger.stock(db, actor, clock=clock)
    values = {"stock": stock, "volume_ml": volume_ml, "final_volume_ml": final_volume_ml}
    context = {"bag": bag_concentration(view, values), "programme_mg_per_ml": programme}
    return render(request, "_ledger_concentration.html", context)
