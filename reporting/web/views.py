"""What the console's pages show, as plain data built from the library (templates only format).

Each function answers one page's question with the same library calls the CLI makes: the month's
completeness is :func:`reporting.coverage.what_is_missing` (as ``meetaudit gaps``), an
investigation answer is the same :mod:`reporting.investigate` function as ``meetaudit
investigate``, inside a case as the settings require.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reporting import investigate
from reporting.config import Settings
from reporting.coverage import what_is_missing
from reporting.db.models import HarvestRun, ReportRun
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
    #: Why the listing could not be shown to see the whole organisation (reporting.reach), if so.
    reach_limits: list[str] = field(default_factory=list)

    @property
    def attention(self) -> str | None:
        """What needs doing for this month, in an officer's words, or ``None``."""
        if not self.harvested:
            return "not harvested yet: run `meetaudit monthly --month " + self.month + "`"
        if not self.complete:
            return "records incomplete: see Gaps, then harvest again"
        if self.reach_limits:
            return ("complete only within the listing's reach: harvest with an administrator's "
                    "token of the whole organisation")  # fmt: skip
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
    from reporting.reach import period_reach

    out = []
    now = dt.datetime.now(dt.UTC)
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
        reach = period_reach(session, window, as_of=now) if runs else None
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
                reach_limits=(
                    (reach.reasons or ["the listing's reach was not confirmed"])
                    if reach is not None and not reach.whole_organisation
                    else []
                ),
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

#: Every question of ``meetaudit investigate``, as the Investigate page's menu offers it.
QUESTIONS = {name: question.label for name, question in investigate.QUESTIONS.items()}


@dataclass
class Answer:
    """Rows answering one question, with its columns, the case it was asked in, and what the
    CLI says beside them (:class:`reporting.investigate.Answered`: period, matches, notes)."""

    question: str
    title: str
    columns: list[str]
    rows: list[Any]
    case: str | None
    period: str
    #: What was asked, named as the CLI names it, as the access log records it.
    parameters: dict[str, Any]
    answered: investigate.Answered


def answer(
    session: Session,
    settings: Settings,
    question: str,
    *,
    who: str,
    month: str,
    case: str,
    start: str = "",
    end: str = "",
) -> Answer:
    """Answer one investigate question as the CLI does: the same checks, in the same order
    (what was typed, the period, the case), and :func:`reporting.investigate.answer_question`.
    ``who`` is the page's one text field: what the question asks about (a person, a meeting's
    id, a title, a phone number, a device)."""
    from reporting.cases import open_case_for_question

    asked = investigate.QUESTIONS.get(question)
    args = {asked.subject: who} if asked is not None and asked.subject else {}
    investigate.check_question(question, args)
    parameters: dict[str, Any] = dict(args)
    period = investigate.Period()
    if question != "meeting":  # one meeting is asked about whatever its month
        from reporting.periods import parse_moment

        parameters["month"] = month.strip() or None
        begins, ends = parse_moment(start, "From"), parse_moment(end, "To")
        if begins or ends:
            parameters.update({"from": start.strip(), "to": end.strip()})
        period = investigate.search_period(settings.zone, parameters["month"], begins, ends)
    case_ref = open_case_for_question(session, case.strip() or None, required=settings.require_case)
    answered = investigate.answer_question(session, settings, question, args, period)
    return Answer(
        question=question,
        title=QUESTIONS[question],
        columns=answered.columns,
        rows=answered.rows,
        case=case_ref,
        period=answered.searched or "",
        parameters=parameters,
        answered=answered,
    )


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
