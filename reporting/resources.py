"""Where the Alembic scripts and report templates are, installed or in a source checkout.

A wheel carries them inside the package (``reporting/_migrations``, ``reporting/_templates``,
see ``pyproject.toml``); a source checkout or editable install has them at the top level.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _locate(installed: str, source: str) -> Path:
    inside = _PACKAGE / installed
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / source


def migrations_dir() -> Path:
    """The Alembic script directory."""
    return _locate("_migrations", "migrations")


def templates_dir() -> Path:
    """The Jinja2 templates and the print stylesheet and fonts beside them."""
    return _locate("_templates", "templates")
