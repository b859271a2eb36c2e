"""``meetaudit harvest`` as a scheduler runs it: exit statuses, JSON log lines, dry run.

Exit 0 only when the window is complete, 3 when gaps remain, 1 on an error (nothing half-written).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reporting.cli import cli
from reporting.webex.simulator import FaultPlan, SimulatedOrg, Simulator, serve
from tests.factories import TOKEN
from tests.harvest.conftest import END, START


def _harvest(
    database_url: str, base_url: str, tmp_path: Path, *args: str, token: str = TOKEN
) -> Result:
    env = {
        "MEETAUDIT_DATABASE_URL": database_url,
        "MEETAUDIT_WEBEX_BASE_URL": base_url,
        "MEETAUDIT_WEBEX_TOKEN": token,
        "MEETAUDIT_WEBEX_TOKEN_FILE": None,
        "MEETAUDIT_WEBEX_REFRESH_TOKEN": None,
        "MEETAUDIT_DATA_DIR": str(tmp_path / "data"),
        "MEETAUDIT_CONFIG": None,
    }
    argv = [
        "--log-format",
        "json",
        "harvest",
        "--from",
        f"{START:%Y-%m-%d}",
        "--to",
        f"{END:%Y-%m-%d}",
        *args,
    ]
    return CliRunner().invoke(cli, argv, env=env)


@pytest.fixture
def api(org: SimulatedOrg, request: pytest.FixtureRequest) -> Iterator[str]:
    faults: FaultPlan = getattr(request, "param", FaultPlan())
    with serve(Simulator(org, token=TOKEN, faults=faults)) as base_url:
        yield base_url


def _events(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]


def test_a_complete_window_exits_0_with_json_progress_and_a_summary(
    database_url: str, api: str, org: SimulatedOrg, tmp_path: Path
) -> None:
    result = _harvest(database_url, api, tmp_path)
    assert result.exit_code == 0, result.output
    assert "COMPLETE" in result.stdout and f"stored now {len(org.meetings)}" in result.stdout
    events = _events(result)
    kinds = [e["event"] for e in events]
    assert kinds[0] in ("listing", "note") and kinds[-1] == "finished"
    assert {"listed", "plan", "progress"} <= set(kinds)
    progress = [e for e in events if e["event"] == "progress"][-1]
    assert progress["done"] == progress["total"] == len(org.meetings)
    assert {"requests", "pages", "retries", "rate_limited", "waited", "gaps", "eta_seconds"} <= set(
        progress
    )
    summary = events[-1]["summary"]
    assert isinstance(summary, dict) and summary["status"] == "complete" and summary["gaps"] == 0
    assert TOKEN not in result.output

    again = _harvest(database_url, api, tmp_path)
    assert again.exit_code == 0 and f"already complete {len(org.meetings)}" in again.stdout


@pytest.mark.parametrize(
    "api", [FaultPlan(rate_limit_every=6, retry_after_seconds=0)], indirect=True
)
def test_rate_limits_show_up_as_retry_lines(database_url: str, api: str, tmp_path: Path) -> None:
    result = _harvest(database_url, api, tmp_path)
    assert result.exit_code == 0, result.output
    retries = [e for e in _events(result) if e["event"] == "retry"]
    assert retries and all(e["status"] == 429 and e["tracking_id"] for e in retries)


def test_gaps_exit_3_and_are_listed(database_url: str, org: SimulatedOrg, tmp_path: Path) -> None:
    refused = org.meetings[2]["id"]
    with serve(
        Simulator(org, token=TOKEN, faults=FaultPlan(status_for={refused: 403}))
    ) as base_url:
        result = _harvest(database_url, base_url, tmp_path)
    assert result.exit_code == 3, result.output
    assert "1 gap(s) remain" in result.stderr
    assert any(e["event"] == "gap" and e["meeting_id"] == refused and e["status"] == 403
               for e in _events(result))  # fmt: skip
    period = ["--from", f"{START:%Y-%m-%d}", "--to", f"{END:%Y-%m-%d}"]
    env = {"MEETAUDIT_DATABASE_URL": database_url}
    gaps = CliRunner().invoke(cli, ["gaps", *period], env=env)
    assert gaps.exit_code == 3 and refused in gaps.output and "HTTP 403" in gaps.output

    # Refused again on the next run: still one open gap; --history shows both attempts.
    with serve(
        Simulator(org, token=TOKEN, faults=FaultPlan(status_for={refused: 403}))
    ) as base_url:
        assert _harvest(database_url, base_url, tmp_path).exit_code == 3
    gaps = CliRunner().invoke(cli, ["gaps", *period], env=env)
    assert gaps.exit_code == 3 and len(gaps.output.splitlines()) == 1
    history = CliRunner().invoke(cli, ["gaps", *period, "--history"], env=env)
    lines = history.output.splitlines()
    assert history.exit_code == 3 and len(lines) == 2
    assert lines[0].startswith("[failed again on ") and lines[1].startswith("[OPEN] ")

    # Fetched at last: nothing open, exit 0, and the history says which run fetched it.
    with serve(Simulator(org, token=TOKEN)) as base_url:
        assert _harvest(database_url, base_url, tmp_path).exit_code == 0
    assert CliRunner().invoke(cli, ["gaps", *period], env=env).exit_code == 0
    history = CliRunner().invoke(cli, ["gaps", *period, "--history"], env=env)
    assert history.exit_code == 0
    assert all(line.startswith("[fetched by run ") for line in history.output.splitlines())


def test_an_error_exits_1_with_one_line_and_no_token(
    database_url: str, org: SimulatedOrg, tmp_path: Path
) -> None:
    with serve(Simulator(org, token="the-real-token", faults=FaultPlan())) as base_url:
        result = _harvest(database_url, base_url, tmp_path, token="a-wrong-token-5e1f")
    assert result.exit_code == 1
    assert "Error: Webex refused the access token (HTTP 401)" in result.stderr
    assert "Traceback" not in result.output and "a-wrong-token-5e1f" not in result.output


def test_dry_run_lists_the_meetings_it_would_fetch(
    database_url: str, api: str, org: SimulatedOrg, tmp_path: Path
) -> None:
    result = _harvest(database_url, api, tmp_path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"{len(org.meetings)} would be fetched" in result.stdout
    assert all(m["id"] in result.stdout for m in org.meetings)
    after = _harvest(database_url, api, tmp_path)
    assert f"stored now {len(org.meetings)}" in after.stdout  # the dry run stored nothing


def test_a_report_during_a_running_harvest_says_so(database_url: str, tmp_path: Path) -> None:
    import psycopg

    from reporting.harvest import HARVEST_LOCK_KEY
    from tests.conftest import _libpq

    env = {"MEETAUDIT_DATABASE_URL": database_url, "MEETAUDIT_OUTPUT_DIR": str(tmp_path)}
    with psycopg.connect(_libpq(database_url), autocommit=True) as harvest:
        harvest.execute("SELECT pg_advisory_lock(%s)", (HARVEST_LOCK_KEY,))
        during = CliRunner().invoke(
            cli, ["report", "--month", "2026-10", "--format", "json"], env=env
        )
    after = CliRunner().invoke(cli, ["report", "--month", "2026-10", "--format", "json"], env=env)
    assert "a harvest is running against this database right now" in during.stderr
    assert "a harvest is running" not in after.stderr
