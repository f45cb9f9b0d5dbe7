"""The controlled-drug ledger's reports on paper and in spreadsheets: CSV and PDF.

The reports themselves (what each holds, as typed data) are made by
``ketapath.services.ledger_reports``; this module only lays them out:

- CSV (``to_csv``): one header row, then one row per line; amounts in mg to 0.001 as text,
  written by the ``csv`` module (RFC 4180 quoting, CRLF line ends).
- PDF (``to_pdf``): A4 landscape, fpdf2's core Helvetica font (text is made safe for
  latin-1 first: ``ketapath.reports.pdf.latin1``). Each page carries the
  title, the registrant, the regulation and a page number; the first page says when and by
  whom the report was made (in the clinic's time zone); the last pages list the requirements
  the report answers with their citations. The text is real text, so it can be searched,
  copied and read back (tests read it with pypdf).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from fpdf import FPDF
from fpdf.fonts import FontFace

from ketapath.reports.pdf import FONT, clip, latin1
from ketapath.services.ledger_reports import (
    Entry,
    InventoryLine,
    RegisterEntry,
    Report,
    ReportHeading,
    UsInventory,
    UsRecords,
)

T = TypeVar("T")
# A table row must fit on one page (fpdf2 refuses a taller one): a cell's text is cut at this
# many characters in the PDF, and said so; the CSV and JSON carry every character.
MAX_CELL_CHARS = 300
CUT_MARK = " [cut: in full in the CSV]"
# A column reads a line, so a column of any line reads a register line too.
L = TypeVar("L", contravariant=True)


@dataclass(frozen=True)
class Column(Generic[L]):
    """A column: its heading, how to read a line, its share of the PDF width and alignment."""

    heading: str
    value: Callable[[L], object]
    width: float = 1.0
    align: str = "LEFT"


def _text(value: object) -> str:
    if value is None:
        return ""
    return str(value)


def _party(entry: Entry) -> str:
    """The patient or the supplier of a line, with the address (and for a receipt the
    supplier's registration and invoice)."""
    if entry.supplier_name:
        parts = [entry.supplier_name, entry.supplier_address or ""]
        if entry.supplier_registration:
            parts.append(f"reg. {entry.supplier_registration}")
        if entry.invoice_number:
            parts.append(f"invoice {entry.invoice_number}")
        if entry.received_on:
            parts.append(f"received {entry.received_on}")
        return "; ".join(p for p in parts if p)
    if entry.patient_name:
        return f"{entry.patient_name}; {entry.patient_address}"
    return ""


def _people(entry: Entry) -> str:
    parts = [f"by {entry.recorded_by}"]
    if entry.administered_by:
        parts.append(f"administered by {entry.administered_by}")
    if entry.prescriber and entry.kind == "dispense":
        parts.append(f"prescriber {entry.prescriber}")
    if entry.witness:
        parts.append(f"witness {entry.witness}")
    return "; ".join(parts)


def _remarks(entry: Entry) -> str:
    parts = [entry.note]
    if entry.manner:
        parts.append(f"Manner: {entry.manner}.")
    if entry.reason:
        parts.append(f"Reason: {entry.reason}")
    return " ".join(p for p in parts if p)


def _when(entry: Entry) -> str:
    return f"{entry.day} {entry.time}"


# --- the columns of each report ----------------------------------------------------------

INVENTORY_COLUMNS: tuple[Column[InventoryLine], ...] = (
    Column("Substance", lambda x: x.substance, 0.8),
    Column("Product", lambda x: x.product_name, 2.0),
    Column("Product code", lambda x: x.product_code or "not recorded", 0.9),
    Column("Finished form", lambda x: x.finished_form, 1.3),
    Column("Container", lambda x: x.container, 1.0),
    Column("Lot", lambda x: x.lot, 1.0),
    Column("Expiry", lambda x: x.expiry, 0.9),
    Column("Location", lambda x: x.location, 1.1),
    Column("Full containers", lambda x: x.full_containers, 0.9, "RIGHT"),
    Column("Opened container (mL)", lambda x: x.opened_container_ml, 1.0, "RIGHT"),
    Column("Balance (mg)", lambda x: x.balance_mg, 1.0, "RIGHT"),
)

RECORDS_CSV: tuple[Column[Entry], ...] = (
    Column("Line", lambda x: x.seq),
    Column("Date", lambda x: x.day),
    Column("Time", lambda x: x.time),
    Column("Entry", lambda x: x.label),
    Column("Product", lambda x: x.product_name),
    Column("Finished form", lambda x: x.finished_form),
    Column("Lot", lambda x: x.lot),
    Column("Location", lambda x: x.location),
    Column("Containers", lambda x: x.containers),
    Column("Quantity (mg)", lambda x: x.quantity_mg),
    Column("Volume (mL)", lambda x: x.volume_ml),
    Column("Stock change (mg)", lambda x: x.stock_change_mg),
    Column("Patient", lambda x: x.patient_name),
    Column("Patient address", lambda x: x.patient_address),
    Column("Prescriber", lambda x: x.prescriber),
    Column("Supplier", lambda x: x.supplier_name),
    Column("Supplier address", lambda x: x.supplier_address),
    Column("Supplier registration", lambda x: x.supplier_registration),
    Column("Invoice", lambda x: x.invoice_number),
    Column("Received on", lambda x: x.received_on),
    Column("Recorded by", lambda x: x.recorded_by),
    Column("Administered by", lambda x: x.administered_by),
    Column("Witness", lambda x: x.witness),
    Column("Manner", lambda x: x.manner),
    Column("Reason", lambda x: x.reason),
    Column("Corrects line", lambda x: x.corrects_seq),
    Column("Resolves line", lambda x: x.resolves_seq),
    Column("Note", lambda x: x.note),
)

RECORDS_PDF: tuple[Column[Entry], ...] = (
    Column("Line", lambda x: x.seq, 0.45, "RIGHT"),
    Column("Date and time", _when, 0.95),
    Column("Entry", lambda x: x.label, 0.9),
    Column("Product and lot", lambda x: f"{x.product_name}; lot {x.lot}", 1.45),
    Column("Containers", lambda x: x.containers, 0.75, "RIGHT"),
    Column("Quantity (mg)", lambda x: x.quantity_mg, 0.9, "RIGHT"),
    Column("Stock change (mg)", lambda x: x.stock_change_mg, 0.9, "RIGHT"),
    Column("Patient or supplier (address)", _party, 2.25),
    Column("Who", _people, 1.95),
    Column("Manner, reason, correction", _remarks, 2.4),
)

REGISTER_CSV: tuple[Column[RegisterEntry], ...] = (
    *RECORDS_CSV,
    Column("Balance (mg)", lambda x: x.balance_mg),
)


def _obtained(entry: Entry) -> str:
    return _party(entry) if entry.kind == "receipt" else ""


def _supplied_to(entry: Entry) -> str:
    return _party(entry) if entry.patient_name else ""


REGISTER_PDF: tuple[Column[RegisterEntry], ...] = (
    Column("Line", lambda x: x.seq, 0.45, "RIGHT"),
    Column("Date and time", _when, 0.95),
    Column("Entry", lambda x: x.label, 0.9),
    Column("Lot", lambda x: x.lot, 1.0),
    Column("Obtained from (name, address)", _obtained, 1.8),
    Column("Supplied to (name, address)", _supplied_to, 1.6),
    Column("Prescriber", lambda x: x.prescriber, 1.1),
    Column("Administered by", lambda x: x.administered_by, 1.0),
    Column("Witness", lambda x: x.witness, 0.9),
    Column("Quantity (mg)", lambda x: x.quantity_mg, 0.85, "RIGHT"),
    Column("In / out (mg)", lambda x: x.stock_change_mg, 0.85, "RIGHT"),
    Column("Balance (mg)", lambda x: x.balance_mg, 0.9, "RIGHT"),
    Column("Notes", lambda x: " ".join(p for p in (x.note, _manner(x), _reason(x)) if p), 1.9),
)


def _manner(entry: Entry) -> str:
    return f"Manner: {entry.manner}." if entry.manner else ""


def _reason(entry: Entry) -> str:
    return f"Reason: {entry.reason}" if entry.reason else ""


# --- CSV ---------------------------------------------------------------------------------


def _csv(
    columns: Sequence[Column[T]], rows: Sequence[T], extra: Sequence[tuple[str, str]] = ()
) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.heading for c in columns] + [name for name, _ in extra])
    for row in rows:
        writer.writerow([_text(c.value(row)) for c in columns] + [value for _, value in extra])
    return out.getvalue()


