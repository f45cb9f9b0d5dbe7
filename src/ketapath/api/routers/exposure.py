"""Predicted exposure (PK): a simulation from numbers, one session of an order or a plan, and
the stored exposure summaries of sessions and courses as given.

Concentrations are in ng/mL, AUC in ng.h/mL, times in minutes; every answer names the model
(citation, population, limitations, what was verified) and the warnings for this patient.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.services import exposure, exposure_summary
from ketapath.services.exposure import (
    MAX_SESSION_NUMBER,
    MODEL_DESCRIPTION,
    MODEL_ID_PATTERN,
    ExposureOptions,
    ExposureView,
    OrderExposureView,
    PlanExposureRequest,
    PlanExposureView,
    SessionComparisonView,
    SimulateRequest,
)
from ketapath.services.exposure_summary import (
    CourseExposureSummaryView,
    SessionExposureSummaryView,
)

router = APIRouter(tags=["exposure"], responses=SIGNED_IN)


@router.post(
    "/pk/simulate",
    response_model=ExposureView,
    summary="Predict plasma, effect-site and norketamine concentrations of doses for a patient",
    responses=responses(400, 422),
    description=(
        "No record is read: the covariates and doses are given. Covariates are bounded as the "
        "PK engine bounds them (weight 0.2-700 kg, age 0-130 years, height 20-280 cm), doses "
        "by what an infusion device delivers; out of bounds is 422 naming the field. Physicians, "
        "nurses, pharmacists and researchers (it holds no patient data)."
    ),
)
def simulate(body: SimulateRequest, actor: CurrentUser, db: DatabaseDep) -> ExposureView:
    return exposure.simulate(db, actor, body)


@router.get(
    "/orders/{order_id}/exposure",
    response_model=OrderExposureView,
    summary="Predicted exposure of one session of a signed order, for the patient's record",
    responses=responses(404, 422),
    description=(
        "The session (default 1) as ordered, alone from its start and 6 h after its last dose, "
        "for the patient's current record; 422 naming `session` when the course has no such "
        "session."
    ),
)
def order_exposure(
    order_id: RecordId,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    session: Annotated[int, Query(ge=1, le=MAX_SESSION_NUMBER)] = 1,
    model: Annotated[
        str | None, Query(max_length=40, pattern=MODEL_ID_PATTERN, description=MODEL_DESCRIPTION)
    ] = None,
) -> OrderExposureView:
    options = ExposureOptions(session=session, model=model)
    return exposure.order_exposure(db, actor, order_id, options, clock=clock)


@router.post(
    "/patients/{patient_id}/plans/exposure",
    response_model=PlanExposureView,
    summary="Predicted exposure of one session of the course a protocol gives (not stored)",
    responses=responses(400, 404, 422),
    description=(
        "The body is a plan preview's (protocol and options) with `session` (default 1) and "
        "`model`; a course over a hard limit is refused as the preview is (422, `findings`)."
    ),
)
def plan_exposure(
    patient_id: RecordId,
    body: PlanExposureRequest,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> PlanExposureView:
    return exposure.plan_exposure(db, actor, patient_id, body, clock=clock)


@router.get(
    "/sessions/{session_id}/exposure",
    response_model=SessionComparisonView,
    summary="Predicted exposure of an infusion session as ordered and as given (its chart)",
    responses=responses(404, 422),
    description=(
        "The session as ordered against what its chart says was given (pump rates between the "
        "pump entries, pauses giving nothing, boluses; a running pump counts to now), with one "
        "model on one grid, for the patient's current record; peak and AUC differences per "
        "curve. Physicians, nurses, pharmacists."
    ),
)
def session_exposure(
    session_id: RecordId,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    model: Annotated[
        str | None, Query(max_length=40, pattern=MODEL_ID_PATTERN, description=MODEL_DESCRIPTION)
    ] = None,
) -> SessionComparisonView:
    return exposure.session_exposure(db, actor, session_id, model, clock=clock)


@router.get(
    "/sessions/{session_id}/exposure-summary",
    response_model=SessionExposureSummaryView,
    summary="Stored exposure summary of an infusion session as given (AUC, peak, time above)",
    responses=responses(404, 422),
    description=(
        "Predicted AUC (mg.h/L, to 6 h after the last dose and to infinity), peak (mg/L) and "
        "its time, and minutes above each reference concentration (exposure_thresholds.yaml) "
        "of ketamine and norketamine, from what the session's chart says was given, computed "
        "exactly without a time grid. The stored summary is answered when its inputs (doses, "
        "the record's facts, the model and its version, the thresholds) are unchanged; "
        "otherwise it is computed, stored as a new row superseding the last (with the reason) "
        "and answered. A running pump gives a provisional summary, not stored. `history` "
        "lists the earlier rows. Physicians, nurses, pharmacists."
    ),
)
def session_exposure_summary(
    session_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> SessionExposureSummaryView:
    return exposure_summary.session_summary(db, actor, session_id, clock=clock)


@router.get(
    "/courses/{order_id}/exposure-summary",
    response_model=CourseExposureSummaryView,
    summary="Stored exposure summary of a course as given (its sessions on one time axis)",
    responses=responses(404, 422),
    description=(
        "The course of a signed order as given so far: every session's chart on one time axis "
        "from the first dose (what remains of one session when the next starts counts), "
        "summarised and stored as a session's is, with each session's own summary in "
        "`sessions`. Physicians, nurses, pharmacists."
    ),
)
def course_exposure_summary(
    order_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> CourseExposureSummaryView:
    return exposure_summary.course_summary(db, actor, order_id, clock=clock)
