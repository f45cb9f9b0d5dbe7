"""The vocabulary on the command line: the list, its Markdown page (docs/conditions.md) and the
reading of written diagnoses; and `screen` with the tables' wording."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import base_patient
from typer.testing import CliRunner

from ketapath.cli import app
from ketapath.cli.knowledge import conditions_markdown
from ketapath.knowledge.clinical import knowledge

DOCS = Path(__file__).resolve().parents[2] / "docs"
runner = CliRunner()


def test_docs_conditions_md_is_the_current_vocabulary() -> None:
    assert (DOCS / "conditions.md").read_text(encoding="utf-8") == conditions_markdown()


def test_the_vocabulary_page_lists_every_condition_term_code_and_ambiguous_word() -> None:
    page = conditions_markdown()
    kb = knowledge()
    for c in kb.conditions.entries:
        assert f"### {c.name}" in page and f"`{c.id}`" in page
        for text in (*c.synonyms, *c.abbreviations, *c.icd10cm, *c.icd11, *c.icd11_earlier):
            assert text in page, (c.id, text)
    for amb in kb.conditions.ambiguous:
        assert ", ".join(amb.terms) in page
    assert "seed" not in page.lower()


def test_knowledge_conditions_json_gives_codes_terms_role_and_source() -> None:
    result = runner.invoke(app, ["knowledge", "conditions", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    crps = next(c for c in data["conditions"] if c["id"] == "crps")
    assert crps["icd11"] == ["MG30.04"] and crps["abbreviations"] == ["CRPS"]
    assert crps["screening"].startswith("indication, Grade B")
    assert crps["source"]["cite"][0]["ref"] == "icd-11-mms"
    psychosis = next(c for c in data["conditions"] if c["id"] == "psychosis")
    assert psychosis["screening"] == "relative contraindication (soft): Psychosis"
    assert any(a["terms"] == ["angina", "angina pectoris"] for a in data["ambiguous"])
    assert "provenance" not in result.stdout


def test_knowledge_conditions_prints_one_block_per_condition() -> None:
    result = runner.invoke(app, ["knowledge", "conditions"])
    assert result.exit_code == 0
    assert (
        "raised-iop  Elevated intraocular pressure, glaucoma or acute globe injury" in result.stdout
    )


def test_knowledge_diagnosis_shows_how_each_text_is_read() -> None:
    result = runner.invoke(
        app, ["knowledge", "diagnosis", "Glaucoma (left eye)", "?psychosis", "MG30.04", "--json"]
    )
    assert result.exit_code == 0, result.output
    glaucoma, doubt, code = json.loads(result.stdout)
    assert glaucoma["resolved"] and glaucoma["condition"]["id"] == "raised-iop"
    assert glaucoma["condition"]["icd11"] == ["9C61", "NA06.8", "NA06.9"]
    assert not doubt["resolved"] and doubt["matched_by"] == "uncertain"
    assert doubt["mentions"] == ["psychosis"] and "check by hand" in doubt["explanation"]
    assert code["matched_by"] == "icd11" and code["condition"]["id"] == "crps"
    text = runner.invoke(app, ["knowledge", "diagnosis", "no history of psychosis"])
    assert text.exit_code == 0 and "says it is absent" in text.stdout


def test_screen_reads_the_tables_wording(write_patient) -> None:
    path = write_patient(
        base_patient(
            diagnoses=["Complex regional pain syndrome"],
            comorbidities=[
                "Elevated intracranial pressure, including secondary traumatic brain injury"
                " or tumor"
            ],
        )
    )
    result = runner.invoke(app, ["screen", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [i["condition_id"] for i in data["indications"]] == ["crps"]
    found = {f["code"] for f in data["findings"]}
    assert "contraindication:raised-intracranial-pressure" in found
    assert not any(code.startswith("input:") for code in found)
