"""Harvests of a server generated from the official spec, over many seeds: what must always hold.

Each seed is one harvest of a three-day window from ``tests.webex.spec_server.SpecServer``
through the real client (an ``httpx`` transport, like the simulator's). Whatever the server
sends, the harvest ends with a documented exit status, no traceback, in bounded requests and
time; the report says Complete exactly when ``meetaudit gaps`` finds nothing missing; and every
row stored is plausible. Each seed is harvested once (a module-scoped fixture) and checked by
the three tests. Replay one seed with ``-k "seed_17"``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from reporting.config import Settings, load_settings
from reporting.coverage import what_is_missing
from reporting.db.engine import Database
from reporting.errors import MeetauditError
from reporting.harvest import Harvester, Window
from reporting.report.context import ReportParameters, build_context
from tests.conftest import _admin, _with_database
from tests.webex.spec_server import SpecServer

START = dt.datetime(2026, 10, 5, tzinfo=dt.UTC)
WINDOW = Window(START, START + dt.timedelta(days=3))
NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
SEEDS = range(20)
# Exit statuses the CLI documents for `harvest`: done, error, finished with gaps.
EXIT_STATUSES = {0, 1, 3}
MAX_REQUESTS = 1500
MAX_SECONDS = 20.0
TOKEN = "spec-token"

# One SQL per invariant: the rows that break it (at most 5, as text for the message). A row the
# harvest stored with the data-quality flag for exactly that implausibility is not a breach:
# the promise is "refused or flagged, never silently counted".


def _unless_flagged(kind: str, column: str, check: str) -> str:
    """SQL excluding the rows stored with the data-quality flag ``check``."""
    return (
        " AND NOT EXISTS (SELECT 1 FROM data_quality_flags f "
        f"WHERE f.subject_kind = '{kind}' AND f.subject_id = {column} "
        f"AND f.check_name = '{check}')"
    )


PLAUSIBILITY_CHECKS: dict[str, str] = {
    "meeting has a start": "SELECT meeting_id FROM meetings WHERE start_at IS NULL",
    "meeting ends at or after its start": (
        "SELECT meeting_id || ' ' || start_at || ' > ' || end_at FROM meetings "
        "WHERE end_at < start_at"
    ),
    "meeting starts inside the harvested window": (
        "SELECT meeting_id || ' ' || start_at FROM meetings "
        "WHERE start_at < :start OR start_at >= :end"
    ),
    "participant's meetingId is its meeting": (
        "SELECT participant_id || ' says ' || (raw->>'meetingId') || ', stored under ' || meeting_id"
        " FROM participants WHERE raw ? 'meetingId' AND raw->>'meetingId' <> meeting_id"
    ),
    "participant leaves at or after joining": (
        "SELECT participant_id || ' ' || joined_at || ' > ' || left_at FROM participants "
        "WHERE left_at < joined_at AND left_at > 'epoch'::timestamptz"
        + _unless_flagged("participant", "participants.participant_id", "device_left_before_joined")
    ),
    "device leaves at or after joining": (
        "SELECT participant_id || '#' || seq || ' ' || joined_at || ' > ' || left_at "
        "FROM participant_devices WHERE left_at < joined_at AND left_at > 'epoch'::timestamptz"
        + _unless_flagged(
            "participant", "participant_devices.participant_id", "device_left_before_joined"
        )
    ),
    "no negative device duration": (
        "SELECT participant_id || '#' || seq || ' ' || duration_seconds FROM participant_devices "
        "WHERE duration_seconds < 0"
        + _unless_flagged("participant", "participant_devices.participant_id", "negative_duration")
    ),
    "no negative attendee-report duration": (
        "SELECT meeting_id || '#' || seq || ' ' || duration_minutes FROM attendee_reports "
        "WHERE duration_minutes < 0"
    ),
    "participant email is an address": (
        "SELECT participant_id || ' ' || quote_literal(email) FROM participants "
        r"WHERE email IS NOT NULL AND btrim(email) !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'"
        + _unless_flagged("participant", "participants.participant_id", "email_not_address")
    ),
    "invitee email is an address": (
        "SELECT invitee_id || ' ' || quote_literal(email) FROM invitees "
        r"WHERE email IS NOT NULL AND btrim(email) !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'"
        + _unless_flagged("invitee", "invitees.invitee_id", "email_not_address")
    ),
}


def implausible_rows(session: Session, window: Window) -> dict[str, list[str]]:
    """Per broken invariant, up to five rows that break it (empty when every row is plausible)."""
    found: dict[str, list[str]] = {}
    for name, sql in PLAUSIBILITY_CHECKS.items():
        rows = session.execute(
            text(f"{sql} LIMIT 5"), {"start": window.start, "end": window.end}
        ).scalars()
        bad = [str(r) for r in rows]
        if bad:
            found[name] = bad
    return found


def assert_stored_rows_plausible(session: Session, window: Window) -> None:
    """Every stored row is plausible (see ``PLAUSIBILITY_CHECKS``)."""
    found = implausible_rows(session, window)
    assert not found, "implausible rows stored: " + "; ".join(
        f"{name}: {rows[:2]}" for name, rows in found.items()
    )


@dataclass
class Harvested:
    """One seed's harvest, kept in its own database for the tests of this module."""

    seed: int
    server: SpecServer
    db: Database
    exit_status: int | None  # None: it crashed
    crash: str | None
    seconds: float


