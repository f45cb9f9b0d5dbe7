"""The permission table keeps the issue's role rules."""

from __future__ import annotations

import pytest

from ketapath.services.permissions import PERMISSIONS, ROLES, Actor


def roles_that_may(action: str) -> set[str]:
    return set(PERMISSIONS[action])


def test_every_action_names_only_known_roles() -> None:
    for action, roles in PERMISSIONS.items():
        assert roles, action
        assert set(roles) <= set(ROLES), action


@pytest.mark.parametrize(
    "action", ["order.sign", "order.override", "order.cancel", "screening.run", "repeat.decide"]
)
def test_only_a_physician_decides(action: str) -> None:
    assert roles_that_may(action) == {"physician"}


def test_a_researcher_sees_nothing_but_the_de_identified_views_and_simulations() -> None:
    # a PK simulation from covariates and doses given in the request reads no record; the
    # registry's rows are de-identified for a researcher (registry.identified is not theirs)
    allowed = {action for action, roles in PERMISSIONS.items() if "researcher" in roles}
    # the de-identified research export, and the evidence explorer (published studies: no
    # patient's data)
    assert allowed == {
        "research.read",
        "research.export",
        "exposure.simulate",
        "evidence.read",
        "registry.read",
    }


def test_the_registry_is_read_by_physicians_and_researchers_and_only_physicians_see_who() -> None:
    assert roles_that_may("registry.read") == {"physician", "researcher"}
    assert roles_that_may("registry.identified") == {"physician"}


def test_the_exposure_of_an_order_or_a_plan_follows_who_reads_them() -> None:
    assert roles_that_may("exposure.read") == roles_that_may("order.read")
    assert roles_that_may("exposure.read") == roles_that_may("plan.preview")


def test_an_admin_manages_users_but_reads_no_patient_record() -> None:
    allowed = {action for action, roles in PERMISSIONS.items() if "admin" in roles}
    # ledger.verify walks the ledger's hash chain (line numbers and hashes, no patient): an
    # administrator checks it as they check the audit log's; exposure.refresh recomputes the
    # stored exposure summaries and answers with counts only (maintenance after a model change)
    assert allowed == {
        "user.manage",
        "user.list",
        "audit.read",
        "library.read",
        "library.manage",
        "ledger.verify",
        # the evidence explorer: published studies, no patient's data
        "evidence.read",
        "exposure.refresh",
    }


def test_a_nurse_records_but_cannot_sign_or_override() -> None:
    nurse = Actor(1, "n", "nurse")
    assert nurse.may("assessment.record")
    assert nurse.may("patient.amend")
    assert not nurse.may("order.sign")
    assert not nurse.may("order.override")


def test_the_pharmacist_handles_stock_and_reads_orders_but_records_nothing_clinical() -> None:
    pharmacist = Actor(1, "p", "pharmacist")
    assert pharmacist.may("ledger.manage")
    assert pharmacist.may("order.read")
    assert not pharmacist.may("patient.create")
    assert not pharmacist.may("assessment.record")


def test_a_pharmacist_or_an_admin_approves_the_drug_library_and_the_clinical_team_reads_it() -> (
    None
):
    assert roles_that_may("library.manage") == {"pharmacist", "admin"}
    assert roles_that_may("library.read") == {"physician", "nurse", "pharmacist", "admin"}


def test_nurses_and_physicians_chart_a_session_a_physician_overrides_pharmacists_read() -> None:
    assert roles_that_may("session.chart") == {"physician", "nurse"}
    assert roles_that_may("session.schedule") == {"physician", "nurse"}
    assert roles_that_may("session.override") == {"physician"}
    assert roles_that_may("session.read") == {"physician", "nurse", "pharmacist"}


def test_physicians_and_nurses_read_outcomes_and_the_physician_decides_on_a_repeat() -> None:
    # outcomes read the course's assessments and diary: the roles that read assessments
    assert roles_that_may("outcome.read") == roles_that_may("assessment.read")
    assert roles_that_may("outcome.read") == {"physician", "nurse"}
    assert roles_that_may("repeat.decide") == {"physician"}
