"""Which parts of a period a finished harvest has listed.

A harvest run that finished listing its window — it ended ``complete``, or ``incomplete`` with
its failures recorded as gaps — *covers* that window. A run that was interrupted, failed or is
still running may have listed only part of it, so it covers nothing. Whatever part of a period no
finished run covers may hold meetings meetaudit has never heard of: a report must say so rather
than present the period as complete.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

Span = tuple[dt.datetime, dt.datetime]

FINISHED_LISTING = ("complete", "incomplete")

_COVERING_SQL = text(
    """
    SELECT window_from, window_to FROM harvest_runs
    WHERE status IN ('complete', 'incomplete') AND finished_at <= :as_of
      AND window_from < :end AND window_to > :start
    """
)

UNCOVERED_REASON = (
    "no finished harvest has listed this time, so meetings in it may be missing from the "
    "records — run `meetaudit harvest` for the period"
)


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
