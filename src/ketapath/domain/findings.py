"""One finding type for every rule engine: screening, orders, opioids, instruments, and later
the session rules.

A :class:`Finding` is what a clinician reads: plain words first (``message``), then the rule
that produced it (``rule``) and the readable citations of that rule's source (``citations``,
each a short citation such as "ASRA/AAPM/ASA consensus 2018, Table 6" with the bibliography id
behind it for the full reference). The ``code`` is for programs, JSON and tooltips.

Severity has one vocabulary (``ketapath.knowledge.base.Severity``):

- ``hard``: cannot be passed by anyone (not eligible; the order is refused);
- ``soft``: passes only with a named physician's override and a written reason;
- ``warning``: needs attention but does not gate (a medicine left out of a total);
- ``info``: shown for information.

Findings are made with :func:`finding`, which takes the code's meaning, rule and source from
the catalogue (``knowledge/data/finding_codes.yaml``) and refuses a code that is not in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ketapath.knowledge.base import SEVERITIES, Severity, Source
from ketapath.knowledge.bibliography import bibliography
from ketapath.knowledge.clinical import Knowledge, knowledge
from ketapath.knowledge.findings import FindingCode

# Severity order for display: what blocks first.
SEVERITY_ORDER: Mapping[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
SEVERITY_LABELS: Mapping[str, str] = {
    "hard": "Not allowed",
    "soft": "Needs a physician's override",
    "warning": "Check",
    "info": "For information",
}


@dataclass(frozen=True)
class Citation:
    """A short, readable citation ('Maher et al. 2017, Discussion') and its bibliography id."""

    ref: str
    at: str
    text: str


@dataclass(frozen=True)
class Measure:
    """A measured value against a limit (drug-library findings)."""

    value: float
    limit: float
    unit: str
    limit_name: str
    sessions: tuple[int, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One warning, recommendation or limit, explained: words, rule, citations."""

    code: str
    severity: Severity
    message: str
    rule: str
    citations: tuple[Citation, ...]
    subject: str = ""
    measure: Measure | None = None

    @property
    def citation(self) -> str:
        """The short citations, joined ('ASRA/AAPM/ASA consensus 2018, Table 6; ...')."""
        return "; ".join(c.text for c in self.citations)

    @property
    def gates(self) -> bool:
        """Whether the finding stops the action (hard) or needs an override (soft)."""
        return self.severity in ("hard", "soft")

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the fields, plus ``citation`` (the short citations joined)."""
        data = asdict(self)
        data["citation"] = self.citation
        return data


def cite(source: Source, kb: Knowledge | None = None) -> tuple[Citation, ...]:
    """The readable citations of a knowledge source."""
    refs = kb.bibliography if kb is not None else bibliography()
    return tuple(Citation(c.ref, c.at, refs.short(c)) for c in source.cite)


def citation_text(source: Source, kb: Knowledge | None = None) -> str:
    """The short citations of a source, joined: 'Kroenke et al. 2001, Table 1; ...'."""
    return "; ".join(c.text for c in cite(source, kb))


def full_references(source: Source, kb: Knowledge | None = None) -> str:
    """The full references of a source's citations, with their locators."""
    refs = kb.bibliography if kb is not None else bibliography()
    return "; ".join(refs.get(c.ref).full() + (f" ({c.at})" if c.at else "") for c in source.cite)


def catalogue_entry(code: str, kb: Knowledge | None = None) -> FindingCode:
    """The catalogue entry of a code (exact, else its ``family:*``); KeyError if neither."""
    return (kb or knowledge()).finding_code(code)


def finding(
    code: str,
    message: str,
    *,
    severity: Severity | None = None,
    source: Source | None = None,
    rule: str | None = None,
    subject: str = "",
    measure: Measure | None = None,
    kb: Knowledge | None = None,
) -> Finding:
    """A finding for a catalogued code.

    ``severity`` defaults to the code's only severity (it must be given when the catalogue
    allows several); ``source`` defaults to the catalogue's (families take it from their data
    entry, so it must be given); ``rule`` defaults to the catalogue's rule in words, followed by
    the source's note when it has one.
    """
    kb = kb or knowledge()
    entry = catalogue_entry(code, kb)
    if severity is None:
        if len(entry.severities) != 1:
            raise ValueError(f"{code}: give the severity (one of {entry.severities})")
        severity = entry.severities[0]
    if severity not in entry.severities:
        raise ValueError(f"{code}: severity {severity!r} is not one of {entry.severities}")
    source = source or entry.source
    if source is None:
        raise ValueError(f"{code}: a family code needs the source of its data entry")
    text = rule or entry.rule
    if source.note and source.note not in text:
        text = f"{text} ({source.note})"
    return Finding(
        code=code,
        severity=severity,
        message=message,
        rule=text,
        citations=cite(source, kb),
        subject=subject,
        measure=measure,
    )


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Hard first, then soft, warning, info; stable within a severity."""
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])


def worst(findings: Iterable[Finding]) -> Severity | None:
    """The most serious severity among the findings, or None for none."""
    present: list[Severity] = [f.severity for f in findings]
    if not present:
        return None
    return min(present, key=SEVERITY_ORDER.__getitem__)
