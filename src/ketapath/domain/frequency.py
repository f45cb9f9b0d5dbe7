"""How often a medicine is taken, from the frequency text of a prescription.

``parse_frequency`` reads the common English and Latin abbreviations (od, bd, tds, qds, nocte,
mane, q4h ... q12h, "every 8 hours", "3 times a day", "every 72 hours", weekly) into doses per
day. As-needed (PRN) use is recognised separately, because the number of doses actually taken
is not in the text; anything not recognised is reported as unknown, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

FrequencyKind = Literal["regular", "prn", "missing", "unknown"]

_ONCE = {
    "od",
    "qd",
    "daily",
    "once daily",
    "once a day",
    "once per day",
    "1 time a day",
    "every day",
    "each day",
    "mane",
    "nocte",
    "om",
    "qam",
    "qpm",
    "qhs",
    "at night",
    "at bedtime",
    "in the morning",
    "in the evening",
    "every morning",
    "every night",
    "every evening",
}
_TWICE = {"bd", "bid", "twice daily", "twice a day", "twice per day", "mane and nocte"}
_THREE = {"tds", "tid", "three times daily", "three times a day", "thrice daily"}
_FOUR = {"qds", "qid", "four times daily", "four times a day"}
_WEEKLY = {"weekly", "once weekly", "once a week", "every week"}
_FIXED: dict[str, float] = {
    **dict.fromkeys(_ONCE, 1.0),
    **dict.fromkeys(_TWICE, 2.0),
    **dict.fromkeys(_THREE, 3.0),
    **dict.fromkeys(_FOUR, 4.0),
    **dict.fromkeys(_WEEKLY, 1.0 / 7.0),
    "every other day": 0.5,
    "alternate days": 0.5,
}
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_NUM = r"(\d+(?:\.\d+)?|one|two|three|four|five|six)"
_HOURS = r"(?:h|hr|hrs|hour|hours)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"^q\s*{_NUM}\s*{_HOURS}$"), "hours"),
    (re.compile(rf"^(?:every|each)\s+{_NUM}\s*{_HOURS}$"), "hours"),
    (re.compile(rf"^{_NUM}\s*-?\s*(?:hourly|hrly|h)$"), "hours"),
    (re.compile(rf"^(?:every|each)\s+{_NUM}\s*days?$"), "days"),
    (re.compile(rf"^{_NUM}\s*(?:x|times)\s*(?:a|per|each)?\s*(?:day|daily)$"), "per_day"),
    (re.compile(rf"^{_NUM}\s*(?:x|times)\s*(?:a|per|each)?\s*week(?:ly)?$"), "per_week"),
)
_PRN = re.compile(
    r"\b(prn|as needed|as required|when required|when needed|if needed|if required)\b"
)


@dataclass(frozen=True)
class Frequency:
    """Doses per day read from a frequency text (``None`` unless ``kind`` is ``regular``)."""

    text: str
    kind: FrequencyKind
    doses_per_day: float | None = None


def _normalise(text: str) -> str:
    low = text.strip().lower().rstrip(".")
    low = re.sub(r"\b([a-z])\.(?=[a-z]\.?)", r"\1", low)  # b.d. -> bd, p.r.n. -> prn
    low = low.replace(".", "") if re.fullmatch(r"[a-z.]+", low) else low
    return re.sub(r"\s+", " ", low)


def _number(token: str) -> float:
    return float(_NUMBER_WORDS.get(token, 0) or token)


def parse_frequency(text: str) -> Frequency:
    """Read a frequency text; see the module docstring for what is recognised."""
    norm = _normalise(text)
    if not norm:
        return Frequency(text, "missing")
    if _PRN.search(norm):
        return Frequency(text, "prn")
    if norm in _FIXED:
        return Frequency(text, "regular", _FIXED[norm])
    for pattern, kind in _PATTERNS:
        match = pattern.match(norm)
        if not match:
            continue
        n = _number(match.group(1))
        if n <= 0:
            return Frequency(text, "unknown")
        per_day = {
            "hours": 24.0 / n,
            "days": 1.0 / n,
            "per_day": n,
            "per_week": n / 7.0,
        }[kind]
        return Frequency(text, "regular", per_day)
    return Frequency(text, "unknown")
