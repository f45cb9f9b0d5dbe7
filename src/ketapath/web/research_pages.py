"""The research page: the de-identified views (researchers) and the download of the
de-identified research export (researchers and physicians).

The download is a plain form that GETs ``/api/v1/research/export`` through the signed-in
session (a file, not a page); every export is audited by the service.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ketapath.api.deps import DatabaseDep, SettingsDep
from ketapath.api.params import ClockDep
from ketapath.services import research, research_export
from ketapath.web.pages import PageRoute, PageUser, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

EXPORT_URL = "/api/v1/research/export"


@router.get("/research", response_class=HTMLResponse)
def research_page(
    request: Request, actor: PageUser, db: DatabaseDep, clock: ClockDep, settings: SettingsDep
) -> HTMLResponse:
    """The views for a researcher, the export for a researcher or a physician; anyone else
    is refused (and the refusal audited)."""
    may_read = actor.may("research.read")
    context: dict[str, object] = {"may_read": may_read, "export_url": EXPORT_URL}
    if actor.may("research.export") or not may_read:
        context["catalogue"] = research_export.catalogue(db, actor)
    if may_read:
        context["patients"] = research.research_patients(db, actor, clock=clock, settings=settings)
        context["assessments"] = research.research_assessments(
            db, actor, clock=clock, settings=settings
        )
    return render(request, "research.html", context)
