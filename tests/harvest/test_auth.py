"""Authentication as an operator sets it up, and the token kept out of every output."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import inspect, select, text

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import HarvestRun
from reporting.errors import ConfigError, WebexAuthError
from reporting.harvest import HarvestEvent
from reporting.progress import HarvestProgress
from reporting.webex.simulator import FaultPlan, OAuthIntegration, SimulatedOrg, Simulator
from tests.factories import TOKEN, harvest_org
from tests.harvest.conftest import NOW, WINDOW

CLIENT_SECRET = "oauth-client-secret-7f3a"
REFRESH = "oauth-refresh-token-91c2"


def _oauth(**kw: object) -> dict[str, object]:
    return {
        "webex_token": None,
        "webex_client_id": "integration-1",
        "webex_client_secret": SecretStr(CLIENT_SECRET),
        "webex_refresh_token": SecretStr(REFRESH),
        **kw,
    }


def test_oauth_integration_refreshes_its_token_and_harvests(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    app = OAuthIntegration("integration-1", CLIENT_SECRET, REFRESH, rotate=True)
    sim = Simulator(org, token="not-the-static-token", now=NOW, oauth=app)
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, **_oauth())
    assert summary.status == "complete" and summary.meetings_complete == len(org.meetings)
    assert app.issued == 1  # one refresh at the start, valid for the whole run


def test_an_access_token_refused_mid_run_is_refreshed_once(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    app = OAuthIntegration("integration-1", CLIENT_SECRET, REFRESH)
    sim = Simulator(org, token="not-the-static-token", now=NOW, oauth=app)

    def expire(event: HarvestEvent) -> None:
        if event.kind == "plan":  # listing is done; the fetches will meet a 401
            sim.expire_access_tokens()

    summary = harvest_org(
        settings, org, WINDOW, now=NOW, db=db, simulator=sim, on_event=expire, **_oauth()
    )
    assert summary.status == "complete"
    assert app.issued == 2  # one at the start, one after the 401 (shared by every worker)
    assert sim.stats.statuses[401] >= 1


def test_a_failing_refresh_stops_the_run_with_a_clear_message(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    app = OAuthIntegration("integration-1", CLIENT_SECRET, REFRESH, refusing=True)
    sim = Simulator(org, token="not-the-static-token", now=NOW, oauth=app)
    with pytest.raises(WebexAuthError) as caught:
        harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, **_oauth())
    message = str(caught.value)
    assert "refreshing the Webex access token failed (HTTP 400)" in message
    assert "MEETAUDIT_WEBEX_REFRESH_TOKEN" in message
    assert REFRESH not in message and CLIENT_SECRET not in message
    with db.sessions() as session:
        run = session.scalars(select(HarvestRun)).one()
    assert run.status == "failed" and REFRESH not in (run.error or "")


def test_refresh_token_without_client_credentials_is_a_config_error(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    with pytest.raises(ConfigError, match="MEETAUDIT_WEBEX_CLIENT_ID"):
        harvest_org(settings, org, WINDOW, now=NOW, db=db, **_oauth(webex_client_id=None))


def test_token_from_a_secret_file(
    settings: Settings, db: Database, org: SimulatedOrg, tmp_path: Path
) -> None:
    secret = tmp_path / "webex-token"
    secret.write_text(f"{TOKEN}\n", encoding="utf-8")
    summary = harvest_org(
        settings, org, WINDOW, now=NOW, db=db, webex_token=None, webex_token_file=secret
    )
    assert summary.status == "complete"


def test_the_token_never_reaches_the_database_logs_errors_or_progress(
    settings: Settings, db: Database, org: SimulatedOrg, caplog: pytest.LogCaptureFixture
) -> None:
    bad = org.meetings[4]["id"]
    faults = FaultPlan(status_for={bad: 403}, rate_limit_every=9, server_error_every=13,
                       retry_after_seconds=0, hostile_link_every=31)  # fmt: skip
    stream = io.StringIO()
    progress = HarvestProgress("json", stream=stream)
    caplog.set_level(logging.DEBUG)
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=faults, on_event=progress)
    assert summary.gaps >= 1
    # And a failing run: its error message and the run row.
    with pytest.raises(WebexAuthError) as caught:
        harvest_org(
            settings, org, WINDOW, now=NOW, db=db, faults=FaultPlan(revoked=True), on_event=progress
        )

    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert TOKEN not in caplog.text
    lines = stream.getvalue().splitlines()
    assert lines and all(json.loads(line)["event"] for line in lines)
    assert TOKEN not in stream.getvalue()
    with db.engine.connect() as conn:
        inspector = inspect(conn)
        checked = 0
        for table in inspector.get_table_names():
            for column in inspector.get_columns(table):
                kind = str(column["type"]).upper()
                if any(t in kind for t in ("TEXT", "CHAR", "JSON")):
                    found = conn.execute(
                        text(
                            f'SELECT count(*) FROM "{table}" WHERE "{column["name"]}"::text LIKE :t'
                        ),
                        {"t": f"%{TOKEN}%"},
                    ).scalar_one()
                    assert found == 0, f"the token is stored in {table}.{column['name']}"
                    checked += 1
    assert checked > 40


def test_the_token_is_sent_only_to_the_api_origin(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    sim = Simulator(org, token=TOKEN, now=NOW, faults=FaultPlan(hostile_link_every=5))
    leaked: list[str] = []

    async def watch(request: httpx.Request) -> httpx.Response:
        if request.url.host != "webexapis.com" and TOKEN in request.headers.get(
            "Authorization", ""
        ):
            leaked.append(str(request.url))
        return await sim.handle(request)

    harvest_org(
        settings, org, WINDOW, now=NOW, db=db, simulator=sim, transport=httpx.MockTransport(watch)
    )
    assert leaked == []
