"""Background jobs: queued through one console instance, run by another, shown by both."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import update

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import Job, ReportRun
from reporting.jobs import claim, enqueue, work_once
from reporting.web.app import create_app
from tests.report.conftest import build_known_month
from tests.web.conftest import csrf_of, sign_in


def test_a_report_job_started_on_one_instance_is_finished_by_another(
    web_settings: Settings, db: Database, app: object
) -> None:
    build_known_month(db)
    first = TestClient(create_app(web_settings, db, worker=False), base_url="https://testserver")
    second = TestClient(create_app(web_settings, db, worker=False), base_url="https://testserver")
    for client in (first, second):
        assert sign_in(client, "officer-user").status_code == 303  # type: ignore[attr-defined]
    page = first.get("/reports")
    asked = first.post(
        "/reports/generate",
        data={
            "csrf_token": csrf_of(page.text, "/reports/generate"),
            "month": "2026-10",
            "format_csv": "1",
        },
        follow_redirects=False,
    )
    assert asked.status_code == 303
    job_url = asked.headers["location"]
    waiting = second.get(job_url)
    assert "Waiting for a console instance" in waiting.text
    assert 'http-equiv="refresh"' in waiting.text

    ran = work_once(web_settings, db, "instance-two")  # what the second instance's worker does
    assert ran is not None and job_url.endswith(f"/{ran}")

    done = first.get(job_url)
    assert "Done: report MAR-2026-10-" in done.text and "INCOMPLETE" in done.text
    assert 'http-equiv="refresh"' not in done.text
    with db.session() as session:
        job = session.get(Job, ran)
        assert job is not None and job.status == "done" and job.claimed_by == "instance-two"
        assert job.requested_by == "officer-user"
        recorded = {r.report_id for r in session.query(ReportRun)}
    assert {f["report_id"] for f in job.result["files"]} <= recorded


def test_a_job_is_claimed_once_and_requeued_when_its_instance_goes_silent(
    db: Database, web_settings: Settings
) -> None:
    with db.session() as session:
        first_id = enqueue(session, "report", {"month": "2026-10"}, by="o").id
        second_id = enqueue(session, "report", {"month": "2026-09"}, by="o").id
    with db.session() as one, db.session() as two:
        a = claim(one, "a")
        b = claim(two, "b")  # the first job is locked by the other instance: skipped
        assert a is not None and b is not None
        assert (a.id, b.id) == (first_id, second_id)
    with db.session() as session:
        assert claim(session, "c") is None  # both running, both beating
        session.execute(
            update(Job).where(Job.id == first_id)
            .values(heartbeat_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        )  # fmt: skip
    with db.session() as session:
        again = claim(session, "c")
        assert again is not None and again.id == first_id and again.attempts == 2


def test_a_job_that_cannot_run_ends_failed_with_its_reason(
    db: Database, web_settings: Settings
) -> None:
    future = (dt.datetime.now(web_settings.zone) + dt.timedelta(days=40)).strftime("%Y-%m")
    with db.session() as session:
        job_id = enqueue(session, "report", {"month": future, "formats": ["csv"]}, by="o").id
    assert work_once(web_settings, db, "w") == job_id
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "failed" and job.error
