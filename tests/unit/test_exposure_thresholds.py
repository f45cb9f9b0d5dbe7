"""The reference concentrations of the exposure summaries (exposure_thresholds.yaml): cited,
published where a study gives them and ketapath policy where none does, converted between the
enantiomers on a model of the other, and replaceable by a clinic's own validated file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketapath import pk
from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.domain.exposure_summary import applied_thresholds
from ketapath.knowledge.base import KnowledgeError
from ketapath.knowledge.bibliography import bibliography
from ketapath.knowledge.exposure import load_exposure_thresholds

OWN = """\
kind: exposure_thresholds
version: 2
entries:
  - id: ketamine-80
    name: ketamine 80 ng/mL
    analyte: racemic ketamine
    concentration_ng_per_ml: 80
    basis: policy
    meaning: Our clinic's own reference line.
    source: {cite: [{ref: ketapath-clinic-policy, at: "our lines, 2026"}]}
"""


def test_the_packaged_lines_are_cited_and_policy_only_where_nothing_is_published() -> None:
    lines = load_exposure_thresholds()
    assert lines.version >= 1 and len(lines.entries) >= 4
    bib = bibliography()
    for line in lines.entries:
        kinds = {bib.get(c.ref).kind for c in line.source.cite}
        if line.basis == "published":
            assert kinds - {"local"}, line.id  # a published line cites a publication
        else:
            assert "local" in kinds, line.id  # a policy line says it is local
    assert {line.basis for line in lines.entries if line.analyte == "norketamine"} == {"policy"}
    assert any(
        c.ref == "bowdle-1998-psychedelic" for line in lines.entries for c in line.source.cite
    )
    assert len(lines.digest()) == 64


def test_a_line_of_the_other_enantiomer_is_converted_and_says_so() -> None:
    lines = load_exposure_thresholds()
    s_plasma, s_metabolite = applied_thresholds(pk.get_model("perez-ruixo"), lines)
    racemic_100 = next(t for t in s_plasma if t.id == "ketamine-100")
    assert (
        racemic_100.applied_mg_per_l == pytest.approx(0.05)
        and "racemic 100" in racemic_100.converted
    )
    c50 = next(t for t in s_plasma if t.id == "s-ketamine-c50")
    assert c50.applied_mg_per_l == pytest.approx(0.0105) and c50.converted == ""
    assert {t.id for t in s_metabolite} == {"norketamine-50", "norketamine-100"}
    r_plasma, r_metabolite = applied_thresholds(pk.get_model("kamp"), lines)
    c50_racemic = next(t for t in r_plasma if t.id == "s-ketamine-c50")
    assert c50_racemic.applied_mg_per_l == pytest.approx(0.021) and c50_racemic.converted
    assert r_metabolite == ()  # no norketamine in a model without it


def test_a_clinics_own_file_replaces_the_packaged_lines(tmp_path: Path) -> None:
    path = tmp_path / "lines.yaml"
    path.write_text(OWN, encoding="utf-8")
    own = load_exposure_thresholds(str(path))
    assert [line.id for line in own.entries] == ["ketamine-80"] and own.version == 2
    assert own.digest() != load_exposure_thresholds().digest()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("concentration_ng_per_ml: 80", "concentration_ng_per_ml: -1"), "concentration_ng_per_ml"),
        (
            ("concentration_ng_per_ml: 80", "concentration_ng_per_ml: .nan"),
            "concentration_ng_per_ml",
        ),
        (("analyte: racemic ketamine", "analyte: R-ketamine"), "analyte"),
        (("ref: ketapath-clinic-policy", "ref: nobody-2099"), "nobody-2099"),
        (("kind: exposure_thresholds", "kind: vital_thresholds"), "kind"),
    ],
)
def test_a_bad_clinic_file_is_refused_naming_what_is_wrong(
    tmp_path: Path, change: tuple[str, str], words: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(OWN.replace(*change), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=words):
        load_exposure_thresholds(str(path))


def test_the_server_does_not_start_with_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: exposure_thresholds\nversion: 1\nentries: [{}]\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=str(path)):
        create_app(Settings(exposure_thresholds_file=str(path), secret_key="x" * 32))
