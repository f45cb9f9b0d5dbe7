"""Scoring of instruments: worked examples computed by hand from the published rules."""

from __future__ import annotations

import pytest

from ketapath.domain.instruments import (
    AnswerOutOfRangeError,
    DuplicateAnswerError,
    InvalidAnswerError,
    UnknownInstrumentError,
    UnknownItemError,
    list_instruments,
    score,
)


def phq9(*values: int | None) -> dict[str, int | None]:
    return {f"q{n}": v for n, v in enumerate(values, start=1)}


# --- PHQ-9 (Kroenke 2001): sum of 9 items 0-3; bands at 5, 10, 15, 20 ------------------------


def test_phq9_total_is_the_sum_of_the_nine_items() -> None:
    answers = [1, 2, 3, 0, 1, 2, 1, 0, 0]
    result = score("phq9", phq9(*answers))
    assert result.total == 1 + 2 + 3 + 0 + 1 + 2 + 1 + 0 + 0
    assert result.band == "moderate"  # 10 is the first moderate score
    assert result.scorable and not result.prorated
    assert result.items_answered == 9 and result.items_missing == ()


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately severe"),
        (19, "moderately severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_bands_change_at_5_10_15_and_20(total: int, band: str) -> None:
    # spread the total over the first items, 3 at most each, item 9 left at 0
    values = [min(3, max(0, total - 3 * i)) for i in range(9)]
    if total > 24:
        values = [3] * 8 + [total - 24]
    assert sum(values) == total
    assert score("phq9", phq9(*values)).band == band


def test_phq9_with_two_items_missing_is_prorated_to_nine_items() -> None:
    # 7 answered items summing to 7: each missing item takes the mean (1), total 9
    result = score("phq9", phq9(1, 1, 1, 1, 1, 1, 1, None, None))
    assert result.total == pytest.approx(7 * 9 / 7)
    assert result.band == "mild"
    assert result.prorated and result.scorable
    assert result.items_missing == ("q8", "q9")
    assert any("prorated" in m for m in result.messages)


def test_phq9_prorated_total_is_not_rounded_before_banding() -> None:
    # 8 answered items summing to 9 -> 9 * 9 / 8 = 10.125, which is moderate
    result = score("phq9", phq9(3, 3, 3, 0, 0, 0, 0, 0, None))
    assert result.total == pytest.approx(9 * 9 / 8)
    assert result.band == "moderate"


def test_phq9_with_three_items_missing_is_not_scored() -> None:
    result = score("phq9", phq9(3, 3, 3, 3, 3, 3, None, None, None))
    assert result.total is None and result.band is None
    assert not result.scorable
    assert any("3 of 9 items missing" in m for m in result.messages)


def test_phq9_item_9_above_zero_raises_an_alert_even_with_a_low_total() -> None:
    result = score("phq9", phq9(0, 0, 0, 0, 0, 0, 0, 0, 1))
    assert result.band == "minimal"
    assert any("self-harm" in m and "suicidal" in m for m in result.messages)


def test_phq9_item_9_unanswered_asks_for_it_to_be_asked() -> None:
    result = score("phq9", phq9(0, 0, 0, 0, 0, 0, 0, 0, None))
    assert any("unanswered" in m for m in result.messages)


def test_phq9_item_9_at_zero_raises_no_alert() -> None:
    result = score("phq9", phq9(0, 0, 0, 0, 0, 0, 0, 0, 0))
    assert result.messages == ()


# --- GAD-7 (Spitzer 2006) ------------------------------------------------------------------


def test_gad7_total_and_band() -> None:
    result = score("gad7", {f"q{n}": v for n, v in enumerate([3, 3, 2, 2, 1, 1, 0], 1)})
    assert result.total == 3 + 3 + 2 + 2 + 1 + 1 + 0
    assert result.band == "moderate"


def test_gad7_is_not_scored_with_any_item_missing_because_no_rule_is_published() -> None:
    result = score("gad7", {f"q{n}": 3 for n in range(1, 7)})
    assert result.total is None and not result.scorable


# --- BPI short form (Cleeland, User Guide 2009) ---------------------------------------------


BPI_SEVERITY = {"worst": 8, "least": 3, "average": 5, "now": 6}


def test_bpi_severity_is_the_mean_of_the_four_pain_items() -> None:
    result = score("bpi-sf", BPI_SEVERITY)
    assert result.subscales["severity"].value == pytest.approx((8 + 3 + 5 + 6) / 4)


def test_bpi_has_no_total() -> None:
    assert score("bpi-sf", BPI_SEVERITY).total is None


def test_bpi_interference_with_four_of_seven_items_is_the_mean_of_those_four() -> None:
    answers = {**BPI_SEVERITY, "general_activity": 7, "mood": 5, "sleep": 9, "enjoyment": 4}
    interference = score("bpi-sf", answers).subscales["interference"]
    assert interference.value == pytest.approx((7 + 5 + 9 + 4) / 4)
    assert interference.scorable and interference.prorated
    assert interference.items_missing == ("walking", "normal_work", "relations")


def test_bpi_interference_with_three_of_seven_items_is_not_scored() -> None:
    answers = {**BPI_SEVERITY, "general_activity": 7, "mood": 5, "sleep": 9}
    result = score("bpi-sf", answers)
    assert result.subscales["interference"].value is None
    assert not result.scorable
    # severity is still reported
    assert result.subscales["severity"].value == pytest.approx(5.5)


def test_bpi_severity_needs_all_four_items() -> None:
    result = score("bpi-sf", {"worst": 8, "least": 3, "average": 5})
    assert result.subscales["severity"].value is None
    assert result.subscales["average_pain"].value == 5


def test_bpi_items_can_be_given_by_their_form_numbers() -> None:
    by_name = score("bpi-sf", {"worst": 9, "q9a": 2, "sleep": 3, "q9b": 4, "walking": 5})
    by_number = score("bpi-sf", {"q3": 9, "general_activity": 2, "q9f": 3, "mood": 4, "q9c": 5})
    assert by_name.subscales["interference"].value == by_number.subscales["interference"].value


# --- NRS -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "band"),
    [(0, "no pain"), (1, "mild"), (4, "mild"), (5, "moderate"), (6, "moderate"), (7, "severe")],
)
def test_nrs_bands_follow_serlin_cut_points_5_and_7(value: int, band: str) -> None:
    result = score("nrs", {"pain": value})
    assert result.total == value
    assert result.band == band


