"""Benchmark the harvest against the simulator over loopback (a benchmark, not a timed test).

    python bench/bench_harvest.py [--database-url URL] [--meetings 2000] [--participants 20]
                                  [--latency 0.05] [--skip-sequential]

A month of ``--meetings`` meetings × ``--participants`` participants is served by the Webex
simulator in a separate process (so it does not compete with the harvesters for the GIL), over
real loopback HTTP, with ``--latency`` seconds added to every answer. Each contestant harvests the
whole month into its own fresh database on the same PostgreSQL server:

* **meetaudit** — the real ``Harvester`` with the default settings (``concurrency`` 8 meetings in
  flight, each fetching participants and invitees side by side: up to 16 requests at once).
  It stores meetings, participants, devices, breakout attendance, invitees, raw items and gaps.
* **wxc-sdk async** — ``AsWebexSimpleApi`` at the same concurrency (8 meetings in flight,
  ``concurrent_requests=16``), participants and invitees per meeting, stored with SQLAlchemy ORM
  objects (one row per participant and invitee, the main columns only, commit per meeting).
* **wxc-sdk sequential** — the script a user would write: ``WebexSimpleApi``, one meeting at a
  time (``MeetingParticipantsApi`` then ``MeetingInviteesApi``), SQLAlchemy ORM inserts,
  commit per meeting.

Both SDK clients are pointed at the simulator the way wxc-sdk allows it: its REST session takes
every endpoint from the ``BASE`` attribute (``RestSession.ep`` / ``AsRestSession.ep``), which is
set on the session instance.

Separately, the write path alone (no network): meetaudit's ``store_meetings`` on validated
records, in the harvester's batch size, against a bare ``COPY``-into-staging +
``INSERT … ON CONFLICT`` of the very same rows built beforehand (so the bare run pays nothing
for building rows or JSON), both in the same process and run; and what this server can do at
all: the participants' raw JSON alone into an unlogged table (the ceiling), and the same rows
pre-formatted as COPY text, written with no client work over one connection per CPU (the bound
no writer can beat here). It says whether 100,000 participant rows/s is within that bound.

The database is ``--database-url``, else ``$MEETAUDIT_BENCH_DATABASE_URL``, else an embedded
PostgreSQL in a temporary directory. Databases named ``meetaudit_bench_*`` are created (and
dropped again) on that server.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Boolean, DateTime, Text, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reporting.config import load_settings
from reporting.db.embedded import EmbeddedPostgres
from reporting.db.engine import Database
from reporting.db.migrate import upgrade
from reporting.db.models import HarvestRun
from reporting.db.writes import (
    _BREAKOUT_COLUMNS,
    _DEVICE_COLUMNS,
    _INVITEE_COLUMNS,
    _PARTICIPANT_COLUMNS,
    MeetingRecord,
    _rows,
    store_meetings,
    upsert_listed_meetings,
)
from reporting.harvest import WRITE_BATCH_MEETINGS, Harvester, Window, month_window, previous_month
from reporting.webex import schemas
from reporting.webex.simulator import SimulatedOrg, Simulator, generate_org, serve

TOKEN = "bench-token"


# -- the simulator, in its own process -------------------------------------------------------


def _org(args: argparse.Namespace, window: Window) -> SimulatedOrg:
    return generate_org(seed=args.seed, start=window.start, end=window.end, meetings=args.meetings,
                        participants_per_meeting=args.participants)  # fmt: skip


def _serve(conn: Connection, args: argparse.Namespace, window: Window) -> None:
    org = _org(args, window)
    with serve(Simulator(org, token=TOKEN, latency=args.latency)) as base_url:
        conn.send(base_url)
        conn.recv()  # until the benchmark says stop


@contextmanager
def simulator_process(args: argparse.Namespace, window: Window) -> Iterator[str]:
    parent, child = mp.Pipe()
    process = mp.get_context("fork").Process(target=_serve, args=(child, args, window), daemon=True)
    process.start()
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()


# -- databases --------------------------------------------------------------------------------


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Server:
    """The PostgreSQL server the benchmark uses; fresh databases on request."""

    def __init__(self, url: str | None) -> None:
        self._embedded: EmbeddedPostgres | None = None
        if url is None:
            self._embedded = EmbeddedPostgres(
                Path(tempfile.mkdtemp(prefix="meetaudit-bench-")) / "pgdata"
            )
            url = self._embedded.start()
        self.url = url
        self.created: list[str] = []

    def _admin(self, sql: str) -> None:
        with psycopg.connect(_libpq(make_url(self.url).set(database="postgres").render_as_string(False)),
                             autocommit=True) as conn:  # fmt: skip
            conn.execute(sql)  # type: ignore[arg-type]

    def fresh(self, name: str, *, migrate: bool = True) -> str:
        full = f"meetaudit_bench_{name}"
        self._admin(f'DROP DATABASE IF EXISTS "{full}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{full}"')
        self.created.append(full)
        url = make_url(self.url).set(database=full).render_as_string(hide_password=False)
        if migrate:
            with Database(url, data_dir=Path(tempfile.gettempdir())) as db:
                upgrade(db.engine)
        return url

    def checkpoint(self) -> None:
        """Flush PostgreSQL's dirty pages now, so no contestant pays for the one before."""
        self._admin("CHECKPOINT")

    def close(self) -> None:
        for name in self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self._embedded is not None:
            self._embedded.stop()


