"""A synthetic multi-centre registry: patients, courses, charted sessions, diaries and
assessments drawn from a known generating model, written in bulk (issue 13, item 6).

For benchmarks and for tests that check the analytics recover what was put in; never for a
clinic's own database (the command refuses a database that holds patients unless told
otherwise). Every patient is invented: names are "Synthetic Patient <n>", every value is drawn
from the model below with a seeded generator, so a seed gives the same registry (dates count
back from the end date).

The generating model (:class:`Model`), per course:

- the patient's centre (1..``centres``) sets the share of diary days filled in and of
  follow-ups attended; the diagnosis sets the protocols that may be chosen;
- the course is planned by the domain (``domain.planning.plan``) for the patient's weight;
  each session is charted as the services would store it (check-in with the pump programme
  from the drug library, ordered adjuncts, the pump's start, rate changes at each step,
  observations, side effects with the pause or stop the session rules ask for, the end,
  observation and discharge), so the delivered dose is the replay's, not a number typed in;
- relief begins with probability ``logistic(onset_intercept + onset_per_mg_per_kg * dose)``
  and lasts ``T`` days, Weibull with proportional hazards:
  ``S(t) = exp(-(t / scale_days) ** shape * exp(beta_dose * dose + beta_hours * hours))``
  (dose: delivered mg/kg; hours: infusion hours), so a Cox regression should find
  ``beta_dose`` and ``beta_hours``;
- the diary runs from the first session to a random last day; in relief the daily pain is
  30-75% below baseline, after it back within a point of baseline; days are missed at the
  centre's rate; follow-up NRS at 1, 2, 4, 8, 12 weeks and 6 months, attended at the centre's
  rate, read the same curve;
- side effects come with probability ``logistic(se_intercept + se_per_mg_per_kg * session
  mg/kg + se_midazolam * midazolam given)``: mild ones are noted, troublesome ones pause the
  infusion for the hour, dissociation stops it; liver enzymes are checked at repeated courses
  and are abnormal with probability ``logistic(alt_intercept + alt_per_mg_per_kg *
  cumulative mg/kg)``.

What the model drew for each course (its truth) is returned with ``keep_truth`` so that a test
can compare the analytics with it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from pydantic import TypeAdapter

from ketapath.domain.planning import DosingInputs, PlanOptions, plan
from ketapath.domain.session_events import ChartEntry
from ketapath.domain.sessions import programme_of
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.library import DrugLibrary, default_library
from ketapath.services.clock import ClinicClock
from ketapath.services.orders import course_digest, plain_course
from ketapath.store.db import Database

_ENTRY: TypeAdapter[Any] = TypeAdapter(ChartEntry)
TABLES = (
    "patients",
    "patient_versions",
    "diagnoses",
    "medications",
    "courses",
    "orders",
    "infusion_sessions",
    "session_events",
    "assessments",
    "assessment_contexts",
    "diary_entries",
    "safety_results",
)
FOLLOW_UP_DAYS = (7, 14, 28, 56, 84, 182)
# Which protocols a diagnosis may lead to, with weights (the protocol's own indications,
# plus the protocols for any pain condition).
GENERAL = {"asra-initial": 1.0, "dose-ladder": 1.5, "inpatient-sc-anzca": 0.4}
PROTOCOLS_BY_DIAGNOSIS: dict[str, dict[str, float]] = {
    "crps-1": {
        "crps-schwartzman-10day": 6.0,
        "crps-sigtermans-continuous": 0.6,
        "titrate-correll": 0.3,
        "titrate-goldberg-5day": 0.3,
        **GENERAL,
    },
    "crps-2": {"crps-schwartzman-10day": 6.0, "titrate-correll": 0.3, **GENERAL},
    "sci-pain": {"sci-amr-7day": 5.0, **GENERAL},
    "mixed-neuropathic": {"mixed-kang-3session": 4.0, **GENERAL},
    "painful-neuropathy": {"mixed-kang-3session": 4.0, **GENERAL},
    "phn": {"mixed-kang-3session": 3.0, **GENERAL},
    "central-pain": {"mixed-kang-3session": 3.0, **GENERAL},
    "phantom-limb": dict(GENERAL),
    "fibromyalgia": dict(GENERAL),
}
DIAGNOSES = {
    "crps-1": 0.34,
    "crps-2": 0.08,
    "sci-pain": 0.12,
    "mixed-neuropathic": 0.10,
    "painful-neuropathy": 0.08,
    "phn": 0.07,
    "central-pain": 0.05,
    "phantom-limb": 0.09,
    "fibromyalgia": 0.07,
}
VITALS = ("heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate", "sedation")


@dataclass(frozen=True)
class Model:
    """The generating model's numbers (see the module docstring)."""

    onset_intercept: float = 0.2
    onset_per_mg_per_kg: float = 0.06
    shape: float = 1.3
    scale_days: float = 30.0
    beta_dose: float = -0.04
    beta_hours: float = -0.008
    se_intercept: float = -2.2
    se_per_mg_per_kg: float = 0.8
    se_midazolam: float = -0.5
    alt_intercept: float = -3.5
    alt_per_mg_per_kg: float = 0.05
    early_stop: float = 0.08
    did_not_attend: float = 0.02
    repeat_courses: tuple[float, ...] = (0.35, 0.35, 0.30)
    in_progress: float = 0.03


