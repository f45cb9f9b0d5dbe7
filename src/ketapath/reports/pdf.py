"""What the PDFs ketapath writes share: the fonts, and text a font can show.

fpdf2's core fonts (Helvetica) hold latin-1 only. Letters name people and medicines whose
spelling may need more, so they use DejaVu Sans when it can be found: matplotlib (a
dependency of ketapath) ships DejaVu Sans in its ``mpl-data/fonts/ttf`` folder under the
DejaVu fonts licence (Bitstream Vera terms, free to use, embed and redistribute), so the two
README commands install it; ketapath bundles no font of its own. The folder is found without
importing matplotlib. A character DejaVu Sans has no glyph for (Chinese script, emoji) is
printed as ``?`` (the HTML keeps it). When the font is missing, text falls back to the core
font: common
punctuation is replaced by its latin-1 look-alike (``REPLACEMENTS``), accents are kept where
latin-1 has them, and any other character is shown as ``?``.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from functools import cache
from pathlib import Path

from fpdf import FPDF

FONT = "Helvetica"
UNICODE_FONT = "DejaVu"
# Characters the core fonts lack, written as their nearest latin-1 text.
REPLACEMENTS = {
    "\u2013": "-",
    "\u2014": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2192": "->",
    "\u2022": "-",
}
_DEJAVU_FILES = {
    "": "DejaVuSans.ttf",
    "B": "DejaVuSans-Bold.ttf",
    "I": "DejaVuSans-Oblique.ttf",
    "BI": "DejaVuSans-BoldOblique.ttf",
}


def latin1(text: str) -> str:
    """Text the PDF core fonts can show: common punctuation replaced, accents kept where
    latin-1 has them, anything else decomposed or shown as '?'."""
    out = []
    for char in text:
        char = REPLACEMENTS.get(char, char)
        try:
            char.encode("latin-1")
        except UnicodeEncodeError:
            char = (
                unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode("latin-1")
                or "?"
            )
        out.append(char)
    return "".join(out)


def clip(pdf: FPDF, text: str, width: float) -> str:
    """``text`` cut with '...' to fit ``width`` in the PDF's current font."""
    if pdf.get_string_width(latin1(text)) <= width:
        return text
    while text and pdf.get_string_width(latin1(text + "...")) > width:
        text = text[:-1]
    return text + "..."


@cache
def unicode_font_files() -> dict[str, Path] | None:
    """DejaVu Sans (regular, bold, italic, bold italic) as shipped by matplotlib, or None."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"
    files = {style: folder / name for style, name in _DEJAVU_FILES.items()}
    return files if all(path.is_file() for path in files.values()) else None


def use_unicode_font(pdf: FPDF) -> str:
    """Add DejaVu Sans to ``pdf`` when it can be found; the family to use (else Helvetica)."""
    files = unicode_font_files()
    if files is None:
        return FONT
    for style, path in files.items():
        pdf.add_font(UNICODE_FONT, style, str(path))
    return UNICODE_FONT


@cache
def _unicode_glyphs() -> frozenset[int]:
    """The code points DejaVu Sans has a glyph for (read once with fontTools, which fpdf2
    depends on)."""
    from fontTools.ttLib import TTFont

    files = unicode_font_files()
    if files is None:
        return frozenset()
    with TTFont(str(files[""]), lazy=True) as font:
        return frozenset(font.getBestCmap())


def showable(text: str, family: str) -> str:
    """``text`` as the family can show it: in DejaVu, a character it has no glyph for
    (Chinese script, emoji) becomes '?', never a blank; in the core font, latin-1."""
    if family != UNICODE_FONT:
        return latin1(text)
    glyphs = _unicode_glyphs()
    return "".join(char if ord(char) in glyphs or char in "\n\r\t" else "?" for char in text)
