"""The clinic's calendar: "today" and local dates in the clinic's time zone (KETAPATH_TIMEZONE).

A server may run in another zone than the clinic (a cloud host on UTC, a clinic in Sydney): the
date that bounds a birth date, an assessment or a dose record is the clinic's, never the
server's. Interfaces pass ``clinic_clock(settings)`` to the services; a service called without
one uses the process settings (``ketapath.config.get_settings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo

from ketapath.config import Settings, get_settings


@dataclass(frozen=True)
class ClinicClock:
    """Dates in the clinic's zone (``zone`` None: the server's own, as in the settings).

    ``fixed`` stops the clock at one instant (tests and scenario replays); otherwise ``now``
    is the real time.
    """

    zone: tzinfo | None = None
    fixed: datetime | None = None

    def now(self) -> datetime:
        """The current instant (UTC)."""
        return self.fixed.astimezone(UTC) if self.fixed is not None else datetime.now(UTC)

    def tz(self) -> tzinfo:
        """The clinic's zone, or the server's own when none is configured."""
        if self.zone is not None:
            return self.zone
        local = datetime.now(UTC).astimezone().tzinfo
        return local if local is not None else UTC

    def start_of(self, day: date) -> datetime:
        """The first instant of a clinic date."""
        if self.zone is None:
            return datetime.combine(day, time.min).astimezone()
        return datetime.combine(day, time.min, tzinfo=self.zone)

    def local(self, at: datetime) -> datetime:
        """A moment as the clinic's local time."""
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at.astimezone(self.zone) if self.zone is not None else at.astimezone()

    def today(self) -> date:
        """The clinic's date now."""
        return self.local(self.now()).date()

    def date_of(self, at: datetime) -> date:
        """The clinic's date at a moment (for comparing a time with a birth date)."""
        return self.local(at).date()


def clinic_clock(settings: Settings | None = None) -> ClinicClock:
    """The clock of ``settings`` (default: the process settings from the environment)."""
    return ClinicClock((settings or get_settings()).zone())
