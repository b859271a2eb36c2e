"""The Jinja2 environment and the WeasyPrint URL fetcher: the two gates strangers' text passes.

Every template is autoescaped and undefined names are errors. Text from Webex goes through the
``v`` filter: escaped, every invisible or direction-changing character (zero-width spaces,
right-to-left overrides, control characters) and every character the bundled fonts cannot draw
shown as its code point (``U+202E``), and overlong values cut with a visible marker. The URL
fetcher serves files under ``templates/`` and refuses everything else — ``file:///etc/passwd``,
``http://…``, ``data:`` — so a name that smuggles markup or CSS in can never make the renderer
fetch anything.
"""

from __future__ import annotations

import functools
import mimetypes
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from reporting.report.context import FLAG_LABELS, NOT_TESTABLE_REASONS, STATUS_LABELS
from reporting.resources import templates_dir

if TYPE_CHECKING:  # Jinja2 and urllib load with the report, not with every question asked
    from jinja2 import Environment

FONT_FILES = (
    "NotoSans-Regular.ttf",
    "NotoSansArabic-Regular.ttf",
    "NotoSansHebrew-Regular.ttf",
    "NotoSansDevanagari-Regular.ttf",
    "WenQuanYiMicroHei.ttf",
)
DEFAULT_LIMIT = 160
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@functools.cache
def covered_code_points() -> frozenset[int]:
    """Every code point one of the bundled fonts can draw."""
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

    points: set[int] = set()
    for name in FONT_FILES:
        font = TTFont(templates_dir() / "fonts" / name, lazy=True)
        points.update(font.getBestCmap())
        font.close()
    return frozenset(points)


def _drawable_ascii(text: str) -> bool:
    """Printable ASCII only: every bundled font draws it (a test checks), so such text needs no
    look at the fonts — which keeps `investigate` from loading them for ordinary answers."""
    return text.isascii() and text.isprintable()


def _needs_code_point(ch: str, covered: frozenset[int]) -> bool:
    if ch == " ":
        return False
    return unicodedata.category(ch) in _HIDDEN_CATEGORIES or ord(ch) not in covered


def visible(value: Any, limit: int = DEFAULT_LIMIT) -> Markup:
    """A stranger's value as safe markup: escaped, invisible characters shown, length capped."""
    if value is None or value == "":
        return Markup('<span class="none">—</span>')
    text = str(value)
    total = len(text)
    if total > limit:
        text = text[:limit]
    if _drawable_ascii(text) and total <= limit:
        return Markup(str(escape(text)))  # noqa: S704 - escaped
    covered = covered_code_points()
    out: list[str] = []
    run: list[str] = []
    for ch in text:
        if _needs_code_point(ch, covered):
            if run:
                out.append(str(escape("".join(run))))
                run = []
            out.append(f'<span class="cp">U+{ord(ch):04X}</span>')
        else:
            run.append(ch)
    if run:
        out.append(str(escape("".join(run))))
    if total > limit:
        out.append(f'<span class="trunc"> … [{total:,} characters; cut here]</span>')
    return Markup("".join(out))  # noqa: S704 - every piece above is escaped or a fixed tag


def plain_text(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """Like :func:`visible` but plain text (for attributes, bookmarks and PDF metadata)."""
    if value is None:
        return ""
    text = str(value)
    cut = len(text) > limit
    if _drawable_ascii(text[:limit]):
        return text[:limit] + " …" if cut else text
    covered = covered_code_points()
    text = "".join(
        f"[U+{ord(ch):04X}]" if _needs_code_point(ch, covered) else ch for ch in text[:limit]
    )
    return text + " …" if cut else text


def number(value: Any) -> str:
    """Thousands separated: ``12,345``."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


@functools.cache
def environment() -> Environment:
    """The report's Jinja2 environment (autoescape, StrictUndefined, the report's filters)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=False,
    )
    env.filters["v"] = visible
    env.filters["plain"] = plain_text
    env.filters["num"] = number
    env.filters["status_label"] = lambda s: STATUS_LABELS.get(s, s)
    env.filters["flag_label"] = lambda s: FLAG_LABELS.get(s, s)
    env.filters["reason_label"] = lambda s: NOT_TESTABLE_REASONS.get(s, s)
    env.filters["isolate"] = isolate
    return env


def isolate(text: str) -> str:
    """``text`` as a bidi isolate (FSI … PDI): a right-to-left title inside a left-to-right line
    keeps to itself, and the date after it is not reordered into it."""
    return f"\u2068{text}\u2069"


def _weasy_fetcher_base() -> type:
    from weasyprint import URLFetcher

    base: type = URLFetcher
    return base


class AssetFetcherError(ValueError):
    """The renderer asked for something that is not one of the report's own files."""


def make_fetcher() -> Any:
    """A WeasyPrint URL fetcher that serves only files under ``templates/``."""
    from urllib.parse import unquote, urlsplit
    from urllib.request import url2pathname

    from weasyprint.urls import URLFetcherResponse

    base = _weasy_fetcher_base()
    root = templates_dir().resolve()

    class AssetFetcher(base):  # type: ignore[misc, valid-type]
        """Serves ``file:`` URLs inside the templates folder; refuses every other URL."""

        refused: list[str]

        def __init__(self) -> None:
            super().__init__(allowed_protocols=("file",), allow_redirects=False, timeout=1)
            self.refused = []
            self.served: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            parts = urlsplit(url)
            if parts.scheme == "file" and parts.netloc in ("", "localhost"):
                path = Path(url2pathname(unquote(parts.path))).resolve()
                if path.is_relative_to(root) and path.is_file():
                    self.served.append(url)
                    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(
                        url, body=path.read_bytes(), headers={"Content-Type": mime}
                    )
            self.refused.append(url)
            raise AssetFetcherError(
                f"the report renders only its own assets; refused {url[:200]!r}"
            )

    return AssetFetcher()


def templates_base_url() -> str:
    """The base URL relative asset references resolve against."""
    return templates_dir().resolve().as_uri() + "/"
