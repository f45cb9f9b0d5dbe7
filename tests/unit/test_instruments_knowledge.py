"""The instruments knowledge file: its schema refuses data that would mis-score a patient."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from ketapath.knowledge.instruments import Instrument, load_instruments

SOURCE = {"cite": [{"ref": "kroenke-2001-phq9", "at": "test"}]}


def minimal() -> dict[str, Any]:
    return {
        "id": "demo",
        "short_name": "DEMO",
        "name": "Demonstration scale",
        "purpose": "tests",
        "licence": "test data",
        "source": SOURCE,
        "verified": "not applicable",
        "response": {"minimum": 0, "maximum": 3},
        "items": [
            {"id": "q1", "number": "1", "label": "first"},
            {"id": "q2", "number": "2", "label": "second"},
        ],
        "scales": [
            {
                "id": "total",
                "name": "Total",
                "items": ["q1", "q2"],
                "combine": "sum",
                "published_range": [0, 6],
                "missing": {
                    "max_missing": 0,
                    "method": "none",
                    "rule": "all needed",
                    "source": SOURCE,
                    "verified": "test",
                },
                "bands": [{"at_least": 0, "label": "low"}, {"at_least": 4, "label": "high"}],
                "bands_source": SOURCE,
            }
        ],
        "total_scale": "total",
    }


def test_the_minimal_definition_is_valid() -> None:
    assert Instrument.model_validate(minimal()).id == "demo"


def broken(change: str) -> dict[str, Any]:
    data = copy.deepcopy(minimal())
    scale = data["scales"][0]
    if change == "range typo":
        scale["published_range"] = [0, 7]
    elif change == "unknown item":
        scale["items"] = ["q1", "q3"]
    elif change == "bands fall":
        scale["bands"] = [{"at_least": 0, "label": "a"}, {"at_least": 0, "label": "b"}]
    elif change == "bands start above the bottom":
        scale["bands"] = [{"at_least": 1, "label": "a"}]
    elif change == "bands without source":
        scale["bands_source"] = None
    elif change == "all items may be missing":
        scale["missing"] = {**scale["missing"], "max_missing": 2, "method": "prorate"}
    elif change == "prorate with none allowed":
        scale["missing"] = {**scale["missing"], "method": "prorate"}
    elif change == "sum scale averaged":
        scale["missing"] = {**scale["missing"], "max_missing": 1, "method": "mean_of_answered"}
    elif change == "alias clash":
        data["items"][1]["aliases"] = ["q1"]
    elif change == "no source":
        data["source"] = {"cite": []}
    elif change == "unknown total":
        data["total_scale"] = "sum"
    elif change == "unknown field":
        data["cutoff"] = 3
    elif change == "inverted response":
        data["response"] = {"minimum": 3, "maximum": 0}
    elif change == "alert on unknown item":
        data["alerts"] = [{"item": "q9", "at_least": 1, "message": "hello", "source": SOURCE}]
    return data


@pytest.mark.parametrize(
    "change",
    [
        "range typo",
        "unknown item",
        "bands fall",
        "bands start above the bottom",
        "bands without source",
        "all items may be missing",
        "prorate with none allowed",
        "sum scale averaged",
        "alias clash",
        "no source",
        "unknown total",
        "unknown field",
        "inverted response",
        "alert on unknown item",
    ],
)
def test_a_definition_with_an_error_is_refused(change: str) -> None:
    with pytest.raises(ValidationError):
        Instrument.model_validate(broken(change))


def test_the_knowledge_file_loads_and_every_scale_range_matches_its_items() -> None:
    for inst in load_instruments():
        for scale in inst.scales:
            assert inst.computed_range(scale) == tuple(float(x) for x in scale.published_range)


def test_every_missing_item_rule_and_band_set_names_a_source() -> None:
    for inst in load_instruments():
        for scale in inst.scales:
            assert scale.missing.source and scale.missing.verified
            if scale.bands:
                assert scale.bands_source
