"""Benchmark of the monthly report at organisation scale (run on demand, never in the tests).

    python bench/bench_report.py --database-url postgresql://postgres@127.0.0.1/postgres \\
        [--sizes 2000,20000] [--participants 20] [--skip-plain] [--json results.json]

For each size it creates a fresh database (``meetaudit_bench_<size>``), migrates it, loads a
simulated month (``generate_org``: ≈ ``--participants`` people per meeting, every awkward shape
the simulator knows) straight through ``reporting.db.writes`` — the harvester's own write path,
without HTTP — then renders the monthly PDF once with ``generate_report`` and measures wall time,
peak RSS (this process plus its rendering workers, sampled every 0.1 s) and pages.

For the smallest size it also measures, in the same run, a *plain* render: one WeasyPrint
document holding the full per-meeting rosters of the month (every person row, the report's own
roster template and stylesheet), in a child process so its peak RSS is its own. That is what the
report would cost without bounded parts; the issue asks for at least 2× faster at a quarter of
its peak memory.

Reports are signed with a starter certificate and timestamped by a loopback TSA (``tests/tsa.py``),
as a signing installation runs them; ``signing_seconds`` is that stage's cost (signature,
timestamp, signed file). ``--unsigned`` renders without.

Targets (issue 4): the 20,000-meeting month under 3 minutes and 2 GB peak RSS on 2 cores, time
growing no faster than linearly with the month's size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reporting.config import load_settings  # noqa: E402
from reporting.db.engine import Database  # noqa: E402
from reporting.db.migrate import upgrade  # noqa: E402
from reporting.db.models import HarvestRun  # noqa: E402
from reporting.db.writes import MeetingRecord, store_meetings, upsert_listed_meetings  # noqa: E402
from reporting.harvest import Window  # noqa: E402
from reporting.webex import schemas  # noqa: E402
from reporting.webex.simulator import generate_org  # noqa: E402
from tests.tsa import running_tsa  # noqa: E402

WINDOW = Window(dt.datetime(2026, 10, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
BATCH = 250


class PeakRSS:
    """Samples the RSS of a process and all its children; ``peak`` is the largest sum seen."""

    def __init__(self, pid: int | None = None, interval: float = 0.1) -> None:
        self.proc = psutil.Process(pid or os.getpid())
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _admin(url: str, sql: str) -> None:
    libpq = make_url(url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(libpq.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def load_month(db: Database, meetings: int, participants: int) -> dict[str, Any]:
    """Store a simulated month through the harvester's write path; return what was stored."""
    org = generate_org(seed=2026, start=WINDOW.start, end=WINDOW.end, meetings=meetings,
                       participants_per_meeting=participants, hostile=True)  # fmt: skip
    with db.session() as session:
        run = HarvestRun(
            operator="bench", hostname="bench", meetaudit_version="bench",
            api_base_url="https://webexapis.com/v1", window_from=WINDOW.start,
            window_to=WINDOW.end, parameters={"bench": True}, status="complete",
            finished_at=dt.datetime.now(dt.UTC),
        )  # fmt: skip
        session.add(run)
        session.flush()
        run_id = run.id
    started = time.monotonic()
    counts = {"meetings": 0, "participants": 0, "invitees": 0, "devices": 0}
    for start in range(0, len(org.meetings), BATCH):
        batch = org.meetings[start : start + BATCH]
        listed = [(schemas.Meeting.model_validate(m), m) for m in batch]
        records = []
        for m in batch:
            # As the harvester does: NUL characters (PostgreSQL refuses them) become U+FFFD.
            parts = [schemas.scrub(p) for p in org.participants[m["id"]]]
            invs = [schemas.scrub(i) for i in org.invitees[m["id"]]]
            records.append(
                MeetingRecord(
                    meeting_id=m["id"],
                    participants=[(schemas.Participant.model_validate(p), p) for p in parts],
                    invitees=[(schemas.Invitee.model_validate(i), i) for i in invs],
                )
            )
        with db.session() as session:
            upsert_listed_meetings(session, run_id, listed)
            stored = store_meetings(session, run_id, records)
        counts["meetings"] += stored.meetings
        counts["participants"] += stored.participants
        counts["invitees"] += stored.invitees
        counts["devices"] += stored.devices
    counts["load_seconds"] = round(time.monotonic() - started, 1)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return counts


def run_report(db: Database, url: str, out: Path, label: str, *, tsa: Any = None) -> dict[str, Any]:
    """One ``generate_report`` of the month: wall time, peak RSS, pages; with ``tsa`` (a
    running loopback TSA) signed with a starter certificate and timestamped, and the signing
    stage's cost (signature, timestamp, writing the signed file) reported apart."""
    from reporting.report import generate_report
    from reporting.report.signing import create_starter_keys

    signed: dict[str, Any] = {}
    if tsa is not None:
        keys = create_starter_keys(out / f"keys-{label}", org_name="Acme")
        signed = {"signing_cert_file": keys.signing_cert, "signing_key_file": keys.signing_key,
                  "tsa_url": tsa.url}  # fmt: skip
    settings = load_settings(
        database_url=url, data_dir=out / "data", output_dir=out, org_name="Acme",
        org_domains=["acme.example", "acme-corp.example"], operator="bench", **signed,
    )  # fmt: skip
    stages: dict[str, float] = {}
    t0 = time.monotonic()

    def progress(stage: str, done: int, total: int | None) -> None:
        stages.setdefault(stage, round(time.monotonic() - t0, 1))

    with PeakRSS() as rss:
        started = time.monotonic()
        result = generate_report(settings, db, WINDOW, label=label, progress=progress)
        wall = time.monotonic() - started
    signing = {}
    if tsa is not None:
        # Signing is the last stage; after it only the file's hash and the ledger entry remain.
        signing = {
            "signed_and_timestamped": True,
            "signing_seconds": round(wall - stages.get("signing", wall), 2),
            "tsa_requests": tsa.requests,
        }
    return {
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(rss.peak / 2**20),
        "pages": result.pages,
        "bytes": result.files[0].bytes,
        "rosters_printed": result.rosters_included,
        "reconciliation_rows": result.control_totals["reconciliation_rows"],
        "stage_started_at_seconds": stages,
        **signing,
    }