def test_nrs_without_an_answer_is_not_scored() -> None:
    result = score("nrs", {})
    assert result.total is None and not result.scorable


# --- answers: parsing and errors -----------------------------------------------------------


def test_answers_given_as_text_score_the_same_as_numbers() -> None:
    as_text = score("phq9", {k: str(v) for k, v in phq9(1, 2, 3, 0, 1, 2, 1, 0, 0).items()})
    as_numbers = score("phq9", phq9(1, 2, 3, 0, 1, 2, 1, 0, 0))
    assert as_text.total == as_numbers.total


def test_a_whole_number_given_as_a_float_is_accepted() -> None:
    assert score("nrs", {"pain": 6.0}).total == 6


def test_an_empty_text_answer_counts_as_unanswered() -> None:
    result = score("nrs", {"pain": " "})
    assert result.items_missing == ("pain",)


def test_instrument_ids_are_not_case_sensitive() -> None:
    assert score("PHQ9", phq9(0, 0, 0, 0, 0, 0, 0, 0, 0)).instrument_id == "phq9"


def test_an_unknown_instrument_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(UnknownInstrumentError) as err:
        score("phq-99", {})
    assert "phq9" in str(err.value) and "gad7" in str(err.value)


def test_an_unknown_item_is_an_error_naming_the_item_and_the_valid_ones() -> None:
    with pytest.raises(UnknownItemError) as err:
        score("gad7", {"q8": 1})
    assert "'q8'" in str(err.value)
    assert "q1" in str(err.value) and "q7" in str(err.value)


@pytest.mark.parametrize("value", [4, -1, 99])
def test_an_answer_out_of_range_names_the_item_and_the_range(value: int) -> None:
    with pytest.raises(AnswerOutOfRangeError) as err:
        score("phq9", {"q3": value})
    assert err.value.item_id == "q3"
    assert (err.value.minimum, err.value.maximum) == (0, 3)
    assert "q3" in str(err.value) and "0 to 3" in str(err.value)


