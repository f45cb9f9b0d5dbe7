"""Service and validation errors as JSON 4xx answers that name the field at fault."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ketapath.services.errors import AuthenticationFailed, ServiceError
from ketapath.services.validation import field_path


def _field(location: tuple[Any, ...]) -> str:
    # FastAPI prefixes the place the value came from: body, query, path, header, cookie.
    if location and location[0] in ("body", "query", "path", "header", "cookie", "form"):
        location = location[1:]
    return field_path(tuple(location)) or "body"


async def service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, AuthenticationFailed) else None
    return JSONResponse(
        status_code=error.status_code,
        content=jsonable_encoder({"detail": error.message, "field": error.field, **error.details}),
        headers=headers,
    )


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        {"field": _field(tuple(item["loc"])), "message": item["msg"], "type": item["type"]}
        for item in error.errors()
    ]
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return JSONResponse(
        status_code=422,
        content=jsonable_encoder(
            {
                "detail": f"{first['field']}: {first['message']}{more}",
                "field": first["field"],
                "errors": problems,
            }
        ),
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
