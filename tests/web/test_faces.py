"""One library, two faces: the CLI and the console give the same messages and the same verdicts,
because both call the same library function."""

from __future__ import annotations

import html

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from reporting.cli import cli
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.web import accounts


def _token(db: Database, name: str) -> dict[str, str]:
    with db.session() as session:
        return {"Authorization": f"Bearer {accounts.new_api_token(session, name, 'test')}"}


@pytest.mark.parametrize("month", ["October", "2026-13", "0001-01", "26-1"])
def test_a_mistyped_month_gets_the_same_message_from_the_cli_and_the_console(
    app: object,
    clients: dict[str | None, TestClient],
    db: Database,
    web_settings: Settings,
    database_url: str,
    month: str,
) -> None:
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    refused = api.get("/api/v1/gaps", params={"month": month}, headers=_token(db, "auditor-user"))
    assert refused.status_code == 400
    message = refused.json()["error"]
    assert "is not a month; write it as YYYY-MM" in message

    env = {"MEETAUDIT_DATABASE_URL": database_url, "MEETAUDIT_TIMEZONE": web_settings.timezone}
    for command in (["gaps"], ["report"], ["investigate", "orgs"]):
        said = CliRunner().invoke(cli, [*command, "--month", month], env=env)
        assert said.exit_code == 2, said.output  # a usage mistake
        assert f"Error: {message}" in said.output, command

    officer = _token(db, "officer-user")
    asked = api.post("/api/v1/reports/generate", headers=officer, json={"month": month})
    assert (asked.status_code, asked.json()) == (400, {"error": message})
    page = clients["auditor"].get("/gaps", params={"month": month})
    assert page.status_code == 400 and message in html.unescape(page.text)


def test_an_empty_month_is_last_month_for_both_faces(
    app: object, db: Database, web_settings: Settings
) -> None:
    import datetime as dt

    from reporting.periods import previous_month

    last = previous_month(dt.datetime.now(dt.UTC), web_settings.zone)
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    gaps = api.get("/api/v1/gaps", params={"month": ""}, headers=_token(db, "auditor-user"))
    assert gaps.status_code == 200 and gaps.json()["month"] == last
    asked = api.post("/api/v1/reports/generate", headers=_token(db, "officer-user"), json={})
    assert asked.status_code == 200, asked.text
    state = api.get(asked.json()["url"], headers=_token(db, "officer-user")).json()
    assert state["parameters"]["month"] == last
