"""Orders: what a signed course tells the pump, session by session.

These are plain values. Times inside a session are minutes from that session's start; a
session starts ``start_offset_min`` minutes after the course starts (day * 1440 plus the
session's start time of day). Every rate is given both in mg/h and in mL/h for the bag
concentration, and ``rate_mg_per_h == rate_ml_per_h * concentration_mg_per_ml`` holds exactly
(the mL/h value is what the pump is set to; the mg/h value is computed back from it). Every
step carries its volume to be infused (mL), and a course names the pump type it was planned
for and the drug library (version and digest) it was checked against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ketapath.domain.findings import Citation, Finding

Route = Literal["iv", "sc"]
Setting = Literal["clinic", "ward", "icu"]
WeightBasis = Literal["actual", "ideal", "adjusted"]


@dataclass(frozen=True)
class RateStep:
    """A constant-rate period of one session."""

    start_min: float
    end_min: float
    rate_mg_per_h: float
    rate_ml_per_h: float
    rate_mg_per_kg_per_h: float
    volume_ml: float
    note: str = ""

    @property
    def duration_min(self) -> float:
        return self.end_min - self.start_min

    @property
    def amount_mg(self) -> float:
        return self.rate_mg_per_h * self.duration_min / 60.0


@dataclass(frozen=True)
class SessionOrder:
    """One infusion session: an optional bolus at its start, then rate steps."""

    number: int
    day: int
    start_offset_min: float
    bolus_mg: float
    bolus_ml: float
    steps: tuple[RateStep, ...]
    total_mg: float
    infusion_volume_ml: float
    condition: str = ""

    @property
    def duration_min(self) -> float:
        return max((s.end_min for s in self.steps), default=0.0)


@dataclass(frozen=True)
class AdjunctOrder:
    """A medicine given with the infusion (e.g. midazolam, clonidine, gabapentin)."""

    drug: str
    dose: float
    unit: str
    route: str
    timing: str
    citations: tuple[Citation, ...]
    dose_max: float | None = None
    prn: bool = False
    basis: str = ""
    doses_per_session: int = 1
    session_total: float = 0.0  # the most a session can give, in ``session_unit``
    session_unit: str = ""


@dataclass(frozen=True)
class LibraryStamp:
    """The drug library a course was checked against: name, version and content digest."""

    name: str
    version: int
    digest: str


@dataclass(frozen=True)
class Override:
    """A physician's acceptance of soft-limit findings, with the reason."""

    physician: str
    reason: str
    codes: tuple[str, ...]


@dataclass(frozen=True)
class Course:
    """A protocol applied to a patient: the complete, limit-checked set of orders."""

    protocol_id: str
    protocol_name: str
    route: Route
    setting: Setting
    concentration_mg_per_ml: float
    dosing_weight_kg: float
    weight_basis: WeightBasis
    actual_weight_kg: float
    sessions: tuple[SessionOrder, ...]
    course_total_mg: float
    adjuncts: tuple[AdjunctOrder, ...] = ()
    findings: tuple[Finding, ...] = ()
    caps_applied: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    override: Override | None = None
    citations: tuple[Citation, ...] = field(default=())
    pump_id: str = ""
    pump_name: str = ""
    library: LibraryStamp | None = None
