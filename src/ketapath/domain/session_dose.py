"""The delivered dose of an infusion session, exact: rational arithmetic, never float sums.

A running segment delivers ``rate x time``: the pump's rate in mL/h times the bag's
concentration in mg/mL gives mg/h, and the time between two chart entries in hours. Every
number is a ``fractions.Fraction``: a rate typed as 4.4 mL/h is the decimal 4.4 (not the
binary float nearest to it), a time is a whole number of microseconds, so the dose of any
split of the same infusion is exactly the same number. It is shown to 1e-9 mg
(``mg_text``) and as the nearest float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

MICROSECONDS_PER_HOUR = 3_600_000_000
MICROSECONDS_PER_MINUTE = 60_000_000


def exact(value: float) -> Fraction:
    """The decimal number a float was written as (4.4 -> 22/5), exactly."""
    return Fraction(Decimal(repr(float(value))))


def microseconds(span: timedelta) -> int:
    """A time span in whole microseconds (timedelta's own resolution, so exact)."""
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def hours_between(start: datetime, end: datetime) -> Fraction:
    """Hours from ``start`` to ``end``, exactly; 0 when ``end`` is not after ``start``."""
    return Fraction(max(0, microseconds(end - start)), MICROSECONDS_PER_HOUR)


def minutes_between(start: datetime, end: datetime) -> Fraction:
    return Fraction(max(0, microseconds(end - start)), MICROSECONDS_PER_MINUTE)


def after(start: datetime, minutes: Fraction | int) -> datetime:
    """``start`` plus a whole number of microseconds closest to ``minutes``."""
    return start + timedelta(microseconds=round(Fraction(minutes) * MICROSECONDS_PER_MINUTE))


def mg_text(value: Fraction, places: int = 9) -> str:
    """A dose as decimal text rounded half-even to ``places`` decimals ('80.000000000')."""
    with localcontext() as context:
        context.prec = 60
        quotient = Decimal(value.numerator) / Decimal(value.denominator)
        return str(quotient.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True)
class Segment:
    """The pump running at one rate from ``start`` until ``end`` (None: still running)."""

    start: datetime
    end: datetime | None
    rate_ml_per_h: Fraction
    rate_mg_per_h: Fraction
    seq: int

    def until(self, now: datetime) -> datetime:
        """Where the segment ends when the dose is read at ``now``."""
        if self.end is not None:
            return self.end
        return max(self.start, now)

    def mg(self, now: datetime) -> Fraction:
        return self.rate_mg_per_h * hours_between(self.start, self.until(now))

    def ml(self, now: datetime) -> Fraction:
        return self.rate_ml_per_h * hours_between(self.start, self.until(now))

    def minutes(self, now: datetime) -> Fraction:
        return minutes_between(self.start, self.until(now))


def infusion_mg(segments: list[Segment], now: datetime) -> Fraction:
    """The dose the running segments delivered by ``now`` (pauses are not segments)."""
    return sum((s.mg(now) for s in segments), Fraction(0))


def infused_ml(segments: list[Segment], now: datetime) -> Fraction:
    return sum((s.ml(now) for s in segments), Fraction(0))


def running_minutes(segments: list[Segment], now: datetime) -> Fraction:
    return sum((s.minutes(now) for s in segments), Fraction(0))
