"""The eligibility and safety screen of a patient: run it (physician), read it (clinicians)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import RecordId
from ketapath.services import screening
from ketapath.web.pages import PageRoute, PageUser, clinic_clock_for, render
from ketapath.web.patient_pages import patient_context

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# Most serious first: what excludes, what needs a physician's written reason, what informs.
SEVERITY_ORDER = ("hard", "soft", "warning", "info")
SEVERITY_LABELS = {
    "hard": "Not eligible: cannot be overridden",
    "soft": "Needs a physician's override with a reason",
    "warning": "Check by hand",
    "info": "For information",
}
DECISION_LABELS = {
    "eligible": "Eligible",
    "needs_override": "Needs a physician's override",
    "not_eligible": "Not eligible",
}


def grouped_findings(result: dict[str, object]) -> list[tuple[str, str, list[dict[str, str]]]]:
    findings = result.get("findings") or []
    assert isinstance(findings, list)
    groups = []
    for severity in SEVERITY_ORDER:
        items = [f for f in findings if f.get("severity") == severity]
        if items:
            groups.append((severity, SEVERITY_LABELS[severity], items))
    return groups


@router.get("/patients/{patient_id}/screening", response_class=HTMLResponse)
def screening_page(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> HTMLResponse:
    context = patient_context(db, actor, patient_id)
    results = screening.list_screenings(db, actor, patient_id)
    latest = results[0] if results else None
    context.update(
        {
            "latest": latest,
            "earlier": results[1:],
            "groups": grouped_findings(latest.result) if latest else [],
            "decision_labels": DECISION_LABELS,
        }
    )
    return render(request, "screening.html", context)


@router.post("/patients/{patient_id}/screening", response_model=None)
def run_screening(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> RedirectResponse:
    screening.run_screening(db, actor, patient_id, clock=clinic_clock_for(request))
    return RedirectResponse(f"/patients/{patient_id}/screening", status_code=303)
