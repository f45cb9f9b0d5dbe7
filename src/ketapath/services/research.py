"""De-identified views for researchers: no names, no birth dates, no free text.

A patient appears under a stable random pseudonym; age is given in ten-year bands (90 and
over pooled, as in the HIPAA Safe Harbor method, 45 CFR 164.514(b)(2)); times are days from
the patient's registration, not calendar dates.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from ketapath.services import audit
from ketapath.services.assessments import current_assessments
from ketapath.services.patients import latest_versions_query
from ketapath.services.permissions import Actor
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import Patient, PatientVersion, utcnow


class DeidentifiedPatient(BaseModel):
    pseudonym: str
    sex: str
    age_band: str | None
    weight_kg: float | None
    height_cm: float | None
    diagnoses: list[str]
    medications: list[str]


class DeidentifiedAssessment(BaseModel):
    pseudonym: str
    instrument_id: str
    day: int
    total: float | None
    score: dict[str, Any] | None


def age_band(age_years: float | None) -> str | None:
    if age_years is None:
        return None
    if age_years >= 90:
        return "90+"
    low = int(age_years // 10) * 10
    return f"{low}-{low + 9}"


def _age_years(document: dict[str, Any], today: date) -> float | None:
    birth = document.get("birth_date")
    if birth:
        born = date.fromisoformat(birth)
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    age = document.get("age_years")
    return float(age) if age is not None else None


def deidentify(pseudonym: str, document: dict[str, Any], today: date) -> DeidentifiedPatient:
    return DeidentifiedPatient(
        pseudonym=pseudonym,
        sex=document["sex"],
        age_band=age_band(_age_years(document, today)),
        weight_kg=document.get("weight_kg"),
        height_cm=document.get("height_cm"),
        diagnoses=[str(item["code"]) for item in document.get("diagnoses", [])],
        medications=[str(m["name"]) for m in document.get("medications", [])],
    )


def research_patients(db: Database, actor: Actor) -> list[DeidentifiedPatient]:
    today = utcnow().date()
    with action(db, actor, "research.read", entity="patient") as session:
        rows = session.execute(
            latest_versions_query()
            .add_columns(Patient.pseudonym)
            .join(Patient, Patient.id == PatientVersion.patient_id)
            .order_by(Patient.pseudonym)
        ).all()
        audit.record(
            session,
            actor,
            "research.patients",
            entity="patient",
            detail={"count": len(rows)},
        )
        return [deidentify(pseudonym, version.document, today) for version, pseudonym in rows]


def research_assessments(db: Database, actor: Actor) -> list[DeidentifiedAssessment]:
    with action(db, actor, "research.read", entity="assessment") as session:
        out: list[DeidentifiedAssessment] = []
        for patient in session.scalars(select(Patient).order_by(Patient.pseudonym)):
            for row in current_assessments(session, patient.id):
                out.append(
                    DeidentifiedAssessment(
                        pseudonym=patient.pseudonym,
                        instrument_id=row.instrument_id,
                        day=(row.administered_at.date() - patient.created_at.date()).days,
                        total=row.total,
                        score=row.score,
                    )
                )
        audit.record(
            session,
            actor,
            "research.assessments",
            entity="assessment",
            detail={"count": len(out)},
        )
        return out
