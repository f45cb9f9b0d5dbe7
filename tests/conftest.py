from __future__ import annotations

import functools
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


# ------------------------------------------------------------------ infusion sessions (pure)

SESSION_T0_ISO = "2026-12-01T09:00:00+00:00"


def session_programme(**changes: Any) -> Any:
    """A pump programme: 1 mg/mL, one 2-hour step at 20 mL/h (20 mg/h), a 10 mg bolus,
    total 50 mg; ``steps`` may be given as (mL/h, minutes) pairs."""
    from ketapath.domain.session_events import ProgrammeStep, PumpProgramme

    steps = changes.pop("steps", [(20.0, 120.0)])
    concentration = changes.pop("concentration_mg_per_ml", 1.0)
    data: dict[str, Any] = {
        "protocol_id": "test-protocol",
        "concentration_mg_per_ml": concentration,
        "pump_min_ml_per_h": 0.1,
        "pump_max_ml_per_h": 999.0,
        "bolus_mg": 10.0,
        "steps": [
            ProgrammeStep(
                number=i,
                rate_ml_per_h=ml,
                rate_mg_per_h=ml * concentration,
                duration_min=minutes,
                volume_ml=ml * minutes / 60,
            )
            for i, (ml, minutes) in enumerate(steps, start=1)
        ],
        "total_mg": 10.0 + sum(ml * concentration * minutes / 60 for ml, minutes in steps),
        "volume_to_be_infused_ml": sum(ml * minutes / 60 for ml, minutes in steps),
        "adjuncts": [{"drug": "midazolam", "route": "iv", "dose": 2, "unit": "mg"}],
        "adjunct_limits": [
            {
                "drug": "midazolam",
                "route": "iv",
                "dose_soft": 5,
                "dose_hard": 10,
                "session_soft": 7.5,
                "session_hard": 15,
            }
        ],
    }
    data.update(changes)
    return PumpProgramme.model_validate(data)


def baseline_vitals(**changes: Any) -> dict[str, Any]:
    """A complete, unremarkable set of observations (as the fields of a vitals entry)."""
    values: dict[str, Any] = {
        "heart_rate": 72,
        "systolic": 124,
        "diastolic": 78,
        "spo2": 98,
        "respiratory_rate": 14,
        "sedation": 0,
    }
    values.update(changes)
    return values


class ChartLog:
    """Builds a session's chart entry by entry through the domain's gate (``check_append``),
    as a nurse (default) or another role; times are minutes after ``SESSION_T0_ISO``."""

    def __init__(
        self,
        programme: Any = None,
        *,
        sex: str = "female",
        pregnancy: str = "not_pregnant",
        now_min: float = 24 * 60,
    ) -> None:
        from datetime import datetime, timedelta

        from ketapath.domain.sessions import PatientFacts, SessionContext

        self.t0 = datetime.fromisoformat(SESSION_T0_ISO)
        self.now = self.t0 + timedelta(minutes=now_min)
        self.context = SessionContext(
            programme=programme if programme is not None else session_programme(),
            patient=PatientFacts(sex=sex, pregnancy=pregnancy),
        )
        self.events: list[Any] = []

    def at(self, minutes: float) -> Any:
        from datetime import timedelta

        return self.t0 + timedelta(minutes=minutes)

    def entry(self, kind: str, minutes: float, **fields: Any) -> Any:
        from pydantic import TypeAdapter

        from ketapath.domain.session_events import ChartEntry

        data = {"kind": kind, "occurred_at": self.at(minutes), **fields}
        return TypeAdapter(ChartEntry).validate_python(data)

    def add(
        self,
        kind: str,
        minutes: float,
        *,
        role: str = "nurse",
        by: str = "",
        amends: int | None = None,
        why: str = "",
        **fields: Any,
    ) -> Any:
        """Append an entry (refused: ``ChartRefused`` propagates, nothing is added)."""
        from ketapath.domain.session_events import ChartEvent
        from ketapath.domain.sessions import check_append

        event = ChartEvent(
            seq=len(self.events) + 1,
            entry=self.entry(kind, minutes, **fields),
            recorded_by=by or role,
            by_role=role,
            amends_seq=amends,
            reason=why,
        )
        view = check_append(self.events, event, self.now, self.context)
        self.events.append(event)
        return view

    def view(self, minutes: float | None = None) -> Any:
        from ketapath.domain.sessions import replay

        return replay(self.events, self.now if minutes is None else self.at(minutes), self.context)

    def check_in(self, minutes: float = 0, **changes: Any) -> Any:
        fields: dict[str, Any] = {
            "consent_confirmed": True,
            "fasting_confirmed": True,
            "escort_present": True,
            "allergies_confirmed": True,
            "pregnancy_test": "negative",
            "baseline": baseline_vitals(),
            "baseline_pain_nrs": 6,
        }
        fields.update(changes)
        return self.add("check_in", minutes, **fields)

    def running(self, minutes: float = 5) -> Any:
        """Checked in at 0 and started at ``minutes``."""
        self.check_in()
        return self.add("start", minutes)


# ------------------------------------------------------------------ FHIR


def fhir_r4_schema() -> Any:
    """A validator of the official FHIR R4 JSON schema (tests/data/README.md): the second
    validator of the FHIR export, besides ketapath's own FHIR R4B models."""
    return _fhir_r4_schema()


@functools.cache
def _fhir_r4_schema() -> Any:
    import gzip

    import jsonschema_rs

    path = Path(__file__).parent / "data" / "fhir-r4.schema.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as file:
        schema = json.load(file)
    return jsonschema_rs.validator_for(schema)


def fhir_schema_errors(bundle: Any) -> list[str]:
    """What the official FHIR R4 JSON schema finds wrong with ``bundle`` and with each of its
    resources (a resource's problem is named by its entry)."""
    validator = fhir_r4_schema()
    errors = [str(e).splitlines()[0] for e in validator.iter_errors(bundle)]
    for i, entry in enumerate(bundle.get("entry", [])):
        errors += [
            f"entry[{i}] {entry['resource'].get('resourceType')}: {str(e).splitlines()[0]}"
            for e in validator.iter_errors(entry["resource"])
        ]
    return errors
