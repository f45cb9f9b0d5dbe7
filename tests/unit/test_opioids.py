from __future__ import annotations

import json
from datetime import date

import pytest
from tests.conftest import base_patient
from typer.testing import CliRunner

from ketapath.cli import app
from ketapath.domain.errors import ConversionRefused, InvalidInput, UnknownItem
from ketapath.domain.frequency import parse_frequency
from ketapath.domain.opioids import (
    TaperRequest,
    convert_medications,
    convert_to_single_opioid,
    daily_dose,
    opioid_id_of,
    oral_morphine_equivalents,
    taper_plan,
)
from ketapath.domain.patient import Medication
from ketapath.knowledge.clinical import knowledge

runner = CliRunner()


def med(name: str, dose: float | None = 10, unit: str | None = "mg", **kw: object) -> Medication:
    data: dict[str, object] = {"name": name, "dose": dose, "unit": unit}
    data.setdefault("frequency", "od")
    data.setdefault("route", "oral")
    data.update(kw)
    return Medication.model_validate(data)


def codes(findings) -> set[str]:
    return {f.code for f in findings}


# ------------------------------------------------------------------ the table

CDC_2022 = {
    ("codeine", "oral"): 0.15,
    ("fentanyl", "transdermal"): 2.4,
    ("hydrocodone", "oral"): 1.0,
    ("hydromorphone", "oral"): 5.0,
    ("methadone", "oral"): 4.7,
    ("morphine", "oral"): 1.0,
    ("oxycodone", "oral"): 1.5,
    ("oxymorphone", "oral"): 3.0,
    ("tapentadol", "oral"): 0.4,
    ("tramadol", "oral"): 0.2,
}


def test_the_cdc_2022_table_holds_exactly_the_published_factors() -> None:
    table = knowledge().conversion_table("cdc-2022")
    assert {(f.opioid, f.route): f.factor for f in table.factors} == CDC_2022
    assert {n.opioid for n in table.not_converted} == {
        "buprenorphine",
        "dihydrocodeine",
        "pethidine",
    }


@pytest.mark.parametrize(("opioid", "route"), [k for k in CDC_2022 if k[1] == "oral"])
def test_every_oral_factor_multiplies_the_daily_mg(opioid: str, route: str) -> None:
    result = oral_morphine_equivalents([med(opioid, 10, "mg", frequency="bd")])
    (line,) = result.lines
    assert line.daily_dose == 20 and line.unit == "mg/day"
    assert line.ome_mg_per_day == pytest.approx(20 * CDC_2022[(opioid, route)])
    assert result.table_id == "cdc-2022" and "2022" in result.table_name


def test_a_fentanyl_patch_counts_its_rate_whatever_the_change_interval() -> None:
    patch = med("fentanyl", 25, "mcg/h", frequency="every 72 hours", route="transdermal")
    (line,) = oral_morphine_equivalents([patch]).lines
    assert (line.daily_dose, line.unit, line.ome_mg_per_day) == (25, "mcg/h", 60)
    assert "opioid:caveat" in codes(line.findings)


def test_micrograms_are_converted_to_mg_never_mixed() -> None:
    (line,) = oral_morphine_equivalents([med("hydromorphone", 1300, "mcg", frequency="qds")]).lines
    assert line.unit == "mcg/day" and line.daily_dose == 5200
    assert line.dose_in_factor_unit == pytest.approx(5.2)
    assert line.ome_mg_per_day == pytest.approx(26)


def test_buprenorphine_is_not_converted_and_not_counted_as_zero() -> None:
    result = oral_morphine_equivalents(
        [med("morphine", 30, frequency="bd"), med("Butrans", 10, "mcg/h", route="transdermal")]
    )
    bup = result.lines[1]
    assert bup.ome_mg_per_day is None and not bup.converted
    assert "opioid:no-factor" in codes(bup.findings)
    assert result.total_ome_mg_per_day == 60 and result.complete is False
    assert result.not_converted == ("Butrans",)
    assert "opioid:total-incomplete" in codes(result.findings)


