"""Schema of ``instruments.yaml``: questionnaires, their items, scales and scoring rules.

An instrument is data, not code: its items (with the answer range each accepts), the scales
computed from them (which items, summed or averaged, any multiplier), the published rule for
missing items, the interpretation bands, and a source for each. The scoring logic lives in
:mod:`ketapath.domain.instruments` and is the same for every instrument.

The schema checks the data against itself when the file is loaded, so that a typing slip in a
clinical number stops the program instead of mis-scoring a patient:

- every item a scale names exists, and no item id or alias is used twice;
- the published range written beside each scale equals the range its items allow;
- bands start at the bottom of that range and rise strictly;
- a missing-item rule never allows every item of a scale to be missing.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import pairwise
from typing import Literal

from pydantic import Field, model_validator

from ketapath.knowledge.base import Entry, Source, Strict, cites_in, load_entries
from ketapath.knowledge.bibliography import bibliography

FILENAME = "instruments.yaml"
KIND = "instruments"

AnswerKind = Literal["integer", "yes_no"]
Combine = Literal["sum", "mean"]
Direction = Literal["higher_is_worse", "higher_is_better"]


class ResponseScale(Strict):
    """The answers one item accepts: whole numbers from ``minimum`` to ``maximum``.

    ``yes_no`` items accept yes/no (scored 1/0); their range is fixed at 0-1.
    ``anchors`` names some or all of the values, as printed on the form.
    """

    kind: AnswerKind = "integer"
    minimum: int = 0
    maximum: int
    anchors: dict[int, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> ResponseScale:
        if self.maximum <= self.minimum:
            raise ValueError(f"maximum {self.maximum} must exceed minimum {self.minimum}")
        if self.kind == "yes_no" and (self.minimum, self.maximum) != (0, 1):
            raise ValueError("a yes_no scale runs from 0 (no) to 1 (yes)")
        outside = [v for v in self.anchors if not self.minimum <= v <= self.maximum]
        if outside:
            raise ValueError(f"anchors outside {self.minimum}-{self.maximum}: {outside}")
        return self


class Item(Strict):
    """One question. ``label`` is a short paraphrase, never licensed wording."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    number: str = Field(min_length=1, description="The item's number on the printed form.")
    label: str = Field(min_length=2)
    aliases: tuple[str, ...] = ()
    response: ResponseScale | None = Field(
        default=None, description="Overrides the instrument's default response scale."
    )


class MissingRule(Strict):
    """What to do when some items of a scale are unanswered.

    - ``max_missing``: the most items that may be missing for the scale still to be scored
      (0 means every item is needed);
    - ``method``: ``prorate`` scales the sum of the answered items up to the full item count
      (the same as giving each missing item the mean of the answered ones); ``mean_of_answered``
      averages the answered items (for scales scored as a mean); ``none`` when max_missing is 0.
    """

    max_missing: int = Field(ge=0)
    method: Literal["none", "prorate", "mean_of_answered"]
    rule: str = Field(min_length=5, description="The rule in words, as the source gives it.")
    source: Source
    verified: str = Field(min_length=3, description="What was checked, and against what.")

    @model_validator(mode="after")
    def _check(self) -> MissingRule:
        if (self.max_missing == 0) != (self.method == "none"):
            raise ValueError("method is 'none' exactly when max_missing is 0")
        return self


class Band(Strict):
    """An interpretation band: applies from ``at_least`` up to the next band's start."""

    at_least: float
    label: str = Field(min_length=1)


