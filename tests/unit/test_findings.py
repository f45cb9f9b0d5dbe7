"""One finding type: the catalogue of codes, citations that resolve, and plain words first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ketapath.cli.knowledge import findings_markdown
from ketapath.domain.findings import Finding, finding, sort_findings, worst
from ketapath.knowledge.clinical import knowledge

SRC = Path(__file__).resolve().parents[2] / "src" / "ketapath"
DOCS = Path(__file__).resolve().parents[2] / "docs"
FACTORIES = {"finding", "_finding"}


def _codes_in_source() -> list[tuple[str, str]]:
    """(file, code or 'family:' prefix) of every finding(...) call's code in the source."""
    found = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name not in FACTORIES:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((path.name, first.value))
            elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
                found.append((path.name, str(first.values[0].value)))
            elif isinstance(first, ast.IfExp):
                for branch in (first.body, first.orelse):
                    if isinstance(branch, ast.Constant):
                        found.append((path.name, branch.value))
    return found


def test_every_code_the_source_raises_is_in_the_catalogue() -> None:
    kb = knowledge()
    codes = _codes_in_source()
    assert len(codes) > 30
    for where, code in codes:
        probe = code + "x" if code.endswith(":") else code
        assert kb.finding_code(probe), (where, code)


def test_every_family_member_named_by_the_data_is_in_the_catalogue() -> None:
    kb = knowledge()
    members = [
        *(f"contraindication:{c.id}" for c in kb.contraindications.entries),
        *(f"interaction:{i.id}" for i in kb.interactions.entries),
        *(f"policy:{p.id}" for p in kb.policy.entries),
        *(f"taper:{t.id}" for t in kb.opioid_tapering.entries),
        *(
            f"opioid-threshold:{t.id}"
            for table in kb.opioid_conversion.entries
            for t in table.thresholds
        ),
    ]
    for code in members:
        assert kb.finding_code(code).is_family, code


def test_the_severity_each_data_entry_gives_is_allowed_for_its_code() -> None:
    kb = knowledge()
    for ci in kb.contraindications.entries:
        assert ci.severity in kb.finding_code(f"contraindication:{ci.id}").severities
    for inter in kb.interactions.entries:
        assert inter.severity in kb.finding_code(f"interaction:{inter.id}").severities
    for rule in kb.opioid_tapering.entries:
        assert rule.severity in kb.finding_code(f"taper:{rule.id}").severities


def test_a_code_outside_the_catalogue_is_refused() -> None:
    with pytest.raises(KeyError, match=r"not in finding_codes\.yaml"):
        finding("made-up:code", "words")


def test_a_severity_the_code_does_not_allow_is_refused() -> None:
    with pytest.raises(ValueError, match="severity"):
        finding("purpose:not-stated", "words", severity="info")


def test_a_family_code_needs_the_source_of_its_data_entry() -> None:
    with pytest.raises(ValueError, match="source"):
        finding("interaction:benzodiazepines", "words", severity="soft")


def test_a_finding_leads_with_words_then_rule_then_readable_citations() -> None:
    f = finding("purpose:not-stated", "The purpose is not stated.")
    assert isinstance(f, Finding)
    assert f.severity == "soft" and f.gates
    assert f.message == "The purpose is not stated."
    assert "purpose" in f.rule.lower()
    bibliography = knowledge().bibliography
    assert f.citations and all(c.ref in bibliography for c in f.citations)
    assert all(c.text.startswith(bibliography.get(c.ref).short) for c in f.citations)
    data = f.to_dict()
    assert data["citation"] == f.citation and data["code"] == "purpose:not-stated"


def test_findings_sort_with_what_blocks_first_and_worst_names_the_most_serious() -> None:
    info = finding("consent:pending", "pending")
    soft = finding("purpose:not-stated", "not stated")
    assert sort_findings([info, soft]) == [soft, info]
    assert worst([info, soft]) == "soft" and worst([]) is None


def test_the_catalogue_codes_are_unique_and_every_source_resolves() -> None:
    kb = knowledge()
    codes = [c.code for c in kb.finding_codes.entries]
    assert len(codes) == len(set(codes))
    for c in kb.finding_codes.entries:
        if c.source is not None:
            assert all(x.ref in kb.bibliography for x in c.source.cite), c.code


def test_docs_findings_md_is_the_current_catalogue() -> None:
    assert (DOCS / "findings.md").read_text(encoding="utf-8") == findings_markdown()
