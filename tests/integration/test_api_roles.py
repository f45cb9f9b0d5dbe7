"""The role matrix: every endpoint of /api/v1 against every role.

The expected roles are written out here from the issue's role descriptions (physician
decides and signs, nurse records, pharmacist handles stock and reads orders, researcher sees
de-identified data only, admin manages users), not copied from the permission table, so
that a change to the table that breaks the rules fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ketapath.config import Settings
from ketapath.knowledge.library import default_library
from ketapath.services import (
    assessments,
    indicators,
    ledger,
    library,
    opioids,
    orders,
    patients,
    safety,
    screening,
)
from ketapath.services.assessments import AssessmentInput
from ketapath.services.indicators import IndicatorsInput
from ketapath.services.ledger import (
    CountInput,
    DispenseInput,
    LocationInput,
    ProductInput,
    ReceiptInput,
    WasteInput,
)
from ketapath.services.opioids import AgreeInput, DoseInput
from ketapath.services.orders import SignRequest
from ketapath.services.permissions import ROLES, Actor
from ketapath.services.safety import SafetyResultInput
from ketapath.store.db import Database
from ketapath.store.models import DrugLibraryVersion, LedgerLine

API = "/api/v1"
PHYSICIAN, NURSE, PHARMACIST, RESEARCHER, ADMIN = ROLES
CLINICAL_TEAM = {PHYSICIAN, NURSE, PHARMACIST}
RECORDERS = {PHYSICIAN, NURSE}
# The drug library: the clinical team reads it (orders are checked against it); a pharmacist
# or an administrator approves and loads a new version, and reads what they manage.
LIBRARY_READERS = CLINICAL_TEAM | {ADMIN}
LIBRARY_MANAGERS = {PHARMACIST, ADMIN}
LEDGER_REPORTERS = {PHARMACIST, PHYSICIAN}
# The registry (issue 13): physicians (who see which patient) and researchers (de-identified).
REGISTRY_READERS = {PHYSICIAN, RESEARCHER}
# A PK simulation from numbers alone reads no record: researchers may run one too. The
# exposure of an order or a plan reads the patient's record: the clinical team.
SIMULATORS = CLINICAL_TEAM | {RESEARCHER}
# The de-identified research export: researchers, and physicians (who run the registry); both
# get the same de-identified tables.
RESEARCH_EXPORTERS = {RESEARCHER, PHYSICIAN}
SIMULATION = {
    "patient": {"weight_kg": 72, "age_years": 45, "sex": "female", "height_cm": 165},
    "regimen": {"infusions": [{"start_min": 0, "end_min": 240, "rate_mg_per_h": 25.2}]},
}
# The controlled-drug ledger (issue 11): pharmacists manage stock, counts and discrepancies;
# nurses (and pharmacists) dispense and waste with a witness; physicians read; researchers see
# nothing of it; the hash chain is checked by a pharmacist or an administrator.
LEDGER_READERS = CLINICAL_TEAM
LEDGER_MANAGERS = {PHARMACIST}
LEDGER_DISPENSERS = {NURSE, PHARMACIST}
LEDGER_VERIFIERS = {PHARMACIST, ADMIN}
# the witness is a physician: a second person for both the nurse and the pharmacist
LEDGER_WITNESS: dict[str, Any] = {
    "witness_username": PHYSICIAN,
    "witness_password": "correct horse battery",
}
LEDGER_PRODUCT = ProductInput(
    name="Ketamine 50 mg/mL, 10 mL vial",
    strength_mg_per_ml=Decimal(50),
    container_ml=Decimal(10),
    manufacturer="Example Pharma",
)


def _receipt(today: date) -> dict[str, Any]:
    return {
        "expiry": (today + timedelta(days=400)).isoformat(),
        "containers": 10,
        "received_on": today.isoformat(),
        "supplier_name": "Wholesaler Ltd",
        "supplier_address": "1 Supply Road, Springfield",
        "invoice_number": "INV-1",
    }


DOCUMENT: dict[str, Any] = {
    "name": "Matrix Patient",
    "sex": "male",
    "weight_kg": 80.0,
    "age_years": 50,
    "diagnoses": ["crps-1"],
    "consent": "given",
    "assessment": {"central_sensitisation": True, "multidisciplinary_care": True},
    "purpose": ["pain_relief"],
}
COURSE = {"protocol_id": "asra-initial", "setting": "clinic"}
INDICATORS = {"pain_reduction_percent": 30, "function_goal": "walk to the shops"}
SAFETY_RESULT = {
    "check_id": "cognition",
    "observed_on": "2026-01-10",
    "values": {"moca_score": 27},
}
OPIOID_PLAN = {
    "taper": {
        "step_percent": 10,
        "every_days": 7,
        "start_date": "2026-12-01",
        "basis": "current",
        "round_to": 5,
        "opioid_id": "morphine",
        "route": "oral",
        "start_daily_dose": 40,
        "unit": "mg",
    }
}
OPIOID_DOSE = {
    "taken_on": "2026-01-10",
    "medications": [{"name": "morphine", "daily_dose": 30, "unit": "mg", "route": "oral"}],
}


@dataclass
class Context:
    database: Database
    users: dict[str, Actor]
    stock: dict[str, Any] | None = None

    def patient(self) -> int:
        return patients.create_patient(self.database, self.users[NURSE], DOCUMENT).id

    def screened_patient(self) -> int:
        patient_id = self.patient()
        screening.run_screening(self.database, self.users[PHYSICIAN], patient_id)
        return patient_id

    def order(self) -> int:
        return orders.sign_order(
            self.database,
            self.users[PHYSICIAN],
            self.screened_patient(),
            SignRequest.model_validate(COURSE),
        ).id

    def stale_order(self) -> tuple[int, int]:
        """A signed order whose patient was re-weighed since: (order id, record version)."""
        order = orders.sign_order(
            self.database,
            self.users[PHYSICIAN],
            self.screened_patient(),
            SignRequest.model_validate(COURSE),
        )
        record = patients.amend_patient(
            self.database,
            self.users[NURSE],
            order.patient_id,
            {**DOCUMENT, "weight_kg": 84.0},
            reason="re-weighed",
            expected_version=order.patient_version,
        )
        return order.id, record.version

    def opioid_plan(self) -> int:
        return opioids.agree_opioid_plan(
            self.database,
            self.users[PHYSICIAN],
            self.patient(),
            AgreeInput.model_validate(OPIOID_PLAN),
        ).id

    def opioid_dose(self) -> int:
        return opioids.record_opioid_dose(
            self.database,
            self.users[NURSE],
            self.patient(),
            DoseInput.model_validate(OPIOID_DOSE),
        ).id

    def library_version(self) -> int:
        """A stored library version (one is loaded if there is none)."""
        document = self.library_document()
        if document["version"] == 1:
            library.load_library(self.database, self.users[PHARMACIST], document, reason="matrix")
            return 1
        return int(document["version"]) - 1

    def library_document(self) -> dict[str, Any]:
        """The default library as the next version this database accepts."""
        with self.database.transaction() as session:
            latest = session.scalar(select(func.max(DrugLibraryVersion.version))) or 0
        return {**default_library().document(), "version": latest + 1, "name": "Matrix library"}

    def session(self) -> int:
        """A session of a signed order, scheduled for the clinic's today."""
        from tests.integration.conftest import scheduled_session

        from ketapath.services.clock import clinic_clock

        return scheduled_session(self.database, self.users, clinic_clock())

    def charted_session(self) -> int:
        """A scheduled session whose chart holds one note (entry 1)."""
        from ketapath.services import sessions

        session_id = self.session()
        sessions.chart(
            self.database,
            self.users[NURSE],
            session_id,
            sessions.ChartWrite.model_validate({"expected_seq": 0, "entry": _note()}),
        )
        return session_id

    # --- the controlled-drug ledger: one product in one safe, lot L1 (made once)

    def ledger_stock(self) -> dict[str, Any]:
        """Product, location and lot of the ledger's stock (received on first use)."""
        from ketapath.services.clock import clinic_clock

        if self.stock is None:
            pharmacist = self.users[PHARMACIST]
            product = ledger.add_product(self.database, pharmacist, LEDGER_PRODUCT)
            location = ledger.add_location(self.database, pharmacist, LocationInput(name="Safe"))
            self.stock = {"product_id": product.id, "location_id": location.id, "lot": "L1"}
            self.ledger_receipt(clinic_clock().today())
        return self.stock

    def ledger_receipt(self, today: date | None = None) -> int:
        """A receipt of 10 vials of lot L1: its ledger line."""
        from ketapath.services.clock import clinic_clock

        today = today or clinic_clock().today()
        body = {**self.ledger_stock(), **_receipt(today)}
        return ledger.receive(self.database, self.users[PHARMACIST], ReceiptInput(**body)).seq

    def ledger_dispensing(self, session_id: int) -> dict[str, Any]:
        return {
            **self.ledger_stock(),
            "session_id": session_id,
            "volume_ml": 4,
            "final_volume_ml": 200,
        }

    def ledger_stopped_session(self) -> int:
        """A session dispensed for (200 mg), then checked in, started and stopped now."""
        from datetime import UTC, datetime

        from tests.integration.conftest import check_in_entry

        from ketapath.services import sessions

        session_id = self.session()
        entries = [check_in_entry(datetime.now(UTC))]
        ledger.dispense(
            self.database,
            self.users[NURSE],
            DispenseInput(**self.ledger_dispensing(session_id)),
        )
        for kind, more in (("start", {}), ("stop", {"reason": "patient_request"})):
            entries.append({"kind": kind, "occurred_at": datetime.now(UTC), **more})
        for seq, entry in enumerate(entries):
            write = sessions.ChartWrite.model_validate({"expected_seq": seq, "entry": entry})
            sessions.chart(self.database, self.users[NURSE], session_id, write)
        return session_id

    def ledger_session_discrepancy(self) -> int:
        """A stopped session of which only 1 mg was wasted: a discrepancy."""
        session_id = self.ledger_stopped_session()
        waste = WasteInput(session_id=session_id, amount_mg=Decimal(1), **LEDGER_WITNESS)
        ledger.waste(self.database, self.users[NURSE], waste, settings=self.settings())
        return session_id

    def ledger_count_discrepancy(self) -> int:
        """A count of lot L1 that finds one vial too few: its ledger line."""
        stock = self.ledger_stock()
        with self.database.transaction() as session:
            held = session.scalar(
                select(func.sum(LedgerLine.stock_change_ug)).where(LedgerLine.lot == stock["lot"])
            )
        count = CountInput(**stock, full_containers=int(held) // 500_000 - 1, **LEDGER_WITNESS)
        return ledger.count(
            self.database, self.users[PHARMACIST], count, settings=self.settings()
        ).seq

    def settings(self) -> Settings:
        return Settings(database_url=self.database.url, secret_key="matrix-secret-key-1234")

    def diary_link(self) -> int:
        """A diary link of a signed order, not opened."""
        from ketapath.services import diary

        return diary.create_link(self.database, self.users[NURSE], self.order()).link.id

    def given_order(self) -> int:
        """An order whose one session was given three days ago (a course to judge)."""
        from tests.integration.conftest import past_course

        return past_course(self.database, self.users, days_ago=3).order_id

    def product(self) -> int:
        """A controlled-drug product in the ledger (made once per database)."""
        from decimal import Decimal

        from ketapath.services import ledger
        from ketapath.store.models import StockProduct

        with self.database.transaction() as session:
            known = session.scalar(select(StockProduct.id).limit(1))
        if known is not None:
            return int(known)
        request = ledger.ProductInput(
            name="Ketamine 50 mg/mL, 10 mL vial",
            strength_mg_per_ml=Decimal(50),
            container_ml=Decimal(10),
            manufacturer="Matrix Pharma",
        )
        return ledger.add_product(self.database, self.users[PHARMACIST], request).id

    def assessment(self) -> int:
        return assessments.record_assessment(
            self.database,
            self.users[NURSE],
            self.patient(),
            AssessmentInput(instrument_id="nrs", answers={"pain": 5}),
        ).id

    def indicators(self) -> int:
        return indicators.record_indicators(
            self.database,
            self.users[NURSE],
            self.patient(),
            IndicatorsInput.model_validate({"indicators": INDICATORS}),
        ).id

    def letter(self) -> int:
        """A draft GP letter (version 1) of a new signed course, by a nurse."""
        from ketapath.services import letters

        return letters.draft_letter(
            self.database,
            self.users[NURSE],
            self.order(),
            letters.DraftInput(kind="gp_letter"),
            settings=self.settings(),
        ).id

    def fhir_bundle(self) -> dict[str, Any]:
        """A FHIR Bundle of a patient like DOCUMENT (made by the export, without a database)."""
        from datetime import UTC, datetime

        from ketapath.domain.patient import Patient
        from ketapath.interop import fhir
        from ketapath.services.fhir import build_bundle

        document = Patient.model_validate(DOCUMENT).model_dump(mode="json")
        now = datetime.now(UTC)
        return build_bundle(fhir.PatientFacts(1, document, now), now)

    def safety_result(self) -> int:
        return safety.record_safety_result(
            self.database,
            self.users[NURSE],
            self.patient(),
            SafetyResultInput.model_validate(SAFETY_RESULT),
        ).id


Request = Callable[[Context], tuple[str, str, dict[str, Any] | None]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the route's template, to check that every route is covered
    allowed: frozenset[str]
    request: Request


def _e(method: str, path: str, allowed: set[str], request: Request) -> Endpoint:
    return Endpoint(method, path, frozenset(allowed), request)


LEDGER_ENDPOINTS = [
    _e("GET", "/ledger/stock", LEDGER_READERS, lambda c: ("GET", "/ledger/stock", None)),
    _e("GET", "/ledger/lines", LEDGER_READERS, lambda c: ("GET", "/ledger/lines?limit=5", None)),
    _e(
        "GET",
        "/ledger/discrepancies",
        LEDGER_READERS,
        lambda c: ("GET", "/ledger/discrepancies", None),
    ),
    _e("GET", "/ledger/verify", LEDGER_VERIFIERS, lambda c: ("GET", "/ledger/verify", None)),
    _e(
        "GET",
        "/ledger/sessions/{session_id}",
        LEDGER_READERS,
        lambda c: ("GET", f"/ledger/sessions/{c.session()}", None),
    ),
    _e(
        "POST",
        "/ledger/products",
        LEDGER_MANAGERS,
        lambda c: (
            "POST",
            "/ledger/products",
            {**LEDGER_PRODUCT.model_dump(mode="json"), "name": f"Ketamine {c.patient()}"},
        ),
    ),
    _e(
        "POST",
        "/ledger/locations",
        LEDGER_MANAGERS,
        lambda c: ("POST", "/ledger/locations", {"name": f"Safe {c.patient()}"}),
    ),
    _e(
        "POST",
        "/ledger/receipts",
        LEDGER_MANAGERS,
        lambda c: ("POST", "/ledger/receipts", {**c.ledger_stock(), **_receipt(_day())}),
    ),
    _e(
        "POST",
        "/ledger/dispensings",
        LEDGER_DISPENSERS,
        lambda c: ("POST", "/ledger/dispensings", c.ledger_dispensing(c.session())),
    ),
    _e(
        "POST",
        "/ledger/wastes",
        LEDGER_DISPENSERS,
        lambda c: (
            "POST",
            "/ledger/wastes",
            {"session_id": c.ledger_stopped_session(), "amount_mg": 100, **LEDGER_WITNESS},
        ),
    ),
    _e(
        "POST",
        "/ledger/sessions/{session_id}/resolution",
        LEDGER_MANAGERS,
        lambda c: (
            "POST",
            f"/ledger/sessions/{c.ledger_session_discrepancy()}/resolution",
            {"reason": "bag overfill"},
        ),
    ),
    _e(
        "POST",
        "/ledger/counts",
        LEDGER_MANAGERS,
        lambda c: (
            "POST",
            "/ledger/counts",
            {**c.ledger_stock(), "full_containers": 1, **LEDGER_WITNESS},
        ),
    ),
    _e(
        "POST",
        "/ledger/counts/{seq}/resolution",
        LEDGER_MANAGERS,
        lambda c: (
            "POST",
            f"/ledger/counts/{c.ledger_count_discrepancy()}/resolution",
            {"outcome": "count error", "reason": "counted the wrong shelf"},
        ),
    ),
    _e(
        "POST",
        "/ledger/losses",
        LEDGER_MANAGERS,
        lambda c: (
            "POST",
            "/ledger/losses",
            {**c.ledger_stock(), "kind": "loss", "volume_ml": 1, "reason": "vial broken"},
        ),
    ),
    _e(
        "POST",
        "/ledger/lines/{seq}/corrections",
        LEDGER_MANAGERS,
        lambda c: (
            "POST",
            f"/ledger/lines/{c.ledger_receipt()}/corrections",
            {"containers": 9, "reason": "one on back order"},
        ),
    ),
]

ENDPOINTS = [
    _e("GET", "/auth/me", set(ROLES), lambda c: ("GET", "/auth/me", None)),
    _e("DELETE", "/auth/token", set(ROLES), lambda c: ("DELETE", "/auth/token", None)),
    _e("DELETE", "/auth/session", set(ROLES), lambda c: ("DELETE", "/auth/session", None)),
    _e("GET", "/instruments", set(ROLES), lambda c: ("GET", "/instruments", None)),
    _e("GET", "/references", set(ROLES), lambda c: ("GET", "/references", None)),
    _e(
        "GET",
        "/references/{ref_id}",
        set(ROLES),
        lambda c: ("GET", "/references/cohen-2018-ketamine-consensus", None),
    ),
    _e("GET", "/finding-codes", set(ROLES), lambda c: ("GET", "/finding-codes", None)),
    _e("GET", "/conditions", set(ROLES), lambda c: ("GET", "/conditions", None)),
    _e(
        "GET",
        "/conditions/reading",
        set(ROLES),
        lambda c: ("GET", "/conditions/reading?text=CRPS", None),
    ),
    # the evidence explorer: published studies and recommendations, read by every role
    _e(
        "GET",
        "/evidence/studies",
        set(ROLES),
        lambda c: ("GET", "/evidence/studies?indication=crps&cebm_level=2", None),
    ),
    _e(
        "GET",
        "/evidence/studies.csv",
        set(ROLES),
        lambda c: ("GET", "/evidence/studies.csv?dose_min_mg=10&dose_max_mg=100", None),
    ),
    _e(
        "GET",
        "/evidence/studies/{study_id}",
        set(ROLES),
        lambda c: ("GET", "/evidence/studies/kiefer-2008", None),
    ),
    _e(
        "GET",
        "/evidence/recommendations",
        set(ROLES),
        lambda c: ("GET", "/evidence/recommendations", None),
    ),
    _e("GET", "/evidence/levels", set(ROLES), lambda c: ("GET", "/evidence/levels", None)),
    _e("POST", "/patients", RECORDERS, lambda c: ("POST", "/patients", DOCUMENT)),
    _e("GET", "/patients", CLINICAL_TEAM, lambda c: ("GET", "/patients", None)),
    _e(
        "GET",
        "/patients/{patient_id}",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/patients/{c.patient()}", None),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/history",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/patients/{c.patient()}/history", None),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/timeline",
        RECORDERS,
        lambda c: ("GET", f"/patients/{c.patient()}/timeline", None),
    ),
    _e(
        "POST",
        "/patients/{patient_id}/amendments",
        RECORDERS,
        lambda c: (
            "POST",
            f"/patients/{c.patient()}/amendments",
            {"document": DOCUMENT, "reason": "matrix", "expected_version": 1},
        ),
    ),
    _e(
        "POST",
        "/patients/{patient_id}/assessments",
        RECORDERS,
        lambda c: (
            "POST",
            f"/patients/{c.patient()}/assessments",
            {"instrument_id": "nrs", "answers": {"pain": 4}},
        ),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/assessments",
        RECORDERS,
        lambda c: ("GET", f"/patients/{c.patient()}/assessments", None),
    ),
    _e(
        "GET",
        "/assessments/{assessment_id}/history",
        RECORDERS,
        lambda c: ("GET", f"/assessments/{c.assessment()}/history", None),
    ),
    _e(
        "POST",
        "/assessments/{assessment_id}/amendments",
        RECORDERS,
        lambda c: (
            "POST",
            f"/assessments/{c.assessment()}/amendments",
            {"instrument_id": "nrs", "answers": {"pain": 3}, "reason": "matrix"},
        ),
    ),
    _e(
        "GET",
        "/orders/{order_id}/assessments",
        RECORDERS,
        lambda c: ("GET", f"/orders/{c.order()}/assessments", None),
    ),
    _e(
        "POST",
        "/patients/{patient_id}/indicators",
        RECORDERS,
        lambda c: ("POST", f"/patients/{c.patient()}/indicators", {"indicators": INDICATORS}),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/indicators",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/patients/{c.patient()}/indicators", None),
    ),
    _e(
        "GET",
        "/orders/{order_id}/indicators",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/orders/{c.order()}/indicators", None),
    ),
    _e(
        "POST",
        "/indicators/{indicators_id}/amendments",
        RECORDERS,
        lambda c: (
            "POST",
            f"/indicators/{c.indicators()}/amendments",
            {"indicators": INDICATORS, "reason": "matrix"},
        ),
    ),
    _e("GET", "/safety-checks", set(ROLES), lambda c: ("GET", "/safety-checks", None)),
    _e(
        "POST",
        "/patients/{patient_id}/safety-results",
        RECORDERS,
        lambda c: ("POST", f"/patients/{c.patient()}/safety-results", SAFETY_RESULT),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/safety-results",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/patients/{c.patient()}/safety-results", None),
    ),
    _e(
        "POST",
        "/safety-results/{result_id}/amendments",
        RECORDERS,
        lambda c: (
            "POST",
            f"/safety-results/{c.safety_result()}/amendments",
            {**SAFETY_RESULT, "reason": "matrix"},
        ),
    ),
    _e(
        "POST",
        "/patients/{patient_id}/screenings",
        {PHYSICIAN},
        lambda c: ("POST", f"/patients/{c.patient()}/screenings", None),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/screenings",
        RECORDERS,
        lambda c: ("GET", f"/patients/{c.patient()}/screenings", None),
    ),
    _e(
        "POST",
        "/patients/{patient_id}/plans",
        CLINICAL_TEAM,
        lambda c: ("POST", f"/patients/{c.patient()}/plans", COURSE),
    ),
    _e(
        "POST",
        "/patients/{patient_id}/orders",
        {PHYSICIAN},
        lambda c: ("POST", f"/patients/{c.screened_patient()}/orders", COURSE),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/orders",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/patients/{c.patient()}/orders", None),
    ),
    _e("GET", "/orders/{order_id}", CLINICAL_TEAM, lambda c: ("GET", f"/orders/{c.order()}", None)),
    _e(
        "POST",
        "/orders/{order_id}/cancel",
        {PHYSICIAN},
        lambda c: ("POST", f"/orders/{c.order()}/cancel", {"reason": "matrix"}),
    ),
    _e(
        "POST",
        "/orders/{order_id}/confirmations",
        {PHYSICIAN},
        lambda c: _confirmation(*c.stale_order()),
    ),
    _e("POST", "/pk/simulate", SIMULATORS, lambda c: ("POST", "/pk/simulate", SIMULATION)),
    _e(
        "GET",
        "/orders/{order_id}/exposure",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/orders/{c.order()}/exposure", None),
    ),
    _e(
        "POST",
        "/patients/{patient_id}/plans/exposure",
        CLINICAL_TEAM,
        lambda c: ("POST", f"/patients/{c.patient()}/plans/exposure", COURSE),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/opioids",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/patients/{c.patient()}/opioids", None),
    ),
    _e(
        "POST",
        "/patients/{patient_id}/opioid-plans/preview",
        CLINICAL_TEAM,
        lambda c: ("POST", f"/patients/{c.patient()}/opioid-plans/preview", OPIOID_PLAN),
    ),
    _e(
        "POST",
        "/patients/{patient_id}/opioid-plans",
        {PHYSICIAN},
        lambda c: ("POST", f"/patients/{c.patient()}/opioid-plans", OPIOID_PLAN),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/opioid-plans",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/patients/{c.patient()}/opioid-plans", None),
    ),
    _e(
        "POST",
        "/opioid-plans/{plan_id}/withdraw",
        {PHYSICIAN},
        lambda c: ("POST", f"/opioid-plans/{c.opioid_plan()}/withdraw", {"reason": "matrix"}),
    ),
    _e(
        "POST",
        "/patients/{patient_id}/opioid-doses",
        RECORDERS,
        lambda c: ("POST", f"/patients/{c.patient()}/opioid-doses", OPIOID_DOSE),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/opioid-doses",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/patients/{c.patient()}/opioid-doses", None),
    ),
    _e(
        "POST",
        "/opioid-doses/{dose_id}/amend",
        RECORDERS,
        lambda c: (
            "POST",
            f"/opioid-doses/{c.opioid_dose()}/amend",
            {**OPIOID_DOSE, "reason": "matrix"},
        ),
    ),
    _e("GET", "/library", LIBRARY_READERS, lambda c: ("GET", "/library", None)),
    _e("GET", "/library/strengths", LIBRARY_READERS, lambda c: ("GET", "/library/strengths", None)),
    _e("GET", "/library/versions", LIBRARY_READERS, lambda c: ("GET", "/library/versions", None)),
    _e("GET", "/library/default", LIBRARY_READERS, lambda c: ("GET", "/library/default", None)),
    _e(
        "GET",
        "/library/versions/{version}",
        LIBRARY_READERS,
        lambda c: ("GET", f"/library/versions/{c.library_version()}", None),
    ),
    _e(
        "POST",
        "/library/check",
        LIBRARY_MANAGERS,
        lambda c: ("POST", "/library/check", {"document": c.library_document()}),
    ),
    _e(
        "POST",
        "/library",
        LIBRARY_MANAGERS,
        lambda c: (
            "POST",
            "/library",
            {"document": c.library_document(), "reason": "matrix"},
        ),
    ),
    _e("GET", "/research/patients", {RESEARCHER}, lambda c: ("GET", "/research/patients", None)),
    _e(
        "GET",
        "/research/assessments",
        {RESEARCHER},
        lambda c: ("GET", "/research/assessments", None),
    ),
    # FHIR (issue 13): a physician exports an identified Bundle (a researcher never gets
    # one); physicians and nurses, who register and amend records, import one
    _e(
        "GET",
        "/patients/{patient_id}/fhir",
        {PHYSICIAN},
        lambda c: ("GET", f"/patients/{c.patient()}/fhir", None),
    ),
    _e("POST", "/fhir/import", RECORDERS, lambda c: ("POST", "/fhir/import", c.fhir_bundle())),
    # the de-identified research export: researchers, and physicians who run the registry
    _e(
        "GET",
        "/research/export",
        RESEARCH_EXPORTERS,
        lambda c: ("GET", "/research/export?format=csv", None),
    ),
    _e("GET", "/registry", REGISTRY_READERS, lambda c: ("GET", "/registry", None)),
    _e(
        "GET",
        "/registry/courses",
        REGISTRY_READERS,
        lambda c: ("GET", "/registry/courses?limit=5", None),
    ),
    _e(
        "GET",
        "/registry/responders",
        REGISTRY_READERS,
        lambda c: ("GET", "/registry/responders?group_by=dose_band", None),
    ),
    _e("GET", "/registry/relief", REGISTRY_READERS, lambda c: ("GET", "/registry/relief", None)),
    _e(
        "GET",
        "/registry/adverse-events",
        REGISTRY_READERS,
        lambda c: ("GET", "/registry/adverse-events?format=csv", None),
    ),
    _e(
        "GET",
        "/registry/regression",
        REGISTRY_READERS,
        lambda c: ("GET", "/registry/regression", None),
    ),
    _e("GET", "/users", {ADMIN}, lambda c: ("GET", "/users", None)),
    _e(
        "POST",
        "/users",
        {ADMIN},
        lambda c: (
            "POST",
            "/users",
            {"username": f"new.{len(c.users)}", "role": NURSE, "password": "long enough pw"},
        ),
    ),
    _e(
        "POST",
        "/users/{username}/unlock",
        {ADMIN},
        lambda c: ("POST", f"/users/{NURSE}/unlock", None),
    ),
    _e("GET", "/audit", {ADMIN}, lambda c: ("GET", "/audit", None)),
    # infusion sessions: nurses and physicians schedule and chart, pharmacists read
    _e(
        "POST",
        "/orders/{order_id}/sessions",
        RECORDERS,
        lambda c: (
            "POST",
            f"/orders/{c.order()}/sessions",
            {"first_date": _today(), "chair": "Matrix chair"},
        ),
    ),
    _e("GET", "/sessions", CLINICAL_TEAM, lambda c: ("GET", "/sessions", None)),
    _e("GET", "/sessions/board", CLINICAL_TEAM, lambda c: ("GET", "/sessions/board", None)),
    _e(
        "GET",
        "/sessions/{session_id}",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/sessions/{c.session()}", None),
    ),
    _e(
        "GET",
        "/sessions/{session_id}/exposure",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/sessions/{c.charted_session()}/exposure", None),
    ),
    _e(
        "GET",
        "/sessions/{session_id}/exposure-summary",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/sessions/{c.charted_session()}/exposure-summary", None),
    ),
    _e(
        "GET",
        "/courses/{order_id}/exposure-summary",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/courses/{c.order()}/exposure-summary", None),
    ),
    _e(
        "GET",
        "/sessions/{session_id}/entries",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/sessions/{c.session()}/entries", None),
    ),
    _e(
        "POST",
        "/sessions/{session_id}/entries",
        RECORDERS,
        lambda c: ("POST", f"/sessions/{c.session()}/entries", _check_in()),
    ),
    _e(
        "POST",
        "/sessions/{session_id}/entries/{seq}/correction",
        RECORDERS,
        lambda c: (
            "POST",
            f"/sessions/{c.charted_session()}/entries/1/correction",
            {"expected_seq": 1, "reason": "matrix", "entry": _note()},
        ),
    ),
    _e(
        "POST",
        "/sessions/{session_id}/entries/{seq}/void",
        RECORDERS,
        lambda c: (
            "POST",
            f"/sessions/{c.charted_session()}/entries/1/void",
            {"expected_seq": 1, "reason": "matrix"},
        ),
    ),
    _e(
        "POST",
        "/sessions/{session_id}/replay",
        CLINICAL_TEAM,
        lambda c: ("POST", f"/sessions/{c.session()}/replay", _replay_log()),
    ),
    _e(
        "POST",
        "/sessions/replay",
        CLINICAL_TEAM,
        lambda c: ("POST", "/sessions/replay", {**_replay_log(), "programme": REPLAY_PROGRAMME}),
    ),
    _e(
        "GET",
        "/patients/{patient_id}/sessions",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/patients/{c.patient()}/sessions", None),
    ),
    *LEDGER_ENDPOINTS,
    # the patient diary (issue 12): physicians and nurses give and withdraw links; the
    # clinical team reads the links and the entries
    _e(
        "POST",
        "/orders/{order_id}/diary-links",
        RECORDERS,
        lambda c: ("POST", f"/orders/{c.order()}/diary-links", {"days_valid": 42}),
    ),
    _e(
        "GET",
        "/orders/{order_id}/diary-links",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/orders/{c.order()}/diary-links", None),
    ),
    _e(
        "POST",
        "/diary-links/{link_id}/revoke",
        RECORDERS,
        lambda c: ("POST", f"/diary-links/{c.diary_link()}/revoke", None),
    ),
    _e(
        "GET",
        "/orders/{order_id}/diary",
        CLINICAL_TEAM,
        lambda c: ("GET", f"/orders/{c.order()}/diary", None),
    ),
    # outcomes after the infusion (issue 12): physicians and nurses read a course's outcome,
    # its follow-ups, the clinic's due list, the safety checks due and the repeat proposal;
    # only a physician decides to repeat, change protocol or stop
    _e(
        "GET",
        "/courses/{order_id}/outcome",
        RECORDERS,
        lambda c: ("GET", f"/courses/{c.given_order()}/outcome", None),
    ),
    _e(
        "GET",
        "/courses/{order_id}/follow-ups",
        RECORDERS,
        lambda c: ("GET", f"/courses/{c.given_order()}/follow-ups", None),
    ),
    _e("GET", "/follow-ups", RECORDERS, lambda c: ("GET", "/follow-ups?status=overdue", None)),
    _e(
        "GET",
        "/patients/{patient_id}/safety-due",
        RECORDERS,
        lambda c: ("GET", f"/patients/{c.patient()}/safety-due", None),
    ),
    _e(
        "GET",
        "/courses/{order_id}/repeat-decision",
        RECORDERS,
        lambda c: ("GET", f"/courses/{c.given_order()}/repeat-decision", None),
    ),
    _e(
        "GET",
        "/courses/{order_id}/repeat-decisions",
        RECORDERS,
        lambda c: ("GET", f"/courses/{c.order()}/repeat-decisions", None),
    ),
    _e(
        "POST",
        "/courses/{order_id}/repeat-decisions",
        {PHYSICIAN},
        lambda c: (
            "POST",
            f"/courses/{c.given_order()}/repeat-decisions",
            {"decision": "stop", "reason": "matrix: no lasting relief"},
        ),
    ),
    # letters after a course (issue 12): physicians and nurses draft and read them; only a
    # physician signs; pharmacists, researchers and administrators do not read them
    _e(
        "POST",
        "/orders/{order_id}/letters",
        RECORDERS,
        lambda c: ("POST", f"/orders/{c.order()}/letters", {"kind": "gp_letter"}),
    ),
    _e(
        "GET",
        "/orders/{order_id}/letters",
        RECORDERS,
        lambda c: ("GET", f"/orders/{c.order()}/letters", None),
    ),
    _e(
        "GET",
        "/letters/{letter_id}",
        RECORDERS,
        lambda c: ("GET", f"/letters/{c.letter()}", None),
    ),
    _e(
        "POST",
        "/letters/{letter_id}/sign",
        {PHYSICIAN},
        lambda c: ("POST", f"/letters/{c.letter()}/sign", None),
    ),
    _e(
        "GET",
        "/letters/{letter_id}/html",
        RECORDERS,
        lambda c: ("GET", f"/letters/{c.letter()}/html", None),
    ),
    _e(
        "GET",
        "/letters/{letter_id}/pdf",
        RECORDERS,
        lambda c: ("GET", f"/letters/{c.letter()}/pdf", None),
    ),
    # the controlled-drug ledger's reports: pharmacists and physicians (ledger.report)
    _e(
        "GET",
        "/ledger/reports/us-inventory",
        LEDGER_REPORTERS,
        lambda c: ("GET", f"/ledger/reports/us-inventory?on={_today()}&time=close", None),
    ),
    _e(
        "GET",
        "/ledger/reports/us-records",
        LEDGER_REPORTERS,
        lambda c: ("GET", f"/ledger/reports/us-records?from={_today()}&to={_today()}", None),
    ),
    _e(
        "GET",
        "/ledger/reports/uk-register",
        LEDGER_REPORTERS,
        lambda c: ("GET", f"/ledger/reports/uk-register?product_id={c.product()}", None),
    ),
]


