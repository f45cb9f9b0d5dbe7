"""What every page shares: templates, the signed-in user, CSRF, and errors shown as pages.

Pages are thin: they read the form, call one service, and render what it returns. The rules
(who may do what, what is valid) live in the services, so a page gives the same answer as
the API and the command line.

Errors are shown to people, not programs: a service error raised while answering a page
becomes an HTML page (or, for a form, the form again with the message next to the field it
names). Signing in is asked for by a redirect to ``/login`` that comes back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from ketapath.api.deps import csrf_token_for, current_user
from ketapath.config import Settings
from ketapath.domain.errors import DomainError
from ketapath.domain.findings import SEVERITY_LABELS, cite
from ketapath.knowledge.bibliography import bibliography
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import AuthenticationFailed, ServiceError
from ketapath.services.permissions import Actor
from ketapath.services.validation import field_path

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# htmx is served from /static, so scripts may come from this site only; htmx's own inline
# indicator <style> is switched off in base.html so styles can be 'self' too.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # patient data must not linger in shared caches or the back-forward cache of a ward PC
    "Cache-Control": "no-store",
}

ROLE_LABELS = {
    "physician": "Physician",
    "nurse": "Nurse",
    "pharmacist": "Pharmacist",
    "researcher": "Researcher",
    "admin": "Administrator",
}


def clinic_zone(request: Request | None) -> tzinfo | None:
    """The clinic's time zone from the app's settings (None: the server's own zone)."""
    settings = getattr(getattr(request, "app", None), "state", None)
    settings = getattr(settings, "settings", None)
    return settings.zone() if isinstance(settings, Settings) else None


def clinic_clock_for(request: Request) -> ClinicClock:
    """The clinic's calendar ("today" in its zone) for the services a page calls."""
    return ClinicClock(clinic_zone(request))


def in_zone(value: datetime, zone: tzinfo | None) -> datetime:
    """A stored UTC time in the clinic's zone (the server's own when none is set)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone) if zone is not None else value.astimezone()


def format_time(value: datetime | None, zone: tzinfo | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time as the clinic's local time, with its zone (times are stored UTC)."""
    if value is None:
        return ""
    local = in_zone(value, zone)
    return f"{local.strftime(fmt)} {local.tzname() or ''}".strip()


@pass_context
def local_time(context: Context, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return format_time(value, clinic_zone(context.get("request")), fmt)


@pass_context
def local_date(context: Context, value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return in_zone(value, clinic_zone(context.get("request"))).date().isoformat()
    return value.isoformat()


def number(value: float | int | None, digits: int = 2) -> str:
    """A number without trailing zeros (12.5, 80, 0.35); an empty string for nothing."""
    if value is None:
        return ""
    text = f"{float(value):.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def clock(minutes: float | int | None) -> str:
    """Minutes from a session's start as h:mm (90 -> 1:30, 7200 -> 120:00)."""
    if minutes is None:
        return ""
    whole = round(float(minutes))
    return f"{whole // 60}:{whole % 60:02d}"


def full_reference(ref_id: str) -> str:
    """The full reference of a bibliography entry (for a citation's tooltip)."""
    references = bibliography()
    return references.get(ref_id).full() if ref_id in references else ""


templates.env.filters["local_time"] = local_time
templates.env.filters["local_date"] = local_date
templates.env.filters["number"] = number
templates.env.filters["clock"] = clock
templates.env.globals["role_labels"] = ROLE_LABELS
templates.env.globals["severity_labels"] = SEVERITY_LABELS
templates.env.globals["full_reference"] = full_reference
templates.env.globals["cite"] = cite


def safe_next(target: str | None, default: str = "/patients") -> str:
    """Only a path on this site may follow sign-in (no open redirect to another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    # Browsers drop tabs and newlines inside URLs, so "/\t/evil.example" would become "//...".
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target):
        return default
    return target


async def posted_form(request: Request) -> dict[str, str]:
    """The posted form's text fields (files are never accepted by these pages)."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a template with what every page needs (user, CSRF token, htmx request?)."""
    data: dict[str, Any] = {
        "user": getattr(request.state, "actor", None),
        "csrf_token": csrf_token_for(request) or getattr(request.state, "anonymous_csrf", ""),
        "htmx": request.headers.get("HX-Request") == "true",
        "path": request.url.path,
    }
    data.update(context or {})
    response = templates.TemplateResponse(request, name, data, status_code=status_code)
    return response


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    """The error as a page, or as a panel when htmx asked for a part of a page."""
    partial = request.headers.get("HX-Request") == "true"
    return render(
        request,
        "_error_panel.html" if partial else "error.html",
        {"title": title, "message": message, "status_code": status_code},
        status_code=status_code,
    )


ERROR_TITLES = {
    400: "This could not be done",
    403: "Not allowed for your role",
    404: "Not found",
    409: "Changed by someone else",
    422: "Please check what was entered",
    423: "Account locked",
}


class PageRoute(APIRoute):
    """A route whose errors are pages: sign-in redirects, 403/404 pages, security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except AuthenticationFailed:
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                if request.method != "GET":
                    target = request.headers.get("HX-Current-URL") or "/patients"
                location = "/login?next=" + quote(safe_next(target), safe="/")
                if request.headers.get("HX-Request") == "true":
                    response = Response(status_code=204, headers={"HX-Redirect": location})
                else:
                    response = RedirectResponse(location, status_code=303)
            except ServiceError as error:
                title = ERROR_TITLES.get(error.status_code, "This could not be done")
                response = error_page(request, error.status_code, title, error.message)
            except DomainError as error:
                response = error_page(request, 422, ERROR_TITLES[422], error.message)
            except RequestValidationError as error:
                problems = "; ".join(
                    f"{field_path(tuple(e['loc'][1:])) or 'form'}: {e['msg']}"
                    for e in error.errors()
                )
                response = error_page(request, 422, ERROR_TITLES[422], problems)
            for header, value in SECURITY_HEADERS.items():
                response.headers.setdefault(header, value)
            return response

        return page_handler


async def page_user(request: Request, actor: Annotated[Actor, Depends(current_user)]) -> Actor:
    """The signed-in user (cookie session; CSRF checked on posts), kept for the templates."""
    request.state.actor = actor
    return actor


PageUser = Annotated[Actor, Depends(page_user)]


def home_for(actor: Actor) -> str:
    """Where a user lands after sign-in: the part of the system their role uses."""
    if actor.may("patient.list"):
        return "/patients"
    if actor.may("research.read"):
        return "/research"
    return "/users"