def to_csv(report: Report) -> str:
    """The report's lines as CSV: one header row, one row per line."""
    if isinstance(report, UsInventory):
        heading = report.heading
        extra = (
            ("Inventory date", report.on.isoformat()),
            ("Taken at", f"{report.time_of_day} of business"),
            ("Registrant", heading.registrant.name),
            ("DEA registration", heading.registrant.dea_registration),
        )
        return _csv(INVENTORY_COLUMNS, report.lines, extra)
    if isinstance(report, UsRecords):
        return _csv(RECORDS_CSV, report.entries)
    return _csv(REGISTER_CSV, report.entries)


# --- PDF ---------------------------------------------------------------------------------


class _Page(FPDF):
    """A4 landscape with the report's title and registrant at the head of every page, and
    the regulation and page number at its foot."""

    def __init__(self, heading: ReportHeading, subtitle: str) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self.heading = heading
        self.subtitle = subtitle
        self.set_margins(10, 10, 10)
        self.set_auto_page_break(auto=True, margin=14)
        self.set_title(latin1(heading.title))
        self.set_author(latin1(heading.registrant.name))
        self.set_creator("ketapath")

    def header(self) -> None:
        self.set_font(FONT, "B", 12)
        self.cell(0, 6, latin1(self.heading.title), new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, "", 8.5)
        registrant = self.heading.registrant
        who = f"Registrant: {registrant.name}, {registrant.address}"
        if self.heading.jurisdiction == "US":
            who += f". DEA registration: {registrant.dea_registration}"
        self.multi_cell(0, 4, latin1(who), new_x="LMARGIN", new_y="NEXT")
        self.multi_cell(0, 4, latin1(self.subtitle), new_x="LMARGIN", new_y="NEXT")
        self.ln(1.5)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, "", 7.5)
        left = f"{self.heading.title}: {self.heading.regulation}"
        self.cell(
            self.epw - 30, 5, latin1(clip(self, left, self.epw - 32)), new_x="RIGHT", new_y="TOP"
        )
        self.cell(30, 5, f"Page {self.page_no()} of {{nb}}", align="R")


