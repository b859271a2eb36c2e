"""A harvest stopped at any moment leaves only complete meetings, and the same command resumes it.

The kill -9 and Ctrl-C tests run the real ``meetaudit harvest`` in a subprocess against the
simulator served over loopback with latency, stop it mid-run, run it again, and compare every
harvested table with a clean run into another database.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text

from reporting.config import Settings, load_settings
from reporting.db.engine import Database
from reporting.db.models import HarvestRun
from reporting.errors import DatabaseError
from reporting.harvest import HarvestEvent
from reporting.webex.simulator import SimulatedOrg, Simulator, generate_org, serve
from tests.conftest import _libpq, _with_database
from tests.factories import TOKEN, assert_consistent, harvest_org, snapshot
from tests.harvest.conftest import END, NOW, START, WINDOW

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def big_org() -> SimulatedOrg:
    """Enough meetings that a loopback harvest with latency takes a couple of seconds."""
    return generate_org(seed=17, start=START, end=END, meetings=240, participants_per_meeting=6)


def _clean_snapshot(other_database_url: str, org: SimulatedOrg, tmp_path: Path) -> dict[str, Any]:
    settings = load_settings(database_url=other_database_url, data_dir=tmp_path / "clean")
    with Database(other_database_url, data_dir=tmp_path) as db:
        assert harvest_org(settings, org, WINDOW, now=NOW, db=db).status == "complete"
        return snapshot(db.engine)


@pytest.fixture
def served(big_org: SimulatedOrg) -> Iterator[str]:
    with serve(Simulator(big_org, token=TOKEN, latency=0.04)) as base_url:
        yield base_url


def _harvest_command(
    database_url: str, base_url: str, tmp_path: Path
) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEETAUDIT_")}
    env.update(
        MEETAUDIT_DATABASE_URL=database_url,
        MEETAUDIT_WEBEX_BASE_URL=base_url,
        MEETAUDIT_WEBEX_TOKEN=TOKEN,
        MEETAUDIT_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(REPO),
    )
    command = [sys.executable, "-m", "reporting", "--log-format", "json", "harvest",
               "--from", f"{START:%Y-%m-%d}", "--to", f"{END:%Y-%m-%d}"]  # fmt: skip
    return command, env


def _complete_meetings(database_url: str) -> int:
    with psycopg.connect(_libpq(database_url), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM meetings WHERE complete_at IS NOT NULL").fetchone()
    return int(row[0]) if row else 0


def _stop_midway(process: subprocess.Popen[bytes], database_url: str, sig: int, total: int) -> int:
    """Send ``sig`` once some but not all meetings are stored; return how many were."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stored = _complete_meetings(database_url) if process.poll() is None else -1
        if 5 <= stored < total - 40 or stored < 0:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the harvest finished before it could be stopped"
    process.send_signal(sig)
    process.wait(timeout=60)
    return stored


