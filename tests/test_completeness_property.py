"""Property: the report and `meetaudit gaps` agree on what is missing, whatever the mixture of gaps.

Hypothesis writes random mixtures of every gap kind straight into a real database through the
write helpers the harvest uses — listing failures with and without a meeting id, refused list
items (meeting id and window), per-meeting failures, unsettled and not-ended meetings, gaps that
name a meeting never stored, superseded and resolved gaps, meetings listed but not stored, and
harvest runs that did or did not finish listing — in October and on both sides of it. For each
state, the report's context (its gaps appendix and completeness), the manifest's ``complete`` and
``meetaudit gaps`` (its lines and exit status) must list the same open items, be complete exactly
when nothing is missing, and match an independent model of the rule written in this test.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from reporting.cli import cli
from reporting.db.engine import Database
from reporting.db.models import HarvestRun
from reporting.db.writes import (
    MeetingRecord,
    record_gap,
    store_meetings,
    upsert_listed_meetings,
)
from reporting.harvest import Window, resolve_listing_gaps
from reporting.report.context import ReportParameters, build_context
from reporting.report.manifest import build_manifest
from reporting.report.render import ReportMeta
from reporting.webex import schemas

UTC = dt.UTC


def _t(month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


OCT = Window(_t(10, 1), _t(11, 1))
# Windows of runs and of gaps: inside October, straddling its edges, and outside it.
WINDOWS = [
    OCT,
    Window(_t(10, 1), _t(10, 16)),
    Window(_t(9, 1), _t(10, 1)),
    Window(_t(11, 1), _t(12, 1)),
    Window(_t(9, 25), _t(10, 5)),
    Window(_t(10, 31), _t(11, 1)),
    Window(_t(9, 30), _t(10, 1)),
    Window(_t(10, 15), _t(10, 16)),
    Window(_t(11, 1), _t(11, 2)),
]
STARTS = [_t(9, 30, 10), _t(10, 1), _t(10, 15, 12), _t(10, 31, 23, 30), _t(11, 1), None]
FINISHED = ("complete", "incomplete")
STATUSES = ("complete", "incomplete", "interrupted", "running", "failed")
TABLES = "harvest_runs, harvest_gaps, meetings, meeting_revisions"

Runs = list[tuple[int, str]]
Meetings = list[tuple[int, int]]
Ops = list[tuple[Any, ...]]

runs_st = st.lists(
    st.tuples(st.integers(0, len(WINDOWS) - 1), st.sampled_from(STATUSES)), min_size=1, max_size=3
)
meetings_st = st.lists(
    st.tuples(st.integers(0, len(STARTS) - 1), st.integers(0, 2)), min_size=0, max_size=5
)
# A meeting a gap names: one of the generated meetings (by index, when it exists) or a ghost id.
meeting_ref = st.one_of(st.integers(0, 4), st.sampled_from(["ghost-a", "ghost-b"]))
window_ref = st.integers(0, len(WINDOWS) - 1)
run_ref = st.integers(0, 2)
ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("listing"), run_ref, window_ref),
        st.tuples(st.just("refused"), run_ref, meeting_ref, window_ref),
        st.tuples(
            st.just("fetch"),
            run_ref,
            meeting_ref,
            st.sampled_from(["participants", "invitees", "meeting", "attendee_report"]),
            st.one_of(st.none(), window_ref),
        ),
        st.tuples(st.just("store"), st.integers(0, 4)),
        st.tuples(st.just("list_ok"), run_ref, window_ref),
    ),
    max_size=10,
)


@dataclass
class _ModelGap:
    reason: str
    scope: str
    meeting_id: str | None
    window: Window | None
    run: int
    open: bool = True


@dataclass
class _Model:
    """What the tests expect, from the rule in words (README, "When a month is complete")."""

    runs: list[tuple[Window, str]] = field(default_factory=list)
    starts: dict[str, dt.datetime | None] = field(default_factory=dict)  # stored meetings
    listed_by: dict[str, int] = field(default_factory=dict)
    complete: set[str] = field(default_factory=set)
    gaps: list[_ModelGap] = field(default_factory=list)

    def expected(self, period: Window) -> set[tuple[str, str]]:
        def overlaps(w: Window) -> bool:
            return w.start < period.end and w.end > period.start

        def in_period(mid: str) -> bool:
            start = self.starts.get(mid)
            return start is not None and period.start <= start < period.end

        out: set[tuple[str, str]] = set()
        open_ids = set()
        for g in self.gaps:
            if not g.open:
                continue
            stored_start = g.meeting_id is not None and self.starts.get(g.meeting_id) is not None
            belongs = (
                (g.meeting_id is not None and in_period(g.meeting_id))
                or (g.window is not None and overlaps(g.window))
                or (not stored_start and g.window is None and overlaps(self.runs[g.run][0]))
            )
            if belongs:
                out.add(("gap", g.reason))
                if g.meeting_id:
                    open_ids.add(g.meeting_id)
        for mid, start in self.starts.items():
            if mid in self.complete or mid in open_ids:
                continue
            listed = self.runs[self.listed_by[mid]][0]
            if in_period(mid) or (start is None and overlaps(listed)):
                out.add(("unstored", mid))
        covered = sorted((w.start, w.end) for w, status in self.runs if status in FINISHED)
        cursor = period.start
        for start, end in covered:
            if end <= cursor:
                continue
            if start >= period.end:
                break
            if start > cursor:
                out.add(("unlisted", f"{cursor:%Y-%m-%d %H:%M} – {start:%Y-%m-%d %H:%M}"))
            cursor = max(cursor, end)
        if cursor < period.end:
            out.add(("unlisted", f"{cursor:%Y-%m-%d %H:%M} – {period.end:%Y-%m-%d %H:%M}"))
        return out


def _build(db: Database, runs: Runs, meetings: Meetings, ops: Ops) -> _Model:
    model = _Model()
    run_ids: list[int] = []
    with db.session() as session:
        for window_index, status in runs:
            run_window = WINDOWS[window_index]
            run = HarvestRun(
                operator="t", hostname="t", meetaudit_version="t", api_base_url="t",
                window_from=run_window.start, window_to=run_window.end, parameters={},
                status=status,
                started_at=_t(11, 20), finished_at=None if status == "running" else _t(11, 20, 1),
            )  # fmt: skip
            session.add(run)
            session.flush()
            run_ids.append(run.id)
            model.runs.append((run_window, status))
        listed = []
        for n, (start_index, run_index) in enumerate(meetings):
            listed_id, start = f"m{n}", STARTS[start_index]
            run_index %= len(run_ids)
            raw: dict[str, object] = {"id": listed_id, "title": f"Meeting {n}", "state": "ended",
                                      "meetingType": "meeting", "meetingSeriesId": f"s{n}"}  # fmt: skip
            if start is not None:
                raw["start"] = start.isoformat()
                raw["end"] = (start + dt.timedelta(hours=1)).isoformat()
                item = schemas.Meeting.model_validate(raw)
            else:
                # A meeting stored without a start: the harvest refuses such items now, but rows
                # stored before it did are still in databases, and must still be counted.
                item = schemas.Meeting.model_construct(
                    id=listed_id, meeting_series_id=f"s{n}", title=f"Meeting {n}",
                    meeting_type="meeting", state="ended", start=None, end=None,
                )  # fmt: skip
            listed.append((run_ids[run_index], (item, raw)))
            model.starts[listed_id] = start
            model.listed_by[listed_id] = run_index
        for run_id, item in listed:
            upsert_listed_meetings(session, run_id, [item])
    for n, op in enumerate(ops):
        reason = f"gap-{n:03d}"
        with db.session() as session:
            kind = op[0]
            if kind == "store":
                stored_id = f"m{op[1]}"
                if stored_id not in model.starts:
                    continue
                store_meetings(session, run_ids[0], [MeetingRecord(stored_id, [], [])])
                model.complete.add(stored_id)
                for g in model.gaps:
                    if g.meeting_id == stored_id:
                        g.open = False
                continue
            run_index = op[1] % len(run_ids)
            if kind == "list_ok":
                listed_ok = WINDOWS[op[2]]
                resolve_listing_gaps(session, run_ids[run_index], [listed_ok])
                for g in model.gaps:
                    if g.scope == "meeting_list" and g.window and listed_ok.start <= g.window.start \
                            and g.window.end <= listed_ok.end:  # fmt: skip
                        g.open = False
                continue
            ref = op[2] if kind != "listing" else None
            mid: str | None = None if ref is None else (f"m{ref}" if isinstance(ref, int) else ref)
            window: Window | None
            if kind == "listing":
                scope, window = "meeting_list", WINDOWS[op[2]]
            elif kind == "refused":
                scope, window = "meeting_list", WINDOWS[op[3]]
            else:
                scope, window = op[3], None if op[4] is None else WINDOWS[op[4]]
            record_gap(session, run_ids[run_index], scope=scope, reason=reason, meeting_id=mid,
                       window=(window.start, window.end) if window else None)  # fmt: skip
            new = _ModelGap(reason, scope, mid, window, run_index)
            for g in model.gaps:  # the newer attempt at the same thing supersedes the older
                same = (
                    g.meeting_id == mid
                    if mid is not None
                    else window is not None and g.meeting_id is None and g.scope == scope
                    and g.window is not None and window.start <= g.window.start
                    and g.window.end <= window.end
                )  # fmt: skip
                if same:
                    g.open = False
            model.gaps.append(new)
    return model


def _report_items(rows: list[dict[str, object]]) -> set[tuple[str, str]]:
    out = set()
    for r in rows:
        if r["run_id"] is None and r["scope"] == "meeting":
            out.add(("unstored", str(r["meeting_id"])))
        elif r["run_id"] is None:
            out.add(("unlisted", str(r["what"]).removeprefix("listing ")))
        else:
            out.add(("gap", str(r["reason"])))
    return out


def _cli_items(output: str) -> set[tuple[str, str]]:
    out = set()
    for line in output.splitlines():
        if unlisted := re.match(r"not listed (\S+ \S+ – \S+ \S+): ", line):
            out.add(("unlisted", unlisted.group(1)))
        elif line.startswith("meeting ") and ": listed, but" in line:
            out.add(("unstored", line.split()[1]))
        elif match := re.search(r"gap-\d{3}", line):
            out.add(("gap", match.group()))
    return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(runs=runs_st, meetings=meetings_st, ops=ops_st)
def test_report_and_gaps_agree_on_what_is_missing(
    database_url: str, tmp_path: Path, runs: Runs, meetings: Meetings, ops: Ops
) -> None:
    with Database(database_url, data_dir=tmp_path) as db:
        with db.session() as session:
            session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        model = _build(db, runs, meetings, ops)
        expected = model.expected(OCT)

        env = {"MEETAUDIT_DATABASE_URL": database_url, "MEETAUDIT_TIMEZONE": "UTC",
               "MEETAUDIT_CONFIG": None}  # fmt: skip
        gaps = CliRunner().invoke(cli, ["gaps", "--month", "2026-10"], env=env)
        assert gaps.exit_code in (0, 3), gaps.output

        as_of = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
        params = ReportParameters(
            label="2026-10", period_from=OCT.start, period_to=OCT.end, timezone="UTC",
            org_name="Acme", org_domains=("acme.example",), org_ids=(), min_attendance_minutes=1,
            show_phone_numbers=False, roster_row_limit=1000, exception_row_limit=100, as_of=as_of,
        )  # fmt: skip
        workdir = tmp_path / f"ctx-{as_of.timestamp()}"
        workdir.mkdir(exist_ok=True)
        with db.session() as session:
            ctx = build_context(session, params, workdir=workdir)
        rows = list(ctx.gaps)
        meta = ReportMeta(report_id="MAR-test", generated_at=as_of, generated_by="t",
                          meetaudit_version="t", weasyprint_version="t", signing_key=None)  # fmt: skip
        manifest = build_manifest(ctx, meta, fmt="json")

        assert _report_items(rows) == _cli_items(gaps.output) == expected
        assert len(rows) == ctx.totals.gaps == len(expected)
        assert ctx.complete is manifest["complete"] is (not expected)
        assert (gaps.exit_code == 0) is ctx.complete
