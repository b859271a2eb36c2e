"""The display rules for strangers' text (``reporting.report.templating``)."""

from __future__ import annotations

import string

from reporting.report import templating


def test_printable_ascii_is_drawn_by_the_bundled_fonts_so_it_needs_no_font_lookup() -> None:
    # The fast path (no font loaded) is only right if every printable ASCII character is drawn
    # and none is hidden: the slow path must give the same text.
    covered = templating.covered_code_points()
    for ch in string.printable:
        if ch.isprintable():
            assert not templating._needs_code_point(ch, covered), repr(ch)


def test_the_fast_path_gives_what_the_full_rule_gives() -> None:
    samples = ["jose.angstrom@globex.example", "A < B & 'C'", "x" * 300, "Ordinary title"]
    for text in samples:
        covered = templating.covered_code_points()
        full = "".join(
            f"[U+{ord(ch):04X}]" if templating._needs_code_point(ch, covered) else ch
            for ch in text[:120]
        ) + (" …" if len(text) > 120 else "")
        assert templating.plain_text(text, 120) == full
    assert str(templating.visible("A < B")) == "A &lt; B"
    # Not ASCII, or not printable: the full rule still applies.
    assert templating.plain_text("Invoice \u202efdp.exe") == "Invoice [U+202E]fdp.exe"
    assert "U+202E" in str(templating.visible("Invoice \u202efdp.exe"))