class Scale(Strict):
    """A score computed from some items: a total or a subscale."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    items: tuple[str, ...] = Field(min_length=1)
    combine: Combine
    multiplier: float = Field(default=1.0, gt=0)
    published_range: tuple[float, float]
    direction: Direction = "higher_is_worse"
    missing: MissingRule
    bands: tuple[Band, ...] = ()
    bands_source: Source | None = None
    bands_verified: str = ""
    note: str = ""

    @model_validator(mode="after")
    def _check(self) -> Scale:
        if len(set(self.items)) != len(self.items):
            raise ValueError(f"scale {self.id}: an item is listed twice")
        if self.missing.max_missing >= len(self.items):
            raise ValueError(
                f"scale {self.id}: max_missing {self.missing.max_missing} would allow "
                f"all {len(self.items)} items to be missing"
            )
        if self.combine == "sum" and self.missing.method == "mean_of_answered":
            raise ValueError(f"scale {self.id}: a summed scale is prorated, not averaged")
        if self.combine == "mean" and self.missing.method == "prorate":
            raise ValueError(f"scale {self.id}: a mean scale uses mean_of_answered")
        if self.bands:
            if not self.bands_source:
                raise ValueError(f"scale {self.id}: bands need a bands_source")
            starts = [b.at_least for b in self.bands]
            if any(b <= a for a, b in pairwise(starts)):
                raise ValueError(f"scale {self.id}: bands must rise strictly: {starts}")
            if starts[0] != self.published_range[0]:
                raise ValueError(
                    f"scale {self.id}: the first band starts at {starts[0]}, "
                    f"not at the bottom of the range {self.published_range[0]}"
                )
            if starts[-1] > self.published_range[1]:
                raise ValueError(f"scale {self.id}: a band starts above the range")
        return self


class Alert(Strict):
    """A message raised by one item's answer (e.g. PHQ-9 item 9), whatever the total."""

    item: str
    at_least: int | None = Field(default=None, description="Raise when the answer is >= this.")
    when_missing: bool = Field(default=False, description="Raise when the item is unanswered.")
    message: str = Field(min_length=5)
    source: Source

    @model_validator(mode="after")
    def _check(self) -> Alert:
        if self.at_least is None and not self.when_missing:
            raise ValueError("an alert needs at_least or when_missing")
        return self


class Instrument(Entry):
    """One questionnaire or rating, ready to score."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    short_name: str
    name: str
    purpose: str
    recall_period: str = ""
    licence: str = Field(min_length=3, description="Who holds the rights; what we may reproduce.")
    response: ResponseScale = Field(description="Default answer scale for the items.")
    items: tuple[Item, ...] = Field(min_length=1)
    scales: tuple[Scale, ...] = Field(min_length=1)
    total_scale: str | None = Field(
        default=None, description="The scale reported as the instrument's total, if it has one."
    )
    alerts: tuple[Alert, ...] = ()
    verified: str = Field(min_length=3, description="What was checked, and against what.")
    notes: str = ""

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    def response_for(self, item_id: str) -> ResponseScale:
        """The answer scale of one item (its own, or the instrument's default)."""
        own = self.item(item_id).response
        return own if own is not None else self.response

    def scale(self, scale_id: str) -> Scale:
        for sc in self.scales:
            if sc.id == scale_id:
                return sc
        raise KeyError(scale_id)

    def computed_range(self, scale: Scale) -> tuple[float, float]:
        """The range a scale can take, from its items' answer ranges."""
        lows = [self.response_for(i).minimum for i in scale.items]
        highs = [self.response_for(i).maximum for i in scale.items]
        if scale.combine == "sum":
            return (sum(lows) * scale.multiplier, sum(highs) * scale.multiplier)
        return (min(lows) * scale.multiplier, max(highs) * scale.multiplier)

    @model_validator(mode="after")
    def _check_references(self) -> Instrument:
        names: list[str] = []
        for it in self.items:
            names.append(it.id)
            names.extend(it.aliases)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"item ids or aliases used twice: {', '.join(dupes)}")
        ids = {it.id for it in self.items}
        scale_ids = [sc.id for sc in self.scales]
        if len(set(scale_ids)) != len(scale_ids):
            raise ValueError("a scale id is used twice")
        for sc in self.scales:
            unknown = [i for i in sc.items if i not in ids]
            if unknown:
                raise ValueError(f"scale {sc.id} names unknown items: {', '.join(unknown)}")
            computed = self.computed_range(sc)
            if tuple(float(x) for x in sc.published_range) != computed:
                raise ValueError(
                    f"scale {sc.id}: published_range {list(sc.published_range)} does not match "
                    f"the range its items allow {list(computed)}"
                )
        if self.total_scale is not None and self.total_scale not in scale_ids:
            raise ValueError(f"total_scale {self.total_scale} is not a scale")
        for alert in self.alerts:
            if alert.item not in ids:
                raise ValueError(f"alert names unknown item {alert.item}")
        return self


@lru_cache(maxsize=1)
def load_instruments() -> tuple[Instrument, ...]:
    """Every instrument in the knowledge base, validated (loaded once per process)."""
    parsed = load_entries(FILENAME, Instrument, kind=KIND)
    bibliography().check(cites_in(parsed), FILENAME)
    return tuple(parsed.entries)
