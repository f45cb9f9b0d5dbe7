"""The discharge score (PADSS, Chung et al. 1995) scored from the chart, never typed as a total.

Five items of 0-2 points: vital signs (the latest complete set after the infusion against the
check-in baseline, combined by the rule in ``session_rules.yaml``: the largest change among
heart rate, blood pressure and respiratory rate), activity and mental status, pain or nausea
and vomiting, bleeding (the cannula site), intake and output (the nurse's discharge
assessment). A total exists only when every item is scored; at or above the threshold (9)
the patient is fit for discharge by the score.
"""

from __future__ import annotations

from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from ketapath.domain.session_events import DischargeAssessment, VitalSigns
from ketapath.knowledge.sessions import Padss

LEVEL_POINTS = {"minimal": 2, "moderate": 1, "severe": 0}


class VitalChange(BaseModel):
    """One vital sign's change from its check-in value (for the vital-sign item)."""

    model_config = ConfigDict(frozen=True)

    vital: str
    baseline: int
    latest: int
    change_percent: float


class PadssItemScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    points: int | None
    meaning: str
    from_chart: str


class PadssScore(BaseModel):
    """The score, item by item; ``total`` is None until every item can be scored."""

    model_config = ConfigDict(frozen=True)

    name: str
    total: int | None
    maximum: int
    threshold: int
    met: bool
    items: list[PadssItemScore]
    missing: list[str]
    vital_changes: list[VitalChange]


def _change(baseline: int, latest: int) -> Fraction:
    return Fraction(abs(latest - baseline) * 100, baseline)


def vital_sign_points(
    baseline: VitalSigns | None, latest: VitalSigns | None, rules: Padss
) -> tuple[int | None, list[VitalChange]]:
    """The vital-sign item: 2, 1 or 0 by the largest change, or None with nothing to compare.

    A vital sign is compared when both readings exist and the baseline is above zero; the
    boundaries are inclusive (exactly 20% scores 2, exactly 40% scores 1).
    """
    if baseline is None or latest is None:
        return None, []
    rule = rules.vital_sign_item
    before, now = baseline.values(), latest.values()
    changes: list[tuple[Fraction, VitalChange]] = []
    for vital in rule.vitals:
        first, last = before.get(vital), now.get(vital)
        if first is None or last is None or first <= 0:
            continue
        change = _change(first, last)
        changes.append(
            (
                change,
                VitalChange(vital=vital, baseline=first, latest=last, change_percent=float(change)),
            )
        )
    if not changes:
        return None, []
    worst = max(change for change, _ in changes)
    if worst <= Fraction(str(rule.two_points_within_percent)):
        points = 2
    elif worst <= Fraction(str(rule.one_point_within_percent)):
        points = 1
    else:
        points = 0
    return points, [view for _, view in changes]


def _both(first: bool, second: bool) -> int:
    return int(first) + int(second)


def assessment_points(assessment: DischargeAssessment) -> dict[str, int]:
    """The four items the discharge assessment gives."""
    return {
        "activity_mental_status": _both(assessment.oriented, assessment.steady_gait),
        "pain_nausea_vomiting": LEVEL_POINTS[assessment.pain_nausea_vomiting],
        "bleeding": LEVEL_POINTS[assessment.bleeding],
        "intake_output": _both(assessment.oral_fluids, assessment.voided),
    }


def score_padss(
    baseline: VitalSigns | None,
    latest: VitalSigns | None,
    assessment: DischargeAssessment | None,
    rules: Padss,
) -> PadssScore:
    """PADSS from the check-in baseline, the latest complete set after the infusion, and the
    latest discharge assessment (each None when not charted yet)."""
    points: dict[str, int | None] = {item.id: None for item in rules.items}
    vital_points, changes = vital_sign_points(baseline, latest, rules)
    points["vital_signs"] = vital_points
    if assessment is not None:
        points.update(assessment_points(assessment))
    items = []
    for item in rules.items:
        got = points[item.id]
        meaning = next((lv.meaning for lv in item.levels if lv.points == got), "not scored yet")
        items.append(
            PadssItemScore(
                id=item.id, name=item.name, points=got, meaning=meaning, from_chart=item.from_chart
            )
        )
    missing = [item.name for item in items if item.points is None]
    total = None if missing else sum(item.points or 0 for item in items)
    return PadssScore(
        name=rules.name,
        total=total,
        maximum=rules.maximum,
        threshold=rules.threshold,
        met=total is not None and total >= rules.threshold,
        items=items,
        missing=missing,
        vital_changes=changes,
    )
