"""The stored-data check: are a period's stored items still those the harvest stored?

When a harvest stores a meeting it records ``meetings.content_sha256``, the SHA-256 over the
meeting's participant and invitee items exactly as Webex sent them (:func:`reporting.db.writes.
content_digest`). Nothing in meetaudit changes those items afterwards except another harvest,
which records a new digest in the same transaction. So when the items stored now no longer give
the recorded digest, someone changed the stored raw JSON (or deleted or added rows) in the
database by hand: the report built on them is no longer only what Webex said.

:func:`altered_meetings` recomputes the digest of every meeting a report reads as complete and
returns those that do not match, as plain data for the report (a cover warning, a section, the
manifest). It also derives again, from each stored item, the columns the harvest derived from it
(participants with their devices, invitees) and names those that no longer say what their item
says: an edit of a typed column alone is found too. (Breakout attendance is not compared: no
report figure reads it.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from reporting.db.writes import content_digest
from reporting.report.context import ReportParameters
from reporting.webex import schemas

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
# Each stored item with the columns derived from it (devices: one JSON array per participant).
_PARTICIPANTS_SQL = text(
    "SELECT p.meeting_id, p.participant_id, p.raw::text, p.org_id, p.host, p.co_host, "  # noqa: S608 - constant SQL
    "p.space_moderator, p.email, p.email_norm, p.display_name, p.invitee, p.muted, "
    "p.meeting_start_time, p.video, p.state, p.breakout_session_id, p.joined_at, p.left_at, "
    "p.site_url, p.host_email, p.source_id, "
    "(SELECT json_agg(json_build_array(d.seq, d.correlation_id, d.device_type, d.audio_type, "
    "        d.call_type, d.phone_number, extract(epoch FROM d.joined_at)::float8, "
    "        extract(epoch FROM d.left_at)::float8, d.duration_seconds) ORDER BY d.seq) "
    " FROM participant_devices d WHERE d.participant_id = p.participant_id)::text "
    + _COMPLETE.replace(
        "FROM meetings m", "FROM meetings m JOIN participants p ON p.meeting_id = m.meeting_id", 1
    )
    + ' ORDER BY p.meeting_id COLLATE "C"'
)
_INVITEES_SQL = text(
    "SELECT i.meeting_id, i.invitee_id, i.raw::text, i.email, i.email_norm, i.display_name, "
    "i.co_host, i.panelist "
    + _COMPLETE.replace(
        "FROM meetings m", "FROM meetings m JOIN invitees i ON i.meeting_id = m.meeting_id", 1
    )
    + ' ORDER BY i.meeting_id COLLATE "C"'
)
_PARTICIPANT_FIELDS = (
    "org_id", "host", "co_host", "space_moderator", "email", "email_norm", "display_name",
    "invitee", "muted", "meeting_start_time", "video", "state", "breakout_session_id",
    "joined_at", "left_at", "site_url", "host_email", "source_id",
)  # fmt: skip
# Invitee columns, in the order _invitee_columns derives them from "email", "displayName",
# "coHost" and "panelist".
_INVITEE_FIELDS = ("email", "email_norm", "display_name", "co_host", "panelist")


def _epoch(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


# Column <- the item's key, as the harvest maps them (reporting.db.writes); times are parsed.
_PARTICIPANT_KEYS = {
    "org_id": "orgId", "host": "host", "co_host": "coHost", "space_moderator": "spaceModerator",
    "email": "email", "display_name": "displayName", "invitee": "invitee", "muted": "muted",
    "meeting_start_time": "meetingStartTime", "video": "video", "state": "state",
    "breakout_session_id": "breakoutSessionId", "joined_at": "joinedTime",
    "left_at": "leftTime", "site_url": "siteUrl", "host_email": "hostEmail",
    "source_id": "sourceId",
}  # fmt: skip
_TIMES = frozenset({"meeting_start_time", "joined_at", "left_at"})
# Each participant column with its item key (None: email_norm, derived from "email").
_FIELD_KEYS = tuple((name, _PARTICIPANT_KEYS.get(name)) for name in _PARTICIPANT_FIELDS)
_DEVICE_KEYS = (
    ("correlation_id", "correlationId"), ("device_type", "deviceType"),
    ("audio_type", "audioType"), ("call_type", "callType"), ("phone_number", "phoneNumber"),
    ("joined_at", "joinedTime"), ("left_at", "leftTime"), ("duration_seconds", "durationSecond"),
)  # fmt: skip


class _NotAnItem(ValueError):
    """A stored item that is no longer what Webex sends (it was edited)."""


def _time(value: Any) -> dt.datetime | None:
    """An item's time as the harvest read it (:func:`reporting.webex.schemas` ``ApiTime``)."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        raise _NotAnItem from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _same(stored: Any, derived: Any) -> bool:
    if isinstance(stored, float) or isinstance(derived, float):
        return stored is not None and derived is not None and abs(stored - derived) < 1e-3
    return bool(stored == derived)


def _email_norm(email: Any) -> str | None:
    return schemas.normalise_email(email) if isinstance(email, str) else None


def _derived(raw: dict[str, Any]) -> tuple[tuple[Any, ...], list[list[Any]]]:
    """The participant columns (in ``_PARTICIPANT_FIELDS`` order) and the device columns (in
    ``_DEVICE_KEYS`` order) the harvest derives from a stored item. Raises :class:`_NotAnItem`
    (or AttributeError) when the item is no longer one Webex sends."""
    get = raw.get
    columns = tuple(
        _email_norm(get("email")) if key is None
        else _time(get(key)) if name in _TIMES
        else get(key)
        for name, key in _FIELD_KEYS
    )  # fmt: skip
    devices = [
        [
            _epoch(_time(d.get(key))) if key.endswith("Time") else d.get(key)
            for _, key in _DEVICE_KEYS
        ]
        for d in get("devices") or []
    ]
    return columns, devices


