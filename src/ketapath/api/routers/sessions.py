"""The infusion day (issue 10): scheduling, the worklist and board, a session's chart.

A chart entry is one JSON object discriminated by ``kind`` (check_in, start, rate_change,
pause, resume, stop, complete, bolus, vitals, side_effect, adjunct, note, acknowledge,
begin_observation, discharge_assessment, discharge, cancel, did_not_attend), posted with the
last entry the writer saw (``expected_seq``). The answer is the session replayed with it:
its state, the actions allowed and held, the prompts and who answered them, the pump
programme, the delivered dose, the vitals and rate series, the discharge score and
readiness. Two replay operations check a scenario without storing anything.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.session_view import SessionView
from ketapath.services import sessions
from ketapath.services.sessions import (
    Board,
    ChartResult,
    ChartWrite,
    Correction,
    PatientSessions,
    ProgrammeReplayRequest,
    ReplayRequest,
    ScheduleRequest,
    SessionDetail,
    SessionSummary,
    StoredEntry,
    VoidRequest,
)

router = APIRouter(tags=["infusion sessions"], responses=SIGNED_IN)

ClinicDate = Annotated[
    date | None, Query(description="A clinic date (default: the clinic's today).")
]
Chair = Annotated[str | None, Query(max_length=40, description="One chair only.")]


@router.post(
    "/orders/{order_id}/sessions",
    response_model=list[SessionSummary],
    status_code=status.HTTP_201_CREATED,
    summary="Schedule every session of a usable signed course from a first date, in a chair",
    responses=responses(400, 404, 409, 422),
)
def schedule(
    order_id: RecordId,
    body: ScheduleRequest,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> list[SessionSummary]:
    return sessions.schedule_course(db, actor, order_id, body, clock=clock)


@router.get(
    "/sessions",
    response_model=list[SessionSummary],
    summary="The worklist: the sessions of a clinic date, by chair",
    responses=responses(422),
)
def worklist(
    actor: CurrentUser, db: DatabaseDep, clock: ClockDep, on: ClinicDate = None, chair: Chair = None
) -> list[SessionSummary]:
    return sessions.worklist(db, actor, on=on, chair=chair, clock=clock)


@router.get(
    "/sessions/board",
    response_model=Board,
    summary="The clinic board: every chair, its patient, state, rate, next observations, alerts",
    responses=responses(422),
)
def board(actor: CurrentUser, db: DatabaseDep, clock: ClockDep, on: ClinicDate = None) -> Board:
    return sessions.board(db, actor, on=on, clock=clock)


@router.post(
    "/sessions/replay",
    response_model=SessionView,
    summary="Replay a chart against a pump programme given in full (nothing is stored)",
    responses=responses(400, 422),
)
def replay_programme(
    body: ProgrammeReplayRequest, actor: CurrentUser, db: DatabaseDep
) -> SessionView:
    return sessions.replay_programme(db, actor, body)


@router.get(
    "/sessions/{session_id}",
    response_model=SessionDetail,
    summary="A session and its chart replayed now",
    responses=responses(404, 422),
)
def get_session(
    session_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> SessionDetail:
    return sessions.get_session(db, actor, session_id, clock=clock)


@router.get(
    "/sessions/{session_id}/entries",
    response_model=list[StoredEntry],
    summary="Every entry of the chart as stored, corrections included",
    responses=responses(404, 422),
)
def entries(session_id: RecordId, actor: CurrentUser, db: DatabaseDep) -> list[StoredEntry]:
    return sessions.session_log(db, actor, session_id)


@router.post(
    "/sessions/{session_id}/entries",
    response_model=ChartResult,
    status_code=status.HTTP_201_CREATED,
    summary="Chart one entry (409 if it changes the state or dose and the chart moved on)",
    responses=responses(400, 404, 409, 422),
)
def chart(
    session_id: RecordId,
    body: ChartWrite,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> ChartResult:
    return sessions.chart(db, actor, session_id, body, clock=clock)


@router.post(
    "/sessions/{session_id}/entries/{seq}/correction",
    response_model=ChartResult,
    status_code=status.HTTP_201_CREATED,
    summary="Correct an entry: a new entry of the same kind amends it, with a reason",
    responses=responses(400, 404, 409, 422),
)
def correct(
    session_id: RecordId,
    seq: RecordId,
    body: Correction,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> ChartResult:
    return sessions.correct(db, actor, session_id, seq, body, clock=clock)


@router.post(
    "/sessions/{session_id}/entries/{seq}/void",
    response_model=ChartResult,
    status_code=status.HTTP_201_CREATED,
    summary="Void an observation entered in error (it stays in the log)",
    responses=responses(400, 404, 409, 422),
)
def void(
    session_id: RecordId,
    seq: RecordId,
    body: VoidRequest,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> ChartResult:
    return sessions.void(db, actor, session_id, seq, body, clock=clock)


@router.post(
    "/sessions/{session_id}/replay",
    response_model=SessionView,
    summary="Replay a chart against this session's order and programme (nothing is stored)",
    responses=responses(400, 404, 409, 422),
)
def replay_session(
    session_id: RecordId,
    body: ReplayRequest,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> SessionView:
    return sessions.replay_session(db, actor, session_id, body, clock=clock)


@router.get(
    "/patients/{patient_id}/sessions",
    response_model=PatientSessions,
    summary="A patient's sessions and the ketamine delivered over all of them",
    responses=responses(404, 422),
)
def patient_sessions(
    patient_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> PatientSessions:
    return sessions.patient_sessions(db, actor, patient_id, clock=clock)
