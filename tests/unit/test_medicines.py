"""The medicine vocabulary: its schema, recognition of what clinicians write, and the OME of
brand-name and combination medicines (expected values computed by hand with CDC 2022)."""

from __future__ import annotations

import re

import pytest
import yaml

from ketapath.domain.medicines import amount_per_dose, recognise
from ketapath.domain.opioids import oral_morphine_equivalents
from ketapath.domain.patient import Medication, patient_from_dict
from ketapath.domain.screening import screen
from ketapath.knowledge.base import data_path
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.medicines import MedicineVocabulary, load_medicines, name_variants

VOCAB = load_medicines()
RAW = yaml.safe_load(data_path("medicines.yaml").read_text(encoding="utf-8"))


def med(name: str, dose: float | None, unit: str | None, **kw: object) -> Medication:
    data: dict[str, object] = {"name": name, "dose": dose, "unit": unit}
    data.setdefault("frequency", "od")
    data.update(kw)
    return Medication.model_validate(data)


def codes(findings) -> set[str]:
    return {f.code for f in findings}


# ------------------------------------------------------------------ schema


def test_every_entry_of_the_vocabulary_has_a_source_citing_the_bibliography() -> None:
    bib = knowledge().bibliography
    for entry in VOCAB.entries:
        assert entry.source.cite, entry
        assert all(c.ref in bib for c in entry.source.cite), entry


def test_every_medicine_ingredient_has_a_well_formed_atc_code() -> None:
    for ing in VOCAB.ingredients:
        if ing.kind == "medicine":
            assert ing.atc and all(re.fullmatch(r"[A-Z]\d\d[A-Z]{2}\d\d", c) for c in ing.atc)
    assert all(re.fullmatch(r"[A-Z]\d\d[A-Z]{2}\d\d", p.atc) for p in VOCAB.products if p.atc)


def test_class_members_have_an_atc_code_in_the_groups_that_define_the_class() -> None:
    for cls in VOCAB.classes:
        for ing in VOCAB.in_class(cls.id):
            assert any(c.startswith(g) for c in ing.atc for g in cls.atc_groups), (cls.id, ing.id)


def test_every_reference_in_the_vocabulary_resolves() -> None:
    ingredients = {i.id for i in VOCAB.ingredients}
    forms = {f.id for f in VOCAB.dose_forms}
    for p in VOCAB.products:
        assert set(p.ingredients) <= ingredients and set(p.forms) <= forms
        assert all(len(s.amounts) == len(p.ingredients) for s in p.strengths)
    kb = knowledge()
    for inter in kb.interactions.entries:
        assert set(inter.ingredients) <= ingredients
    for table in kb.opioid_conversion.entries:
        assert table.opioid_ids <= set(kb.opioid_ids)


def test_no_name_belongs_to_two_entries() -> None:
    seen: dict[tuple[str, ...], str] = {}
    for label, names in [(i.id, i.names) for i in VOCAB.ingredients] + [
        (p.id, p.names) for p in VOCAB.products
    ]:
        for name in names:
            for variant in name_variants(name):
                assert seen.setdefault(variant, label) == label, (name, label, seen[variant])


def test_a_name_used_twice_is_refused_on_load() -> None:
    raw = dict(RAW)
    clash = {**RAW["products"][0], "id": "another", "names": ["Zomorph"]}
    raw["products"] = [*RAW["products"], clash]
    with pytest.raises(ValueError, match="Zomorph"):
        MedicineVocabulary.model_validate(raw)


def test_a_strength_without_one_amount_per_ingredient_is_refused_on_load() -> None:
    raw = dict(RAW)
    bad = {**RAW["products"][0], "id": "bad", "names": ["Badcodamol"]}
    bad["strengths"] = [{"amounts": [30], "unit": "mg"}]
    raw["products"] = [*RAW["products"], bad]
    with pytest.raises(ValueError, match="one amount per ingredient"):
        MedicineVocabulary.model_validate(raw)


def test_no_rxnorm_or_dmd_code_is_recorded_without_verification() -> None:
    assert all(not i.rxnorm and not i.dmd for i in VOCAB.ingredients)
    assert "RxNorm" in RAW["verified"] and "dm+d" in RAW["verified"]


def test_products_with_strengths_say_where_they_were_read() -> None:
    for p in VOCAB.products:
        if p.strengths:
            assert len(p.verified) > 20 and p.source.cite


