"""Sign-in, sessions, CSRF, headers, downloads, verification by upload and investigations."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import AccessLogEntry, WebUser
from reporting.report import generate_report
from reporting.web import accounts
from reporting.web.app import create_app
from tests.report.conftest import OCT, build_known_month
from tests.web.conftest import PASSWORD, csrf_of, sign_in


def _log(db: Database) -> list[AccessLogEntry]:
    with db.session() as session:
        return list(session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.seq)))


def test_passwords_are_argon2id_and_accounts_lock_after_repeated_failures(
    app: object, db: Database
) -> None:
    with db.session() as session:
        user = session.get(WebUser, "auditor-user")
        assert user is not None and user.password_hash.startswith("$argon2id$")
    client = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    for _ in range(accounts.MAX_FAILURES):
        wrong = sign_in(client, "auditor-user", "not the password at all")
        assert wrong.status_code == 401 and "wrong" in wrong.text  # type: ignore[attr-defined]
    locked = sign_in(client, "auditor-user", PASSWORD)
    assert locked.status_code == 401 and "locked" in locked.text  # type: ignore[attr-defined]
    unknown = sign_in(client, "nobody-here", PASSWORD)
    assert "the name or the password is wrong" in unknown.text  # type: ignore[attr-defined]


def test_session_cookie_flags_headers_and_sign_out(app: object) -> None:
    client = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    response = sign_in(client, "officer-user")
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    page = client.get("/")
    assert page.status_code == 200 and "Overview" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp  # no script at all
    assert "<script" not in page.text
    out = client.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    again = client.get("/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


def test_forms_without_their_csrf_token_are_refused(
    clients: dict[str | None, TestClient], db: Database
) -> None:
    admin = clients["admin"]
    form = {"name": "new-officer", "role": "officer", "password": "a long enough password"}
    refused = admin.post("/users", data=form)
    assert refused.status_code == 403 and "Form refused" in refused.text
    forged = admin.post("/users", data={**form, "csrf_token": "forged"})
    assert forged.status_code == 403
    with db.session() as session:
        assert session.get(WebUser, "new-officer") is None
    page = admin.get("/users")
    done = admin.post("/users", data={**form, "csrf_token": csrf_of(page.text)})
    assert done.status_code == 200 and "Account new-officer (officer) created" in done.text
    # The sign-in form needs its own token too.
    bare = TestClient(admin.app, base_url="https://testserver")
    assert bare.post("/login", data={"name": "x", "password": "y"}).status_code == 403


def test_a_report_downloads_with_its_recorded_hash_and_verifies_by_upload(
    clients: dict[str | None, TestClient], web_settings: Settings, db: Database, tmp_path: Path
) -> None:
    build_known_month(db)
    result = generate_report(web_settings, db, OCT, label="2026-10", formats=("csv",))
    entry = result.files[0]
    auditor = clients["auditor"]
    listing = auditor.get("/reports")
    assert entry.report_id in listing.text and "Ledger intact" in listing.text
    download = auditor.get(f"/reports/{entry.report_id}/file")
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == entry.sha256
    before = sorted(p.name for p in web_settings.output_dir.iterdir())

    page = auditor.get("/verify")
    token = csrf_of(page.text)
    good = auditor.post("/verify", data={"csrf_token": token},
                        files={"file": ("october.csv", download.content, "text/csv")})  # fmt: skip
    assert good.status_code == 200 and "VERIFIED" in good.text and entry.report_id in good.text
    tampered = download.content.replace(b"Acme", b"Acne", 1)
    assert tampered != download.content
    bad = auditor.post("/verify", data={"csrf_token": token},
                       files={"file": ("october.csv", tampered, "text/csv")})  # fmt: skip
    assert bad.status_code == 200 and "FAILED" in bad.text
    # Uploads are never kept where a download could serve them.
    assert sorted(p.name for p in web_settings.output_dir.iterdir()) == before
    questions = [(e.question, e.parameters.get("role")) for e in _log(db)]
    assert questions == [
        ("console download", "auditor"), ("console verify", "auditor"),
        ("console verify", "auditor"),
    ]  # fmt: skip


def test_an_investigator_searches_in_a_case_and_every_look_is_recorded(
    clients: dict[str | None, TestClient], db: Database
) -> None:
    from reporting.cases import open_case

    build_known_month(db)
    with db.session() as session:
        open_case(session, "INV-9", "test purpose", operator="lead")
    investigator = clients["investigator"]
    no_case = investigator.get("/investigate", params={"question": "orgs", "month": "2026-10"})
    assert no_case.status_code == 400 and "needs a case" in no_case.text
    hostile = "'; DROP TABLE meetings; --<script>alert(1)</script>"
    answer = investigator.get(
        "/investigate", params={"question": "person", "who": hostile, "case": "INV-9"}
    )
    assert answer.status_code == 200 and "<script>alert" not in answer.text
    orgs = investigator.get(
        "/investigate", params={"question": "orgs", "month": "2026-10", "case": "INV-9"}
    )
    assert orgs.status_code == 200 and "Outside organisations" in orgs.text
    csv_answer = investigator.get(
        "/investigate",
        params={"question": "orgs", "month": "2026-10", "case": "INV-9", "format": "csv"},
    )
    assert csv_answer.status_code == 200 and csv_answer.headers["content-type"].startswith(
        "text/csv"
    )
    log = _log(db)
    assert [e.question for e in log] == [
        "console investigate person",
        "console investigate orgs",
        "console investigate orgs",
    ]
    assert all(e.case_ref == "INV-9" and e.parameters["role"] == "investigator" for e in log)
    assert log[2].output_format == "csv" and log[1].rows_returned > 0
    with db.session() as session:
        assert session.execute(select(WebUser)).first() is not None  # the hostile input was inert
    assert clients["auditor"].get("/investigate").status_code == 403


def test_two_instances_share_sessions_through_the_database(
    app: object, web_settings: Settings, db: Database
) -> None:
    first = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    sign_in(first, "auditor-user")
    second_app = create_app(web_settings, db)
    second = TestClient(second_app, base_url="https://testserver")
    second.cookies = first.cookies
    assert second.get("/reports").status_code == 200


def test_answers_are_sorted_and_paged_and_a_meeting_is_found_by_its_id(
    clients: dict[str | None, TestClient], db: Database
) -> None:
    from reporting.cases import open_case
    from reporting.web.views import PAGE_SIZE, page_of

    build_known_month(db)
    with db.session() as session:
        open_case(session, "INV-3", "paging", operator="lead")
    investigator = clients["investigator"]
    roster = investigator.get(
        "/investigate", params={"question": "meeting", "who": "M1", "case": "INV-3"}
    )
    assert roster.status_code == 200 and "Everyone in one meeting" in roster.text
    by_minutes = investigator.get("/investigate", params={
        "question": "meeting", "who": "M1", "case": "INV-3", "sort": "-attended_minutes"})  # fmt: skip
    assert "attended_minutes</a> ▼" in by_minutes.text

    rows = [type("Row", (), {"n": i, "name": None if i % 7 == 0 else f"p{i:03d}"})()
            for i in range(250)]  # fmt: skip
    first = page_of(rows, ["n", "name"], sort="-n", page=1)
    assert first.pages == 3 and len(first.rows) == PAGE_SIZE and first.rows[0].n == 249
    last = page_of(rows, ["n", "name"], sort="name", page=9)
    assert last.page == 3 and last.rows[-1].name is None  # blanks last
    unknown = page_of(rows, ["n"], sort="nope; DROP TABLE", page=1)
    assert unknown.sort == "" and unknown.rows[0].n == 0