def _harvest(settings: Settings, db: Database, server: SpecServer) -> tuple[int | None, str | None]:
    """Harvest the window through the real client: (exit status, traceback if it crashed)."""
    harvester = Harvester(
        settings, db, transport=httpx.MockTransport(server.handle), now=NOW,
        retry_after_default=0.01, backoff_base=0.001,
    )  # fmt: skip
    try:
        summary = harvester.run(WINDOW)
    except MeetauditError as exc:
        return exc.exit_code, None
    except Exception:
        return None, traceback.format_exc()
    return (0 if summary.status == "complete" else 3), None


@pytest.fixture(scope="module", params=list(SEEDS), ids=[f"seed_{s}" for s in SEEDS])
def harvested(
    request: pytest.FixtureRequest,
    pg_server_url: str,
    template_db: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Harvested]:
    """The seed's random server, harvested once into a fresh database."""
    seed: int = request.param
    name = f"meetaudit_spec_{os.getpid()}_{seed}"
    _admin(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = _with_database(pg_server_url, name)
    tmp = tmp_path_factory.mktemp(f"spec-{seed}")
    settings = load_settings(
        database_url=url, data_dir=tmp / "data", output_dir=tmp / "reports",
        org_name="Acme Corporation", org_domains=["acme.example"], operator="spec@ci",
        webex_token=TOKEN, concurrency=4, max_retries=2, request_timeout=5.0,
    )  # fmt: skip
    server = SpecServer(seed, (WINDOW.start, WINDOW.end))
    db = Database(url, data_dir=tmp)
    try:
        started = time.monotonic()
        status, crash = _harvest(settings, db, server)
        yield Harvested(seed, server, db, status, crash, time.monotonic() - started)
    finally:
        db.close()
        _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _report_params() -> ReportParameters:
    return ReportParameters(
        label="spec", period_from=WINDOW.start, period_to=WINDOW.end, timezone="UTC",
        org_name="Acme Corporation", org_domains=("acme.example",), org_ids=(),
        min_attendance_minutes=2.0, show_phone_numbers=False, roster_row_limit=10_000,
        exception_row_limit=500,
        as_of=dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=2),
    )  # fmt: skip


@pytest.mark.slow
def test_harvest_of_random_spec_data_ends_cleanly(harvested: Harvested) -> None:
    # No traceback, a documented exit status, bounded requests and time, whatever was sent.
    assert harvested.crash is None, harvested.crash
    assert harvested.exit_status in EXIT_STATUSES
    assert harvested.server.requests <= MAX_REQUESTS, f"{harvested.server.requests} requests"
    assert harvested.seconds <= MAX_SECONDS, f"harvest took {harvested.seconds:.1f} s"


@pytest.mark.slow
def test_report_is_complete_exactly_when_gaps_finds_nothing(
    harvested: Harvested, tmp_path: Path
) -> None:
    with harvested.db.sessions() as session:
        missing = what_is_missing(session, WINDOW)
        context = build_context(session, _report_params(), workdir=tmp_path)
        assert context.complete == (not missing.anything_open), (
            f"report complete={context.complete}; gaps: {len(missing.gaps)} open gaps, "
            f"{len(missing.unstored)} unstored, {len(missing.unlisted)} unlisted spans"
        )


@pytest.mark.slow
def test_every_row_stored_from_random_spec_data_is_plausible(harvested: Harvested) -> None:
    with harvested.db.sessions() as session:
        assert_stored_rows_plausible(session, WINDOW)


def test_the_plausibility_checks_can_fail(db: Database) -> None:
    # The invariants are not vacuous: implausible meetings break them.
    with db.session() as session:
        session.execute(text(
            "INSERT INTO meetings (meeting_id, start_at, end_at, raw) "
            "VALUES ('m1', '2026-10-06T10:00Z', '2026-10-06T09:00Z', '{}'),"
            "       ('m2', '1957-01-01T10:00Z', '1957-01-01T11:00Z', '{}')"
        ))  # fmt: skip
    with db.sessions() as session:
        found = implausible_rows(session, WINDOW)
        assert set(found) == {
            "meeting ends at or after its start",
            "meeting starts inside the harvested window",
        }
        with pytest.raises(AssertionError, match="implausible rows stored"):
            assert_stored_rows_plausible(session, WINDOW)
