"""What every command shares: errors as one line (or one JSON object), strict JSON output,
bounded numbers and files read at the edge, and the command group that never shows a
traceback.

This module imports only the standard library and typer: every command imports it, and the
command line must start fast (docs/performance.md).

Exit codes: 0 done; 1 aborted (a confirmation was declined) or an operational failure; 2
invalid input (the message names the field or option); 3 refused by a hard limit; 4 needs a
physician's override; 70 an internal error (a bug: please report it with the command);
130 interrupted.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from ketapath.domain.findings import Finding
from typer.core import TyperGroup

EXIT_ABORTED = 1
EXIT_INVALID = 2
EXIT_HARD_LIMIT = 3
EXIT_NEEDS_OVERRIDE = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

JSON_FLAG = "--json"
# The largest input file any command reads (a patient file or an answers file is a few kB).
MAX_INPUT_FILE_BYTES = 1_000_000
DEBUG_ENV = "KETAPATH_DEBUG"


# Whether the running command line has --json, and the warnings held for its JSON (set by
# CommandGroup.main for its run).
_json_mode: ContextVar[bool] = ContextVar("ketapath_cli_json", default=False)
_held_warnings: ContextVar[list[str] | None] = ContextVar("ketapath_cli_warnings", default=None)


def warn(message: str) -> None:
    """A warning: a ``warning:`` line on stderr; with ``--json`` it goes into the JSON
    printed (the result's ``warnings``, or the error's), so that stderr holds only JSON."""
    held = _held_warnings.get()
    if _json_mode.get() and held is not None:
        held.append(message)
    else:
        typer.echo(f"warning: {message}", err=True)


def _with_held_warnings(data: Any) -> Any:
    held = _held_warnings.get()
    if not held or not isinstance(data, dict):
        return data
    return {**data, "warnings": [*data.get("warnings", []), *held]}


def fail(
    message: str,
    *,
    code: int = EXIT_INVALID,
    as_json: bool | None = None,
    kind: str = "invalid_input",
    field: str = "",
    extra: dict[str, Any] | None = None,
) -> NoReturn:
    """Report an error on stderr and exit with ``code``; stdout stays empty.

    One line ``error: MESSAGE``, or with ``--json`` one JSON object ``{"error": KIND,
    "message": ..., "field": ...}`` (``as_json`` None: as the running command was asked).
    """
    if as_json is None:
        as_json = _json_mode.get()
    one_line = " ".join(str(message).split())
    if as_json:
        body: dict[str, Any] = {"error": kind, "message": one_line, "field": field}
        body.update(extra or {})
        typer.echo(to_json(_with_held_warnings(body), indent=2), err=True)
    else:
        typer.echo(f"error: {one_line}", err=True)
    raise typer.Exit(code)


def to_json(data: Any, *, indent: int | None = None) -> str:
    """Strict JSON (RFC 8259): NaN and Infinity are refused, never written.

    Raises ``NonFiniteResult`` naming where a non-finite number was found.
    """
    try:
        return json.dumps(data, indent=indent, default=str, allow_nan=False)
    except ValueError as exc:
        raise NonFiniteResult(_first_non_finite(data) or "(result)") from exc


class NonFiniteResult(ValueError):
    """A result holds NaN or Infinity: a bound at the edge is missing (a bug)."""

    def __init__(self, where: str) -> None:
        super().__init__(f"the result holds a number that is not finite at {where}")
        self.where = where


def _first_non_finite(data: Any, where: str = "") -> str | None:
    if isinstance(data, float) and not math.isfinite(data):
        return where or "(result)"
    if isinstance(data, dict):
        for key, value in data.items():
            found = _first_non_finite(value, f"{where}.{key}" if where else str(key))
            if found:
                return found
    if isinstance(data, list | tuple):
        for i, value in enumerate(data):
            found = _first_non_finite(value, f"{where}[{i}]")
            if found:
                return found
    return None


def require_finite(data: Any, *, what: str) -> None:
    """Exit 2 when a result computed from the input holds NaN or Infinity.

    Only an absurd input number (a dose of 1e308 mg) gets there; the message says so rather
    than printing ``inf``.
    """
    where = _first_non_finite(data)
    if where is not None:
        fail(
            f"{what}: {where} is not a finite number; a number in the input is too large to "
            "be real (check it by hand)",
            field=where,
        )


def emit_json(data: Any, *, indent: int | None = 2) -> None:
    """Print ``data`` as strict JSON on stdout; a non-finite number is an internal error."""
    try:
        text = to_json(_with_held_warnings(data), indent=indent)
    except NonFiniteResult as exc:
        fail(
            f"{exc}; nothing was printed. This is a bug: please report the command.",
            code=EXIT_INTERNAL,
            kind="internal_error",
            field=exc.where,
        )
    typer.echo(text)


# -- numbers and files at the edge ----------------------------------------------------------


def bounded(
    option: str,
    value: float | None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    unit: str = "",
) -> float | None:
    """``value`` when it is finite and within the bounds (None stays None); else exit 2.

    ``minimum``/``maximum`` are inclusive, ``above`` is an exclusive lower bound.
    """
    if value is None:
        return None
    shown = f"{value:g}{' ' + unit if unit else ''}"
    if not math.isfinite(value):
        fail(f"{option} must be a finite number, not {value}", field=option)
    if above is not None and value <= above:
        fail(
            f"{option} must be above {above:g}{' ' + unit if unit else ''}, not {shown}",
            field=option,
        )
    if minimum is not None and value < minimum:
        fail(
            f"{option} must be at least {minimum:g}{' ' + unit if unit else ''}, not {shown}",
            field=option,
        )
    if maximum is not None and value > maximum:
        fail(
            f"{option} must be at most {maximum:g}{' ' + unit if unit else ''}, not {shown}",
            field=option,
        )
    return value


def read_text_file(path: Path, *, what: str, option: str = "") -> str:
    """The UTF-8 text of a small input file, or exit 2 saying why it cannot be read."""
    label = f"{option}: " if option else ""
    try:
        if path.is_dir():
            fail(f"{label}{path} is a folder, not a {what}", field=option or "(file)")
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_FILE_BYTES + 1)
    except OSError as exc:
        fail(f"{label}cannot read {what} {path}: {exc.strerror or exc}", field=option or "(file)")
    except ValueError as exc:  # a NUL in the name: no file can have it
        fail(f"{label}cannot read {what} {str(path)!r}: {exc}", field=option or "(file)")
    if len(data) > MAX_INPUT_FILE_BYTES:
        fail(
            f"{label}{path} is larger than {MAX_INPUT_FILE_BYTES // 1_000_000} MB; a {what} is "
            "a few kB",
            field=option or "(file)",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fail(
            f"{label}{path} is not a text file (not UTF-8); a {what} is JSON or YAML text",
            field=option or "(file)",
        )


def writable_output(path: Path, *, option: str, suffixes: Sequence[str]) -> Path:
    """``path`` when a file can be written there with one of ``suffixes``; else exit 2."""
    if path.suffix.lower() not in suffixes:
        fail(f"{option}: {path.name} must end in {' or '.join(suffixes)}", field=option)
    if path.is_dir():
        fail(f"{option}: {path} is a folder; give a file name", field=option)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        fail(f"{option}: the folder {folder} does not exist", field=option)
    if not os.access(folder, os.W_OK):
        fail(f"{option}: cannot write in the folder {folder}", field=option)
    return path


# -- the command group: no traceback, whatever happens -------------------------------------


class CommandGroup(TyperGroup):
    """The ``ketapath`` group: usage errors, refusals and bugs end in one clear line.

    Click's usage errors (an unknown option, ``--weight-kg abc``) become ``error: ...`` on
    one line, or a JSON object when ``--json`` was given. An exception no command expected
    (a bug) becomes ``error: internal error ...`` with exit code 70 instead of a traceback;
    set ``KETAPATH_DEBUG=1`` to see the traceback.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(
                argv, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        as_json = JSON_FLAG in argv[: argv.index("--")] if "--" in argv else JSON_FLAG in argv
        token = _json_mode.set(as_json)
        held = _held_warnings.set([])
        try:
            code = super().main(argv, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as exc:  # click's usage errors (typer vendors click)
            code = _report_usage(exc, as_json)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            code = EXIT_ABORTED
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            code = _report_internal(exc, as_json)
        finally:
            _json_mode.reset(token)
            _held_warnings.reset(held)
        sys.exit(code if isinstance(code, int) else 0)


def _report_usage(exc: typer.TyperException, as_json: bool) -> int:
    if type(exc).__name__ == "NoArgsIsHelpError":
        # a bare command group (``ketapath db``): its help, as click shows it
        typer.echo(exc.format_message(), err=True)
        return int(getattr(exc, "exit_code", EXIT_INVALID))
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    param = getattr(exc, "param", None)
    field = ""
    if param is not None:
        field = str(param.opts[0] if getattr(param, "opts", None) else param.name)
    if as_json:
        body = {"error": "invalid_usage", "message": message, "field": field}
        typer.echo(to_json(body, indent=2), err=True)
    else:
        typer.echo(f"error: {message}", err=True)
    return int(getattr(exc, "exit_code", EXIT_INVALID))


def _report_internal(exc: Exception, as_json: bool) -> int:
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    message = (
        f"internal error ({detail}). This is a bug, not a problem with what you typed: "
        f"please report it with the command. {DEBUG_ENV}=1 shows the traceback."
    )
    if as_json:
        typer.echo(to_json({"error": "internal_error", "message": message, "field": ""}), err=True)
    else:
        typer.echo(f"error: {message}", err=True)
    return EXIT_INTERNAL


SEVERITY_WORDS = {
    "hard": "NOT ALLOWED",
    "soft": "needs override",
    "warning": "check",
    "info": "info",
}


def finding_lines(finding: Finding, indent: str = "  ") -> list[str]:
    """A finding as text: plain words first, then its rule and citations, the code last."""
    return [
        f"{indent}[{SEVERITY_WORDS[finding.severity]}] {finding.message}",
        f"{indent}    rule: {finding.rule}",
        f"{indent}    source: {finding.citation}  (code {finding.code})",
    ]
