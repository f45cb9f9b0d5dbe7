"""The router of every web page (mounted by ``ketapath.web.install``)."""

from __future__ import annotations

from fastapi import APIRouter

from ketapath.web import (
    assessment_pages,
    auth_pages,
    diary_pages,
    evidence_pages,
    fhir_pages,
    indicator_pages,
    ledger_pages,
    letter_pages,
    library_pages,
    opioid_pages,
    order_pages,
    outcome_pages,
    patient_pages,
    record_pages,
    reference_pages,
    registry_pages,
    research_pages,
    safety_pages,
    screening_pages,
    session_pages,
)

router = APIRouter(include_in_schema=False)
# record_pages first: its /patients/new must not be taken for a patient number.
for module in (
    auth_pages,
    record_pages,
    patient_pages,
    assessment_pages,
    screening_pages,
    order_pages,
    opioid_pages,
    reference_pages,
    library_pages,
    session_pages,
    ledger_pages,
    indicator_pages,
    safety_pages,
    diary_pages,
    outcome_pages,
    letter_pages,
    evidence_pages,
    fhir_pages,
    research_pages,
    registry_pages,
):
    router.include_router(module.router)
