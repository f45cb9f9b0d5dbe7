"""Resolving what a clinician wrote (a vocabulary id, name or ICD-10-CM code) to a condition."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ketapath.knowledge.clinical import Condition, Knowledge

ICD10CM_PATTERN = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")


@dataclass(frozen=True)
class Resolution:
    """What one written item resolved to."""

    given: str
    condition: Condition | None
    matched_by: Literal["id", "name", "icd10cm", "unknown-code", "unrecognised"]
    matched_code: str = ""


def normalise_code(code: str) -> str:
    return code.strip().upper().replace(".", "")


def is_icd10cm(text: str) -> bool:
    return bool(ICD10CM_PATTERN.match(text.strip().upper()))


def resolve(text: str, kb: Knowledge) -> Resolution:
    """Resolve one item: by id, then by name or synonym, then by longest ICD-10-CM prefix."""
    given = text.strip()
    low = given.lower()
    for cond in kb.conditions.entries:
        if cond.id == low:
            return Resolution(given, cond, "id")
    for cond in kb.conditions.entries:
        if low == cond.name.lower() or low in (s.lower() for s in cond.synonyms):
            return Resolution(given, cond, "name")
    if not is_icd10cm(given):
        return Resolution(given, None, "unrecognised")
    code = normalise_code(given)
    best: tuple[int, Condition, str] | None = None
    for cond in kb.conditions.entries:
        for prefix in cond.icd10cm:
            norm = normalise_code(prefix)
            if code.startswith(norm) and (best is None or len(norm) > best[0]):
                best = (len(norm), cond, prefix)
    if best is None:
        return Resolution(given, None, "unknown-code")
    return Resolution(given, best[1], "icd10cm", best[2])
