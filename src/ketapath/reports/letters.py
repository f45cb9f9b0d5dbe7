"""Letters after a course on paper and on screen: one template per kind, HTML and PDF.

Each kind of letter has one Jinja template (``reports/templates/letters/<kind>.html``, on a
shared base ``_letter.html``) that turns a version's :class:`~ketapath.domain.letters.
LetterFacts` and its :class:`Stamp` (version, drafted by, signed by) into the letter's body:
HTML of the few tags fpdf2's ``write_html`` lays out (headings, paragraphs, lists, tables,
bold, italic, small print). That one body is:

- wrapped into a standalone HTML document (``document``; stored with the version, served as
  ``text/html`` and shown on the letter's page), and
- laid out as an A4 PDF by fpdf2's ``write_html`` (``pdf``), with a footer naming the
  patient, the letter, its version and the page,

so every number and date in the PDF is the same text as in the HTML. The PDF uses DejaVu Sans
when it is installed (``ketapath.reports.pdf``), else the core font with latin-1 text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import TextEmphasis
from fpdf.fonts import FontFace, TextStyle
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ketapath.domain.letters import LetterFacts
from ketapath.reports.pdf import clip, showable, use_unicode_font

TEMPLATES = Path(__file__).parent / "templates"
BODY_START = "<!-- letter body -->"
BODY_END = "<!-- end of letter body -->"
_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Stamp:
    """What belongs to a version rather than to the letter's content: its number, who drafted
    it, who signed it and when (clinic time, in words), and the digest of its facts."""

    version: int
    drafted_by: str
    drafted_at: str
    digest: str
    signed_by: str | None = None
    signed_at: str | None = None

    @property
    def signed(self) -> bool:
        return self.signed_by is not None


def body(facts: LetterFacts, stamp: Stamp) -> str:
    """The letter's body: the HTML the page shows and the PDF lays out."""
    template = _env.get_template(f"letters/{facts.kind}.html")
    return template.render(f=facts, stamp=stamp).strip()


def document(facts: LetterFacts, stamp: Stamp) -> str:
    """The letter as a standalone HTML document (its own small style sheet)."""
    return _env.get_template("letters/document.html").render(
        f=facts, stamp=stamp, body=body(facts, stamp), start=BODY_START, end=BODY_END
    )


def body_of(stored: str) -> str:
    """The body of a stored document (what ``body`` made when the version was drafted)."""
    start, end = stored.find(BODY_START), stored.find(BODY_END)
    if start < 0 or end < start:
        return stored
    return stored[start + len(BODY_START) : end].strip()


class _LetterPdf(FPDF):
    """A4 portrait; the footer names the patient, the letter, its version and the page."""

    def __init__(self, facts: LetterFacts, stamp: Stamp) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.family = use_unicode_font(self)
        status = f"signed by {stamp.signed_by}" if stamp.signed else "DRAFT, not signed"
        self.footer_text = showable(
            f"{facts.patient_name}, born {facts.birth_date} - {facts.title}, version "
            f"{stamp.version} ({status})",
            self.family,
        )
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(auto=True, margin=18)
        self.set_title(showable(facts.title, self.family))
        self.set_author(showable(facts.clinic_name, self.family))
        self.set_creator("ketapath")

    def font_face(self) -> FontFace:
        """The face every table cell of the letter starts from: the plain body face. (fpdf2's
        ``write_html`` sets fonts lazily, so the face current when a row is added can be the
        bold of the text before the table; a heading cell is still bold by its own style.)"""
        return FontFace(family=self.family, emphasis=TextEmphasis.NONE, size_pt=TABLE_PT)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(self.family, "", 7.5)
        self.set_text_color(90, 90, 90)
        self.cell(self.epw - 28, 5, clip(self, self.footer_text, self.epw - 30))
        self.cell(28, 5, f"Page {self.page_no()} of {{nb}}", align="R")


HEADING = "#1f3a5f"
BODY_PT = 9.5
TABLE_PT = 9.0
# A section heading starts a new page when less than this is left below it.
KEEP_WITH_HEADING_MM = 40
TAG_STYLES = {
    "h1": TextStyle(color=HEADING, font_size_pt=17, t_margin=2, b_margin=2),
    "h2": TextStyle(color=HEADING, font_size_pt=12.5, t_margin=5, b_margin=1.5),
    "h3": TextStyle(color=HEADING, font_size_pt=10.5, t_margin=3, b_margin=1),
}


def pdf(facts: LetterFacts, stamp: Stamp, html_body: str | None = None) -> bytes:
    """The letter as an A4 PDF, laid out from the same body as the HTML."""
    out = _LetterPdf(facts, stamp)
    out.add_page()
    text = showable(html_body if html_body is not None else body(facts, stamp), out.family)
    for part in _sections(text):
        # a section's heading is not left alone at the foot of a page
        if part.startswith("<h2") and out.get_y() > out.h - out.b_margin - KEEP_WITH_HEADING_MM:
            out.add_page()
        out.set_font(out.family, "", BODY_PT)
        out.write_html(
            part,
            font_family=out.family,
            tag_styles=TAG_STYLES,
            li_prefix_color=(31, 58, 95),
            ul_bullet_char="\u2022" if out.family != "Helvetica" else "-",
            warn_on_tags_not_matching=False,
        )
    return bytes(out.output())


def _sections(html_body: str) -> list[str]:
    """The body cut before each ``<h2>`` (the templates put no h2 inside a table or a list)."""
    parts = re.split(r"(?=<h2[ >])", html_body)
    return [p for p in parts if p.strip()]


def render(facts: LetterFacts, stamp: Stamp) -> tuple[str, bytes]:
    """The letter's HTML document and its PDF, from one body."""
    html_body = body(facts, stamp)
    full = _env.get_template("letters/document.html").render(
        f=facts, stamp=stamp, body=html_body, start=BODY_START, end=BODY_END
    )
    return full, pdf(facts, stamp, html_body)


def filename(facts: LetterFacts, stamp: Stamp, extension: str) -> str:
    """A download's name: ``gp-letter-order-12-v3.pdf``."""
    kind = facts.kind.replace("_", "-")
    return f"{kind}-order-{facts.order_id}-v{stamp.version}.{extension}"
