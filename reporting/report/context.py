"""The report's context: everything the report says, built as plain data in one pass over the data.

:func:`build_context` reads one period in the caller's transaction (``generate_report`` opens it
REPEATABLE READ, read-only, so every figure comes from one snapshot). Meetings, participants with
their sessions, and invitees are streamed from PostgreSQL in the same order (actual start, meeting
id) and reconciled one meeting at a time, so memory stays bounded whatever the month's size:

* the small things — control totals, the per-organisation table, the harvest runs, the first
  ``exception_row_limit`` rows of each exception list — are kept in memory;
* the long things — the per-meeting index, the rosters, the gaps — go to :class:`Spool` files,
  and every reconciliation row is written straight to the CSV files that become attachments.

Nothing here is an ORM object: templates and exports get dicts, dataclasses and strings.
Rows recorded after ``as_of`` (the report's generation time) are left out — harvest runs started
later, gaps recorded later, meetings completed or first listed later — so rendering the report
again later from unchanged data gives the same figures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy import ColumnElement, select, text
from sqlalchemy.orm import Session

from reporting.coverage import UNCOVERED_REASON, Gap, Missing, what_is_missing
from reporting.db.models import Meeting, Participant
from reporting.reach import PeriodReach, period_reach, reach_words
from reporting.report.classify import (
    PLACEHOLDER_BEFORE,
    Classification,
    KnownOrgIds,
    caller_name,
    classify_with,
    email_domain,
    mask_phone,
)
from reporting.report.exports import MEETING_COLUMNS, RECONCILIATION_COLUMNS, CsvSink
from reporting.report.spool import Spool
from reporting.webex.plausibility import CHECKS, plausible_org_id

PLACEHOLDER_EPOCH = PLACEHOLDER_BEFORE.timestamp()

STATUS_ORDER = (
    "host_attended",
    "invited_attended",
    "uninvited_attended",
    "not_testable",
    "lobby_only",
    "invited_absent",
)
STATUS_LABELS = {
    "host_attended": "Host",
    "invited_attended": "Invited, attended",
    "uninvited_attended": "Not invited",
    "not_testable": "Not testable",
    "lobby_only": "Lobby only",
    "invited_absent": "Invited, absent",
}
# The longer wording, for legends and the method page.
STATUS_DESCRIPTIONS = {
    "host_attended": "the meeting's host (hosts are not on their own invitee list)",
    "invited_attended": "on the invitee list and admitted",
    "uninvited_attended": "admitted with an email that is not on the meeting's invitee list",
    "not_testable": "admitted, but not tested against an invitee list: the meeting has none, or "
    "the person has no email to look for on it (counted apart, neither invited nor not)",
    "lobby_only": "waited in the lobby and was never admitted",
    "invited_absent": "on the invitee list, never joined",
}
# Why an attendance could not be tested against an invitee list (status ``not_testable``).
NOT_TESTABLE_REASONS = {
    "no_invitee_list": "meeting has no invitee list",
    "no_email": "no email to match",
}
FLAG_LABELS = {
    "placeholder_time": "Placeholder time (1970)",
    "missing_email": "No email",
    "invitee_without_invitation": "Marked invitee, no invitation",
    "short_attendance": "Short attendance",
    "no_invitee_list": "Meeting has no invitee list",
}
EXCEPTION_KINDS = (
    "uninvited",
    "not_testable",
    "external_people",
    "unidentified",
    "no_shows",
    "lobby",
    "flags",
)


@dataclass(frozen=True)
class ReportParameters:
    """What a report was asked for. Stored in the ledger entry: enough to render it again."""

    label: str
    period_from: dt.datetime
    period_to: dt.datetime
    timezone: str
    org_name: str
    org_domains: tuple[str, ...]
    org_ids: tuple[str, ...]
    min_attendance_minutes: float
    show_phone_numbers: bool
    roster_row_limit: int
    exception_row_limit: int
    as_of: dt.datetime
    # The earlier report of the same period this one supersedes (its report id, generation time
    # and SHA-256), when the ledger had one; the report then says what changed since.
    supersedes: dict[str, str] | None = None
    # The organisation registry's names, file and SHA-256 (reporting.report.registry), when one
    # is configured: recorded, so a reproduction shows the names this report showed.
    org_registry: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The parameters as JSON-ready plain data (times as ISO 8601 UTC)."""
        out = asdict(self)
        for key in ("period_from", "period_to", "as_of"):
            out[key] = iso_utc(getattr(self, key))
        out["org_domains"] = list(self.org_domains)
        out["org_ids"] = list(self.org_ids)
        if self.supersedes is None:
            # Left out, not null: the parameters of a report without a predecessor read as
            # they did before reports could supersede one another (same bytes when reproduced).
            del out["supersedes"]
        if self.org_registry is None:
            del out["org_registry"]  # likewise: reports without a registry read as before
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportParameters:
        """Parameters back from :meth:`to_json` (a ledger entry's ``parameters``)."""
        return cls(
            label=data["label"],
            period_from=dt.datetime.fromisoformat(data["period_from"]),
            period_to=dt.datetime.fromisoformat(data["period_to"]),
            timezone=data["timezone"],
            org_name=data["org_name"],
            org_domains=tuple(data["org_domains"]),
            org_ids=tuple(data["org_ids"]),
            min_attendance_minutes=float(data["min_attendance_minutes"]),
            show_phone_numbers=bool(data["show_phone_numbers"]),
            roster_row_limit=int(data["roster_row_limit"]),
            exception_row_limit=int(data["exception_row_limit"]),
            as_of=dt.datetime.fromisoformat(data["as_of"]),
            supersedes=data.get("supersedes"),
            org_registry=data.get("org_registry"),
        )


