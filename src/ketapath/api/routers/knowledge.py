"""The knowledge base as users read it: the bibliography and the catalogue of finding codes.

Readable by every signed-in role: it is published literature and ketapath's own rules.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
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