def test_kill_9_mid_run_then_the_same_command_ends_with_the_rows_of_a_clean_run(
    database_url: str, other_database_url: str, served: str, big_org: SimulatedOrg, tmp_path: Path
) -> None:
    command, env = _harvest_command(database_url, served, tmp_path)
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _stop_midway(process, database_url, signal.SIGKILL, len(big_org.meetings))
    assert process.returncode == -signal.SIGKILL
    with Database(database_url, data_dir=tmp_path) as db:
        assert_consistent(db.engine)  # only complete meetings, whatever instant the kill hit
        stored = _complete_meetings(database_url)
        assert 0 < stored < len(big_org.meetings)

        rerun = subprocess.run(command, env=env, cwd=REPO, capture_output=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr.decode()
        assert f"already complete {stored}" in rerun.stdout.decode()
        with db.sessions() as session:
            runs = session.scalars(select(HarvestRun).order_by(HarvestRun.id)).all()
        assert [r.status for r in runs] == ["interrupted", "complete"]
        assert "killed or crashed" in (runs[0].error or "")
        # The killed run's record says what it stored, though it never reached its end.
        assert runs[0].meetings_complete == stored and runs[0].meetings_listed >= stored
        assert runs[0].participants > 0
        assert snapshot(db.engine) == _clean_snapshot(other_database_url, big_org, tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_cleanly_and_the_run_resumes(
    database_url: str,
    other_database_url: str,
    served: str,
    big_org: SimulatedOrg,
    tmp_path: Path,
    sig: signal.Signals,
) -> None:
    command, env = _harvest_command(database_url, served, tmp_path)
    # Ctrl-C reaches a command run from a terminal. SIGTERM must stop one started in the
    # background by a script or cron too (`nohup meetaudit harvest &`), which inherits SIGINT
    # ignored — whatever the disposition this test itself was started with.
    interactive = sig == signal.SIGINT
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(
            signal.SIGINT, signal.SIG_DFL if interactive else signal.SIG_IGN
        ),
    )  # fmt: skip
    _stop_midway(process, database_url, sig, len(big_org.meetings))
    _, stderr = process.communicate()
    assert process.returncode == 130, stderr.decode()
    assert "stopped by the operator" in stderr.decode() and "Traceback" not in stderr.decode()
    with Database(database_url, data_dir=tmp_path) as db:
        assert_consistent(db.engine)
        with db.sessions() as session:
            (run,) = session.scalars(select(HarvestRun)).all()
        assert run.status == "interrupted" and run.finished_at is not None
        assert run.meetings_complete == _complete_meetings(database_url) > 0

        rerun = subprocess.run(command, env=env, cwd=REPO, capture_output=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr.decode()
        assert snapshot(db.engine) == _clean_snapshot(other_database_url, big_org, tmp_path)


def test_the_database_going_away_ends_the_run_clearly_and_a_rerun_completes(
    settings: Settings,
    database_url: str,
    other_database_url: str,
    big_org: SimulatedOrg,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_server_url: str,
) -> None:
    import reporting.harvest as harvest

    monkeypatch.setattr(harvest, "WRITE_BATCH_MEETINGS", 4)
    monkeypatch.setattr(harvest, "PROGRESS_INTERVAL", 0.0)
    name = database_url.rsplit("/", 1)[1]
    admin = _libpq(_with_database(pg_server_url, "postgres"))
    gone = False

    def pull_the_plug(event: HarvestEvent) -> None:
        nonlocal gone
        if not gone and event.kind == "progress" and event.data["stored"] >= 8:
            gone = True
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                             (name,))  # fmt: skip

    sim = Simulator(big_org, token=TOKEN, now=NOW, latency=0.005)
    try:
        with pytest.raises(DatabaseError) as caught:
            harvest_org(settings, big_org, WINDOW, now=NOW, simulator=sim, on_event=pull_the_plug)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert gone
    message = str(caught.value)
    assert "database" in message and "run the same command again" in message
    with Database(database_url, data_dir=tmp_path) as db:
        assert_consistent(db.engine)
        with db.engine.connect() as conn:
            stored = conn.execute(
                text("SELECT count(*) FROM meetings WHERE complete_at IS NOT NULL")
            ).scalar_one()
        assert 8 <= stored < len(big_org.meetings)

        again = harvest_org(settings, big_org, WINDOW, now=NOW, db=db)
        assert again.status == "complete" and again.meetings_skipped == stored
        with db.sessions() as session:
            statuses = [
                r.status for r in session.scalars(select(HarvestRun).order_by(HarvestRun.id))
            ]
        assert statuses == ["interrupted", "complete"]  # the lost run could not record its end
        assert snapshot(db.engine) == _clean_snapshot(other_database_url, big_org, tmp_path)


def test_window_times_are_whole_seconds_when_split() -> None:
    from reporting.harvest import Window

    w = Window(START, START + dt.timedelta(seconds=1001))
    first, second = w.halves()
    assert first.end.microsecond == 0 and first.end == second.start