def _count(url: str, sql: str) -> int:
    with psycopg.connect(_libpq(url)) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
    return int(row[0]) if row else 0


# -- contestants ------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: float
    meetings: int
    participants: int
    rows: int
    detail: str = ""


def run_meetaudit(url: str, base_url: str, window: Window) -> Result:
    settings = load_settings(database_url=url, webex_base_url=base_url, webex_token=TOKEN,
                             data_dir=Path(tempfile.gettempdir()) / "meetaudit-bench")  # fmt: skip
    with Database(url, data_dir=settings.data_dir) as db:
        started = time.perf_counter()
        summary = Harvester(settings, db).run(window)
        seconds = time.perf_counter() - started
    assert summary.status == "complete", summary
    rows = sum(_count(url, f"SELECT count(*) FROM {t}") for t in (
        "meetings", "participants", "participant_devices", "breakout_attendance", "invitees"))  # fmt: skip
    return Result(f"meetaudit (concurrency {settings.concurrency})", seconds, summary.meetings_complete,
                  summary.participants, rows,
                  f"{summary.requests} requests, {summary.devices} devices, {summary.invitees} invitees")  # fmt: skip


class SdkBase(DeclarativeBase):
    """The tables a user's script would make: one row per participant and per invitee."""


class SdkParticipant(SdkBase):
    __tablename__ = "sdk_participants"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    meeting_id: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    host: Mapped[bool | None] = mapped_column(Boolean)
    joined_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    left_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class SdkInvitee(SdkBase):
    __tablename__ = "sdk_invitees"
    meeting_id: Mapped[str] = mapped_column(Text, primary_key=True)
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    email: Mapped[str | None] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)


def _store_sdk(
    session: Session, meeting_id: str, participants: Sequence[Any], invitees: Sequence[Any]
) -> None:
    for p in participants:
        session.add(SdkParticipant(id=p.id, meeting_id=meeting_id, email=p.email, display_name=p.display_name,
                                   host=p.host, joined_time=p.joined_time, left_time=p.left_time))  # fmt: skip
    for i in invitees:
        session.add(
            SdkInvitee(meeting_id=meeting_id, id=i.id, email=i.email, display_name=i.display_name)
        )
    session.commit()


def _sdk_engine(url: str) -> Any:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    SdkBase.metadata.create_all(engine)
    return engine