def _participant_columns(row: Any, raw: Any) -> list[str]:
    """The columns of a stored participant (and its devices) that its stored item does not
    give, by name. Read straight from the item's keys: as fast as the check must be, and
    exactly what the harvest's write path stored."""
    pid = row[1]
    stored = tuple(row[3:21])
    stored_devices = orjson.loads(row[21]) if row[21] is not None else []
    try:
        if not isinstance(raw, dict):
            raise _NotAnItem
        derived, devices = _derived(raw)
    except (_NotAnItem, AttributeError):
        return [f"participant {pid}: its stored record is no longer one Webex sends"]
    if raw.get("id") is not None and raw.get("id") != pid:
        out = [f"participant {pid}: participant_id"]
    elif stored == derived and [d[1:] for d in stored_devices] == devices:
        return []  # the common case, in one comparison; names only when something differs
    else:
        out = []
    out[:0] = [f"participant {pid}: {name}"
               for name, have, should in zip(_PARTICIPANT_FIELDS, stored, derived, strict=True)
               if not _same(have, should)]  # fmt: skip
    if len(stored_devices) != len(devices):
        out.append(
            f"participant {pid}: {len(stored_devices)} devices stored, {len(devices)} in its record"
        )
        return out
    for (seq, *cols), want in zip(stored_devices, devices, strict=True):
        out.extend(
            f"participant {pid} device {seq}: {name}"
            for (name, _), have, should in zip(_DEVICE_KEYS, cols, want, strict=True)
            if not _same(have, should)
        )
    return out


def _invitee_columns(row: Any, raw: Any) -> list[str]:
    """The columns of a stored invitee that its stored item does not give, by name."""
    if not isinstance(raw, dict):
        return [f"invitee {row[1]}: its stored record is no longer one Webex sends"]
    get = raw.get
    email = get("email")
    derived = (email, _email_norm(email), get("displayName"), get("coHost"), get("panelist"))
    stored = tuple(row[3:8])
    if stored == derived and get("id") == row[1]:
        return []
    out = [f"invitee {row[1]}: {name}"
           for name, have, should in zip(_INVITEE_FIELDS, stored, derived, strict=True)
           if not _same(have, should)]  # fmt: skip
    if raw.get("id") != row[1]:
        out.append(f"invitee {row[1]}: invitee_id")
    return out


def _stream(session: Session, sql: Any, q: dict[str, Any]) -> Iterator[Any]:
    yield from session.execute(sql, q, execution_options={"yield_per": 2000})


class _Grouped:
    """Rows of one meeting-ordered stream, handed out meeting by meeting."""

    def __init__(self, rows: Iterator[Any]) -> None:
        self._rows = rows
        self._next = next(rows, None)

    def take(self, meeting_id: str) -> list[Any]:
        out = []
        while self._next is not None and self._next[0] < meeting_id:
            self._next = next(self._rows, None)
        while self._next is not None and self._next[0] == meeting_id:
            out.append(self._next)
            self._next = next(self._rows, None)
        return out


def altered_meetings(
    session: Session, params: ReportParameters, *, local: Any = None
) -> tuple[int, list[dict[str, Any]]]:
    """How many complete meetings of the period were checked, and those whose stored data is
    no longer what the harvest stored, in order of start: the items no longer give the digest
    recorded at harvest, or a column no longer says what its item says. Each with its meeting
    id, title, start, the digest recorded and the one computed now, and what differs.

    ``local`` formats a start time for print (default: ISO 8601 UTC).
    """
    q = {"start": params.period_from, "end": params.period_to, "as_of": params.as_of}
    participants = _Grouped(_stream(session, _PARTICIPANTS_SQL, q))
    invitees = _Grouped(_stream(session, _INVITEES_SQL, q))
    checked = 0
    altered = []
    for meeting_id, recorded, title, start in session.execute(_MEETINGS_SQL, q):
        checked += 1
        p_items, i_items, columns = [], [], []
        for row in participants.take(meeting_id):
            raw = orjson.loads(row[2])
            p_items.append(raw)
            columns += _participant_columns(row, raw)
        for row in invitees.take(meeting_id):
            raw = orjson.loads(row[2])
            i_items.append(raw)
            columns += _invitee_columns(row, raw)
        now = content_digest(p_items, i_items)
        if now != recorded or columns:
            what = []
            if now != recorded:
                what.append(
                    "its participant and invitee records (as Webex sent them) no longer give "
                    "the SHA-256 recorded at harvest"
                )
            if columns:
                shown = ", ".join(columns[:5]) + (
                    f" and {len(columns) - 5} more" if len(columns) > 5 else ""
                )
                what.append(f"columns no longer say what their record says ({shown})")
            altered.append(
                {
                    "meeting_id": meeting_id,
                    "title": title,
                    "start": local(start) if local else start.isoformat(),
                    "start_at": start,
                    "recorded_sha256": recorded,
                    "stored_sha256": now,
                    "what": "; ".join(what),
                }
            )
    altered.sort(key=lambda a: (a["start_at"], a["meeting_id"]))
    for a in altered:
        del a["start_at"]
    return checked, altered
