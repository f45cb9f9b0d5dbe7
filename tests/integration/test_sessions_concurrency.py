"""Two nurses charting one session at the same moment, on SQLite and PostgreSQL: every
observation lands with its own place in the chart, and of two conflicting changes to the pump
exactly one is applied."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from tests.conftest import baseline_vitals
from tests.integration.conftest import check_in_entry, clinic_noon, scheduled_session

from ketapath.domain.session_events import ChartEntry
from ketapath.services import auth, sessions
from ketapath.services.errors import Conflict
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.services.sessions import ChartWrite
from ketapath.store.db import Database

ENTRY: TypeAdapter[Any] = TypeAdapter(ChartEntry)


def _second_nurse(database: Database) -> Actor:
    view = auth.add_user(database, SYSTEM, "nurse2", "nurse", "correct horse battery")
    return Actor(view.id, view.username, view.role)


def _together(*calls: Any) -> list[Any]:
    """Run the calls in threads released at the same moment; each result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as error:  # collected for the assertions
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_nurses_charting_at_once_lose_nothing(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    start = clock.now() - timedelta(hours=2)
    session_id = scheduled_session(database, users, clock)
    nurses = [users["nurse"], _second_nurse(database)]
    entry = ENTRY.validate_python(check_in_entry(start))
    sessions.chart(
        database, nurses[0], session_id, ChartWrite(expected_seq=0, entry=entry), clock=clock
    )

    def vitals(nurse: Actor, index: int) -> Any:
        def call() -> Any:
            for n in range(10):
                at = start + timedelta(minutes=1 + n, seconds=index)
                entry = ENTRY.validate_python(
                    {"kind": "vitals", "occurred_at": at, **baseline_vitals(heart_rate=60 + n)}
                )
                # both nurses saw only the check-in: observations land all the same
                sessions.chart(
                    database,
                    nurse,
                    session_id,
                    ChartWrite(expected_seq=1, entry=entry),
                    clock=clock,
                )

        return call

    results = _together(vitals(nurses[0], 0), vitals(nurses[1], 1))
    assert results == [None, None]
    log = sessions.session_log(database, users["nurse"], session_id)
    assert [e.seq for e in log] == list(range(1, 22))
    assert sorted(e.recorded_by or "" for e in log[1:]) == ["nurse"] * 10 + ["nurse2"] * 10


def test_of_two_conflicting_changes_exactly_one_is_applied(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    start = clock.now() - timedelta(hours=2)
    session_id = scheduled_session(database, users, clock)
    nurses = [users["nurse"], _second_nurse(database)]
    for seq, entry in enumerate(
        [check_in_entry(start), {"kind": "start", "occurred_at": start.isoformat()}]
    ):
        sessions.chart(
            database,
            nurses[0],
            session_id,
            ChartWrite(expected_seq=seq, entry=ENTRY.validate_python(entry)),
            clock=clock,
        )

    def change(nurse: Actor, kind: str, fields: dict[str, Any]) -> Any:
        entry = ENTRY.validate_python(
            {"kind": kind, "occurred_at": start + timedelta(minutes=30), **fields}
        )
        return lambda: sessions.chart(
            database, nurse, session_id, ChartWrite(expected_seq=2, entry=entry), clock=clock
        )

    results = _together(
        change(nurses[0], "pause", {"reason": "clinical"}),
        change(nurses[1], "stop", {"reason": "patient_request"}),
    )
    conflicts = [r for r in results if isinstance(r, Conflict)]
    applied = [r for r in results if not isinstance(r, Exception)]
    assert len(conflicts) == 1 and len(applied) == 1, results
    assert "changed since entry 2" in conflicts[0].message
    final = sessions.get_session(database, users["nurse"], session_id, clock=clock)
    assert final.chart.last_seq == 3
    assert final.chart.state == applied[0].chart.state
