"""What the console's pages show, as plain data built from the library (templates only format).

Each function answers one page's question with the same library calls the CLI makes: the month's
completeness is :func:`reporting.coverage.what_is_missing` (as ``meetaudit gaps``), an
investigation answer is the same :mod:`reporting.investigate` function as ``meetaudit
investigate``, inside a case as the settings require.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reporting.config import Settings
from reporting.coverage import what_is_missing
from reporting.db.models import HarvestRun, ReportRun
from reporting.errors import ConfigError
from reporting.periods import Window, month_of, month_window, period_from_options

MONTHS_SHOWN = 6


@dataclass
class MonthStatus:
    """One month on the overview."""

    month: str
    complete: bool
    harvested: bool
    open_gaps: int
    unstored: int
    unlisted_spans: int
    last_run: HarvestRun | None
    reports: list[ReportRun] = field(default_factory=list)

    @property
    def attention(self) -> str | None:
        """What needs doing for this month, in an officer's words, or ``None``."""
        if not self.harvested:
            return "not harvested yet: run `meetaudit monthly --month " + self.month + "`"
        if not self.complete:
            return "records incomplete: see Gaps, then harvest again"
        if not self.reports:
            return "harvested, no report yet"
        return None


def _months(settings: Settings, count: int) -> list[str]:
    now = dt.datetime.now(settings.zone)
    year, month = now.year, now.month
    out = []
    for _ in range(count):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        out.append(f"{year:04d}-{month:02d}")
    return out


def month_overview(session: Session, settings: Settings) -> list[MonthStatus]:
    """The last closed months, newest first: completeness, last run, reports."""
    out = []
    for month in _months(settings, MONTHS_SHOWN):
        window = month_window(month, settings.zone)
        missing = what_is_missing(session, window)
        runs = list(
            session.scalars(
                select(HarvestRun)
                .where(HarvestRun.window_from < window.end, HarvestRun.window_to > window.start)
                .order_by(HarvestRun.started_at.desc())
            )
        )
        reports = list(
            session.scalars(
                select(ReportRun)
                .where(
                    ReportRun.period_from == window.start,
                    ReportRun.period_to == window.end,
                    ReportRun.kind == "monthly",  # the month's reports, never a case dossier
                )
                .order_by(ReportRun.seq)
            )
        )
        open_gaps = sum(
            1 for g in missing.gaps if g.resolved_at is None and g.superseded_at is None
        )
        out.append(
            MonthStatus(
                month=month,
                complete=not missing.anything_open,
                harvested=bool(runs),
                open_gaps=open_gaps,
                unstored=len(missing.unstored),
                unlisted_spans=len(missing.unlisted),
                last_run=runs[0] if runs else None,
                reports=reports,
            )
        )
    return out


@dataclass
class GapsView:
    """The gaps page: one month's missing records, as ``meetaudit gaps --history`` lists them."""

    month: str
    window: Window
    gaps: list[Any]
    unstored: list[Any]
    unlisted: list[tuple[dt.datetime, dt.datetime]]
    complete: bool


def month_gaps(session: Session, settings: Settings, month: str | None) -> GapsView:
    """What is missing from ``month`` (default: last month), every attempt included; a
    mistyped month is a :class:`~reporting.errors.PeriodError`, as in the CLI."""
    window = period_from_options(settings.zone, (month or "").strip() or None, None, None)
    month = month_of(window, settings.zone)
    missing = what_is_missing(session, window, history=True)
    return GapsView(
        month=month,
        window=window,
        gaps=missing.gaps,
        unstored=missing.unstored,
        unlisted=missing.unlisted,
        complete=not missing.anything_open,
    )


# -- investigate --------------------------------------------------------------------------------

QUESTIONS = {
    "meeting": "Everyone in one meeting (give its id)",
    "person": "Meetings a person attended",
    "with": "Who met a person",
    "devices": "Devices a person used",
    "orgs": "Outside organisations that took part",
    "meetings": "Meetings by title",
}


@dataclass
class Answer:
    """Rows answering one question, with its columns and the case it was asked in."""

    question: str
    title: str
    columns: list[str]
    rows: list[Any]
    case: str | None
    period: str


def answer(
    session: Session, settings: Settings, question: str, *, who: str, month: str, case: str
) -> Answer:
    """Answer one investigate question as the CLI does (same functions, same rules)."""
    import dataclasses

    from reporting.cases import open_case_for_question
    from reporting.investigate import (
        attendance_of,
        co_attendees,
        describe_period,
        devices_of,
        find_meetings,
        outside_organisations,
        search_period,
    )

    if question not in QUESTIONS:
        raise ConfigError(f"unknown question {question!r}")
    case_ref = open_case_for_question(session, case.strip() or None, required=settings.require_case)
    period = search_period(settings.zone, month.strip() or None, None, None)
    needs_person = question in ("person", "with", "devices")
    if needs_person and len(who.strip()) < 2:
        raise ConfigError("say whom to look for: an email address, a name, or part of one")
    phones = settings.show_phone_numbers
    asks: dict[str, Callable[[], list[Any]]] = {
        "person": lambda: attendance_of(session, who, period, show_phone_numbers=phones),
        "with": lambda: co_attendees(session, who, settings, period),
        "devices": lambda: devices_of(session, who, settings, period),
        "orgs": lambda: outside_organisations(session, settings, period),
        "meetings": lambda: find_meetings(session, title=who or None, host=None, period=period),
    }
    if question == "meeting":
        asks["meeting"] = lambda: _roster(session, settings, who)
    rows = asks[question]()
    columns = [f.name for f in dataclasses.fields(rows[0])] if rows else []
    return Answer(
        question=question,
        title=QUESTIONS[question],
        columns=columns,
        rows=rows,
        case=case_ref,
        period=describe_period(period, settings.zone),
    )


def _roster(session: Session, settings: Settings, meeting_id: str) -> list[Any]:
    """``investigate meeting``: everyone in the meeting whose id is, or begins with, the text."""
    from reporting.investigate import meeting_ids_like, meeting_roster

    text = meeting_id.strip()
    if len(text) < 2:
        raise ConfigError("give the meeting's id, or a beginning of it (2 characters or more)")
    ids = meeting_ids_like(session, text, limit=10)
    if len(ids) > 1:
        raise ConfigError(f"{text!r} begins the ids of several meetings: {', '.join(ids)}")
    meeting, lines, _absent = meeting_roster(session, ids[0] if ids else text, settings)
    if meeting is None:
        raise ConfigError(f"no stored meeting's id is or begins with {text!r}")
    return lines


PAGE_SIZE = 100


@dataclass
class Shown:
    """One page of an answer, sorted by a column."""

    rows: list[Any]
    page: int
    pages: int
    sort: str
    descending: bool


def page_of(rows: list[Any], columns: list[str], *, sort: str, page: int) -> Shown:
    """Sort ``rows`` by ``sort`` (``-name`` descending; empty: as answered) and cut page
    ``page`` (1-based) of :data:`PAGE_SIZE`."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key in columns:

        def order(row: Any) -> tuple[int, Any]:
            value = getattr(row, key)
            if value is None:
                return (1, "")
            if isinstance(value, list | tuple):
                return (0, "; ".join(str(v) for v in value))
            return (0, value)

        try:
            rows = sorted(rows, key=order, reverse=descending)
        except TypeError:  # mixed kinds in one column: sort by their text
            rows = sorted(rows, key=lambda r: str(getattr(r, key)), reverse=descending)
    else:
        key, descending = "", False
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    return Shown(rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], page, pages, key, descending)
