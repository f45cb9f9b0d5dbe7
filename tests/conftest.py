from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def write_patient(tmp_path: Path):
    """Write a patient document to a JSON (default) or YAML file and return its path."""

    def _write(data: dict[str, Any], suffix: str = ".json") -> Path:
        path = tmp_path / f"patient{suffix}"
        if suffix == ".json":
            path.write_text(json.dumps(data))
        else:
            import yaml

            path.write_text(yaml.safe_dump(data))
        return path

    return _write


def base_patient(**changes: Any) -> dict[str, Any]:
    """A CRPS patient with nothing against an infusion; tests change one thing at a time."""
    data: dict[str, Any] = {
        "id": "t-1",
        "age_years": 45,
        "sex": "female",
        "weight_kg": 70,
        "height_cm": 168,
        "pregnancy": "not_pregnant",
        "diagnoses": ["G90.511"],
        "comorbidities": [],
        "medications": [
            {
                "name": "oxycodone",
                "dose": 20,
                "unit": "mg",
                "frequency": "twice daily",
                "route": "oral",
            }
        ],
        "allergies": [],
        "consent": "given",
        "assessment": {
            "central_sensitisation": True,
            "opioid_context": {"poor_opioid_response": True},
        },
        "purpose": ["pain_relief", "opioid_reduction"],
    }
    data.update(changes)
    return data
