"""The model catalogue: citations, validity warnings, variability, effect-site construct."""

from __future__ import annotations

import numpy as np
import pytest

from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.pk_models import load_pk_knowledge
from ketapath.pk import (
    Covariates,
    NoVariabilityError,
    PkInputError,
    UnknownModelError,
    get_model,
    model_ids,
)
from ketapath.pk.system import bolus_response

REQUIRED = {"domino", "clements", "hijazi", "kamp", "otto-fanta", "perez-ruixo"}


def test_the_catalogue_has_the_required_models_each_cited_and_verified() -> None:
    models, analgesia = load_pk_knowledge()
    assert set(model_ids()) >= REQUIRED
    refs = knowledge().bibliography
    for m in models:
        assert m.source.cite and m.verification
        assert all(c.ref in refs for c in m.source.cite)
        assert m.route_note.lower().count("subcutaneous")
    assert analgesia[0].c50_ng_per_ml > 0 and "CRPS" in analgesia[0].population


def test_synthetic_effect_site_constants_are_never_labelled_published() -> None:
    models, _ = load_pk_knowledge()
    for m in models:
        assert m.effect_site.published is False
        assert "not a published value" in m.effect_site.note.lower()


def test_an_unknown_model_is_a_clear_error_listing_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="domino"):
        get_model("marsh")


def test_a_patient_outside_the_range_gets_a_plain_warning() -> None:
    model = get_model("otto-fanta")
    warnings = model.warnings(Covariates(weight_kg=130, age_years=60))
    assert any("weight 130 kg is above" in w for w in warnings)
    assert any("age 60 years is above" in w for w in warnings)
    assert model.warnings(Covariates(weight_kg=70, age_years=25)) == []


def test_the_subcutaneous_route_is_said_to_have_no_published_absorption_model() -> None:
    warnings = get_model("domino").warnings(Covariates(weight_kg=70, age_years=40), route="sc")
    assert any("No published subcutaneous absorption model" in w for w in warnings)


def test_virtual_patients_need_published_variability() -> None:
    with pytest.raises(NoVariabilityError, match="domino"):
        get_model("domino").sample(Covariates(weight_kg=70), 10)


def test_virtual_patients_are_reproducible_and_vary_around_the_typical_value() -> None:
    model = get_model("otto-fanta")
    patient = Covariates(weight_kg=70)
    a = model.sample(patient, 4000, seed=1)
    b = model.sample(patient, 4000, seed=1)
    np.testing.assert_array_equal(a.volumes_l, b.volumes_l)
    typical = model.parameters(patient)
    ratio = np.log(a.clearances_l_per_min[:, 0] / typical.clearances_l_per_min[0, 0])
    assert abs(ratio.mean()) < 0.02
    assert ratio.var() == pytest.approx(0.026048, rel=0.1)


@pytest.mark.parametrize("model_id", ["kamp", "otto-fanta", "perez-ruixo"])
def test_a_computed_ke0_puts_the_effect_peak_at_the_stated_time(model_id: str) -> None:
    model = get_model(model_id)
    params = model.parameters(model.reference_patient())
    for t, expect_rising in ((0.99, True), (1.01, False)):
        cp, ce = bolus_response(params, t)
        assert (cp > ce) == expect_rising


def test_a_non_positive_weight_is_refused_naming_the_field() -> None:
    with pytest.raises(PkInputError, match="weight_kg"):
        Covariates(weight_kg=0)


def test_hijazi_micro_constants_reproduce_the_abstracts_clearance_and_half_life() -> None:
    # Abstract (DOI 10.1093/bja/aeg028): CL 36.0 mL/min/kg, elimination half-life 4.9 h.
    micro = get_model("hijazi").entry.micro
    assert micro is not None
    clearance_ml_per_min_per_kg = micro.v1_l_per_kg * micro.k10_per_min * 1000
    total = micro.k10_per_min + micro.k12_per_min + micro.k21_per_min
    beta = (total - np.sqrt(total**2 - 4 * micro.k10_per_min * micro.k21_per_min)) / 2
    assert clearance_ml_per_min_per_kg == pytest.approx(36.0, rel=0.01)
    assert np.log(2) / beta / 60 == pytest.approx(4.9, abs=0.1)


def test_the_s_ketamine_clearance_matches_the_fanta_abstract() -> None:
    # Fanta 2015 abstract: clearance 95 L/h/70 kg.
    params = get_model("otto-fanta").parameters(Covariates(weight_kg=70))
    assert params.clearances_l_per_min[0, 0] * 60 == pytest.approx(95, rel=0.01)


def test_hepatic_flow_falls_with_age_after_60_and_lowers_clearance() -> None:
    model = get_model("perez-ruixo")
    young, old = model.parameters(
        [Covariates(weight_kg=70, age_years=50), Covariates(weight_kg=70, age_years=80)]
    ).hepatic_flow_l_per_min
    assert young * 60 == pytest.approx(151)
    assert old * 60 == pytest.approx(151 - 2.19 * 20)
    clearance = model.parameters([Covariates(weight_kg=70, age_years=a) for a in (50, 80)])
    assert clearance.total_clearance_l_per_min[1] < clearance.total_clearance_l_per_min[0]


def test_hepatic_flow_stops_falling_at_the_studys_oldest_age() -> None:
    """Carried on past the study's 86 years, the decline gave a negative liver blood flow at
    ~129 years and concentrations that grew for ever."""
    model = get_model("perez-ruixo")
    flows = model.parameters(
        [Covariates(weight_kg=70, age_years=a) for a in (86, 100, 130)]
    ).hepatic_flow_l_per_min
    assert flows is not None
    assert flows[0] == flows[1] == flows[2] > 0
