"""Parameter types shared by every route of the API and the web pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import Field

from ketapath.services.clock import ClinicClock, clinic_clock

# Record ids are the tables' integer primary keys, which start at 1. Their columns are 32-bit
# on PostgreSQL (``Integer``: SERIAL) and 64-bit on SQLite, so the largest id both can hold is
# 2**31 - 1; a larger number cannot name a record. It is refused at the edge (422 naming the
# parameter) instead of reaching the database, where it fails (PostgreSQL: "integer out of
# range"; SQLite beyond 64 bits: OverflowError in the driver), which would be a 500.
MAX_RECORD_ID = 2**31 - 1

RecordId = Annotated[int, Field(ge=1, le=MAX_RECORD_ID)]
"""A record id in a path or query (patient, assessment, order, opioid plan or dose)."""


def record_id(text: str) -> int | None:
    """A record id typed into a form field, or None when the text cannot be one."""
    text = text.strip()
    if not text.isdigit() or len(text) > len(str(MAX_RECORD_ID)):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_RECORD_ID else None


def clinic_clock_of(request: Request) -> ClinicClock:
    """The clinic's calendar from the application's settings (KETAPATH_TIMEZONE)."""
    return clinic_clock(request.app.state.settings)


ClockDep = Annotated[ClinicClock, Depends(clinic_clock_of)]
"""The clinic's "today" for services that check dates (never the server's own date)."""