def iso_utc(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (second precision when there are no microseconds)."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def ref_width(count: int) -> int:
    """Digits of the references numbered up to ``count``: three, more when needed, so that
    every reference of one report has the same width and sorts as it reads."""
    return max(3, len(str(count)))


def meeting_ref(number: int, width: int) -> str:
    """A meeting's reference in a report: ``M-017`` for the 17th meeting in the report's order
    (actual start, then meeting id) of ``width``-digit numbers."""
    return f"M-{number:0{width}d}"


def row_ref(meeting: str, number: int, width: int) -> str:
    """A reconciliation row's reference: ``M-017-004`` for the 4th row of meeting ``M-017`` in
    its roster's order (status, then name)."""
    return f"{meeting}-{number:0{width}d}"


def caller_ref(number: int) -> str:
    """An unidentified participant's reference: ``C-012`` for the 12th in the report's order
    (meetings in order, each meeting's rows in order). They have no email and their numbers are
    masked alike; the reference tells them apart without unmasking anything."""
    return f"C-{number:03d}"


def roster_anchor(ref: str) -> str:
    """The PDF anchor of a meeting's roster (section 5), which the meeting's references link to."""
    return f"roster-{ref}"


@dataclass
class ControlTotals:
    """Counts an auditor can tie out against the source: in the report and in its manifest."""

    meetings: int = 0
    meetings_complete: int = 0
    meetings_not_harvested: int = 0
    meetings_without_invitee_list: int = 0
    participants: int = 0
    invitees: int = 0
    sessions: int = 0
    attendances: int = 0
    attended_seconds: int = 0
    reconciliation_rows: int = 0
    invited_attended: int = 0
    host_attended: int = 0
    invited_absent: int = 0
    uninvited_attended: int = 0
    # Attendances the reconciliation cannot test (apart from the tested ones), and why: the
    # meeting has no invitee list, or the person has no email to look for on it.
    not_testable: int = 0
    not_testable_no_invitee_list: int = 0
    not_testable_no_email: int = 0
    lobby_only: int = 0
    internal_people: int = 0
    external_people: int = 0
    unidentified_attendances: int = 0
    flagged_rows: int = 0
    gaps: int = 0


@dataclass
class ExceptionList:
    """One exception list: the first ``limit`` rows in report order, and how many there are."""

    kind: str
    title: str
    total: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        """True when more rows exist than are printed."""
        return self.total > len(self.rows)


@dataclass
class Attachment:
    """A file embedded in the PDF."""

    name: str
    path: Path
    mime: str
    description: str
    sha256: str = ""
    size: int = 0


@dataclass
class ReportContext:
    """Everything the report says, as plain data; see the module docstring."""

    params: ReportParameters
    period_title: str
    harvest_runs: list[dict[str, Any]]
    last_harvest_finished: str | None
    totals: ControlTotals
    org_table: list[dict[str, Any]]
    exceptions: dict[str, ExceptionList]
    flag_counts: dict[str, int]
    meetings: Spool
    rosters: Spool | None
    roster_rows: int
    gaps: Spool
    # Nothing missing from the period as of the report's time (reporting.coverage); with the
    # stored-data check below it makes ``complete``, which the cover, the manifest, the ledger
    # entry and the exit status all read.
    nothing_missing: bool
    # Items the harvest runs above listed in a state other than ``ended``, per state, summed
    # over the runs (an item listed by two runs counts twice); not meetings of the report.
    listed_not_ended: dict[str, int]
    reconciliation_csv: Attachment
    meetings_csv: Attachment
    rows: Spool | None
    daily: list[dict[str, Any]]
    # What changed since the report this one supersedes (see reporting.report.diff), and the
    # attachment listing every change; None when it supersedes none.
    changes: dict[str, Any] | None = None
    changes_csv: Attachment | None = None
    # The stored-data check (see reporting.report.integrity): how many meetings' stored items
    # were checked against the digest recorded at harvest, and those that no longer match.
    stored_checked: int = 0
    altered_meetings: list[dict[str, Any]] = field(default_factory=list)
    # The harvest's plausibility checks: per check, how many items of the period it refused (open
    # gaps) and flagged (stored meetings); and the stored flags, listed. Apart from the report's
    # own row flags (``flag_counts``), which the report derives.
    plausibility: list[dict[str, Any]] = field(default_factory=list)
    quality_flags: ExceptionList = field(
        default_factory=lambda: ExceptionList("quality", "Plausibility flags from the harvest")
    )
    # What the listing of the period could see (reporting.reach): "complete" means no more
    # than that, and the report never says it without this beside it.
    reach: PeriodReach = field(default_factory=PeriodReach)
    # Every meeting's reference in this report (meeting id -> ``M-017``), for the lists built
    # after the one pass (altered meetings, changes since a superseded report).
    meeting_refs: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when nothing is missing from the period (``reporting.coverage``) and the stored
        data of every meeting still matches the digest recorded when it was harvested."""
        return self.nothing_missing and not self.altered_meetings

    @property
    def rosters_included(self) -> bool:
        """True when the PDF prints every roster row (the month fits ``roster_row_limit``)."""
        return self.rosters is not None


# -- reading ------------------------------------------------------------------------------------

_MEETINGS_SQL = text(
    """
    SELECT m.meeting_id, m.meeting_series_id, m.meeting_number, m.title, m.start_at, m.end_at,
           m.host_display_name, m.host_email, m.complete_run_id,
           (m.complete_at IS NOT NULL AND m.complete_at <= :as_of) AS complete
    FROM meetings m
    LEFT JOIN harvest_runs fr ON fr.id = m.first_seen_run_id
    WHERE m.start_at >= :start AND m.start_at < :end
      AND (fr.id IS NULL OR fr.started_at <= :as_of)
    ORDER BY m.start_at, m.meeting_id
    """
)
_COMPLETE_MEETINGS = """
    FROM meetings m
    LEFT JOIN harvest_runs fr ON fr.id = m.first_seen_run_id
    WHERE m.start_at >= :start AND m.start_at < :end
      AND (fr.id IS NULL OR fr.started_at <= :as_of)
      AND m.complete_at IS NOT NULL AND m.complete_at <= :as_of
"""
_JOIN_PARTICIPANTS = "FROM meetings m JOIN participants p ON p.meeting_id = m.meeting_id"
_JOIN_INVITEES = "FROM meetings m JOIN invitees i ON i.meeting_id = m.meeting_id"
_PARTICIPANTS_SQL = text(
    f"""
    SELECT p.meeting_id, p.participant_id, p.email, p.email_norm, p.display_name, p.org_id,
           p.host, p.co_host, p.invitee, p.state,
           extract(epoch FROM p.joined_at)::float8, extract(epoch FROM p.left_at)::float8,
           (SELECT json_agg(json_build_array(
                       extract(epoch FROM d.joined_at)::float8,
                       extract(epoch FROM d.left_at)::float8,
                       d.audio_type, d.call_type, d.phone_number) ORDER BY d.seq)
            FROM participant_devices d WHERE d.participant_id = p.participant_id)::text AS devices
    {_COMPLETE_MEETINGS.replace("FROM meetings m", _JOIN_PARTICIPANTS, 1)}
    ORDER BY m.start_at, m.meeting_id, p.participant_id
    """  # noqa: S608 - constant SQL, no user input
)
_INVITEES_SQL = text(
    f"""
    SELECT i.meeting_id, i.invitee_id, i.email, i.email_norm, i.display_name, i.co_host
    {_COMPLETE_MEETINGS.replace("FROM meetings m", _JOIN_INVITEES, 1)}
    ORDER BY m.start_at, m.meeting_id, i.email_norm, i.invitee_id
    """
)
_HARVEST_RUNS_SQL = text(
    """
    SELECT id, run_uuid, started_at, finished_at, operator, hostname, meetaudit_version,
           api_base_url, window_from, window_to, status, meetings_listed, meetings_complete,
           meetings_skipped, meetings_unsettled, participants, invitees, gaps, error,
           parameters -> 'listed_not_ended' AS listed_not_ended,
           parameters -> 'attendee_report' ->> 'status' AS attendee_report,
           token_principal, listing_reach
    FROM harvest_runs
    WHERE window_from < :end AND window_to > :start AND started_at <= :as_of
    ORDER BY id
    """
)

_QUALITY_FLAGS_SQL = text(
    f"""
    SELECT f.meeting_id, f.subject_kind, f.subject_id, f.check_name, f.detail, m.title, m.start_at
    FROM data_quality_flags f JOIN meetings m ON m.meeting_id = f.meeting_id
    {_COMPLETE_MEETINGS.replace("FROM meetings m", "", 1)}
    ORDER BY m.start_at, m.meeting_id, f.check_name, f.subject_id NULLS FIRST, f.id
    """  # noqa: S608 - constant SQL, no user input
)


def _stream(session: Session, sql: Any, params: dict[str, Any]) -> Iterator[Any]:
    result = session.execute(sql, params, execution_options={"yield_per": 2000})
    yield from result


class _Lookahead:
    """Rows of one ordered stream, handed out meeting by meeting."""

    def __init__(self, rows: Iterator[Any]) -> None:
        self._rows = rows
        self._next: Any = next(rows, None)

    def take(self, meeting_id: str) -> list[Any]:
        out = []
        while self._next is not None and self._next[0] == meeting_id:
            out.append(self._next)
            self._next = next(self._rows, None)
        return out


# -- reconciliation -----------------------------------------------------------------------------


@dataclass
class _Person:
    key: str
    display_name: str | None = None
    email: str | None = None
    org_id: str | None = None
    host: bool = False
    co_host: bool = False
    invitee_flag: bool = False
    admitted: bool = False
    placeholder: bool = False
    sessions: int = 0
    participant_ids: list[str] = field(default_factory=list)
    intervals: list[tuple[float, float]] = field(default_factory=list)
    fallback: list[tuple[float, float]] = field(default_factory=list)
    audio_types: set[str] = field(default_factory=set)
    call_types: set[str] = field(default_factory=set)
    phones: list[str] = field(default_factory=list)


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of ``[start, end)`` intervals: overlapping sessions count once."""
    total = 0.0
    cur_s: float | None = None
    cur_e = 0.0
    for s, e in sorted(intervals):
        if cur_s is None or s > cur_e:
            if cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        elif e > cur_e:
            cur_e = e
    if cur_s is not None:
        total += cur_e - cur_s
    return total


def _valid(s: float | None, e: float | None) -> bool:
    return s is not None and e is not None and s >= PLACEHOLDER_EPOCH and e > s


def _is_placeholder(value: float | None) -> bool:
    return value is not None and value < PLACEHOLDER_EPOCH


class _Builder:
    """The one pass: reconciles each meeting and feeds totals, lists, spools and CSV files."""

    def __init__(
        self,
        params: ReportParameters,
        workdir: Path,
        recon_fh: BinaryIO,
        meetings_fh: BinaryIO,
        keep_rows: bool,
        known: KnownOrgIds | None = None,
        meeting_count: int = 0,
    ) -> None:
        self.p = params
        # Meetings are numbered in the order they are read (the report's order); the width
        # comes from the period's count, so every reference of the report is as wide.
        self.ref_width = ref_width(meeting_count)
        self.meeting_refs: dict[str, str] = {}
        self.callers = 0
        self.known = known or KnownOrgIds()
        self.zone = _zone(params.timezone)
        self.totals = ControlTotals()
        self.recon = CsvSink(recon_fh, RECONCILIATION_COLUMNS)
        self.meetings_csv = CsvSink(meetings_fh, MEETING_COLUMNS)
        self.meetings = Spool(workdir / "meetings.spool")
        self.rosters: Spool | None = Spool(workdir / "rosters.spool")
        self.rows = Spool(workdir / "rows.spool") if keep_rows else None
        self.roster_rows = 0
        limit = params.exception_row_limit
        self.limit = limit
        self.exceptions = {
            "uninvited": ExceptionList("uninvited", "Attended without invitation"),
            "not_testable": ExceptionList("not_testable", "Attended, not testable"),
            "external_people": ExceptionList("external_people", "External participants"),
            "unidentified": ExceptionList("unidentified", "Unidentified participants"),
            "no_shows": ExceptionList("no_shows", "Invited, never joined"),
            "lobby": ExceptionList("lobby", "Waited in the lobby, never admitted"),
            "flags": ExceptionList("flags", "Data-quality flags"),
        }
        self.flag_counts: dict[str, int] = dict.fromkeys(FLAG_LABELS, 0)
        # (classification, org key) -> [meetings, person keys, attended seconds, attendances]
        self.orgs: dict[tuple[str, str], list[Any]] = {}
        self.external_people: dict[tuple[str, str], dict[str, Any]] = {}
        self.people_by_class: dict[str, set[str]] = {"internal": set(), "external": set()}
        self.daily: dict[str, list[int]] = {}

    # formatting helpers ------------------------------------------------------------------
    def local(self, value: dt.datetime | float | None) -> str:
        if value is None:
            return ""
        if isinstance(value, (int, float)):
            value = dt.datetime.fromtimestamp(value, dt.UTC)
        return value.astimezone(self.zone).isoformat()

    def short(self, value: dt.datetime | None) -> str:
        if value is None:
            return ""
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def _exception(self, kind: str, row: dict[str, Any]) -> None:
        lst = self.exceptions[kind]
        lst.total += 1
        if len(lst.rows) < self.limit:
            lst.rows.append(row)

    # per meeting -------------------------------------------------------------------------
    def meeting(self, m: Any, participants: list[Any], invitees: list[Any]) -> None:
        (meeting_id, series_id, number, title, start_at, end_at, host_name, host_email,
         complete_run_id, complete) = m  # fmt: skip
        t = self.totals
        t.meetings += 1
        ref = self.meeting_refs[meeting_id] = meeting_ref(t.meetings, self.ref_width)
        base = {
            "meeting_id": meeting_id,
            "meeting_start": self.local(start_at),
            "meeting_title": title,
            "host_email": host_email,
            "meeting_ref": ref,
        }
        summary: dict[str, Any] = {
            "meeting_ref": ref,
            "meeting_id": meeting_id,
            "meeting_series_id": series_id,
            "meeting_number": number,
            "title": title,
            "start": self.local(start_at),
            "end": self.local(end_at),
            "host_display_name": host_name,
            "host_email": host_email,
            "harvest_status": "complete" if complete else "not_harvested",
            "complete_run_id": complete_run_id if complete else None,
            "invitee_list": bool(invitees),
            "invitees": len(invitees),
            "participants": len(participants),
            "sessions": 0,
            "people": 0,
            **dict.fromkeys(STATUS_ORDER, 0),
            "external_people": 0,
            "unidentified_people": 0,
            "attended_seconds": 0,
            "flags": [],
            "start_short": self.short(start_at),
        }
        day = start_at.astimezone(self.zone).strftime("%Y-%m-%d") if start_at else ""
        daily = self.daily.setdefault(day, [0, 0])
        daily[0] += 1
        if not complete:
            t.meetings_not_harvested += 1
            self._write_meeting(summary)
            return
        t.meetings_complete += 1
        t.participants += len(participants)
        t.invitees += len(invitees)
        if not invitees:
            t.meetings_without_invitee_list += 1
            summary["flags"].append("no_invitee_list")
            self.flag_counts["no_invitee_list"] += 1
            self._exception(
                "flags",
                {**self._where(summary), "row_ref": None, "caller_ref": None, "name": "",
                 "email": "", "flag": "no_invitee_list"},
            )  # fmt: skip

        persons: dict[str, _Person] = {}
        for row in participants:
            self._add_participant(persons, row)
        invited: dict[str, Any] = {}
        for row in invitees:
            key = row[3] or f"invitee:{row[1]}"
            invited.setdefault(key, row)

        rows: list[dict[str, Any]] = []
        seen_orgs: set[tuple[str, str]] = set()
        for person in persons.values():
            rows.append(self._person_row(person, invited, bool(invitees), summary, base, seen_orgs))
        for key, inv in invited.items():
            if key not in persons:
                rows.append(self._absent_row(key, inv, base, summary, seen_orgs))
        rows.sort(
            key=lambda r: (
                STATUS_ORDER.index(r["status"]),
                (r["display_name"] or r["email"] or "").casefold(),
                r["person_key"],
            )
        )
        width = ref_width(len(rows))
        for number, r in enumerate(rows, start=1):
            r["row_ref"] = row_ref(ref, number, width)
            if r["classification"] == "unidentified":
                self.callers += 1
                r["caller_ref"] = caller_ref(self.callers)
            else:
                r["caller_ref"] = None
        for key in seen_orgs:
            self.orgs[key][0] += 1
        daily[1] += summary["people"]
        t.attended_seconds += summary["attended_seconds"]
        for r in rows:
            self.recon.write(r)
            if self.rows is not None:
                self.rows.append(r)
            t.reconciliation_rows += 1
            if r["flags"]:
                t.flagged_rows += 1
            self._exceptions_for(r, summary)
        self._roster(summary, rows)
        self._write_meeting(summary)

    def _where(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {
            "meeting_ref": summary["meeting_ref"],
            "meeting_id": summary["meeting_id"],
            "start": summary["start_short"],
            "title": summary["title"],
        }

    def _add_participant(self, persons: dict[str, _Person], row: Any) -> None:
        (_, pid, email, email_norm, name, org_id, host, co_host, invitee, state, p_join, p_left,
         devices) = row  # fmt: skip
        key = email_norm or f"participant:{pid}"
        person = persons.get(key)
        if person is None:
            person = persons[key] = _Person(key)
        person.participant_ids.append(pid)
        person.display_name = person.display_name or name
        person.email = person.email or email
        # A word string is not an organisation (flagged by the harvest): never classify by it.
        person.org_id = person.org_id or (org_id if plausible_org_id(org_id) else None)
        person.host = person.host or bool(host)
        person.co_host = person.co_host or bool(co_host)
        person.invitee_flag = person.invitee_flag or bool(invitee)
        if state != "lobby":
            person.admitted = True
        if _is_placeholder(p_join) or _is_placeholder(p_left):
            person.placeholder = True
        if _valid(p_join, p_left):
            person.fallback.append((p_join, p_left))
        if devices.__class__ is str:  # JSON text from the query (orjson reads it 4x faster)
            devices = orjson.loads(devices)
        for d_join, d_left, audio, call, phone in devices or ():
            person.sessions += 1
            if _is_placeholder(d_join) or _is_placeholder(d_left):
                person.placeholder = True
            if _valid(d_join, d_left):
                person.intervals.append((d_join, d_left))
            if audio:
                person.audio_types.add(audio)
            if call:
                person.call_types.add(call)
            if phone and phone not in person.phones:
                person.phones.append(phone)

    def _classify(
        self, org_id: str | None, email_norm: str | None, email: str | None
    ) -> tuple[Classification, str | None]:
        """A person's classification and organisation key, the period's orgIds applied."""
        p = self.p
        return classify_with(
            self.known.org_id(org_id, email_norm), email, p.org_ids, p.org_domains, p.org_name
        )

    def _org(self, cls: str, org_key: str | None, person_key: str) -> tuple[str, str]:
        key = (cls, org_key or "")
        entry = self.orgs.get(key)
        if entry is None:
            entry = self.orgs[key] = [0, set(), 0, 0]
        entry[1].add(person_key)
        return key

    def _person_row(
        self,
        person: _Person,
        invited: dict[str, Any],
        has_list: bool,
        summary: dict[str, Any],
        base: dict[str, Any],
        seen_orgs: set[tuple[str, str]],
    ) -> dict[str, Any]:
        p = self.p
        is_invited = person.key in invited
        email_norm = None if person.key.startswith("participant:") else person.key
        reason = None
        if not person.admitted:
            status = "lobby_only"
        elif is_invited:
            status = "invited_attended"
        elif person.host:
            status = "host_attended"
        elif not has_list:
            status, reason = "not_testable", "no_invitee_list"
        elif email_norm is None:
            # Invitees are matched by email: without one there is nothing to look for.
            status, reason = "not_testable", "no_email"
        else:
            status = "uninvited_attended"
        intervals = person.intervals or person.fallback
        seconds = round(union_seconds(intervals)) if person.admitted else 0
        cls, org_key = self._classify(person.org_id, email_norm, person.email)
        flags = []
        if person.placeholder:
            flags.append("placeholder_time")
        if not person.email:
            flags.append("missing_email")
        if person.invitee_flag and not is_invited:
            flags.append("invitee_without_invitation")
        if person.admitted and seconds < p.min_attendance_minutes * 60:
            flags.append("short_attendance")
        phones = [mask_phone(n, show=p.show_phone_numbers) or "" for n in person.phones]
        name = caller_name(person.display_name, person.phones, show=p.show_phone_numbers)
        role = "host" if person.host else "cohost" if person.co_host else "attendee"
        starts = [s for s, _ in intervals]
        ends = [e for _, e in intervals]
        row = {
            **base,
            "person_key": person.key,
            "display_name": name,
            "email": person.email,
            "role": role,
            "invited": is_invited,
            "admitted": person.admitted,
            "status": status,
            "classification": cls,
            "org_key": org_key,
            "org_id": person.org_id,
            "email_domain": email_domain(person.email),
            "sessions": person.sessions,
            "attended_seconds": seconds,
            "attended_minutes": f"{seconds / 60:.2f}",
            "first_joined": self.local(min(starts)) if starts else None,
            "last_left": self.local(max(ends)) if ends else None,
            "audio_types": sorted(person.audio_types),
            "call_types": sorted(person.call_types),
            "phone_numbers": phones,
            "participant_ids": sorted(person.participant_ids),
            "flags": flags,
            "status_reason": reason,
        }
        self._count(row, summary, seen_orgs)
        return row

    def _absent_row(
        self,
        key: str,
        inv: Any,
        base: dict[str, Any],
        summary: dict[str, Any],
        seen_orgs: set[tuple[str, str]],
    ) -> dict[str, Any]:
        _, _invitee_id, email, _, name, co_host = inv
        cls, org_key = self._classify(None, key, email)
        row = {
            **base,
            "person_key": key,
            "display_name": name,
            "email": email,
            "role": "cohost" if co_host else "invitee",
            "invited": True,
            "admitted": False,
            "status": "invited_absent",
            "classification": cls,
            "org_key": org_key,
            "org_id": None,
            "email_domain": email_domain(email),
            "sessions": 0,
            "attended_seconds": 0,
            "attended_minutes": "0.00",
            "first_joined": None,
            "last_left": None,
            "audio_types": [],
            "call_types": [],
            "phone_numbers": [],
            "participant_ids": [],
            "flags": [],
            "status_reason": None,
        }
        self._count(row, summary, seen_orgs)
        return row

    def _count(
        self, row: dict[str, Any], summary: dict[str, Any], seen_orgs: set[tuple[str, str]]
    ) -> None:
        t = self.totals
        status = row["status"]
        summary[status] += 1
        setattr(t, status, getattr(t, status) + 1)
        if row["status_reason"] is not None:
            name = f"{status}_{row['status_reason']}"
            setattr(t, name, getattr(t, name) + 1)
        summary["sessions"] += row["sessions"]
        t.sessions += row["sessions"]
        for flag in row["flags"]:
            self.flag_counts[flag] += 1
        if not row["admitted"]:
            return
        summary["people"] += 1
        t.attendances += 1
        summary["attended_seconds"] += row["attended_seconds"]
        cls = row["classification"]
        if cls == "external":
            summary["external_people"] += 1
        elif cls == "unidentified":
            summary["unidentified_people"] += 1
            t.unidentified_attendances += 1
        key = self._org(cls, row["org_key"], row["person_key"])
        self.orgs[key][2] += row["attended_seconds"]
        self.orgs[key][3] += 1
        seen_orgs.add(key)
        if cls in self.people_by_class:
            self.people_by_class[cls].add(row["person_key"])
        if cls == "external":
            ext_key = (row["org_key"] or "", row["person_key"])
            ext = self.external_people.get(ext_key)
            if ext is None:
                ext = self.external_people[ext_key] = {
                    "org_key": row["org_key"],
                    "org_id": row["org_id"],
                    "name": row["display_name"],
                    "email": row["email"],
                    "meetings": 0,
                    "seconds": 0,
                }
            ext["meetings"] += 1
            ext["seconds"] += row["attended_seconds"]

    def _exceptions_for(self, r: dict[str, Any], summary: dict[str, Any]) -> None:
        where = self._where(summary)
        person = {
            **where,
            "row_ref": r["row_ref"],
            "caller_ref": r["caller_ref"],
            "name": r["display_name"],
            "email": r["email"],
            "classification": r["classification"],
            "org_key": r["org_key"],
            "minutes": r["attended_minutes"],
        }
        status = r["status"]
        if status == "uninvited_attended":
            self._exception("uninvited", person)
        elif status == "not_testable":
            self._exception("not_testable", {**person, "reason": r["status_reason"]})
        elif status == "invited_absent":
            self._exception("no_shows", person)
        elif status == "lobby_only":
            self._exception("lobby", {**person, "invited": r["invited"]})
        if r["classification"] == "unidentified":
            self._exception(
                "unidentified",
                {
                    **person,
                    "admitted": r["admitted"],
                    "audio_types": r["audio_types"],
                    "call_types": r["call_types"],
                    "phone_numbers": r["phone_numbers"],
                },
            )
        for flag in r["flags"]:
            self._exception(
                "flags",
                {**where, "row_ref": r["row_ref"], "caller_ref": r["caller_ref"],
                 "name": r["display_name"], "email": r["email"], "flag": flag},
            )  # fmt: skip
        summary["flags"].extend(f for f in r["flags"] if f not in summary["flags"])

    def _roster(self, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        if self.rosters is None:
            return
        self.roster_rows += len(rows)
        if self.roster_rows > self.p.roster_row_limit:
            # Too big to print: the rows stay in the attachment only.
            self.rosters.close()
            self.rosters.path.unlink(missing_ok=True)
            self.rosters = None
            return
        slim = [
            {k: r[k] for k in (
                "row_ref", "caller_ref", "display_name", "email", "role", "invited", "status",
                "status_reason", "classification",
                "org_key", "sessions", "attended_minutes", "audio_types", "phone_numbers",
                "flags")}
            for r in rows
        ]  # fmt: skip
        self.rosters.append({"meeting": summary, "rows": slim})

    def _write_meeting(self, summary: dict[str, Any]) -> None:
        summary["issues"] = issues_text(summary)
        self.meetings_csv.write(summary)
        self.meetings.append(summary)


def issues_text(summary: dict[str, Any]) -> str:
    """The exceptions of one meeting in a few words (``2 absent · 1 not invited``)."""
    parts = []
    for key, word in (
        ("invited_absent", "absent"),
        ("uninvited_attended", "not invited"),
        ("not_testable", "not testable"),
        ("lobby_only", "lobby only"),
        ("unidentified_people", "unidentified"),
        ("external_people", "external"),
    ):
        if summary.get(key):
            parts.append(f"{summary[key]:,} {word}")
    if "no_invitee_list" in summary["flags"]:
        parts.append("no invitee list")
    others = [_FLAG_SHORT[f] for f in summary["flags"] if f in _FLAG_SHORT]
    if others:
        parts.append("flags: " + ", ".join(others))
    return " · ".join(parts)


_FLAG_SHORT = {
    "placeholder_time": "1970 time",
    "missing_email": "no email",
    "invitee_without_invitation": "unmatched invitee",
    "short_attendance": "short stay",
}


def _zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def period_title(params: ReportParameters) -> str:
    """A heading for the period: ``October 2026`` for a calendar month, else the two dates."""
    zone = _zone(params.timezone)
    start = params.period_from.astimezone(zone)
    end = params.period_to.astimezone(zone)
    nxt = dt.datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=zone)
    if start.day == 1 and start.hour == 0 and start.minute == 0 and end == nxt:
        return start.strftime("%B %Y")
    last = end - dt.timedelta(seconds=1)
    return f"{start:%Y-%m-%d} – {last:%Y-%m-%d}"


def known_org_ids(session: Session, *conditions: ColumnElement[bool]) -> KnownOrgIds:
    """The orgIds Webex gave per person (see ``KnownOrgIds``) in the complete meetings that
    meet ``conditions`` on ``meetings``: the report's period, or an investigator's."""
    return KnownOrgIds.from_pairs(_org_id_pairs(session, *conditions))


def _org_id_pairs(session: Session, *conditions: ColumnElement[bool]) -> list[Any]:
    """The distinct (normalised email, orgId) pairs of :func:`known_org_ids`; an orgId that is
    no Webex organisation id (a word, a name) is never taken as one."""
    return [
        (email, org_id)
        for email, org_id in session.execute(
            select(Participant.email_norm, Participant.org_id)
            .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
            .where(Meeting.complete_at.is_not(None), *conditions)
            .where(Participant.org_id.is_not(None), Participant.email_norm.is_not(None))
            .distinct()
        )
        if plausible_org_id(org_id)
    ]


def build_context(
    session: Session,
    params: ReportParameters,
    *,
    workdir: Path,
    keep_rows: bool = False,
    progress: Callable[[str, int, int | None], None] | None = None,
    restored: dict[str, tuple[list[Any], list[Any]]] | None = None,
) -> ReportContext:
    """Read the period in the caller's transaction and reconcile it; see the module docstring.

    ``workdir`` receives the spools and the two CSV attachments; ``keep_rows`` also spools the
    typed reconciliation rows (for the JSON export). ``restored`` gives, per meeting id, the
    participant and invitee rows (in the shape the queries return) the meeting had at ``as_of``
    when it has been harvested again with other content since (see reporting.report.diff): they
    are used instead of the stored ones, and the meeting counts as complete.
    """
    restored = restored or {}
    note = progress or (lambda stage, done, total: None)
    q = {"start": params.period_from, "end": params.period_to, "as_of": params.as_of}
    session.execute(text("SET LOCAL TIME ZONE 'UTC'"))
    runs = [_run_dict(r) for r in session.execute(_HARVEST_RUNS_SQL, q).mappings()]
    finished = [r["finished_at_dt"] for r in runs if r["finished_at_dt"] is not None]
    total_meetings = session.execute(
        text(
            "SELECT count(*) FROM meetings m "
            "LEFT JOIN harvest_runs fr ON fr.id = m.first_seen_run_id "
            "WHERE m.start_at >= :start AND m.start_at < :end "
            "AND (fr.id IS NULL OR fr.started_at <= :as_of)"
        ),
        q,
    ).scalar_one()

    recon_path = workdir / "reconciliation.csv"
    meetings_path = workdir / "meetings.csv"
    with recon_path.open("wb") as recon_fh, meetings_path.open("wb") as meetings_fh:
        pairs = _org_id_pairs(
            session,
            Meeting.start_at >= params.period_from,
            Meeting.start_at < params.period_to,
            Meeting.complete_at <= params.as_of,
        )
        pairs += [
            (p[3], p[5]) for parts, _ in restored.values() for p in parts if plausible_org_id(p[5])
        ]
        known = KnownOrgIds.from_pairs(pairs)
        b = _Builder(
            params, workdir, recon_fh, meetings_fh, keep_rows, known, meeting_count=total_meetings
        )
        participants = _Lookahead(_stream(session, _PARTICIPANTS_SQL, q))
        invitees = _Lookahead(_stream(session, _INVITEES_SQL, q))
        for n, m in enumerate(_stream(session, _MEETINGS_SQL, q), start=1):
            complete = m[-1]
            parts = participants.take(m[0]) if complete else []
            invs = invitees.take(m[0]) if complete else []
            if m[0] in restored:
                parts, invs = restored[m[0]]
                m = (*m[:-1], True)
            b.meeting(m, parts, invs)
            if n % 500 == 0:
                note("reading", n, total_meetings)
        note("reading", b.totals.meetings, total_meetings)
        b.recon.close()
        b.meetings_csv.close()

    # What is missing: the one definition (reporting.coverage), as of the report's own time.
    missing = what_is_missing(
        session, _Span(params.period_from, params.period_to), as_of=params.as_of, attempts=True
    )
    gaps = Spool(workdir / "gaps.spool")
    for row in gap_rows(missing, b.short, b.local, refs=b.meeting_refs):
        gaps.append(row)
    refused: dict[str, int] = dict.fromkeys(CHECKS, 0)
    for g in missing.open_gaps:
        if g.plausibility_check in refused:
            refused[g.plausibility_check] += 1
    flagged: dict[str, int] = dict.fromkeys(CHECKS, 0)
    quality = ExceptionList("quality", "Plausibility flags from the harvest")
    for f in session.execute(_QUALITY_FLAGS_SQL, q).mappings():
        flagged[f["check_name"]] = flagged.get(f["check_name"], 0) + 1
        quality.total += 1
        if len(quality.rows) < params.exception_row_limit:
            quality.rows.append(
                {"meeting_id": f["meeting_id"], "start": b.short(f["start_at"]),
                 "meeting_ref": b.meeting_refs.get(f["meeting_id"]),
                 "title": f["title"], "subject_kind": f["subject_kind"],
                 "subject_id": f["subject_id"], "check": f["check_name"],
                 "label": CHECKS[f["check_name"]].label if f["check_name"] in CHECKS
                 else f["check_name"], "detail": f["detail"]}
            )  # fmt: skip
    plausibility = [
        {"check": c.name, "label": c.label, "action": c.action, "applies_to": c.applies_to,
         "why": c.why, "refused": refused[c.name], "flagged": flagged[c.name]}
        for c in CHECKS.values()
    ]  # fmt: skip
    gaps.close()
    b.totals.gaps = missing.open_count
    b.meetings.close()
    if b.rosters is not None:
        b.rosters.close()
    if b.rows is not None:
        b.rows.close()

    org_table = _org_table(b, params)
    ext_rows = sorted(
        b.external_people.values(),
        key=lambda e: (e["org_key"] or "", (e["name"] or "").casefold(), e["email"] or ""),
    )
    ext = b.exceptions["external_people"]
    ext.total = len(ext_rows)
    names = {r["org_key"]: r["name"] for r in org_table if r["name"]}
    ext.rows = [
        {**e, "minutes": f"{e['seconds'] / 60:.2f}", "org_name": names.get(e["org_key"])}
        for e in ext_rows[: params.exception_row_limit]
    ]
    b.totals.internal_people = len(b.people_by_class["internal"])
    b.totals.external_people = len(b.people_by_class["external"])

    zone = _zone(params.timezone)
    return ReportContext(
        params=params,
        period_title=period_title(params),
        harvest_runs=[{k: v for k, v in r.items() if not k.endswith("_dt")} for r in runs],
        last_harvest_finished=(
            max(finished).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z") if finished else None
        ),
        totals=b.totals,
        org_table=org_table,
        exceptions=b.exceptions,
        flag_counts=b.flag_counts,
        meetings=b.meetings,
        rosters=b.rosters,
        roster_rows=b.roster_rows,
        gaps=gaps,
        nothing_missing=not missing.anything_open,
        listed_not_ended=_sum_states(r["listed_not_ended"] for r in runs),
        reconciliation_csv=_attachment(
            "reconciliation.csv", recon_path, "text/csv",
            "Every reconciliation row: one per person per meeting (see the column list)",
        ),
        meetings_csv=_attachment(
            "meetings.csv", meetings_path, "text/csv",
            "One row per meeting of the period, with its harvest status and counts",
        ),
        rows=b.rows,
        daily=[{"day": d, "meetings": v[0], "attendances": v[1]}
               for d, v in sorted(b.daily.items())],
        plausibility=plausibility,
        quality_flags=quality,
        reach=period_reach(
            session, _Span(params.period_from, params.period_to), as_of=params.as_of
        ),
        meeting_refs=b.meeting_refs,
    )  # fmt: skip


def _attachment(name: str, path: Path, mime: str, description: str) -> Attachment:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return Attachment(name, path, mime, description, h.hexdigest(), path.stat().st_size)


def _run_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r["id"],
        "run_uuid": str(r["run_uuid"]),
        "started_at": iso_utc(r["started_at"]),
        "finished_at": iso_utc(r["finished_at"]) if r["finished_at"] else None,
        "finished_at_dt": r["finished_at"],
        "operator": r["operator"],
        "hostname": r["hostname"],
        "meetaudit_version": r["meetaudit_version"],
        "api_base_url": r["api_base_url"],
        "window_from": iso_utc(r["window_from"]),
        "window_to": iso_utc(r["window_to"]),
        "status": r["status"],
        "meetings_listed": r["meetings_listed"],
        "meetings_complete": r["meetings_complete"],
        "meetings_skipped": r["meetings_skipped"],
        "meetings_unsettled": r["meetings_unsettled"],
        "participants": r["participants"],
        "invitees": r["invitees"],
        "gaps": r["gaps"],
        "error": r["error"],
        # Items listed in a state other than ``ended``, per state (absent before meetaudit
        # counted them: then none is known).
        "listed_not_ended": dict(sorted((r["listed_not_ended"] or {}).items())),
        # What happened to Webex's attendee report in the run (fetched, partly, failed, not
        # available with the HTTP status); its record lists each site and day.
        "attendee_report": r["attendee_report"],
        # Whose token listed (GET /people/me) and what its listing could see (reporting.reach);
        # None for a run of an earlier version, which did not ask.
        "token_principal": r["token_principal"],
        "listing_reach": r["listing_reach"],
        "reach_words": reach_words(r["token_principal"], r["listing_reach"]),
    }


@dataclass(frozen=True)
class _Span:
    start: dt.datetime
    end: dt.datetime


def gap_rows(
    missing: Missing,
    short: Callable[[dt.datetime | None], str],
    local: Callable[[dt.datetime | None], str],
    *,
    refs: dict[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """The gaps appendix: one row per thing :func:`what_is_missing` found, in its order —
    unlisted time, recorded gaps, then meetings listed but not stored. ``refs``: the report's
    meeting references, for the gaps of meetings it lists."""
    refs = refs or {}
    for start, end in missing.unlisted:
        yield _derived_gap(f"listing {short(start)} – {short(end)}", "meeting_list",
                           UNCOVERED_REASON)  # fmt: skip
    for g in missing.gaps:
        yield {**_gap_dict(g, short, local), "meeting_ref": refs.get(g.meeting_id or "")}
    for m in missing.unstored:
        yield _derived_gap(m.title or "", "meeting",
                           "listed, but its participants and invitees are not stored yet "
                           "(harvest unfinished, or the meeting had not settled)",
                           meeting_id=m.meeting_id, start=short(m.start_at),
                           ref=refs.get(m.meeting_id))  # fmt: skip


def _sum_states(counts: Iterator[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for per_state in counts:
        for state, n in per_state.items():
            total[state] = total.get(state, 0) + int(n)
    return dict(sorted(total.items()))


def _derived_gap(
    what: str, scope: str, reason: str, *, meeting_id: str | None = None, start: str = "",
    ref: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A gap the report finds itself (no harvest recorded it): no HTTP status, no attempt."""
    return {"what": what, "meeting_id": meeting_id, "meeting_ref": ref, "start": start,
            "scope": scope,
            "http_status": None, "tracking_id": None, "occurred_at": "", "run_id": None, "check": None,
            "attempts": 0, "first_occurred_at": "", "reason": reason}  # fmt: skip


def _gap_dict(
    g: Gap,
    short: Callable[[dt.datetime | None], str],
    local: Callable[[dt.datetime | None], str],
) -> dict[str, Any]:
    listing = f"listing {short(g.window_from)} – {short(g.window_to)}" if g.window_from else ""
    # A meeting not stored (a refused list item) is shown by the window it was listed for.
    what = (g.title or listing or "") if g.meeting_id else listing
    return {
        "what": what,
        "meeting_id": g.meeting_id,
        "start": short(g.start_at),
        "scope": g.scope,
        "http_status": g.http_status,
        "tracking_id": g.tracking_id,
        "occurred_at": local(g.occurred_at),
        "run_id": g.harvest_run_id,
        "reason": g.reason,
        "check": g.plausibility_check,
        "attempts": g.attempts,
        "first_occurred_at": local(g.first_occurred_at),
    }


def _org_table(b: _Builder, params: ReportParameters) -> list[dict[str, Any]]:
    from reporting.report.registry import OrgRegistry

    registry = OrgRegistry.from_json(params.org_registry)
    order = {"internal": 0, "external": 1, "unidentified": 2}
    domain_org_ids: dict[str, list[str]] = {}
    for org_id, domains in sorted(b.known.domains.items()):
        for domain in domains:
            domain_org_ids.setdefault(domain, []).append(org_id)
    rows = []
    for (cls, key), (meetings, people, seconds, attendances) in b.orgs.items():
        is_org_id = cls == "external" and "@" not in key and "." not in key
        rows.append(
            {
                "classification": cls,
                "org_key": key or None,
                "label": key if key else "— no orgId, no email —",
                "name": registry.name_of(key) if cls == "external" else None,
                "is_org_id": is_org_id,
                # What links orgIds and email domains, as observed (never merged by guess):
                # the domains of an orgId's people; the orgIds a domain's people came with.
                "seen_with": (
                    list(b.known.domains.get(key, ()))
                    if is_org_id
                    else domain_org_ids.get(key, [])
                    if cls == "external"
                    else []
                ),
                "meetings": meetings,
                # Distinct persons (one per email all period; without an email, one per
                # attendance) and attendances (each person once per meeting).
                "people": len(people),
                "attendances": attendances,
                "minutes": round(seconds / 60),
                # Unrounded, so totals are summed before rounding (they tie with the CSVs).
                "seconds": seconds,
            }
        )
    rows.sort(key=lambda r: (order[r["classification"]], -r["minutes"], r["label"]))
    return rows
