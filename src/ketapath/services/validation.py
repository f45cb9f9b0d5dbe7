"""Turning pydantic validation errors into messages that name the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ketapath.services.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

# Record ids are the tables' integer primary keys, which start at 1. Their columns are 32-bit
# on PostgreSQL (``Integer``: SERIAL) and 64-bit on SQLite, so the largest id both can hold is
# 2**31 - 1; a larger number cannot name a record, and sent to the database it fails
# (PostgreSQL: "integer out of range"; SQLite beyond 64 bits: OverflowError in the driver).
MAX_RECORD_ID = 2**31 - 1
# The longest reason a user may give (for an amendment, an override, a correction, a
# cancellation, a withdrawal, a drug library version): a paragraph, not a document.
REASON_LENGTH = 2000


def is_record_id(value: int) -> bool:
    """Whether ``value`` can be a record id (and so may be sent to the database as one)."""
    return 1 <= value <= MAX_RECORD_ID


def field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def prefixed(location: tuple[int | str, ...], prefix: str) -> tuple[int | str, ...]:
    """``location`` under ``prefix`` (``medications[0]`` + ``("dose",)``)."""
    if not prefix:
        return location
    head: list[int | str] = []
    for part in prefix.replace("[", ".[").split("."):
        if part.startswith("["):
            head.append(int(part.strip("[]")))
        elif part:
            head.append(part)
    return (*head, *location)


def describe(error: ValidationError, prefix: str = "") -> InvalidInput:
    """The first problem as the message, naming its field; every problem in ``problems``."""
    found = error.errors()
    first = found[0]
    path = field_path(tuple(first["loc"]))
    if prefix:
        path = f"{prefix}.{path}" if path else prefix
    more = len(found) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    problems = [{**item, "loc": prefixed(tuple(item["loc"]), prefix)} for item in found]
    return InvalidInput(
        f"{path}: {first['msg']}{suffix}",
        field=path or None,
        problems=problems,  # type: ignore[arg-type]  # the same details, a longer loc
    )


def validate(
    model: type[M],
    data: Mapping[str, Any] | BaseModel,
    prefix: str = "",
    *,
    context: dict[str, Any] | None = None,
) -> M:
    """Validate ``data`` as ``model`` (with a validation ``context``, e.g. the clinic's
    ``{"today": date}``); an invalid field raises ``InvalidInput`` naming it."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        raise describe(error, prefix) from error