@pytest.mark.parametrize(
    ("medicine", "code"),
    [
        (med("codeine", 30, frequency="prn"), "opioid:prn"),
        (med("codeine", 30, frequency="when the pain is bad"), "opioid:frequency-unknown"),
        (med("codeine", 30, frequency=""), "opioid:frequency-unknown"),
        (med("codeine", None, None), "opioid:dose-missing"),
        (med("morphine", 10, route="iv"), "opioid:route-without-factor"),
        (med("morphine", 10, route=""), "opioid:route-missing"),
        (med("fentanyl", 25, "mcg/h", route="buccal"), "opioid:route-without-factor"),
        (med("fentanyl", 25, "mg", route="transdermal"), "opioid:unit-mismatch"),
        (med("morphine", 10, "mcg/h"), "opioid:unit-mismatch"),
        (med("morphine", 10, "mL"), "opioid:strength-unknown"),
        (med("morphine", 10, "units"), "opioid:unit-not-a-dose"),
        (med("dihydrocodeine", 30), "opioid:no-factor"),
    ],
)
def test_each_problem_is_a_finding_and_the_medicine_is_not_converted(
    medicine: Medication, code: str
) -> None:
    result = oral_morphine_equivalents([medicine])
    (line,) = result.lines
    assert not line.converted and code in codes(line.findings)
    assert all(f.citations and f.rule for f in line.findings)
    assert result.complete is False


def test_a_recorded_daily_dose_overrides_an_as_needed_frequency() -> None:
    (line,) = oral_morphine_equivalents([med("oxycodone", 5, frequency="prn", daily_dose=15)]).lines
    assert line.ome_mg_per_day == 22.5 and line.daily_dose_basis == "daily dose as recorded"


def test_non_opioids_are_left_out_and_brand_names_are_recognised() -> None:
    result = oral_morphine_equivalents(
        [med("paracetamol", 1, "g", frequency="qds"), med("OxyContin", 20)]
    )
    assert [line.opioid_id for line in result.lines] == ["oxycodone"]
    assert opioid_id_of("Palexia SR 50 mg") == "tapentadol"
    assert opioid_id_of("co-codamol") == "codeine"
    assert opioid_id_of("paracetamol 1 g") is None


def test_the_50_mme_threshold_finding_appears_at_50_and_not_below() -> None:
    at = oral_morphine_equivalents([med("morphine", 25, frequency="bd")])
    below = oral_morphine_equivalents([med("morphine", 24.5, frequency="bd")])
    assert "opioid-threshold:cdc-2022-50-mme" in codes(at.findings)
    assert "opioid-threshold:cdc-2022-50-mme" not in codes(below.findings)


def test_an_unknown_table_is_named() -> None:
    with pytest.raises(UnknownItem, match="known tables: cdc-2022") as exc:
        oral_morphine_equivalents([], "nope")
    assert exc.value.field == "table"


def test_daily_dose_with_a_rate_unit_is_refused() -> None:
    dose, problem = daily_dose(med("fentanyl", 25, "mcg/h", daily_dose=600, route="transdermal"))
    assert dose is None and problem is not None and problem.code == "opioid:daily-dose-with-rate"


# ------------------------------------------------------------------ frequency


@pytest.mark.parametrize(
    ("text", "per_day"),
    [
        ("daily", 1), ("od", 1), ("once daily", 1), ("nocte", 1), ("mane", 1), ("OD", 1),
        ("bd", 2), ("b.d.", 2), ("bid", 2), ("twice daily", 2),
        ("tds", 3), ("tid", 3), ("qds", 4), ("qid", 4),
        ("q4h", 6), ("q6h", 4), ("q8h", 3), ("q12h", 2), ("q 6 h", 4),
        ("every 4 hours", 6), ("every 12 hours", 2), ("8 hourly", 3), ("8-hourly", 3),
        ("3 times a day", 3), ("five times a day", 5), ("2x daily", 2),
        ("every 72 hours", 1 / 3), ("every 7 days", 1 / 7), ("weekly", 1 / 7),
        ("every other day", 0.5),
    ],
)  # fmt: skip
def test_frequency_texts_are_read_as_doses_per_day(text: str, per_day: float) -> None:
    freq = parse_frequency(text)
    assert freq.kind == "regular" and freq.doses_per_day == pytest.approx(per_day)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("prn", "prn"), ("PRN", "prn"), ("p.r.n.", "prn"), ("qds prn", "prn"), ("as needed", "prn"),
     ("", "missing"), ("  ", "missing"), ("sometimes", "unknown"), ("every 0 hours", "unknown"),
     ("q", "unknown")],
)  # fmt: skip
def test_as_needed_and_unreadable_frequencies_are_not_guessed(text: str, kind: str) -> None:
    freq = parse_frequency(text)
    assert freq.kind == kind and freq.doses_per_day is None


# ------------------------------------------------------------------ conversion


def test_conversion_reduces_then_divides_by_the_target_factor() -> None:
    c = convert_to_single_opioid(120, "oxycodone", "oral", 25)
    assert c.reduced_ome_mg_per_day == 90 and c.daily_dose == 60 and c.unit == "mg/day"
    assert c.table_id == "cdc-2022"
    assert "conversion:cross-tolerance" in codes(c.findings)


