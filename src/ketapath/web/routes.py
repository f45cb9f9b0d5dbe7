"""The router of every web page (mounted by ``ketapath.web.install``)."""

from __future__ import annotations

from fastapi import APIRouter

from ketapath.web import (
    assessment_pages,
    auth_pages,
    order_pages,
    patient_pages,
    screening_pages,
)

router = APIRouter(include_in_schema=False)
for module in (auth_pages, patient_pages, assessment_pages, screening_pages, order_pages):
    router.include_router(module.router)
