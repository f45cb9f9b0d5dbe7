"""Assessment forms built from the instrument definitions of the knowledge base.

Each instrument (``knowledge/data/instruments.yaml``) lists its items with the answers each
accepts; a form shows every item as a labelled group of choices, so a tablet user taps an
answer instead of typing it. The items, ranges and anchors come from the knowledge base;
the catalogue and the scoring are the service's (the same for the API and the command line).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ketapath.knowledge.instruments import Instrument
from ketapath.services import assessments


@dataclass(frozen=True)
class ItemField:
    """One question of a form: its id, printed number, short label and allowed answers."""

    id: str
    number: str
    label: str
    kind: str  # "integer" | "yes_no"
    minimum: int
    maximum: int
    anchors: dict[int, str] = field(default_factory=dict)

    @property
    def choices(self) -> list[tuple[int, str]]:
        """Every allowed answer with its text (the anchor's words where the form has them)."""
        if self.kind == "yes_no":
            return [(0, "No"), (1, "Yes")]
        return [
            (value, self.anchors.get(value, "")) for value in range(self.minimum, self.maximum + 1)
        ]


@dataclass(frozen=True)
class InstrumentForm:
    id: str
    short_name: str
    name: str
    purpose: str
    recall_period: str
    items: tuple[ItemField, ...]

    def item(self, item_id: str) -> ItemField:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)


def _form(instrument: Instrument) -> InstrumentForm:
    items = []
    for item in instrument.items:
        response = instrument.response_for(item.id)
        items.append(
            ItemField(
                id=item.id,
                number=str(item.number),
                label=item.label,
                kind=response.kind,
                minimum=response.minimum,
                maximum=response.maximum,
                anchors=dict(response.anchors),
            )
        )
    return InstrumentForm(
        id=instrument.id,
        short_name=instrument.short_name,
        name=instrument.name,
        purpose=instrument.purpose,
        recall_period=instrument.recall_period,
        items=tuple(items),
    )


def instrument_forms() -> tuple[InstrumentForm, ...]:
    """A form for every instrument the service offers (the API's /instruments catalogue)."""
    return tuple(_form(instrument) for instrument in assessments.instrument_catalogue())


def find_form(instrument_id: str) -> InstrumentForm | None:
    for form in instrument_forms():
        if form.id == instrument_id:
            return form
    return None
