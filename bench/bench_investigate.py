"""Benchmark of `meetaudit investigate` at two years of a 10,000-person organisation (on demand).

    python bench/bench_investigate.py --database-url postgresql://postgres@127.0.0.1/postgres \\
        [--participants 10000000] [--repeat 30] [--runs 5] [--keep] [--reuse] [--json out.json]

It creates ``meetaudit_bench<size>`` (``meetaudit_bench10m`` by default), migrates it with
``meetaudit db upgrade`` and fills it inside PostgreSQL (``bench/investigate_data.py``: about
``--participants`` participant rows, one meeting per 20, one person per 50, 300 outside
organisations, devices, invitees, phone callers, a few very busy people; the migrations' own
indexes rebuilt over the data). It opens a case (``meetaudit case open``) and then, in the same
run, measures every question three ways:

* **layer** — the ``reporting.investigate`` function the CLI calls, in a fresh session of the
  library's ``Database``, as many times as ``--repeat`` (after 3 warm-up calls): p50 and p95;
* **bare** — the essential SQL of that answer (the rows, their devices, invitations...) run
  directly with psycopg on one connection, as often: p50 and p95; ``ratio`` is layer p95 over
  bare p95;
* **process** — the whole ``meetaudit investigate …`` command (``python -m reporting``), with
  the case, its access-log entry and the table printed to a pipe: the median of ``--runs`` runs
  after one warm-up, and the largest peak RSS of them.

Targets (issue 11): person-in-a-year p95 ≤ 5 ms in the query layer and within 2× of the bare SQL;
every command under 1 s as a whole process, ``orgs`` under 2 s, ``with`` for a very busy person
reported as measured; ``meetaudit --help`` under 0.3 s. ``--reuse`` measures a kept database
again without generating it; ``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of each bare query.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.investigate_data import OWN_ORG_ID, counts, generate  # noqa: E402
from reporting import investigate as inv  # noqa: E402
from reporting.config import load_settings  # noqa: E402
from reporting.db.engine import Database  # noqa: E402

CASE = "BENCH-11"
ORDINARY = "jose.angstrom@acme.example"
BUSY = "mette.kjaergaard@acme.example"
FRAGMENT = "angstrom"
YEAR = ("2025-12-01", "2026-12-01")
MONTH = "2026-10"
DOMAINS = ("acme.example", "acme-corp.example")


@dataclass
class Question:
    """One investigator's question: the library call, its bare SQL, the command line, a target."""

    name: str
    layer: Callable[[Any, Any], list[Any]]
    bare: list[str]
    cli: list[str]
    #: Whole-process target in seconds (None: reported, no target).
    process_target: float | None = 1.0
    layer_target_ms: float | None = None
    result: dict[str, Any] = field(default_factory=dict)


