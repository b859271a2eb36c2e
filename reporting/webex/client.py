"""The Webex REST client a harvest uses: paging, retries, rate limiting, authentication.

One :class:`WebexClient` per run, used as an async context manager around one
``httpx.AsyncClient`` with ``concurrency`` connections (held in a few small pools, see
:class:`_PooledTransport`).

What it does with each answer (the Webex contract, see ``webex-api-notes.md``):

* ``429`` / ``423``: wait ``Retry-After`` (seconds, an HTTP date — read against the answer's own
  ``Date`` header, so a skewed local clock does not matter — or something malformed such as
  ``rand(30),add(30)`` → :data:`DEFAULT_RETRY_AFTER`), and make *every* request of the run wait
  too, through one shared :class:`RateGovernor`, which then lets requests out again one by one
  for a while instead of all at once. Rate limits have their own, larger retry budget: they are
  the API asking to slow down, not a failure.
* ``500`` ``502`` ``503``, timeouts, resets, truncated or non-JSON bodies: retry with bounded
  exponential backoff and full jitter.
* Every error carries a trackingId: the one Webex answered with, else the ``TrackingID`` this
  client sent (Webex logs it too), so support can find the request either way.
* NUL characters (``\u0000``, which PostgreSQL refuses) are replaced by U+FFFD in the body
  before it is parsed: cheaper than walking every item, and visible in the stored raw item.
* ``504``: retry with half the page size (``max``), as Webex advises.
* ``401``: ask the token provider to refresh once; if it cannot, :class:`WebexAuthError`.
* anything else (``400`` ``403`` ``404`` ``410``…): :class:`WebexHTTPError` with the status and
  Webex's ``trackingid``, for the caller to record as a gap.
* Paging follows ``Link: <…>; rel="next"`` only, and only to the configured API origin and the
  listing's own path: a link to another host would hand the bearer token to a stranger
  (:class:`UnsafeLinkError`).
* Every listing is bounded (:class:`ListingLimit`): Webex lists at most 10,000 instances per query
  and at most ``max`` (≤ 100) per page, so a listing may hold ``items`` and take about
  ``ceil(items / max)`` pages plus :data:`PAGE_MARGIN`. A listing that makes no progress — a
  ``next`` link equal to the page just read or one sent before, a page whose items all came
  before, more pages than its bound needs, or the pages of a shared :class:`PageBudget` spent —
  ends with :class:`EndlessListing` at once. One that reaches ``items`` while Webex still offers
  more is cut there (``Listing.cut``), for the caller to split. What a listing remembers to see
  this is bounded too (the last :data:`SEEN_LINKS` links and :data:`SEEN_ITEMS` items, as 64-bit
  hashes), so memory does not grow with the pages a server sends.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import random
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from reporting import __version__
from reporting.errors import (
    EndlessListing,
    UnsafeLinkError,
    WebexAuthError,
    WebexError,
    WebexHTTPError,
    WebexNotJson,
    WebexPayloadError,
    WebexUnreachable,
)
from reporting.webex.auth import TokenProvider

DEFAULT_RETRY_AFTER = 30.0
MAX_RETRY_AFTER = 600.0
RETRYABLE_STATUSES = frozenset({500, 502, 503})
MIN_PAGE_SIZE = 10
# How many times one request may be rate limited (429/423) before the run gives up on it.
RATE_LIMIT_RETRIES = 50
# Connections per httpcore pool (see _PooledTransport).
CONNECTIONS_PER_POOL = 4
# After a rate-limit pause, requests leave the governor at most this often (seconds).
COOLDOWN_SPACING = 0.05
# Webex's documented most instances one listing query returns, even when paging.
WEBEX_LISTING_CAP = 10_000
# The page size Webex uses when a request (or a next link) names no ``max``.
WEBEX_DEFAULT_MAX = 10
# Pages a listing may take beyond ``ceil(items / max)``: a last empty page, and one to spare.
PAGE_MARGIN = 2
# How many of its latest links and items one listing remembers to recognise a repeat.
SEEN_LINKS = 2_048
SEEN_ITEMS = 20_000
# A JSON ``\u0000`` escape not itself escaped (an even number of backslashes before it).
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


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
    """One pause shared by every request of a run: a 429 slows all workers, not just one.

    After a pause of ``s`` seconds, a cool-down of another ``s`` seconds lets requests out one
    every ``spacing`` seconds, so the workers do not all hit the API again in the same instant.
    ``paused_seconds`` is the wall-clock time the run spent paused (not summed over workers).
    """

    def __init__(self, spacing: float = COOLDOWN_SPACING) -> None:
        self.spacing = spacing
        self.pauses = 0
        self.paused_seconds = 0.0
        self._resume_at = 0.0
        self._cooldown_until = 0.0
        self._next_slot = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every request until ``seconds`` from now (never shortening a longer pause)."""
        now = time.monotonic()
        until = now + max(0.0, seconds)
        self.pauses += 1
        if until > self._resume_at:
            self.paused_seconds += until - max(self._resume_at, now)
            self._resume_at = until
        self._cooldown_until = max(self._cooldown_until, until + max(0.0, seconds))

    async def wait(self) -> float:
        """Sleep until the pause (and this caller's cool-down slot) is over; return the wait."""
        waited = 0.0
        while True:
            now = time.monotonic()
            delay = self._resume_at - now
            if delay <= 0 and now < self._cooldown_until and self.spacing > 0:
                slot = max(now, self._next_slot)
                if slot >= self._cooldown_until:
                    return waited  # the cool-down is over by then: no reason to wait for it
                self._next_slot = slot + self.spacing
                delay = slot - now
                if delay <= 0:
                    return waited
                await asyncio.sleep(delay)
                waited += delay
                if self._resume_at <= time.monotonic():
                    return waited
                continue  # a new pause began while this caller waited for its slot
            if delay <= 0:
                return waited
            await asyncio.sleep(delay)
            waited += delay


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() if when.tzinfo is not None else None


