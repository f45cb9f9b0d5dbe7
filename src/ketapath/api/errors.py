"""Every API error as one JSON body (``ErrorBody``), declared in the OpenAPI document exactly as
it is sent, naming the field at fault.

- A service error (``ketapath.services.errors``) becomes its status code: 401 not signed in,
  403 not allowed (role, CSRF), 404 no such record, 409 changed by someone else, 422 invalid
  or refused, 423 account locked, 410 a diary link that cannot be used, 429 a rate limit.
  Its ``detail`` is the service's message.
- A request that does not fit the operation's schema (a missing field, a number out of
  range, an id no table can hold) is 422 with every problem in ``errors``.
- A body that cannot be read at all (not UTF-8, a broken form) is 400.
- Any other HTTP error under the API (an unknown path, a wrong method) has the same shape.

Each operation declares the statuses it can answer with (``responses``), all with this body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from ketapath.services.errors import AuthenticationFailed, ServiceError
from ketapath.services.signing import FactChangeView
from ketapath.services.validation import field_path


class FieldProblem(BaseModel):
    """One field that does not fit the operation's schema."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="Where: 'document.weight_kg', 'medications[0].name', 'body'.")
    message: str
    type: str = Field(description="The kind of problem (pydantic's error type).")


class CitationBody(BaseModel):
    """A readable citation: bibliography id, locator, and the short text shown."""

    ref: str
    at: str
    text: str


class MeasureBody(BaseModel):
    """A value measured against a drug-library limit."""

    value: float
    limit: float
    unit: str
    limit_name: str
    sessions: list[int]


class FindingBody(BaseModel):
    """A finding (``ketapath.domain.findings.Finding``): words, rule, citations, code."""

    code: str
    severity: str = Field(description="hard, soft, warning or info.")
    message: str
    rule: str
    citations: list[CitationBody]
    citation: str = Field(description="The short citations joined.")
    subject: str = ""
    measure: MeasureBody | None = None


class ErrorBody(BaseModel):
    """The body of every 4xx answer of the API."""

    model_config = ConfigDict(extra="forbid")

    detail: str = Field(description="What went wrong, in words a clinician understands.")
    field: str | None = Field(description="The input at fault, when there is one.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="Request validation (422): every problem, first one first."
    )
    soft_codes: list[str] | None = Field(
        default=None, description="Soft-limit findings that need a physician's override reason."
    )
    screening_codes: list[str] | None = Field(
        default=None, description="Screening findings that need a physician's override reason."
    )
    findings: list[FindingBody] | None = Field(
        default=None, description="The hard-limit findings that refused a course."
    )
    changes: list[FactChangeView] | None = Field(
        default=None,
        description="A stale order: the dosing facts that changed since it was signed.",
    )


DESCRIPTIONS = {
    400: "The request body cannot be read (not UTF-8 text, not JSON or form data)",
    401: "Not signed in, or the sign-in is wrong or has expired",
    403: "Not allowed for this role, or the CSRF token of a cookie session is missing",
    404: "No such record",
    409: "Changed by someone else: the version given is no longer the current one",
    410: "A diary link that is unknown, already used, expired or withdrawn",
    422: "Invalid input or refused by a clinical rule; `field` names the input at fault",
    423: "The account is locked after repeated failed sign-ins",
    429: "Too many attempts in a while (a rate limit); try again later",
}


def responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses an operation can answer with."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in status_codes}


SIGNED_IN = responses(401, 403, 422)
"""Every operation behind a sign-in: 401 without one, 403 for a role or a missing CSRF token,
422 for invalid input (on any operation: text no record can hold, ``api.storable``)."""


def _body(status_code: int, content: ErrorBody, headers: dict[str, str] | None) -> JSONResponse:
    return JSONResponse(
        status_code=status_code,
        content=jsonable_encoder(content.model_dump(mode="json", exclude_unset=True)),
        headers=headers,
    )


def _field(location: tuple[Any, ...]) -> str:
    # FastAPI prefixes the place the value came from: body, query, path, header, cookie.
    if location and location[0] in ("body", "query", "path", "header", "cookie", "form"):
        location = location[1:]
    return field_path(tuple(location)) or "body"


async def service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, AuthenticationFailed) else None
    body = ErrorBody(detail=error.message, field=error.field, **error.details)
    return _body(error.status_code, body, headers)


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        FieldProblem(field=_field(tuple(item["loc"])), message=item["msg"], type=item["type"])
        for item in error.errors()
    ]
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    body = ErrorBody(
        detail=f"{first.field}: {first.message}{more}", field=first.field, errors=problems
    )
    return _body(422, body, None)


async def api_http_error(request: Request, error: HTTPException, api_prefix: str) -> Response:
    """An HTTP error (unknown path, wrong method) under ``api_prefix`` as ``ErrorBody``; any
    other path gets FastAPI's own JSON answer (the web pages install HTML ones for theirs)."""
    if not request.url.path.startswith(api_prefix + "/"):
        return await http_exception_handler(request, error)
    body = ErrorBody(detail=str(error.detail), field=None)
    return _body(error.status_code, body, dict(error.headers or {}) or None)


def install(app: FastAPI, *, api_prefix: str) -> None:
    """Answer errors with ``ErrorBody``; HTTP errors only under ``api_prefix`` (the pages
    have their own)."""

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return await api_http_error(request, error, api_prefix)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
