"""Recognising what a clinician wrote as a medicine, and how much of each ingredient a dose is.

:func:`recognise` reads a medicine name ("OxyContin 20 mg", "co-codamol 30/500", "Zomorph",
"oxycodone/acetaminophen 5/325", "Durogesic 25") against the medicine vocabulary
(``knowledge/data/medicines.yaml``): the longest product or ingredient name found in it, in
any case and spacing, and the strength written in the name. A name that names nothing the
vocabulary knows, or names two different medicines, is *not recognised*: it is never guessed.

:func:`amount_per_dose` turns one dose ("2 tablets", "10 mg", "5 mL", "25 mcg/h", "1 patch")
into the amount of each ingredient, using the strength written in the name or, where the
product has a single strength (or every strength holds the same amount of the ingredient),
the product's. A count of units whose strength is not known, a dose in mg of a combination
product, or a strength the product is not made in, is a :class:`DoseProblem`: the medicine is
then left out of any total and named, never counted as zero.

No I/O: the vocabulary is passed in (``ketapath.knowledge.medicines.load_medicines``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from ketapath.domain.errors import InvalidInput
from ketapath.domain.units import parse_unit
from ketapath.knowledge.medicines import (
    FAMILY_UNITS,
    DoseForm,
    MedicineVocabulary,
    Product,
    Strength,
    load_medicines,
    name_tokens,
    name_variants,
)

UnitKind = Literal["mass", "rate", "volume", "count", "other"]
_NUM = r"(\d+(?:\.\d+)?)"
_MASS = r"(mg|mcg|micrograms?|microgram|µg|ug|g|grams?)"
_VOL = r"(ml|millilitres?|milliliters?)"
_HOUR = r"(h|hr|hrs|hour|hours)"
_STRENGTH_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("concentration", re.compile(rf"{_NUM}\s*{_MASS}\s*(?:/|per|in)\s*{_NUM}?\s*{_VOL}\b")),
    ("rate", re.compile(rf"{_NUM}\s*{_MASS}\s*(?:/|per|an|a)\s*{_HOUR}\b")),
    ("pair", re.compile(rf"{_NUM}\s*{_MASS}?\s*/\s*{_NUM}\s*{_MASS}?(?![\d/])")),
    ("amount", re.compile(rf"{_NUM}\s*{_MASS}\b")),
    ("bare", re.compile(rf"(?<![\d.]){_NUM}(?![\d.])")),
)
_MASS_TO_MG = {"g": 1000.0, "gram": 1000.0, "grams": 1000.0, "mg": 1.0}


@dataclass(frozen=True)
class StatedStrength:
    """A strength written in the name: amounts in ``unit`` ('mg', 'mcg/h', 'mg/mL'), or
    ``bare`` numbers with no unit ("Durogesic 25"), read only if the product is made in them."""

    amounts: tuple[float, ...]
    unit: str
    text: str


@dataclass(frozen=True)
class Recognition:
    """What one medicine name was recognised as."""

    given: str
    product: Product | None
    ingredients: tuple[str, ...]
    stated: StatedStrength | None = None
    problem: str = ""

    @property
    def recognised(self) -> bool:
        return bool(self.ingredients) and not self.problem

    @property
    def label(self) -> str:
        """What it was recognised as, in words ('co-codamol: codeine + paracetamol')."""
        what = " + ".join(self.ingredients)
        return f"{self.product.names[0]}: {what}" if self.product else what


@dataclass(frozen=True)
class IngredientAmount:
    """The amount of one ingredient in one dose: mg or mcg, or a patch's rate in mcg/h."""

    ingredient: str
    amount: float
    unit: str
    basis: str


@dataclass(frozen=True)
class DoseProblem:
    """Why a dose could not be turned into ingredient amounts (shown as a finding)."""

    kind: Literal["strength-unknown", "strength-not-listed", "combination-in-mass", "form-mismatch"]
    message: str
    ingredients: tuple[str, ...] = ()  # the ingredients it leaves unread (empty: all)

    def affects(self, ingredient: str) -> bool:
        return not self.ingredients or ingredient in self.ingredients


