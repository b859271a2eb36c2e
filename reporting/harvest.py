"""Harvest orchestration: list ended meetings → fetch participants and invitees → store.

The network side runs concurrently (``concurrency`` meetings at a time, one shared rate
governor); one writer drains validated meetings in batches into PostgreSQL in a worker thread,
so database writes never hold up the network for long. Each batch is one transaction that
stores whole meetings together with their completion marks: a harvest stopped at any moment —
Ctrl-C, ``kill -9``, the database going away — leaves only complete meetings, and running the
same command again skips them (unless ``refresh``) and fetches the rest.

Anything that cannot be fetched or does not validate becomes a *gap* (``harvest_gaps``) with
the HTTP status and Webex's trackingId; a run with gaps ends ``incomplete``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from reporting import __version__
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import HarvestGap, HarvestRun, Meeting
from reporting.db.writes import MeetingRecord, record_gap, store_meetings, upsert_listed_meetings
from reporting.errors import ConfigError, DatabaseError, WebexAuthError, WebexError
from reporting.webex import schemas
from reporting.webex.auth import OAuthRefresher, StaticToken, TokenProvider
from reporting.webex.client import WebexClient

_log = logging.getLogger(__name__)

# One harvest at a time per database: a second one would race the first for the same meetings.
HARVEST_LOCK_KEY = 0x6D656574  # "meet"
LISTING_CHUNK = dt.timedelta(days=1)
MIN_LISTING_CHUNK = dt.timedelta(minutes=15)
WRITE_BATCH_MEETINGS = 200
WRITE_BATCH_ROWS = 20_000


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` in UTC."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigError("harvest window times must carry a time zone")
        if self.end <= self.start:
            raise ConfigError("the harvest window ends before it starts")

    def chunks(self, size: dt.timedelta) -> Iterator[Window]:
        """Consecutive sub-windows of at most ``size``."""
        cursor = self.start
        while cursor < self.end:
            nxt = min(cursor + size, self.end)
            yield Window(cursor, nxt)
            cursor = nxt

    def halves(self) -> tuple[Window, Window]:
        """The window split in two at its midpoint."""
        mid = self.start + (self.end - self.start) / 2
        return Window(self.start, mid), Window(mid, self.end)


def month_window(month: str, zone: dt.tzinfo) -> Window:
    """The calendar month ``YYYY-MM`` in ``zone``, as a UTC window."""
    try:
        year, mon = (int(p) for p in month.split("-"))
        first = dt.datetime(year, mon, 1, tzinfo=zone)
    except ValueError:
        raise ConfigError(f"{month!r} is not a month; write it as YYYY-MM, e.g. 2026-10") from None
    nxt = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return Window(first.astimezone(dt.UTC), nxt.astimezone(dt.UTC))


def previous_month(now: dt.datetime, zone: dt.tzinfo) -> str:
    """``YYYY-MM`` of the month before the one ``now`` falls in (in ``zone``)."""
    local = now.astimezone(zone)
    year, mon = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{mon:02d}"


@dataclass
class HarvestEvent:
    """Something an operator watching the harvest wants to see."""

    kind: str  # "listed", "meeting", "gap", "retry", "finished"
    message: str = ""
    total: int | None = None
    done: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class HarvestSummary:
    """What a run did, for the closing lines and the exit status."""

    run_id: int
    status: str
    window: Window
    meetings_listed: int = 0
    meetings_to_fetch: int = 0
    meetings_complete: int = 0
    meetings_skipped: int = 0
    meetings_unsettled: int = 0
    participants: int = 0
    devices: int = 0
    invitees: int = 0
    revisions: int = 0
    gaps: int = 0
    requests: int = 0
    retries: int = 0
    rate_limit_wait_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    planned: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every meeting of the window is stored and nothing is pending."""
        return self.status == "complete"


@dataclass
class _Gap:
    scope: str
    reason: str
    meeting_id: str | None = None
    url: str | None = None
    http_status: int | None = None
    tracking_id: str | None = None
    window: Window | None = None