def _admin(url: str, sql: str) -> None:
    libpq = make_url(url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(libpq.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _env(url: str, data_dir: Path) -> dict[str, str]:
    """The environment of a whole-process command: this tree's code, the bench database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEETAUDIT_")}
    env.update(
        PYTHONPATH=str(ROOT), MEETAUDIT_DATABASE_URL=url, MEETAUDIT_DATA_DIR=str(data_dir),
        MEETAUDIT_ORG_DOMAINS=",".join(DOMAINS), MEETAUDIT_ORG_IDS=OWN_ORG_ID,
        MEETAUDIT_OPERATOR="bench", COLUMNS="120",
    )  # fmt: skip
    return env


def meetaudit(args: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """Run ``meetaudit ARGS`` as a process: (wall seconds, peak RSS in MB, exit status)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "reporting", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if proc.stderr is not None:
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        if status:
            print(f"  ! meetaudit {' '.join(args)}: {err.strip()[-300:]}", flush=True)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, round(usage.ru_maxrss / 1024), proc.returncode


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_layer(db: Database, q: Question, settings: Any, repeat: int) -> dict[str, Any]:
    """p50/p95 (ms) of the library call, each in a fresh session, and the rows it returned."""
    times, rows = [], 0
    for n in range(repeat + 3):
        started = time.perf_counter()
        with db.session() as session:
            rows = len(q.layer(session, settings))
        if n >= 3:
            times.append((time.perf_counter() - started) * 1000)
    return {"layer_p50": _pct(times, 0.5), "layer_p95": _pct(times, 0.95), "rows": rows}


def time_bare(
    conn: psycopg.Connection, q: Question, params: dict[str, Any], repeat: int
) -> dict[str, Any]:
    """p50/p95 (ms) of the question's essential SQL, fetched whole, directly with psycopg."""
    times = []
    for n in range(repeat + 3):
        started = time.perf_counter()
        for sql in q.bare:
            conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
        if n >= 3:
            times.append((time.perf_counter() - started) * 1000)
    return {"bare_p50": _pct(times, 0.5), "bare_p95": _pct(times, 0.95)}


def time_process(q: Question, env: dict[str, str], runs: int) -> dict[str, Any]:
    """Median wall time and largest peak RSS of the whole command (after one warm-up run)."""
    meetaudit(q.cli, env)
    walls, peaks = [], []
    for _ in range(runs):
        wall, rss, status = meetaudit(q.cli, env)
        walls.append(wall)
        peaks.append(rss)
        if status:
            return {"process": None, "rss_mb": None, "exit": status}
    return {"process": statistics.median(walls), "rss_mb": max(peaks)}


def explain(conn: psycopg.Connection, q: Question, params: dict[str, Any]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each bare statement of the question."""
    for sql in q.bare:
        print(f"--- {q.name}")
        for (line,) in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params):  # type: ignore[operator]
            print("   ", line)


# -- the questions ----------------------------------------------------------------------------

_PERIOD = "m.start_at >= %(start)s AND m.start_at < %(end)s"
_ATTENDED_ROWS = f"""SELECT p.participant_id, p.meeting_id, p.display_name, p.email, p.state,
    p.host, p.co_host, p.joined_at, p.left_at, m.title, m.start_at, m.host_email
    FROM participants p JOIN meetings m ON m.meeting_id = p.meeting_id
    WHERE p.email_norm = ANY(%(emails)s) AND {_PERIOD} ORDER BY m.start_at"""
_ATTENDED_DEVICES = f"""SELECT d.participant_id, d.seq, d.device_type, d.audio_type,
    d.phone_number, d.joined_at, d.left_at
    FROM participant_devices d JOIN participants p ON p.participant_id = d.participant_id
    JOIN meetings m ON m.meeting_id = p.meeting_id
    WHERE p.email_norm = ANY(%(emails)s) AND {_PERIOD}"""
_INVITATIONS = f"""SELECT i.meeting_id, i.email_norm, m.title, m.start_at FROM invitees i
    JOIN meetings m ON m.meeting_id = i.meeting_id WHERE i.email_norm = ANY(%(emails)s) AND {_PERIOD}"""
_RESOLVE = """SELECT DISTINCT coalesce(nullif(email_norm, ''), 'participant:' || participant_id)
    FROM participants WHERE email_norm LIKE %(fragment)s OR meetaudit_fold(display_name) LIKE %(fragment)s"""
_MY_MEETINGS = f"""SELECT me.meeting_id FROM participants me JOIN meetings m ON m.meeting_id = me.meeting_id
    WHERE me.email_norm = ANY(%(emails)s) AND (me.state IS NULL OR me.state <> 'lobby') AND {_PERIOD}"""
_WITH = f"""SELECT coalesce(nullif(p.email_norm, ''), 'participant:' || p.participant_id) AS k,
    min(p.email), min(p.display_name), min(p.org_id), count(DISTINCT p.meeting_id)
    FROM participants p WHERE p.meeting_id IN ({_MY_MEETINGS})
      AND (p.state IS NULL OR p.state <> 'lobby') AND coalesce(p.email_norm, '') <> ALL(%(emails)s)
    GROUP BY 1"""
_MET = f"""SELECT p.meeting_id, p.org_id, p.email FROM participants p
    WHERE p.meeting_id IN ({_MY_MEETINGS}) AND (p.state IS NULL OR p.state <> 'lobby')
      AND coalesce(p.email_norm, '') <> ALL(%(emails)s)"""
_DEVICES = f"""SELECT d.device_type, d.audio_type, d.call_type, d.phone_number, count(*),
    count(DISTINCT d.meeting_id)
    FROM participant_devices d JOIN participants p ON p.participant_id = d.participant_id
    JOIN meetings m ON m.meeting_id = p.meeting_id
    WHERE p.email_norm = ANY(%(emails)s) AND {_PERIOD} GROUP BY 1, 2, 3, 4"""
_MEETING = [
    "SELECT meeting_id, title, start_at, end_at, host_email FROM meetings WHERE meeting_id = %(meeting)s",
    """SELECT participant_id, display_name, email, email_norm, org_id, host, co_host, state,
       joined_at, left_at FROM participants WHERE meeting_id = %(meeting)s ORDER BY display_name""",
    """SELECT participant_id, device_type, audio_type, phone_number, joined_at, left_at
       FROM participant_devices WHERE meeting_id = %(meeting)s""",
    "SELECT email_norm, display_name, email FROM invitees WHERE meeting_id = %(meeting)s",
]
_TITLE = f"""SELECT meeting_id, title, start_at, end_at, host_email, participant_count,
    invitee_count, complete_at FROM meetings m
    WHERE lower(title) LIKE %(title)s AND {_PERIOD} ORDER BY start_at DESC LIMIT 500"""
_PHONE = """SELECT d.phone_number, d.joined_at, d.left_at, d.call_type, p.email_norm,
    p.display_name, p.email, p.state, m.meeting_id, m.title, m.start_at
    FROM participant_devices d JOIN participants p ON p.participant_id = d.participant_id
    JOIN meetings m ON m.meeting_id = p.meeting_id
    WHERE d.phone_number IS NOT NULL
      AND reverse(regexp_replace(d.phone_number, '\\D', '', 'g')) LIKE %(reversed)s
    ORDER BY m.start_at, d.joined_at"""
_DEVICE = """SELECT coalesce(nullif(p.email_norm, ''), 'participant:' || p.participant_id),
    min(p.display_name), count(*), count(DISTINCT d.meeting_id), min(d.joined_at),
    max(d.left_at), array_agg(d.meeting_id ORDER BY m.start_at)
    FROM participant_devices d JOIN participants p ON p.participant_id = d.participant_id
    JOIN meetings m ON m.meeting_id = p.meeting_id
    WHERE d.correlation_id = %(correlation)s GROUP BY 1"""


def _orgs_sql() -> str:
    """The SQL ``outside_organisations`` runs, with psycopg's placeholders."""
    sql = inv._ORGS_SQL.replace("%", "%%")
    return re.sub(r"(?<![:\w]):(start|end|own_ids|own_domains|show)\b", r"%(\1)s", sql)


def questions(subjects: dict[str, str]) -> list[Question]:
    """Every question measured, with the subjects picked from the generated data."""
    y = inv.Period(*(_utc(d) for d in YEAR))
    month = inv.Period(_utc(f"{MONTH}-01"), _utc("2026-11-01"))
    when = ["--from", YEAR[0], "--to", YEAR[1], "--case", CASE]
    meeting, phone, corr = subjects["meeting"], subjects["phone"], subjects["correlation"]
    return [
        Question("person EMAIL, a year", lambda s, st: inv.attendance_of(s, ORDINARY, y),
                 [_ATTENDED_ROWS, _ATTENDED_DEVICES, _INVITATIONS],
                 ["investigate", "person", ORDINARY, *when], layer_target_ms=5.0),
        Question(f"person '{FRAGMENT}', a year", lambda s, st: inv.attendance_of(s, FRAGMENT, y),
                 [_RESOLVE, _ATTENDED_ROWS, _ATTENDED_DEVICES, _INVITATIONS],
                 ["investigate", "person", FRAGMENT, *when]),
        Question("with EMAIL, a year", lambda s, st: inv.co_attendees(s, ORDINARY, st, y),
                 [_WITH], ["investigate", "with", ORDINARY, *when]),
        Question("with BUSY, a year", lambda s, st: inv.co_attendees(s, BUSY, st, y),
                 [_WITH], ["investigate", "with", BUSY, *when], process_target=None),
        Question("devices EMAIL, a year", lambda s, st: inv.devices_of(s, ORDINARY, st, y),
                 [_DEVICES], ["investigate", "devices", ORDINARY, *when]),
        Question(f"orgs --month {MONTH}", lambda s, st: inv.outside_organisations(s, st, month),
                 [_orgs_sql()], ["investigate", "orgs", "--month", MONTH, "--case", CASE],
                 process_target=2.0),
        Question("meeting ID", lambda s, st: inv.meeting_roster(s, meeting, st)[1], _MEETING,
                 ["investigate", "meeting", meeting, "--case", CASE]),
        Question("meetings --title falcon, a year",
                 lambda s, st: inv.find_meetings(s, title="falcon", period=y), [_TITLE],
                 ["investigate", "meetings", "--title", "falcon", *when]),
        Question("phone NUMBER", lambda s, st: inv.phone_calls(s, phone, st), [_PHONE],
                 ["investigate", "phone", phone, "--case", CASE]),
        Question("device CORRELATIONID", lambda s, st: inv.device_sessions(s, corr, st),
                 [_DEVICE], ["investigate", "device", corr, "--case", CASE]),
        Question("timeline EMAIL, a year", lambda s, st: inv.timeline(s, ORDINARY, st, y),
                 [_ATTENDED_ROWS, _ATTENDED_DEVICES, _INVITATIONS, _MET],
                 ["investigate", "timeline", ORDINARY, *when]),
    ]  # fmt: skip


def _utc(day: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


def pick_subjects(conn: psycopg.Connection) -> dict[str, str]:
    """A meeting of the month, a phone number and a device (correlationId) of the data."""

    def one(sql: str) -> str:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        assert row is not None, sql
        return str(row[0])

    return {
        "meeting": one(
            f"SELECT meeting_id FROM meetings WHERE start_at >= '{MONTH}-15'"
            " ORDER BY start_at LIMIT 1"
        ),
        "phone": one(
            "SELECT phone_number FROM participant_devices d JOIN participants p"
            " USING (participant_id) WHERE p.email_norm IS NULL AND"
            " d.phone_number IS NOT NULL ORDER BY d.participant_id LIMIT 1"
        ),
        "correlation": one(
            f"SELECT d.correlation_id FROM participant_devices d JOIN participants p"
            f" USING (participant_id) WHERE p.email_norm = '{ORDINARY}'"
            " ORDER BY d.participant_id LIMIT 1"
        ),
    }


def bare_params(conn: psycopg.Connection, subjects: dict[str, str]) -> dict[str, Any]:
    """The parameters of the bare SQL (the fragment's people resolved once, beforehand)."""
    fragment = f"%{FRAGMENT}%"
    people = [r[0] for r in conn.execute(_RESOLVE, {"fragment": fragment})]
    return {
        "start": _utc(YEAR[0]), "end": _utc(YEAR[1]), "emails": [ORDINARY], "fragment": fragment,
        "meeting": subjects["meeting"], "title": "%falcon%",
        "reversed": "".join(ch for ch in subjects["phone"] if ch.isdigit())[::-1] + "%",
        "correlation": subjects["correlation"], "own_ids": [OWN_ORG_ID.lower()],
        "own_domains": list(DOMAINS), "show": False, "people": people,
    }  # fmt: skip


# -- the run ------------------------------------------------------------------------------------


def _label(participants: int) -> str:
    return f"{participants / 1e6:g}m" if participants >= 1_000_000 else f"{participants // 1000}k"


def prepare(admin_url: str, url: str, name: str, participants: int, env: dict[str, str],
            reuse: bool) -> dict[str, Any]:  # fmt: skip
    """Create, migrate and fill the database (unless ``reuse``); open the bench case."""
    info: dict[str, Any] = {}
    if not reuse:
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _admin(admin_url, f'CREATE DATABASE "{name}"')
        subprocess.run([sys.executable, "-m", "reporting", "db", "upgrade"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        print(f"Generating {participants:,} participant rows in {name}:", flush=True)
        started = time.monotonic()
        info["stages_seconds"] = generate(_libpq(url), participants)
        info["generation_seconds"] = round(time.monotonic() - started, 1)
        print(f"  generated in {info['generation_seconds']} s", flush=True)
    # Open the case the questions are asked in (a kept database has it already).
    subprocess.run([sys.executable, "-m", "reporting", "case", "open", CASE, "--purpose",
                    "issue 11 benchmark of investigations at scale"], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    info["rows"] = counts(_libpq(url))
    print(f"  rows: {info['rows']}", flush=True)
    return info


def measure(
    url: str, env: dict[str, str], data_dir: Path, args: argparse.Namespace
) -> list[Question]:
    """Every question three ways (layer, bare SQL, whole process)."""
    settings = load_settings(database_url=url, data_dir=data_dir, org_domains=list(DOMAINS),
                             org_ids=[OWN_ORG_ID], operator="bench")  # fmt: skip
    with psycopg.connect(_libpq(url), autocommit=True) as conn, \
            Database(url, data_dir=data_dir) as db:  # fmt: skip
        conn.execute("SET jit = off")
        subjects = pick_subjects(conn)
        params = bare_params(conn, subjects)
        qs = questions(subjects)
        for q in qs:
            if "fragment" in q.name or FRAGMENT in q.name:
                q.bare = [q.bare[0]] + [s.replace("%(emails)s", "%(people)s") for s in q.bare[1:]]
            if args.explain:
                explain(conn, q, params)
            q.result.update(time_layer(db, q, settings, args.repeat))
            q.result.update(time_bare(conn, q, params, args.repeat))
            q.result.update(time_process(q, env, args.runs))
            print(f"  {q.name}: {_fmt(q.result)}", flush=True)
    return qs


def _fmt(r: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())


def verdict(q: Question) -> str:
    """pass / FAIL against the question's targets ("—" when there is none)."""
    r = q.result
    checks = []
    if q.layer_target_ms is not None:
        checks.append(r["layer_p95"] <= q.layer_target_ms)
        checks.append(r["layer_p95"] <= 2 * r["bare_p95"])
    if q.process_target is not None:
        checks.append(r["process"] is not None and r["process"] < q.process_target)
    if not checks:
        return "—"
    return "pass" if all(checks) else "FAIL"


def target(q: Question) -> str:
    parts = []
    if q.layer_target_ms is not None:
        parts.append(f"layer p95 ≤ {q.layer_target_ms:g} ms, ≤ 2× bare")
    parts.append(f"< {q.process_target:g} s" if q.process_target else "reported")
    return "; ".join(parts)


def table(qs: list[Question], help_: dict[str, Any]) -> str:
    """The printed results table."""
    head = ("question", "rows", "layer p50/p95 ms", "bare p50/p95 ms", "ratio", "process s",
            "peak RSS MB", "target", "result")  # fmt: skip
    lines = []
    for q in qs:
        r = q.result
        lines.append((
            q.name, f"{r['rows']:,}", f"{r['layer_p50']:.1f} / {r['layer_p95']:.1f}",
            f"{r['bare_p50']:.1f} / {r['bare_p95']:.1f}", f"{r['layer_p95'] / r['bare_p95']:.1f}×",
            "error" if r["process"] is None else f"{r['process']:.2f}", str(r["rss_mb"]),
            target(q), verdict(q),
        ))  # fmt: skip
    ok = help_["process"] < 0.3
    lines.append(("meetaudit --help", "", "", "", "", f"{help_['process']:.2f}",
                  str(help_["rss_mb"]), "< 0.3 s", "pass" if ok else "FAIL"))  # fmt: skip
    widths = [max(len(str(row[i])) for row in [head, *lines]) for i in range(len(head))]
    out = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *lines]
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "MEETAUDIT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    parser.add_argument("--participants", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=30, help="layer and bare SQL calls")
    parser.add_argument("--runs", type=int, default=5, help="whole-process runs per command")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database again")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN of the bare SQL")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    name = f"meetaudit_bench{_label(args.participants)}"
    url = make_url(args.database_url).set(drivername="postgresql+psycopg", database=name)
    url_s = url.render_as_string(hide_password=False)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "database": name}
    with tempfile.TemporaryDirectory(prefix="meetaudit-bench-") as tmp:
        env = _env(url_s, Path(tmp))
        try:
            results.update(prepare(args.database_url, url_s, name, args.participants, env,
                                   args.reuse))  # fmt: skip
            qs = measure(url_s, env, Path(tmp), args)
            meetaudit(["--help"], env)
            walls = [meetaudit(["--help"], env) for _ in range(args.runs)]
            help_ = {"process": statistics.median(w for w, _, _ in walls),
                     "rss_mb": max(r for _, r, _ in walls)}  # fmt: skip
        finally:
            if not args.keep:
                _admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    results["questions"] = {q.name: q.result for q in qs} | {"meetaudit --help": help_}
    print()
    print(table(qs, help_))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
