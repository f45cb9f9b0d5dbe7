"""What every page shares: templates, the signed-in user, CSRF, and errors shown as pages.

Pages are thin: they read the form, call one service, and render what it returns. The rules
(who may do what, what is valid) live in the services, so a page gives the same answer as
the API and the command line.

Errors are shown to people, not programs: a service error raised while answering a page
becomes an HTML page (or, for a form, the form again with the message next to the field it
names). Signing in is asked for by a redirect to ``/login`` that comes back afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.exceptions import HTTPException as StarletteHTTPException

from ketapath.api.deps import CSRF_FIELD, csrf_token_for, current_user
from ketapath.api.errors import api_http_error
from ketapath.config import Settings
from ketapath.domain.errors import DomainError
from ketapath.domain.findings import SEVERITY_LABELS, cite
from ketapath.knowledge.bibliography import bibliography
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import AuthenticationFailed, PermissionDenied, ServiceError
from ketapath.services.permissions import Actor
from ketapath.web.forms import FormErrors, brief, plain

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
    if abs(float(value)) >= 1e12 or not math.isfinite(float(value)):
        return brief(value)  # a number no record should hold, shown briefly (1e+300)
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


def same_site_path(request: Request) -> str:
    """The page the browser came from (its Referer), when it is a page of this site."""
    referer = request.headers.get("referer", "")
    if not referer:
        return ""
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.url.netloc:
        return ""
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_next(path, "")


def error_page(
    request: Request,
    status_code: int,
    title: str,
    message: str,
    *,
    back: str = "",
    back_label: str = "Back to the page you came from",
) -> HTMLResponse:
    """The error as a page with a way back, or as a panel when htmx asked for a part of a
    page. ``back`` is where the way back leads (default: the page the browser came from)."""
    partial = request.headers.get("HX-Request") == "true"
    back = back or same_site_path(request)
    return render(
        request,
        "_error_panel.html" if partial else "error.html",
        {
            "title": title,
            "message": message,
            "status_code": status_code,
            "back": back if back != request.url.path else "",
            "back_label": back_label,
        },
        status_code=status_code,
    )


ERROR_TITLES = {
    400: "This could not be done",
    403: "Not allowed for your role",
    404: "Not found",
    405: "This page cannot be used that way",
    409: "Changed by someone else",
    410: "This link cannot be used",
    422: "Please check what was entered",
    423: "Account locked",
    429: "Too many attempts",
    500: "Something went wrong",
}
# Words for what a page address names (path and query parameters).
PARAMETER_LABELS = {
    "patient_id": "The patient number",
    "order_id": "The order number",
    "plan_id": "The opioid plan number",
    "version": "The version",
    "loaded": "The version",
    "q": "The search",
    "instrument_id": "The instrument",
    "protocol_id": "The protocol",
    "setting": "The care setting",
    "weight_basis": "The weight basis",
    "concentration_mg_per_ml": "The bag concentration",
    "ladder_steps": "The ladder steps",
    "ladder_ceiling": "The ladder ceiling",
}


def expired_form_page(request: Request) -> HTMLResponse:
    """A form posted without its valid token: it expired (a new sign-in, a new session, a
    form left open from before); nothing was done, and reloading gives a fresh form."""
    return error_page(
        request,
        403,
        "This form has expired",
        "The form was opened before your current sign-in (or has been open too long), so it "
        "was not sent and nothing was saved. Reload the page to get a fresh form, then enter "
        "it again.",
        back_label="Reload the form",
    )


def invalid_address_page(request: Request, error: RequestValidationError) -> HTMLResponse:
    """A page address or form that does not fit the page (an id no record can have), in words."""
    problems = FormErrors(PARAMETER_LABELS, where=lambda path: path)
    places = set()
    for item in error.errors():
        location = tuple(item["loc"])
        places.add(location[0] if location else "")
        problems.add_details([{**item, "loc": location[1:]}])  # type: ignore[typeddict-item]
    in_address = places <= {"path", "query"}
    return error_page(
        request,
        422,
        "Please check the address" if in_address else ERROR_TITLES[422],
        " ".join(problem.message for problem in problems.problems),
        back="/",
        back_label="Go to the start page",
    )


def service_error_page(request: Request, error: ServiceError) -> HTMLResponse:
    """A service's refusal as a page, in words; a missing or stale form token is an expired
    form, not a question of the role."""
    if isinstance(error, PermissionDenied) and error.field == CSRF_FIELD:
        return expired_form_page(request)
    title = ERROR_TITLES.get(error.status_code, "This could not be done")
    return error_page(request, error.status_code, title, plain(error.message))


def sign_in_first(request: Request) -> Response:
    """Not signed in (or the session ended): to the sign-in page, coming back afterwards (for
    a form post: to the page the form was on)."""
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method != "GET":
        target = (
            safe_next(request.headers.get("HX-Current-URL"), "")
            or same_site_path(request)
            or "/patients"
        )
    location = "/login?next=" + quote(safe_next(target), safe="/")
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


class PageRoute(APIRoute):
    """A route whose errors are pages: sign-in redirects, 403/404 pages, an expired form,
    security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except AuthenticationFailed:
                response = sign_in_first(request)
            except ServiceError as error:
                response = service_error_page(request, error)
            except DomainError as error:
                response = error_page(request, 422, ERROR_TITLES[422], plain(error.message))
            except RequestValidationError as error:
                response = invalid_address_page(request, error)
            return with_security_headers(response)

        return page_handler


