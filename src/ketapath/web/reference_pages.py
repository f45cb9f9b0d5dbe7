"""The references page: every work ketapath cites (full references, with DOI and PMID), and
the catalogue of finding codes. A citation beside any rule links here (``#<id>``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ketapath.knowledge.clinical import knowledge
from ketapath.web.pages import PageRoute, PageUser, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/references", response_class=HTMLResponse)
def references_page(request: Request, actor: PageUser) -> HTMLResponse:
    kb = knowledge()
    return render(
        request,
        "references.html",
        {"references": kb.bibliography.references, "codes": kb.finding_codes.entries},
    )
