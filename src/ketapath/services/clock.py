"""The clinic's calendar: "today" and local dates in the clinic's time zone (KETAPATH_TIMEZONE).

A server may run in another zone than the clinic (a cloud host on UTC, a clinic in Sydney): the
date that bounds a birth date, an assessment or a dose record is the clinic's, never the
server's. Interfaces pass ``clinic_clock(settings)`` to the services; a service called without
one uses the process settings (``ketapath.config.get_settings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

from ketapath.config import Settings, get_settings


@dataclass(frozen=True)
class ClinicClock:
    """Dates in the clinic's zone (``zone`` None: the server's own, as in the settings)."""

    zone: tzinfo | None = None

    def local(self, at: datetime) -> datetime:
        """A moment as the clinic's local time."""
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at.astimezone(self.zone) if self.zone is not None else at.astimezone()

    def today(self) -> date:
        """The clinic's date now."""
        return self.local(datetime.now(UTC)).date()

    def date_of(self, at: datetime) -> date:
        """The clinic's date at a moment (for comparing a time with a birth date)."""
        return self.local(at).date()


def clinic_clock(settings: Settings | None = None) -> ClinicClock:
    """The clock of ``settings`` (default: the process settings from the environment)."""
    return ClinicClock((settings or get_settings()).zone())
