"""Dosing regimens: instantaneous boluses and constant-rate infusions on one time axis.

Times are minutes from the start of the course (or of the record). Overlapping infusions add
up (two lines running at once). A regimen turns into a piecewise-constant rate with
breakpoints at every start, end and bolus, which is what the exact solver needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ketapath.knowledge.pk_models import load_pk_input_bounds
from ketapath.pk.errors import PkInputError

Route = Literal["iv", "sc"]


@dataclass(frozen=True)
class Bolus:
    """A dose given instantaneously at ``time_min``."""

    time_min: float
    dose_mg: float

    def __post_init__(self) -> None:
        _check_time("bolus time_min", self.time_min)
        _check_amount("bolus dose_mg", self.dose_mg)
        _check_device("bolus dose_mg", self.dose_mg, "max_bolus_mg", "mg")


@dataclass(frozen=True)
class Infusion:
    """A constant rate from ``start_min`` to ``end_min``."""

    start_min: float
    end_min: float
    rate_mg_per_h: float

    def __post_init__(self) -> None:
        _check_time("infusion start_min", self.start_min)
        _check_time("infusion end_min", self.end_min)
        if self.end_min <= self.start_min:
            raise PkInputError(
                "infusion end_min",
                f"must be after start_min ({self.start_min} min), not {self.end_min} min",
            )
        _check_amount("infusion rate_mg_per_h", self.rate_mg_per_h)
        _check_device("infusion rate_mg_per_h", self.rate_mg_per_h, "max_rate_mg_per_h", "mg/h")

    @property
    def amount_mg(self) -> float:
        return self.rate_mg_per_h * (self.end_min - self.start_min) / 60.0


@dataclass(frozen=True)
class Regimen:
    """Boluses and infusions of racemic ketamine, with the route they are given by."""

    boluses: tuple[Bolus, ...] = ()
    infusions: tuple[Infusion, ...] = ()
    route: Route = "iv"
    notes: tuple[str, ...] = field(default=())

    # -- construction -------------------------------------------------------------------
    @classmethod
    def infusion(cls, start_min: float, end_min: float, rate_mg_per_h: float) -> Regimen:
        """One constant-rate infusion."""
        return cls(infusions=(Infusion(start_min, end_min, rate_mg_per_h),))

    @classmethod
    def bolus(cls, time_min: float, dose_mg: float) -> Regimen:
        """One bolus."""
        return cls(boluses=(Bolus(time_min, dose_mg),))

    @classmethod
    def daily(
        cls,
        *,
        days: int,
        start_min_of_day: float,
        duration_min: float,
        rate_mg_per_h: float,
        bolus_mg: float = 0.0,
    ) -> Regimen:
        """The same session on ``days`` consecutive days (e.g. 4 h daily for 10 days)."""
        if days < 1:
            raise PkInputError("days", f"must be at least 1, not {days}")
        infusions = tuple(
            Infusion(
                d * 1440 + start_min_of_day,
                d * 1440 + start_min_of_day + duration_min,
                rate_mg_per_h,
            )
            for d in range(days)
        )
        boluses = tuple(
            Bolus(d * 1440 + start_min_of_day, bolus_mg) for d in range(days) if bolus_mg > 0
        )
        return cls(boluses=boluses, infusions=infusions)

    @classmethod
    def from_course(cls, course: Any) -> Regimen:
        """The regimen a signed course orders (``ketapath.domain.orders.Course``).

        Each session starts ``start_offset_min`` after the course start; its bolus is given at
        the session start and its steps run at times relative to the session start.
        """
        boluses: list[Bolus] = []
        infusions: list[Infusion] = []
        for session in course.sessions:
            offset = float(session.start_offset_min)
            if session.bolus_mg > 0:
                boluses.append(Bolus(offset, float(session.bolus_mg)))
            for step in session.steps:
                if step.rate_mg_per_h > 0:
                    infusions.append(
                        Infusion(
                            offset + step.start_min,
                            offset + step.end_min,
                            float(step.rate_mg_per_h),
                        )
                    )
        route: Route = "sc" if getattr(course, "route", "iv") == "sc" else "iv"
        return cls(tuple(boluses), tuple(infusions), route=route)

    @classmethod
    def from_infusion_record(
        cls, rows: Iterable[Any], *, boluses: Iterable[Any] = (), route: Route = "iv"
    ) -> Regimen:
        """What was actually given: rows of (start_min, end_min, rate_mg_per_h).

        Rows may be tuples or objects/dicts with those names; boluses are (time_min, dose_mg).
        """
        infusions = tuple(
            Infusion(*_fields(r, ("start_min", "end_min", "rate_mg_per_h"))) for r in rows
        )
        given = tuple(Bolus(*_fields(b, ("time_min", "dose_mg"))) for b in boluses)
        return cls(given, infusions, route=route)

    @classmethod
    def parse(cls, infusions: Iterable[str], boluses: Iterable[str] = ()) -> Regimen:
        """From command-line text: ``START_MIN:END_MIN:RATE_MG_PER_H`` and ``T_MIN:MG``."""
        parsed_infusions = tuple(_parse_segment(text) for text in infusions)
        parsed_boluses = tuple(_parse_bolus(text) for text in boluses)
        return cls(parsed_boluses, parsed_infusions)

    # -- combination --------------------------------------------------------------------
    def __add__(self, other: Regimen) -> Regimen:
        route: Route = "sc" if "sc" in (self.route, other.route) else "iv"
        return Regimen(
            self.boluses + other.boluses,
            self.infusions + other.infusions,
            route,
            self.notes + other.notes,
        )

    def shifted(self, offset_min: float) -> Regimen:
        """The same regimen starting ``offset_min`` later."""
        return Regimen(
            tuple(Bolus(b.time_min + offset_min, b.dose_mg) for b in self.boluses),
            tuple(
                Infusion(i.start_min + offset_min, i.end_min + offset_min, i.rate_mg_per_h)
                for i in self.infusions
            ),
            self.route,
            self.notes,
        )

    def paused(self, start_min: float, end_min: float) -> Regimen:
        """The regimen with every infusion stopped from ``start_min`` to ``end_min``.

        Used for a pause on side effects (e.g. FPM (ANZCA) 2016, section 5: pause 1 h, then
        restart).
        """
        pause = Infusion(start_min, end_min, 0.0)
        kept: list[Infusion] = []
        for inf in self.infusions:
            if inf.end_min <= pause.start_min or inf.start_min >= pause.end_min:
                kept.append(inf)
                continue
            if inf.start_min < pause.start_min:
                kept.append(Infusion(inf.start_min, pause.start_min, inf.rate_mg_per_h))
            if inf.end_min > pause.end_min:
                kept.append(Infusion(pause.end_min, inf.end_min, inf.rate_mg_per_h))
        return Regimen(self.boluses, tuple(kept), self.route, self.notes)

    # -- queries ------------------------------------------------------------------------
    @property
    def total_mg(self) -> float:
        return sum(b.dose_mg for b in self.boluses) + sum(i.amount_mg for i in self.infusions)

    @property
    def end_min(self) -> float:
        """Time of the last dose event (end of the last infusion or the last bolus)."""
        ends = [i.end_min for i in self.infusions] + [b.time_min for b in self.boluses]
        return max(ends, default=0.0)

    def rate_segments(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Breakpoints (B,) and the rate in mg/min on ``[breakpoints[i], breakpoints[i+1])``.

        The first breakpoint is 0; the rate after the last breakpoint is zero. Every bolus time
        is a breakpoint.
        """
        points = {0.0}
        for inf in self.infusions:
            points.update((inf.start_min, inf.end_min))
        points.update(b.time_min for b in self.boluses)
        breakpoints = np.array(sorted(points), dtype=np.float64)
        rates = np.zeros(len(breakpoints), dtype=np.float64)
        for inf in self.infusions:
            lo = int(np.searchsorted(breakpoints, inf.start_min))
            hi = int(np.searchsorted(breakpoints, inf.end_min))
            rates[lo:hi] += inf.rate_mg_per_h / 60.0
        return breakpoints, rates

    def bolus_mg_at(self, breakpoints: NDArray[np.float64]) -> NDArray[np.float64]:
        """Bolus amount (mg) given at each breakpoint."""
        amounts = np.zeros(len(breakpoints), dtype=np.float64)
        for b in self.boluses:
            amounts[int(np.searchsorted(breakpoints, b.time_min))] += b.dose_mg
        return amounts


