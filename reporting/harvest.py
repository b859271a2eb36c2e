"""Harvest orchestration: list ended meetings → fetch participants and invitees → store.

The network side runs concurrently (``concurrency`` meetings at a time, each fetching its
participants and invitees side by side, so up to twice that many requests are in flight on one
``httpx.AsyncClient`` under one shared rate governor). One writer thread drains validated meetings
in batches into PostgreSQL, so database writes never hold up the network for long. Each batch is
one transaction that stores whole meetings together with their completion marks: a harvest
stopped at any moment — Ctrl-C, ``kill -9``, the database going away — leaves only complete
meetings, and running the same command again skips them (unless ``refresh``) and fetches the rest.

Listing runs in day chunks per site (``siteUrl``) and, when configured, per host (``hostEmail``);
a chunk that reaches the API's 10,000-instance cap is cut there at once and split in halves until
none does (down to ``MIN_LISTING_CHUNK``). Each scope's listing of the window shares a page budget
(:func:`listing_page_budget`), so a server that pages without end — also in every half — costs a
bounded number of requests: what it could not list ends as a ``meeting_list`` gap naming the site,
host and window. Participants and invitees of one meeting are bounded by
``MEETING_ITEMS_CAP``; a listing of them that runs away makes that meeting a gap. Meetings
that ended less than ``settle_minutes`` ago are left for the next run (Webex has not finalised
them).

Anything that cannot be fetched or does not validate becomes a *gap* (``harvest_gaps``) with the
HTTP status and the trackingId; a run with gaps ends ``incomplete``. The attendee report
(``/meetingReports/attendees``) is optional enrichment: fetched per site and day when the token
allows it; a 403 there (no admin report scope) is noted once in the run's parameters and the
report is not asked for again — it is never a gap. Meetings stored complete while their report
could not be read (``attendee_report_at`` NULL) get a report-only fetch on a later run, while they
are young enough for the report API: their participants are not fetched again.

Once listing and fetching are done, the run asks Webex whose token it ran with
(``/people/me``: an administrator or not) and which sites that token has, and weighs what the
listing showed: its record keeps the token's owner and the listing's reach
(:mod:`reporting.reach`), because a period is only as complete as what its listing could see.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from reporting import __version__
from reporting.config import DEFAULT_API_URL, Settings
from reporting.coverage import what_is_missing
from reporting.db.engine import Database
from reporting.db.models import HarvestGap, HarvestRun, Meeting
from reporting.db.writes import (
    MeetingRecord,
    record_gap,
    store_attendee_reports,
    store_meetings,
    upsert_listed_meetings,
)
from reporting.errors import (
    ConfigError,
    DatabaseError,
    MeetauditError,
    WebexAuthError,
    WebexError,
    WebexHTTPError,
    WebexNotJson,
    WebexUnreachable,
)
from reporting.periods import Window, month_window, previous_month  # noqa: F401 - re-exported
from reporting.reach import Evidence, assess, evidence_of_run, reach_words
from reporting.webex import plausibility, schemas
from reporting.webex.auth import OAuthRefresher, StaticToken, TokenProvider
from reporting.webex.client import (
    DEFAULT_RETRY_AFTER,
    PAGE_MARGIN,
    EndlessListing,
    Listing,
    ListingLimit,
    PageBudget,
    WebexClient,
)
from reporting.webex.principal import ask_principal, ask_sites

_log = logging.getLogger(__name__)

# One harvest at a time per database: a second one would race the first for the same meetings.
HARVEST_LOCK_KEY = 0x6D656574  # "meet"
LISTING_CHUNK = dt.timedelta(days=1)
MIN_LISTING_CHUNK = dt.timedelta(minutes=15)
# One scope's listing of a window may take this many full queries' worth of pages per day of it
# (at least LISTING_MIN_QUERIES): room for splitting days of about 15,000 meetings on average,
# while a server that never stops paging costs a bounded number of requests.
LISTING_QUERIES_PER_DAY = 4
LISTING_MIN_QUERIES = 8
# Participants, and invitees, one meeting may have: ten times the 1,000 people a Webex meeting
# holds, and Webex's own limit of one listing query (10,000).
MEETING_ITEMS_CAP = 10_000
# Rows of one site's attendee report for one day (100 pages of 1,000).
REPORT_ROWS_CAP = 100_000
WRITE_BATCH_MEETINGS = 200
WRITE_BATCH_ROWS = 20_000
# Requests one meeting has in flight at once: its participants and its invitees.
REQUESTS_PER_MEETING = 2
# The attendee report API: at most 1,000 rows a page, windows from at most 90 days ago.
REPORT_PAGE_SIZE = 1000
REPORT_MAX_AGE = dt.timedelta(days=90)
# Progress events are sent at most this often (seconds), and once at the end.
PROGRESS_INTERVAL = 0.5
# The harvest lists ``state=ended``; an item Webex returns in another state is counted per state
# in the run record, the summary and the report, never dropped silently. States that only apply
# to a series or a scheduled meeting that never took place (see the spec's ``state`` enum) hold
# no attendance of an instance: counted, nothing more. Any other state — ``inProgress``, ``lobby``
# or one the spec does not know — may be a meeting still happening: its participants are not
# final evidence, so it is a gap (meeting id and listing window) that keeps the period
# incomplete until a later run lists it ended and stores it.
NEVER_HELD_STATES = frozenset({"active", "scheduled", "ready", "missed", "expired"})


@dataclass
class HarvestEvent:
    """Something an operator watching the harvest wants to see.

    Kinds: ``listing`` (listed so far), ``listed`` (the listing is done), ``plan`` (what will be
    fetched), ``progress`` (meetings stored / total with counters and ETA, at most twice a
    second), ``retry`` (a request is retried or rate limited), ``gap``, ``note`` (something
    worth knowing that is not a gap, e.g. no attendee report), ``finished`` (the summary).
    """

    kind: str
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
    attendee_rows: int = 0
    # Meetings stored complete by an earlier run without their attendee report: how many got
    # (in a dry run: would get) a report-only fetch, and how many had their report added.
    attendee_backfill_planned: int = 0
    attendee_backfilled: int = 0
    revisions: int = 0
    gaps: int = 0
    # Gaps earlier runs recorded in this window that this run could not close (a meeting that
    # Webex stopped listing, say), and meetings listed earlier that are still not stored.
    still_missing: int = 0
    # Items the listing returned in a state other than ``ended``, per state (see NEVER_HELD_STATES).
    listed_not_ended: dict[str, int] = field(default_factory=dict)
    # Everything missing from the window once the run ended, as `meetaudit gaps` counts it
    # (reporting.coverage); None when not checked (a dry run, or the database could not say).
    open_in_window: int | None = None
    requests: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_limit_wait_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    error: str | None = None
    planned: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    # Whose token listed (GET /people/me) and what its listing could see (reporting.reach);
    # None when not asked (a dry run, or a run that stopped before the end of its listing).
    token_principal: dict[str, Any] | None = None
    listing_reach: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        """True when every meeting of the window is stored and nothing is pending."""
        return self.status == "complete"

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data (for JSON log lines)."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "window_from": self.window.start.isoformat(),
            "window_to": self.window.end.isoformat(),
            "meetings_listed": self.meetings_listed,
            "meetings_to_fetch": self.meetings_to_fetch,
            "meetings_complete": self.meetings_complete,
            "meetings_skipped": self.meetings_skipped,
            "meetings_unsettled": self.meetings_unsettled,
            "participants": self.participants,
            "devices": self.devices,
            "invitees": self.invitees,
            "attendee_rows": self.attendee_rows,
            "attendee_backfill_planned": self.attendee_backfill_planned,
            "attendee_backfilled": self.attendee_backfilled,
            "revisions": self.revisions,
            "gaps": self.gaps,
            "still_missing": self.still_missing,
            "listed_not_ended": self.listed_not_ended,
            "open_in_window": self.open_in_window,
            "requests": self.requests,
            "pages": self.pages,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "rate_limit_wait_seconds": round(self.rate_limit_wait_seconds, 3),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "error": self.error,
            "notes": self.notes,
            "token_principal": self.token_principal,
            "listing_reach": self.listing_reach,
        }


@dataclass
class _Gap:
    scope: str
    reason: str
    meeting_id: str | None = None
    url: str | None = None
    http_status: int | None = None
    tracking_id: str | None = None
    window: Window | None = None
    # The plausibility check that refused the item, when one did.
    check: str | None = None

    @classmethod
    def from_error(cls, scope: str, exc: WebexError, **kw: Any) -> _Gap:
        return cls(scope, str(exc), url=exc.url, http_status=exc.status,
                   tracking_id=exc.tracking_id, **kw)  # fmt: skip


@dataclass
class _Listed:
    """Listed meetings (and listing gaps) for the writer to store before any of their items."""

    meetings: list[tuple[schemas.Meeting, dict[str, Any]]]
    gaps: list[_Gap]
    resolved: list[Window] = field(default_factory=list)
    # Of ``meetings``: already stored complete, and not final at Webex yet (for the run's counts).
    skipped: int = 0
    unsettled: int = 0


@dataclass(frozen=True)
class _ReportOnly:
    """A meeting stored complete without its attendee report: fetch only the report."""

    meeting: schemas.Meeting


@dataclass(frozen=True)
class _AttendeeRows:
    """The attendee report read for a meeting already stored complete, for the writer."""

    meeting_id: str
    rows: list[tuple[schemas.AttendeeReportItem, dict[str, Any]]]


_Chunk = Callable[[list[tuple[schemas.Meeting, dict[str, Any]]], list[_Gap]], Awaitable[None]]


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
            settings.secret("webex_client_secret") or "",
            settings.secret("webex_refresh_token") or "",
        )
    token = settings.access_token()
    if token is None:
        raise ConfigError(
            "no Webex access token: set MEETAUDIT_WEBEX_TOKEN (or MEETAUDIT_WEBEX_TOKEN_FILE, or "
            "the OAuth integration settings). To try meetaudit without Webex, run `meetaudit demo`"
        )
    return StaticToken(token)


class _AttendeeReports:
    """The optional attendee report, fetched once per (site, UTC day) and shared by its meetings.

    A day's report is dropped from memory once every meeting of that day to be fetched has taken
    its rows. The first 403 turns the enrichment off for the rest of the run (noted, not a gap);
    any other failure leaves those meetings without a report and is noted with its trackingId.
    """

    def __init__(
        self,
        client: WebexClient,
        *,
        now: dt.datetime,
        enabled: bool,
        emit: Callable[[HarvestEvent], None],
    ) -> None:
        self._client = client
        self._emit = emit
        self.enabled = enabled
        self.notes: dict[str, Any] = {"status": "fetched" if enabled else "disabled by settings"}
        self._oldest = _report_oldest(now)
        self._days: dict[
            tuple[str, dt.date], asyncio.Future[dict[str, list[dict[str, Any]]] | None]
        ] = {}
        self._waiting: Counter[tuple[str, dt.date]] = Counter()
        self.rows = 0
        self._too_old = 0
        # What happened to each (site, UTC day) asked for: the run record says it day by day.
        self.days: dict[str, dict[str, Any]] = {}
        # Until one report request has answered, the others wait: a token without the report
        # scope then costs one 403, not one per day and site.
        self._probe = asyncio.Lock()
        self._probed = False

    @staticmethod
    def _key(meeting: schemas.Meeting) -> tuple[str, dt.date] | None:
        if meeting.site_url is None or meeting.start is None:
            return None
        return meeting.site_url, meeting.start.astimezone(dt.UTC).date()

    def can_backfill(self, meeting: schemas.Meeting) -> bool:
        """Whether a report-only fetch can add the report to ``meeting`` (stored without it)."""
        return self.enabled and _reportable(meeting, self._oldest)

    def expect(self, meeting: schemas.Meeting) -> None:
        """Count ``meeting`` in, so its day's report is kept until it has taken its rows."""
        key = self._key(meeting)
        if key is not None and self.enabled:
            self._waiting[key] += 1

    def _note(self, key: str, value: Any) -> None:
        self.notes[key] = value

    async def for_meeting(
        self, meeting: schemas.Meeting
    ) -> list[tuple[schemas.AttendeeReportItem, dict[str, Any]]] | None:
        """The meeting's attendee-report rows, or ``None`` when there is no report for it."""
        key = self._key(meeting)
        if key is None:
            return None
        try:
            if not self.enabled:
                return None
            assert meeting.start is not None
            if meeting.start < self._oldest:
                self._too_old += 1
                self._note("older_than_90_days", self._too_old)
                return None
            day = self._days.get(key)
            if day is None:
                day = asyncio.ensure_future(self._fetch_day(*key))
                self._days[key] = day
            # Shielded: one meeting's cancellation must not cancel the day's shared fetch.
            by_meeting = await asyncio.shield(day)
        finally:
            self._waiting[key] -= 1
            if self._waiting[key] <= 0:
                self._days.pop(key, None)
        if by_meeting is None:
            return None  # not fetched: rows stored by an earlier run stay as they are
        raws = by_meeting.get(meeting.id, [])
        items, problem = schemas.validate_items(schemas.ATTENDEE_REPORT, "attendee report", raws)
        if problem is not None:
            self._note("invalid", f"{meeting.id}: {problem}")
            return None
        self.rows += len(items)
        return list(zip(items, raws, strict=True))

    async def _fetch_day(self, site: str, day: dt.date) -> dict[str, list[dict[str, Any]]] | None:
        """The day's report rows by meeting id; ``None`` when the report could not be had."""
        if not self.enabled:
            return None
        start = max(
            dt.datetime.combine(day, dt.time(), dt.UTC), self._oldest.replace(microsecond=0)
        )
        params = {
            "siteUrl": site,
            "from": _iso(start),
            "to": _iso(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)),
            "max": REPORT_PAGE_SIZE,
        }
        try:
            if self._probed:
                items = await self._client.get_all(
                    "meetingReports/attendees", params, limit=_REPORT
                )
            else:
                async with self._probe:
                    if not self.enabled:
                        return None
                    try:
                        items = await self._client.get_all(
                            "meetingReports/attendees", params, limit=_REPORT
                        )
                    finally:
                        self._probed = True
        except WebexAuthError:
            raise
        except WebexHTTPError as exc:
            if exc.status == 403:
                self.days[f"{site} {day}"] = {"status": "refused", "http_status": 403,
                                              "tracking_id": exc.tracking_id}  # fmt: skip
            if exc.status == 403 and self.enabled:
                self.enabled = False
                self.notes.update(
                    status="not available: the token may not read attendee reports (HTTP 403)",
                    http_status=403, tracking_id=exc.tracking_id,
                )  # fmt: skip
                self._emit(HarvestEvent("note", "no attendee report: the token lacks the admin "
                                                "report scope (HTTP 403); harvesting without it",
                                        data={"tracking_id": exc.tracking_id}))  # fmt: skip
            elif exc.status != 403:
                self._record_failure(site, day, exc)
            return None
        except WebexError as exc:
            self._record_failure(site, day, exc)
            return None
        by_meeting: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            mid = item.get("meetingId")
            if isinstance(mid, str):
                by_meeting.setdefault(mid, []).append(item)
        self.days[f"{site} {day}"] = {"status": "fetched", "rows": len(items)}
        return by_meeting

    def final_notes(self) -> dict[str, Any]:
        """The run record's account of the attendee report: per (site, UTC day) asked for,
        fetched (with its rows), failed or refused (with the HTTP status and trackingId); and an
        overall status that says so — "fetched" only when every day asked for was."""
        notes = dict(self.notes)
        if self.days:
            notes["days"] = dict(sorted(self.days.items()))
        fetched = sum(1 for d in self.days.values() if d["status"] == "fetched")
        failed = sum(1 for d in self.days.values() if d["status"] == "failed")
        refused = sum(1 for d in self.days.values() if d["status"] == "refused")
        if fetched and (failed or refused):
            notes["status"] = (
                f"partly: fetched for {fetched} of {len(self.days)} site-days; "
                f"{failed + refused} not (see days)"
            )
        elif failed and not refused:
            notes["status"] = f"failed: none of the {failed} site-days asked for could be fetched"
        elif not self.days and notes.get("status") == "fetched":
            notes["status"] = "not needed: no meeting of the run was asked for it"
        return notes

    def _record_failure(self, site: str, day: dt.date, exc: WebexError) -> None:
        self.days[f"{site} {day}"] = {"status": "failed", "http_status": exc.status,
                                      "tracking_id": exc.tracking_id, "reason": str(exc)}  # fmt: skip
        failures = self.notes.setdefault("failures", [])
        failures.append({"site": site, "day": day.isoformat(), "reason": str(exc),
                         "http_status": exc.status, "tracking_id": exc.tracking_id})  # fmt: skip
        self._emit(HarvestEvent("note", f"attendee report of {site} on {day} not fetched: {exc}",
                                data={"tracking_id": exc.tracking_id}))  # fmt: skip


