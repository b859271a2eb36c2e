"""Text that extracts and searches as it reads, in every script the bundled fonts draw.

A PDF keeps glyphs, not text; readers get the text back from each font's ToUnicode map (one
string per glyph) or, where a marked-content span carries one, from its ``/ActualText``.
WeasyPrint writes one ToUnicode string per glyph, taken from the first place the glyph was drawn.
That is right for alphabets, and wrong for shaped scripts in two ways:

* **Indic scripts** (Devanagari and its relatives) draw a syllable as several glyphs in visual
  order, not in the order of the characters (``ि`` before the consonant, the reph ``र्`` after
  it), and WeasyPrint gives the whole syllable to one of its glyphs and nothing (an empty, and
  for PDF/A malformed, entry) to the others. A glyph first seen inside a syllable keeps that
  empty entry everywhere: ``शर्मा`` came out as ``श ार्मा``. No map per glyph can say this
  right, so :func:`actual_text_spans` gives each span of such text its ``/ActualText`` (the
  characters as written) while WeasyPrint draws it, and :func:`repair_to_unicode` fills every
  empty entry with the characters the glyph stands for in the font (its ``cmap``, or the
  substitutions that make it), for readers that ignore ``/ActualText``.
* **Right-to-left ligatures** (Arabic ``لى``, ``لا``): poppler (``pdftotext``, Evince,
  Okular) rebuilds right-to-left text by reversing the characters of the glyphs in visual
  order, so a ligature mapped to its characters in logical order comes out reversed: ``ليلى``
  read as ``ليىل``. :func:`repair_to_unicode` stores a ligature's characters in visual order,
  so the reversal restores them. (pypdf undoes ligatures itself and then reads such a
  ligature reversed: the two disagree, and the readers people search with were preferred.)
  Right-to-left spans get no ``/ActualText``: poppler reverses that too.

The map of glyphs to characters is derived from the bundled font files, named in
``report.css``, so it is the same on every machine and the PDF stays byte-reproducible.
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pikepdf

from reporting.resources import templates_dir

# Scripts whose syllables are drawn as glyphs out of character order (ISO 15924 blocks):
# Devanagari … Sinhala, Tibetan, Myanmar, Khmer, Balinese and the like, Devanagari Extended.
_REORDERING = re.compile(
    "[\u0900-\u0dff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u1b00-\u1bff\ua8e0-\ua8ff]"
)
_RTL_CLASSES = frozenset({"R", "AL"})
_CMAP_ENTRY = re.compile(rb"<([0-9a-fA-F]{4})>\s*<([0-9a-fA-F]*)>")
_FONT_FACE = re.compile(r"@font-face\s*{([^}]*)}")
_DESCRIPTOR = re.compile(r"([a-z-]+)\s*:\s*([^;]+);?")


def needs_actual_text(text: str) -> bool:
    """Whether a span of ``text`` must carry its characters as ``/ActualText``: it has a script
    drawn out of character order, and nothing right-to-left (which readers would reverse)."""
    if not _REORDERING.search(text):
        return False
    return not any(unicodedata.bidirectional(ch) in _RTL_CLASSES for ch in text)


@contextlib.contextmanager
def actual_text_spans() -> Iterator[None]:
    """While WeasyPrint writes a PDF, give each text span that :func:`needs_actual_text` its
    characters as ``/ActualText`` (in the span's marked content, beside its MCID when tagged).

    WeasyPrint has no option for this; its stream's ``marked`` context (which opens a text
    box's marked content) is wrapped for the duration, in this process only.
    """
    import pydyf
    from weasyprint.pdf.stream import Stream

    original = Stream.marked

    @contextlib.contextmanager
    def marked(self: Any, box: Any, tag: str) -> Iterator[None]:
        text = getattr(box, "text", None) if tag == "Span" else None
        if not text or not needs_actual_text(text):
            with original(self, box, tag):
                yield
            return
        properties = pydyf.Dictionary({"ActualText": pydyf.String(text)})
        if self._tags is not None:
            mcid = len(self._tags)
            self._tags[box] = {"tag": tag, "mcid": mcid}
            properties["MCID"] = mcid
        pydyf.Stream.begin_marked_content(self, tag, properties)
        try:
            yield
        finally:
            pydyf.Stream.end_marked_content(self)

    Stream.marked = marked
    try:
        yield
    finally:
        Stream.marked = original


@functools.cache
def bundled_fonts() -> dict[str, Path]:
    """The bundled font files by the name WeasyPrint gives them in a PDF (``MA-Devanagari``,
    ``MA-Devanagari-Bold``), from the ``@font-face`` rules of ``report.css``."""
    css = (templates_dir() / "report.css").read_text(encoding="utf-8")
    fonts: dict[str, Path] = {}
    for block in _FONT_FACE.findall(css):
        props = {k: v.strip() for k, v in _DESCRIPTOR.findall(block)}
        family = props.get("font-family", "").strip("\"'")
        source = re.search(r"url\(([^)]+)\)", props.get("src", ""))
        if not family or source is None:
            continue
        bold = props.get("font-weight", "400") in {"700", "bold"}
        name = family.replace(" ", "-") + ("-Bold" if bold else "")
        fonts[name] = templates_dir() / source.group(1).strip("\"'")
    return fonts


@functools.cache
def glyph_texts(path: Path) -> dict[int, str]:
    """What each glyph of the font at ``path`` stands for: its character in the ``cmap``, or
    else the characters of the glyphs a substitution (``GSUB``) makes it from."""
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

    font = TTFont(path, lazy=True)
    try:
        ids = {name: n for n, name in enumerate(font.getGlyphOrder())}
        texts: dict[str, str] = {}
        for code, name in sorted(font.getBestCmap().items()):
            texts.setdefault(name, chr(code))
        rules: list[tuple[list[str], str]] = []  # (inputs, output): output stands for inputs
        if "GSUB" in font:
            for lookup in font["GSUB"].table.LookupList.Lookup:
                for sub in lookup.SubTable:
                    table = sub.ExtSubTable if lookup.LookupType == 7 else sub
                    for source, target in getattr(table, "mapping", {}).items():
                        # single substitution, or multiple: the first glyph made stands for it
                        first = target if isinstance(target, str) else (target or [None])[0]
                        if first is not None:
                            rules.append(([source], first))
                    for source, targets in getattr(table, "alternates", {}).items():
                        rules.extend(([source], t) for t in targets)
                    for first, ligatures in getattr(table, "ligatures", {}).items():
                        rules.extend(([first, *lig.Component], lig.LigGlyph) for lig in ligatures)
        changed = True
        while changed:  # substitutions chain (a half form, then a conjunct made of it)
            changed = False
            for inputs, output in rules:
                if output not in texts and all(i in texts for i in inputs):
                    texts[output] = "".join(texts[i] for i in inputs)
                    changed = True
        return {ids[name]: text for name, text in texts.items() if name in ids}
    finally:
        font.close()


def _is_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in _RTL_CLASSES for ch in text) and not any(
        unicodedata.bidirectional(ch) == "L" for ch in text
    )


def repair_to_unicode(font: pikepdf.Dictionary) -> bool:
    """Repair the ToUnicode map of one font of a WeasyPrint PDF (see the module docstring):
    fill empty entries from the bundled font, and store right-to-left ligatures in visual
    order. Returns whether the map changed."""
    stream = font.get("/ToUnicode")
    if not isinstance(stream, pikepdf.Stream):
        return False
    data = stream.read_bytes()
    if b"<>" not in data and not _maybe_rtl_ligature(data):
        return False
    name = str(font.get("/BaseFont", "")).lstrip("/").split("+", 1)[-1]
    path = bundled_fonts().get(name)
    known = glyph_texts(path) if path is not None else {}

    def fix(match: re.Match[bytes]) -> bytes:
        glyph = int(match.group(1), 16)
        text = bytes.fromhex(match.group(2).decode()).decode("utf-16-be")
        if not text:
            text = known.get(glyph, "")
        if len(text) > 1 and _is_rtl(text):
            text = text[::-1]
        if not text:
            return match.group(0)
        return b"<%04x> <%s>" % (glyph, text.encode("utf-16-be").hex().encode())

    repaired = _CMAP_ENTRY.sub(fix, data)
    if repaired == data:
        return False
    stream.write(repaired)
    return True


def _maybe_rtl_ligature(cmap: bytes) -> bool:
    """Whether the map has an entry of several characters from the Hebrew–Arabic blocks."""
    return re.search(rb"<[0-9a-fA-F]{4}>\s*<0[5-8][0-9a-fA-F]{2}0[5-8]", cmap) is not None
