"""What a drug library does to every protocol: the outcome of each protocol in each of its own
care settings at light and heavy adult weights (ready, needs an override, refused).

A pharmacist reads this before approving a library (``ketapath library check FILE``, the
library page); ``docs/clinical-core.md`` tabulates it for the packaged default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ketapath.domain.errors import DomainError, HardLimitExceeded
from ketapath.domain.planning import DosingInputs, PlanOptions, build_course, status
from ketapath.knowledge.clinical import Knowledge
from ketapath.knowledge.library import DrugLibrary

# Light and heavy adults (the check weights); the consensus trials are in adults.
ADULT_WEIGHTS_KG: tuple[float, ...] = (45, 50, 70, 100, 120, 150)
Outcome = Literal["ready", "needs_override", "refused", "invalid"]


@dataclass(frozen=True)
class ProtocolOutcome:
    """One protocol, in one of its own settings, for one dosing weight."""

    protocol_id: str
    setting: str
    weight_kg: float
    outcome: Outcome
    codes: tuple[str, ...]  # the hard, soft and warning findings (info left out)
    course_total_mg: float | None
    message: str = ""
    # the plain words of each finding in ``codes``, in the same order
    messages: tuple[str, ...] = ()


def protocol_outcomes(
    library: DrugLibrary, kb: Knowledge, weights: Sequence[float] = ADULT_WEIGHTS_KG
) -> list[ProtocolOutcome]:
    """Every protocol in each of its own settings at each weight (medicines: none taken)."""
    out = []
    for protocol in kb.protocols.entries:
        for setting in protocol.settings:
            for weight in weights:
                dosing = DosingInputs(weight, medicines=())
                try:
                    course = build_course(
                        protocol, dosing, PlanOptions(setting=setting), kb, library
                    )
                except HardLimitExceeded as refused:
                    words = {f.code: f.message for f in refused.findings}
                    codes = tuple(sorted(words))
                    out.append(
                        ProtocolOutcome(
                            protocol.id,
                            setting,
                            weight,
                            "refused",
                            codes,
                            None,
                            refused.message,
                            tuple(words[c] for c in codes),
                        )
                    )
                    continue
                except DomainError as invalid:
                    out.append(
                        ProtocolOutcome(
                            protocol.id, setting, weight, "invalid", (), None, invalid.message
                        )
                    )
                    continue
                words = {}
                for f in course.findings:
                    if f.severity != "info":
                        words.setdefault(f.code, f.message)
                out.append(
                    ProtocolOutcome(
                        protocol.id,
                        setting,
                        weight,
                        status(course),
                        tuple(words),
                        course.course_total_mg,
                        messages=tuple(words.values()),
                    )
                )
    return out


def outcomes_markdown(outcomes: Sequence[ProtocolOutcome]) -> str:
    """The outcomes as a Markdown table: one row per protocol and setting, one column a weight."""
    weights = sorted({o.weight_kg for o in outcomes})
    rows: dict[tuple[str, str], dict[float, ProtocolOutcome]] = {}
    for o in outcomes:
        rows.setdefault((o.protocol_id, o.setting), {})[o.weight_kg] = o
    lines = [
        "| protocol | setting | " + " | ".join(f"{w:g} kg" for w in weights) + " |",
        "|---|---|" + "---|" * len(weights),
    ]
    for (protocol_id, setting), cells in rows.items():
        shown = [_cell(cells[w]) if w in cells else "" for w in weights]
        lines.append(f"| `{protocol_id}` | {setting} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


WORDS = {
    "ready": "ready",
    "needs_override": "override",
    "refused": "REFUSED",
    "invalid": "invalid",
}


def _cell(o: ProtocolOutcome) -> str:
    codes = ", ".join(f"`{c}`" for c in o.codes)
    return WORDS[o.outcome] + (f" ({codes})" if codes else "")