def _table(pdf: _Page, columns: Sequence[Column[T]], rows: Sequence[T]) -> None:
    total = sum(c.width for c in columns)
    pdf.set_font(FONT, "", 7.5)
    with pdf.table(
        col_widths=tuple(c.width / total * pdf.epw for c in columns),
        width=pdf.epw,
        text_align=tuple(c.align for c in columns),
        line_height=3.6,
        padding=(0.8, 1.0),
        headings_style=FontFace(emphasis="BOLD", fill_color=(225, 225, 225)),
        v_align="TOP",
    ) as table:
        heading_row = table.row()
        for column in columns:
            heading_row.cell(latin1(column.heading))
        for row in rows:
            cells = table.row()
            for column in columns:
                cells.cell(latin1(_cut(_text(column.value(row)))))


def _cut(text: str) -> str:
    if len(text) <= MAX_CELL_CHARS:
        return text
    return text[: MAX_CELL_CHARS - len(CUT_MARK)].rstrip() + CUT_MARK


def _requirements(pdf: _Page, heading: ReportHeading, notes: Sequence[str]) -> None:
    pdf.ln(3)
    for note in notes:
        pdf.set_font(FONT, "", 8)
        pdf.multi_cell(0, 4, latin1(note), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    pdf.set_font(FONT, "B", 9)
    pdf.multi_cell(
        0,
        5,
        latin1(f"What the regulation asks of this report ({heading.regulation})"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font(FONT, "", 7.5)
    for requirement in heading.requirements:
        pdf.multi_cell(
            0,
            3.8,
            latin1(f"- {requirement.text} [{requirement.citation}]"),
            new_x="LMARGIN",
            new_y="NEXT",
        )


def _generated(heading: ReportHeading) -> str:
    return f"Made {heading.generated_at_text} by {heading.generated_by}."


def to_pdf(report: Report) -> bytes:
    """The report as an A4 landscape PDF."""
    heading = report.heading
    notes: list[str] = []
    if isinstance(report, UsInventory):
        subtitle = (
            f"Inventory of {report.on} at the {report.time_of_day} of business "
            f"(balances from every ledger line before {report.as_of:%Y-%m-%d %H:%M %Z}). "
            f"{_generated(heading)}"
        )
        pdf = _Page(heading, subtitle)
        pdf.add_page()
        _table(pdf, INVENTORY_COLUMNS, report.lines)
        notes = [
            f"Total on hand: {report.total_mg} mg of {_substances(report)}.",
            report.opened_container_note,
        ]
    elif isinstance(report, UsRecords):
        subtitle = (
            f"Records of {report.date_from} to {report.date_to} (clinic dates), "
            f"{len(report.entries)} lines in the order they were made. {_generated(heading)}"
        )
        pdf = _Page(heading, subtitle)
        pdf.add_page()
        _table(pdf, RECORDS_PDF, report.entries)
        notes = ["Corrections are their own lines and name the line they correct."]
    else:
        subtitle = (
            f"Drug: {report.drug}. Product: {report.product_name} ({report.finished_form}). "
            f"Balance now: {report.balance_mg} mg. {_generated(heading)}"
        )
        pdf = _Page(heading, subtitle)
        pdf.add_page()
        _table(pdf, REGISTER_PDF, report.entries)
        notes = [
            "Quantities in mg of the drug. A correction is a new dated line naming the line "
            "it corrects; no line is ever altered."
        ]
    _requirements(pdf, heading, notes)
    return bytes(pdf.output())


def _substances(report: UsInventory) -> str:
    return ", ".join(sorted({x.substance for x in report.lines})) or "nothing"


def media_type(fmt: str) -> str:
    return {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}.get(fmt, "application/json")


def filename(report: Report, fmt: str) -> str:
    """A download's file name: ``us-inventory-2026-12-01-close.pdf`` and the like."""
    if isinstance(report, UsInventory):
        stem = f"us-inventory-{report.on}-{report.time_of_day}"
    elif isinstance(report, UsRecords):
        stem = f"us-records-{report.date_from}-to-{report.date_to}"
    else:
        stem = f"uk-register-product-{report.product_id}"
    return f"{stem}.{fmt}"


def render(report: Report, fmt: str) -> bytes:
    """The report as ``csv``, ``pdf`` or ``json`` bytes."""
    if fmt == "csv":
        return to_csv(report).encode("utf-8")
    if fmt == "pdf":
        return to_pdf(report)
    return report.model_dump_json(indent=2).encode("utf-8")
