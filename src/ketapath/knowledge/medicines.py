"""Schema of the medicine vocabulary (``medicines.yaml``): what a medicine name means.

The vocabulary is what the opioid conversion, the interaction screen and the research view
read when a clinician writes a medicine's name:

- **ingredients**: one entry per active substance (the INN, other generic names such as
  acetaminophen or meperidine), its WHO ATC code(s), its classes, and RxNorm or dm+d codes
  only where they were verified (none is invented: an empty code means "not verified");
- **classes**: groups of ingredients the rules refer to (opioid, benzodiazepine, monoamine
  oxidase inhibitor ...), each with the ATC groups that define it where ATC has one;
- **dose forms**: tablets, capsules, patches, oral solutions ..., the words that count them
  ("2 tablets") and the unit their strength is given in (mg per tablet, mcg/h per patch, mg
  per mL of solution);
- **products**: brand and generic product names (UK and US at least), their ingredients,
  forms, route, markets and, where a label was read, their strengths (combination products
  such as co-codamol 30/500 list one amount per ingredient, in the order of ``ingredients``).

Everything is checked on load: every reference resolves, ATC codes are well formed, strengths
have one amount per ingredient in the form's unit, and no name belongs to two entries (a name
must mean one thing). Strengths are the labelled amounts (of the salt the label names, e.g.
codeine phosphate 30 mg), which is what published conversion factors are applied to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from ketapath.knowledge.base import (
    Entry,
    KnowledgeError,
    Strict,
    data_path,
    format_validation_error,
    read_yaml,
)

ID = r"^[a-z0-9][a-z0-9-]*$"
ATC_PATTERN = r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$"
ATC_GROUP_PATTERN = r"^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$"
StrengthUnit = Literal["mg", "mcg", "mcg/h", "mg/mL"]
FormFamily = Literal[
    "oral-unit", "patch", "oromucosal-unit", "liquid", "suppository", "injection", "spray"
]
Market = Literal["UK", "US", "IE", "EU", "AU", "CA"]

# The unit a count of each family's units is strengthened in.
FAMILY_UNITS: dict[str, tuple[str, ...]] = {
    "oral-unit": ("mg", "mcg"),
    "oromucosal-unit": ("mg", "mcg"),
    "suppository": ("mg", "mcg"),
    "patch": ("mcg/h",),
    "liquid": ("mg/mL",),
    "injection": ("mg/mL",),
    "spray": ("mcg", "mg"),
}


def name_tokens(text: str) -> tuple[str, ...]:
    """The words of a name as matching sees them: lower case, letters and numbers only.

    '#' reads as 'no' ("Tylenol #3" is "Tylenol No. 3"); hyphens and punctuation separate
    words ("co-codamol" is "co codamol").
    """
    low = text.lower().replace("#", " no ")
    return tuple(re.findall(r"[a-z]+|\d+(?:\.\d+)?", low))


def name_variants(name: str) -> set[tuple[str, ...]]:
    """The token sequences a name is recognised by: as written, and with its words joined
    ("co-codamol" is also "cocodamol", "MS Contin" also "MSContin")."""
    tokens = name_tokens(name)
    variants = {tokens}
    if len(tokens) > 1 and all(t.isalpha() for t in tokens):
        variants.add(("".join(tokens),))
    return variants


class MedicineClass(Entry):
    """A group of ingredients a rule can name (e.g. benzodiazepine)."""

    id: str = Field(pattern=ID)
    name: str = Field(min_length=3)
    atc_groups: tuple[str, ...] = Field(
        default=(), description="ATC groups that define the class, where ATC has one."
    )

    @model_validator(mode="after")
    def _groups(self) -> MedicineClass:
        bad = [g for g in self.atc_groups if not re.match(ATC_GROUP_PATTERN, g)]
        if bad:
            raise ValueError(f"malformed ATC groups: {', '.join(bad)}")
        return self


class Ingredient(Entry):
    """One active substance (or a food with known interactions, such as grapefruit)."""

    id: str = Field(pattern=ID)
    name: str = Field(min_length=3)
    synonyms: tuple[str, ...] = Field(default=(), description="Other generic names.")
    kind: Literal["medicine", "food"] = "medicine"
    classes: tuple[str, ...] = ()
    atc: tuple[str, ...] = ()
    rxnorm: str = Field(default="", pattern=r"^([0-9]{1,9})?$")
    dmd: str = Field(default="", pattern=r"^([0-9]{6,18})?$")

    @model_validator(mode="after")
    def _coded(self) -> Ingredient:
        if self.kind == "medicine" and not self.atc:
            raise ValueError(f"{self.id}: a medicine needs its ATC code")
        bad = [c for c in self.atc if not re.match(ATC_PATTERN, c)]
        if bad:
            raise ValueError(f"{self.id}: malformed ATC codes: {', '.join(bad)}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.synonyms)


class DoseForm(Strict):
    """A dose form, the words that count its units, and the unit of its strength."""

    id: str = Field(pattern=ID)
    name: str = Field(min_length=3)
    family: FormFamily
    counted_as: tuple[str, ...] = Field(
        default=(), description="Words for one or more units ('tablet', 'tabs')."
    )
    route: str = Field(min_length=2, description="The route a unit of this form is given by.")


class Strength(Strict):
    """One strength of a product: an amount per ingredient (in ``ingredients`` order)."""

    amounts: tuple[float, ...] = Field(min_length=1)
    unit: StrengthUnit
    label: str = Field(default="", description="As the label writes it ('10 mg/5 mL').")

    @model_validator(mode="after")
    def _positive(self) -> Strength:
        if any(not a > 0 for a in self.amounts):
            raise ValueError("every amount of a strength is above 0")
        return self

    @property
    def text(self) -> str:
        if self.label:
            return self.label
        return "/".join(f"{a:g}" for a in self.amounts) + f" {self.unit}"


class Product(Entry):
    """A product name (brand or generic), what is in it and how it is given."""

    id: str = Field(pattern=ID)
    names: tuple[str, ...] = Field(min_length=1)
    ingredients: tuple[str, ...] = Field(min_length=1)
    forms: tuple[str, ...] = Field(min_length=1)
    route: str = Field(min_length=2)
    markets: tuple[Market, ...] = Field(min_length=1)
    strengths: tuple[Strength, ...] = ()
    atc: str = Field(default="", description="The combination's ATC code, where it has one.")
    verified: str = Field(min_length=10, description="What was checked, and against what.")

    @model_validator(mode="after")
    def _check(self) -> Product:
        if self.atc and not re.match(ATC_PATTERN, self.atc):
            raise ValueError(f"{self.id}: malformed ATC code {self.atc}")
        wrong = [s.text for s in self.strengths if len(s.amounts) != len(self.ingredients)]
        if wrong:
            raise ValueError(
                f"{self.id}: each strength needs one amount per ingredient "
                f"({len(self.ingredients)}): {', '.join(wrong)}"
            )
        return self

    @property
    def is_combination(self) -> bool:
        return len(self.ingredients) > 1


class MedicineVocabulary(Strict):
    """The whole of ``medicines.yaml``, cross-checked."""

    kind: Literal["medicines"]
    version: int = Field(ge=1)
    description: str = ""
    verified: str = Field(min_length=10, description="What was verified, and where.")
    classes: tuple[MedicineClass, ...] = Field(min_length=1)
    dose_forms: tuple[DoseForm, ...] = Field(min_length=1)
    ingredients: tuple[Ingredient, ...] = Field(min_length=1)
    products: tuple[Product, ...] = ()

    @model_validator(mode="after")
    def _cross_check(self) -> MedicineVocabulary:
        problems: list[str] = []
        for label, ids in (
            ("class", [c.id for c in self.classes]),
            ("dose form", [f.id for f in self.dose_forms]),
            ("ingredient", [i.id for i in self.ingredients]),
            ("product", [p.id for p in self.products]),
        ):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                problems.append(f"duplicate {label} ids: {', '.join(twice)}")
        classes = {c.id for c in self.classes}
        forms = {f.id: f for f in self.dose_forms}
        ingredients = {i.id for i in self.ingredients}
        for ing in self.ingredients:
            problems += [f"{ing.id}: unknown class {c!r}" for c in ing.classes if c not in classes]
        for p in self.products:
            problems += [
                f"{p.id}: unknown ingredient {i!r}" for i in p.ingredients if i not in ingredients
            ]
            problems += [f"{p.id}: unknown dose form {f!r}" for f in p.forms if f not in forms]
            units = {u for f in p.forms if f in forms for u in FAMILY_UNITS[forms[f].family]}
            problems += [
                f"{p.id}: strength {s.text} is not in a unit its forms use ({', '.join(units)})"
                for s in p.strengths
                if s.unit not in units
            ]
        counted = [w.lower() for f in self.dose_forms for w in f.counted_as]
        twice = sorted({w for w in counted if counted.count(w) > 1})
        if twice:
            problems.append(f"count words used by two dose forms: {', '.join(twice)}")
        problems += self._name_clashes()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every cited entry (classes, ingredients, products), as other knowledge files list."""
        return (*self.classes, *self.ingredients, *self.products)

    def ingredient(self, ingredient_id: str) -> Ingredient:
        for ing in self.ingredients:
            if ing.id == ingredient_id:
                return ing
        raise KeyError(ingredient_id)

    def dose_form(self, form_id: str) -> DoseForm:
        for form in self.dose_forms:
            if form.id == form_id:
                return form
        raise KeyError(form_id)

    def in_class(self, class_id: str) -> tuple[Ingredient, ...]:
        """The ingredients of a class (e.g. every opioid)."""
        return tuple(i for i in self.ingredients if class_id in i.classes)

    def count_form(self, word: str) -> DoseForm | None:
        """The dose form a count word names ('tablets' -> tablet), or None."""
        low = word.strip().lower().rstrip(".")
        for form in self.dose_forms:
            if low in (w.lower() for w in form.counted_as):
                return form
        return None

    def _name_clashes(self) -> list[str]:
        owner: dict[tuple[str, ...], str] = {}
        clashes: list[str] = []
        entries: Iterable[tuple[str, tuple[str, ...]]] = [
            *((f"ingredient {i.id}", i.names) for i in self.ingredients),
            *((f"product {p.id}", p.names) for p in self.products),
        ]
        for label, names in entries:
            for name in names:
                for variant in name_variants(name):
                    if not variant:
                        clashes.append(f"{label}: the name {name!r} has no letters")
                        continue
                    other = owner.setdefault(variant, label)
                    if other != label:
                        clashes.append(f"the name {name!r} belongs to {other} and {label}")
        return clashes


FILENAME = "medicines.yaml"


@cache
def load_medicines() -> MedicineVocabulary:
    """The medicine vocabulary, validated once per process (names every problem on failure)."""
    raw = read_yaml(data_path(FILENAME))
    try:
        return MedicineVocabulary.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{FILENAME}: {format_validation_error(exc, raw)}") from exc