def test_no_reduction_is_a_warning_quoting_the_cdc_caveat() -> None:
    c = convert_to_single_opioid(60, "morphine", "po", 0)
    (f,) = [f for f in c.findings if f.code == "conversion:cross-tolerance"]
    assert f.severity == "warning" and "caution 3" in f.citation


@pytest.mark.parametrize(("opioid", "route"), [("methadone", "oral"), ("fentanyl", "transdermal")])
def test_conversion_to_methadone_or_a_fentanyl_patch_is_refused_naming_rule_and_source(
    opioid: str, route: str
) -> None:
    with pytest.raises(ConversionRefused) as exc:
        convert_to_single_opioid(100, opioid, route, 30)
    assert "refused" in exc.value.message and "CDC opioid guideline 2022" in exc.value.message
    assert "CDC opioid guideline 2022" in exc.value.source and exc.value.rule


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((100, "morphine", "oral", 100), "reduce_percent"),
        ((100, "morphine", "oral", -5), "reduce_percent"),
        ((0, "morphine", "oral", 10), "ome_mg_per_day"),
        ((100, "heroin", "oral", 10), "opioid"),
        ((100, "morphine", "iv", 10), "route"),
        ((100, "buprenorphine", "sublingual", 10), "route"),
    ],
)
def test_conversion_errors_name_the_field(args: tuple, field: str) -> None:
    with pytest.raises((InvalidInput, UnknownItem)) as exc:
        convert_to_single_opioid(*args)
    assert exc.value.field == field


def test_an_incomplete_total_is_not_converted() -> None:
    result = oral_morphine_equivalents([med("morphine", 10), med("codeine", 30, frequency="prn")])
    with pytest.raises(InvalidInput, match="incomplete") as exc:
        convert_medications(result, "morphine", "oral", 25)
    assert exc.value.field == "medications"


# ------------------------------------------------------------------ taper


def req(**kw: object) -> TaperRequest:
    data: dict[str, object] = dict(
        opioid_id="morphine",
        route="oral",
        start_daily_dose=60.0,
        unit="mg",
        step_percent=10.0,
        every_days=30,
        start_date=date(2025, 1, 6),
    )
    data.update(kw)
    return TaperRequest(**data)  # type: ignore[arg-type]


def test_a_monthly_10_percent_taper_is_ready_with_dated_equal_steps() -> None:
    plan = taper_plan(req())
    doses = [s.daily_dose for s in plan.steps]
    assert doses == pytest.approx([54, 48, 42, 36, 30, 24, 18, 12, 6, 0])
    assert plan.steps[1].date == date(2025, 2, 5)
    assert plan.steps[0].unit == "mg/day" and plan.steps[0].ome_mg_per_day == 54
    assert plan.status == "ready"


def test_rounding_is_down_and_the_plan_ends_at_the_floor() -> None:
    plan = taper_plan(req(round_to=5, floor=10))
    doses = [s.daily_dose for s in plan.steps]
    assert doses == [50, 45, 40, 35, 30, 20, 15, 10]
    assert "taper:rounding" in codes(plan.findings)


def test_percent_of_the_current_dose_needs_rounding_or_a_floor() -> None:
    with pytest.raises(InvalidInput) as exc:
        taper_plan(req(basis="current"))
    assert exc.value.field == "round_to"
    plan = taper_plan(req(basis="current", round_to=2.5))
    assert plan.steps[-1].daily_dose == 0


def test_a_weekly_taper_needs_an_override_for_the_cdc_shorter_duration_tail() -> None:
    plan = taper_plan(req(every_days=7))
    soft = [f for f in plan.findings if f.severity == "soft"]
    assert [f.code for f in soft] == ["taper:cdc-2022-shorter-duration"]
    assert "Recommendation 5" in soft[0].citation and "30%" in soft[0].message
    assert plan.status == "needs_override"
    accepted = taper_plan(req(every_days=7, override_by="Dr Lee", override_reason="planned"))
    assert accepted.status == "ready" and accepted.override is not None


def test_a_weekly_taper_of_the_remaining_dose_is_within_the_shorter_duration_rate() -> None:
    plan = taper_plan(req(every_days=7, basis="current", round_to=1))
    assert plan.status == "ready"
    assert "taper:cdc-2022-long-term" in codes(plan.findings)


