"""What changed between two reports of one period.

A report of a period that already has one in the ledger names the report it supersedes and says
what changed since: meetings added or removed, meetings harvested since (or no longer), people
reclassified (their status — invited and attended, invited and absent, not invited, lobby only —
or their classification — internal, external, unidentified), people added to or gone from a
meeting, attended minutes that changed. ``meetaudit report diff OLD NEW`` prints the same.

The earlier report's rows are not guessed from today's data: they are rebuilt the way
``report --reproduce`` renders an entry, with the entry's own parameters and as-of point. A
meeting harvested again with other content since that point has its earlier items in
``meeting_revisions``; they are used for it. The rebuilt control totals are then compared with
those the ledger recorded for the earlier report: when they differ, the stored data no longer
shows what that report showed, and the comparison says so and lists no row changes.

:func:`compare` is the pure part (plain data in, plain data out); :func:`build_report_context`
builds a report's context with its changes and its stored-data check, in the caller's
(snapshot) transaction.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from reporting.db.models import ReportRun
from reporting.errors import ReportError
from reporting.report import integrity, ledger
from reporting.report.context import (
    STATUS_LABELS,
    Attachment,
    ReportContext,
    ReportParameters,
    build_context,
    iso_utc,
)
from reporting.report.exports import CsvSink
from reporting.webex import schemas

# The columns of changes.csv (and of `report diff --format csv`), one row per change.
CHANGE_COLUMNS = (
    "change", "meeting_id", "meeting_start", "meeting_title", "person_key", "display_name",
    "email", "before", "after",
)  # fmt: skip
# Kinds of change, in the order they are counted and listed.
CHANGE_KINDS = {
    "meeting_added": "Meetings added",
    "meeting_removed": "Meetings removed",
    "meeting_harvested": "Meetings harvested since",
    "meeting_unharvested": "Meetings no longer harvested",
    "person_added": "People added to a meeting",
    "person_removed": "People no longer in a meeting",
    "reclassified": "People reclassified",
    "minutes_changed": "Attended minutes changed",
}
CLASS_LABELS = {"internal": "internal", "external": "external", "unidentified": "unidentified"}


@dataclass
class ReportRows:
    """What one report showed, as far as a comparison needs: its meetings and person rows."""

    report_id: str
    # meeting id -> (start, title, harvest status)
    meetings: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    # (meeting id, person key) -> (display name, email, status, classification, minutes)
    rows: dict[tuple[str, str], tuple[str, str, str, str, str]] = field(default_factory=dict)


def rows_of(report_id: str, ctx: ReportContext) -> ReportRows:
    """The meetings and person rows of a context built with ``keep_rows``."""
    if ctx.rows is None:
        raise ValueError("the context was built without keep_rows")
    out = ReportRows(report_id)
    for m in ctx.meetings:
        out.meetings[m["meeting_id"]] = (m["start"], m["title"] or "", m["harvest_status"])
    for r in ctx.rows:
        out.rows[(r["meeting_id"], r["person_key"])] = (
            r["display_name"] or "", r["email"] or "", r["status"], r["classification"],
            r["attended_minutes"],
        )  # fmt: skip
    return out


def _status_text(status: str, classification: str) -> str:
    return (
        f"{STATUS_LABELS.get(status, status)}, {CLASS_LABELS.get(classification, classification)}"
    )


def compare(old: ReportRows, new: ReportRows) -> list[dict[str, str]]:
    """Every change from ``old`` to ``new``, in order of meeting start, meeting, then person.

    Meetings in only one of the two are one change each (their people are not listed one by
    one); a meeting harvested since (or no longer) is one change, and its people are listed
    as added (or no longer there)."""
    changes: list[dict[str, str]] = []

    def meeting_change(kind: str, mid: str, before: str, after: str) -> None:
        start, title, _ = new.meetings.get(mid) or old.meetings[mid]
        changes.append({"change": kind, "meeting_id": mid, "meeting_start": start,
                        "meeting_title": title, "person_key": "", "display_name": "",
                        "email": "", "before": before, "after": after})  # fmt: skip

    status_words = {"complete": "harvested", "not_harvested": "not harvested"}
    for mid in old.meetings.keys() | new.meetings.keys():
        if mid not in old.meetings:
            meeting_change("meeting_added", mid, "", status_words.get(new.meetings[mid][2], ""))
        elif mid not in new.meetings:
            meeting_change("meeting_removed", mid, status_words.get(old.meetings[mid][2], ""), "")
        elif old.meetings[mid][2] != new.meetings[mid][2]:
            kind = "meeting_harvested" if new.meetings[mid][2] == "complete" else (
                "meeting_unharvested")  # fmt: skip
            meeting_change(kind, mid, status_words.get(old.meetings[mid][2], ""),
                           status_words.get(new.meetings[mid][2], ""))  # fmt: skip
    both = old.meetings.keys() & new.meetings.keys()
    for key in old.rows.keys() | new.rows.keys():
        mid, person_key = key
        if mid not in both:
            continue
        before, after = old.rows.get(key), new.rows.get(key)
        shown = after or before
        assert shown is not None
        start, title, _ = new.meetings[mid]
        row = {"meeting_id": mid, "meeting_start": start, "meeting_title": title,
               "person_key": person_key, "display_name": shown[0], "email": shown[1]}  # fmt: skip
        if before is None:
            assert after is not None
            changes.append({**row, "change": "person_added", "before": "",
                            "after": f"{_status_text(after[2], after[3])}, {after[4]} min"})  # fmt: skip
        elif after is None:
            changes.append({**row, "change": "person_removed", "after": "",
                            "before": f"{_status_text(before[2], before[3])}, {before[4]} min"})  # fmt: skip
        elif before[2:4] != after[2:4]:
            changes.append({**row, "change": "reclassified",
                            "before": _status_text(before[2], before[3]),
                            "after": _status_text(after[2], after[3])})  # fmt: skip
        elif before[4] != after[4]:
            changes.append({**row, "change": "minutes_changed", "before": before[4],
                            "after": after[4]})  # fmt: skip
    kinds = list(CHANGE_KINDS)
    changes.sort(
        key=lambda c: (c["meeting_start"], c["meeting_id"], c["person_key"] != "",
                       kinds.index(c["change"]), c["person_key"])
    )  # fmt: skip
    return changes


def summarise(
    changes: list[dict[str, str]],
    *,
    old: dict[str, Any],
    new: dict[str, Any],
    limit: int,
    old_totals: dict[str, Any] | None = None,
    new_totals: dict[str, Any] | None = None,
    restored: int = 0,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    """The plain data a report (or ``report diff``) prints about ``changes``: counts per kind,
    the status changes (``Invited, absent, internal → Invited, attended, internal: 2``), the
    control totals that moved, and the first ``limit`` changes.

    ``old`` and ``new`` name the two reports (id, generated_at, sha256). ``problems``: why the
    earlier report's rows could not be rebuilt; then no change is listed at all."""
    problems = problems or []
    counts = Counter(c["change"] for c in changes)
    transitions = Counter(
        (c["before"], c["after"]) for c in changes if c["change"] == "reclassified"
    )
    totals = []
    if old_totals is not None and new_totals is not None:
        totals = [
            {"name": name, "before": old_totals[name], "after": new_totals[name]}
            for name in new_totals
            if name in old_totals and old_totals[name] != new_totals[name]
        ]
    return {
        "old": old,
        "new": new,
        "reproducible": not problems,
        "problems": problems,
        "restored_meetings": restored,
        "counts": [
            {"change": kind, "label": label, "count": counts.get(kind, 0)}
            for kind, label in CHANGE_KINDS.items()
        ],
        "total": len(changes) if not problems else 0,
        "transitions": [
            {"before": b, "after": a, "count": n}
            for (b, a), n in sorted(transitions.items(), key=lambda t: (-t[1], t[0]))
        ],
        "totals": totals,
        "rows": changes[:limit] if not problems else [],
        "limit": limit,
    }