# ------------------------------------------------------------------ recognising a name


@cache
def _index(vocab: MedicineVocabulary) -> tuple[tuple[tuple[str, ...], str, str], ...]:
    """Every name variant as (tokens, 'product'|'ingredient', id), longest first."""
    rows: list[tuple[tuple[str, ...], str, str]] = []
    for p in vocab.products:
        rows += [(v, "product", p.id) for n in p.names for v in name_variants(n)]
    for i in vocab.ingredients:
        rows += [(v, "ingredient", i.id) for n in i.names for v in name_variants(n)]
    rows.sort(key=lambda r: (-len(r[0]), -sum(len(t) for t in r[0])))
    return tuple(rows)


def _find(tokens: tuple[str, ...], wanted: tuple[str, ...]) -> int:
    n = len(wanted)
    for start in range(len(tokens) - n + 1):
        if tokens[start : start + n] == wanted:
            return start
    return -1


_Match = tuple[int, int, str, str]


def _matches(tokens: tuple[str, ...], vocab: MedicineVocabulary) -> list[_Match]:
    """Non-overlapping (start, end, kind, id) matches, longest names first, in text order."""
    taken = [False] * len(tokens)
    found: list[_Match] = []
    for wanted, kind, entry_id in _index(vocab):
        start = _find(tokens, wanted)
        while start >= 0:
            end = start + len(wanted)
            if not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                found.append((start, end, kind, entry_id))
            nxt = _find(tokens[end:], wanted)
            start = end + nxt if nxt >= 0 else -1
    return sorted(found)


def recognise(name: str, vocab: MedicineVocabulary | None = None) -> Recognition:
    """What a medicine name is, by the vocabulary; see the module docstring."""
    vocab = vocab or load_medicines()
    text = " ".join(name.split())
    tokens = name_tokens(text)
    matches = _matches(tokens, vocab)
    if not matches:
        return Recognition(text, None, (), problem="not a medicine name ketapath knows")
    products = list(dict.fromkeys(m[3] for m in matches if m[2] == "product"))
    named = list(dict.fromkeys(m[3] for m in matches if m[2] == "ingredient"))
    rest = _without_matches(text, tokens, matches)
    stated = _stated_strength(rest)
    if len(products) > 1:
        return Recognition(text, None, (), stated, "names more than one product")
    if products:
        product = next(p for p in vocab.products if p.id == products[0])
        extra = [i for i in named if i not in product.ingredients]
        if extra:
            return Recognition(
                text, None, (), stated, f"names {product.names[0]} and also {', '.join(extra)}"
            )
        return Recognition(text, product, product.ingredients, stated)
    # A generic name or combination ("oxycodone/acetaminophen 5/325") has no product; the
    # strengths of a combination are checked against every product made of the same
    # ingredients (_listed_strengths).
    return Recognition(text, None, tuple(named), stated)


def _without_matches(text: str, tokens: tuple[str, ...], matches: list[_Match]) -> str:
    """The name with the matched medicine names taken out, to read the strength from."""
    low = text.lower().replace("#", " no ")
    for start, end, _, _ in matches:
        words = tokens[start:end]
        pattern = r"[^a-z0-9]*".join(re.escape(w) for w in words)
        low = re.sub(rf"(?<![a-z0-9]){pattern}(?![a-z0-9])", " ", low, count=1)
    return low


def _mass_factor(unit: str) -> tuple[float, str]:
    """(factor, base unit): amounts in g become mg; micrograms stay mcg."""
    u = unit.lower()
    if u in ("mcg", "ug", "µg", "microgram", "micrograms"):
        return 1.0, "mcg"
    return _MASS_TO_MG.get(u, 1.0), "mg"


