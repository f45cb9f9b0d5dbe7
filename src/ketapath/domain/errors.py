"""Typed errors of the clinical domain. Messages are written for clinicians."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the clinical logic raises on purpose."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """Input (a patient file, an option, a value) is missing or malformed."""


class UnknownItem(DomainError):
    """A protocol, code or setting that the knowledge base does not know."""


class HardLimitExceeded(DomainError):
    """An order would pass a hard limit: it is refused and nothing is produced."""

    def __init__(self, message: str, *, findings: tuple[Any, ...] = ()) -> None:
        super().__init__(message, field="limits")
        self.findings = findings


class OverrideRequired(DomainError):
    """An order passes a soft limit and needs a named physician and a reason."""

    def __init__(self, message: str, *, findings: tuple[Any, ...] = ()) -> None:
        super().__init__(message, field="override")
        self.findings = findings


class ConversionRefused(DomainError):
    """A conversion that a rule forbids (e.g. to methadone); the message names rule and source."""

    def __init__(self, message: str, *, field: str = "opioid", rule: str = "", source: str = ""):
        super().__init__(message, field=field)
        self.rule = rule
        self.source = source


class OutOfBounds(ValueError):
    """A value outside the record's bounds, raised inside a pydantic validator (which takes a
    ValueError): a date before 1900 or after today, a dose above any medicine's, a weight date
    before the birth date.

    Pydantic reports it as a ``value_error`` whose message is ``str(self)``, so the API and the
    command line read the same words as before. ``kind`` names the rule and ``facts`` its
    numbers and dates, so that an interface can say it in its own words (the web forms:
    ``ketapath.web.forms``); ``field`` names the field it concerns when the validator checks the
    whole record (an error raised there has no field of its own).
    """

    def __init__(self, message: str, *, kind: str, field: str = "", **facts: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field
        self.facts = facts