def _sdk_result(name: str, seconds: float, engine: Any, requests: int | None = None) -> Result:
    with Session(engine) as session:
        participants = session.scalar(select(func.count()).select_from(SdkParticipant)) or 0
        invitees = session.scalar(select(func.count()).select_from(SdkInvitee)) or 0
        meetings = session.scalar(select(func.count(func.distinct(SdkParticipant.meeting_id)))) or 0
    return Result(name, seconds, meetings, participants, participants + invitees,
                  f"{invitees} invitees; no devices, raw items or gaps")  # fmt: skip


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_sdk_sequential(url: str, base_url: str, window: Window) -> Result:
    from wxc_sdk import WebexSimpleApi

    engine = _sdk_engine(url)
    api = WebexSimpleApi(tokens=TOKEN)
    api.session.BASE = base_url  # every endpoint is built from it (RestSession.ep)
    started = time.perf_counter()
    meetings = list(api.meetings.list(meeting_type="meeting", state="ended", from_=_iso(window.start),
                                      to_=_iso(window.end), max=100))  # fmt: skip
    with Session(engine) as session:
        for meeting in meetings:
            participants = list(
                api.meetings.participants.list_participants(meeting_id=meeting.id, max=100)
            )
            invitees = list(api.meetings.invitees.list(meeting_id=meeting.id, max=100))
            _store_sdk(session, meeting.id, participants, invitees)
    seconds = time.perf_counter() - started
    return _sdk_result("wxc-sdk sequential + ORM", seconds, engine)


def run_sdk_async(
    url: str, base_url: str, window: Window, meetings_in_flight: int, requests: int
) -> Result:
    from wxc_sdk.as_api import AsWebexSimpleApi

    engine = _sdk_engine(url)

    async def harvest() -> None:
        async with AsWebexSimpleApi(tokens=TOKEN, concurrent_requests=requests) as api:
            api.session.BASE = base_url  # every endpoint is built from it (AsRestSession.ep)
            meetings = await api.meetings.list(meeting_type="meeting", state="ended", from_=_iso(window.start),
                                               to_=_iso(window.end), max=100)  # fmt: skip
            limiter = asyncio.Semaphore(meetings_in_flight)
            with Session(engine) as session:

                async def one(meeting: Any) -> None:
                    async with limiter:
                        participants, invitees = await asyncio.gather(
                            api.meetings.participants.list_participants(
                                meeting_id=meeting.id, max=100
                            ),
                            api.meetings.invitees.list(meeting_id=meeting.id, max=100),
                        )
                    _store_sdk(session, meeting.id, participants, invitees)

                await asyncio.gather(*(one(m) for m in meetings))

    started = time.perf_counter()
    asyncio.run(harvest())
    seconds = time.perf_counter() - started
    return _sdk_result(
        f"wxc-sdk async ({meetings_in_flight} meetings, {requests} requests)", seconds, engine
    )


# -- the write path alone ---------------------------------------------------------------------


def _records(org: SimulatedOrg) -> list[MeetingRecord]:
    records = []
    for meeting in org.meetings:
        raws = org.participants[meeting["id"]]
        participants, problem = schemas.validate_items(schemas.PARTICIPANTS, "participant", raws)
        assert problem is None, problem
        inv_raws = org.invitees[meeting["id"]]
        invitees, problem = schemas.validate_items(schemas.INVITEES, "invitee", inv_raws)
        assert problem is None, problem
        records.append(MeetingRecord(meeting["id"], list(zip(participants, raws, strict=True)),
                                     list(zip(invitees, inv_raws, strict=True))))  # fmt: skip
    return records


def _prepare(url: str, org: SimulatedOrg, window: Window) -> int:
    with Database(url, data_dir=Path(tempfile.gettempdir())) as db, db.session() as session:
        run = HarvestRun(operator="bench", hostname="bench", meetaudit_version="bench", api_base_url="bench",
                         window_from=window.start, window_to=window.end, parameters={}, status="running")  # fmt: skip
        session.add(run)
        session.flush()
        upsert_listed_meetings(
            session, run.id, [(schemas.Meeting.model_validate(m), m) for m in org.meetings]
        )
        return run.id