def token_provider(settings: Settings) -> TokenProvider:
    """The configured way to authenticate: an OAuth integration, else a fixed token."""
    if settings.webex_refresh_token is not None:
        if not (settings.webex_client_id and settings.webex_client_secret):
            raise ConfigError(
                "an OAuth refresh token needs MEETAUDIT_WEBEX_CLIENT_ID and "
                "MEETAUDIT_WEBEX_CLIENT_SECRET too"
            )
        return OAuthRefresher(
            settings.webex_token_url or f"{settings.webex_base_url}/access_token",
            settings.webex_client_id,
            settings.webex_client_secret.get_secret_value(),
            settings.webex_refresh_token.get_secret_value(),
        )
    token = settings.access_token()
    if token is None:
        raise ConfigError(
            "no Webex access token: set MEETAUDIT_WEBEX_TOKEN (or MEETAUDIT_WEBEX_TOKEN_FILE, or "
            "the OAuth integration settings). To try meetaudit without Webex, run `meetaudit demo`"
        )
    return StaticToken(token)


class Harvester:
    """One harvest run over one window; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        on_event: Callable[[HarvestEvent], None] | None = None,
        now: dt.datetime | None = None,
        retry_after_default: float | None = None,
        backoff_base: float = 0.5,
    ) -> None:
        self.settings = settings
        self.db = db
        self._transport = transport
        self._emit = on_event or (lambda event: None)
        self._now = now
        self._retry_after_default = retry_after_default
        self._backoff_base = backoff_base

    # -- run bookkeeping -----------------------------------------------------------------

    def _start_run(self, session: Session, window: Window, parameters: dict[str, Any]) -> HarvestRun:
        # Runs still "running" hold no lock any more: their process died (kill -9, power loss).
        session.execute(
            update(HarvestRun)
            .where(HarvestRun.status == "running")
            .values(
                status="interrupted",
                finished_at=dt.datetime.now(dt.UTC),
                error="the harvest process stopped before finishing (killed or crashed)",
            )
        )
        run = HarvestRun(
            operator=self.settings.operator,
            hostname=socket.gethostname(),
            meetaudit_version=__version__,
            api_base_url=self.settings.webex_base_url,
            window_from=window.start,
            window_to=window.end,
            parameters=parameters,
            status="running",
        )
        session.add(run)
        session.flush()
        return run

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the harvest advisory lock on a dedicated connection for the whole run."""
        try:
            conn = self.db.engine.connect()
        except (OperationalError, DBAPIError):
            self.db.check()
            raise
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": HARVEST_LOCK_KEY}).scalar()
            conn.commit()
            if not got:
                raise DatabaseError(
                    "another meetaudit harvest is running against this database; wait for it to "
                    "finish (nothing was changed)"
                )
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": HARVEST_LOCK_KEY})
                conn.commit()
            except (OperationalError, DBAPIError):
                pass
            conn.close()

    # -- the run ---------------------------------------------------------------------------

    def run(self, window: Window, *, refresh: bool = False, dry_run: bool = False) -> HarvestSummary:
        """Harvest ``window``; return the summary (status ``complete`` only when nothing is missing)."""
        tokens = token_provider(self.settings)
        self.db.check()
        with self._exclusive():
            return asyncio.run(self._run(window, tokens, refresh=refresh, dry_run=dry_run))

    async def _run(
        self, window: Window, tokens: TokenProvider, *, refresh: bool, dry_run: bool
    ) -> HarvestSummary:
        started = time.monotonic()
        parameters = {
            "window_from": window.start.isoformat(),
            "window_to": window.end.isoformat(),
            "refresh": refresh,
            "dry_run": dry_run,
            "site_urls": self.settings.webex_site_urls,
            "host_emails": self.settings.webex_host_emails,
            "concurrency": self.settings.concurrency,
            "page_size": self.settings.page_size,
            "settle_minutes": self.settings.settle_minutes,
            "pid": os.getpid(),
        }
        with self.db.session() as session:
            run = self._start_run(session, window, parameters)
        summary = HarvestSummary(run_id=run.id, status="running", window=window)
        client = WebexClient(
            self.settings.webex_base_url,
            tokens,
            concurrency=self.settings.concurrency,
            timeout=self.settings.request_timeout,
            max_retries=self.settings.max_retries,
            transport=self._transport,
            run_id=str(run.run_uuid),
            backoff_base=self._backoff_base,
            **({"retry_after_default": self._retry_after_default} if self._retry_after_default is not None else {}),
        )
        error: str | None = None
        try:
            async with client:
                await self._harvest(client, run.id, window, summary, refresh=refresh, dry_run=dry_run)
        except WebexAuthError as exc:
            error = str(exc)
            summary.status = "failed"
            raise
        except asyncio.CancelledError:
            error = "stopped by the operator"
            summary.status = "interrupted"
            raise
        except KeyboardInterrupt:
            error = "stopped by the operator (Ctrl-C)"
            summary.status = "interrupted"
            raise
        except DatabaseError as exc:
            error = str(exc)
            summary.status = "failed"
            raise
        finally:
            summary.requests = client.stats.requests
            summary.retries = client.stats.retries
            summary.rate_limit_wait_seconds = client.stats.rate_limit_wait_seconds
            summary.elapsed_seconds = time.monotonic() - started
            if summary.status == "running":
                summary.status = (
                    "complete" if summary.gaps == 0 and summary.meetings_unsettled == 0 else "incomplete"
                )
            self._finish_run(summary, error)
        return summary

    def _finish_run(self, summary: HarvestSummary, error: str | None) -> None:
        try:
            with self.db.session() as session:
                session.execute(
                    update(HarvestRun)
                    .where(HarvestRun.id == summary.run_id)
                    .values(
                        status=summary.status,
                        finished_at=dt.datetime.now(dt.UTC),
                        meetings_listed=summary.meetings_listed,
                        meetings_complete=summary.meetings_complete,
                        meetings_skipped=summary.meetings_skipped,
                        meetings_unsettled=summary.meetings_unsettled,
                        participants=summary.participants,
                        devices=summary.devices,
                        invitees=summary.invitees,
                        gaps=summary.gaps,
                        requests=summary.requests,
                        retries=summary.retries,
                        rate_limit_wait_seconds=summary.rate_limit_wait_seconds,
                        error=error,
                    )
                )
        except (OperationalError, DBAPIError) as exc:
            # The database went away: the run stays "running" and the next run marks it interrupted.
            _log.warning("could not record the end of harvest run %s: %s", summary.run_id, exc)
        self._emit(HarvestEvent("finished", summary.status, data={"summary": summary}))

    async def _harvest(
        self,
        client: WebexClient,
        run_id: int,
        window: Window,
        summary: HarvestSummary,
        *,
        refresh: bool,
        dry_run: bool,
    ) -> None:
        listed, list_gaps, listed_ok = await self._list_meetings(client, window)
        now = self._now or dt.datetime.now(dt.UTC)
        settle = dt.timedelta(minutes=self.settings.settle_minutes)
        settled = [(m, raw) for m, raw in listed if m.end is not None and m.end + settle <= now]
        unsettled = [(m, raw) for m, raw in listed if not (m.end is not None and m.end + settle <= now)]
        summary.meetings_listed = len(listed)
        summary.meetings_unsettled = len(unsettled)
        ids = [m.id for m, _ in settled]
        self._emit(HarvestEvent("listed", f"{len(listed)} ended meetings listed", total=len(ids)))

        if dry_run:
            with self.db.sessions() as session:
                complete = set(
                    session.scalars(
                        select(Meeting.meeting_id).where(
                            Meeting.meeting_id.in_(ids), Meeting.complete_at.is_not(None)
                        )
                    )
                )
            todo = [m for m, _ in settled if refresh or m.id not in complete]
            summary.meetings_to_fetch = len(todo)
            summary.meetings_skipped = len(settled) - len(todo)
            summary.planned = [
                f"{m.start.isoformat() if m.start else '?'}  {m.id}  {m.title or ''}" for m in todo
            ]
            summary.gaps = len(list_gaps)
            return

        gaps: list[_Gap] = list(list_gaps)
        for m, _ in unsettled:
            gaps.append(
                _Gap(
                    scope="meeting",
                    meeting_id=m.id,
                    reason=(
                        f"ended less than {self.settings.settle_minutes} minutes before the harvest; "
                        "Webex has not finalised its details yet — run the harvest again later"
                    ),
                )
            )
        with self.db.session() as session:
            upsert_listed_meetings(session, run_id, listed)
            for gap in gaps:
                self._write_gap(session, run_id, gap)
            resolve_listing_gaps(session, run_id, listed_ok)
            complete = set(
                session.scalars(
                    select(Meeting.meeting_id).where(
                        Meeting.meeting_id.in_(ids), Meeting.complete_at.is_not(None)
                    )
                )
            )
        summary.gaps = len(gaps)
        todo = [m for m, _ in settled if refresh or m.id not in complete]
        summary.meetings_to_fetch = len(todo)
        summary.meetings_skipped = len(settled) - len(todo)
        self._emit(
            HarvestEvent(
                "plan",
                f"{len(todo)} meetings to fetch, {summary.meetings_skipped} already complete",
                total=len(todo),
            )
        )
        await self._fetch_and_store(client, run_id, todo, summary)

    # -- listing ---------------------------------------------------------------------------

    async def _list_meetings(
        self, client: WebexClient, window: Window
    ) -> tuple[list[tuple[schemas.Meeting, dict[str, Any]]], list[_Gap], list[Window]]:
        scopes: list[dict[str, str]] = []
        sites: Sequence[str | None] = self.settings.webex_site_urls or [None]
        hosts: Sequence[str | None] = self.settings.webex_host_emails or [None]
        for site in sites:
            for host in hosts:
                scope = {}
                if site:
                    scope["siteUrl"] = site
                if host:
                    scope["hostEmail"] = host
                scopes.append(scope)
        limiter = asyncio.Semaphore(self.settings.concurrency)
        found: dict[str, tuple[schemas.Meeting, dict[str, Any]]] = {}
        gaps: list[_Gap] = []
        listed_ok: list[Window] = []

        async def list_chunk(chunk: Window, scope: dict[str, str]) -> None:
            params = {
                "meetingType": "meeting",
                "state": "ended",
                "from": _iso(chunk.start),
                "to": _iso(chunk.end),
                "max": self.settings.page_size,
                **scope,
            }
            try:
                async with limiter:
                    items = await client.get_all("meetings", params)
            except WebexAuthError:
                raise
            except WebexError as exc:
                gaps.append(
                    _Gap("meeting_list", str(exc), url=exc.url, http_status=exc.status,
                         tracking_id=exc.tracking_id, window=chunk)
                )  # fmt: skip
                return
            if len(items) >= self.settings.window_cap and chunk.end - chunk.start > MIN_LISTING_CHUNK:
                # Webex lists at most 10,000 instances per query: split until below the cap.
                await asyncio.gather(*(list_chunk(half, scope) for half in chunk.halves()))
                return
            for index, raw in enumerate(items):
                raw = schemas.scrub(raw)
                try:
                    meeting = schemas.Meeting.model_validate(raw)
                except ValidationError as exc:
                    gaps.append(
                        _Gap("meeting_list", schemas.describe_validation_error("meeting", index, exc),
                             meeting_id=str(raw.get("id")) if raw.get("id") else None, window=chunk)
                    )  # fmt: skip
                    continue
                if meeting.state not in (None, "ended"):
                    continue
                found.setdefault(meeting.id, (meeting, raw))
            listed_ok.append(chunk)
            self._emit(HarvestEvent("listing", f"listed {len(found)} meetings", done=len(found)))

        await asyncio.gather(
            *(list_chunk(chunk, scope) for scope in scopes for chunk in window.chunks(LISTING_CHUNK))
        )
        meetings = sorted(found.values(), key=lambda pair: (pair[0].start or window.start, pair[0].id))
        return meetings, gaps, listed_ok

    # -- fetching and storing --------------------------------------------------------------

    async def _fetch_meeting(
        self, client: WebexClient, meeting: schemas.Meeting
    ) -> MeetingRecord | _Gap:
        params: dict[str, Any] = {"meetingId": meeting.id, "max": self.settings.page_size}
        if self.settings.webex_host_emails and meeting.host_email:
            params["hostEmail"] = meeting.host_email
        scope = "participants"
        try:
            participants_raw, invitees_raw = await asyncio.gather(
                client.get_all("meetingParticipants", params),
                client.get_all("meetingInvitees", {"meetingId": meeting.id, "max": self.settings.page_size}),
            )
        except WebexAuthError:
            raise
        except WebexError as exc:
            if exc.url and "meetingInvitees" in exc.url:
                scope = "invitees"
            return _Gap(scope, str(exc), meeting_id=meeting.id, url=exc.url,
                        http_status=exc.status, tracking_id=exc.tracking_id)  # fmt: skip
        participants: list[tuple[schemas.Participant, dict[str, Any]]] = []
        for index, raw in enumerate(participants_raw):
            raw = schemas.scrub(raw)
            try:
                participants.append((schemas.Participant.model_validate(raw), raw))
            except ValidationError as exc:
                return _Gap("participants", schemas.describe_validation_error("participant", index, exc),
                            meeting_id=meeting.id)  # fmt: skip
        invitees: list[tuple[schemas.Invitee, dict[str, Any]]] = []
        for index, raw in enumerate(invitees_raw):
            raw = schemas.scrub(raw)
            try:
                invitees.append((schemas.Invitee.model_validate(raw), raw))
            except ValidationError as exc:
                return _Gap("invitees", schemas.describe_validation_error("invitee", index, exc),
                            meeting_id=meeting.id)  # fmt: skip
        return MeetingRecord(meeting.id, participants, invitees)

    async def _fetch_and_store(
        self, client: WebexClient, run_id: int, todo: list[schemas.Meeting], summary: HarvestSummary
    ) -> None:
        queue: asyncio.Queue[MeetingRecord | _Gap | None] = asyncio.Queue(
            maxsize=max(64, 4 * self.settings.concurrency)
        )
        limiter = asyncio.Semaphore(self.settings.concurrency)
        done = 0

        async def worker(meeting: schemas.Meeting) -> None:
            async with limiter:
                result = await self._fetch_meeting(client, meeting)
            await queue.put(result)

        async def writer() -> None:
            nonlocal done
            finished = False
            while not finished:
                first = await queue.get()
                if first is None:
                    break
                batch = [first]
                rows = _row_estimate(first)
                while len(batch) < WRITE_BATCH_MEETINGS and rows < WRITE_BATCH_ROWS:
                    try:
                        item = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    if item is None:
                        finished = True
                        break
                    batch.append(item)
                    rows += _row_estimate(item)
                await asyncio.to_thread(self._write_batch, run_id, batch, summary)
                done += len(batch)
                self._emit(
                    HarvestEvent("meeting", "", total=len(todo), done=done,
                                 data={"requests": client.stats.requests, "retries": client.stats.retries,
                                       "waited": client.stats.rate_limit_wait_seconds, "gaps": summary.gaps})
                )  # fmt: skip

        writer_task = asyncio.create_task(writer())
        workers = [asyncio.create_task(worker(m)) for m in todo]
        try:
            # Surface the first failure (a 401, the database gone) instead of waiting for all.
            pending: set[asyncio.Task[None]] = set(workers) | {writer_task}
            while any(not w.done() for w in workers):
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    if (failure := task.exception()) is not None:
                        raise failure
            await queue.put(None)
            await writer_task
        finally:
            for task in [*workers, writer_task]:
                task.cancel()
            await asyncio.gather(*workers, writer_task, return_exceptions=True)

    def _write_batch(self, run_id: int, batch: list[MeetingRecord | _Gap], summary: HarvestSummary) -> None:
        records = [item for item in batch if isinstance(item, MeetingRecord)]
        gaps = [item for item in batch if isinstance(item, _Gap)]
        try:
            self._store(run_id, records, gaps, summary)
        except (IntegrityError, DBAPIError) as exc:
            if isinstance(exc, OperationalError) or _connection_lost(exc):
                raise DatabaseError(
                    f"lost the database while storing meetings ({_first_line(exc)}); every meeting "
                    "stored so far is complete — run the same command again to continue"
                ) from None
            # One bad meeting must not sink the batch: store them one by one.
            for record in records:
                try:
                    self._store(run_id, [record], [], summary)
                except (IntegrityError, DBAPIError) as one:
                    if isinstance(one, OperationalError) or _connection_lost(one):
                        raise DatabaseError(
                            f"lost the database while storing meetings ({_first_line(one)}); run "
                            "the same command again to continue"
                        ) from None
                    gaps.append(_Gap("meeting", f"PostgreSQL refused the meeting's rows: {_first_line(one)}",
                                     meeting_id=record.meeting_id))  # fmt: skip
            if gaps:
                self._store(run_id, [], gaps, summary)

    def _store(self, run_id: int, records: list[MeetingRecord], gaps: list[_Gap], summary: HarvestSummary) -> None:
        with self.db.session() as session:
            counts = store_meetings(session, run_id, records)
            for gap in gaps:
                self._write_gap(session, run_id, gap)
        summary.meetings_complete += counts.meetings
        summary.participants += counts.participants
        summary.devices += counts.devices
        summary.invitees += counts.invitees
        summary.revisions += counts.revisions
        summary.gaps += len(gaps)
        for gap in gaps:
            self._emit(HarvestEvent("gap", gap.reason, data={"meeting_id": gap.meeting_id,
                                                              "status": gap.http_status}))  # fmt: skip

    @staticmethod
    def _write_gap(session: Session, run_id: int, gap: _Gap) -> None:
        record_gap(
            session,
            run_id,
            scope=gap.scope,
            reason=gap.reason,
            meeting_id=gap.meeting_id,
            url=gap.url,
            http_status=gap.http_status,
            tracking_id=gap.tracking_id,
            window=(gap.window.start, gap.window.end) if gap.window else None,
        )