def write_changes_csv(fh: BinaryIO, changes: Iterable[dict[str, str]]) -> int:
    """Write ``changes`` as CSV (the columns of :data:`CHANGE_COLUMNS`); return the rows."""
    sink = CsvSink(fh, CHANGE_COLUMNS)
    for c in changes:
        sink.write(c)
    sink.close()
    return sink.rows


def lines(summary: dict[str, Any]) -> list[str]:
    """``summary`` for a terminal, one line each."""
    old, new = summary["old"], summary["new"]
    out = [
        f"What changed from report {old['report_id']} (generated {old['generated_at']}) "
        f"to report {new['report_id']} (generated {new['generated_at']})"
    ]
    if not summary["reproducible"]:
        out.append("  The earlier report's rows cannot be rebuilt from the stored data:")
        out.extend(f"  - {p}" for p in summary["problems"])
        out.append("  No change is listed: comparing would be a guess.")
        return out
    if summary["restored_meetings"]:
        n = summary["restored_meetings"]
        out.append(
            f"  {n} meeting{'s were' if n != 1 else ' was'} harvested again with other content "
            "since the earlier report: its rows then were rebuilt from the items kept in the "
            "meeting revisions."
        )
    if not summary["total"]:
        out.append("  Nothing changed: the same meetings, people, statuses and minutes.")
        return out
    out.extend(f"  {c['label']}: {c['count']:,}" for c in summary["counts"] if c["count"])
    for t in summary["transitions"]:
        out.append(f"    {t['before']} → {t['after']}: {t['count']:,}")
    if summary["totals"]:
        out.append("  Control totals that changed:")
        out.extend(f"    {t['name']}: {t['before']:,} → {t['after']:,}" for t in summary["totals"])
    from reporting.investigate import terminal_text

    out.append(f"  Changes ({summary['total']:,}):")
    for c in summary["all_rows"] if "all_rows" in summary else summary["rows"]:
        # Names and titles come from strangers: shown as the investigate commands show them.
        who = terminal_text(c["display_name"] or c["email"] or c["person_key"])
        where = (
            f"{c['meeting_start'][:16].replace('T', ' ')} {terminal_text(c['meeting_title'])} "
            f"[{terminal_text(c['meeting_id'], whole=True)}]"
        )
        what = CHANGE_KINDS[c["change"]].lower()
        arrow = f"{c['before'] or '—'} → {c['after'] or '—'}"
        out.append(f"  - {where}: {what}" + (f": {who}" if c["person_key"] else "") + f": {arrow}")
    return out


