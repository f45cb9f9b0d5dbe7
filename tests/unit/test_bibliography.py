"""The bibliography, and the citations every knowledge file makes into it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ketapath.knowledge.base import Cite, KnowledgeError, Source, cites_in, data_path
from ketapath.knowledge.bibliography import Bibliography, Reference, bibliography
from ketapath.knowledge.bounds import input_bounds
from ketapath.knowledge.clinical import Knowledge, knowledge
from ketapath.knowledge.evidence import evidence
from ketapath.knowledge.exposure import load_exposure_thresholds
from ketapath.knowledge.fhir import fhir_codes
from ketapath.knowledge.instruments import load_instruments
from ketapath.knowledge.ledger import ledger_rules
from ketapath.knowledge.pk_models import load_pk_input_bounds, load_pk_knowledge
from ketapath.knowledge.registry import registry_rules
from ketapath.knowledge.safe_harbor import safe_harbor

DATA_DIR = data_path("bibliography.yaml").parent
DOI = re.compile(r"^10\.\d{4,9}/[^\s]+$")


def _all_cites() -> list[Cite]:
    kb = knowledge()
    found: list[Cite] = []
    for name in Knowledge.FILES:
        found += cites_in(getattr(kb, name))
    found += cites_in(load_instruments())
    found += cites_in(load_pk_knowledge())
    found += cites_in(list(input_bounds().by_id.values()))
    found += cites_in(load_pk_input_bounds())
    found += cites_in(ledger_rules())
    found += cites_in(evidence())
    found += cites_in(list(fhir_codes().entries))
    found += cites_in(safe_harbor())
    found += cites_in(load_exposure_thresholds())
    found += cites_in(registry_rules())
    return found


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string value in a loaded YAML document, with its key path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def test_the_bibliography_loads_with_entries_and_a_version() -> None:
    bib = bibliography()
    assert bib.version >= 1
    assert len(bib.references) >= 40
    ids = [r.id for r in bib.references]
    assert len(ids) == len(set(ids))


def test_every_cite_in_every_knowledge_file_resolves_to_a_bibliography_entry() -> None:
    bib = bibliography()
    cites = _all_cites()
    assert len(cites) > 300
    unknown = sorted({c.ref for c in cites if c.ref not in bib})
    assert unknown == []


def test_the_loaders_refuse_a_cite_that_is_not_in_the_bibliography() -> None:
    bib = bibliography()
    bad = Source(cite=(Cite(ref="no-such-work-1999", at="Table 1"),))
    with pytest.raises(KnowledgeError, match="no-such-work-1999"):
        bib.check(cites_in(bad), "example.yaml")


def test_every_bibliography_entry_is_cited_by_some_knowledge_file() -> None:
    cited = {c.ref for c in _all_cites()}
    uncited = {r.id for r in bibliography().references} - cited
    # Pickering 2020 is the trial the Clark editorial discusses (the outcomes area's 35-day
    # endpoint); it is kept for the readers that cite it in code.
    # clinic-drug-library is for a clinic's own library files (knowledge/library.py), which
    # cite it for the values the clinic sets itself; the packaged files never do.
    assert uncited <= {"pickering-2020-ketamine-magnesium", "clinic-drug-library"}


def test_every_published_reference_has_a_year_and_authors_or_a_publisher() -> None:
    for ref in bibliography().references:
        if ref.kind == "local":
            continue
        assert ref.year is not None, ref.id
        assert ref.authors or ref.container, ref.id


def test_a_published_reference_without_a_year_is_refused() -> None:
    with pytest.raises(ValueError, match="year"):
        Reference(
            id="x-1", short="Someone", kind="article", title="A title", verified="checked here"
        )


def test_dois_look_like_dois_and_no_two_entries_share_one() -> None:
    dois = [r.doi for r in bibliography().references if r.doi]
    assert len(dois) >= 25
    for doi in dois:
        assert DOI.match(doi), doi
    assert len(dois) == len(set(d.lower() for d in dois))


def test_pmids_are_digits_and_unique() -> None:
    pmids = [r.pmid for r in bibliography().references if r.pmid]
    assert all(p.isdigit() for p in pmids)
    assert len(pmids) == len(set(pmids))


def test_every_entry_says_what_was_verified() -> None:
    for ref in bibliography().references:
        assert len(ref.verified) >= 10, ref.id


def test_local_choices_are_cited_as_local_never_as_evidence() -> None:
    bib = bibliography()
    for ref_id in (
        "ketapath-clinic-policy",
        "ketapath-input-rules",
        "ketapath-pump-configuration",
        "ketapath-drug-library",
        "ketapath-protocol-defaults",
        "ketapath-scoring-rules",
        "clinic-drug-library",
        "ketapath-ledger-policy",
        "ketapath-registry-policy",
    ):
        assert bib.get(ref_id).kind == "local"
    kb = knowledge()
    assert [c.ref for c in kb.policy_rule("minimum-age").source.cite] == ["ketapath-clinic-policy"]
    for pump in kb.pump.entries:
        assert "ketapath-pump-configuration" in {c.ref for c in pump.source.cite}


@pytest.mark.parametrize("path", sorted(DATA_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_no_yaml_string_says_seed_except_under_provenance(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    offending = [
        (where, text)
        for where, text in _strings(document)
        if "seed" in text.lower() and not where.endswith(".provenance")
    ]
    assert offending == []


def test_the_seed_check_would_catch_a_seed_outside_provenance() -> None:
    document = {"entries": [{"name": "x (Seed 004)", "source": {"provenance": "seed 004"}}]}
    offending = [w for w, t in _strings(document) if "seed" in t.lower()]
    assert offending == [".entries[0].name", ".entries[0].source.provenance"]


def test_the_short_citation_joins_the_short_name_and_the_locator() -> None:
    bib = bibliography()
    cite = Cite(ref="cohen-2018-ketamine-consensus", at="Table 6, dosing (2)")
    assert bib.short(cite) == "ASRA/AAPM/ASA consensus 2018, Table 6, dosing (2)"


def test_the_full_reference_is_vancouver_with_doi_and_pmid() -> None:
    ref = bibliography().get("schwartzman-2009-crps")
    assert ref.full() == (
        "Schwartzman RJ, Alexander GM, Grothusen JR, Paylor T, Reichenberger E, Perreault M. "
        "Outpatient intravenous ketamine for the treatment of complex regional pain syndrome: "
        "a double-blind placebo controlled study. Pain. 2009;147(1-3):107-15. "
        "doi:10.1016/j.pain.2009.08.015. PMID: 19783371."
    )
    assert ref.link == "https://doi.org/10.1016/j.pain.2009.08.015"


def test_a_title_ending_in_a_question_mark_takes_no_full_stop_after_it() -> None:
    ref = bibliography().get("kim-2015-phn")
    assert ref.title.endswith("?")
    assert "ketamine infusion therapy? J Clin Anesth. 2015;27:296-300." in ref.full()
    assert "?." not in ref.full()


def test_a_reference_links_its_doi_and_its_pubmed_record_when_it_has_them() -> None:
    bib = bibliography()
    patil = bib.get("patil-2012-outpatient")
    assert patil.doi_url == "https://doi.org/10.1111/j.1526-4637.2011.01241.x"
    assert patil.pubmed_url == "https://pubmed.ncbi.nlm.nih.gov/21939497/"
    felsby = bib.get("felsby-1996-neuropathic")
    assert (felsby.doi, felsby.pmid, felsby.doi_url, felsby.pubmed_url) == ("", "", "", "")
    assert felsby.link == ""


def test_the_drug_library_cites_a_source_for_every_soft_and_hard_limit() -> None:
    bib: Bibliography = bibliography()
    for setting in knowledge().drug_library.entries:
        limits = [
            getattr(setting, n) for n in type(setting).model_fields if n.endswith(("_kg", "_h"))
        ]
        limits += [limit for a in setting.adjuncts for limit in (a.dose, a.session)]
        assert len(limits) > 5
        for limit in limits:
            for severity in ("hard", "soft"):
                source = limit.source_of(severity)
                assert source.cite, (setting.id, severity)
                for c in source.cite:
                    assert c.ref in bib
