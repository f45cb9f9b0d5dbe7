from __future__ import annotations

import pytest
from pydantic import ValidationError

from ketapath.knowledge.base import KnowledgeFile, cites_in, format_validation_error
from ketapath.knowledge.clinical import Knowledge, Protocol, knowledge
from ketapath.knowledge.library import Limit, default_library

FILES = Knowledge.FILES


def test_every_knowledge_file_loads_with_a_version() -> None:
    kb = knowledge()
    for name in FILES:
        assert getattr(kb, name).version >= 1


def test_every_entry_names_its_source() -> None:
    kb = knowledge()
    for name in FILES:
        for entry in getattr(kb, name).entries:
            source = getattr(entry, "source", None)
            if getattr(entry, "source_from", ""):  # a family code: each data entry is sourced
                continue
            if source is None:  # a drug-library setting: each of its limits is sourced
                assert cites_in(entry), (name, entry)
                continue
            assert source.cite and all(c.ref in kb.bibliography for c in source.cite)


def test_the_protocols_of_the_clinical_core_exist() -> None:
    ids = {p.id for p in knowledge().protocols.entries}
    assert ids >= {
        "asra-initial",
        "crps-schwartzman-10day",
        "crps-sigtermans-continuous",
        "sci-amr-7day",
        "mixed-kang-3session",
        "titrate-correll",
        "titrate-goldberg-5day",
        "inpatient-sc-anzca",
        "dose-ladder",
    }


def test_the_drug_library_holds_the_consensus_limits() -> None:
    library = default_library()
    for setting in ("clinic", "ward", "icu"):
        assert library.setting(setting).bolus_mg_per_kg.hard == 0.35
    assert library.setting("clinic").rate_mg_per_kg_per_h.hard == 2
    assert library.setting("ward").rate_mg_per_kg_per_h.hard == 2
    assert library.setting("icu").rate_mg_per_kg_per_h.hard == 7


def test_where_sources_disagree_the_clinic_rate_limit_shows_both_and_says_which_it_follows() -> (
    None
):
    rate = default_library().setting("clinic").rate_mg_per_kg_per_h
    shown = {(r.text, c.ref) for r in rate.published for c in r.source.cite}
    assert ("0.5-2 mg/kg/h", "cohen-2018-ketamine-consensus") in shown
    assert ("0.1-0.5 mg/kg/h", "maher-2017-iv-ketamine-review") in shown
    assert "consensus" in rate.follows.lower() and "Maher" in rate.follows


def test_the_session_limit_rests_on_the_5_hour_spinal_cord_injury_session_not_4_hours() -> None:
    session = default_library().setting("clinic").session_total_mg_per_kg
    assert "5 h" in session.source.note and "4-hour" not in session.source.note
    assert "amr-2010-sci" in {c.ref for c in session.source.cite}
    assert (session.soft, session.hard) == (5, 10)


def test_the_clinic_course_limits_rest_on_outpatient_figures_only() -> None:
    course = default_library().setting("clinic").course_total_mg_per_kg
    assert "6800" not in course.source.note and "kiefer-2008-crps" not in {
        c.ref for c in course.source.cite
    }
    assert {"amr-2010-sci", "schwartzman-2009-crps"} <= {c.ref for c in course.source.cite}


def test_a_limit_listing_several_published_ranges_must_say_which_it_follows() -> None:
    raw = default_library().setting("clinic").rate_mg_per_kg_per_h.model_dump()
    raw["follows"] = ""
    with pytest.raises(ValidationError, match="follows"):
        Limit.model_validate(raw)


def test_the_adverse_effects_of_table_4_are_all_there() -> None:
    ids = {e.id for e in knowledge().adverse_effects.entries}
    assert ids == {
        "psychomimetic",
        "nausea-vomiting",
        "hepatotoxicity",
        "headache",
        "cystitis",
        "spinal-cord-toxicity",
    }


def test_a_soft_limit_above_its_hard_limit_is_rejected() -> None:
    with pytest.raises(ValidationError, match="soft limit cannot be above"):
        Limit.model_validate(
            {"soft": 3, "hard": 2, "source": {"cite": [{"ref": "cohen-2018-ketamine-consensus"}]}}
        )


def test_a_protocol_with_both_steps_and_a_ladder_is_rejected() -> None:
    raw = knowledge().protocol("dose-ladder").model_dump()
    raw["steps"] = [{"duration_min": 60, "rate": {"value": 1, "unit": "mg/h"}}]
    with pytest.raises(ValidationError, match="either steps or a dose_ladder"):
        Protocol.model_validate(raw)


def test_a_validation_error_names_the_entry_and_the_field() -> None:
    raw = {
        "kind": "protocols",
        "version": 1,
        "entries": [
            {
                "id": "broken",
                "name": "x",
                "summary": "x",
                "route": "iv",
                "settings": ["clinic"],
                "source": "test",
                "steps": [{"duration_min": -5, "rate": {"value": 1, "unit": "mg/h"}}],
            }
        ],
    }
    with pytest.raises(ValidationError) as info:
        KnowledgeFile[Protocol].model_validate(raw)
    text = format_validation_error(info.value, raw)
    assert "id=broken" in text
    assert "duration_min" in text