# ------------------------------------------------------------------ recognition


@pytest.mark.parametrize(
    ("name", "ingredients"),
    [
        ("OxyContin", ("oxycodone",)),
        ("oxycontin 20 mg", ("oxycodone",)),
        ("OXYNORM  5mg caps", ("oxycodone",)),
        ("Longtec", ("oxycodone",)),
        ("Shortec", ("oxycodone",)),
        ("Zomorph", ("morphine",)),
        ("MST Continus 30 mg", ("morphine",)),
        ("MST 10mg", ("morphine",)),
        ("Oramorph", ("morphine",)),
        ("Sevredol", ("morphine",)),
        ("Palladone", ("hydromorphone",)),
        ("Durogesic DTrans 25", ("fentanyl",)),
        ("Matrifen", ("fentanyl",)),
        ("BuTrans 10", ("buprenorphine",)),
        ("Transtec", ("buprenorphine",)),
        ("Zydol SR", ("tramadol",)),
        ("Tramal", ("tramadol",)),
        ("Palexia", ("tapentadol",)),
        ("Nucynta ER", ("tapentadol",)),
        ("Roxicodone", ("oxycodone",)),
        ("MS Contin", ("morphine",)),
        ("Kadian", ("morphine",)),
        ("Dilaudid", ("hydromorphone",)),
        ("Exalgo", ("hydromorphone",)),
        ("Ultram", ("tramadol",)),
        ("Duragesic", ("fentanyl",)),
        ("Belbuca", ("buprenorphine",)),
        ("Subutex", ("buprenorphine",)),
        ("Suboxone", ("buprenorphine", "naloxone")),
        ("Methadose", ("methadone",)),
        ("Dolophine", ("methadone",)),
        ("Physeptone", ("methadone",)),
        ("co-codamol 30/500", ("codeine", "paracetamol")),
        ("Co Codamol", ("codeine", "paracetamol")),
        ("cocodamol 8/500", ("codeine", "paracetamol")),
        ("Zapain", ("codeine", "paracetamol")),
        ("Solpadol", ("codeine", "paracetamol")),
        ("Kapake 30/500", ("codeine", "paracetamol")),
        ("co-dydramol", ("dihydrocodeine", "paracetamol")),
        ("Tylenol with Codeine #3", ("codeine", "paracetamol")),
        ("Tylenol #4", ("codeine", "paracetamol")),
        ("Percocet 5/325", ("oxycodone", "paracetamol")),
        ("Norco 10/325", ("hydrocodone", "paracetamol")),
        ("Vicodin", ("hydrocodone", "paracetamol")),
        ("Lortab", ("hydrocodone", "paracetamol")),
        ("Ultracet", ("tramadol", "paracetamol")),
        ("Tramacet", ("tramadol", "paracetamol")),
        ("Targinact 10/5", ("oxycodone", "naloxone")),
        ("oxycodone/acetaminophen 5/325", ("oxycodone", "paracetamol")),
        ("hydrocodone-APAP 10/325", ("hydrocodone", "paracetamol")),
        ("morphine sulfate 10 mg/5 mL oral solution", ("morphine",)),
        ("Xanax", ("alprazolam",)),
        ("Lyrica", ("pregabalin",)),
        ("gabapentin", ("gabapentin",)),
        ("Lamictal", ("lamotrigine",)),
        ("St John's Wort", ("hypericum",)),
        ("Nardil", ("phenelzine",)),
        ("Klaricid", ("clarithromycin",)),
        ("rifampin", ("rifampicin",)),
        ("acetaminophen 500 mg", ("paracetamol",)),
        ("meperidine", ("pethidine",)),
    ],
)
def test_brand_generic_and_combination_names_are_recognised(name, ingredients) -> None:
    rec = recognise(name)
    assert rec.recognised, rec.problem
    assert rec.ingredients == ingredients


@pytest.mark.parametrize(
    "name",
    ["John Smith 07700 900123", "see GP letter", "Wizzoprofen", "Zomorph and diazepam", "pill"],
)
def test_free_text_and_unknown_names_are_not_recognised(name) -> None:
    rec = recognise(name)
    assert not rec.recognised and rec.problem