def summary_json(summary: dict[str, Any], changes: list[dict[str, str]]) -> str:
    """``summary`` with every change, as JSON text."""
    data = {k: v for k, v in summary.items() if k not in ("rows", "limit", "all_rows")}
    data["changes"] = changes if summary["reproducible"] else []
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


# -- reading the ledger and the stored data -----------------------------------------------------


def _base_id(report_id: str) -> str:
    """The id of the report run (a PDF's id; a CSV's or JSON's without its ending)."""
    return report_id.split(".", 1)[0]


def _named(row: ReportRun) -> dict[str, str]:
    """How a report is named where another refers to it."""
    return {
        "report_id": row.report_id,
        "generated_at": iso_utc(row.generated_at),
        "sha256": row.file_sha256,
    }


def _main_entry(session: Session, base_id: str) -> ReportRun | None:
    """The entry of a report run that names it: its PDF, else its first file."""
    rows = list(
        session.scalars(
            select(ReportRun)
            .where(
                (ReportRun.report_id == base_id)
                | ReportRun.report_id.startswith(f"{base_id}.", autoescape=True)
            )
            .order_by(ReportRun.seq)
        )
    )
    return next((r for r in rows if r.format == "pdf"), rows[0] if rows else None)


def predecessor(session: Session, params: ReportParameters, *, kind: str) -> dict[str, str] | None:
    """The newest report of the same period and kind in the ledger, named (id, generation time,
    SHA-256 of its main file), or ``None`` when the period has no report yet."""
    newest = session.scalars(
        select(ReportRun)
        .where(
            ReportRun.period_from == params.period_from,
            ReportRun.period_to == params.period_to,
            ReportRun.kind == kind,
        )
        .order_by(ReportRun.seq.desc())
        .limit(1)
    ).first()
    if newest is None:
        return None
    main = _main_entry(session, _base_id(newest.report_id))
    return _named(main or newest)


def _entry(session: Session, report_id: str) -> ReportRun:
    row = session.scalars(select(ReportRun).where(ReportRun.report_id == report_id)).first()
    row = row or _main_entry(session, _base_id(report_id))
    if row is None:
        raise ReportError(
            f"no report {report_id!r} in the ledger; `meetaudit verify --ledger` lists every "
            "report id (a PDF report's looks like MAR-2026-10-ABCD2345)"
        )
    if row.kind != "monthly":  # a case dossier, a sample: no report's rows to compare
        raise ReportError(
            f"{row.report_id} is {ledger.kind_words(row.kind)}, not a report of a period; "
            "report diff compares two reports of one period"
        )
    return row