def open_gaps(session: Session, window: Window) -> list[HarvestGap]:
    """Unresolved gaps touching ``window``: meetings in it, or listing windows overlapping it."""
    in_window = select(Meeting.meeting_id).where(
        Meeting.start_at >= window.start, Meeting.start_at < window.end
    )
    return list(
        session.scalars(
            select(HarvestGap)
            .where(HarvestGap.resolved_at.is_(None))
            .where(
                HarvestGap.meeting_id.in_(in_window)
                | (
                    HarvestGap.meeting_id.is_(None)
                    & (HarvestGap.window_from < window.end)
                    & (HarvestGap.window_to > window.start)
                )
            )
            .order_by(HarvestGap.occurred_at)
        )
    )


def resolve_listing_gaps(session: Session, run_id: int, listed: Sequence[Window]) -> None:
    """Close listing gaps of earlier runs whose window has now been listed without error."""
    for chunk in listed:
        session.execute(
            update(HarvestGap)
            .where(
                HarvestGap.scope == "meeting_list",
                HarvestGap.meeting_id.is_(None),
                HarvestGap.resolved_at.is_(None),
                HarvestGap.window_from >= chunk.start,
                HarvestGap.window_to <= chunk.end,
            )
            .values(resolved_at=dt.datetime.now(dt.UTC), resolved_by_run_id=run_id)
        )


def _row_estimate(item: MeetingRecord | _Gap) -> int:
    if isinstance(item, MeetingRecord):
        return 1 + len(item.participants) * 2 + len(item.invitees)
    return 1


def _connection_lost(exc: DBAPIError) -> bool:
    return bool(getattr(exc, "connection_invalidated", False))


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text_ = str(orig).strip()
    return text_.splitlines()[0] if text_ else type(orig).__name__


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
