"""De-identified views for researchers."""

from __future__ import annotations

from fastapi import APIRouter

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN
from ketapath.api.params import ClockDep
from ketapath.services import research
from ketapath.services.research import DeidentifiedAssessment, DeidentifiedPatient

router = APIRouter(prefix="/research", tags=["research"], responses=SIGNED_IN)


@router.get("/patients", response_model=list[DeidentifiedPatient])
def research_patients(
    actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> list[DeidentifiedPatient]:
    return research.research_patients(db, actor, clock=clock)


@router.get("/assessments", response_model=list[DeidentifiedAssessment])
def research_assessments(actor: CurrentUser, db: DatabaseDep) -> list[DeidentifiedAssessment]:
    return research.research_assessments(db, actor)