def write_path(
    server: Server, org: SimulatedOrg, window: Window
) -> tuple[Result, Result, Result, Result]:
    records = _records(org)
    batches = [
        records[i : i + WRITE_BATCH_MEETINGS] for i in range(0, len(records), WRITE_BATCH_MEETINGS)
    ]

    url = server.fresh("write")
    run_id = _prepare(url, org, window)
    with Database(url, data_dir=Path(tempfile.gettempdir())) as db:
        started = time.perf_counter()
        for batch in batches:
            with db.session() as session:
                store_meetings(session, run_id, batch)
        ours = time.perf_counter() - started
    participants = _count(url, "SELECT count(*) FROM participants")
    rows = sum(_count(url, f"SELECT count(*) FROM {t}") for t in (
        "participants", "participant_devices", "breakout_attendance", "invitees"))  # fmt: skip

    bare_url = server.fresh("copy")
    _prepare(bare_url, org, window)
    tables = (
        ("participants", _PARTICIPANT_COLUMNS, ("participant_id",)),
        ("participant_devices", _DEVICE_COLUMNS, ("participant_id", "seq")),
        ("breakout_attendance", _BREAKOUT_COLUMNS, ("participant_id", "seq")),
        ("invitees", _INVITEE_COLUMNS, ("meeting_id", "invitee_id")),
    )
    prebuilt = []
    for batch in batches:  # built before the clock starts: the bare run pays only PostgreSQL
        parts: list[list[tuple[Any, ...]]] = [[], [], [], []]
        for record in batch:
            r = _rows(record)
            for acc, got in zip(
                parts, (r.participants, r.devices, r.breakouts, r.invitees), strict=True
            ):
                acc.extend(got)
        prebuilt.append(parts)
    with psycopg.connect(_libpq(bare_url)) as conn:
        for name, _, _ in tables:
            conn.execute(f"CREATE TEMP TABLE stage_{name} (LIKE {name}) ON COMMIT DELETE ROWS")  # type: ignore[arg-type]
        conn.commit()
        started = time.perf_counter()
        for parts in prebuilt:
            with conn.transaction():
                for (name, columns, key), rows_ in zip(tables, parts, strict=True):
                    cols = ", ".join(columns)
                    with (
                        conn.cursor() as cur,
                        cur.copy(f"COPY stage_{name} ({cols}) FROM STDIN") as copy,
                    ):  # type: ignore[arg-type]
                        for row in rows_:
                            copy.write_row(row)
                    update = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
                    conn.execute(
                        f"INSERT INTO {name} ({cols}) SELECT {cols} FROM stage_{name} "  # type: ignore[arg-type]
                        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {update}"
                    )
        bare = time.perf_counter() - started
        # The server's ceiling on this machine: only the participants' raw JSON, into one JSONB
        # column of an unlogged table with no index, constraint or other column — the least
        # PostgreSQL can do per participant while still keeping the raw item as JSONB.
        raw_only = [(row[-1],) for parts in prebuilt for row in parts[0]]
        conn.execute("CREATE UNLOGGED TABLE ceiling (raw jsonb)")
        conn.commit()
        started = time.perf_counter()
        with conn.transaction():
            for start in range(0, len(raw_only), 4000):
                with conn.cursor() as cur, cur.copy("COPY ceiling (raw) FROM STDIN") as copy:
                    for row in raw_only[start : start + 4000]:
                        copy.write_row(row)
        ceiling = time.perf_counter() - started
    assert _count(bare_url, "SELECT count(*) FROM participants") == participants
    bound = machine_bound(server, org, window, tables, prebuilt)
    assert _count(bound[0], "SELECT count(*) FROM participants") == participants
    return (
        Result("meetaudit store_meetings", ours, len(records), participants, rows,
               "rows built from validated records, raw JSON, digests, revisions check"),
        Result("bare COPY→staging + upsert", bare, len(records), participants, rows, "rows built beforehand"),
        Result("ceiling: raw JSONB only, unlogged", ceiling, len(records), participants,
               len(raw_only), "participants' raw JSON alone, no index, no WAL"),
        Result(f"bound: COPY text, {bound[2]} connections", bound[1], len(records), participants,
               rows, "the same rows and schema, no client work, batches in parallel"),
    )  # fmt: skip


