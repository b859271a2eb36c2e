"""What is missing from a period's records: the one definition, for every face of meetaudit.

Three things can be missing:

* **recorded gaps** — what a harvest could not fetch (``harvest_gaps``). A gap is open until a
  run stores what it names (``resolved_at``) or a later attempt at the same thing fails again
  and records the newer gap (``superseded_at``);
* **unstored meetings** — listed, but their participants and invitees not stored yet (an
  interrupted harvest), with no gap that says why; a meeting harvested again with other
  content after the moment asked about was stored then (its earlier items are kept as a
  revision);
* **unlisted time** — a harvest run that finished listing its window (it ended ``complete``, or
  ``incomplete`` with its failures recorded as gaps) *covers* that window; a run that was
  interrupted, failed or is still running may have listed only part of it and covers nothing.
  Time no finished run covers may hold meetings meetaudit has never heard of.

:func:`what_is_missing` is the only place these rules are written down (which gap belongs to
which period is in its docstring). ``meetaudit gaps`` asks it as of now; the report asks it as of
its own generation time, through the same code, for its cover, figures, gaps appendix, manifest
and ledger entry; the harvest asks it for its closing status and ``monthly`` for its exit status.
A period is complete exactly when it finds nothing missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

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


# A meeting row exists for the report only once the run that first listed it had started.
_KNOWN_MEETINGS = """
    SELECT m.meeting_id, m.title, m.start_at, m.complete_at, lr.window_from AS listed_from,
           lr.window_to AS listed_to
    FROM meetings m
    LEFT JOIN harvest_runs fr ON fr.id = m.first_seen_run_id
    LEFT JOIN harvest_runs lr ON lr.id = m.last_listed_run_id
    WHERE (fr.id IS NULL OR fr.started_at <= :as_of)
"""

_GAPS_SQL = """
    WITH known AS ({known})
    SELECT g.id, g.harvest_run_id, g.scope, g.meeting_id, g.window_from, g.window_to, g.url,
           g.http_status, g.tracking_id, g.reason, g.plausibility_check, g.occurred_at,
           CASE WHEN g.resolved_at <= :as_of THEN g.resolved_at END AS resolved_at,
           CASE WHEN g.resolved_at <= :as_of THEN g.resolved_by_run_id END AS resolved_by_run_id,
           CASE WHEN g.superseded_at <= :as_of THEN g.superseded_at END AS superseded_at,
           CASE WHEN g.superseded_at <= :as_of THEN g.superseded_by_gap_id END
               AS superseded_by_gap_id,
           k.title, k.start_at, {attempts}
    FROM harvest_gaps g
    JOIN harvest_runs r ON r.id = g.harvest_run_id
    LEFT JOIN known k ON k.meeting_id = g.meeting_id
    {tries}
    WHERE g.occurred_at <= :as_of
      AND ((k.start_at >= :start AND k.start_at < :end)
           OR (g.window_from < :end AND g.window_to > :start)
           OR (k.start_at IS NULL AND g.window_from IS NULL
               AND r.window_from < :end AND r.window_to > :start))
      {open_only}
    ORDER BY k.start_at NULLS FIRST, g.occurred_at, g.id
"""
# The attempts at the same thing still unresolved then: this gap and those it superseded (the
# report prints them; a correlated count per gap, so only asked for when wanted).
_TRIES = """
    CROSS JOIN LATERAL (
        SELECT count(*) AS attempts, min(p.occurred_at) AS first_occurred_at
        FROM harvest_gaps p
        WHERE p.occurred_at <= g.occurred_at
          AND (p.resolved_at IS NULL OR p.resolved_at > :as_of)
          AND ((g.meeting_id IS NOT NULL AND p.meeting_id = g.meeting_id)
               OR (g.meeting_id IS NULL AND p.meeting_id IS NULL AND p.scope = g.scope
                   AND p.window_from >= g.window_from AND p.window_to <= g.window_to))
    ) tries
"""
_OPEN_ONLY = """
      AND (g.resolved_at IS NULL OR g.resolved_at > :as_of)
      AND (g.superseded_at IS NULL OR g.superseded_at > :as_of)
