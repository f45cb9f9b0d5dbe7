"""Parameter types shared by the routes of the API and the web pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ketapath.services.clock import ClinicClock, clinic_clock


def clinic_clock_of(request: Request) -> ClinicClock:
    """The clinic's calendar from the application's settings (KETAPATH_TIMEZONE)."""
    return clinic_clock(request.app.state.settings)


ClockDep = Annotated[ClinicClock, Depends(clinic_clock_of)]
"""The clinic's "today" for services that check dates (never the server's own date)."""
