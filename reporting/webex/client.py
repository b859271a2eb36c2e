"""The Webex REST client a harvest uses: paging, retries, rate limiting, authentication.

One :class:`WebexClient` per run, used as an async context manager around one
``httpx.AsyncClient`` whose connection pool is sized to the harvest's concurrency.

What it does with each answer (the Webex contract, see ``webex-api-notes.md``):

* ``429`` / ``423``: wait ``Retry-After`` (seconds, an HTTP date, or something malformed such as
  ``rand(30),add(30)`` → :data:`DEFAULT_RETRY_AFTER`), and make *every* request of the run wait
  too, through one shared :class:`RateGovernor`.
* ``500`` ``502`` ``503``, timeouts, resets, truncated or non-JSON bodies: retry with bounded
  exponential backoff and full jitter.
* ``504``: retry with half the page size (``max``), as Webex advises.
* ``401``: ask the token provider to refresh once; if it cannot, :class:`WebexAuthError`.
* anything else (``400`` ``403`` ``404`` ``410``…): :class:`WebexHTTPError` with the status and
  Webex's ``trackingid``, for the caller to record as a gap.
* Paging follows ``Link: <…>; rel="next"`` only, and only to the configured API origin: a link to
  another host would hand the bearer token to a stranger (:class:`UnsafeLinkError`), and so is a
  link already visited (a loop).
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from reporting import __version__
from reporting.errors import (
    UnsafeLinkError,
    WebexAuthError,
    WebexError,
    WebexHTTPError,
    WebexPayloadError,
)
from reporting.webex.auth import TokenProvider

DEFAULT_RETRY_AFTER = 30.0
MAX_RETRY_AFTER = 600.0
RETRYABLE_STATUSES = frozenset({500, 502, 503})
MIN_PAGE_SIZE = 10


@dataclass
class ClientStats:
    """Counters a run reports: requests, pages, retries and time spent waiting on rate limits."""

    requests: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_limit_wait_seconds: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)


class RateGovernor:
    """One pause shared by every request of a run: a 429 slows all workers, not just one."""

    def __init__(self) -> None:
        self._resume_at = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every request until ``seconds`` from now (never shortening a longer pause)."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    async def wait(self) -> float:
        """Sleep until the pause is over; return how long this caller waited."""
        waited = 0.0
        while (delay := self._resume_at - time.monotonic()) > 0:
            await asyncio.sleep(delay)
            waited += delay
        return waited


def parse_retry_after(value: str | None, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds, HTTP-date, or ``default``."""
    if value is None or not value.strip():
        return default
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return default  # e.g. "rand(30),add(30)", seen from real servers
        if when.tzinfo is None:
            return default
        seconds = when.timestamp() - time.time()
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0 if seconds == seconds else default
    return min(seconds, MAX_RETRY_AFTER)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


@dataclass(frozen=True)
class Page:
    """One page of a listing: its items, the next URL (if any), and Webex's trackingId."""

    items: list[dict[str, Any]]
    next_url: str | None
    tracking_id: str | None
    url: str