def _stated_strength(text: str) -> StatedStrength | None:
    """The strength written in the rest of a name, if any (first pattern that matches)."""
    for kind, pattern in _STRENGTH_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        raw = m.group(0).strip()
        if kind == "concentration":
            factor, base = _mass_factor(m.group(2))
            per = float(m.group(3)) if m.group(3) else 1.0
            if base != "mg" or per <= 0:
                continue
            return StatedStrength((float(m.group(1)) * factor / per,), "mg/mL", raw)
        if kind == "rate":
            factor, base = _mass_factor(m.group(2))
            amount = float(m.group(1)) * (factor * 1000 if base == "mg" else 1.0)
            return StatedStrength((amount,), "mcg/h", raw)
        if kind == "pair":
            units = {u for u in (m.group(2), m.group(4)) if u}
            if any(_mass_factor(u)[1] != "mg" or _mass_factor(u)[0] != 1.0 for u in units):
                continue
            return StatedStrength((float(m.group(1)), float(m.group(3))), "mg", raw)
        if kind == "amount":
            factor, base = _mass_factor(m.group(2))
            return StatedStrength((float(m.group(1)) * factor,), base, raw)
        return StatedStrength((float(m.group(1)),), "bare", raw)
    return None


# ------------------------------------------------------------------ amounts in one dose


def unit_kind(unit: str, vocab: MedicineVocabulary | None = None) -> UnitKind:
    """What a dose unit measures: an amount, a rate, a volume, a count of units, or other."""
    vocab = vocab or load_medicines()
    if vocab.count_form(unit) is not None:
        return "count"
    try:
        parsed = parse_unit(unit)
    except InvalidInput:
        return "other"
    dims = parsed.dimensionality
    for kind, reference in (("mass", "mg"), ("rate", "mcg/h"), ("volume", "mL")):
        if dims == parse_unit(reference).dimensionality:
            return kind  # type: ignore[return-value]
    return "other"


def is_count_unit(unit: str, vocab: MedicineVocabulary | None = None) -> bool:
    """Whether a unit counts units of a dose form ('tablets', '2 caps' -> 'caps')."""
    return (vocab or load_medicines()).count_form(unit) is not None


def _listed_strengths(rec: Recognition, vocab: MedicineVocabulary) -> tuple[Strength, ...]:
    """The product's strengths; for a generic combination, those of every product made of
    the same ingredients (reordered to the order the name gives them)."""
    if rec.product is not None:
        return rec.product.strengths
    if len(rec.ingredients) < 2:
        return ()
    out: list[Strength] = []
    for p in vocab.products:
        if set(p.ingredients) == set(rec.ingredients) and len(p.ingredients) == len(
            rec.ingredients
        ):
            order = [p.ingredients.index(i) for i in rec.ingredients]
            out += [
                Strength(amounts=tuple(s.amounts[k] for k in order), unit=s.unit, label=s.label)
                for s in p.strengths
            ]
    return tuple(out)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _same(strength: Strength, amounts: tuple[float, ...], unit: str) -> bool:
    return (
        strength.unit == unit
        and len(strength.amounts) == len(amounts)
        and all(_close(a, b) for a, b in zip(strength.amounts, amounts, strict=True))
    )


def _strength_candidates(
    rec: Recognition, vocab: MedicineVocabulary, wanted_units: tuple[str, ...]
) -> tuple[tuple[Strength, ...], DoseProblem | None]:
    """The strengths a dose could be (one, or several that may share an ingredient amount)."""
    listed = tuple(s for s in _listed_strengths(rec, vocab) if s.unit in wanted_units)
    stated = rec.stated
    name = rec.given
    if stated is not None and stated.unit == "bare":
        n = len(rec.ingredients)
        bare = tuple(s for s in listed if n == 1 and _close(s.amounts[0], stated.amounts[0]))
        if bare:
            return bare, None
        stated = None
    if stated is not None:
        if stated.unit not in wanted_units or len(stated.amounts) != len(rec.ingredients):
            return (), DoseProblem(
                "strength-unknown",
                f"{name}: the strength written ({stated.text}) does not fit this dose; "
                "record the strength per unit, or the dose in mg",
            )
        chosen = Strength(amounts=stated.amounts, unit=stated.unit, label=stated.text)
        if any(_same(s, stated.amounts, stated.unit) for s in listed):
            return (chosen,), None
        if listed or len(rec.ingredients) > 1:
            known = ", ".join(s.text for s in listed) or "none listed"
            return (), DoseProblem(
                "strength-not-listed",
                f"{name}: {stated.text} is not a strength ketapath knows for "
                f"{rec.label} (known: {known}): check by hand",
            )
        return (chosen,), None
    if listed:
        return listed, None
    return (), DoseProblem(
        "strength-unknown",
        f"{name}: the strength per unit is not given and ketapath does not know it; write the "
        "strength in the name (e.g. '20 mg', '30/500', '10 mg/5 mL', '25 mcg/h') or give the "
        "dose in mg",
    )