def parse_retry_after(
    value: str | None, default: float = DEFAULT_RETRY_AFTER, *, date: str | None = None
) -> float:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds, HTTP-date, or ``default``.

    An HTTP-date is measured against ``date`` (the answer's ``Date`` header) when given, so the
    server's clock, not ours, decides how far away it is.
    """
    if value is None or not value.strip():
        return default
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return default  # e.g. "rand(30),add(30)", seen from real servers
        sent = _http_date(date)
        seconds = when - (sent if sent is not None else time.time())
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, inf
        return default
    if seconds < 0:  # in the past: go ahead
        return 0.0
    return min(seconds, MAX_RETRY_AFTER)


def parse_body(content: bytes) -> Any:
    """Parse a JSON body; NUL escapes, which PostgreSQL cannot store, become U+FFFD first."""
    if b"\\u0000" in content:
        content = _NUL_ESCAPE.sub(rb"\1\\ufffd", content)
    return orjson.loads(content)


class _PooledTransport(httpx.AsyncBaseTransport):
    """Several small connection pools behind one transport; each request goes to the least busy.

    httpcore scans every connection of a pool (some checks quadratically) each time a request
    starts or ends: with one pool of 16+ connections that bookkeeping costs more CPU than the
    request itself. Pools of :data:`CONNECTIONS_PER_POOL` keep it small; together they hold the
    same number of connections, and the client above stays one ``httpx.AsyncClient``.
    """

    def __init__(self, connections: int, *, keepalive_expiry: float = 5.0) -> None:
        count = max(1, -(-connections // CONNECTIONS_PER_POOL))
        per_pool = -(-connections // count)
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool,
                              keepalive_expiry=keepalive_expiry)  # fmt: skip
        tls = httpx.create_ssl_context()  # one context for all pools: loading CAs is slow
        self._pools = [httpx.AsyncHTTPTransport(verify=tls, limits=limits) for _ in range(count)]
        self._busy = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._busy[index] -= 1
            raise
        # The connection stays busy until the body is read and the response closed.
        response.stream = _Released(response.stream, self._busy, index)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _Released(httpx.AsyncByteStream):
    """A response stream that marks its pool less busy once closed."""

    def __init__(self, stream: Any, busy: list[int], index: int) -> None:
        self._stream = stream
        self._busy = busy
        self._index = index
        self._open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._busy[self._index] -= 1
        await self._stream.aclose()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


@dataclass(frozen=True)
class Page:
    """One page of a listing: its items, the next URL (if any), and Webex's trackingId."""

    items: list[dict[str, Any]]
    next_url: str | None
    tracking_id: str | None
    url: str


@dataclass
class PageBudget:
    """Pages that several listings together may still fetch (e.g. one site's listing of a
    window, split in ever smaller chunks). Shared by concurrent listings of one event loop."""

    pages: int
    used: int = 0

    @property
    def spent(self) -> bool:
        return self.used >= self.pages

    def take(self) -> bool:
        """Count one page; ``False`` (and nothing counted) when the budget is spent."""
        if self.spent:
            return False
        self.used += 1
        return True


@dataclass(frozen=True)
class ListingLimit:
    """How far one listing may go.

    ``items``: the most items it can hold (Webex's 10,000 per query for the meeting list; a
    stated bound elsewhere). Pages are counted by the room they offer: each page uses up its
    ``max`` (or the items it carried, if more), and the listing ends as :class:`EndlessListing`
    once that passes ``items`` plus :data:`PAGE_MARGIN` pages. ``cut``: on reaching ``items`` with
    more pages offered, stop and return the listing marked ``cut`` (the caller splits the query);
    otherwise that too is :class:`EndlessListing`. ``budget``: pages shared with other listings.
    """

    items: int = WEBEX_LISTING_CAP
    cut: bool = False
    budget: PageBudget | None = None
    what: str = "items"


DEFAULT_LIMIT = ListingLimit()


class _Bounded:
    """A set of 64-bit hashes that forgets its oldest entries beyond ``size``."""

    __slots__ = ("_order", "_set", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._set: set[int] = set()
        self._order: deque[int] = deque()

    def __contains__(self, key: int) -> bool:
        return key in self._set

    def __len__(self) -> int:
        return len(self._set)

    def add(self, key: int) -> None:
        if key in self._set:
            return
        self._set.add(key)
        self._order.append(key)
        if len(self._order) > self._size:
            self._set.discard(self._order.popleft())


def _item_key(item: dict[str, Any]) -> int:
    """A 64-bit hash naming an item: its ``id``, else its whole content."""
    ident = item.get("id")
    if isinstance(ident, str) and ident:
        return hash(("id", ident))
    return hash(orjson.dumps(item, option=orjson.OPT_SORT_KEYS))


def _page_room(url: str) -> int:
    """The items a page asked for with ``url`` may hold: its ``max``, else Webex's default."""
    raw = httpx.URL(url).params.get("max")
    try:
        return max(1, int(raw)) if raw is not None else WEBEX_DEFAULT_MAX
    except ValueError:
        return WEBEX_DEFAULT_MAX


class _PagingWatch:
    """What one listing has seen, to stop it when it makes no progress (bounded memory)."""

    def __init__(self, client: WebexClient, url: str, limit: ListingLimit) -> None:
        self.client = client
        self.limit = limit
        self.path = httpx.URL(url).path
        self.links = _Bounded(SEEN_LINKS)
        self.items = _Bounded(SEEN_ITEMS)
        self.pages = 0
        self.used = 0  # room of the pages fetched so far
        self.links.add(hash(url))

    def _stop(self, why: str, page: Page | None) -> EndlessListing:
        where = page.url if page is not None else None
        return EndlessListing(
            f"Webex kept paging this listing without end ({why}); paging was stopped after "
            f"{self.pages} pages",
            pages=self.pages, tracking_id=page.tracking_id if page else None,
            url=_safe(httpx.URL(where)) if where else None,
        )  # fmt: skip

    def before_request(self, url: str, last: Page | None) -> None:
        """Refuse to fetch ``url`` when the listing's bound or shared budget is spent."""
        room = _page_room(url)
        if self.used + room > self.limit.items + PAGE_MARGIN * room and self.pages > 0:
            raise self._stop(
                f"more pages than a listing of at most {self.limit.items:,} {self.limit.what} "
                "needs", last,
            )  # fmt: skip
        budget = self.limit.budget
        if budget is not None and not budget.take():
            raise self._stop(f"the {budget.pages:,} pages allowed for it are used up", last)
        self.used += room

    def after_page(self, page: Page) -> None:
        """Check a page just read: its items and its ``next`` link."""
        self.pages += 1
        self.used += max(0, len(page.items) - _page_room(page.url))
        if page.next_url is not None:
            self.client._check_link(page.next_url, self.path, page.tracking_id)
            if page.next_url == page.url:
                raise self._stop("the next page's link is the page just read", page)
            link = hash(page.next_url)
            if link in self.links:
                raise self._stop("a paging link it had sent before", page)
            self.links.add(link)
        keys = [_item_key(item) for item in page.items]
        if page.next_url is not None and keys and all(k in self.items for k in keys):
            raise self._stop(f"a page repeated {len(keys)} {self.limit.what} already sent", page)
        for key in keys:
            self.items.add(key)


@dataclass
class Listing:
    """All items of a listing; ``pages`` holds (index of the page's first item, trackingId).

    ``cut``: the listing reached its limit's ``items`` while Webex still offered more pages.
    """

    items: list[dict[str, Any]]
    pages: list[tuple[int, str | None]]
    cut: bool = False

    def tracking_id(self, index: int) -> str | None:
        """The trackingId of the page that carried item ``index``."""
        found = None
        for first, tracking in self.pages:
            if first > index:
                break
            found = tracking
        return found


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
        rate_limit_retries: int = RATE_LIMIT_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        governor: RateGovernor | None = None,
        run_id: str | None = None,
        on_retry: Callable[[str, int | None, float, str | None], None] | None = None,
    ) -> None:
        """``concurrency`` is the most requests in flight at once (the connection pool size).

        ``on_retry(what, status, delay, tracking_id)`` is told about every retry and rate limit.
        """
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self._base = str(self.base_url)
        self._tokens = tokens
        self._max_retries = max_retries
        self._rate_limit_retries = rate_limit_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._retry_after_default = retry_after_default
        self.governor = governor or RateGovernor()
        self._on_retry = on_retry
        self.stats = ClientStats()
        self._tracking_prefix = f"meetaudit_{run_id or uuid.uuid4().hex}"
        self._counter = itertools.count(1)
        self._random = random.Random()
        self._http = httpx.AsyncClient(
            transport=transport if transport is not None else _PooledTransport(concurrency),
            # No pool timeout: the harvest bounds its own concurrency, so waiting for a free
            # connection is queueing, not a fault.
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0), pool=None),
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
        # Built as text: httpx.URL joins and merges cost more CPU than the rest of a request.
        url = f"{self._base}{path.lstrip('/')}"
        if params:
            query = urlencode(
                [
                    (k, str(v).lower() if isinstance(v, bool) else v)
                    for k, v in params.items()
                    if v is not None
                ]
            )
            url = f"{url}?{query}"
        return url

    def _check_link(self, next_url: str, path: str, tracking: str | None) -> None:
        target = httpx.URL(next_url)
        if _origin(target) != _origin(self.base_url):
            raise UnsafeLinkError(
                f"Webex sent a paging link to another host ({target.host!r}); it was not followed, "
                "because following it would send the access token there",
                url=_safe(target), tracking_id=tracking,
            )  # fmt: skip
        if target.path != path:
            raise UnsafeLinkError(
                f"Webex sent a paging link to another listing ({target.path!r} instead of "
                f"{path!r}); it was not followed",
                url=_safe(target), tracking_id=tracking,
            )  # fmt: skip

    async def pages(
        self, path: str, params: Mapping[str, Any], *, limit: ListingLimit = DEFAULT_LIMIT
    ) -> AsyncGenerator[Page, None]:
        """Every page of a listing, following ``rel="next"`` links safely, within ``limit``
        (see the module docstring); remembers a bounded number of links and items only."""
        url: str | None = self.url_for(path, params)
        assert url is not None
        watch = _PagingWatch(self, url, limit)
        last: Page | None = None
        while url is not None:
            watch.before_request(url, last)
            page = await self.get_page(url)
            watch.after_page(page)
            yield page
            last = page
            url = page.next_url

    async def get_all(
        self, path: str, params: Mapping[str, Any], *, limit: ListingLimit = DEFAULT_LIMIT
    ) -> list[dict[str, Any]]:
        """Every item of a listing, all pages joined."""
        return (await self.get_listing(path, params, limit=limit)).items

    async def get_listing(
        self, path: str, params: Mapping[str, Any], *, limit: ListingLimit = DEFAULT_LIMIT
    ) -> Listing:
        """Every item of a listing, with the trackingId of the page each item came on.

        Reaching ``limit.items`` with more pages offered ends it at once: cut (``limit.cut``)
        or :class:`EndlessListing`.
        """
        listing = Listing([], [])
        pages = self.pages(path, params, limit=limit)
        try:
            async for page in pages:
                listing.pages.append((len(listing.items), page.tracking_id))
                listing.items.extend(page.items)
                if len(listing.items) >= limit.items and page.next_url is not None:
                    if limit.cut:
                        listing.cut = True
                        break
                    raise EndlessListing(
                        f"Webex kept paging this listing beyond {limit.items:,} {limit.what}, "
                        f"more than it can hold; paging was stopped after {len(listing.pages)} "
                        "pages",
                        pages=len(listing.pages), tracking_id=page.tracking_id,
                        url=_safe(httpx.URL(page.url)),
                    )  # fmt: skip
        finally:
            await pages.aclose()
        return listing

    async def get_page(self, url: str) -> Page:
        """GET one page of a listing with the retry policy of the module docstring."""
        body, response, tracking = await self._get_json(url)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise WebexPayloadError(
                "Webex answered 200 without a list of items", status=200,
                tracking_id=tracking, url=_safe(httpx.URL(url)),
            )  # fmt: skip
        self.stats.pages += 1
        next_link = response.links.get("next", {}).get("url")
        return Page(items=items, next_url=next_link, tracking_id=tracking, url=url)

    async def get_object(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], str | None]:
        """GET one object that is not a listing (``people/me``, ``meetingPreferences/sites``),
        with the same retry policy; returns it with its trackingId."""
        url = self.url_for(path, params)
        body, _, tracking = await self._get_json(url, paged=False)
        if not isinstance(body, dict):
            raise WebexPayloadError(
                "Webex answered 200 without an object", status=200,
                tracking_id=tracking, url=_safe(httpx.URL(url)),
            )  # fmt: skip
        return body, tracking

    async def _get_json(self, url: str, *, paged: bool = True) -> tuple[Any, httpx.Response, str]:
        """GET ``url`` until Webex answers 200 with JSON (the module docstring's retry policy);
        returns the parsed body, the response and its trackingId. ``paged``: a listing's page,
        whose ``max`` a 504 halves (an object has none to halve)."""
        attempt = 0
        limited = 0
        refreshed = False
        while True:
            await self.governor.wait()
            self.stats.rate_limit_wait_seconds = self.governor.paused_seconds
            token = await self._tokens.token(self._http)
            sent_tracking = f"{self._tracking_prefix}_{next(self._counter)}"
            headers = {"Authorization": f"Bearer {token}", "TrackingID": sent_tracking}
            self.stats.requests += 1
            try:
                response = await self._http.get(url, headers=headers)
                await response.aread()
            except (httpx.TransportError, httpx.DecodingError) as exc:
                attempt = await self._backoff(
                    attempt, url, _transport_problem(exc, url), None, sent_tracking,
                    gives_up_as=(
                        WebexUnreachable
                        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                        else WebexHTTPError
                    ),
                )  # fmt: skip
                continue
            status = response.status_code
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            tracking = response.headers.get("trackingid") or sent_tracking
            if status == 200:
                if not _may_be_json(response.content):
                    # Not a body cut short but a page of something else: a gateway's for a
                    # moment, or a proxy's or sign-in page for good — said so when retries end.
                    kind = response.headers.get("content-type", "").split(";")[0].strip()
                    attempt = await self._backoff(
                        attempt, url,
                        f"the Webex API address answered with {kind or 'a page'} instead of JSON "
                        "(a proxy's or a sign-in page?)",
                        status, tracking, gives_up_as=WebexNotJson,
                    )  # fmt: skip
                    continue
                try:
                    body = parse_body(response.content)
                except orjson.JSONDecodeError as exc:
                    attempt = await self._backoff(
                        attempt,
                        url,
                        f"Webex sent a truncated or unreadable JSON body ({_first_words(exc)})",
                        status,
                        tracking,
                    )
                    continue
                return body, response, tracking
            if status in (429, 423):
                self.stats.rate_limited += 1
                delay = parse_retry_after(
                    response.headers.get("Retry-After"), self._retry_after_default,
                    date=response.headers.get("Date"),
                )  # fmt: skip
                self.governor.pause(delay)
                self.stats.retries += 1
                limited += 1
                if self._on_retry is not None:
                    self._on_retry(f"rate limited (HTTP {status}); every request waits {delay:.1f}s",
                                   status, delay, tracking)  # fmt: skip
                if limited > self._rate_limit_retries:
                    raise WebexHTTPError(
                        f"rate limited (HTTP {status}) {limited} times in a row; gave up",
                        status=status, tracking_id=tracking, url=_safe(httpx.URL(url)),
                    )  # fmt: skip
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
                if paged:
                    url = _halve_max(url)
                attempt = await self._backoff(
                    attempt, url, "gateway timeout (HTTP 504)", status, tracking
                )
                continue
            if status in RETRYABLE_STATUSES:
                attempt = await self._backoff(
                    attempt, url, f"Webex server error (HTTP {status})", status, tracking
                )
                continue
            raise WebexHTTPError(
                f"Webex answered HTTP {status}: {_error_message(response)}",
                status=status, tracking_id=tracking, url=_safe(httpx.URL(url)),
            )  # fmt: skip

    async def _backoff(
        self,
        attempt: int,
        url: str,
        what: str,
        status: int | None = None,
        tracking: str | None = None,
        *,
        gives_up_as: type[WebexError] = WebexHTTPError,
    ) -> int:
        """Count one retry and wait for it (bounded exponential backoff with jitter); after the
        last retry, raise ``gives_up_as`` saying ``what`` went wrong."""
        attempt += 1
        self.stats.retries += 1
        if attempt > self._max_retries:
            raise gives_up_as(
                f"{what}; gave up after {self._max_retries} retries",
                status=status, tracking_id=tracking, url=_safe(httpx.URL(url)),
            )  # fmt: skip
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        delay = self._random.uniform(0, ceiling)
        if self._on_retry is not None:
            self._on_retry(
                f"{what}; retry {attempt} of {self._max_retries}", status, delay, tracking
            )
        await asyncio.sleep(delay)
        return attempt