@pytest.mark.parametrize("value", [2.5, "two", "3a", True, [1]])
def test_an_answer_that_is_not_a_whole_number_is_refused(value: object) -> None:
    with pytest.raises(InvalidAnswerError) as err:
        score("phq9", {"q1": value})  # type: ignore[dict-item]
    assert "q1" in str(err.value)


def test_an_item_answered_twice_under_two_names_is_refused() -> None:
    with pytest.raises(DuplicateAnswerError):
        score("bpi-sf", {"worst": 5, "q3": 6})


def test_every_instrument_is_listed_with_a_source() -> None:
    instruments = list_instruments()
    assert {"nrs", "bpi-sf", "phq9", "gad7"} <= {i.id for i in instruments}
    assert all(i.source and i.verified for i in instruments)


# --- PSEQ (Nicholas 2007): 10 items 0-6, sum 0-60, higher is better ------------------------


def pseq(*values: int | None) -> dict[str, int | None]:
    return {f"q{n}": v for n, v in enumerate(values, start=1)}


def test_pseq_total_is_the_sum_of_ten_items_and_higher_is_better() -> None:
    result = score("pseq", pseq(6, 5, 4, 3, 2, 1, 0, 6, 5, 4))
    assert result.total == 6 + 5 + 4 + 3 + 2 + 1 + 0 + 6 + 5 + 4
    assert result.band is not None and result.band.startswith("mild")  # 36 lies in 31-40
    assert result.subscales["total"].direction == "higher_is_better"


@pytest.mark.parametrize(
    ("total", "band_start"), [(19, "severe"), (20, "moderate"), (41, "minimal")]
)
def test_pseq_band_edges(total: int, band_start: str) -> None:
    values = [min(6, max(0, total - 6 * i)) for i in range(10)]
    assert sum(values) == total
    band = score("pseq", pseq(*values)).band
    assert band is not None and band.startswith(band_start)


def test_pseq_with_an_item_missing_is_not_scored_as_no_rule_was_verified() -> None:
    result = score("pseq", pseq(6, 6, 6, 6, 6, 6, 6, 6, 6, None))
    assert result.total is None and not result.scorable


# --- DN4 (Bouhassira 2005): ten yes/no items, positive at 4 -------------------------------

DN4_NO = {
    "burning": "no",
    "painful_cold": "no",
    "electric_shocks": "no",
    "tingling": "no",
    "pins_and_needles": "no",
    "numbness": "no",
    "itching": "no",
    "hypoaesthesia_touch": "no",
    "hypoaesthesia_pinprick": "no",
    "brushing": "no",
}


def test_dn4_four_yes_answers_are_a_positive_screen() -> None:
    yes = {"burning": "yes", "tingling": "y", "pins_and_needles": True, "brushing": 1}
    result = score("dn4", {**DN4_NO, **yes})
    assert result.total == 4
    assert result.band is not None and result.band.startswith("positive")


def test_dn4_three_yes_answers_are_below_the_cut_off() -> None:
    result = score("dn4", {**DN4_NO, "burning": "yes", "numbness": "yes", "itching": "yes"})
    assert result.total == 3
    assert result.band is not None and result.band.startswith("below")


def test_dn4_interview_alone_is_read_against_its_own_cut_off_of_3() -> None:
    interview = {k: v for k, v in DN4_NO.items() if not k.startswith(("hypo", "brush"))}
    interview.update({"burning": "yes", "electric_shocks": "yes", "tingling": "yes"})
    result = score("dn4", interview)
    assert result.total is None and not result.scorable
    assert result.subscales["interview"].value == 3
    band = result.subscales["interview"].band
    assert band is not None and band.startswith("positive")


@pytest.mark.parametrize("value", ["maybe", 2, 0.5, "yess"])
def test_dn4_accepts_only_yes_or_no(value: object) -> None:
    with pytest.raises(InvalidAnswerError) as err:
        score("dn4", {"burning": value})  # type: ignore[dict-item]
    assert "yes or no" in str(err.value)


def test_dn4_items_can_be_given_by_number() -> None:
    numbered = {f"q{n}": "yes" for n in range(1, 11)}
    assert score("dn4", numbered).total == 10


# --- PCS (Sullivan 1995): 13 items 0-4; rumination 8-11, magnification 6,7,13, ----------
# --- helplessness 1-5,12 -------------------------------------------------------------------