"""
_GAP_QUERIES = {
    (open_only, attempts): text(
        _GAPS_SQL.format(
            known=_KNOWN_MEETINGS,
            attempts=(
                "tries.attempts, tries.first_occurred_at"
                if attempts
                else "1 AS attempts, g.occurred_at AS first_occurred_at"
            ),
            tries=_TRIES if attempts else "",
            open_only=_OPEN_ONLY if open_only else "",
        )
    )
    for open_only in (True, False)
    for attempts in (True, False)
}
# The known meetings of the period in two parts, each through the index on start_at: those that
# started in it, and those without a start that were listed in it (one OR of both read every
# meeting ever stored: 0.1 s a month at 500,000 meetings, six months on the console's overview).
_NOT_STORED = text(
    f"""
    SELECT meeting_id, title, start_at FROM (
        {_KNOWN_MEETINGS} AND m.start_at >= :start AND m.start_at < :end
        UNION ALL
        {_KNOWN_MEETINGS} AND m.start_at IS NULL
    ) known
    WHERE ((start_at >= :start AND start_at < :end)
           OR (start_at IS NULL AND listed_from < :end AND listed_to > :start))
      AND (complete_at IS NULL OR complete_at > :as_of)
      -- Harvested again with other content since: it was stored then, and a report of that
      -- moment reads its earlier items from the revision (reporting.report.diff).
      AND NOT EXISTS (SELECT 1 FROM meeting_revisions r
                      WHERE r.meeting_id = known.meeting_id AND r.changed_at > :as_of)
    ORDER BY start_at NULLS FIRST, meeting_id
    """  # noqa: S608 - constant SQL, no user input
)


@dataclass(frozen=True)
class Gap:
    """A recorded gap as it stood at the time asked about (a later fetch or retry not yet seen).

    The attributes are those of :class:`reporting.db.models.HarvestGap`, plus the meeting it
    names as stored (``title``, ``start_at``; empty when the meeting is not stored) and the
    number of attempts at the same thing still unresolved then (``attempts``, since
    ``first_occurred_at``).
    """

    id: int
    harvest_run_id: int
    scope: str
    meeting_id: str | None
    window_from: dt.datetime | None
    window_to: dt.datetime | None
    url: str | None
    http_status: int | None
    tracking_id: str | None
    reason: str
    plausibility_check: str | None  # the check that refused the item, when one did
    occurred_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by_run_id: int | None
    superseded_at: dt.datetime | None
    superseded_by_gap_id: int | None
    title: str | None
    start_at: dt.datetime | None
    attempts: int
    first_occurred_at: dt.datetime | None

    @property
    def is_open(self) -> bool:
        """Neither fetched since nor replaced by a newer attempt's gap."""
        return self.resolved_at is None and self.superseded_at is None


@dataclass(frozen=True)
class UnstoredMeeting:
    """A meeting listed (stored as a meeting row) whose participants and invitees are not."""

    meeting_id: str
    title: str | None
    start_at: dt.datetime | None


def open_gaps(
    session: Session,
    window: Period,
    *,
    history: bool = False,
    as_of: dt.datetime | None = None,
    attempts: bool = False,
) -> list[Gap]:
    """The recorded gaps that belong to ``window`` (see :func:`what_is_missing`), open ones only
    unless ``history``; in report order (meeting start, listing gaps first, then when).
    ``attempts`` counts the earlier attempts at each (otherwise 1 each)."""
    params = {"start": window.start, "end": window.end, "as_of": as_of or _now()}
    rows = session.execute(_GAP_QUERIES[(not history, attempts)], params).mappings()
    return [Gap(**row) for row in rows]


@dataclass
class Missing:
    """What is missing from a period at ``as_of``; see :func:`what_is_missing`."""

    as_of: dt.datetime
    gaps: list[Gap] = field(default_factory=list)  # with ``history``, closed ones too
    unstored: list[UnstoredMeeting] = field(default_factory=list)
    unlisted: list[Span] = field(default_factory=list)

    @property
    def open_gaps(self) -> list[Gap]:
        """The recorded gaps still open (all of :attr:`gaps` unless ``history`` was asked)."""
        return [g for g in self.gaps if g.is_open]

    @property
    def open_count(self) -> int:
        """How many things are missing: each unlisted span, open gap and unstored meeting once
        (the lines of ``meetaudit gaps`` and of the report's gaps appendix)."""
        return len(self.unlisted) + len(self.open_gaps) + len(self.unstored)

    @property
    def anything_open(self) -> bool:
        """Whether anything is still missing (closed gaps of the history do not count)."""
        return self.open_count > 0


def what_is_missing(
    session: Session,
    window: Period,
    *,
    as_of: dt.datetime | None = None,
    history: bool = False,
    listed_by: Iterable[Span] = (),
    attempts: bool = False,
) -> Missing:
    """What is missing from ``window`` as of ``as_of`` (default: now) — the one definition.

    ``meetaudit gaps``, the harvest's closing status, ``monthly`` and every part of the report
    (cover, figures, gaps appendix, manifest, ledger entry; with ``as_of`` its generation time)
    call this function, so none of them can call a period complete while another finds a gap.

    A recorded gap belongs to the period when

    * it names a meeting stored (known at ``as_of``) whose start lies in the period; or
    * its listing window overlaps the period — a refused list item names the meeting id Webex
      sent *and* the window it was listed for, and belongs to that window whatever its id; or
    * it has neither a stored meeting with a start nor a window of its own: then the window of
      the harvest run that recorded it decides (every gap has one), so no gap is left out of
      every period.

    A gap can belong to two periods (a meeting of 31 October refused while listing 1 November):
    it is shown in both. A stored meeting belongs to the period its start lies in; one stored
    without a start (Webex left it out), to the window of the run that last listed it.
    ``listed_by`` are spans to count as listed by a finished harvest (the harvest run still
    finishing, which covers its own window). With ``history``, closed gaps are returned too;
    ``attempts`` counts each open gap's earlier attempts (the report prints them).
    """
    moment = as_of or _now()
    params = {"start": window.start, "end": window.end, "as_of": moment}
    gaps = open_gaps(session, window, history=history, as_of=moment, attempts=attempts)
    explained = {g.meeting_id for g in gaps if g.meeting_id and g.is_open}
    unstored = [
        UnstoredMeeting(row.meeting_id, row.title, row.start_at)
        for row in session.execute(_NOT_STORED, params)
        if row.meeting_id not in explained
    ]
    rows = session.execute(_COVERING_SQL, params)
    covered = [(row[0], row[1]) for row in rows] + list(listed_by)
    return Missing(moment, gaps, unstored, uncovered((window.start, window.end), covered))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