def _form_problem(
    rec: Recognition, form: DoseForm | None, vocab: MedicineVocabulary
) -> DoseProblem | None:
    if rec.product is None or form is None:
        return None
    families = {vocab.dose_form(f).family for f in rec.product.forms}
    if form.family in families:
        return None
    made = ", ".join(vocab.dose_form(f).name for f in rec.product.forms)
    return DoseProblem(
        "form-mismatch",
        f"{rec.given}: counted in {form.name}s, but {rec.product.names[0]} is made as "
        f"{made}: check by hand",
    )


def amount_per_dose(
    rec: Recognition, dose: float, unit: str, vocab: MedicineVocabulary | None = None
) -> tuple[tuple[IngredientAmount, ...], DoseProblem | None]:
    """The amount of each ingredient in one dose of a recognised medicine.

    An ingredient whose amount the strengths do not settle (two strengths with different
    amounts of it) is left out of the result and named in the problem.
    """
    vocab = vocab or load_medicines()
    kind = unit_kind(unit, vocab)
    label = unit.strip()
    if kind in ("mass", "rate"):
        if len(rec.ingredients) > 1:
            return (), DoseProblem(
                "combination-in-mass",
                f"{rec.given} is a combination product ({' + '.join(rec.ingredients)}): give "
                "the dose as a number of its units (e.g. 2 tablets) with the strength in the "
                f"name, not as {dose:g} {label}",
            )
        ing = rec.ingredients[0]
        return (IngredientAmount(ing, dose, label, f"{dose:g} {label}"),), None
    if kind == "count":
        form = vocab.count_form(unit)
        problem = _form_problem(rec, form, vocab)
        if problem is not None:
            return (), problem
        units = FAMILY_UNITS[form.family] if form is not None else ("mg",)
        return _per_unit(rec, dose, units, label, vocab)
    if kind == "volume":
        millilitres = float((dose * parse_unit(unit)).to("mL").magnitude)
        return _per_unit(rec, millilitres, ("mg/mL",), "mL", vocab)
    return (), None  # other units are reported by the caller (not an amount)


def _per_unit(
    rec: Recognition,
    count: float,
    units: tuple[str, ...],
    label: str,
    vocab: MedicineVocabulary,
) -> tuple[tuple[IngredientAmount, ...], DoseProblem | None]:
    candidates, problem = _strength_candidates(rec, vocab, units)
    if problem is not None:
        return (), problem
    out: list[IngredientAmount] = []
    unsettled: list[str] = []
    for k, ing in enumerate(rec.ingredients):
        amounts = {s.amounts[k] for s in candidates}
        if len(amounts) != 1:
            unsettled.append(ing)
            continue
        per = amounts.pop()
        unit = candidates[0].unit
        per_unit = "mg" if unit == "mg/mL" else unit
        strength = candidates[0].text if len(candidates) == 1 else f"{per:g} {unit}"
        basis = f"{count:g} {label} x {per:g} {unit} {ing} ({strength})"
        out.append(IngredientAmount(ing, count * per, per_unit, basis))
    if unsettled:
        known = ", ".join(s.text for s in candidates)
        return tuple(out), DoseProblem(
            "strength-unknown",
            f"{rec.given}: the strength is not given and it is made in more than one "
            f"({known}); write the strength in the name (e.g. '{candidates[0].text}')",
            tuple(unsettled),
        )
    return tuple(out), None