def _plain_child(url: str, target: str, queue: Any) -> None:
    """In a child process: every roster row of the month in one WeasyPrint document."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    from reporting.report.api import snapshot
    from reporting.report.context import ReportParameters, build_context
    from reporting.report.templating import environment, make_fetcher, templates_base_url
    from reporting.resources import templates_dir

    started = time.monotonic()
    db = Database(url, data_dir=Path(tempfile.gettempdir()))
    params = ReportParameters(
        label="plain", period_from=WINDOW.start, period_to=WINDOW.end, timezone="UTC",
        org_name="Acme", org_domains=("acme.example", "acme-corp.example"), org_ids=(),
        min_attendance_minutes=2.0, show_phone_numbers=False, roster_row_limit=10**9,
        exception_row_limit=500, as_of=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        with snapshot(db) as session:
            ctx = build_context(session, params, workdir=Path(tmp))
        blocks: list[dict[str, Any]] = []
        rows = 0
        assert ctx.rosters is not None
        for n, block in enumerate(ctx.rosters):
            blocks.append({"kind": "meeting", "m": block["meeting"], "id": f"m{n}", "cont": False})
            blocks.append({"kind": "table", "table": "roster", "rows": block["rows"]})
            rows += len(block["rows"])
        html = environment().get_template("part.html").render(title="plain", blocks=blocks)
    fetcher = make_fetcher()
    fonts = FontConfiguration()
    css = CSS(filename=str(templates_dir() / "report.css"), url_fetcher=fetcher, font_config=fonts)
    document = HTML(string=html, base_url=templates_base_url(), url_fetcher=fetcher).render(
        stylesheets=[css], font_config=fonts
    )
    document.write_pdf(target)
    queue.put({"rows": rows, "pages": len(document.pages),
               "wall_seconds_inside": round(time.monotonic() - started, 1)})  # fmt: skip
    db.close()


def run_plain(url: str, out: Path) -> dict[str, Any]:
    """The single-document render of the full rosters, measured in a child process."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    started = time.monotonic()
    child = ctx.Process(target=_plain_child, args=(url, str(out / "plain.pdf"), queue))
    child.start()
    assert child.pid is not None
    with PeakRSS(child.pid) as rss:
        child.join()
    wall = time.monotonic() - started
    info = queue.get(timeout=5) if child.exitcode == 0 else {"error": f"exit {child.exitcode}"}
    return {"wall_seconds": round(wall, 1), "peak_rss_mb": round(rss.peak / 2**20), **info}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "MEETAUDIT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres"))  # fmt: skip
    parser.add_argument("--sizes", default="2000,20000")
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--skip-plain", action="store_true")
    parser.add_argument(
        "--unsigned", action="store_true",
        help="render without signing and timestamping (default: signed, loopback TSA)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, Any] = {"cpus": os.cpu_count(), "sizes": {}}
    for size in sizes:
        name = f"meetaudit_bench_{size}"
        url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
        _admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _admin(args.database_url, f'CREATE DATABASE "{name}"')
        try:
            with Database(url, data_dir=Path(tempfile.gettempdir())) as db, \
                    tempfile.TemporaryDirectory(prefix="meetaudit-bench-") as tmp:  # fmt: skip
                upgrade(db.engine)
                entry: dict[str, Any] = {"stored": load_month(db, size, args.participants)}
                print(f"[{size}] stored {entry['stored']}", flush=True)
                if args.unsigned:
                    entry["report"] = run_report(db, url, Path(tmp), f"bench-{size}")
                else:
                    with running_tsa(Path(tmp) / "tsa") as tsa:
                        entry["report"] = run_report(db, url, Path(tmp), f"bench-{size}", tsa=tsa)
                print(f"[{size}] report {entry['report']}", flush=True)
                if size == min(sizes) and not args.skip_plain:
                    entry["plain_single_document"] = run_plain(url, Path(tmp))
                    print(f"[{size}] plain {entry['plain_single_document']}", flush=True)
                results["sizes"][str(size)] = entry
        finally:
            if not args.keep:
                _admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    small, big = str(min(sizes)), str(max(sizes))
    if small != big:
        a, b = results["sizes"][small]["report"], results["sizes"][big]["report"]
        results["time_growth_vs_size"] = round(
            (b["wall_seconds"] / a["wall_seconds"]) / (int(big) / int(small)), 2
        )
    plain = results["sizes"][small].get("plain_single_document")
    if plain and "error" not in plain:
        ours = results["sizes"][small]["report"]
        results["vs_plain"] = {
            "speedup": round(plain["wall_seconds"] / ours["wall_seconds"], 1),
            "memory_ratio": round(ours["peak_rss_mb"] / plain["peak_rss_mb"], 2),
        }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
