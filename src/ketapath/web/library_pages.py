"""The drug library page: the active library (pumps, stocked strengths, limits per care
setting, adjunct limits, where published ranges disagree and which one it follows), its
history, and for a pharmacist or an administrator the form that checks a new library file
and approves and loads it.

Every rule is in ``ketapath.services.library`` (who may do what, what is valid); the page
reads the form and shows what the service returns.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from ketapath.api.deps import DatabaseDep
from ketapath.knowledge.library import library_yaml
from ketapath.services import library
from ketapath.services.errors import InvalidInput
from ketapath.services.permissions import Actor
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.web.forms import FormErrors
from ketapath.web.pages import PageRoute, PageUser, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

LIMIT_ROWS = (
    ("bolus_mg_per_kg", "Bolus", "mg/kg"),
    ("rate_mg_per_kg_per_h", "Rate", "mg/kg/h"),
    ("rate_mg_per_h", "Rate", "mg/h"),
    ("session_total_mg_per_kg", "Session total", "mg/kg"),
    ("course_total_mg_per_kg", "Course total", "mg/kg"),
)
SETTING_LABELS = {"clinic": "Day clinic", "ward": "Ward", "icu": "Intensive care"}
VersionQuery = Annotated[int | None, Query(ge=0, le=2**31 - 1)]


def _context(db: Database, actor: Actor, version: int | None) -> dict[str, Any]:
    shown = (
        library.get_active(db, actor)
        if version is None
        else library.get_version(db, actor, version)
    )
    return {
        "shown": shown,
        "lib": shown.document,
        "history": library.list_versions(db, actor),
        "limit_rows": LIMIT_ROWS,
        "setting_labels": SETTING_LABELS,
        "may_manage": actor.may("library.manage"),
        "check": None,
        "upload_errors": None,
        "reason_length": REASON_LENGTH,
        "reason": "",
    }


@router.get("/library", response_class=HTMLResponse)
def library_page(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    version: VersionQuery = None,
    loaded: VersionQuery = None,
) -> HTMLResponse:
    context = _context(db, actor, version)
    context["loaded"] = loaded
    return render(request, "library.html", context)


@router.get("/library/export", response_model=None)
def export_library(actor: PageUser, db: DatabaseDep, version: VersionQuery = None) -> Response:
    """The library as a YAML file a pharmacist can edit and load as a new version."""
    shown = (
        library.get_active(db, actor)
        if version is None
        else library.get_version(db, actor, version)
    )
    return Response(
        library_yaml(shown.document),
        media_type="application/x-yaml",
        headers={
            "Content-Disposition": f'attachment; filename="drug-library-v{shown.version}.yaml"'
        },
    )


def _checked_again(db: Database, actor: Actor, document_text: str) -> dict[str, Any]:
    """The check of a document whose approval was refused (e.g. no reason), to show again."""
    try:
        document = library.document_from_text(document_text, "library.json")
        return {
            "check": library.check_library(db, actor, document),
            "document_text": document_text,
        }
    except InvalidInput:
        return {}


async def _document(upload: UploadFile | None) -> dict[str, Any]:
    if upload is None or not upload.filename:
        raise InvalidInput("file: choose the drug library file (.yaml or .json).", field="file")
    raw = await upload.read(library.MAX_LIBRARY_BYTES + 1)
    if len(raw) > library.MAX_LIBRARY_BYTES:
        raise InvalidInput(
            f"file: a drug library file is at most {library.MAX_LIBRARY_BYTES // 1000} kB.",
            field="file",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput("file: not a text file (not UTF-8).", field="file") from error
    return library.document_from_text(text, upload.filename)


LIBRARY_LABELS = {
    "library-file": "Library file",
    "library-reason": "The reason (what changed, and why)",
}


def library_errors() -> FormErrors:
    """The upload and approval forms' problems, at their fields."""
    fields = {"file": "library-file", "document": "library-file", "reason": "library-reason"}
    return FormErrors(LIBRARY_LABELS, where=lambda path: fields.get(path.split(".")[0], ""))


@router.post("/library", response_model=None)
async def upload_library(request: Request, actor: PageUser, db: DatabaseDep) -> Response:
    """Check a library file (``intent=check``); approve and load the checked one (``load``).

    The check shows what the library does to every protocol and carries the checked document
    and its digest into the approval form, so that what is loaded is what was checked. Every
    problem is shown beside its field, with the reason typed kept.
    """
    library.require_manage(db, actor)
    posted = await request.form()
    upload = posted.get("file")
    text = {k: v for k, v in posted.items() if isinstance(v, str)}
    reason = text.get("reason", "")
    document_text = text.get("document_text", "")
    loading = text.get("intent", "check") == "load"
    errors = library_errors()
    errors.limit({"library-reason": reason}, "library-reason", REASON_LENGTH)
    if loading:
        errors.require({"library-reason": reason}, "library-reason")
        if not document_text or len(document_text.encode()) > library.MAX_LIBRARY_BYTES:
            errors.add("", "The checked library did not come back with the form: check it again.")
    checked: dict[str, Any] = {}
    try:
        if loading and not errors:
            document = library.document_from_text(document_text, "library.json")
            digest = text.get("checked_digest", "")[:64] or None
            loaded = library.load_library(db, actor, document, reason=reason, checked_digest=digest)
            return RedirectResponse(f"/library?loaded={loaded.version}", status_code=303)
        if not loading and not errors:
            document = await _document(upload if isinstance(upload, UploadFile) else None)
            checked = {
                "check": library.check_library(db, actor, document),
                "document_text": json.dumps(document, indent=1),
            }
    except InvalidInput as error:
        errors.add_error(error)
    context = _context(db, actor, None)
    context["reason"] = reason
    if errors:
        context["upload_errors"] = errors
        if loading and document_text:
            context.update(_checked_again(db, actor, document_text))
        return render(request, "library.html", context, status_code=422)
    context.update(checked)
    return render(request, "library.html", context)
