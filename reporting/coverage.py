"""What is missing from a period's records: the one answer behind ``meetaudit gaps``.

Three things can be missing:

* **recorded gaps** — what a harvest could not fetch (``harvest_gaps``). A gap is open until a
  run stores what it names (``resolved_at``) or a later attempt at the same thing fails again
  and records the newer gap (``superseded_at``);
* **unstored meetings** — listed, but their participants and invitees not stored yet (an
  interrupted harvest), with no gap that says why;
* **unlisted time** — a harvest run that finished listing its window (it ended ``complete``, or
  ``incomplete`` with its failures recorded as gaps) *covers* that window; a run that was
  interrupted, failed or is still running may have listed only part of it and covers nothing.
  Time no finished run covers may hold meetings meetaudit has never heard of.

The report's gaps appendix applies the same rules as of the report's own time (see
``reporting.report.context``), so a report and ``meetaudit gaps`` list the same things.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from reporting.db.models import HarvestGap, Meeting

Span = tuple[dt.datetime, dt.datetime]

FINISHED_LISTING = ("complete", "incomplete")

_COVERING_SQL = text(
    """
    SELECT window_from, window_to FROM harvest_runs
    WHERE status IN :finished AND finished_at <= :as_of
      AND window_from < :end AND window_to > :start
    """
).bindparams(bindparam("finished", value=FINISHED_LISTING, expanding=True))

UNCOVERED_REASON = (
    "no finished harvest has listed this time, so meetings in it may be missing from the "
    "records — run `meetaudit harvest` for the period"
)


class Period(Protocol):
    """A half-open UTC interval, such as ``reporting.harvest.Window``."""

    @property
    def start(self) -> dt.datetime: ...

    @property
    def end(self) -> dt.datetime: ...


def uncovered(period: Span, covered: Iterable[Span]) -> list[Span]:
    """The parts of ``period`` that no span of ``covered`` includes, in order."""
    start, end = period
    out: list[Span] = []
    cursor = start
    for c_start, c_end in sorted(covered):
        if c_end <= cursor:
            continue
        if c_start >= end:
            break
        if c_start > cursor:
            out.append((cursor, c_start))
        cursor = max(cursor, c_end)
        if cursor >= end:
            break
    if cursor < end:
        out.append((cursor, end))
    return out


def uncovered_spans(session: Session, period: Span, as_of: dt.datetime) -> list[Span]:
    """The parts of ``period`` no harvest run finished by ``as_of`` has listed."""
    rows = session.execute(_COVERING_SQL, {"start": period[0], "end": period[1], "as_of": as_of})
    return uncovered(period, [(row[0], row[1]) for row in rows])


def open_gaps(session: Session, window: Period, *, history: bool = False) -> list[HarvestGap]:
    """Open recorded gaps touching ``window``: meetings in it, or listing windows overlapping it.

    With ``history``, every gap ever recorded for the window, in the order they occurred.
    """
    in_window = select(Meeting.meeting_id).where(
        Meeting.start_at >= window.start, Meeting.start_at < window.end
    )
    query = select(HarvestGap).where(
        HarvestGap.meeting_id.in_(in_window)
        | ((HarvestGap.window_from < window.end) & (HarvestGap.window_to > window.start))
    )
    if not history:
        query = query.where(HarvestGap.resolved_at.is_(None), HarvestGap.superseded_at.is_(None))
    return list(session.scalars(query.order_by(HarvestGap.occurred_at, HarvestGap.id)))


@dataclass
class Missing:
    """What is missing from a period now; see the module docstring."""

    gaps: list[HarvestGap] = field(default_factory=list)  # with ``history``, closed ones too
    unstored: list[Meeting] = field(default_factory=list)
    unlisted: list[Span] = field(default_factory=list)

    @property
    def anything_open(self) -> bool:
        """Whether anything is still missing (closed gaps of the history do not count)."""
        return bool(
            self.unstored
            or self.unlisted
            or any(g.resolved_at is None and g.superseded_at is None for g in self.gaps)
        )


def what_is_missing(session: Session, window: Period, *, history: bool = False) -> Missing:
    """Recorded gaps, unstored meetings and unlisted time of ``window``, as of now."""
    gaps = open_gaps(session, window, history=history)
    explained = {
        g.meeting_id
        for g in gaps
        if g.meeting_id and g.resolved_at is None and g.superseded_at is None
    }
    unstored = [
        m
        for m in session.scalars(
            select(Meeting)
            .where(Meeting.start_at >= window.start, Meeting.start_at < window.end)
            .where(Meeting.complete_at.is_(None))
            .order_by(Meeting.start_at, Meeting.meeting_id)
        )
        if m.meeting_id not in explained
    ]
    unlisted = uncovered_spans(session, (window.start, window.end), dt.datetime.now(dt.UTC))
    return Missing(gaps, unstored, unlisted)
