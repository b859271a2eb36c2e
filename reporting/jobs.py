"""Background jobs shared by every console instance: a table, claimed with SKIP LOCKED.

A job is queued by whoever asks (a console page), claimed by the first instance that looks
(``SELECT … FOR UPDATE SKIP LOCKED``: two instances never take the same job), and run there;
its progress (stage, done, total) and heartbeat are written to its row as it runs, so any
instance shows it. A job whose instance stopped beating for :data:`STALE_AFTER` — a killed
process, a lost machine — is queued again, up to :data:`MAX_ATTEMPTS` attempts; a report
generation that was interrupted keeps no partial file and records nothing, so running it again
is safe.

Kinds: ``report`` — generate the report of a closed month (parameters ``month`` and
``formats``), as ``meetaudit report --month`` does (:func:`reporting.report.run.run_report`:
the same warning, and the same verdict in the result).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import Job
from reporting.errors import ConfigError, MeetauditError

_log = logging.getLogger(__name__)

STALE_AFTER = dt.timedelta(minutes=2)
HEARTBEAT_EVERY = 5.0  # seconds between progress writes at most
MAX_ATTEMPTS = 3
KINDS = ("report",)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def enqueue(session: Session, kind: str, parameters: dict[str, Any], *, by: str) -> Job:
    """Queue a job; any instance's worker will pick it up."""
    if kind not in KINDS:
        raise ConfigError(f"unknown job kind {kind!r}")
    job = Job(
        kind=kind,
        parameters=parameters,
        status="queued",
        requested_by=by,
        requested_at=_now(),
        attempts=0,
        done=0,
        result={},
    )
    session.add(job)
    session.flush()
    return job


def claim(session: Session, worker: str) -> Job | None:
    """Take the oldest queued job (or one whose instance went silent) for ``worker``."""
    stale = _now() - STALE_AFTER
    job = session.scalars(
        select(Job)
        .where(
            or_(
                Job.status == "queued",
                (Job.status == "running") & (Job.heartbeat_at < stale),
            )
        )
        .order_by(Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if job is None:
        return None
    if job.attempts >= MAX_ATTEMPTS:
        job.status = "failed"
        job.error = (
            f"stopped after {job.attempts} attempts: the instance running it stopped each time"
        )
        job.finished_at = _now()
        return None
    job.status = "running"
    job.claimed_by = worker
    job.heartbeat_at = _now()
    job.attempts += 1
    job.stage, job.done, job.total = "starting", 0, None
    session.flush()
    return job


def _progress_writer(db: Database, job_id: int) -> Callable[[str, int, int | None], None]:
    """A report progress callback that writes the job's row, at most every few seconds."""
    last = 0.0

    def write(stage: str, done: int, total: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < HEARTBEAT_EVERY and (total is None or done < total):
            return
        last = now
        with db.session() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(stage=stage, done=done, total=total, heartbeat_at=_now())
            )

    return write


def run(
    settings: Settings, db: Database, job_id: int, kind: str, parameters: dict[str, Any]
) -> None:
    """Run one claimed job to its end, recording the result or the error on its row."""
    result: dict[str, Any] = {}
    error: str | None = None
    try:
        if kind == "report":
            result = _run_report(settings, db, job_id, parameters)
        else:
            raise ConfigError(f"unknown job kind {kind!r}")
    except MeetauditError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - a job must end with a reason, whatever it was
        _log.exception("job %s failed", job_id)
        error = f"failed unexpectedly ({type(exc).__name__}); see the console's log"
    with db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                status="failed" if error else "done",
                error=error,
                result=result,
                finished_at=_now(),
                heartbeat_at=_now(),
                stage="finished" if not error else "failed",
            )
        )


def _run_report(
    settings: Settings, db: Database, job_id: int, parameters: dict[str, Any]
) -> dict[str, Any]:
    """The report of a month, run as ``meetaudit report --month`` runs it
    (:func:`reporting.report.run.run_report`): its warnings, summary and verdict go to the job's
    result, for the job's page to show."""
    from reporting.periods import period_from_options
    from reporting.report.run import run_report

    month = str(parameters["month"])
    formats = tuple(parameters.get("formats") or ("pdf",))
    window = period_from_options(settings.zone, month, None, None)
    outcome = run_report(
        settings,
        db,
        window,
        label=month,
        formats=formats,
        progress=_progress_writer(db, job_id),
    )
    report = outcome.result
    return {
        "report_id": report.report_id,
        "files": [
            {"report_id": f.report_id, "path": str(f.path), "sha256": f.sha256}
            for f in report.files
        ],
        "complete": report.complete,
        "gaps": report.gaps,
        "altered_meetings": len(report.altered_meetings),
        "supersedes": (report.supersedes or {}).get("report_id"),
        "warnings": outcome.warnings,
        "lines": report.lines(),
        # The error the CLI would end with, although the files were written and recorded.
        "verdict": str(outcome.verdict) if outcome.verdict else None,
    }


def work_once(settings: Settings, db: Database, worker: str) -> int | None:
    """Claim and run one job; its id, or ``None`` when none was waiting."""
    with db.session() as session:
        job = claim(session, worker)
        if job is None:
            return None
        job_id, kind, parameters = job.id, job.kind, dict(job.parameters)
    run(settings, db, job_id, kind, parameters)
    return job_id


class Worker:
    """A thread that runs queued jobs until stopped (one per console instance)."""

    def __init__(self, settings: Settings, db: Database, name: str, poll: float = 2.0) -> None:
        self.settings, self.db, self.name, self.poll = settings, db, name, poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"jobs-{name}", daemon=True)

    def start(self) -> None:
        """Start polling for jobs."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the job under way (if any) ends."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = work_once(self.settings, self.db, self.name)
            except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                _log.exception("the job worker could not claim a job")
                ran = None
            if ran is None:
                self._stop.wait(self.poll)