def _today() -> str:
    return _day().isoformat()


def _day() -> date:
    from ketapath.services.clock import clinic_clock

    return clinic_clock().today()


def _note() -> dict[str, Any]:
    from datetime import UTC, datetime

    return {"kind": "note", "occurred_at": datetime.now(UTC).isoformat(), "note": "matrix"}


def _check_in() -> dict[str, Any]:
    from datetime import UTC, datetime

    from tests.integration.conftest import check_in_entry

    return {"expected_seq": 0, "entry": check_in_entry(datetime.now(UTC))}


REPLAY_PROGRAMME = {
    "concentration_mg_per_ml": 1,
    "steps": [
        {"number": 1, "rate_ml_per_h": 20, "rate_mg_per_h": 20, "duration_min": 60, "volume_ml": 20}
    ],
    "total_mg": 20,
    "volume_to_be_infused_ml": 20,
}


def _replay_log() -> dict[str, Any]:
    return {"events": [{"entry": _note()}]}


def _confirmation(order_id: int, version: int) -> tuple[str, str, dict[str, Any]]:
    body = {"reason": "re-weighed at 84 kg; 80 mg over 3 h stays", "patient_version": version}
    return ("POST", f"/orders/{order_id}/confirmations", body)


# Reachable without signing in (they are how one signs in, or describe the API), and the
# patient's diary, which a patient reaches through the single-use link and its diary session,
# without an account (tests/integration/test_api_diary.py).
PUBLIC = {
    ("POST", "/auth/token"),
    ("GET", "/auth/csrf"),
    ("POST", "/auth/session"),
    ("POST", "/diary/open"),
    ("POST", "/diary/entries"),
    ("GET", "/diary/entries"),
}


