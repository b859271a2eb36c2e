"""CSV and JSON exports of the reconciliation, with a stable, documented column set.

The same rows are embedded in the PDF (``reconciliation.csv``, ``meetings.csv``) and written by
``--format csv`` (two files, each with its own ledger entry: ``NAME.csv`` is the reconciliation,
``NAME.meetings.csv`` the meetings) and ``--format json`` (one file holding both). Columns are only
ever added at the end, never renamed or reordered, so a spreadsheet or a script built on one
month keeps working on the next.

Encoding: UTF-8 without BOM, RFC 4180 quoting, ``\\r\\n`` line ends, a header row. Times are
ISO 8601 with their offset, in the report's time zone. Booleans are ``true``/``false``; an empty
cell means "not known". Lists are ``;``-separated. A cell that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is prefixed with an apostrophe (``'``) so that a spreadsheet
shows it as text instead of running it as a formula; the JSON export carries every value unaltered.

``reconciliation.csv`` — one row per person per meeting (attendees, lobby-only participants and
invitees who never came), meetings in order of actual start, then by status and name:

==================  ============================================================================
meeting_id          Webex meeting instance id
meeting_start       actual start of the meeting
meeting_title       meeting title
host_email          the meeting host's email
person_key          matching key: the email trimmed and lower-cased, else ``participant:<id>``
display_name        name as Webex gave it (the participant's, else the invitee's)
email               email as Webex gave it
role                ``host``, ``cohost``, ``attendee`` or ``invitee`` (invited, never joined)
invited             the normalised email is on the meeting's invitee list
admitted            the person was let into the meeting (not only into the lobby)
status              ``invited_attended``, ``host_attended`` (the host, not on the list),
                    ``uninvited_attended`` (on neither the list nor as host, with an email that
                    is not on it), ``not_testable`` (admitted, but not tested against an invitee
                    list: see ``status_reason``), ``lobby_only`` (never admitted),
                    ``invited_absent``. Before meetaudit said ``not_testable``, the meeting without
                    an invitee list was ``attended_no_invitee_list`` and a person without an
                    email at a meeting with a list was ``uninvited_attended``
classification      ``internal``, ``external`` or ``unidentified``
org_key             internal: the organisation's name; external: the orgId Webex gave (in this
                    meeting, else for the same email in another meeting of the period), else the
                    email domain; unidentified: empty
org_id              the orgId Webex gave in this meeting, if any
email_domain        the email's domain, lower-cased
sessions            join sessions (devices) recorded for the person in this meeting
attended_seconds    time in the meeting: the union of the sessions, so overlapping devices count
                    once; ``1970-01-01`` placeholder times are ignored (and flagged)
attended_minutes    ``attended_seconds / 60``, two decimals
first_joined        earliest join of a session with a real time
last_left           latest leave of a session with a real time
audio_types         audio types of the sessions (``voip``, ``pstn``, ``inactive``)
call_types          call types of phone sessions (``callIn``, ``callBack``)
phone_numbers       phone numbers of the sessions, last two digits masked unless the operator
                    set ``show_phone_numbers``
participant_ids     the Webex participant ids merged into this person
flags               data-quality flags: ``placeholder_time``, ``missing_email``,
                    ``invitee_without_invitation`` (Webex marks the participant an invitee but
                    no invitation matches), ``short_attendance`` (admitted for less than
                    ``min_attendance_minutes``)
meeting_ref         the meeting's reference in this report (``M-017``: the 17th meeting in the
                    report's order), printed with every row about the meeting in the PDF
row_ref             the row's reference in this report (``M-017-004``: the 4th row of meeting
                    ``M-017``, in this file's order), printed wherever the PDF shows the row
caller_ref          an unidentified participant's reference in this report (``C-012``: the 12th
                    in this file's order), so callers whose names and masked numbers look alike
                    can be told apart; empty for everyone else
status_reason       why a ``not_testable`` row was not tested: ``no_invitee_list`` (the meeting
                    has none) or ``no_email`` (invitees are matched by email, and the person
                    has none); empty for every other status
==================  ============================================================================

``meetings.csv`` — one row per meeting whose actual start falls in the period:

==================  ============================================================================
meeting_id          Webex meeting instance id
meeting_series_id   the series it belongs to
meeting_number      the meeting number
title               meeting title
start, end          actual start and end
host_display_name   host name
host_email          host email
harvest_status      ``complete`` (participants and invitees stored) or ``not_harvested`` (listed
                    in the gaps appendix)
complete_run_id     the harvest run that stored it completely
invitee_list        the meeting has an invitee list
invitees            invitee rows stored
participants        participant rows stored
sessions            device (join session) rows stored
people              attendances at the meeting: the people admitted to it, each once however
                    many sessions (a person is one email, or without one one participant)
invited_attended    ... and the other status columns: rows per status, as above
invited_absent
uninvited_attended
lobby_only
external_people     attendances of people classified external
unidentified_people attendances of people classified unidentified (each has a caller_ref)
attended_seconds    the sum of the attendances' attended time
flags               ``no_invitee_list`` and the number of person flags, ``;``-separated
meeting_ref         the meeting's reference in this report (``M-017``), as printed in the PDF
not_testable        attendances at the meeting not tested against an invitee list (see
                    ``status_reason`` in reconciliation.csv)
==================  ============================================================================

References are numbered per report, in its order, from the same stored data the same way: the
same report rendered again gives the same references, but a later report of the same period
numbers again (a meeting harvested since shifts the numbers after it). They tie a printed row to
its CSV row; the Webex ids (``meeting_id``, ``participant_ids``) identify across reports.

``--format json`` writes one object: ``{"manifest": {...}, "meetings": [...], "rows": [...],
"gaps": [...]}`` — ``meetings`` and ``rows`` have exactly the columns above as keys (typed: numbers,
booleans, ``null``, lists for the ``;``-separated columns), ``manifest`` is the report manifest
(parameters, control totals, harvest runs) and ``gaps`` the gaps appendix.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

RECONCILIATION_COLUMNS: tuple[str, ...] = (
    "meeting_id", "meeting_start", "meeting_title", "host_email", "person_key", "display_name",
    "email", "role", "invited", "admitted", "status", "classification", "org_key", "org_id",
    "email_domain", "sessions", "attended_seconds", "attended_minutes", "first_joined",
    "last_left", "audio_types", "call_types", "phone_numbers", "participant_ids", "flags",
    "meeting_ref", "row_ref", "caller_ref", "status_reason",
)  # fmt: skip
MEETING_COLUMNS: tuple[str, ...] = (
    "meeting_id", "meeting_series_id", "meeting_number", "title", "start", "end",
    "host_display_name", "host_email", "harvest_status", "complete_run_id", "invitee_list",
    "invitees", "participants", "sessions", "people", "invited_attended", "invited_absent",
    "uninvited_attended", "lobby_only", "external_people", "unidentified_people",
    "attended_seconds", "flags", "meeting_ref", "not_testable",
)  # fmt: skip
# The number of columns each file had before columns were added (columns are only ever added at
# the end): a CSV written by an earlier version is a prefix of today's columns of one of these
# lengths, and is still told by its header (meetaudit verify).
EARLIER_WIDTHS: dict[str, tuple[int, ...]] = {"reconciliation.csv": (25,), "meetings.csv": (23,)}
LIST_COLUMNS = frozenset({"audio_types", "call_types", "phone_numbers", "participant_ids", "flags"})
_FORMULA_START = frozenset("=+-@\t\r")


def csv_cell(value: Any) -> str:
    """One value as CSV text: booleans ``true``/``false``, lists ``;``-joined, formulas defused."""
    # Ordered by frequency: this runs for every cell of a month (ten million in a big one).
    if value.__class__ is str:
        return "'" + value if value and value[0] in _FORMULA_START else value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (list, tuple)):
        text = ";".join(str(v) for v in value)
        return "'" + text if text and text[0] in _FORMULA_START else text
    return str(value)  # numbers are never formulas


class CsvSink:
    """Writes rows of a fixed column set to a binary file as UTF-8 CSV, one row at a time."""

    def __init__(self, fh: BinaryIO, columns: tuple[str, ...]) -> None:
        self._fh = fh
        self._columns = columns
        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, lineterminator="\r\n")
        self.rows = 0
        self._writer.writerow(columns)

    def _flush(self) -> None:
        self._fh.write(self._buf.getvalue().encode("utf-8"))
        self._buf.seek(0)
        self._buf.truncate()

    def write(self, row: dict[str, Any]) -> None:
        """Write one row (a dict with every column as key)."""
        self._writer.writerow([csv_cell(row[c]) for c in self._columns])
        self.rows += 1
        if self.rows % 1000 == 0:
            self._flush()

    def close(self) -> None:
        """Write out what is buffered (the file itself stays open: the caller owns it)."""
        self._flush()


def json_value(value: Any) -> Any:
    """A row value as JSON: tuples become lists, everything else is already JSON-ready."""
    if isinstance(value, tuple):
        return list(value)
    return value


def write_json_export(
    target: BinaryIO,
    manifest: dict[str, Any],
    meetings: Iterable[dict[str, Any]],
    rows: Iterable[dict[str, Any]],
    gaps: Iterable[dict[str, Any]],
) -> None:
    """Stream the JSON export: the manifest, then meetings, rows and gaps, one item at a time."""

    def dump(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()

    def array(items: Iterable[dict[str, Any]], columns: tuple[str, ...] | None) -> Iterator[bytes]:
        yield b"["
        first = True
        for item in items:
            if columns is not None:
                item = {c: json_value(item[c]) for c in columns}
            yield (b"\n" if first else b",\n") + dump(item)
            first = False
        yield b"\n]"

    target.write(b'{"manifest":' + dump(manifest) + b',\n"meetings":')
    for part in array(meetings, MEETING_COLUMNS):
        target.write(part)
    target.write(b',\n"rows":')
    for part in array(rows, RECONCILIATION_COLUMNS):
        target.write(part)
    target.write(b',\n"gaps":')
    for part in array(gaps, None):
        target.write(part)
    target.write(b"}\n")


def read_csv_rows(path: Path) -> Iterator[dict[str, str]]:
    """Read back an export written by :class:`CsvSink` (used by tests and the JSON export)."""
    with path.open(encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)
