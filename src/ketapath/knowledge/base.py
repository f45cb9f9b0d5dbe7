"""Loading and validating the knowledge base.

Clinical content lives in versioned YAML files under ``knowledge/data``. Each file is an
envelope::

    kind: protocols          # what the file holds
    version: 3               # bumped on every clinical change
    entries: [...]           # each entry validated by a pydantic model, each with a `source`

A ``source`` is structured (:class:`Source`): the bibliography entries it cites, each with a
locator (table, section, page), an optional note in plain words on how the value follows from
the cited text, and an internal ``provenance`` (where we found it, e.g. a seed document). The
bibliography is ``bibliography.yaml``; every cited id must resolve there (checked on load).
What a clinician reads is the short citation ("ASRA/AAPM/ASA consensus 2018, Table 6"), with
the full reference one click away; ``provenance`` is never shown to users.

A file that fails its schema stops the program with a message naming the file, the entry and
the field: clinical content is never half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

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


REF_ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"

# The one severity vocabulary of every finding (screening, orders, opioids, later engines):
# - hard: cannot be passed by anyone (the patient is not eligible; the order is refused);
# - soft: passes only with a named physician's override and a written reason;
# - warning: needs attention but does not gate (e.g. a medicine left out of a total);
# - info: shown for information.
Severity = Literal["hard", "soft", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("hard", "soft", "warning", "info")


class Cite(BaseModel):
    """One bibliography entry (``ref``) and where in it (``at``: table, section, page)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: str = Field(pattern=REF_ID_PATTERN, description="An id in bibliography.yaml.")
    at: str = Field(default="", max_length=200, description="Locator: table, section, page.")


class Source(BaseModel):
    """Where a rule, limit, factor or value comes from.

    ``cite`` is what a clinician is shown (short citations, full references one click away);
    ``note`` says in plain words how the value follows from the cited text where that is not
    obvious ("0.5 mg/kg/h x 4 h"); ``provenance`` records where the team found it (internal,
    never shown to users).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cite: tuple[Cite, ...] = Field(min_length=1)
    note: str = ""
    # Internal: never serialised, so no page, JSON answer or export shows it.
    provenance: str = Field(default="", exclude=True)


class Strict(BaseModel):
    """Base of every knowledge model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Entry(Strict):
    """Base of every knowledge entry: strict, immutable, and cited."""

    source: Source


def cites_in(value: Any) -> list[Cite]:
    """Every :class:`Cite` inside a loaded knowledge value (models, lists, dicts), in order."""
    found: list[Cite] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, Cite):
            found.append(node)
        elif isinstance(node, BaseModel):
            stack.extend(reversed([getattr(node, name) for name in type(node).model_fields]))
        elif isinstance(node, list | tuple):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
    return found


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
    """Read a YAML file, naming the file on a syntax error.

    Parsing YAML is most of a command's start-up, so the parsed document is also kept as JSON
    in a cache folder (see :func:`cache_dir`), under the SHA-256 of the file's bytes: a file
    that changes is parsed again, and a cache that cannot be read or written is ignored. The
    schema validation runs on every load either way.
    """
    try:
        content = path.read_bytes()
    except FileNotFoundError as exc:
        raise KnowledgeError(f"knowledge file not found: {path}") from exc
    except OSError as exc:  # a folder, no permission...
        raise KnowledgeError(f"cannot read knowledge file {path}: {exc.strerror}") from exc
    key = hashlib.sha256(_CACHE_FORMAT + content).hexdigest()
    cached = _cached(key)
    if cached is not None:
        return cached[0]
    try:
        data = safe_load(content.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"{path.name}: not valid YAML: {exc}") from exc
    _store(key, data)
    return data


_CACHE_FORMAT = b"ketapath-yaml-json-1\0"


def cache_dir() -> Path | None:
    """Where parsed knowledge files are cached: ``KETAPATH_CACHE_DIR`` (empty: no cache), else
    ``$XDG_CACHE_HOME/ketapath``, else ``~/.cache/ketapath``."""
    configured = os.environ.get("KETAPATH_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ketapath"


def _cached(key: str) -> tuple[Any] | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        return (json.loads((folder / f"{key}.json").read_text(encoding="utf-8")),)
    except (OSError, ValueError):
        return None


def _json_value(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _store(key: str, data: Any) -> None:
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, default=_json_value, allow_nan=False)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, folder / f"{key}.json")
    except (OSError, TypeError, ValueError):
        return  # a cache that cannot be written is only slower


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


def load_entries(
    filename: str,
    entry_model: type[E],
    *,
    kind: str,
    id_field: str = "id",
    file_model: type[KnowledgeFile[Any]] | None = None,
) -> KnowledgeFile[E]:
    """Load one knowledge file and validate every entry against ``entry_model``.

    Entries' ``id_field`` values must be unique. ``file_model`` is a subclass of
    ``KnowledgeFile[entry_model]`` for a file whose envelope has more than the entries (the
    conditions vocabulary's ambiguous words, for example).
    """
    path = data_path(filename)
    raw = read_yaml(path)
    model = file_model or KnowledgeFile[entry_model]  # type: ignore[valid-type]
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{filename}: {format_validation_error(exc, raw)}") from exc
    if parsed.kind != kind:
        raise KnowledgeError(f"{filename}: kind is {parsed.kind!r}, expected {kind!r}")
    ids = [getattr(e, id_field, None) for e in parsed.entries]
    dupes = sorted({i for i in ids if i is not None and ids.count(i) > 1})
    if dupes:
        raise KnowledgeError(f"{filename}: duplicate ids: {', '.join(dupes)}")
    return parsed
