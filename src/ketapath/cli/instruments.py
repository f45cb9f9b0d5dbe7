"""Commands of the instruments area (registered by `ketapath.cli`).

``ketapath score INSTRUMENT --answers ... [--json]`` scores a questionnaire; ``ketapath score
--list`` lists the instruments and ``ketapath score INSTRUMENT --items`` shows the item ids and
the answers each accepts. Answers are given as ``q1=3,q2=4`` (an empty value such as ``q3=``
means unanswered), as a JSON object string, or as ``@file.json`` holding a JSON object.
All scoring is done by :mod:`ketapath.domain.instruments`; this module only reads and prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ketapath.cli.output import EXIT_INVALID, MAX_INPUT_FILE_BYTES, emit_json, fail

if TYPE_CHECKING:  # the command imports these: the command line must start fast
    from ketapath.domain import instruments as scoring
    from ketapath.knowledge.instruments import Instrument

EXIT_BAD_INPUT = EXIT_INVALID


class AnswersFormatError(ValueError):
    """The --answers text cannot be read."""


def parse_answers(text: str) -> dict[str, scoring.Answer]:
    """Read ``--answers``: ``k=v,k=v``, a JSON object, or ``@path`` to a JSON file."""
    text = text.strip()
    if text.startswith("@"):
        path = Path(text[1:])
        return _parse_json(_read_answers_file(path), where=str(path))
    if text.startswith("{"):
        return _parse_json(text, where="--answers")
    return _parse_pairs(text)


def _read_answers_file(path: Path) -> str:
    try:
        if path.is_dir():
            raise AnswersFormatError(f"answers file {path} is a folder, not a file")
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_FILE_BYTES + 1)
    except OSError as exc:
        raise AnswersFormatError(f"cannot read answers file {path}: {exc.strerror}") from exc
    except ValueError as exc:  # a NUL in the name: no file can have it
        raise AnswersFormatError(f"cannot read answers file {path!r}: {exc}") from exc
    if len(data) > MAX_INPUT_FILE_BYTES:
        raise AnswersFormatError(f"answers file {path} is too large (an answers file is a few kB)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AnswersFormatError(f"answers file {path} is not a text file (not UTF-8)") from exc


def _parse_json(content: str, *, where: str) -> dict[str, scoring.Answer]:
    try:
        data: Any = json.loads(content)
    except json.JSONDecodeError as exc:
        raise AnswersFormatError(f"{where}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    except (ValueError, RecursionError) as exc:
        # e.g. a number too long to convert, or absurd nesting
        raise AnswersFormatError(f"{where}: not usable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise AnswersFormatError(f"{where}: expected a JSON object of item: answer")
    answers: dict[str, scoring.Answer] = {}
    for key, value in data.items():
        if value is not None and not isinstance(value, int | float | str | bool):
            raise AnswersFormatError(
                f"{where}: the answer to {key!r} must be a number, text or null, not {value!r}"
            )
        answers[str(key)] = value
    return answers


def _parse_pairs(text: str) -> dict[str, scoring.Answer]:
    answers: dict[str, scoring.Answer] = {}
    if not text:
        raise AnswersFormatError("--answers is empty; give e.g. 'q1=3,q2=1'")
    for part in text.split(","):
        piece = part.strip()
        if not piece:
            continue
        if "=" not in piece:
            raise AnswersFormatError(f"--answers: {piece!r} is not item=answer (e.g. q1=3)")
        key, _, value = piece.partition("=")
        key = key.strip()
        if not key:
            raise AnswersFormatError(f"--answers: {piece!r} has no item id before '='")
        if key in answers:
            raise AnswersFormatError(f"--answers: item {key!r} is given twice")
        value = value.strip()
        answers[key] = None if value == "" else value
    return answers


def _fail(message: str) -> NoReturn:
    """The message on stderr (a JSON object with --json) and exit 2."""
    fail(message, code=EXIT_BAD_INPUT)


def _fmt(value: float | None) -> str:
    if value is None:
        return "not scored"
    return f"{round(value, 2):g}"


def _print_list(instruments: tuple[Instrument, ...]) -> None:
    width = max(len(i.id) for i in instruments)
    for inst in instruments:
        scales = ", ".join(s.id for s in inst.scales)
        typer.echo(
            f"{inst.id:<{width}}  {inst.short_name}: {inst.name} "
            f"({len(inst.items)} item{'' if len(inst.items) == 1 else 's'}; {scales})"
        )


def _print_items(inst: Instrument) -> None:
    typer.echo(f"{inst.short_name}: {inst.name}")
    if inst.recall_period:
        typer.echo(f"Recall period: {inst.recall_period}")
    for item in inst.items:
        resp = inst.response_for(item.id)
        allowed = "yes/no" if resp.kind == "yes_no" else f"{resp.minimum}-{resp.maximum}"
        aliases = f" (also {', '.join(item.aliases)})" if item.aliases else ""
        typer.echo(f"  {item.id:<18} [{allowed}] {item.number}. {item.label}{aliases}")
    if inst.response.anchors:
        anchors = "; ".join(f"{k} = {v}" for k, v in sorted(inst.response.anchors.items()))
        typer.echo(f"Answers: {anchors}")


def _print_result(result: scoring.InstrumentScore) -> None:
    typer.echo(result.name)
    for sc in result.subscales.values():
        band = f", {sc.band}" if sc.band else ""
        flag = " [prorated]" if sc.prorated else ""
        if sc.direction == "higher_is_better":
            flag += " [higher is better]"
        label = "Total" if sc.scale_id == result.total_scale_id else sc.name
        typer.echo(
            f"  {label}: {_fmt(sc.value)} (range {_fmt(sc.minimum)}-{_fmt(sc.maximum)}){band}{flag}"
        )
    n_items = result.items_answered + len(result.items_missing)
    typer.echo(f"Items answered: {result.items_answered} of {n_items}")
    if not result.scorable:
        typer.echo("Not fully scorable: see the messages.")
    for message in result.messages:
        typer.echo(f"! {message}")
    typer.echo(f"Source: {result.citation}")


def score_command(
    instrument: Annotated[
        str | None, typer.Argument(help="Instrument id, e.g. phq9, bpi-sf (see --list).")
    ] = None,
    answers: Annotated[
        str | None,
        typer.Option(
            "--answers",
            "-a",
            help="Answers as 'q1=3,q2=1', a JSON object, or @file.json.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    list_all: Annotated[bool, typer.Option("--list", help="List the instruments.")] = False,
    show_items: Annotated[
        bool, typer.Option("--items", help="Show the instrument's items and answer ranges.")
    ] = False,
) -> None:
    """Score an assessment instrument (NRS, BPI-SF, PSEQ, DN4, PCS, DASS-21, PHQ-9, GAD-7, PGIC)."""
    from ketapath.domain import instruments as scoring
    from ketapath.knowledge.base import KnowledgeError

    try:
        if list_all:
            instruments = scoring.list_instruments()
            if as_json:
                emit_json([_summary(i) for i in instruments])
            else:
                _print_list(instruments)
            return
        if instrument is None:
            _fail("name an instrument (see 'ketapath score --list')")
        inst = scoring.get_instrument(instrument)
        if show_items:
            if as_json:
                emit_json(inst.model_dump(mode="json"))
            else:
                _print_items(inst)
            return
        if answers is None:
            _fail(f"give the answers with --answers (see 'ketapath score {inst.id} --items')")
        result = scoring.score(inst.id, parse_answers(answers))
    except (scoring.InstrumentError, AnswersFormatError) as exc:
        _fail(str(exc))
    except KnowledgeError as exc:
        _fail(f"knowledge base: {exc}")
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_result(result)


def _summary(inst: Instrument) -> dict[str, Any]:
    from ketapath.domain.findings import citation_text

    return {
        "id": inst.id,
        "short_name": inst.short_name,
        "name": inst.name,
        "items": len(inst.items),
        "scales": [s.id for s in inst.scales],
        "total_scale": inst.total_scale,
        "citation": citation_text(inst.source),
    }


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("score")(score_command)