def test_an_override_needs_a_name_and_a_reason() -> None:
    with pytest.raises(InvalidInput) as exc:
        taper_plan(req(override_by="Dr Lee"))
    assert exc.value.field == "reason"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"step_percent": 150}, "step_percent"),
        ({"step_percent": 0}, "step_percent"),
        ({"every_days": 0}, "every_days"),
        ({"start_daily_dose": -1}, "daily_dose"),
        ({"floor": 60}, "floor"),
        ({"round_to": 0}, "round_to"),
        ({"unit": "mL"}, "unit"),
        ({"unit": "mcg/h"}, "unit"),
        ({"unit": "furlongs"}, "unit"),
        ({"opioid_id": "heroin"}, "opioid"),
        ({"step_percent": 0.001}, "step_percent"),
        ({"every_days": 99_999_999}, "every_days"),  # past 9999-12-31 (was OverflowError)
    ],
)
def test_absurd_taper_inputs_are_errors_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises((InvalidInput, UnknownItem)) as exc:
        taper_plan(req(**change))
    assert exc.value.field == field


def test_a_patch_taper_keeps_mcg_per_hour() -> None:
    plan = taper_plan(
        req(opioid_id="fentanyl", route="transdermal", start_daily_dose=50, unit="mcg/h",
            round_to=12.5, basis="current", step_percent=25, every_days=28)
    )  # fmt: skip
    assert {s.unit for s in plan.steps} == {"mcg/h"}
    assert plan.steps[0].daily_dose == 37.5 and plan.steps[0].ome_mg_per_day == 90


# ------------------------------------------------------------------ CLI


def test_cli_opioids_prints_ome_and_conversion_as_json(write_patient) -> None:
    patient = base_patient()
    patient["medications"].append(
        {
            "name": "fentanyl",
            "dose": 25,
            "unit": "mcg/h",
            "frequency": "every 72 hours",
            "route": "transdermal",
        }
    )
    path = write_patient(patient)
    convert = ["--convert-to", "morphine", "--route", "oral", "--reduce-percent", "25"]
    result = runner.invoke(app, ["opioids", str(path), *convert, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["table_id"] == "cdc-2022"
    assert data["total_ome_mg_per_day"] == 120
    assert data["lines"][0]["ome_mg_per_day"] == 60 and data["lines"][0]["unit"] == "mg/day"
    assert data["conversion"]["daily_dose"] == 90 and data["conversion"]["unit"] == "mg/day"


def test_cli_refuses_conversion_to_methadone_with_exit_2(write_patient) -> None:
    path = write_patient(base_patient())
    convert = ["--convert-to", "methadone", "--route", "oral", "--reduce-percent", "50"]
    result = runner.invoke(app, ["opioids", str(path), *convert, "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    error = json.loads(result.stderr)
    assert error["error"] == "conversion_refused"
    assert "CDC opioid guideline 2022" in error["citation"]


def test_cli_conversion_needs_all_three_options(write_patient) -> None:
    path = write_patient(base_patient())
    result = runner.invoke(app, ["opioids", str(path), "--convert-to", "morphine"])
    assert result.exit_code == 2 and "--reduce-percent" in result.stderr


def test_cli_opioids_text_names_the_table(write_patient) -> None:
    result = runner.invoke(app, ["opioids", str(write_patient(base_patient()))])
    assert (
        result.exit_code == 0 and "cdc-2022" in result.stdout and "60 mg/day OME" in result.stdout
    )


TAPER = [
    "opioid-taper", "--opioid", "morphine", "--route", "oral", "--daily-dose", "60",
    "--unit", "mg", "--step-percent", "10", "--start", "2025-01-06",
]  # fmt: skip


def test_cli_taper_json_and_exit_4_without_an_override() -> None:
    result = runner.invoke(app, [*TAPER, "--every-days", "7", "--round-to", "5", "--json"])
    assert result.exit_code == 4
    data = json.loads(result.stdout)
    assert data["status"] == "needs_override"
    assert data["steps"][0] == {
        "step": 1,
        "date": "2025-01-06",
        "daily_dose": 50.0,
        "unit": "mg/day",
        "percent_of_start": pytest.approx(83.333, abs=1e-3),
        "ome_mg_per_day": 50.0,
    }
    ok = runner.invoke(
        app, [*TAPER, "--every-days", "7", "--override-by", "Dr Lee", "--reason", "inpatient"]
    )
    assert ok.exit_code == 0 and "Override by Dr Lee" in ok.stdout


def test_cli_taper_errors_name_the_field() -> None:
    bad = runner.invoke(app, [*TAPER, "--every-days", "0", "--json"])
    assert bad.exit_code == 2 and json.loads(bad.stderr)["field"] == "every_days"
    date_bad = runner.invoke(app, [*TAPER[:-1], "06/01/2025", "--every-days", "7"])
    assert date_bad.exit_code == 2 and "--start" in date_bad.stderr
