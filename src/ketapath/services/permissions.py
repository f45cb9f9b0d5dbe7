"""Who may do what: the permission table (action -> roles) and the acting user.

Physicians decide (screen, sign, override); nurses record and chart but cannot sign or
override; pharmacists handle stock, read orders to dispense and, with admins, approve the
clinic's drug library; researchers see de-identified data only (and may run an exposure
simulation, which holds no patient data); physicians may also download the de-identified
research export; admins manage users and read
the audit log but not patient records.
"""

from __future__ import annotations

from dataclasses import dataclass

PHYSICIAN = "physician"
NURSE = "nurse"
PHARMACIST = "pharmacist"
RESEARCHER = "researcher"
ADMIN = "admin"
ROLES: tuple[str, ...] = (PHYSICIAN, NURSE, PHARMACIST, RESEARCHER, ADMIN)
# Not a role a user can have: the audit log's role for what a patient does through a diary
# link (services.diary), which has no account and may do nothing in this table.
PATIENT = "patient"

CLINICAL_READERS = frozenset({PHYSICIAN, NURSE, PHARMACIST})
CLINICAL_RECORDERS = frozenset({PHYSICIAN, NURSE})

PERMISSIONS: dict[str, frozenset[str]] = {
    # patient record
    "patient.create": CLINICAL_RECORDERS,
    "patient.amend": CLINICAL_RECORDERS,
    "patient.read": CLINICAL_READERS,
    "patient.list": CLINICAL_READERS,
    # the whole timeline includes assessments, so it follows assessment.read
    "patient.timeline": frozenset({PHYSICIAN, NURSE}),
    # assessments (instrument answers and scores)
    "assessment.record": CLINICAL_RECORDERS,
    "assessment.amend": CLINICAL_RECORDERS,
    "assessment.read": frozenset({PHYSICIAN, NURSE}),
    # eligibility and safety screen: the physician decides eligibility
    "screening.run": frozenset({PHYSICIAN}),
    "screening.read": frozenset({PHYSICIAN, NURSE}),
    # protocol and orders
    "plan.preview": CLINICAL_READERS,
    "order.sign": frozenset({PHYSICIAN}),
    "order.override": frozenset({PHYSICIAN}),
    "order.cancel": frozenset({PHYSICIAN}),
    # a stale order (its dosing facts changed after signing) is confirmed by a physician
    "order.confirm": frozenset({PHYSICIAN}),
    "order.read": CLINICAL_READERS,
    # opioid plan (FPM (ANZCA) 2016, section 6): the physician agrees it; nurses record the doses
    # actually taken at follow-ups; the clinical team reads it
    "opioid.read": CLINICAL_READERS,
    "opioid.plan": frozenset({PHYSICIAN}),
    "opioid.record": CLINICAL_RECORDERS,
    # the clinic's drug library (pumps, stocked strengths, dose limits): the clinical team reads
    # it (orders are checked against it); a pharmacist or an administrator approves and loads
    # a new version, and may read what they manage
    "library.read": CLINICAL_READERS | {ADMIN},
    "library.manage": frozenset({PHARMACIST, ADMIN}),
    # predicted exposure (PK): a simulation from numbers alone reads no record, so researchers
    # (who study dose and exposure) may run one too; the exposure of an order or of a plan
    # preview reads the patient's record and follows order.read / plan.preview
    "exposure.simulate": CLINICAL_READERS | {RESEARCHER},
    "exposure.read": CLINICAL_READERS,
    # bringing every stored exposure summary up to date (after a model or threshold change):
    # it shows no patient's data, only counts; a physician or an administrator runs it
    "exposure.refresh": frozenset({PHYSICIAN, ADMIN}),
    # infusion sessions (issue 10): nurses and physicians schedule and chart; a physician
    # overrides the discharge criteria; pharmacists read (dispensing); nobody else sees them
    "session.read": CLINICAL_READERS,
    "session.schedule": CLINICAL_RECORDERS,
    "session.chart": CLINICAL_RECORDERS,
    "session.override": frozenset({PHYSICIAN}),
    "session.replay": CLINICAL_READERS,
    # the controlled-drug ledger (issue 11): pharmacists manage stock, counts, discrepancies
    # and corrections; nurses (and pharmacists) dispense for a session and waste the
    # remainder with a witness; physicians and nurses read; researchers see nothing of it;
    # the chain is verified by a pharmacist or an administrator
    "ledger.read": CLINICAL_READERS,
    "ledger.manage": frozenset({PHARMACIST}),
    "ledger.count": frozenset({PHARMACIST}),
    "ledger.dispense": frozenset({NURSE, PHARMACIST}),
    "ledger.waste": frozenset({NURSE, PHARMACIST}),
    "ledger.report": frozenset({PHARMACIST, PHYSICIAN}),
    "ledger.verify": frozenset({PHARMACIST, ADMIN}),
    # after the infusion (issue 12): the indicators of success agreed at assessment (FPM (ANZCA)
    # 2016, section 3) and the safety follow-up results of repeated courses are recorded (and
    # amended) by physicians and nurses and read by the clinical team; researchers see neither
    "indicators.record": CLINICAL_RECORDERS,
    "indicators.read": CLINICAL_READERS,
    "safety.record": CLINICAL_RECORDERS,
    "safety.read": CLINICAL_READERS,
    # the patient diary (issue 12): physicians and nurses give a patient a diary link for a
    # course and withdraw it; the clinical team reads the entries. The patient writes through
    # the link, without an account (services.diary; audited as role PATIENT)
    "diary.manage": CLINICAL_RECORDERS,
    "diary.read": CLINICAL_READERS,
    # outcomes of a course (issue 12): its outcome (responder, relief, 35-day pain area, PGIC,
    # function, sleep, opioids), the follow-up schedule and the clinic's due list, the safety
    # checks due by cumulative dose, and the repeat proposal are read by physicians and
    # nurses (they read assessments and the diary, which pharmacists do not need); the
    # physician decides to repeat, change protocol or stop. Researchers see none of it here.
    "outcome.read": frozenset({PHYSICIAN, NURSE}),
    "repeat.decide": frozenset({PHYSICIAN}),
    # letters after a course (issue 12): physicians and nurses draft a discharge summary, a GP
    # letter or a patient information sheet and read them; only a physician signs. The
    # letters hold the whole clinical summary, so pharmacists, researchers and administrators
    # do not read them
    "letters.draft": CLINICAL_RECORDERS,
    "letters.read": CLINICAL_RECORDERS,
    "letters.sign": frozenset({PHYSICIAN}),
    # FHIR (issue 13): a patient's record as a Bundle identifies the patient, so only a
    # physician exports one (researchers never get an identified Bundle); importing one
    # registers or amends a record, which physicians and nurses do
    "fhir.export": frozenset({PHYSICIAN}),
    "fhir.import": CLINICAL_RECORDERS,
    # research: researchers read the de-identified views; researchers and physicians (who run
    # the registry) download the de-identified export, the same tables for both: nobody gets
    # identified data through research (docs/research-export.md)
    "research.read": frozenset({RESEARCHER}),
    "research.export": frozenset({RESEARCHER, PHYSICIAN}),
    # the evidence explorer (issue 13): published studies and recommendations, no patient's
    # data, so every signed-in role reads them
    "evidence.read": frozenset(ROLES),
    # the registry analytics (issue 13): physicians and researchers; a physician's course rows
    # name the patient and the order, a researcher's are de-identified (services.registry)
    "registry.read": frozenset({PHYSICIAN, RESEARCHER}),
    "registry.identified": frozenset({PHYSICIAN}),
    # administration
    "user.manage": frozenset({ADMIN}),
    "user.list": frozenset({ADMIN}),
    "audit.read": frozenset({ADMIN}),
}


@dataclass(frozen=True)
class Actor:
    """The signed-in user on whose behalf a service acts."""

    user_id: int | None
    username: str
    role: str

    def may(self, action: str) -> bool:
        return self.role in PERMISSIONS[action]


# The command line run by the operator on the server (e.g. creating the first admin).
SYSTEM = Actor(user_id=None, username="system", role=ADMIN)


def roles_for(action: str) -> frozenset[str]:
    return PERMISSIONS[action]