@pytest.mark.parametrize(
    ("name", "amounts", "unit"),
    [
        ("OxyContin 20 mg", (20.0,), "mg"),
        ("OxyContin 20mg", (20.0,), "mg"),
        ("co-codamol 30mg/500mg", (30.0, 500.0), "mg"),
        ("Oramorph 10mg/5ml", (2.0,), "mg/mL"),
        ("Durogesic 25 micrograms/hour", (25.0,), "mcg/h"),
        ("Matrifen 12 mcg/hr", (12.0,), "mcg/h"),
        ("paracetamol 1 g", (1000.0,), "mg"),
    ],
)
def test_the_strength_written_in_the_name_is_read_with_its_unit(name, amounts, unit) -> None:
    stated = recognise(name).stated
    assert stated is not None and stated.amounts == amounts and stated.unit == unit


def test_a_count_of_tablets_of_co_codamol_30_500_is_codeine_and_paracetamol() -> None:
    amounts, problem = amount_per_dose(recognise("co-codamol 30/500"), 2, "tablets")
    assert problem is None
    assert [(a.ingredient, a.amount, a.unit) for a in amounts] == [
        ("codeine", 60, "mg"),
        ("paracetamol", 1000, "mg"),
    ]


# ------------------------------------------------------------------ OME (hand-computed)


@pytest.mark.parametrize(
    ("medicine", "ome"),
    [
        # 2 tablets x codeine 30 mg x 4 a day = 240 mg/day x 0.15 = 36
        (med("co-codamol 30/500", 2, "tablets", frequency="qds"), 36.0),
        # 2 x 8 mg x 4 = 64 mg codeine x 0.15 = 9.6
        (med("Co-Codamol 8/500", 2, "tabs", frequency="four times a day"), 9.6),
        # Solpadol has one strength (30/500): 2 x 30 x 4 = 240 x 0.15 = 36
        (med("Solpadol", 2, "caplets", frequency="qds"), 36.0),
        # Zapain 30/500, 1 tablet x 4 = 120 mg codeine x 0.15 = 18
        (med("Zapain", 1, "tablet", frequency="qds"), 18.0),
        # Tylenol #3: codeine 30 mg; 2 x 30 x 3 = 180 x 0.15 = 27
        (med("Tylenol with Codeine #3", 2, "tablets", frequency="tds"), 27.0),
        # Percocet 5/325: oxycodone 5 mg; 1 x 5 x 4 = 20 x 1.5 = 30
        (med("Percocet 5/325", 1, "tablet", frequency="q6h"), 30.0),
        # Norco 10/325: hydrocodone 10 mg x 4 = 40 x 1.0 = 40
        (med("Norco 10/325", 1, "tab", frequency="qds"), 40.0),
        # Vicodin ES: both strengths hold 7.5 mg hydrocodone; 1 x 7.5 x 4 = 30
        (med("Vicodin ES", 1, "tablet", frequency="qds"), 30.0),
        # Ultracet: tramadol 37.5 mg; 2 x 37.5 x 4 = 300 x 0.2 = 60
        (med("Ultracet", 2, "tablets", frequency="qds"), 60.0),
        # Targinact 20/10: oxycodone 20 x 2 = 40 x 1.5 = 60 (naloxone is not an opioid agonist)
        (med("Targinact 20/10", 1, "tablet", frequency="bd"), 60.0),
        # OxyContin 20 mg, 1 tablet bd = 40 x 1.5 = 60
        (med("OxyContin 20 mg", 1, "tablet", frequency="bd"), 60.0),
        # Zomorph 30 mg bd = 60 x 1 = 60
        (med("Zomorph", 30, "mg", frequency="bd"), 60.0),
        # Oramorph 10 mg/5 mL: 5 mL x 2 mg/mL = 10 mg x 6 a day = 60
        (med("Oramorph", 5, "mL", frequency="q4h"), 60.0),
        # Durogesic 25: 1 patch = 25 mcg/h x 2.4 = 60 (route from the product)
        (med("Durogesic 25", 1, "patch", frequency="every 72 hours"), 60.0),
        # Palexia 50 mg bd = 100 x 0.4 = 40
        (med("Palexia", 50, "mg", frequency="bd"), 40.0),
    ],
)
def test_ome_of_brand_name_and_combination_medicines(medicine: Medication, ome: float) -> None:
    if not medicine.route and medicine.unit not in ("patch",):
        medicine = medicine.model_copy(update={"route": "oral"})
    result = oral_morphine_equivalents([medicine])
    assert result.complete, [f.message for line in result.lines for f in line.findings]
    assert result.total_ome_mg_per_day == pytest.approx(ome)