def machine_bound(
    server: Server,
    org: SimulatedOrg,
    window: Window,
    tables: Sequence[tuple[str, Sequence[str], Sequence[str]]],
    prebuilt: list[list[list[tuple[Any, ...]]]],
) -> tuple[str, float, int]:
    """The most any writer can get out of this server for these rows and this schema.

    Every batch's rows are turned into PostgreSQL's own COPY text beforehand (by the server
    itself: COPY into a scratch table, COPY out again), so the timed part does no client work at
    all: plain ``COPY`` into the freshly migrated, empty tables — no staging, no upsert, no
    revision check — one transaction per batch, batches spread over one connection per CPU, the
    best of three runs.
    Whatever the write path does, it cannot store these rows faster than this here.
    Returns the database url, the seconds and the number of connections.
    """
    url = server.fresh("bound")
    _prepare(url, org, window)
    texts: list[list[bytes]] = []
    with psycopg.connect(_libpq(url)) as conn:
        for name, _, _ in tables:
            conn.execute(f"CREATE TEMP TABLE scratch_{name} (LIKE {name})")  # type: ignore[arg-type]
        for parts in prebuilt:
            batch_texts = []
            for (name, columns, _), rows_ in zip(tables, parts, strict=True):
                cols = ", ".join(columns)
                with conn.cursor() as cur:
                    with cur.copy(f"COPY scratch_{name} ({cols}) FROM STDIN") as copy:  # type: ignore[arg-type]
                        for row in rows_:
                            copy.write_row(row)
                    with cur.copy(f"COPY scratch_{name} ({cols}) TO STDOUT") as copy:  # type: ignore[arg-type]
                        batch_texts.append(b"".join(bytes(chunk) for chunk in copy))
                    cur.execute(f"TRUNCATE scratch_{name}")  # type: ignore[arg-type]
            texts.append(batch_texts)
    workers = max(1, os.cpu_count() or 1)
    connections = [psycopg.connect(_libpq(url), autocommit=True) for _ in range(workers)]

    def write(k: int) -> None:
        conn = connections[k]
        for batch_texts in texts[k::workers]:
            with conn.transaction():
                for (name, columns, _), data in zip(tables, batch_texts, strict=True):
                    sql = f"COPY {name} ({', '.join(columns)}) FROM STDIN"
                    with conn.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[arg-type]
                        copy.write(data)

    best = float("inf")
    try:
        for attempt in range(3):  # a bound: the best of three
            if attempt:
                connections[0].execute(
                    "TRUNCATE participants, participant_devices, breakout_attendance, invitees"
                )
            server.checkpoint()
            threads = [threading.Thread(target=write, args=(k,)) for k in range(workers)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            best = min(best, time.perf_counter() - started)
    finally:
        for conn in connections:
            conn.close()
    return url, best, workers


# -- report -----------------------------------------------------------------------------------


def _table(results: list[Result], baseline: Result | None, label: str) -> None:
    print(f"\n{label}")
    print(f"{'contestant':44} {'seconds':>8} {'meetings':>8} {'particip.':>9} {'rows':>8} "
          f"{'particip./s':>11} {'speed-up':>8}")  # fmt: skip
    for r in results:
        speed = f"{baseline.seconds / r.seconds:7.1f}x" if baseline else ""
        print(f"{r.name:44} {r.seconds:8.2f} {r.meetings:8d} {r.participants:9d} {r.rows:8d} "
              f"{r.participants / r.seconds:11.0f} {speed:>8}   {r.detail}")  # fmt: skip


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("MEETAUDIT_BENCH_DATABASE_URL"))
    parser.add_argument("--meetings", type=int, default=2000)
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="Runs of meetaudit and of the async SDK, taken in turn; the best counts.",
    )
    parser.add_argument(
        "--skip-sequential", action="store_true", help="Skip the slow sequential SDK run."
    )
    parser.add_argument(
        "--write-only", action="store_true", help="Only the write path (no network)."
    )
    args = parser.parse_args(argv)

    zone = dt.UTC
    window = month_window(previous_month(dt.datetime.now(dt.UTC), zone), zone)
    server = Server(args.database_url)
    print(f"meetaudit harvest benchmark: {args.meetings} meetings × ~{args.participants} participants, "
          f"{args.latency * 1000:.0f} ms per request, window {window.start:%Y-%m}, PostgreSQL "
          f"{make_url(server.url).render_as_string(hide_password=True)}, {os.cpu_count()} CPUs")  # fmt: skip
    try:
        org = _org(args, window)
        mine_w, bare, ceiling, bound = write_path(server, org, window)
        _table([mine_w, bare, ceiling, bound], None, "Write path alone (no network)")
        ratio = bare.seconds / mine_w.seconds
        rate = mine_w.participants / mine_w.seconds
        top = ceiling.participants / ceiling.seconds
        print(f"  meetaudit: {rate:,.0f} participant rows/s (target ≥ 100,000: {_verdict(rate >= 100_000)}); "
              f"bare COPY: {bare.participants / bare.seconds:,.0f}/s; meetaudit ÷ bare = {ratio:.2f}× "
              f"(target ≥ 0.6×: {_verdict(ratio >= 0.6)})")  # fmt: skip
        print(f"  this server's ceiling for the participants' raw JSONB alone: {top:,.0f}/s; "
              f"meetaudit ÷ ceiling = {rate / top:.2f}×, bare ÷ ceiling = "
              f"{bare.participants / bare.seconds / top:.2f}×")  # fmt: skip
        most = bound.participants / bound.seconds
        print(f"  the most any writer gets out of this server for these rows and this schema: "
              f"{most:,.0f}/s — 100,000/s is {'within' if most >= 100_000 else 'beyond'} "
              f"this machine's reach; meetaudit ÷ bound = {rate / most:.2f}×")  # fmt: skip
        if args.write_only:
            return 0

        results: list[Result] = []
        with simulator_process(args, window) as base_url:
            concurrency = load_settings().concurrency
            ours: list[Result] = []
            theirs: list[Result] = []
            # Taken in turn and best of --repeat: a shared machine's noise hits both alike.
            for _ in range(max(1, args.repeat)):
                server.checkpoint()
                ours.append(run_meetaudit(server.fresh("meetaudit"), base_url, window))
                server.checkpoint()
                theirs.append(run_sdk_async(server.fresh("sdk_async", migrate=False), base_url, window,
                                            concurrency, concurrency * 2))  # fmt: skip
            results.append(min(ours, key=lambda r: r.seconds))
            results.append(min(theirs, key=lambda r: r.seconds))
            if not args.skip_sequential:
                server.checkpoint()
                results.append(
                    run_sdk_sequential(server.fresh("sdk_seq", migrate=False), base_url, window)
                )
        sequential = results[2] if len(results) > 2 else None
        _table(
            results,
            sequential,
            f"Harvest over loopback (best of {max(1, args.repeat)} runs taken in turn for "
            "the first two; speed-up against the sequential script)",
        )
        mine, sdk_async = results[0], results[1]
        print(f"  meetaudit ÷ async SDK time: {sdk_async.seconds / mine.seconds:.2f}× "
              f"(target ≥ 1.0×: {_verdict(mine.seconds <= sdk_async.seconds)})")  # fmt: skip
        if sequential:
            speed = sequential.seconds / mine.seconds
            print(
                f"  meetaudit ÷ sequential script time: {speed:.1f}× (target ≥ 10×: {_verdict(speed >= 10)})"
            )
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
