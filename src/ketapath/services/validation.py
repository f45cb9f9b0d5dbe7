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


def describe(error: ValidationError, prefix: str = "") -> InvalidInput:
    first = error.errors()[0]
    path = field_path(tuple(first["loc"]))
    if prefix:
        path = f"{prefix}.{path}" if path else prefix
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return InvalidInput(f"{path}: {first['msg']}{suffix}", field=path or None)


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
