"""The knowledge base as users read it: the bibliography, the catalogue of finding codes, and
the diagnosis vocabulary (with how written diagnoses are read).

Readable by every signed-in role: it is published literature and ketapath's own rules.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from ketapath.api.deps import CurrentUser
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.domain.findings import citation_text
from ketapath.knowledge.clinical import knowledge
from ketapath.services.errors import NotFound

router = APIRouter(tags=["knowledge"], responses=SIGNED_IN)


class ReferenceView(BaseModel):
    """One bibliography entry: its short citation, its full reference, where to read it."""

    id: str
    short: str
    kind: str
    year: int | None
    full: str
    link: str
    doi: str
    pmid: str
    verified: str


class FindingCodeView(BaseModel):
    """One code of the findings catalogue."""

    code: str
    engine: str
    severities: list[str]
    meaning: str
    rule: str
    citation: str
    source_from: str


def _reference(ref_id: str) -> ReferenceView:
    r = knowledge().bibliography.get(ref_id)
    return ReferenceView(
        id=r.id,
        short=r.short,
        kind=r.kind,
        year=r.year,
        full=r.full(),
        link=r.link,
        doi=r.doi,
        pmid=r.pmid,
        verified=r.verified,
    )


@router.get("/references", response_model=list[ReferenceView])
def list_references(actor: CurrentUser) -> list[ReferenceView]:
    """Every work a rule, limit or value of ketapath cites."""
    return [_reference(r.id) for r in knowledge().bibliography.references]


@router.get("/references/{ref_id}", response_model=ReferenceView, responses=responses(404, 422))
def get_reference(
    ref_id: Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")],
    actor: CurrentUser,
) -> ReferenceView:
    if ref_id not in knowledge().bibliography:
        raise NotFound(f"ref_id: no reference {ref_id!r}.", field="ref_id")
    return _reference(ref_id)


@router.get("/finding-codes", response_model=list[FindingCodeView])
def list_finding_codes(actor: CurrentUser) -> list[FindingCodeView]:
    """The catalogue of finding codes: what each means, its rule and its source."""
    return [
        FindingCodeView(
            code=c.code,
            engine=c.engine,
            severities=list(c.severities),
            meaning=c.meaning,
            rule=c.rule,
            citation=citation_text(c.source) if c.source else "",
            source_from=c.source_from,
        )
        for c in knowledge().finding_codes.entries
    ]


class ConditionView(BaseModel):
    """One condition of the diagnosis vocabulary: its words, codes and screening role."""

    id: str
    name: str
    kind: str
    screening: str
    icd10cm: list[str]
    icd11: list[str]
    icd11_earlier: list[str]
    icd11_broader: list[str]
    snomed_ct: list[str]
    synonyms: list[str]
    abbreviations: list[str]
    codes_note: str
    citation: str


class DiagnosisReadingView(BaseModel):
    """How one written diagnosis is read: the condition, or why it is not taken as one."""

    given: str
    resolved: bool
    matched_by: str
    condition: ConditionView | None
    matched_code: str
    qualifier: str
    candidates: list[str]
    mentions: list[str]
    explanation: str


def _condition(condition_id: str) -> ConditionView:
    from ketapath.domain.vocabulary import describe

    kb = knowledge()
    cond = kb.condition(condition_id)
    return ConditionView.model_validate(
        {**describe(cond, kb), "citation": citation_text(cond.source, kb)}
    )


@router.get("/conditions", response_model=list[ConditionView])
def list_conditions(actor: CurrentUser) -> list[ConditionView]:
    """The diagnosis vocabulary (docs/conditions.md): every condition screening understands."""
    return [_condition(c.id) for c in knowledge().conditions.entries]


@router.get(
    "/conditions/reading", response_model=list[DiagnosisReadingView], responses=responses(422)
)
def read_diagnoses(
    actor: CurrentUser,
    text: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=200)]],
        Query(min_length=1, max_length=100, description="Diagnoses as written (repeatable)."),
    ],
) -> list[DiagnosisReadingView]:
    """How each written diagnosis is read, by the resolver screening uses."""
    from ketapath.domain.vocabulary import resolution_dict, resolve

    kb = knowledge()
    out = []
    for written in text:
        reading = resolution_dict(resolve(written, kb), kb)
        cond = reading["condition"]
        reading["condition"] = _condition(cond["id"]) if isinstance(cond, dict) else None
        out.append(DiagnosisReadingView.model_validate(reading))
    return out