def _fields(row: Any, names: tuple[str, ...]) -> tuple[float, ...]:
    if isinstance(row, dict):
        return tuple(float(row[n]) for n in names)
    if isinstance(row, tuple | list):
        if len(row) != len(names):
            raise PkInputError("record", f"expected {len(names)} values {names}, got {row!r}")
        return tuple(float(v) for v in row)
    return tuple(float(getattr(row, n)) for n in names)


def _parse_segment(text: str) -> Infusion:
    parts = text.split(":")
    if len(parts) != 3:
        raise PkInputError(
            "--infusion", f"{text!r} is not START_MIN:END_MIN:RATE_MG_PER_H (e.g. 0:240:24.5)"
        )
    start, end, rate = (_number("--infusion", text, p) for p in parts)
    return Infusion(start, end, rate)


def _parse_bolus(text: str) -> Bolus:
    parts = text.split(":")
    if len(parts) != 2:
        raise PkInputError("--bolus", f"{text!r} is not T_MIN:MG (e.g. 0:20)")
    time_min, dose = (_number("--bolus", text, p) for p in parts)
    return Bolus(time_min, dose)


def _number(option: str, text: str, part: str) -> float:
    try:
        value = float(part)
    except ValueError as exc:
        raise PkInputError(option, f"{text!r}: {part!r} is not a number") from exc
    return value


def _check_time(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise PkInputError(name, f"must be a finite number of minutes, not {value}")
    if value < 0:
        raise PkInputError(name, f"must not be negative, not {value} min")
    check_horizon(name, value)


def check_horizon(name: str, value: float) -> None:
    """Times are at most a year after the first dose (``pk_input_bounds.yaml``)."""
    limit = load_pk_input_bounds().max_time_min
    if value > limit:
        raise PkInputError(
            name, f"{value:g} min is more than {limit:g} min (366 days) after the first dose"
        )


def _check_device(name: str, value: float, bound: str, unit: str) -> None:
    """At most what an infusion device can deliver (``pk_input_bounds.yaml``)."""
    limit = float(getattr(load_pk_input_bounds(), bound))
    if value > limit:
        raise PkInputError(
            name, f"{value:g} {unit} is more than an infusion device delivers ({limit:g} {unit})"
        )


def _check_amount(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise PkInputError(name, f"must be a finite number of at least zero, not {value}")