def test_pcs_total_and_subscales_follow_sullivan_item_keys() -> None:
    values = [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3]
    q = dict(zip(range(1, 14), values, strict=True))
    result = score("pcs", {f"q{n}": v for n, v in q.items()})
    assert result.total == sum(values)
    assert result.subscales["rumination"].value == q[8] + q[9] + q[10] + q[11]
    assert result.subscales["magnification"].value == q[6] + q[7] + q[13]
    assert result.subscales["helplessness"].value == q[1] + q[2] + q[3] + q[4] + q[5] + q[12]
    assert result.band is not None and result.band.startswith("below")


def test_pcs_total_of_30_is_clinically_relevant() -> None:
    values = [4, 4, 4, 4, 4, 4, 4, 2, 0, 0, 0, 0, 0]
    result = score("pcs", {f"q{n}": v for n, v in enumerate(values, 1)})
    assert result.total == 30
    assert result.band is not None and result.band.startswith("clinically relevant")


# --- DASS-21 (Lovibond 1995): subscale sums doubled, DASS-42 bands ------------------------

DEPRESSION = (3, 5, 10, 13, 16, 17, 21)
ANXIETY = (2, 4, 7, 9, 15, 19, 20)
STRESS = (1, 6, 8, 11, 12, 14, 18)


def test_dass21_subscales_are_doubled_sums_of_their_seven_items() -> None:
    answers = {f"q{n}": 1 for n in range(1, 22)}
    result = score("dass21", answers)
    assert result.total is None  # no total in the manual's scoring
    for name, band in (("depression", "moderate"), ("anxiety", "moderate"), ("stress", "normal")):
        assert result.subscales[name].value == 7 * 1 * 2
        assert result.subscales[name].band == band


def test_dass21_items_feed_only_their_own_subscale() -> None:
    answers = {f"q{n}": 0 for n in range(1, 22)}
    answers.update({f"q{n}": 3 for n in ANXIETY})
    result = score("dass21", answers)
    assert result.subscales["anxiety"].value == 42
    assert result.subscales["depression"].value == 0
    assert result.subscales["stress"].value == 0


def test_dass21_anxiety_raw_4_doubles_to_8_which_is_mild() -> None:
    answers = {f"q{n}": 0 for n in range(1, 22)}
    answers.update({"q2": 2, "q4": 2})
    assert score("dass21", answers).subscales["anxiety"].band == "mild"


def test_dass21_one_missing_item_per_subscale_is_prorated_before_doubling() -> None:
    answers = {f"q{n}": 1 for n in range(1, 22)}
    answers["q21"] = None  # a depression item
    depression = score("dass21", answers).subscales["depression"]
    assert depression.value == pytest.approx(6 * 7 / 6 * 2)
    assert depression.prorated


def test_dass21_two_missing_items_in_a_subscale_stop_that_subscale_only() -> None:
    answers = {f"q{n}": 1 for n in range(1, 22)}
    answers.update({"q3": None, "q5": None})
    result = score("dass21", answers)
    assert result.subscales["depression"].value is None
    assert result.subscales["anxiety"].value == 14
    assert not result.scorable


# --- PGIC (Farrar 2001; IMMPACT, Dworkin 2008): 1 = very much improved ... 7 = very much worse


@pytest.mark.parametrize(
    ("rating", "start"),
    [(1, "very much improved"), (2, "much improved"), (4, "no change"), (7, "very much worse")],
)
def test_pgic_rating_reads_as_its_option_label(rating: int, start: str) -> None:
    band = score("pgic", {"change": rating}).band
    assert band is not None and band.startswith(start)


@pytest.mark.parametrize("rating", [0, 8])
def test_pgic_outside_1_to_7_is_refused(rating: int) -> None:
    with pytest.raises(AnswerOutOfRangeError) as err:
        score("pgic", {"change": rating})
    assert "1 to 7" in str(err.value)


def test_all_nine_instruments_of_the_assessment_are_present() -> None:
    ids = {i.id for i in list_instruments()}
    assert ids >= {"nrs", "bpi-sf", "pseq", "dn4", "pcs", "dass21", "phq9", "gad7", "pgic"}


def test_an_absurdly_long_number_is_refused_as_an_invalid_answer() -> None:
    with pytest.raises(InvalidAnswerError):
        score("nrs", {"pain": "1" * 5000})
