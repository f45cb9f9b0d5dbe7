"""Loading and validating the knowledge base.

Clinical content lives in versioned YAML files under ``knowledge/data``. Each file is an
envelope::

    kind: protocols          # what the file holds
    version: 3               # bumped on every clinical change
    entries: [...]           # each entry validated by a pydantic model, each with a `source`

A file that fails its schema stops the program with a message naming the file, the entry and
the field: clinical content is never half-loaded.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DATA_PACKAGE = "ketapath.knowledge.data"

# libyaml's parser with PyYAML's safe constructor: the same documents and values as
# yaml.safe_load, about 8 times faster (the knowledge base loads in every command).
SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: Any) -> Any:
    """``yaml.safe_load`` with libyaml when it is installed."""
    return yaml.load(text, Loader=SafeLoader)


class KnowledgeError(Exception):
    """A knowledge file is missing, malformed or fails its schema."""


class Entry(BaseModel):
    """Base of every knowledge entry: strict, immutable, and cited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=3, description="Seed file and table, or a named publication.")


E = TypeVar("E", bound=BaseModel)


class KnowledgeFile(BaseModel, Generic[E]):
    """The envelope of one knowledge file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    version: int = Field(ge=1)
    description: str = ""
    entries: list[E]


def data_path(filename: str) -> Path:
    """Path of a file in the knowledge data folder."""
    return Path(str(resources.files(DATA_PACKAGE).joinpath(filename)))


def read_yaml(path: Path) -> Any:
    """Read a YAML file, naming the file on a syntax error."""
    try:
        with path.open(encoding="utf-8") as handle:
            return safe_load(handle)
    except FileNotFoundError as exc:
        raise KnowledgeError(f"knowledge file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path.name}: not valid YAML: {exc}") from exc


def format_validation_error(exc: ValidationError, raw: Any = None) -> str:
    """One line per problem, each naming the field path (with entry ids where known)."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        label = _label_location(loc, raw)
        lines.append(f"{label}: {err['msg']}")
    return "; ".join(lines)


def _label_location(loc: list[Any], raw: Any) -> str:
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            entry_id = None
            if isinstance(node, list) and 0 <= item < len(node) and isinstance(node[item], dict):
                entry_id = node[item].get("id")
            parts.append(f"[{item}]" if entry_id is None else f"[{item} id={entry_id}]")
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(file)"


def load_entries(filename: str, entry_model: type[E], *, kind: str) -> KnowledgeFile[E]:
    """Load one knowledge file and validate every entry against ``entry_model``."""
    path = data_path(filename)
    raw = read_yaml(path)
    try:
        parsed = KnowledgeFile[entry_model].model_validate(raw)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise KnowledgeError(f"{filename}: {format_validation_error(exc, raw)}") from exc
    if parsed.kind != kind:
        raise KnowledgeError(f"{filename}: kind is {parsed.kind!r}, expected {kind!r}")
    ids = [getattr(e, "id", None) for e in parsed.entries]
    dupes = sorted({i for i in ids if i is not None and ids.count(i) > 1})
    if dupes:
        raise KnowledgeError(f"{filename}: duplicate ids: {', '.join(dupes)}")
    return parsed
