"""The bibliography: every publication (and local policy) that a rule, limit or value cites.

``bibliography.yaml`` holds one entry per work: authors, year, title, journal or publisher,
volume, issue, pages, DOI and PMID where they exist, and what was checked about the entry.
Knowledge files cite it through :class:`ketapath.knowledge.base.Source` (``ref`` + locator).

Two renderings are shown to people:

- the **short citation** beside a rule: ``short`` plus the locator
  ("ASRA/AAPM/ASA consensus 2018, Table 6");
- the **full reference** one click away (Vancouver style, with DOI and PMID).

Local rules (a clinic's policy, ketapath's own input rules) are entries too, of kind
``local``, so that every finding cites something a reader can look up, and so that a local
choice is never dressed up as published evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketapath.knowledge.base import REF_ID_PATTERN, Cite, KnowledgeError, load_entries

FILENAME = "bibliography.yaml"
ReferenceKind = Literal[
    "article",
    "review",
    "guideline",
    "editorial",
    "news",
    "book",
    "chapter",
    "label",
    "regulation",
    "code-system",
    "web",
    "dataset",
    "local",
]


class Reference(BaseModel):
    """One work in the bibliography."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=REF_ID_PATTERN)
    short: str = Field(
        min_length=3, max_length=80, description="What a clinician reads beside a rule."
    )
    kind: ReferenceKind
    authors: tuple[str, ...] = Field(
        default=(), description="Surname and initials ('Cohen SP'), or an organisation."
    )
    et_al: bool = Field(default=False, description="More authors than those listed.")
    year: int | None = Field(default=None, ge=1900, le=2100)
    title: str = Field(min_length=3)
    container: str = Field(default="", description="Journal, book, website or publisher.")
    volume: str = ""
    issue: str = ""
    pages: str = ""
    edition: str = ""
    doi: str = Field(default="", pattern=r"^(10\.\d{4,9}/\S+)?$")
    pmid: str = Field(default="", pattern=r"^(\d{1,9})?$")
    url: str = ""
    accessed: str = Field(default="", description="For web pages: the date it was read.")
    verified: str = Field(
        min_length=10, description="What was checked about this entry, and against what."
    )
    provenance: str = Field(
        default="", exclude=True, description="Where the team found it (internal, never shown)."
    )

    @model_validator(mode="after")
    def _check(self) -> Reference:
        if self.kind != "local" and self.year is None:
            raise ValueError("a published work needs its year")
        if self.kind != "local" and not (self.authors or self.container):
            raise ValueError("a published work needs its authors or its publisher")
        return self

    def full(self) -> str:
        """The full reference, Vancouver style, with DOI and PMID where known."""
        parts: list[str] = []
        if self.authors:
            names = ", ".join(self.authors) + (", et al" if self.et_al else "")
            parts.append(names + ".")
        title = self.title.rstrip(".")
        # A title that ends in its own "?" or "!" takes no full stop after it.
        parts.append(title if title.endswith(("?", "!")) else title + ".")
        where = self.container
        if self.edition:
            where = f"{where} {self.edition}".strip()
        if where:
            parts.append(where.rstrip(".") + ".")
        detail = ""
        if self.year is not None:
            detail = str(self.year)
        if self.volume:
            detail += f";{self.volume}"
            if self.issue:
                detail += f"({self.issue})"
        if self.pages:
            detail += f":{self.pages}"
        if detail:
            parts.append(detail + ".")
        if self.doi:
            parts.append(f"doi:{self.doi}.")
        if self.pmid:
            parts.append(f"PMID: {self.pmid}.")
        if self.url and not self.doi:
            accessed = f" (accessed {self.accessed})" if self.accessed else ""
            parts.append(f"{self.url}{accessed}.")
        return " ".join(parts)

    @property
    def link(self) -> str:
        """Where the work can be read: its DOI, else its URL, else nothing."""
        if self.doi:
            return self.doi_url
        return self.url

    @property
    def doi_url(self) -> str:
        """The DOI resolver's address for the work ('' without a DOI)."""
        return f"https://doi.org/{self.doi}" if self.doi else ""

    @property
    def pubmed_url(self) -> str:
        """The work's PubMed record ('' without a PMID)."""
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/" if self.pmid else ""


class Bibliography:
    """The loaded bibliography, with lookups by id."""

    def __init__(self, references: Iterable[Reference], version: int) -> None:
        self.references = tuple(references)
        self.version = version
        self._by_id = {r.id: r for r in self.references}

    def __contains__(self, ref_id: object) -> bool:
        return ref_id in self._by_id

    def get(self, ref_id: str) -> Reference:
        try:
            return self._by_id[ref_id]
        except KeyError:
            raise KnowledgeError(f"unknown bibliography entry {ref_id!r}") from None

    def short(self, cite: Cite) -> str:
        """'ASRA/AAPM/ASA consensus 2018, Table 6'."""
        short = self.get(cite.ref).short
        return f"{short}, {cite.at}" if cite.at else short

    def public(self, data: Any) -> Any:
        """Plain data of knowledge models (``model_dump``) for users: every source also gets
        its readable ``citation`` (``provenance`` is never serialised in the first place)."""
        if isinstance(data, list):
            return [self.public(item) for item in data]
        if not isinstance(data, dict):
            return data
        out = {k: self.public(v) for k, v in data.items()}
        cites = data.get("cite")
        if isinstance(cites, list) and all(isinstance(c, dict) and "ref" in c for c in cites):
            out["citation"] = "; ".join(self.short(Cite.model_validate(c)) for c in cites)
        return out

    def check(self, cites: Iterable[Cite], where: str) -> None:
        """Refuse (``KnowledgeError``) any cite whose ``ref`` is not in the bibliography."""
        unknown = sorted({c.ref for c in cites if c.ref not in self._by_id})
        if unknown:
            raise KnowledgeError(
                f"{where}: cites {', '.join(unknown)}, not in {FILENAME}",
            )


@cache
def bibliography() -> Bibliography:
    """The bibliography, loaded and validated once per process."""
    parsed = load_entries(FILENAME, Reference, kind="bibliography")
    return Bibliography(parsed.entries, parsed.version)
