"""Properties every instrument in the knowledge base must have, whatever the answers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ketapath.cli.instruments import AnswersFormatError, parse_answers
from ketapath.domain.instruments import InstrumentError, score
from ketapath.knowledge.instruments import Instrument, Scale, load_instruments

INSTRUMENTS = load_instruments()
SCALES = [(inst, sc) for inst in INSTRUMENTS for sc in inst.scales]


def scale_label(pair: tuple[Instrument, Scale]) -> str:
    return f"{pair[0].id}:{pair[1].id}"


def complete_answers(inst: Instrument) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries(
        {
            it.id: st.integers(inst.response_for(it.id).minimum, inst.response_for(it.id).maximum)
            for it in inst.items
        }
    )


@pytest.mark.parametrize("inst", INSTRUMENTS, ids=lambda i: i.id)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_complete_answers_score_every_scale_within_its_range(inst: Instrument, data: Any) -> None:
    answers = data.draw(complete_answers(inst))
    result = score(inst.id, answers)
    assert result.scorable and not result.prorated
    assert result.items_missing == ()
    for sc in inst.scales:
        got = result.subscales[sc.id]
        assert got.value is not None
        low, high = sc.published_range
        assert low <= got.value <= high
        if sc.bands:
            assert got.band is not None
    if inst.total_scale is not None:
        assert result.total == result.subscales[inst.total_scale].value


@pytest.mark.parametrize("inst", INSTRUMENTS, ids=lambda i: i.id)
def test_the_lowest_and_highest_answers_reach_the_ends_of_each_range(inst: Instrument) -> None:
    lowest = {it.id: inst.response_for(it.id).minimum for it in inst.items}
    highest = {it.id: inst.response_for(it.id).maximum for it in inst.items}
    low_result, high_result = score(inst.id, lowest), score(inst.id, highest)
    for sc in inst.scales:
        assert low_result.subscales[sc.id].value == sc.published_range[0]
        assert high_result.subscales[sc.id].value == sc.published_range[1]


@pytest.mark.parametrize("pair", SCALES, ids=scale_label)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_missing_item_rule_boundary(pair: tuple[Instrument, Scale], data: Any) -> None:
    """Up to max_missing items missing: scored; one more: not scored."""
    inst, sc = pair
    answers = data.draw(complete_answers(inst))
    order = data.draw(st.permutations(sc.items))
    allowed = sc.missing.max_missing
    at_limit = {k: v for k, v in answers.items() if k not in order[:allowed]}
    over_limit = {k: v for k, v in answers.items() if k not in order[: allowed + 1]}
    scored = score(inst.id, at_limit).subscales[sc.id]
    assert scored.scorable and scored.value is not None
    assert scored.prorated == (allowed > 0)
    low, high = sc.published_range
    assert low <= scored.value <= high
    refused = score(inst.id, over_limit).subscales[sc.id]
    assert not refused.scorable and refused.value is None and refused.band is None


@pytest.mark.parametrize("pair", SCALES, ids=scale_label)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_higher_answer_never_lowers_the_score_even_when_prorated(
    pair: tuple[Instrument, Scale], data: Any
) -> None:
    inst, sc = pair
    answers = data.draw(complete_answers(inst))
    n_missing = data.draw(st.integers(0, sc.missing.max_missing))
    order = data.draw(st.permutations(sc.items))
    missing, answered = order[:n_missing], order[n_missing:]
    given_answers = {k: v for k, v in answers.items() if k not in missing}
    raised_item = data.draw(st.sampled_from(answered))
    top = inst.response_for(raised_item).maximum
    raised = dict(given_answers)
    raised[raised_item] = data.draw(st.integers(given_answers[raised_item], top))
    before = score(inst.id, given_answers).subscales[sc.id].value
    after = score(inst.id, raised).subscales[sc.id].value
    assert before is not None and after is not None
    assert after >= before


@pytest.mark.parametrize("pair", SCALES, ids=scale_label)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_prorating_equals_giving_each_missing_item_the_mean_of_the_answered(
    pair: tuple[Instrument, Scale], data: Any
) -> None:
    inst, sc = pair
    if sc.missing.max_missing == 0:
        return
    # all answered items equal: the prorated score equals the complete score with that value
    value = data.draw(
        st.integers(inst.response_for(sc.items[0]).minimum, inst.response_for(sc.items[0]).maximum)
    )
    n_missing = data.draw(st.integers(1, sc.missing.max_missing))
    complete = dict.fromkeys(sc.items, value)
    partial = {k: v for k, v in complete.items() if k not in sc.items[:n_missing]}
    full_score = score(inst.id, complete).subscales[sc.id].value
    partial_score = score(inst.id, partial).subscales[sc.id].value
    assert partial_score == pytest.approx(full_score)


@pytest.mark.parametrize("pair", [p for p in SCALES if p[1].bands], ids=scale_label)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_bands_never_go_down_as_the_score_rises(pair: tuple[Instrument, Scale], data: Any) -> None:
    inst, sc = pair
    answers = data.draw(complete_answers(inst))
    item = data.draw(st.sampled_from(sc.items))
    higher = {**answers, item: inst.response_for(item).maximum}
    labels = [b.label for b in sc.bands]
    before = score(inst.id, answers).subscales[sc.id].band
    after = score(inst.id, higher).subscales[sc.id].band
    assert before is not None and after is not None
    assert labels.index(after) >= labels.index(before)


# --- parsers: whatever comes in, only the typed errors come out ---------------------------

ANSWER_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)


@pytest.mark.parametrize("inst", INSTRUMENTS, ids=lambda i: i.id)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_answers_either_score_or_raise_an_instrument_error(inst: Instrument, data: Any) -> None:
    names = [it.id for it in inst.items] + [a for it in inst.items for a in it.aliases]
    keys = st.one_of(st.sampled_from(names), st.text(min_size=1, max_size=6))
    answers = data.draw(st.dictionaries(keys, ANSWER_VALUES, max_size=len(inst.items) + 2))
    try:
        result = score(inst.id, answers)
    except InstrumentError:
        return
    for it_id, value in result.answers.items():
        response = inst.response_for(it_id)
        assert response.minimum <= value <= response.maximum
    for sc in inst.scales:
        got = result.subscales[sc.id]
        if got.value is not None:
            assert sc.published_range[0] <= got.value <= sc.published_range[1]


@pytest.mark.parametrize("inst", INSTRUMENTS, ids=lambda i: i.id)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_key_value_text_scores_the_same_as_the_answers_it_was_written_from(
    inst: Instrument, data: Any
) -> None:
    answers = data.draw(complete_answers(inst))
    text = ",".join(f"{k}={v}" for k, v in answers.items())
    assert score(inst.id, parse_answers(text)) == score(inst.id, answers)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=40))
@example(text="@\x00")  # a file name no file can have (found by this property)
def test_answer_text_either_parses_or_raises_a_format_error(text: str) -> None:
    try:
        parsed = parse_answers(text)
    except AnswersFormatError:
        return
    assert isinstance(parsed, dict)