def test_the_matrix_covers_every_route_of_the_api(client: TestClient) -> None:
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    routes = {
        (method.upper(), path.removeprefix(API))
        for path, operations in paths.items()
        for method in operations
    }
    covered = {(e.method, e.path) for e in ENDPOINTS} | PUBLIC
    assert routes == covered


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_each_endpoint_admits_exactly_its_roles(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
    endpoint: Endpoint,
) -> None:
    context = Context(database, users)
    outcomes = {}
    for role in ROLES:
        method, path, body = endpoint.request(context)
        response = client.request(method, API + path, json=body, headers=headers[role])
        outcomes[role] = response.status_code
        if method == "DELETE" and path == "/auth/token":
            headers[role] = _fresh_bearer(client, role)
    admitted = {role for role, code in outcomes.items() if code != 403}
    assert admitted == endpoint.allowed, outcomes
    for role in endpoint.allowed:
        assert 200 <= outcomes[role] < 300, (role, outcomes[role])


def _fresh_bearer(client: TestClient, role: str) -> dict[str, str]:
    response = client.post(
        f"{API}/auth/token", data={"username": role, "password": "correct horse battery"}
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_an_anonymous_caller_is_refused_by_every_endpoint(
    client: TestClient, database: Database, users: dict[str, Actor]
) -> None:
    context = Context(database, users)
    for endpoint in ENDPOINTS:
        method, path, body = endpoint.request(context)
        assert client.request(method, API + path, json=body).status_code == 401, path