@dataclass(frozen=True)
class Config:
    """How much to make: patients, centres, the seed, the last day, the chart's vitals."""

    patients: int
    centres: int = 5
    seed: int = 1
    end: date | None = None
    vitals_every_min: int = 30
    ward_vitals_every_min: int = 240
    model: Model = field(default_factory=Model)
    chunk: int = 250


@dataclass(frozen=True)
class CourseTruth:
    """What the model drew for one course."""

    order_id: int
    patient_id: int
    centre: int
    protocol_id: str
    onset: bool
    relief_days: float | None
    baseline_nrs: int
    in_progress: bool


@dataclass
class Rows:
    """Rows for the tables, with ids handed out from ``next_id``."""

    next_id: dict[str, int]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, name: str, row: dict[str, Any]) -> int:
        row_id = self.next_id[name]
        self.next_id[name] = row_id + 1
        self.tables.setdefault(name, []).append({"id": row_id, **row})
        return row_id

    def take(self) -> dict[str, list[dict[str, Any]]]:
        tables, self.tables = self.tables, {}
        return tables


def logistic(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# ------------------------------------------------------------------ one patient


class Generator:
    """Makes the rows of one patient at a time (``patient``), in the order of ``TABLES``."""

    def __init__(self, config: Config, clock: ClinicClock, rows: Rows) -> None:
        self.config, self.model, self.clock, self.rows = config, config.model, clock, rows
        self.rng = random.Random(config.seed)
        self.end = config.end or clock.today()
        self.zone = clock.tz()
        self.library: DrugLibrary = default_library()
        self.kb = knowledge()
        self.truth: list[CourseTruth] = []
        self._plans: dict[tuple[str, int, str, int], tuple[dict[str, Any], str]] = {}
        self._scores = _nrs_scores()

    # -- the patient ----------------------------------------------------------------------

    def patient(self, number: int) -> None:
        """One patient: the record, then the courses that fit before the end date, and
        (sometimes) one about to start."""
        rng = self.rng
        facts, registered = self._register(number)
        courses = 1 + int(
            _weighted(rng, {str(i): w for i, w in enumerate(self.model.repeat_courses)})
        )
        start = registered + timedelta(days=rng.randint(7, 60))
        cumulative = 0.0
        for index in range(courses):
            protocol = _weighted(rng, PROTOCOLS_BY_DIAGNOSIS[facts.diagnosis])
            course, digest = self._plan(protocol, facts)
            length = max(int(s["day"]) for s in course["sessions"])
            if start + timedelta(days=length + max(FOLLOW_UP_DAYS) + 7) > self.end:
                break  # its follow-up would not be over by the end
            cumulative += self._course(facts, protocol, course, digest, start, index, cumulative)
            start += timedelta(days=length + rng.randint(120, 300))
        if rng.random() < self.model.in_progress:
            protocol = _weighted(rng, PROTOCOLS_BY_DIAGNOSIS[facts.diagnosis])
            course, digest = self._plan(protocol, facts)
            soon = self.end + timedelta(days=rng.randint(1, 30))
            self._course(facts, protocol, course, digest, soon, 1, cumulative, in_progress=True)

    def _register(self, number: int) -> tuple[_Patient, date]:
        """The patient's record (version 1, one diagnosis, one medicine); its registration day."""
        rng = self.rng
        centre = 1 + (number % self.config.centres)
        sex = "female" if rng.random() < 0.6 else "male"
        weight = int(min(140, max(45, rng.gauss(80 if sex == "male" else 70, 14))))
        height = int(rng.gauss(178 if sex == "male" else 165, 7) // 5 * 5)
        born = date(self.end.year - rng.randint(22, 80), rng.randint(1, 12), rng.randint(1, 28))
        diagnosis = _weighted(rng, DIAGNOSES)
        registered = self.end - timedelta(days=rng.randint(420, 5 * 365))
        at = self._at(registered, 9 * 60)
        patient_id = self.rows.add(
            "patients",
            {
                "pseudonym": f"KP-{rng.getrandbits(40):010X}",
                "created_at": at,
                "created_by_id": None,
            },
        )
        document = _document(number, sex, weight, height, born, diagnosis, registered, patient_id)
        version_id = self.rows.add(
            "patient_versions",
            {
                "patient_id": patient_id,
                "version": 1,
                "document": document,
                "full_name": document["name"],
                "birth_date": born,
                "sex": sex,
                "recorded_at": at,
                "recorded_by_id": None,
                "amends_id": None,
                "reason": None,
            },
        )
        self.rows.add(
            "diagnoses", {"patient_version_id": version_id, "position": 0, "code": diagnosis}
        )
        self.rows.add(
            "medications",
            {
                "patient_version_id": version_id,
                "position": 0,
                "name": "oxycodone",
                "dose": 10.0,
                "unit": "mg",
                "frequency": "twice daily",
                "route": "oral",
            },
        )
        facts = _Patient(patient_id, version_id, centre, sex, weight, height, diagnosis, born)
        return facts, registered

    def _plan(self, protocol: str, p: _Patient) -> tuple[dict[str, Any], str]:
        """The course the domain plans for the patient (kept: many patients weigh the same)."""
        key = (protocol, p.weight, p.sex, p.height)
        if key not in self._plans:
            setting = self.kb.protocol(protocol).settings[0]
            inputs = DosingInputs(
                float(p.weight), float(p.height), p.sex, 50, medicines=("oxycodone",)
            )
            course = plan(protocol, inputs, PlanOptions(setting=setting), library=self.library)
            self._plans[key] = (plain_course(course), course_digest(course))
        return self._plans[key]

    # -- one course -----------------------------------------------------------------------

    def _course(
        self,
        p: _Patient,
        protocol: str,
        course: dict[str, Any],
        digest: str,
        start: date,
        index: int,
        cumulative: float,
        *,
        in_progress: bool = False,
    ) -> float:
        """Write one course; returns its delivered dose per kg (as drawn)."""
        rng, model = self.rng, self.model
        signed = self._at(start - timedelta(days=rng.randint(3, 14)), 11 * 60)
        course_id = self.rows.add(
            "courses",
            {
                "patient_id": p.patient_id,
                "patient_version_id": p.version_id,
                "protocol_id": protocol,
                "options": {"setting": course["setting"]},
                "course": course,
                "digest": digest,
                "created_at": signed,
                "created_by_id": None,
            },
        )
        order_id = self.rows.add(
            "orders",
            {
                "patient_id": p.patient_id,
                "course_id": course_id,
                "screening_result_id": None,
                "status": "signed",
                "override_reason": "synthetic registry: reviewed",
                "override_codes": None,
                "recorded_at": signed,
                "recorded_by_id": None,
                "amends_id": None,
                "reason": None,
                "facts": None,
            },
        )
        baseline = min(10, max(4, round(rng.gauss(7, 1.2))))
        self._assessment(
            p,
            order_id,
            baseline,
            self._at(start - timedelta(days=2), 10 * 60),
            "baseline",
            None,
            None,
        )
        chair = (
            f"C{p.centre}-{'ward' if course['setting'] == 'ward' else 'chair'} {rng.randint(1, 6)}"
        )
        delivered_mg, hours, last_day, last_session = 0.0, 0.0, start, None
        for planned in course["sessions"]:
            day = start + timedelta(days=int(planned["day"]))
            session_id = self.rows.add(
                "infusion_sessions",
                {
                    "patient_id": p.patient_id,
                    "order_id": order_id,
                    "session_number": int(planned["session"]),
                    "scheduled_on": day,
                    "chair": chair,
                    "created_at": signed,
                    "created_by_id": None,
                    "replaces_id": None,
                    "reason": None,
                },
            )
            if in_progress or day > self.end:
                continue
            given = _Session(self, p, course, planned, session_id, day).chart()
            delivered_mg += given.mg
            hours += given.hours
            if given.hours > 0:
                last_day, last_session = given.ended_on, session_id
        dose = delivered_mg / p.weight
        if in_progress:
            self.truth.append(
                CourseTruth(order_id, p.patient_id, p.centre, protocol, False, None, baseline, True)
            )
            return 0.0
        onset = rng.random() < logistic(model.onset_intercept + model.onset_per_mg_per_kg * dose)
        relief = self._relief_days(dose, hours) if onset else None
        self.truth.append(
            CourseTruth(order_id, p.patient_id, p.centre, protocol, onset, relief, baseline, False)
        )
        if last_session is None:
            return dose
        self._assessment(
            p,
            order_id,
            self._pain(baseline, onset, relief, 0),
            self._at(last_day, 16 * 60),
            "post-session",
            None,
            last_session,
        )
        self._follow_ups(p, order_id, baseline, onset, relief, last_day)
        self._diary(p, order_id, baseline, onset, relief, start, last_day)
        if index > 0:
            self._safety(p, start, cumulative + dose)
        return dose

    def _relief_days(self, dose: float, hours: float) -> float:
        m = self.model
        u = 1 - self.rng.random()
        rate = math.exp(m.beta_dose * dose + m.beta_hours * hours)
        return float(m.scale_days * (-math.log(u) / rate) ** (1 / m.shape))

    def _pain(self, baseline: int, onset: bool, relief: float | None, day: int) -> int:
        """The day's pain: in relief 30-75% below baseline (at least 2 points), else within a
        point of baseline."""
        rng = self.rng
        if onset and relief is not None and day < max(2, math.ceil(relief)):
            relieved = round(baseline * (1 - rng.uniform(0.4, 0.75)))
            return max(0, min(relieved, baseline - 2, math.floor(baseline * 0.7)))
        return min(10, baseline + rng.choice((-1, 0, 0, 1)))

    def _follow_ups(
        self,
        p: _Patient,
        order_id: int,
        baseline: int,
        onset: bool,
        relief: float | None,
        last_day: date,
    ) -> None:
        attend = 0.92 - 0.03 * (p.centre % 4)
        for days in FOLLOW_UP_DAYS:
            day = last_day + timedelta(days=days)
            if day > self.end or self.rng.random() > attend:
                continue
            score = self._pain(baseline, onset, relief, days)
            self._assessment(p, order_id, score, self._at(day, 11 * 60), "follow-up", days, None)

    def _diary(
        self,
        p: _Patient,
        order_id: int,
        baseline: int,
        onset: bool,
        relief: float | None,
        start: date,
        last_day: date,
    ) -> None:
        rng = self.rng
        keep = 0.93 - 0.04 * (p.centre % 5)
        last = min(self.end, last_day + timedelta(days=rng.randint(21, 84)))
        day = start
        while day <= last:
            if rng.random() < keep:
                after = (day - last_day).days
                pain = (
                    self._pain(baseline, onset, relief, after)
                    if after > 0
                    else min(10, max(0, baseline - rng.choice((0, 1, 2))))
                )
                self.rows.add(
                    "diary_entries",
                    {
                        "patient_id": p.patient_id,
                        "order_id": order_id,
                        "link_id": None,
                        "day": day,
                        "pain_nrs": pain,
                        "entry": {
                            "sleep_quality": max(0, min(10, 10 - pain + rng.choice((-1, 0, 1)))),
                            "side_effects": [],
                            "opioid_doses": [],
                            "note": "",
                        },
                        "recorded_at": self._at(day, 20 * 60),
                        "recorded_by_id": None,
                        "amends_id": None,
                    },
                )
            day += timedelta(days=1)

    def _assessment(
        self,
        p: _Patient,
        order_id: int,
        score: int,
        at: datetime,
        label: str,
        days: int | None,
        session_id: int | None,
    ) -> None:
        assessment_id = self.rows.add(
            "assessments",
            {
                "patient_id": p.patient_id,
                "instrument_id": "nrs",
                "answers": {"pain": score},
                "score": self._scores[score],
                "total": float(score),
                "administered_at": at,
                "recorded_at": at,
                "recorded_by_id": None,
                "amends_id": None,
                "reason": None,
            },
        )
        self.rows.add(
            "assessment_contexts",
            {
                "assessment_id": assessment_id,
                "patient_id": p.patient_id,
                "order_id": order_id,
                "label": label,
                "timepoint_days": days,
                "session_id": session_id,
                "recorded_at": at,
                "recorded_by_id": None,
            },
        )

    def _safety(self, p: _Patient, start: date, cumulative: float) -> None:
        from ketapath.domain import safety as rules
        from ketapath.knowledge.safety import safety_checks

        check = safety_checks().check("liver-enzymes")
        m = self.model
        abnormal = self.rng.random() < logistic(m.alt_intercept + m.alt_per_mg_per_kg * cumulative)
        alt = self.rng.randint(45, 160) if abnormal else self.rng.randint(10, 38)
        values = {"alt_u_per_l": alt, "alt_uln_u_per_l": 40}
        read = rules.read_values(check, values)
        day = start - timedelta(days=1)
        self.rows.add(
            "safety_results",
            {
                "patient_id": p.patient_id,
                "check_id": "liver-enzymes",
                "observed_on": day,
                "values": read,
                "abnormal": bool(rules.judge(check, read)),
                "note": None,
                "recorded_at": self._at(day, 12 * 60),
                "recorded_by_id": None,
                "amends_id": None,
                "reason": None,
            },
        )

    def _at(self, day: date, minutes: int) -> datetime:
        """A clinic time on ``day``, ``minutes`` after midnight, as an aware datetime."""
        return datetime.combine(day, time(0, 0), tzinfo=self.zone) + timedelta(minutes=minutes)


@dataclass(frozen=True)
class _Patient:
    patient_id: int
    version_id: int
    centre: int
    sex: str
    weight: int
    height: int
    diagnosis: str
    born: date


@dataclass(frozen=True)
class _Given:
    mg: float
    hours: float
    ended_on: date


# ------------------------------------------------------------------ one session's chart


class _Session:
    """The chart of one session, as the services would store it."""

    def __init__(
        self,
        generator: Generator,
        patient: _Patient,
        course: dict[str, Any],
        planned: dict[str, Any],
        session_id: int,
        day: date,
    ) -> None:
        self.g, self.p, self.course, self.planned = generator, patient, course, planned
        self.session_id, self.day, self.rng = session_id, day, generator.rng
        self.seq = 0
        self.ward = course["setting"] == "ward"
        self.baseline = {
            "heart_rate": self.rng.randint(62, 86),
            "systolic": self.rng.randint(112, 134),
            "diastolic": self.rng.randint(66, 84),
            "spo2": self.rng.randint(96, 99),
            "respiratory_rate": self.rng.randint(12, 17),
            "sedation": 0,
        }
        self._ended = generator._at(day, 0)

    def write(self, entry: dict[str, Any]) -> None:
        payload = _ENTRY.dump_python(_ENTRY.validate_python(entry), mode="json")
        self.seq += 1
        self.g.rows.add(
            "session_events",
            {
                "session_id": self.session_id,
                "seq": self.seq,
                "kind": entry["kind"],
                "occurred_at": entry["occurred_at"],
                "recorded_at": entry["occurred_at"] + timedelta(minutes=1),
                "recorded_by_id": None,
                "recorded_role": "nurse",
                "payload": payload,
                "amends_seq": None,
                "reason": None,
            },
        )

    def vitals(self, at: datetime) -> None:
        values = {k: v + self.rng.choice((-2, -1, 0, 1, 2)) for k, v in self.baseline.items()}
        values["spo2"] = min(100, max(95, values["spo2"]))
        values["sedation"] = 0
        self.write({"kind": "vitals", "occurred_at": at, **values})

    def chart(self) -> _Given:
        """Chart the session; returns the dose drawn (mg), its running hours, its last day."""
        g, rng, model = self.g, self.rng, self.g.model
        t0 = g._at(self.day, (10 * 60 if self.ward else 8 * 60 + 30) + rng.randint(0, 90))
        if rng.random() < model.did_not_attend:
            self.write({"kind": "did_not_attend", "occurred_at": t0})
            return _Given(0.0, 0.0, self.day)
        programme = self._programme()
        self.write(
            {
                "kind": "check_in",
                "occurred_at": t0,
                "consent_confirmed": True,
                "fasting_confirmed": True,
                "escort_present": True,
                "allergies_confirmed": True,
                "pregnancy_test": "negative" if self.p.sex == "female" else "not_applicable",
                "baseline": self.baseline,
                "baseline_pain_nrs": min(10, max(0, rng.randint(5, 9))),
                "programme": programme,
            }
        )
        midazolam = self._adjuncts(t0 + timedelta(minutes=5), programme)
        start = t0 + timedelta(minutes=15)
        steps = programme["steps"]
        self.write({"kind": "start", "occurred_at": start})
        bolus = float(self.planned.get("bolus_mg", 0.0))
        if bolus > 0:
            self.write(
                {"kind": "bolus", "occurred_at": start + timedelta(minutes=1), "dose_mg": bolus}
            )
        planned_min = sum(float(s["duration_min"]) for s in steps)
        per_kg = float(self.planned["total_mg"]) / self.p.weight
        side = rng.random() < logistic(
            model.se_intercept + model.se_per_mg_per_kg * per_kg + model.se_midazolam * midazolam
        )
        stop_at = None
        if rng.random() < model.early_stop:
            stop_at = planned_min * rng.uniform(0.3, 0.9)
        ran, mg = self._run(start, steps, planned_min, side, stop_at)
        return _Given(mg + bolus, ran / 60, g.clock.date_of(self._ended))

    def _programme(self) -> dict[str, Any]:
        course, library = self.course, self.g.library
        pump = next(p for p in library.pumps if p.id == course["pump_id"])
        protocol = self.g.kb.protocol(str(course["protocol_id"]))
        programme = programme_of(
            course,
            int(self.planned["session"]),
            pump=pump,
            limits=library.setting(str(course["setting"])),
            observation_min=int(protocol.observation_min or 0) or None,
        )
        data: dict[str, Any] = programme.model_dump(mode="json")
        data.update(
            library_name=library.name,
            library_version=library.version,
            library_digest=library.digest(),
        )
        return data

    def _adjuncts(self, at: datetime, programme: dict[str, Any]) -> int:
        """Chart the ordered adjuncts in mg (most of the time); returns 1 if midazolam was."""
        given = 0
        totals: dict[tuple[str, str], float] = {}
        limits = {(a["drug"], a["route"]): a for a in programme["adjunct_limits"]}
        for adjunct in programme["adjuncts"]:
            if self.rng.random() > 0.85 or adjunct["unit"] not in ("mg", "mg/day"):
                continue
            key = (adjunct["drug"], adjunct["route"])
            totals[key] = totals.get(key, 0.0) + float(adjunct["dose"])
            self.write(
                {
                    "kind": "adjunct",
                    "occurred_at": at,
                    "drug": adjunct["drug"],
                    "dose": adjunct["dose"],
                    "unit": "mg",
                    "route": adjunct["route"],
                }
            )
            limit = limits.get(key)
            if limit is not None and _over_soft(limit, float(adjunct["dose"]), totals[key]):
                # the nurse answers the drug library's soft-limit prompt, as the chart asks
                self.write(
                    {
                        "kind": "acknowledge",
                        "occurred_at": at + timedelta(minutes=1),
                        "prompt_id": f"adjunct-{self.seq}",
                        "note": "dose as ordered, checked with the physician",
                    }
                )
            given |= adjunct["drug"] == "midazolam"
        return given

    def _run(
        self,
        start: datetime,
        steps: list[dict[str, Any]],
        planned_min: float,
        side_effect: bool,
        stop_at: float | None,
    ) -> tuple[float, float]:
        """The pump from ``start``: steps, observations, a side effect, the end; returns the
        minutes it ran and the mg it delivered."""
        rng = self.rng
        every = self.g.config.ward_vitals_every_min if self.ward else self.g.config.vitals_every_min
        end_min = stop_at if stop_at is not None else planned_min * rng.uniform(0.98, 1.01)
        effect_min = end_min * rng.uniform(0.2, 0.8) if side_effect else None
        effect = _effect(rng) if side_effect else None
        if effect == "dissociation" and effect_min is not None:
            end_min = min(end_min, effect_min + 3)
        pause_min = 0.0
        marks: list[tuple[float, str, dict[str, Any]]] = []
        clock = 0.0
        for number, step in enumerate(steps, start=1):
            if number > 1 and clock < end_min:
                marks.append((clock, "rate", {"rate_ml_per_h": step["rate_ml_per_h"]}))
            clock += float(step["duration_min"])
        vitals_at = every
        while vitals_at < end_min:
            marks.append((vitals_at, "vitals", {}))
            vitals_at += every
        if effect is not None and effect_min is not None:
            marks.append((effect_min, "effect", {"effect": effect}))
        marks.sort(key=lambda m: m[0])
        mg = 0.0
        last, rate = 0.0, float(steps[0]["rate_mg_per_h"])
        for at_min, what, data in marks:
            at = start + timedelta(minutes=at_min + pause_min)
            if what == "rate":
                mg += rate * (at_min - last) / 60
                last, rate = at_min, _rate_mg(steps, data["rate_ml_per_h"])
                self.write({"kind": "rate_change", "occurred_at": at, **data})
            elif what == "vitals":
                self.vitals(at)
            else:
                pause_min += self._side_effect(at, data["effect"])
        mg += rate * (end_min - last) / 60
        ended = start + timedelta(minutes=end_min + pause_min)
        if stop_at is not None or effect == "dissociation":
            reason = "dissociation" if effect == "dissociation" else "patient_request"
            self.write({"kind": "stop", "occurred_at": ended, "reason": reason})
        else:
            self.write({"kind": "complete", "occurred_at": ended})
        self._ended = ended
        self._discharge(ended)
        return end_min, mg

    def _side_effect(self, at: datetime, effect: str) -> float:
        """Chart a side effect; a troublesome one pauses the pump for the hour. Returns the
        minutes the pump was paused."""
        rng = self.rng
        severity = (
            "moderate"
            if effect == "dissociation"
            else rng.choice(("mild", "mild", "mild", "moderate"))
        )
        entry: dict[str, Any] = {
            "kind": "side_effect",
            "occurred_at": at,
            "effect": effect,
            "severity": severity,
        }
        if effect == "other":
            entry["description"] = "dizziness"
        self.write(entry)
        if effect == "dissociation" or severity == "mild":
            return 0.0
        paused = at + timedelta(minutes=2)
        self.write({"kind": "pause", "occurred_at": paused, "reason": "side_effect"})
        minutes = 2 + 60 + rng.randint(1, 10)
        self.write({"kind": "resume", "occurred_at": at + timedelta(minutes=minutes)})
        return float(minutes)

    def _discharge(self, ended: datetime) -> None:
        protocol = self.g.kb.protocol(str(self.course["protocol_id"]))
        observe = int(protocol.observation_min or 60)
        self.write({"kind": "begin_observation", "occurred_at": ended + timedelta(minutes=1)})
        self.vitals(ended + timedelta(minutes=observe - 10))
        self.write(
            {
                "kind": "discharge_assessment",
                "occurred_at": ended + timedelta(minutes=observe - 5),
                "oriented": True,
                "steady_gait": True,
                "pain_nausea_vomiting": "minimal",
                "bleeding": "minimal",
                "oral_fluids": True,
                "voided": True,
            }
        )
        self.write(
            {
                "kind": "discharge",
                "occurred_at": ended + timedelta(minutes=observe + 5),
                "escort_present": True,
                "escort_name": "",
                "emergency_plan_given": True,
            }
        )


def _rate_mg(steps: list[dict[str, Any]], rate_ml: float) -> float:
    return float(next(s["rate_mg_per_h"] for s in steps if s["rate_ml_per_h"] == rate_ml))


def _effect(rng: random.Random) -> str:
    return _weighted(
        rng,
        {
            "nausea-vomiting": 0.35,
            "headache": 0.2,
            "dissociation": 0.12,
            "hallucination": 0.1,
            "visual-disturbance": 0.15,
            "other": 0.08,
        },
    )


def _document(
    number: int,
    sex: str,
    weight: int,
    height: int,
    born: date,
    diagnosis: str,
    registered: date,
    patient_id: int,
) -> dict[str, Any]:
    from ketapath.services.patients import validate_document

    document = validate_document(
        {
            "name": f"Synthetic Patient {number:05d}",
            "birth_date": born.isoformat(),
            "sex": sex,
            "weight_kg": weight,
            "height_cm": height,
            "weight_measured_on": registered.isoformat(),
            "pregnancy": "not_pregnant" if sex == "female" else "not_applicable",
            "diagnoses": [diagnosis],
            "medications": [
                {
                    "name": "oxycodone",
                    "dose": 10,
                    "unit": "mg",
                    "frequency": "twice daily",
                    "route": "oral",
                }
            ],
            "consent": "given",
            "assessment": {
                "central_sensitisation": True,
                "opioid_context": {"poor_opioid_response": True},
            },
            "purpose": ["pain_relief"],
        },
        registered,
    )
    return {**document, "id": str(patient_id)}


def _nrs_scores() -> dict[int, dict[str, Any]]:
    from ketapath.services.assessments import score_answers

    return {n: score_answers("nrs", {"pain": n}) for n in range(11)}


def generate(
    config: Config, clock: ClinicClock, next_id: dict[str, int], generator: list[Generator]
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """The rows of the registry, ``config.chunk`` patients at a time (each chunk's rows refer
    only to ids of its own and earlier chunks); ``generator`` receives the generator (its
    ``truth``)."""
    rows = Rows(dict(next_id))
    made = Generator(config, clock, rows)
    generator.append(made)
    for number in range(1, config.patients + 1):
        made.patient(number)
        if number % config.chunk == 0 or number == config.patients:
            yield rows.take()


@dataclass(frozen=True)
class SynthReport:
    """What was written, how long it took, and (with ``keep_truth``) what the model drew."""

    rows: dict[str, int]
    generate_seconds: float
    write_seconds: float
    summary_seconds: float
    courses_summarised: int
    truth: tuple[CourseTruth, ...]


class NotEmpty(Exception):
    """The database already holds patients (and --force was not given)."""


def synthesise(
    db: Database,
    config: Config,
    clock: ClinicClock,
    *,
    force: bool = False,
    keep_truth: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SynthReport:
    """Write the synthetic registry to ``db`` in bulk, then summarise it for the registry.

    Refuses (``NotEmpty``) a database that holds patients unless ``force``. One audit entry
    (``registry.synth``, by the system) records what was written.
    """
    import time

    from ketapath.services import audit
    from ketapath.services.permissions import SYSTEM
    from ketapath.services.registry_store import compact_marks, refresh
    from ketapath.store import bulk

    say = progress or (lambda _: None)
    with db.engine.connect() as connection:
        if not force and not bulk.is_empty(connection, ["patients"]):
            raise NotEmpty(
                "the database already holds patients: the synthetic registry is written only "
                "to an empty database (give --force to add to this one)"
            )
        first = bulk.next_ids(connection, TABLES)
    counts = dict.fromkeys(TABLES, 0)
    made: list[Generator] = []
    generating = writing = 0.0
    clock_start = time.perf_counter()
    for chunk in generate(config, clock, first, made):
        generated = time.perf_counter()
        generating += generated - clock_start
        with db.engine.begin() as connection:
            for name in TABLES:
                counts[name] += bulk.insert_rows(connection, name, chunk.get(name, []))
        clock_start = time.perf_counter()
        writing += clock_start - generated
        say(f"{counts['patients']} patients, {counts['session_events']} chart entries written")
    with db.engine.begin() as connection:
        bulk.advance_sequences(connection, TABLES)
    with db.transaction() as session:
        audit.record(
            session,
            SYSTEM,
            "registry.synth",
            entity="registry",
            detail={"seed": config.seed, "centres": config.centres, "rows": counts},
        )
    say("summarising the courses for the registry")
    compact_marks(db)
    report = refresh(db, clock)
    truth = tuple(made[0].truth) if keep_truth and made else ()
    return SynthReport(counts, generating, writing, report.seconds, report.courses, truth)


def _over_soft(limit: dict[str, Any], dose: float, total: float) -> bool:
    """Whether an adjunct dose (or the session's total of it) is above a soft limit in mg."""
    over_dose = (
        limit["dose_unit"] == "mg" and limit["dose_soft"] is not None and dose > limit["dose_soft"]
    )
    over_total = limit["session_soft"] is not None and total > limit["session_soft"]
    return bool(over_dose or over_total)