def is_api_path(path: str, api_prefix: str) -> bool:
    """Whether ``path`` belongs to the API (``/api`` and under), whose errors stay JSON."""
    root = "/" + api_prefix.strip("/").split("/")[0]
    return path == root or path.startswith(root + "/")


def http_error_page(request: Request, error: StarletteHTTPException) -> Response:
    """An address no page answers (404) or a method it does not take (405), as a page with a
    way back. Nothing ran, so nobody is known to be signed in: the page shows no menu."""
    if error.status_code == 404:
        message = (
            "There is no page at this address. It may have been typed or copied wrongly, or "
            "the link that led here is out of date."
        )
    elif error.status_code == 405:
        message = (
            "This address is not opened that way (for example, a form's address opened as a "
            "link). Go back to the page with the form and use its button."
        )
    else:
        message = plain(str(error.detail)) or "The request could not be answered."
    response = error_page(
        request, error.status_code, ERROR_TITLES.get(error.status_code, "Error"), message
    )
    for name, value in (error.headers or {}).items():
        response.headers.setdefault(name, value)
    return response


def server_error_page(request: Request) -> Response:
    """An error in ketapath itself (500): what to do, without the error's details."""
    return error_page(
        request,
        500,
        ERROR_TITLES[500],
        "This is a fault in ketapath, not in what you did, and it has been logged. What you "
        "were doing may not have been saved: check the record before entering it again. If it "
        "happens again, tell the clinic's administrator the time and what you were doing.",
    )


def install_error_pages(app: FastAPI, api_prefix: str) -> None:
    """HTML pages for HTTP errors (404, 405) and server errors (500) outside the API; the
    API's paths keep their JSON answers exactly (``ketapath.api.errors``)."""

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if is_api_path(request.url.path, api_prefix):
            return await api_http_error(request, error, api_prefix)
        return with_security_headers(http_error_page(request, error))

    async def on_server_error(request: Request, error: Exception) -> Response:
        if is_api_path(request.url.path, api_prefix):
            return PlainTextResponse("Internal Server Error", status_code=500)
        try:
            return with_security_headers(server_error_page(request))
        except Exception:  # the page itself failed: the plain answer, as without this handler
            return PlainTextResponse("Internal Server Error", status_code=500)

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_server_error)


def with_security_headers(response: Response) -> Response:
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    return response


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
