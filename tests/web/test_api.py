"""The JSON API under /api/v1: personal tokens, the same roles and the same access log."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import select

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import AccessLogEntry
from reporting.jobs import work_once
from reporting.report import generate_report
from reporting.web import accounts
from tests.report.conftest import OCT, build_known_month


def _token(db: Database, name: str) -> dict[str, str]:
    with db.session() as session:
        return {"Authorization": f"Bearer {accounts.new_api_token(session, name, 'test')}"}


def test_a_script_with_a_token_works_under_its_account_s_role(
    app: object, db: Database, web_settings: Settings
) -> None:
    build_known_month(db)
    report = generate_report(web_settings, db, OCT, label="2026-10", formats=("csv",))
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    auditor = _token(db, "auditor-user")
    listing = api.get("/api/v1/reports", headers=auditor)
    assert listing.status_code == 200 and listing.json()["ok"] is True
    assert [e["report_id"] for e in listing.json()["listing"]] == [
        f.report_id for f in report.files
    ]
    entry = report.files[0]
    file = api.get(f"/api/v1/reports/{entry.report_id}/file", headers=auditor)
    assert hashlib.sha256(file.content).hexdigest() == entry.sha256
    verdict = api.post("/api/v1/verify", headers=auditor,
                       files={"file": ("x.csv", file.content, "text/csv")})  # fmt: skip
    assert verdict.status_code == 200 and verdict.json()["ok"] is True
    gaps = api.get("/api/v1/gaps", params={"month": "2026-10"}, headers=auditor)
    assert gaps.json()["complete"] is False and gaps.json()["gaps"][0]["http_status"] == 503
    # The auditor's role holds for the token: no search of people.
    assert api.get("/api/v1/investigate", params={"question": "orgs"},
                   headers=auditor).status_code == 403  # fmt: skip
    with db.session() as session:
        log = list(session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.seq)))
    assert [(e.question, e.operator) for e in log] == [
        ("console download", "auditor-user"), ("console verify", "auditor-user"),
    ]  # fmt: skip


def test_tokens_are_refused_when_wrong_or_revoked_and_changes_need_one(
    app: object, db: Database, web_settings: Settings
) -> None:
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    assert api.get("/api/v1/reports").status_code == 401
    assert (
        api.get("/api/v1/reports", headers={"Authorization": "Bearer mat_nope"}).status_code == 401
    )
    officer = _token(db, "officer-user")
    asked = api.post("/api/v1/reports/generate", headers=officer,
                     json={"month": "2026-10", "formats": ["csv"]})  # fmt: skip
    assert asked.status_code == 200, asked.text
    job = asked.json()["job"]
    build_known_month(db)
    assert work_once(web_settings, db, "w") == job
    state = api.get(f"/api/v1/jobs/{job}", headers=officer).json()
    assert state["status"] == "done" and state["result"]["report_id"].startswith("MAR-2026-10-")
    with db.session() as session:
        assert accounts.revoke_api_tokens(session, "officer-user") == 1
    assert api.get("/api/v1/reports", headers=officer).status_code == 401
    # A browser's session cookie cannot change anything through the API.
    from tests.web.conftest import sign_in

    browser = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    sign_in(browser, "officer-user")
    assert browser.get("/api/v1/reports").status_code == 200
    refused = browser.post("/api/v1/reports/generate", json={"month": "2026-10"})
    assert refused.status_code == 403 and "API token" in refused.text


def test_the_openapi_document_lists_the_api(app: object) -> None:
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    doc = api.get("/api/v1/openapi.json").json()
    assert {"/api/v1/reports", "/api/v1/verify", "/api/v1/investigate", "/api/v1/gaps",
            "/api/v1/reports/generate", "/api/v1/jobs/{job_id}",
            "/api/v1/access-log"} <= set(doc["paths"])  # fmt: skip
    assert not any(not p.startswith(("/api/", "/health")) for p in doc["paths"])


def test_a_token_s_last_use_is_recorded_to_the_minute(app: object, db: Database) -> None:
    """Every use of a token signs in, but its row is written at most once a minute: a script's
    burst of concurrent requests does not queue on one row lock (issue 13's API search)."""
    import datetime as dt

    from reporting.db.models import WebApiToken

    with db.session() as session:
        token = accounts.new_api_token(session, "auditor-user", "test")

    def last_used() -> dt.datetime | None:
        with db.session() as session:
            return session.scalars(select(WebApiToken.last_used_at)).one()

    assert last_used() is None
    with db.session() as session:
        assert accounts.api_user(session, token) is not None
    first = last_used()
    assert first is not None
    with db.session() as session:
        accounts.api_user(session, token)
    assert last_used() == first  # within the minute: no write
    with db.session() as session:
        session.execute(WebApiToken.__table__.update().values(
            last_used_at=first - accounts.LAST_USED_GRANULARITY))  # fmt: skip
    with db.session() as session:
        accounts.api_user(session, token)
    later = last_used()
    assert later is not None and later >= first