def test_two_uk_brand_name_opioids_are_counted_not_zero() -> None:
    result = oral_morphine_equivalents(
        [
            med("Zomorph", 30, "mg", frequency="bd", route="oral"),
            med("Longtec", 20, "mg", frequency="bd", route="oral"),
        ]
    )
    assert [line.opioid_id for line in result.lines] == ["morphine", "oxycodone"]
    assert result.total_ome_mg_per_day == pytest.approx(120.0) and result.complete


def test_a_count_for_an_unknown_product_is_not_recognised_never_guessed() -> None:
    result = oral_morphine_equivalents([med("Wizzodol", 2, "tablets", frequency="qds")])
    assert result.total_ome_mg_per_day is None and not result.complete
    assert result.unrecognised == ("Wizzodol",)
    assert "not recognised: check by hand" in result.findings[0].message
    assert "opioid:total-not-available" in codes(result.findings)


def test_a_count_without_a_known_strength_is_named_and_not_converted() -> None:
    result = oral_morphine_equivalents([med("Kapake", 2, "capsules", frequency="qds")])
    (line,) = result.lines
    assert not line.converted and "opioid:strength-unknown" in codes(line.findings)
    assert result.total_ome_mg_per_day is None


def test_a_combination_in_mg_and_an_unlisted_strength_are_checked_by_hand() -> None:
    in_mg = oral_morphine_equivalents([med("co-codamol 30/500", 30, "mg", route="oral")])
    assert "opioid:combination-dose-in-mass" in codes(in_mg.lines[0].findings)
    odd = oral_morphine_equivalents([med("co-codamol 300/500", 2, "tablets", route="oral")])
    assert "opioid:strength-not-listed" in codes(odd.lines[0].findings)


def test_tablets_of_a_patch_are_a_form_mismatch() -> None:
    result = oral_morphine_equivalents([med("Durogesic 25", 1, "tablet")])
    assert "opioid:form-mismatch" in codes(result.lines[0].findings)


def test_a_known_non_opioid_is_not_unknown_and_no_opioid_means_no_total() -> None:
    result = oral_morphine_equivalents([med("pregabalin", 150, "mg", frequency="bd")])
    assert result.lines == () and result.unrecognised == ()
    assert result.not_opioids == ("pregabalin",)
    assert result.total_ome_mg_per_day is None and result.total_status == "no-opioids"
    assert "opioid:no-opioids" in codes(result.findings)


def test_an_unknown_medicine_beside_an_opioid_makes_the_total_incomplete_and_named() -> None:
    result = oral_morphine_equivalents(
        [med("morphine", 30, "mg", frequency="bd", route="oral"), med("Mystery", 1, "tablet")]
    )
    assert result.total_ome_mg_per_day == 60 and not result.complete
    (total,) = [f for f in result.findings if f.code == "opioid:total-incomplete"]
    assert "Mystery (could not check whether it is an opioid)" in total.message


def test_the_patient_file_accepts_counts_of_a_dose_form() -> None:
    patient, _ = patient_from_dict(
        {
            "age_years": 50,
            "sex": "female",
            "weight_kg": 70,
            "medications": [
                {"name": "co-codamol 30/500", "dose": 2, "unit": "tablets", "frequency": "qds"}
            ],
        }
    )
    assert patient.medications[0].unit == "tablets"


def test_the_screen_finds_brand_opioids_and_interactions_by_ingredient_and_class() -> None:
    patient, _ = patient_from_dict(
        {
            "age_years": 50,
            "sex": "male",
            "weight_kg": 80,
            "medications": [
                {"name": "Zomorph", "dose": 30, "unit": "mg", "frequency": "bd"},
                {"name": "Xanax"},
                {"name": "Klaricid"},
                {"name": "Sudafed"},
                {"name": "Tegretol"},
                {"name": "Nardil"},
                {"name": "John Smith 07700 900123"},
            ],
        }
    )
    result = screen(patient)
    assert result.opioids == ("morphine",)
    found = codes(result.findings)
    for code in (
        "interaction:benzodiazepines",
        "interaction:cyp3a4-inhibitors",
        "interaction:sympathomimetics",
        "interaction:cyp-inducers",
        "interaction:maois",
        "medicine:not-recognised",
    ):
        assert code in found
    (unknown,) = [f for f in result.findings if f.code == "medicine:not-recognised"]
    assert "not recognised: check by hand" in unknown.message and unknown.severity == "soft"
