"""The Safe Harbor transformations under generated input: ages pooled from 90, ZIP codes to
three digits or 000, dates as day numbers that keep every interval, research codes stable
per key and unlinkable across keys."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ketapath.domain.research import (
    OLDEST_BAND,
    age_band,
    age_in_years,
    day_number,
    research_code,
    zip3,
)
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.safe_harbor import safe_harbor
from ketapath.services.research_export import patient_row

RESTRICTED = safe_harbor().zip.restricted_prefixes
KB = knowledge()  # loaded once: the first load is slower than a generated case may take
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
ages = st.floats(min_value=0, max_value=130, allow_nan=False, allow_infinity=False)
zip5 = st.from_regex(r"[0-9]{5}", fullmatch=True)
plus4 = st.from_regex(r"[0-9]{4}", fullmatch=True)


@given(ages)
def test_no_age_of_90_or_more_survives_and_younger_ages_keep_their_years(age: float) -> None:
    years = age_in_years(age)
    band = age_band(age)
    if age >= 90:
        assert years is None and band == OLDEST_BAND
    else:
        assert years == int(age)
        assert band is not None and band != OLDEST_BAND
        low, high = (int(part) for part in band.split("-"))
        assert high - low == 9 and low % 10 == 0 and low <= age < high + 1


def _band_start(band: str | None) -> int:
    assert band is not None
    return 90 if band == OLDEST_BAND else int(band.split("-")[0])


@given(ages, ages)
def test_age_bands_keep_the_order_of_ages(a: float, b: float) -> None:
    assume(a <= b)
    assert _band_start(age_band(a)) <= _band_start(age_band(b))


@given(zip5, st.none() | plus4)
def test_a_zip_code_becomes_its_first_three_digits_or_000(code: str, extra: str | None) -> None:
    given_code = code if extra is None else f"{code}-{extra}"
    out = zip3(given_code, RESTRICTED)
    assert out == ("000" if code[:3] in RESTRICTED else code[:3])
    assert out is not None and len(out) == 3
    assert code[3:] not in (out or "")[3:]  # nothing beyond three digits is kept


@given(st.text(max_size=12))
def test_text_that_is_not_a_zip_code_gives_nothing(text: str) -> None:
    stripped = text.strip()
    assume(
        not (
            len(stripped) in (5, 10)
            and stripped[:5].isascii()
            and stripped[:5].isdigit()
            and (len(stripped) == 5 or (stripped[5] == "-" and stripped[6:].isdigit()))
        )
    )
    assert zip3(text, RESTRICTED) is None


@given(st.sampled_from(sorted(RESTRICTED)), st.from_regex(r"[0-9]{2}", fullmatch=True))
def test_every_restricted_area_is_exported_as_000(prefix: str, rest: str) -> None:
    assert zip3(prefix + rest, RESTRICTED) == "000"


@given(days, days, st.integers(min_value=-20000, max_value=20000))
def test_day_numbers_keep_every_interval_whatever_the_anchor(a: date, b: date, shift: int) -> None:
    anchor = date(2000, 1, 1)
    assume(date.min + timedelta(days=abs(shift)) < anchor < date.max - timedelta(days=abs(shift)))
    other = anchor + timedelta(days=shift)
    assert day_number(b, anchor) - day_number(a, anchor) == (b - a).days
    assert day_number(b, other) - day_number(a, other) == (b - a).days
    assert day_number(anchor, anchor) == 0


keys = st.binary(min_size=16, max_size=64)
# the clinic's pseudonyms: "KP-" and ten upper-case hexadecimal digits (services.patients)
pseudonyms = st.from_regex(r"KP-[0-9A-F]{10}", fullmatch=True)


@given(keys, pseudonyms)
def test_a_research_code_is_stable_for_a_key_and_never_the_pseudonym(
    key: bytes, pseudonym: str
) -> None:
    code = research_code(key, pseudonym)
    assert code == research_code(key, pseudonym)
    assert code.startswith("P-") and len(code) == 14
    assert pseudonym[3:] not in code
    assert set(code[2:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


@given(keys, keys, pseudonyms)
def test_another_key_gives_another_code(key: bytes, other: bytes, pseudonym: str) -> None:
    assume(key != other)
    assert research_code(key, pseudonym) != research_code(other, pseudonym)


# ------------------------------------------------------------------ a patient's row

words = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N", "Zs", "Pd"), max_codepoint=0x24F),
    min_size=1,
    max_size=30,
)
phones = st.from_regex(r"\(?[0-9]{3}\)?[ -][0-9]{3}-[0-9]{4}", fullmatch=True)
emails = st.from_regex(r"[a-z]{3,8}\.[a-z]{3,8}@[a-z]{4,8}\.org", fullmatch=True)


@settings(deadline=None)  # the vocabulary's matcher warms up on the first names it reads
@given(words, phones, emails, st.from_regex(r"[0-9]{5}", fullmatch=True))
def test_what_is_typed_into_a_free_text_field_never_reaches_a_patient_s_row(
    name: str, phone: str, email: str, zip_code: str
) -> None:
    typed = f"{name} {phone} {email}"
    document = {
        "name": typed,
        "birth_date": "1950-05-06",
        "sex": "female",
        "weight_kg": 60.0,
        "zip_code": zip_code,
        "gp": typed,
        "referrer": typed,
        "diagnoses": ["crps-1", {"code": typed, "note": typed}, {"code": "G90.511", "name": typed}],
        "comorbidities": [typed],
        "medications": [{"name": typed}, {"name": "morphine", "indication": typed}],
        "allergies": [{"substance": typed, "reaction": typed}],
        "assessment": {"goals": typed, "expectancy": typed},
    }
    row = patient_row("P-TEST", date(2026, 1, 2), document, KB, safe_harbor())
    cells = " ".join(str(v) for v in row.values())
    assert phone not in cells and email not in cells and zip_code not in cells
    assert row["zip3"] in (zip_code[:3], "000")
    assert row["age_band"] == "70-79" and row["registration_year"] == 2026
    assert row["diagnoses"] is not None and "crps-1" in row["diagnoses"]
    assert row["medicines"] is not None and "morphine" in row["medicines"]
    assert row["free_text_withheld"] >= 8
