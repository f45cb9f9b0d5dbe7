"""Exceptions of the PK engine, each naming the field at fault in a clinician's words."""

from __future__ import annotations


class PkError(Exception):
    """Base of every error raised by ``ketapath.pk``."""


class PkInputError(PkError, ValueError):
    """A patient, regimen, time grid or option is invalid; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownModelError(PkError, KeyError):
    """The requested model id is not in the knowledge base."""

    def __init__(self, model_id: str, known: list[str]) -> None:
        super().__init__(f"unknown PK model {model_id!r}; known models: {', '.join(known)}")
        self.model_id = model_id

    def __str__(self) -> str:
        return str(self.args[0])


class NoVariabilityError(PkError):
    """Virtual patients were asked of a model without published between-subject variability."""
