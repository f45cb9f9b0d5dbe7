"""Parameter types shared by every route of the API and the web pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import Field

from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.validation import MAX_RECORD_ID, is_record_id

# The bound is the database's (see MAX_RECORD_ID): a larger number is a 422 naming the
# parameter, never a database error (500).
RecordId = Annotated[int, Field(ge=1, le=MAX_RECORD_ID)]
"""A record id in a path or query (patient, assessment, order, opioid plan or dose)."""


def record_id(text: str) -> int | None:
    """A record id typed into a form field, or None when the text cannot be one."""
    text = text.strip()
    if not text.isdigit() or len(text) > len(str(MAX_RECORD_ID)):
        return None
    value = int(text)
    return value if is_record_id(value) else None


def clinic_clock_of(request: Request) -> ClinicClock:
    """The clinic's calendar from the application's settings (KETAPATH_TIMEZONE)."""
    return clinic_clock(request.app.state.settings)


ClockDep = Annotated[ClinicClock, Depends(clinic_clock_of)]
"""The clinic's "today" for services that check dates (never the server's own date)."""