class WebexClient:
    """Async Webex client; see the module docstring for its behaviour on each answer."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        *,
        concurrency: int = 8,
        timeout: float = 30.0,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_default: float = DEFAULT_RETRY_AFTER,
        transport: httpx.AsyncBaseTransport | None = None,
        governor: RateGovernor | None = None,
        run_id: str | None = None,
    ) -> None:
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self._tokens = tokens
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._retry_after_default = retry_after_default
        self.governor = governor or RateGovernor()
        self.stats = ClientStats()
        self._tracking_prefix = f"meetaudit_{run_id or uuid.uuid4().hex}"
        self._counter = itertools.count(1)
        self._random = random.Random()  # noqa: S311 - jitter, not security
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"Accept": "application/json", "User-Agent": f"meetaudit/{__version__}"},
            follow_redirects=False,
        )

    async def __aenter__(self) -> WebexClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    def url_for(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """Absolute URL of an API path (``"meetings"``) with query parameters."""
        url = self.base_url.join(path.lstrip("/"))
        if params:
            url = url.copy_merge_params({k: v for k, v in params.items() if v is not None})
        return str(url)

    def _check_link(self, next_url: str, seen: set[str]) -> None:
        target = httpx.URL(next_url)
        if _origin(target) != _origin(self.base_url):
            raise UnsafeLinkError(
                f"Webex sent a paging link to another host ({target.host!r}); it was not followed, "
                "because following it would send the access token there",
                url=_safe(target),
            )
        if next_url in seen:
            raise UnsafeLinkError("Webex sent the same paging link twice; paging stopped", url=_safe(target))

    async def pages(self, path: str, params: Mapping[str, Any]) -> AsyncIterator[Page]:
        """Every page of a listing, following ``rel="next"`` links safely."""
        url: str | None = self.url_for(path, params)
        seen: set[str] = set()
        while url is not None:
            seen.add(url)
            page = await self.get_page(url)
            yield page
            if page.next_url is not None:
                self._check_link(page.next_url, seen)
            url = page.next_url

    async def get_all(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every item of a listing, all pages joined."""
        items: list[dict[str, Any]] = []
        async for page in self.pages(path, params):
            items.extend(page.items)
        return items

    async def get_page(self, url: str) -> Page:
        """GET one page with the retry policy of the module docstring."""
        attempt = 0
        refreshed = False
        while True:
            waited = await self.governor.wait()
            self.stats.rate_limit_wait_seconds += waited
            token = await self._tokens.token(self._http)
            headers = {
                "Authorization": f"Bearer {token}",
                "TrackingID": f"{self._tracking_prefix}_{next(self._counter)}",
            }
            self.stats.requests += 1
            try:
                response = await self._http.get(url, headers=headers)
                await response.aread()
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                attempt = await self._backoff(attempt, url, f"{type(exc).__name__} talking to Webex")
                continue
            status = response.status_code
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            tracking = response.headers.get("trackingid")
            if status == 200:
                try:
                    body = json.loads(response.content)
                except (ValueError, UnicodeDecodeError):
                    attempt = await self._backoff(
                        attempt, url, "Webex sent a truncated or non-JSON body", status, tracking
                    )
                    continue
                items = body.get("items") if isinstance(body, dict) else None
                if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                    raise WebexPayloadError(
                        "Webex answered 200 without a list of items", status=200,
                        tracking_id=tracking, url=_safe(httpx.URL(url)),
                    )  # fmt: skip
                self.stats.pages += 1
                next_link = response.links.get("next", {}).get("url")
                return Page(items=items, next_url=next_link, tracking_id=tracking, url=url)
            if status in (429, 423):
                self.stats.rate_limited += 1
                delay = parse_retry_after(response.headers.get("Retry-After"), self._retry_after_default)
                self.governor.pause(delay)
                attempt = self._count_retry(attempt, url, f"rate limited (HTTP {status})", status, tracking)
                continue
            if status == 401:
                if not refreshed and await self._tokens.refresh_after_401(self._http, token):
                    refreshed = True
                    continue
                raise WebexAuthError(
                    "Webex refused the access token (HTTP 401): it is missing, expired or revoked. "
                    "Set a valid MEETAUDIT_WEBEX_TOKEN (or the OAuth integration settings) and run "
                    "the same command again; meetings already stored are kept",
                    status=401, tracking_id=tracking, url=_safe(httpx.URL(url)),
                )  # fmt: skip
            if status == 504:
                smaller = _halve_max(url)
                if smaller != url:
                    url = smaller
                attempt = await self._backoff(attempt, url, "gateway timeout (HTTP 504)", status, tracking)
                continue
            if status in RETRYABLE_STATUSES:
                attempt = await self._backoff(attempt, url, f"Webex server error (HTTP {status})", status, tracking)
                continue
            raise WebexHTTPError(
                f"Webex answered HTTP {status}: {_error_message(response)}",
                status=status, tracking_id=tracking, url=_safe(httpx.URL(url)),
            )  # fmt: skip

    def _count_retry(
        self, attempt: int, url: str, what: str, status: int | None = None, tracking: str | None = None
    ) -> int:
        attempt += 1
        self.stats.retries += 1
        if attempt > self._max_retries:
            raise WebexHTTPError(
                f"{what}; gave up after {self._max_retries} retries",
                status=status, tracking_id=tracking, url=_safe(httpx.URL(url)),
            )  # fmt: skip
        return attempt

    async def _backoff(
        self, attempt: int, url: str, what: str, status: int | None = None, tracking: str | None = None
    ) -> int:
        attempt = self._count_retry(attempt, url, what, status, tracking)
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        await asyncio.sleep(self._random.uniform(0, ceiling))
        return attempt


def _halve_max(url: str) -> str:
    parsed = httpx.URL(url)
    try:
        current = int(parsed.params.get("max", "100"))
    except ValueError:
        current = 100
    smaller = max(MIN_PAGE_SIZE, current // 2)
    if smaller == current:
        return url
    return str(parsed.copy_set_param("max", str(smaller)))


def _safe(url: httpx.URL) -> str:
    """A URL fit for messages and the database: no credentials, no cursor noise."""
    return str(url.copy_with(username=None, password=None))


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no details"
    if isinstance(body, dict):
        details = [
            str(e.get("description")) for e in body.get("errors") or [] if isinstance(e, dict)
        ]
        message = str(body.get("message") or response.reason_phrase)
        return "; ".join([message, *details]) if details else message
    return response.reason_phrase or "no details"


__all__ = [
    "ClientStats",
    "Page",
    "RateGovernor",
    "WebexClient",
    "WebexError",
    "parse_retry_after",
]
