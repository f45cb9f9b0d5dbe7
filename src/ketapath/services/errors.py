"""Errors a service raises. Interfaces map them to HTTP status codes or exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_core import ErrorDetails


class ServiceError(Exception):
    """Base of every service error; ``field`` names the input at fault when there is one."""

    status_code = 400

    def __init__(
        self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}


class InvalidInput(ServiceError):
    """Input that is missing or malformed. ``message`` and ``field`` name the first problem;
    ``problems`` holds every problem validation found (pydantic's error details, ``loc`` the
    whole path from the input's top), so that a form can show them all at once."""

    status_code = 422

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        problems: Sequence[ErrorDetails] = (),
    ) -> None:
        super().__init__(message, field=field, details=details)
        self.problems = tuple(problems)


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    """The record changed under the user (e.g. someone amended it first)."""

    status_code = 409


class PermissionDenied(ServiceError):
    status_code = 403


class AuthenticationFailed(ServiceError):
    status_code = 401


class AccountLocked(AuthenticationFailed):
    status_code = 423


class OrderRefused(ServiceError):
    """A course cannot be signed: a hard limit, a missing override reason, a wrong role."""

    status_code = 422


class LinkRefused(ServiceError):
    """A patient's diary link that cannot be used: unknown, already used, expired or
    withdrawn. The message says what to do (ask the clinic for a new one)."""

    status_code = 410


class TooManyRequests(ServiceError):
    """Too many attempts in a while (a rate limit); the message says when to try again."""

    status_code = 429