class _PlausibilityTally:
    """How many items each plausibility check refused or flagged in one run (for its record)."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def _add(self, check: str, what: str) -> None:
        entry = self.counts.setdefault(check, {"refused": 0, "flagged": 0})
        entry[what] += 1

    def refused(self, check: str) -> None:
        """Count an item ``check`` refused."""
        self._add(check, "refused")

    def flagged(self, check: str) -> None:
        """Count an item ``check`` flagged."""
        self._add(check, "flagged")


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
        # Listed items not in state ``ended`` (meeting id -> state), for the run's counts.
        self._not_ended: dict[str, str] = {}
        self._plausibility = _PlausibilityTally()

    # -- run bookkeeping -----------------------------------------------------------------

    def _start_run(
        self, session: Session, window: Window, parameters: dict[str, Any]
    ) -> HarvestRun:
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
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": HARVEST_LOCK_KEY}
            ).scalar()
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

    def run(
        self, window: Window, *, refresh: bool = False, dry_run: bool = False
    ) -> HarvestSummary:
        """Harvest ``window``; return the summary (status ``complete`` only when nothing is missing).

        ``dry_run`` lists the window and says what would be fetched; it writes nothing.
        """
        tokens = token_provider(self.settings)
        self.db.check()
        if dry_run:
            return _run_stoppable(self._run(window, tokens, refresh=refresh, dry_run=True))
        with self._exclusive():
            return _run_stoppable(self._run(window, tokens, refresh=refresh, dry_run=False))

    def _parameters(self, window: Window, refresh: bool) -> dict[str, Any]:
        return {
            "window_from": window.start.isoformat(),
            "window_to": window.end.isoformat(),
            "refresh": refresh,
            "site_urls": self.settings.webex_site_urls,
            "host_emails": self.settings.webex_host_emails,
            "concurrency": self.settings.concurrency,
            "page_size": self.settings.page_size,
            "settle_minutes": self.settings.settle_minutes,
            "window_cap": self.settings.window_cap,
            "attendee_reports": self.settings.harvest_attendee_reports,
            "pid": os.getpid(),
        }

    async def _run(
        self, window: Window, tokens: TokenProvider, *, refresh: bool, dry_run: bool
    ) -> HarvestSummary:
        started = time.monotonic()
        self._not_ended = {}
        self._plausibility = _PlausibilityTally()
        parameters = self._parameters(window, refresh)
        if dry_run:
            summary = HarvestSummary(run_id=0, status="running", window=window)
        else:
            with self.db.session() as session:
                run = self._start_run(session, window, parameters)
            summary = HarvestSummary(run_id=run.id, status="running", window=window)
        client = WebexClient(
            self.settings.webex_base_url,
            tokens,
            concurrency=self.settings.concurrency * REQUESTS_PER_MEETING,
            timeout=self.settings.request_timeout,
            max_retries=self.settings.max_retries,
            transport=self._transport,
            run_id=str(run.run_uuid) if not dry_run else None,
            backoff_base=self._backoff_base,
            on_retry=self._on_retry,
            retry_after_default=(
                self._retry_after_default
                if self._retry_after_default is not None
                else DEFAULT_RETRY_AFTER
            ),
        )
        try:
            async with client:
                await self._harvest(client, summary, window, refresh=refresh, dry_run=dry_run)
        except asyncio.CancelledError:
            summary.status, summary.error = "interrupted", "stopped by the operator (Ctrl-C)"
            raise
        except MeetauditError as exc:
            summary.status, summary.error = "failed", str(exc)
            raise
        except BaseException as exc:
            summary.status = "failed"
            summary.error = f"unexpected {type(exc).__name__}: {_first_line(exc)}"
            raise
        finally:
            summary.requests = client.stats.requests
            summary.pages = client.stats.pages
            summary.retries = client.stats.retries
            summary.rate_limited = client.stats.rate_limited
            summary.rate_limit_wait_seconds = client.governor.paused_seconds
            summary.elapsed_seconds = time.monotonic() - started
            summary.listed_not_ended = dict(sorted(Counter(self._not_ended.values()).items()))
            if summary.listed_not_ended:
                summary.notes["listed_not_ended"] = summary.listed_not_ended
            if summary.status == "running":
                if not dry_run:
                    # COMPLETE means what `meetaudit gaps` and the report mean by it: the one
                    # definition (reporting.coverage) finds nothing missing in the window.
                    summary.still_missing = self._still_missing(summary, window)
                summary.status = (
                    "complete"
                    if summary.gaps == 0
                    and summary.meetings_unsettled == 0
                    and summary.still_missing == 0
                    else "incomplete"
                )
            if not dry_run:
                self._finish_run(summary, {**parameters, **summary.notes})
            self._emit(HarvestEvent("finished", summary.status, data={"summary": summary}))
        return summary

    def _still_missing(self, summary: HarvestSummary, window: Window) -> int:
        """What is missing from ``window`` after this run (reporting.coverage), apart from the
        gaps this run recorded itself (counted in ``summary.gaps``).

        The run's own window counts as listed: it is, once the run is recorded as finished
        (just after this check). When the database cannot say, the window is not called
        complete: 1 is returned.
        """
        try:
            with self.db.sessions() as session:
                missing = what_is_missing(session, window, listed_by=[(window.start, window.end)])
        except (OperationalError, DBAPIError) as exc:
            _log.warning("could not check the window for open gaps: %s", _first_line(exc))
            return 1
        summary.open_in_window = missing.open_count
        own = sum(1 for g in missing.open_gaps if g.harvest_run_id == summary.run_id)
        return missing.open_count - own

    def _on_retry(
        self, what: str, status: int | None, delay: float, tracking_id: str | None
    ) -> None:
        self._emit(HarvestEvent("retry", what, data={"status": status, "delay": round(delay, 3),
                                                     "tracking_id": tracking_id}))  # fmt: skip

    def _finish_run(self, summary: HarvestSummary, parameters: dict[str, Any]) -> None:
        try:
            with self.db.session() as session:
                session.execute(
                    update(HarvestRun)
                    .where(HarvestRun.id == summary.run_id)
                    .values(
                        status=summary.status,
                        finished_at=dt.datetime.now(dt.UTC),
                        parameters=parameters,
                        # What was stored is counted by each batch as it commits (see _store).
                        requests=summary.requests,
                        retries=summary.retries,
                        rate_limit_wait_seconds=summary.rate_limit_wait_seconds,
                        error=summary.error,
                        token_principal=summary.token_principal,
                        listing_reach=summary.listing_reach,
                    )
                )
        except (OperationalError, DBAPIError) as exc:
            # The database went away: the run stays "running" and the next run marks it interrupted.
            _log.warning(
                "could not record the end of harvest run %s: %s", summary.run_id, _first_line(exc)
            )

    async def _harvest(
        self, client: WebexClient, summary: HarvestSummary, window: Window, *, refresh: bool,
        dry_run: bool,
    ) -> None:  # fmt: skip
        now = self._now or dt.datetime.now(dt.UTC)
        if dry_run:
            await self._plan(client, summary, window, refresh=refresh, now=now)
            return
        complete, unreported = (
            (set[str](), set[str]())
            if refresh
            else await asyncio.to_thread(self._complete_near, window)
        )
        reports = _AttendeeReports(client, now=now, enabled=self.settings.harvest_attendee_reports,
                                   emit=self._emit)  # fmt: skip
        try:
            await self._pipeline(client, summary, window, (complete, unreported), reports, now)
        finally:
            summary.attendee_rows = reports.rows
            if summary.attendee_backfill_planned:
                reports.notes["added_to_stored_meetings"] = summary.attendee_backfilled
            summary.notes["attendee_report"] = reports.final_notes()
            summary.notes["plausibility"] = {
                name: self._plausibility.counts.get(name, {"refused": 0, "flagged": 0})
                for name in plausibility.CHECKS
            }
        await self._record_reach(client, summary)

    async def _record_reach(self, client: WebexClient, summary: HarvestSummary) -> None:
        """Ask Webex whose token listed and which sites it has, and weigh what the listing
        showed (reporting.reach); for the run's record. Asked once the listing and fetching are
        done, so the questions change nothing of the run itself; never a gap."""
        principal = await ask_principal(client)
        sites = await ask_sites(client)
        try:
            evidence = await asyncio.to_thread(
                self._evidence, summary.run_id, principal.get("emails") or []
            )
        except (OperationalError, DBAPIError) as exc:
            raise _lost_database(exc) from None
        reach = assess(
            principal, sites, site_urls=self.settings.webex_site_urls,
            host_emails=self.settings.webex_host_emails, evidence=evidence,
        )  # fmt: skip
        summary.token_principal, summary.listing_reach = principal, reach
        self._emit(HarvestEvent("note", reach_words(principal, reach), data={"reach": reach}))

    def _evidence(self, run_id: int, emails: list[str]) -> Evidence:
        with self.db.sessions() as session:
            return evidence_of_run(session, run_id, emails)

    def _settled(self, meeting: schemas.Meeting, now: dt.datetime) -> bool:
        settle = dt.timedelta(minutes=self.settings.settle_minutes)
        return meeting.end is not None and meeting.end + settle <= now

    def _open_window_gap(self, window: Window, cutoff: dt.datetime) -> _Gap:
        return _Gap(
            scope="meeting_list",
            reason=(
                f"the window is not over yet: meetings ending after {_iso(cutoff)} are not final "
                f"at Webex; run the harvest again after {_iso(window.end)} plus "
                f"{self.settings.settle_minutes} minutes"
            ),
            window=Window(max(window.start, cutoff), window.end),
        )

    def _not_ended_item(
        self, meeting: schemas.Meeting, chunk: Window, tracking_id: str | None
    ) -> _Gap | None:
        """Count a listed item whose state is not ``ended``; the gap it is, if it may still be
        evidence (see :data:`NEVER_HELD_STATES`). Counted once per meeting id and run."""
        if meeting.id in self._not_ended:
            return None
        self._not_ended[meeting.id] = str(meeting.state)
        if meeting.state in NEVER_HELD_STATES:
            return None
        self._plausibility.refused("meeting_not_ended")
        return _Gap(
            "meeting", f"Webex listed this meeting as {meeting.state!r}, not ended: its "
            "participants are not final, so it is not counted yet — run the harvest again after "
            "it has ended", meeting_id=meeting.id, window=chunk, tracking_id=tracking_id,
            check="meeting_not_ended",
        )  # fmt: skip

    def _unsettled_gap(self, meeting: schemas.Meeting) -> _Gap:
        return _Gap(
            scope="meeting",
            meeting_id=meeting.id,
            reason=(
                f"ended less than {self.settings.settle_minutes} minutes before the harvest; "
                "Webex has not finalised its details yet — run the harvest again later"
            ),
        )

    def _unusable_api(self, exc: WebexError, scope: dict[str, str]) -> WebexError | None:
        """The first listing day's failure, when it means no request can work: one error
        naming the address, instead of a gap for every day of the window. ``None`` otherwise."""
        where = (
            f"the Webex API address (setting WEBEX_BASE_URL, now {self.settings.webex_base_url})"
        )
        if isinstance(exc, WebexHTTPError) and exc.status == 404 and "hostEmail" not in scope:
            # The meeting list itself is "not found" (an unknown host may be "not found" too).
            advice = (f"Webex has no meeting list at {self.settings.webex_base_url}/meetings: "
                      f"check {where}; Webex's is {DEFAULT_API_URL}")  # fmt: skip
        elif isinstance(exc, WebexNotJson):
            # A web page, not the API: an address or proxy problem.
            advice = f"Check {where} and any proxy between this machine and Webex"
        elif isinstance(exc, WebexUnreachable):
            # Not one connection to Webex: a wrong address or no network.
            advice = f"Check {where} and this machine's network or proxy"
        else:
            return None
        return type(exc)(
            f"{str(exc).rstrip('.')}. {advice}; nothing was stored",
            status=exc.status, tracking_id=exc.tracking_id, url=exc.url,
        )  # fmt: skip

    async def _plan(
        self, client: WebexClient, summary: HarvestSummary, window: Window, *, refresh: bool,
        now: dt.datetime,
    ) -> None:  # fmt: skip
        """The dry run: list the window and say what a harvest would fetch; write nothing."""
        listed, gaps, _ = await self._list_meetings(client, window)
        settled = [m for m, _ in listed if self._settled(m, now)]
        summary.meetings_listed = len(listed)
        summary.meetings_unsettled = len(listed) - len(settled)
        complete, unreported = (
            (set[str](), set[str]())
            if refresh
            else await asyncio.to_thread(self._complete_ids, [m.id for m in settled])
        )
        todo = [m for m in settled if m.id not in complete]
        if self.settings.harvest_attendee_reports:
            oldest = _report_oldest(now)
            summary.attendee_backfill_planned = sum(
                1 for m in settled if m.id in unreported and _reportable(m, oldest)
            )
        summary.gaps = len(gaps) + summary.meetings_unsettled
        summary.meetings_to_fetch = len(todo)
        summary.meetings_skipped = len(settled) - len(todo)
        summary.planned = [
            f"{m.start.isoformat() if m.start else '?'}  {m.id}  {m.title or ''}" for m in todo
        ]

    def _complete_ids(self, ids: list[str]) -> tuple[set[str], set[str]]:
        """Of ``ids``, the meetings stored complete, and those of them without attendee report."""
        with self.db.sessions() as session:
            return _complete_split(
                session.execute(
                    select(Meeting.meeting_id, Meeting.attendee_report_at.is_(None)).where(
                        Meeting.meeting_id.in_(ids), Meeting.complete_at.is_not(None), _NO_OPEN_GAP
                    )
                )
            )

    def _complete_near(self, window: Window) -> tuple[set[str], set[str]]:
        """Meetings already stored complete that start in (or a day around) ``window``, and
        those of them whose attendee report has never been read."""
        margin = dt.timedelta(days=1)
        try:
            with self.db.sessions() as session:
                return _complete_split(
                    session.execute(
                        select(Meeting.meeting_id, Meeting.attendee_report_at.is_(None)).where(
                            Meeting.complete_at.is_not(None),
                            _NO_OPEN_GAP,
                            Meeting.start_at >= window.start - margin,
                            Meeting.start_at < window.end + margin,
                        )
                    )
                )
        except (OperationalError, DBAPIError) as exc:
            raise _lost_database(exc) from None

    # -- listing ---------------------------------------------------------------------------

    def _listing_scopes(self) -> list[dict[str, str]]:
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
        return scopes

    async def _list_meetings(
        self, client: WebexClient, window: Window, on_chunk: _Chunk | None = None
    ) -> tuple[list[tuple[schemas.Meeting, dict[str, Any]]], list[_Gap], list[Window]]:
        """List ``window`` (every scope, day by day, split below the cap).

        ``on_chunk(new_meetings, gaps)`` is awaited as each chunk is listed, with the meetings not
        seen before, so fetching can start while the rest of the window is still being listed.
        Returns every meeting (sorted by start), every listing gap, and the days listed
        completely for every scope.
        """
        limiter = asyncio.Semaphore(self.settings.concurrency * REQUESTS_PER_MEETING)
        found: dict[str, tuple[schemas.Meeting, dict[str, Any]]] = {}
        gaps: list[_Gap] = []
        # Windows listed completely for every scope: they close listing gaps of earlier runs.
        complete_for: Counter[Window] = Counter()
        cap = self.settings.window_cap
        scopes = self._listing_scopes()
        days = list(window.chunks(LISTING_CHUNK))
        budgets = [
            PageBudget(listing_page_budget(cap, self.settings.page_size, len(days))) for _ in scopes
        ]

        async def gap_for(chunk: Window, gap: _Gap) -> bool:
            gaps.append(gap)
            if on_chunk is not None:
                await on_chunk([], [gap])
            return False

        async def list_chunk(
            chunk: Window, scope: dict[str, str], budget: PageBudget, *, first: bool = False
        ) -> bool:
            what = f"The meeting list of {_scope_words(scope)} for {_span(chunk)}"
            if budget.spent:
                return await gap_for(chunk, _Gap("meeting_list", _budget_spent(what, budget),
                                                 window=chunk))  # fmt: skip
            params = {
                "meetingType": "meeting",
                "state": "ended",
                "from": _iso(chunk.start),
                "to": _iso(chunk.end),
                "max": self.settings.page_size,
                **scope,
            }
            limit = ListingLimit(items=cap, cut=True, budget=budget, what="meetings")
            try:
                async with limiter:
                    listing = await client.get_listing("meetings", params, limit=limit)
                items = listing.items
            except WebexAuthError:
                raise
            except EndlessListing as exc:
                gap = _Gap.from_error("meeting_list", exc, window=chunk)
                gap.reason = _budget_spent(what, budget) if budget.spent else _runaway(what, exc)
                return await gap_for(chunk, gap)
            except WebexError as exc:
                fatal = self._unusable_api(exc, scope) if first else None
                if fatal is not None:
                    raise fatal from None
                return await gap_for(chunk, _Gap.from_error("meeting_list", exc, window=chunk))
            chunk_gaps: list[_Gap] = []
            if len(items) >= cap:
                if chunk.end - chunk.start > MIN_LISTING_CHUNK:
                    # Webex lists at most 10,000 instances per query: split until below the cap.
                    halves = await asyncio.gather(
                        *(list_chunk(h, scope, budget) for h in chunk.halves())
                    )
                    return all(halves)
                chunk_gaps.append(
                    _Gap("meeting_list", f"Webex listed {len(items)} meetings for "
                         f"{_iso(chunk.start)}–{_iso(chunk.end)}, its cap for one query; meetings "
                         "beyond the cap in this window may be missing", window=chunk,
                         tracking_id=listing.tracking_id(len(items) - 1))
                )  # fmt: skip
                complete = False
            else:
                complete = True
            new: list[tuple[schemas.Meeting, dict[str, Any]]] = []
            for index, raw in enumerate(items):
                try:
                    meeting = schemas.Meeting.model_validate(raw)
                except ValidationError as exc:
                    chunk_gaps.append(
                        _Gap("meeting_list", schemas.describe_validation_error("meeting", index, exc),
                             meeting_id=str(raw.get("id")) if raw.get("id") else None, window=chunk,
                             tracking_id=listing.tracking_id(index))
                    )  # fmt: skip
                    complete = False
                    continue
                if meeting.state not in (None, "ended"):
                    still_on = self._not_ended_item(meeting, chunk, listing.tracking_id(index))
                    if still_on is not None:
                        chunk_gaps.append(still_on)
                    continue
                refusal = plausibility.check_listed_meeting(meeting, window.start, window.end)
                if refusal is not None:
                    # Refused for this window: its gap carries the window, so the window's
                    # report shows it whatever the meeting's own (implausible) start.
                    chunk_gaps.append(_Gap("meeting_list", refusal.reason, meeting_id=meeting.id,
                                           window=chunk, tracking_id=listing.tracking_id(index),
                                           check=refusal.check))  # fmt: skip
                    self._plausibility.refused(refusal.check)
                    complete = False
                    continue
                if meeting.id in found:
                    continue
                found[meeting.id] = (meeting, raw)
                new.append((meeting, raw))
            gaps.extend(chunk_gaps)
            if on_chunk is not None:
                await on_chunk(new, chunk_gaps)
            self._emit(HarvestEvent("listing", f"listed {len(found)} meetings", done=len(found),
                                    data={"pages": client.stats.pages}))  # fmt: skip
            return complete

        async def list_day(
            chunk: Window, scope: dict[str, str], budget: PageBudget, *, first: bool = False
        ) -> None:
            if await list_chunk(chunk, scope, budget, first=first):
                complete_for[chunk] += 1

        todo = [
            (day, scope, budget)
            for scope, budget in zip(scopes, budgets, strict=True)
            for day in days
        ]
        # The first day alone: when Webex cannot be reached at all, one clear error, not a gap
        # for every day of the window.
        await list_day(*todo[0], first=True)
        await asyncio.gather(*(list_day(*one) for one in todo[1:]))
        listed_ok = [day for day in days if complete_for[day] == len(scopes)]
        meetings = sorted(
            found.values(), key=lambda pair: (pair[0].start or window.start, pair[0].id)
        )
        return meetings, gaps, listed_ok

    # -- fetching and storing --------------------------------------------------------------

    async def _fetch_meeting(
        self, client: WebexClient, meeting: schemas.Meeting, reports: _AttendeeReports
    ) -> MeetingRecord | _Gap:
        size = self.settings.page_size
        params: dict[str, Any] = {"meetingId": meeting.id, "max": size}
        if self.settings.webex_host_emails and meeting.host_email:
            # Listed through hostEmail: an admin reads the meeting on behalf of its host.
            params["hostEmail"] = meeting.host_email
        participants, invitees, report = await asyncio.gather(
            client.get_listing("meetingParticipants", params, limit=_PARTICIPANTS),
            client.get_listing("meetingInvitees", params, limit=_INVITEES),
            reports.for_meeting(meeting) if reports.enabled else _none(),
            return_exceptions=True,
        )
        for scope, outcome in (("participants", participants), ("invitees", invitees),
                               ("attendee_report", report)):  # fmt: skip
            if isinstance(outcome, WebexAuthError):
                raise outcome
            if isinstance(outcome, EndlessListing):
                gap = _Gap.from_error(scope, outcome, meeting_id=meeting.id)
                gap.reason = _runaway(f"The {scope.replace('_', ' ')} of this meeting", outcome)
                return gap
            if isinstance(outcome, WebexError):
                return _Gap.from_error(scope, outcome, meeting_id=meeting.id)
            if isinstance(outcome, BaseException):
                raise outcome
        assert isinstance(participants, Listing) and isinstance(invitees, Listing)
        assert not isinstance(report, BaseException)
        checked: list[list[Any]] = []
        for scope, kind, adapter, listing in (
            ("participants", "participant", schemas.PARTICIPANTS, participants),
            ("invitees", "invitee", schemas.INVITEES, invitees),
        ):
            try:
                checked.append(schemas.validate_listing(adapter, kind, listing.items))
            except schemas.InvalidItems as exc:
                return _Gap(scope, exc.reason, meeting_id=meeting.id,
                            tracking_id=listing.tracking_id(exc.index))  # fmt: skip
        refusal, flags = plausibility.check_content(meeting, checked[0], checked[1])
        if refusal is not None:
            self._plausibility.refused(refusal.check)
            scope = "invitees" if refusal.check == "invitee_of_other_meeting" else "participants"
            return _Gap(scope, refusal.reason, meeting_id=meeting.id, check=refusal.check)
        for flag in flags:
            self._plausibility.flagged(flag.check)
        return MeetingRecord(
            meeting.id,
            list(zip(checked[0], participants.items, strict=True)),
            list(zip(checked[1], invitees.items, strict=True)),
            report,
            flags,
        )

    async def _pipeline(
        self,
        client: WebexClient,
        summary: HarvestSummary,
        window: Window,
        stored: tuple[set[str], set[str]],
        reports: _AttendeeReports,
        now: dt.datetime,
    ) -> None:
        """List, fetch and store at once: each listed chunk's meetings go to ``concurrency``
        fetch workers while the rest is still being listed; one writer thread stores, in queue
        order, the listed meetings and then what the workers fetched.

        ``stored`` is the meetings already complete (skipped) and those of them never given
        their attendee report: when the report can be read, the workers fetch only that for them.

        A fatal network error (401 after refresh) stops the workers, lets the writer store what
        was already fetched, then is raised. A database failure stops everything at once. On
        cancellation (Ctrl-C) the batch being written is allowed to commit or roll back first.
        """
        run_id = summary.run_id
        complete, unreported = stored
        writes: asyncio.Queue[_Listed | MeetingRecord | _Gap | _AttendeeRows | None] = (
            asyncio.Queue(maxsize=max(2 * WRITE_BATCH_MEETINGS, 4 * self.settings.concurrency))
        )
        todo: asyncio.Queue[schemas.Meeting | _ReportOnly | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meetaudit-writer")
        writing: asyncio.Future[tuple[list[HarvestEvent], int]] | None = None
        started = time.monotonic()
        last_progress = 0.0
        fetched = 0
        finished = 0  # meetings stored or recorded as gaps
        workers_count = self.settings.concurrency

        def progress(force: bool = False) -> None:
            nonlocal last_progress
            moment = time.monotonic()
            if not force and moment - last_progress < PROGRESS_INTERVAL:
                return
            last_progress = moment
            elapsed = moment - started
            rate = fetched / elapsed if elapsed > 0 and fetched else 0.0
            total = summary.meetings_to_fetch
            eta = (total - fetched) / rate if rate > 0 else None
            self._emit(
                HarvestEvent(
                    "progress", "", total=total, done=finished,
                    data={"fetched": fetched, "stored": summary.meetings_complete,
                          "requests": client.stats.requests, "pages": client.stats.pages,
                          "retries": client.stats.retries, "rate_limited": client.stats.rate_limited,
                          "waited": round(client.governor.paused_seconds, 1), "gaps": summary.gaps,
                          "eta_seconds": round(eta, 1) if eta is not None else None},
                )
            )  # fmt: skip

        async def listed(
            meetings: list[tuple[schemas.Meeting, dict[str, Any]]], gaps: list[_Gap]
        ) -> None:
            # The listing goes to the writer before any of its meetings to a worker: the writer
            # stores it first, so a meeting's row exists before its participants.
            settled = [m for m, _ in meetings if self._settled(m, now)]
            unsettled = [self._unsettled_gap(m) for m, _ in meetings if not self._settled(m, now)]
            skipped = sum(1 for m in settled if m.id in complete)
            await writes.put(_Listed(meetings, [*gaps, *unsettled], skipped=skipped,
                                     unsettled=len(unsettled)))  # fmt: skip
            summary.meetings_listed += len(meetings)
            summary.meetings_unsettled += len(unsettled)
            for meeting in settled:
                if meeting.id in complete:
                    summary.meetings_skipped += 1
                    if meeting.id in unreported and reports.can_backfill(meeting):
                        # Stored before its attendee report could be read: fetch only the report.
                        summary.attendee_backfill_planned += 1
                        reports.expect(meeting)
                        todo.put_nowait(_ReportOnly(meeting))
                    continue
                summary.meetings_to_fetch += 1
                reports.expect(meeting)
                todo.put_nowait(meeting)

        async def lister() -> None:
            try:
                _, _, listed_ok = await self._list_meetings(client, window, listed)
                await writes.put(_Listed([], [], resolved=listed_ok))
                cutoff = now - dt.timedelta(minutes=self.settings.settle_minutes)
                if window.end > cutoff:
                    # Meetings of the rest of the window have not happened (or settled) yet: the
                    # window cannot be complete, and the next run's listing closes this gap.
                    await writes.put(_Listed([], [self._open_window_gap(window, cutoff)]))
                self._emit(HarvestEvent(
                    "listed", f"{summary.meetings_listed} ended meetings listed",
                    total=summary.meetings_listed,
                    data={"pages": client.stats.pages, "unsettled": summary.meetings_unsettled},
                ))  # fmt: skip
                self._emit(HarvestEvent(
                    "plan", f"{summary.meetings_to_fetch} meetings to fetch, "
                    f"{summary.meetings_skipped} already complete", total=summary.meetings_to_fetch,
                ))  # fmt: skip
            finally:
                for _ in range(workers_count):
                    todo.put_nowait(None)

        async def worker() -> None:
            nonlocal fetched
            while (meeting := await todo.get()) is not None:
                if isinstance(meeting, _ReportOnly):
                    # None: not read (403, failure, invalid); the next run tries again.
                    rows = await reports.for_meeting(meeting.meeting)
                    if rows is not None:
                        await writes.put(_AttendeeRows(meeting.meeting.id, rows))
                    continue
                result = await self._fetch_meeting(client, meeting, reports)
                fetched += 1
                await writes.put(result)
                progress()

        async def writer() -> None:
            nonlocal writing, finished
            done = False
            while not done:
                first = await writes.get()
                if first is None:
                    return
                batch = [first]
                rows = _row_estimate(first)
                while len(batch) < WRITE_BATCH_MEETINGS and rows < WRITE_BATCH_ROWS:
                    try:
                        item = writes.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    if item is None:
                        done = True
                        break
                    batch.append(item)
                    rows += _row_estimate(item)
                writing = loop.run_in_executor(executor, self._write_batch, run_id, batch, summary)
                events, count = await asyncio.shield(writing)
                writing = None
                finished += count
                for event in events:
                    self._emit(event)
                progress()

        writer_task = asyncio.create_task(writer())
        lister_task = asyncio.create_task(lister())
        workers = [asyncio.create_task(worker()) for _ in range(workers_count)]
        network = [lister_task, *workers]
        failure: BaseException | None = None
        try:
            pending: set[asyncio.Task[None]] = {*network, writer_task}
            while any(not t.done() for t in network):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if not task.cancelled() and (exc := task.exception()) is not None:
                        raise exc
            await writes.put(None)
            await writer_task
        except (WebexError, ConfigError) as exc:
            # The network side cannot go on (e.g. the token was refused): keep what was fetched.
            failure = exc
            for task in network:
                task.cancel()
            await asyncio.gather(*network, return_exceptions=True)
            if not writer_task.done():
                await writes.put(None)
                await asyncio.gather(writer_task, return_exceptions=True)
            raise
        finally:
            for task in [*network, writer_task]:
                task.cancel()
            await asyncio.gather(*network, writer_task, return_exceptions=True)
            if writing is not None and not writing.done():
                # A batch is being written in the writer thread: let its transaction end.
                await asyncio.wait([writing])
            executor.shutdown(wait=True)
            if failure is None:
                progress(force=True)

    def _write_batch(
        self,
        run_id: int,
        batch: list[_Listed | MeetingRecord | _Gap | _AttendeeRows],
        summary: HarvestSummary,
    ) -> tuple[list[HarvestEvent], int]:
        """Store one batch (in the writer thread); return its events and how many meetings it
        finished (stored, or recorded as gaps)."""
        listed = [item for item in batch if isinstance(item, _Listed)]
        records = [item for item in batch if isinstance(item, MeetingRecord)]
        gaps = [item for item in batch if isinstance(item, _Gap)]
        reports = [item for item in batch if isinstance(item, _AttendeeRows)]
        finished = len(records) + len(gaps)
        all_gaps = [gap for item in listed for gap in item.gaps] + gaps
        notes: list[HarvestEvent] = []
        try:
            self._store(run_id, listed, records, gaps, summary, reports)
        except (IntegrityError, DBAPIError) as exc:
            if _connection_lost(exc):
                raise _lost_database(exc) from None
            # One bad meeting must not sink the batch: the listing first, then one by one.
            try:
                self._store(run_id, listed, [], gaps, summary)
            except (IntegrityError, DBAPIError) as again:
                raise _lost_database(again) from None
            refused: list[_Gap] = []
            for record in records:
                try:
                    self._store(run_id, [], [record], [], summary)
                except (IntegrityError, DBAPIError) as one:
                    if _connection_lost(one):
                        raise _lost_database(one) from None
                    refused.append(_Gap("meeting", f"PostgreSQL refused the meeting's rows: {_first_line(one)}",
                                        meeting_id=record.meeting_id))  # fmt: skip
            if refused:
                try:
                    self._store(run_id, [], [], refused, summary)
                except (IntegrityError, DBAPIError) as exc2:
                    raise _lost_database(exc2) from None
            all_gaps += refused
            for report in reports:
                try:
                    self._store(run_id, [], [], [], summary, [report])
                except (IntegrityError, DBAPIError) as one:
                    if _connection_lost(one):
                        raise _lost_database(one) from None
                    # Enrichment, never a gap: the meeting stays without it; a later run retries.
                    notes.append(HarvestEvent("note", f"attendee report of {report.meeting_id} not "
                                              f"stored: PostgreSQL refused it: {_first_line(one)}",
                                              data={"meeting_id": report.meeting_id}))  # fmt: skip
        events = [HarvestEvent("gap", gap.reason, data=_gap_data(gap)) for gap in all_gaps]
        return events + notes, finished

    def _store(
        self,
        run_id: int,
        listed: list[_Listed],
        records: list[MeetingRecord],
        gaps: list[_Gap],
        summary: HarvestSummary,
        reports: Sequence[_AttendeeRows] = (),
    ) -> None:
        new_gaps = [gap for item in listed for gap in item.gaps] + gaps
        with self.db.session() as session:
            for item in listed:
                upsert_listed_meetings(session, run_id, item.meetings)
                resolve_listing_gaps(session, run_id, item.resolved)
            counts = store_meetings(session, run_id, records)
            store_attendee_reports(session, run_id, [(r.meeting_id, r.rows) for r in reports])
            for gap in new_gaps:
                self._write_gap(session, run_id, gap)
            # The run's record counts what is stored as it is stored, in the same transaction: a
            # run killed midway (kill -9, a power cut) still shows what it did.
            r = HarvestRun
            session.execute(
                update(r)
                .where(r.id == run_id)
                .values(
                    meetings_listed=r.meetings_listed + sum(len(i.meetings) for i in listed),
                    meetings_skipped=r.meetings_skipped + sum(i.skipped for i in listed),
                    meetings_unsettled=r.meetings_unsettled + sum(i.unsettled for i in listed),
                    meetings_complete=r.meetings_complete + counts.meetings,
                    participants=r.participants + counts.participants,
                    devices=r.devices + counts.devices,
                    invitees=r.invitees + counts.invitees,
                    gaps=r.gaps + len(new_gaps),
                )
            )
        summary.attendee_backfilled += len(reports)
        summary.meetings_complete += counts.meetings
        summary.participants += counts.participants
        summary.devices += counts.devices
        summary.invitees += counts.invitees
        summary.revisions += counts.revisions
        summary.gaps += len(new_gaps)

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
            plausibility_check=gap.check,
        )


def listing_page_budget(cap: int, page_size: int, days: int) -> int:
    """Pages one scope (site, host) may spend listing a window of ``days`` day chunks.

    One query lists at most ``cap`` meetings in ``ceil(cap / page_size)`` pages (plus
    :data:`PAGE_MARGIN`); the window may spend :data:`LISTING_QUERIES_PER_DAY` such queries a day
    (at least :data:`LISTING_MIN_QUERIES`), which leaves room for splitting busy days.
    """
    per_query = -(-cap // max(1, page_size)) + PAGE_MARGIN
    return per_query * max(LISTING_MIN_QUERIES, LISTING_QUERIES_PER_DAY * days)


_PARTICIPANTS = ListingLimit(items=MEETING_ITEMS_CAP, what="participants")
_INVITEES = ListingLimit(items=MEETING_ITEMS_CAP, what="invitees")
_REPORT = ListingLimit(items=REPORT_ROWS_CAP, what="attendee report rows")


def _scope_words(scope: dict[str, str]) -> str:
    """A listing scope as an officer reads it: the site and, when listed per host, the host."""
    site = f"site {scope['siteUrl']}" if "siteUrl" in scope else "the token's default site"
    return f"{site}, host {scope['hostEmail']}" if "hostEmail" in scope else site


def _span(window: Window) -> str:
    return f"{window.start:%Y-%m-%d %H:%M}–{window.end:%Y-%m-%d %H:%M} UTC"


def _runaway(what: str, exc: EndlessListing) -> str:
    return (
        f"{what} could not be read to the end. {str(exc).rstrip('.')}. Nothing it listed was "
        "kept as complete; run the harvest again later, and if this recurs give Webex support "
        "the trackingId"
    )


def _budget_spent(what: str, budget: PageBudget) -> str:
    return (
        f"{what} was not listed: Webex kept sending further pages, and the {budget.pages:,} pages "
        "allowed for listing this site (and host) in this harvest were used up, so listing it "
        "was stopped. Meetings of this window may be missing; run the harvest again later, and "
        "if this recurs report it to Webex support"
    )


def harvest_running(db: Database) -> bool:
    """Whether a harvest holds the harvest lock on ``db`` right now."""
    with db.engine.connect() as conn:
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": HARVEST_LOCK_KEY}
        ).scalar()
        if got:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": HARVEST_LOCK_KEY})
        conn.commit()
    return not got


def resolve_listing_gaps(session: Session, run_id: int, listed: Sequence[Window]) -> None:
    """Close listing gaps of earlier runs whose window has now been listed without error.

    Consecutive listed chunks are joined first, so a gap spanning several days closes once
    every one of those days has been listed.
    """
    for chunk in _merge(listed):
        session.execute(
            update(HarvestGap)
            .where(
                HarvestGap.scope == "meeting_list",
                HarvestGap.resolved_at.is_(None),
                HarvestGap.window_from >= chunk.start,
                HarvestGap.window_to <= chunk.end,
            )
            .values(resolved_at=dt.datetime.now(dt.UTC), resolved_by_run_id=run_id)
        )


def _merge(windows: Sequence[Window]) -> list[Window]:
    """Join overlapping or touching windows."""
    merged: list[Window] = []
    for w in sorted(windows, key=lambda w: w.start):
        if merged and w.start <= merged[-1].end:
            if w.end > merged[-1].end:
                merged[-1] = Window(merged[-1].start, w.end)
        else:
            merged.append(w)
    return merged


async def _none() -> None:
    return None


def _row_estimate(item: _Listed | MeetingRecord | _Gap | _AttendeeRows) -> int:
    if isinstance(item, MeetingRecord):
        return 1 + len(item.participants) * 2 + len(item.invitees)
    if isinstance(item, _Listed):
        return 1 + len(item.meetings) + len(item.gaps)
    if isinstance(item, _AttendeeRows):
        return 1 + len(item.rows)
    return 1


def _report_oldest(now: dt.datetime) -> dt.datetime:
    """The earliest meeting start the attendee report API still answers for (with a margin)."""
    return now - REPORT_MAX_AGE + dt.timedelta(minutes=5)


def _reportable(meeting: schemas.Meeting, oldest: dt.datetime) -> bool:
    """Whether the attendee report can be asked for ``meeting``: a site, a start, not too old."""
    return meeting.site_url is not None and meeting.start is not None and meeting.start >= oldest


def _run_stoppable(main: Awaitable[HarvestSummary]) -> HarvestSummary:
    """``asyncio.run(main)``, where SIGTERM stops the run as cleanly as Ctrl-C does.

    Both cancel the main task at its next await, so the batch being written commits or rolls
    back and the run is recorded as interrupted; both then end in KeyboardInterrupt. Asyncio
    does this for SIGINT only when SIGINT is not ignored — and a command started in the
    background by a script or cron inherits it ignored, where SIGTERM (`kill`, `systemctl stop`)
    is the way to stop it. A KeyboardInterrupt raised by a plain signal handler at an arbitrary
    point of the event loop would not be as clean.
    """
    stopped = False

    async def guarded() -> HarvestSummary:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop() -> None:
            nonlocal stopped
            stopped = True
            task.cancel()

        previous = signal.getsignal(signal.SIGTERM)
        try:
            loop.add_signal_handler(signal.SIGTERM, stop)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            return await main
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, previous)

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if stopped:
            raise KeyboardInterrupt from None
        raise


# A meeting stored complete that a later attempt could not fetch again (a --refresh refused
# with 403, a payload that no longer validates) has an open gap: it is fetched again like one
# never stored, so the next run that can fetch it closes the gap — skipped as complete, it would
# stay open for good while the harvest said COMPLETE. (An attendee-report gap is enrichment: the
# report-only backfill closes it.)
_NO_OPEN_GAP = ~(
    select(HarvestGap.id)
    .where(
        HarvestGap.meeting_id == Meeting.meeting_id,
        HarvestGap.resolved_at.is_(None),
        HarvestGap.superseded_at.is_(None),
        HarvestGap.scope != "attendee_report",
    )
    .exists()
)


def _complete_split(rows: Iterable[tuple[str, bool]]) -> tuple[set[str], set[str]]:
    """(meeting id, report never read) rows as the complete ids and those without report."""
    complete: set[str] = set()
    unreported: set[str] = set()
    for meeting_id, no_report in rows:
        complete.add(meeting_id)
        if no_report:
            unreported.add(meeting_id)
    return complete, unreported


def _connection_lost(exc: DBAPIError) -> bool:
    """Whether the failure is the database going away rather than a refused row."""
    return isinstance(exc, OperationalError) or bool(getattr(exc, "connection_invalidated", False))


def _lost_database(exc: BaseException) -> DatabaseError:
    return DatabaseError(
        f"lost the database while storing meetings ({_first_line(exc)}); every meeting stored so "
        "far is complete and the batch being written was rolled back — run the same command again "
        "to continue"
    )


def _gap_data(gap: _Gap) -> dict[str, Any]:
    return {"scope": gap.scope, "meeting_id": gap.meeting_id, "status": gap.http_status,
            "tracking_id": gap.tracking_id}  # fmt: skip


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text_ = str(orig).strip()
    return text_.splitlines()[0] if text_ else type(orig).__name__


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
