"""Outcomes through the API: diaries and assessments are fed through the API (the diary
through a link the patient opens, as a patient would), and responder status, the duration
of relief (with censoring) and the 35-day pain area come back as computed here by hand, in
exact fractions, without the domain's code. Bad input gets a clear 4xx and writes nothing.

The course itself is given on past clinic days through the services (the API's clock is the
real one, and a session cannot be scheduled in the past through it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from itertools import pairwise
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.integration.conftest import GivenCourse, past_course, signed_order

from ketapath.config import Settings
from ketapath.services import diary
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import Assessment, DiaryEntry, RepeatDecision

API = "/api/v1"
MARGIN = 1  # outcome_rules.yaml relief.margin_nrs
ONSET = 30  # outcome_rules.yaml relief.onset_threshold_percent
FOLLOW_UP_END = 182  # the last default timepoint: 6 months


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    diary.reset_rate_limits()
    yield
    diary.reset_rate_limits()


@pytest.fixture
def settings(database: Database) -> Settings:
    """The integration settings, with room for a long diary written in one go."""
    return Settings(
        database_url=database.url,
        secret_key="integration-test-secret-key",
        lockout_threshold=3,
        diary_writes_per_hour=10_000,
    )


# ------------------------------------------------------------------ by hand


def hand_responder(baseline: int, later: int, threshold: int) -> str:
    if baseline == 0:
        return "unknown"
    fall = Fraction(baseline - later, baseline) * 100
    return "responder" if fall >= threshold else "non-responder"


def hand_relief(baseline: int, diary_by_day: dict[int, int], end_day: int) -> tuple[str, int]:
    """(status, days): onset on the first recorded day after the session (at least 30% and
    more than the margin below baseline), the event on the first recorded day back within
    the margin, else censored at the last recorded day up to ``end_day``."""
    days = sorted(d for d in diary_by_day if 1 <= d <= end_day)
    back = baseline - MARGIN
    first = days[0]
    if not (
        Fraction(baseline - diary_by_day[first]) * 100 >= ONSET * baseline
        and diary_by_day[first] < back
    ):
        return "never began", 0
    last_in_relief = first
    for d in days[1:]:
        if diary_by_day[d] >= back:
            return "ended", d
        last_in_relief = d
    return "censored", last_in_relief


def hand_auc(diary_by_day: dict[int, int], window: int = 35) -> Fraction | None:
    """Trapezoid over days 1..window, one day apart, straight lines across gaps; None when
    day 1 or the last day is missing."""
    if 1 not in diary_by_day or window not in diary_by_day:
        return None
    known = sorted(d for d in diary_by_day if 1 <= d <= window)
    value: dict[int, Fraction] = {}
    for left, right in pairwise(known):
        a, b = Fraction(diary_by_day[left]), Fraction(diary_by_day[right])
        for d in range(left, right + 1):
            value[d] = a + (b - a) * (d - left) / (right - left)
    return sum(((value[d] + value[d + 1]) / 2 for d in range(1, window)), Fraction(0))


# ------------------------------------------------------------------ through the API


@dataclass
class Desk:
    client: TestClient
    headers: dict[str, dict[str, str]]
    course: GivenCourse

    def post(self, path: str, body: dict[str, Any], role: str = "nurse") -> Any:
        return self.client.post(f"{API}{path}", json=body, headers=self.headers[role])

    def get(self, path: str, role: str = "physician") -> Any:
        answer = self.client.get(f"{API}{path}", headers=self.headers[role])
        assert answer.status_code == 200, answer.text
        return answer.json()

    def nrs(self, pain: int, label: str, days_after: int, timepoint: int | None = None) -> Any:
        when = datetime.combine(
            self.course.last_day + timedelta(days=days_after), time(11), tzinfo=UTC
        )
        body = {
            "instrument_id": "nrs",
            "answers": {"pain": pain},
            "administered_at": when.isoformat(),
            "order_id": self.course.order_id,
            "label": label,
            "timepoint_days": timepoint,
        }
        return self.post(f"/patients/{self.course.patient_id}/assessments", body)

    def diary_session(self) -> dict[str, str]:
        made = self.post(f"/orders/{self.course.order_id}/diary-links", {"days_valid": 42})
        assert made.status_code == 201, made.text
        token = made.json()["url"].rsplit("/", 1)[1]
        opened = self.client.post(f"{API}/diary/open", json={"token": token})
        assert opened.status_code == 200, opened.text
        self.client.cookies.clear()
        return {"X-Diary-Session": opened.json()["session"]}

    def write_diary(self, diary_by_day: dict[int, int]) -> None:
        session = self.diary_session()
        for offset, pain in sorted(diary_by_day.items()):
            day = self.course.last_day + timedelta(days=offset)
            answer = self.client.post(
                f"{API}/diary/entries",
                json={"day": day.isoformat(), "pain_nrs": pain},
                headers=session,
            )
            assert answer.status_code == 201, answer.text

    def outcome(self) -> Any:
        return self.get(f"/courses/{self.course.order_id}/outcome")


def _desk(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
    days_ago: int,
) -> Desk:
    return Desk(client, headers, past_course(database, users, days_ago=days_ago))


SCENARIOS: dict[str, tuple[int, int, dict[int, int], int]] = {
    # name: (days ago, baseline, diary by day after the last session, follow-up NRS at 28 d)
    # relief from day 1; day 20 is back to 7 (within 1 of 8) after a gap (days 13-19)
    "relief ends after a gap": (
        60,
        8,
        {**{d: 3 for d in range(1, 13)}, 20: 7, **{d: 7 for d in range(21, 36)}},
        5,
    ),
    # relief to the last diary day (40): censored there; day 35 present, a gap inside
    "relief continues: censored at the last diary day": (
        60,
        6,
        {**{d: 2 for d in range(1, 31) if d not in (10, 11, 12)}, **{d: 3 for d in range(31, 41)}},
        2,
    ),
    # recorded beyond 6 months: censored at day 182, the end of follow-up
    "censored at the end of follow-up": (
        200,
        7,
        {1: 2, 35: 2, 100: 3, 170: 2, 182: 2, 185: 2, 190: 2},
        4,
    ),
    # the first diary day is not 30% below baseline: relief never began (0 days)
    "never began": (50, 8, {d: 6 for d in range(1, 36)}, 6),
    # day 35 missing: the area is not given (never extrapolated, never 0)
    "the area is incomplete without day 35": (50, 5, {d: 1 for d in range(1, 30)}, 3),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS), ids=list(SCENARIOS))
def test_diary_and_assessments_fed_through_the_api_give_the_hand_computed_outcome(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
    scenario: str,
) -> None:
    days_ago, baseline, diary_by_day, later = SCENARIOS[scenario]
    desk = _desk(client, headers, database, users, days_ago)
    assert desk.nrs(baseline, "baseline", -1).status_code == 201
    assert desk.nrs(later, "follow-up", 28, timepoint=28).status_code == 201
    desk.write_diary(diary_by_day)
    outcome = desk.outcome()

    assert outcome["responder_30"]["status"] == hand_responder(baseline, later, 30)
    assert outcome["responder_50"]["status"] == hand_responder(baseline, later, 50)
    status, days = hand_relief(baseline, diary_by_day, min(days_ago, FOLLOW_UP_END))
    relief = outcome["relief"]
    assert (relief["status"], relief["days"]) == (status, days)
    assert relief["censored"] is (status == "censored")
    if status == "censored":
        assert relief["censored_at"] == (desk.course.last_day + timedelta(days=days)).isoformat()
    area = hand_auc(diary_by_day)
    if area is None:
        assert outcome["pain_auc"]["auc"] is None
        assert outcome["pain_auc"]["status"] == "incomplete"
    else:
        assert outcome["pain_auc"]["auc"] == pytest.approx(float(area), abs=1e-9)
    for result in ("responder_30", "relief", "pain_auc"):
        assert outcome[result]["definition"]["citations"], result


def test_the_hand_computations_agree_with_numbers_worked_on_paper() -> None:
    """The helpers above, checked on the worked examples of docs/outcomes.md."""
    assert hand_auc({1: 6, 2: 4, 3: 2, 4: 2}, window=4) == 10
    assert hand_auc({1: 6, 4: 3}, window=4) == Fraction(27, 2)
    assert hand_relief(6, {1: 2, 2: 3, 3: 4, 4: 5}, 182) == ("ended", 4)
    assert hand_relief(4, {d: 2 for d in range(1, 183)}, 182) == ("censored", 182)
    assert hand_responder(10, 7, 30) == "responder"
    assert hand_responder(10, 7, 50) == "non-responder"


def test_a_course_with_nothing_recorded_yet_is_not_enough_data_never_zero(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
) -> None:
    desk = _desk(client, headers, database, users, days_ago=5)
    outcome = desk.outcome()
    assert outcome["status"] == "incomplete"
    assert outcome["responder_30"]["status"] == "unknown"
    assert outcome["relief"]["status"] == "no data" and outcome["relief"]["days"] is None
    assert outcome["pain_auc"]["auc"] is None
    assert outcome["opioids"]["change_mg"] is None
    assert outcome["delivered_mg"] > 0 and outcome["tolerated"] is True
    assert any("baseline pain" in m for m in outcome["missing"])
    unscheduled = signed_order(database, users, name="Not Yet")
    empty = desk.get(f"/courses/{unscheduled}/outcome")
    assert empty["status"] == "no sessions" and empty["sessions"] == []


def _counts(database: Database) -> tuple[int, int, int]:
    with database.transaction() as session:
        return (
            session.scalar(select(func.count(DiaryEntry.id))) or 0,
            session.scalar(select(func.count(Assessment.id))) or 0,
            session.scalar(select(func.count(RepeatDecision.id))) or 0,
        )


def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
) -> None:
    desk = _desk(client, headers, database, users, days_ago=20)
    before = _counts(database)
    session = desk.diary_session()
    day_one = (desk.course.last_day + timedelta(days=1)).isoformat()
    eleven = client.post(
        f"{API}/diary/entries", json={"day": day_one, "pain_nrs": 11}, headers=session
    )
    assert eleven.status_code == 422 and eleven.json()["field"] == "pain_nrs"
    early = (desk.course.session_days[0] - timedelta(days=1)).isoformat()
    before_course = client.post(
        f"{API}/diary/entries", json={"day": early, "pain_nrs": 4}, headers=session
    )
    assert before_course.status_code == 422
    assert "before the course began" in before_course.json()["detail"]
    bad_nrs = desk.nrs(11, "follow-up", 7, timepoint=7)
    assert bad_nrs.status_code == 422
    decisions = f"/courses/{desk.course.order_id}/repeat-decisions"
    for body, field in (
        ({"decision": "repeat", "reason": "   "}, "reason"),
        ({"decision": "repeat"}, "reason"),
        ({"decision": "change protocol", "reason": "short relief"}, "next_protocol_id"),
        (
            {"decision": "change protocol", "next_protocol_id": "unicorn", "reason": "x"},
            "next_protocol_id",
        ),
        (
            {"decision": "stop", "next_protocol_id": "dose-ladder", "reason": "x"},
            "next_protocol_id",
        ),
        ({"decision": "maybe", "reason": "x"}, "decision"),
    ):
        answer = desk.post(decisions, body, "physician")
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["field"] == field, answer.json()
    assert desk.post(decisions, {"decision": "stop", "reason": "x"}, "nurse").status_code == 403
    unscheduled = signed_order(database, users, name="No Sessions")
    none_given = desk.post(
        f"/courses/{unscheduled}/repeat-decisions", {"decision": "stop", "reason": "x"}, "physician"
    )
    assert none_given.status_code == 409 and "no session" in none_given.json()["detail"]
    assert _counts(database) == before


def test_a_physician_decides_and_amends_the_decision_with_the_proposal_kept(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
) -> None:
    desk = _desk(client, headers, database, users, days_ago=40)
    desk.nrs(8, "baseline", -1)
    desk.nrs(3, "follow-up", 28, timepoint=28)
    indicators = {"order_id": desk.course.order_id, "indicators": {"pain_reduction_percent": 50}}
    assert (
        desk.post(f"/patients/{desk.course.patient_id}/indicators", indicators).status_code == 201
    )
    page = desk.get(f"/courses/{desk.course.order_id}/repeat-decision", "nurse")
    assert page["proposal"]["proposal"] == "repeat" and page["current"] is None
    assert page["proposal"]["indicators"][0]["status"] == "met"
    decisions = f"/courses/{desk.course.order_id}/repeat-decisions"
    first = desk.post(decisions, {"decision": "repeat", "reason": "62% less pain"}, "physician")
    assert first.status_code == 201, first.text
    made = first.json()
    assert made["proposal"] == "repeat" and made["agrees_with_proposal"] is True
    assert made["next_protocol_id"] == "asra-initial"
    assert made["basis"]["proposal"]["reasons"]
    again = desk.post(decisions, {"decision": "stop", "reason": "changed my mind"}, "physician")
    assert again.status_code == 409 and again.json()["field"] == "amends_id"
    change = {
        "decision": "change protocol",
        "next_protocol_id": "dose-ladder",
        "reason": "relief too short for the patient's goals",
        "amends_id": made["id"],
    }
    amended = desk.post(decisions, change, "physician")
    assert amended.status_code == 201, amended.text
    assert amended.json()["agrees_with_proposal"] is False
    stale = desk.post(decisions, {**change, "reason": "again"}, "physician")
    assert stale.status_code == 409
    history = desk.get(decisions, "nurse")
    assert [d["amended"] for d in history] == [True, False]
    page = desk.get(f"/courses/{desk.course.order_id}/repeat-decision")
    assert page["current"]["decision"] == "change protocol"
    assert desk.client.get(f"{API}{decisions}", headers=headers["researcher"]).status_code == 403


def test_follow_ups_are_listed_due_or_overdue_and_done_once_recorded(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
) -> None:
    # last session 16 days ago: 1 week overdue (window ended day 14), 2 weeks due (11-21)
    desk = _desk(client, headers, database, users, days_ago=16)
    listed = desk.get("/follow-ups", "nurse")["items"]
    mine = [(i["label"], i["status"]) for i in listed if i["order_id"] == desk.course.order_id]
    assert mine == [("1 week", "overdue"), ("2 weeks", "due")]
    overdue = desk.get("/follow-ups?status=overdue", "nurse")["items"]
    assert {i["label"] for i in overdue if i["order_id"] == desk.course.order_id} == {"1 week"}
    assert desk.nrs(4, "follow-up", 15, timepoint=14).status_code == 201
    course = desk.get(f"/courses/{desk.course.order_id}/follow-ups", "nurse")
    states = {t["offset_days"]: t["status"] for t in course["timepoints"]}
    assert states[7] == "overdue" and states[14] == "done" and states[28] == "not yet due"
    assert [t["recorded"] for t in course["timepoints"] if t["offset_days"] == 14] == [["nrs"]]
    assert {f["code"] for f in course["findings"]} == {"outcomes:follow-up-overdue"}
    bad = client.get(f"{API}/follow-ups?status=someday", headers=headers["nurse"])
    assert bad.status_code == 422


def test_the_safety_checks_of_a_second_course_are_due_until_recorded(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
) -> None:
    first = past_course(database, users, days_ago=120, name="Twice Treated")
    second = past_course(database, users, days_ago=10, patient_id=first.patient_id).order_id
    desk = Desk(client, headers, first)
    due = desk.get(f"/patients/{first.patient_id}/safety-due", "nurse")
    assert due["courses"] == 2
    assert len(due["course_doses"]) == 2 and second in {c["order_id"] for c in due["course_doses"]}
    total = sum(Fraction(c["delivered_mg"]).limit_denominator(10**9) for c in due["course_doses"])
    assert due["cumulative_mg"] == pytest.approx(float(total))
    states = {c["check_id"]: c["status"] for c in due["checks"]}
    assert states["misuse-screen"] == "due" and states["liver-enzymes"] == "due"
    today = datetime.now(UTC).date().isoformat()
    screen = {
        "check_id": "misuse-screen",
        "observed_on": today,
        "values": {
            "non_prescribed_ketamine": False,
            "craving": False,
            "asked_for_more": False,
            "other_substance_misuse": False,
        },
    }
    recorded = desk.post(f"/patients/{first.patient_id}/safety-results", screen)
    assert recorded.status_code == 201, recorded.text
    after = desk.get(f"/patients/{first.patient_id}/safety-due", "nurse")
    states = {c["check_id"]: c["status"] for c in after["checks"]}
    assert states["misuse-screen"] == "not due" and states["liver-enzymes"] == "due"
