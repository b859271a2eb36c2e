"""The stored-data check: are a period's stored items still those the harvest stored?

When a harvest stores a meeting it records ``meetings.content_sha256``, the SHA-256 over the
meeting's participant and invitee items exactly as Webex sent them (:func:`reporting.db.writes.
content_digest`). Nothing in meetaudit changes those items afterwards except another harvest,
which records a new digest in the same transaction. So when the items stored now no longer give
the recorded digest, someone changed the stored raw JSON (or deleted or added rows) in the
database by hand: the report built on them is no longer only what Webex said.

:func:`altered_meetings` recomputes the digest of every meeting a report reads as complete and
returns those that do not match, as plain data for the report (a cover warning, a section, the
manifest). The digest covers the raw items, which the typed columns are derived from; it does not
cover a typed column edited alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from reporting.db.writes import content_digest
from reporting.report.context import ReportParameters

_COMPLETE = """
    FROM meetings m
    LEFT JOIN harvest_runs fr ON fr.id = m.first_seen_run_id
    WHERE m.start_at >= :start AND m.start_at < :end
      AND (fr.id IS NULL OR fr.started_at <= :as_of)
      AND m.complete_at IS NOT NULL AND m.complete_at <= :as_of
"""
_MEETINGS_SQL = text(
    f"SELECT m.meeting_id, m.content_sha256, m.title, m.start_at {_COMPLETE} "
    'ORDER BY m.meeting_id COLLATE "C"'
)
_ITEMS_SQL = {
    table: text(
        f"SELECT x.meeting_id, x.raw::text "
        f"{_COMPLETE.replace('FROM meetings m', f'FROM meetings m JOIN {table} x USING (meeting_id)', 1)} "
        'ORDER BY x.meeting_id COLLATE "C"'
    )
    for table in ("participants", "invitees")
}


def _items(session: Session, sql: Any, q: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(meeting id, stored item) of each stored item, in meeting order."""
    result = session.execute(sql, q, execution_options={"yield_per": 2000})
    for meeting_id, raw in result:
        yield meeting_id, orjson.loads(raw)


class _Grouped:
    """Lines of one meeting-ordered stream, handed out meeting by meeting."""

    def __init__(self, rows: Iterator[tuple[str, Any]]) -> None:
        self._rows = rows
        self._next = next(rows, None)

    def take(self, meeting_id: str) -> list[Any]:
        out = []
        while self._next is not None and self._next[0] < meeting_id:
            self._next = next(self._rows, None)
        while self._next is not None and self._next[0] == meeting_id:
            out.append(self._next[1])
            self._next = next(self._rows, None)
        return out


def altered_meetings(
    session: Session, params: ReportParameters, *, local: Any = None
) -> tuple[int, list[dict[str, Any]]]:
    """How many complete meetings of the period were checked, and those whose stored items no
    longer give the digest recorded when they were harvested (meeting id, title, start, the
    digest recorded and the one computed now), in order of start.

    ``local`` formats a start time for print (default: ISO 8601 UTC).
    """
    q = {"start": params.period_from, "end": params.period_to, "as_of": params.as_of}
    participants = _Grouped(_items(session, _ITEMS_SQL["participants"], q))
    invitees = _Grouped(_items(session, _ITEMS_SQL["invitees"], q))
    checked = 0
    altered = []
    for meeting_id, recorded, title, start in session.execute(_MEETINGS_SQL, q):
        checked += 1
        now = content_digest(participants.take(meeting_id), invitees.take(meeting_id))
        if now != recorded:
            altered.append(
                {
                    "meeting_id": meeting_id,
                    "title": title,
                    "start": local(start) if local else start.isoformat(),
                    "start_at": start,
                    "recorded_sha256": recorded,
                    "stored_sha256": now,
                }
            )
    altered.sort(key=lambda a: (a["start_at"], a["meeting_id"]))
    for a in altered:
        del a["start_at"]
    return checked, altered