_REVISED_SQL = text(
    """
    SELECT DISTINCT ON (r.meeting_id) r.meeting_id, r.previous_items
    FROM meeting_revisions r
    JOIN meetings m ON m.meeting_id = r.meeting_id
    LEFT JOIN harvest_runs fr ON fr.id = m.first_seen_run_id
    WHERE r.changed_at > :as_of AND m.start_at >= :start AND m.start_at < :end
      AND (fr.id IS NULL OR fr.started_at <= :as_of)
    ORDER BY r.meeting_id, r.changed_at, r.id
    """
)


def _epoch(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def participant_rows(meeting_id: str, items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Stored participant items as the rows the report's participant query returns."""
    rows = []
    seen: set[str] = set()
    for index, raw in enumerate(items):
        p = schemas.Participant.model_validate(raw)
        pid = p.id or f"{meeting_id}#missing-id-{index}"
        if pid in seen:
            continue
        seen.add(pid)
        devices = [
            (_epoch(d.joined_time), _epoch(d.left_time), d.audio_type, d.call_type, d.phone_number)
            for d in p.devices
        ]
        rows.append(
            (meeting_id, pid, p.email, schemas.normalise_email(p.email), p.display_name,
             p.org_id, p.host, p.co_host, p.invitee, p.state, _epoch(p.joined_time),
             _epoch(p.left_time), devices or None)
        )  # fmt: skip
    rows.sort(key=lambda r: r[1])
    return rows


def invitee_rows(meeting_id: str, items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Stored invitee items as the rows the report's invitee query returns."""
    rows = []
    seen: set[str] = set()
    for raw in items:
        i = schemas.Invitee.model_validate(raw)
        if i.id in seen:
            continue
        seen.add(i.id)
        rows.append(
            (meeting_id, i.id, i.email, schemas.normalise_email(i.email), i.display_name, i.co_host)
        )
    rows.sort(key=lambda r: (r[3] or "", r[1]))
    return rows


def restored_items(
    session: Session, params: ReportParameters
) -> dict[str, tuple[list[Any], list[Any]]]:
    """The items of each meeting of the period harvested again with other content after
    ``params.as_of``, as they were then (from the first revision after it)."""
    q = {"start": params.period_from, "end": params.period_to, "as_of": params.as_of}
    out = {}
    for meeting_id, previous in session.execute(_REVISED_SQL, q):
        out[meeting_id] = (
            participant_rows(meeting_id, previous.get("participants") or []),
            invitee_rows(meeting_id, previous.get("invitees") or []),
        )
    return out


def _totals_differences(recorded: dict[str, Any], rebuilt: dict[str, Any]) -> list[str]:
    rebuilt = _in_recorded_terms(recorded, rebuilt)
    return [
        f"{name}: {recorded[name]:,} in the report, {rebuilt[name]:,} from the stored data now"
        for name in rebuilt
        if name in recorded and recorded[name] != rebuilt[name]
    ]


def _in_recorded_terms(recorded: dict[str, Any], rebuilt: dict[str, Any]) -> dict[str, Any]:
    """Totals rebuilt now, in the terms of a ledger entry written before attendances could be
    "not testable": then an attendance at a meeting without an invitee list was counted as
    ``attended_no_invitee_list``, and one of a person without an email at a meeting with a list
    as ``uninvited_attended``. The rows are the same; only their status was named otherwise."""
    if "attended_no_invitee_list" not in recorded or "not_testable_no_email" not in rebuilt:
        return rebuilt
    return {
        **rebuilt,
        "attended_no_invitee_list": rebuilt["not_testable_no_invitee_list"],
        "uninvited_attended": rebuilt["uninvited_attended"] + rebuilt["not_testable_no_email"],
    }


@dataclass
class _Rebuilt:
    rows: ReportRows
    totals: dict[str, Any]
    restored: int
    problems: list[str]


def rebuild(session: Session, row: ReportRun, workdir: Path) -> _Rebuilt:
    """The rows of the report recorded as ``row``, rebuilt with its own parameters and as-of
    point (meetings harvested again since: their items then); ``problems`` says why the stored
    data no longer shows what the report showed, if it does not."""
    report = (row.parameters or {}).get("report")
    if not report:
        return _Rebuilt(ReportRows(row.report_id), {}, 0, [
            f"the ledger entry of {row.report_id} has no report parameters to rebuild it with"
        ])  # fmt: skip
    params = ReportParameters.from_json(report)
    restored = restored_items(session, params)
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = build_context(session, params, workdir=workdir, keep_rows=True, restored=restored)
    totals = asdict(ctx.totals)
    problems = _totals_differences(row.control_totals or {}, totals)
    if problems:
        problems = [
            f"{row.report_id}: its control totals, rebuilt from the stored data, differ from those the ledger "
            f"recorded for it ({'; '.join(problems)}): stored rows it was built from were "
            "changed or removed since, other than by a harvest that kept the earlier items"
        ]
    return _Rebuilt(rows_of(row.report_id, ctx), totals, len(restored), problems)


def _local(params: ReportParameters) -> Callable[[dt.datetime], str]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(params.timezone)
    return lambda value: value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def build_report_context(
    session: Session,
    params: ReportParameters,
    *,
    workdir: Path,
    keep_rows: bool = False,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> ReportContext:
    """:func:`build_context`, then the stored-data check and, when ``params.supersedes`` names
    an earlier report, what changed since it (with every change in ``changes.csv``)."""
    ctx = build_context(
        session, params, workdir=workdir, keep_rows=keep_rows or bool(params.supersedes),
        progress=progress,
    )  # fmt: skip
    ctx.stored_checked, ctx.altered_meetings = integrity.altered_meetings(
        session, params, local=_local(params)
    )
    if params.supersedes:
        earlier = _entry(session, params.supersedes["report_id"])
        old = rebuild(session, earlier, workdir / "superseded")
        new_rows = rows_of("", ctx)
        changes = compare(old.rows, new_rows) if not old.problems else []
        ctx.changes = summarise(
            changes, old=params.supersedes, new={}, limit=params.exception_row_limit,
            old_totals=old.totals, new_totals=asdict(ctx.totals), restored=old.restored,
            problems=old.problems,
        )  # fmt: skip
        path = workdir / "changes.csv"
        with path.open("wb") as fh:
            write_changes_csv(fh, changes)
        ctx.changes_csv = _attachment(path)
    return ctx


def _attachment(path: Path) -> Attachment:
    import hashlib

    data = path.read_bytes()
    return Attachment(
        "changes.csv", path, "text/csv",
        "Every change since the report this one supersedes (see section 1.5)",
        hashlib.sha256(data).hexdigest(), len(data),
    )  # fmt: skip


@dataclass
class DiffResult:
    """What :func:`report_diff` found: the summary and every change."""

    summary: dict[str, Any]
    changes: list[dict[str, str]]

    def lines(self) -> list[str]:
        """For a terminal: the summary and every change."""
        return lines({**self.summary, "all_rows": self.changes})

    def csv_bytes(self) -> bytes:
        """Every change as CSV."""
        buf = io.BytesIO()
        write_changes_csv(buf, self.changes)
        return buf.getvalue()

    def json_text(self) -> str:
        """The summary and every change as JSON."""
        return summary_json(self.summary, self.changes)


def report_diff(session: Session, old_id: str, new_id: str, *, workdir: Path) -> DiffResult:
    """What changed from report ``old_id`` to report ``new_id`` of the same period, each
    rebuilt with its own parameters and as-of point, in the caller's (snapshot) transaction."""
    old_row, new_row = _entry(session, old_id), _entry(session, new_id)
    if (old_row.period_from, old_row.period_to) != (new_row.period_from, new_row.period_to):
        raise ReportError(
            f"{old_row.report_id} and {new_row.report_id} are reports of different periods; "
            "report diff compares two reports of one period"
        )
    if old_row.seq > new_row.seq:
        raise ReportError(
            f"{old_row.report_id} was generated after {new_row.report_id}: give the earlier "
            f"report first (meetaudit report diff {new_row.report_id} {old_row.report_id})"
        )
    old = rebuild(session, old_row, workdir / "old")
    new = rebuild(session, new_row, workdir / "new")
    problems = old.problems + new.problems
    changes = compare(old.rows, new.rows) if not problems else []
    summary = summarise(
        changes, old=_named(old_row), new=_named(new_row), limit=len(changes),
        old_totals=old.totals, new_totals=new.totals, restored=old.restored + new.restored,
        problems=problems,
    )  # fmt: skip
    return DiffResult(summary, changes)