def _may_be_json(content: bytes) -> bool:
    """False for a body that cannot be JSON cut short: one that starts like an HTML page."""
    start = content.lstrip()[:1]
    return start in (b"", b"{", b"[")


def _first_words(exc: Exception) -> str:
    """The parser's complaint, without the position details that only a programmer reads."""
    return str(exc).split(":", 1)[0].strip() or type(exc).__name__


def _transport_problem(exc: Exception, url: str) -> str:
    """What went wrong on the wire, in words, naming the Webex address (never the token)."""
    u = httpx.URL(url)
    where = f"{u.scheme}://{u.host}" + (f":{u.port}" if u.port else "")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return f"cannot connect to Webex at {where} ({detail})"
    if isinstance(exc, httpx.TimeoutException):
        return f"Webex at {where} did not answer in time"
    if isinstance(exc, httpx.DecodingError):
        return f"the answer from Webex at {where} could not be decoded ({detail})"
    return f"the connection to Webex at {where} broke off ({detail})"


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
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.reason_phrase or "no details"
    if isinstance(body, dict):
        details = [
            str(e.get("description")) for e in body.get("errors") or [] if isinstance(e, dict)
        ]
        message = str(body.get("message") or response.reason_phrase)
        return _sentences([message, *details])
    return response.reason_phrase or "no details"


def _sentences(parts: list[str]) -> str:
    """Webex's message and error descriptions as one text: each once, each a sentence."""
    seen: set[str] = set()
    out: list[str] = []
    for part in (p.strip() for p in parts):
        key = part.rstrip(".").casefold()
        if not key or key in seen:
            continue
        seen.add(key)
        out.append(part)
    return " ".join(p if p.endswith((".", "!", "?")) or n == len(out) - 1 else f"{p}."
                    for n, p in enumerate(out))  # fmt: skip


__all__ = [
    "ClientStats",
    "EndlessListing",
    "Listing",
    "ListingLimit",
    "Page",
    "PageBudget",
    "RateGovernor",
    "WebexClient",
    "WebexError",
    "parse_body",
    "parse_retry_after",
]
