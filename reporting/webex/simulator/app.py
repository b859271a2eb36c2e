"""The simulated Webex API's HTTP behaviour, independent of any transport.

``Simulator.respond`` turns (method, URL, headers) into a ``SimResponse`` the way
``https://webexapis.com/v1`` answers the four calls a harvest makes (``/meetings``,
``/meetingParticipants``, ``/meetingInvitees``, ``/meetingReports/attendees``): bearer auth,
parameter validation, RFC 5988 ``Link`` paging with opaque ``after`` cursors, the 10,000
instance cap, per-endpoint content types, the spec's error body and a ``trackingid`` header on
every answer, plus whatever the ``FaultPlan`` injects. It is synchronous, pure apart from its
counters, and thread-safe. ``handle`` / ``handle_sync`` adapt it to ``httpx.MockTransport``;
``server.serve`` puts it behind real loopback HTTP.

Any host is accepted; the path must start with ``/v1``. Next links use the scheme and host the
request came to, and keep every original query parameter. Every answer carries a ``Date`` header
from the simulator's clock.

Two knobs exist for harvest tests: an ``OAuthIntegration`` makes ``POST /v1/access_token``
(``grant_type=refresh_token``) hand out short-lived access tokens the API then accepts, and
``replace_items`` changes a meeting's participants or invitees between two harvests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import hashlib
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx

from reporting.webex.simulator.faults import (
    ConnectionReset,
    ErrorFault,
    FaultPlan,
    corrupt_participants,
    error_body,
    tracking_id,
)
from reporting.webex.simulator.implausible import (
    MEETING_FAULTS,
    spoil_invitees,
    spoil_meeting,
    spoil_participants,
)
from reporting.webex.simulator.org import SimulatedOrg

JSON = dict[str, Any]

BASE_PATH = "/v1"
JSON_UTF8 = "application/json;charset=UTF-8"
JSON_PLAIN = "application/json"

_MEETING_TYPES = frozenset({"meetingSeries", "scheduledMeeting", "meeting"})
_MEETING_STATES = frozenset(
    {"active", "scheduled", "ready", "lobby", "inProgress", "ended", "missed", "expired"}
)
_DIGITS = re.compile(r"[0-9]+")


class _ApiError(Exception):
    """Raised inside a handler to answer with the spec's error body."""

    def __init__(self, status: int, description: str, headers: Mapping[str, str] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class SimResponse:
    """One simulated answer: status, headers (``trackingid`` always present), body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class SimStats:
    """Request counters; ``Simulator.stats`` returns a snapshot copy.

    Keys of ``requests``, ``pages`` and ``items`` are endpoint paths without ``/v1``
    (``"/meetings"``…); unknown paths are counted under their raw path.
    """

    total: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    pages: Counter[str] = field(default_factory=Counter)  # 200 list pages served
    items: Counter[str] = field(default_factory=Counter)  # items in those pages
    faults: Counter[str] = field(default_factory=Counter)  # injected faults by kind

    def copy(self) -> SimStats:
        """An independent copy."""
        return SimStats(
            self.total,
            Counter(self.requests),
            Counter(self.statuses),
            Counter(self.pages),
            Counter(self.items),
            Counter(self.faults),
        )


@dataclass(frozen=True, slots=True)
class _Listing:
    """What a list handler found: all matching items, the page size, the content type."""

    items: list[JSON]
    page_size: int
    content_type: str


def _parse_time(name: str, value: str) -> datetime:
    """An ISO 8601 query parameter as an aware datetime (naive means UTC)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _ApiError(400, f"Invalid '{name}': '{value}' is not an ISO 8601 date-time.") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _parse_max(params: httpx.QueryParams, default: int) -> int:
    """The requested ``max`` (before capping): a positive integer, else 400."""
    raw = params.get("max")
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or int(raw) < 1:
        raise _ApiError(400, f"Invalid 'max': '{raw}'. It must be a positive integer.")
    return int(raw)


def _fingerprint(params: httpx.QueryParams) -> str:
    """A short digest of the query minus ``after`` and ``max``: a cursor only works with its own
    query, but a client may lower ``max`` mid-walk (what a 504 asks for)."""
    pairs = sorted((k, v) for k, v in params.multi_items() if k not in ("after", "max"))
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:12]


def _encode_cursor(offset: int, params: httpx.QueryParams, nonce: int | None = None) -> str:
    data: dict[str, Any] = {"o": offset, "q": _fingerprint(params)}
    if nonce is not None:
        data["n"] = nonce  # a cursor that differs each time but points at the same offset
    raw = json.dumps(data, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, params: httpx.QueryParams) -> int:
    """The offset an ``after`` cursor points at; 400 when forged or moved to another query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        offset = data["o"]
        fingerprint = data["q"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _ApiError(400, "Invalid 'after' cursor.") from None
    if not isinstance(offset, int) or offset < 0 or fingerprint != _fingerprint(params):
        raise _ApiError(400, "The 'after' cursor does not belong to this query.")
    return offset


def _next_query(params: httpx.QueryParams, offset: int, nonce: int | None = None) -> str:
    """The original query, every parameter kept in order, with ``after`` pointing at ``offset``."""
    kept = [(k, v) for k, v in params.multi_items() if k != "after"]
    kept.append(("after", _encode_cursor(offset, params, nonce)))
    return urlencode(kept, quote_via=quote)


def _fresh_items(items: list[JSON], start: int, count: int) -> list[JSON]:
    """``count`` made-up items for positions ``start``… past the end of a listing of ``items``:
    copies of its own items (in turn) under new ids, so each page of an endless listing is new."""
    if not items or count <= 0:
        return []
    made = []
    for position in range(start, start + count):
        item = dict(items[position % len(items)])
        item["id"] = f"{item.get('id', 'item')}_endless{position}"
        made.append(item)
    return made


@dataclass
class OAuthIntegration:
    """A Webex integration the simulator's ``/v1/access_token`` endpoint knows.

    ``expires_in`` is the lifetime (seconds, on the wall clock) of each access token it hands
    out; ``refusing`` makes every refresh fail with 400 ``invalid_grant`` (a revoked grant);
    ``rotate`` hands out a new refresh token each time, which replaces the old one.
    """

    client_id: str
    client_secret: str
    refresh_token: str
    expires_in: float = 3600.0
    refusing: bool = False
    rotate: bool = False
    issued: int = 0


@dataclass(frozen=True, slots=True)
class _Target:
    """The parts of a request URL the simulator uses."""

    scheme: str
    netloc: str
    path: str
    params: httpx.QueryParams


class Simulator:
    """The simulated Webex REST API over a ``SimulatedOrg``.

    ``now`` fixes the clock (default windows, Retry-After dates, report limits); when ``None``
    the wall clock is read per request. ``listing_cap`` is the most instances one ``/meetings``
    query lists, 10,000 like the real API.
    """

    MAX_LISTED = 10_000

    def __init__(
        self,
        org: SimulatedOrg,
        *,
        token: str = "simulated-token",  # noqa: S107 - a well-known test token, not a secret
        faults: FaultPlan | None = None,
        latency: float = 0.0,
        now: datetime | None = None,
        listing_cap: int = MAX_LISTED,
        oauth: OAuthIntegration | None = None,
    ) -> None:
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.org = org
        self.token = token
        self.faults = faults if faults is not None else FaultPlan()
        self.latency = latency
        self.listing_cap = listing_cap
        self._now = now
        self._stats = SimStats()
        self._lock = threading.Lock()
        self.oauth = oauth
        # Access tokens handed out by the OAuth endpoint -> wall-clock expiry (time.monotonic()).
        self._issued: dict[str, float] = {}
        self._replaced: dict[tuple[str, str], list[JSON]] = {}
        # Meetings are sorted by start: a window query is two bisections, not a scan.
        self._starts = [datetime.fromisoformat(m["start"]).timestamp() for m in org.meetings]
        self._routes: dict[str, Callable[[httpx.QueryParams], _Listing]] = {
            "/meetings": self._list_meetings,
            "/meetingParticipants": self._list_participants,
            "/meetingInvitees": self._list_invitees,
            "/meetingReports/attendees": self._list_attendee_reports,
        }

    # -- public ---------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The simulator's current time."""
        return self._now if self._now is not None else datetime.now(UTC)

    @property
    def stats(self) -> SimStats:
        """A snapshot of the request counters."""
        with self._lock:
            return self._stats.copy()

    def replace_items(
        self,
        meeting_id: str,
        *,
        participants: list[JSON] | None = None,
        invitees: list[JSON] | None = None,
    ) -> None:
        """Serve these participants / invitees for ``meeting_id`` from now on (the meeting's
        data changed after a first harvest); ``None`` leaves that part as it is."""
        with self._lock:
            if participants is not None:
                self._replaced[("participants", meeting_id)] = list(participants)
            if invitees is not None:
                self._replaced[("invitees", meeting_id)] = list(invitees)

    def expire_access_tokens(self) -> None:
        """Make every access token the OAuth endpoint handed out invalid (the API answers 401)."""
        with self._lock:
            self._issued.clear()

    def reset_stats(self) -> None:
        """Zero the request counters (the fault plan's counter is not touched)."""
        with self._lock:
            self._stats = SimStats()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Async handler for ``httpx.MockTransport`` (sleeps ``latency`` first)."""
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return self._to_httpx(request)

    def handle_sync(self, request: httpx.Request) -> httpx.Response:
        """Sync handler for ``httpx.MockTransport`` (sleeps ``latency`` first)."""
        if self.latency > 0:
            time.sleep(self.latency)
        return self._to_httpx(request)

    def respond(
        self, method: str, url: httpx.URL | str, headers: Mapping[str, str], body: bytes = b""
    ) -> SimResponse:
        """Answer one request; raises ``ConnectionReset`` when the connection must drop."""
        # urllib, not httpx.URL: parsing dominates the cost of a request otherwise.
        parts = urlsplit(str(url))
        target = _Target(
            parts.scheme or "http",
            parts.netloc,
            parts.path or "/",
            httpx.QueryParams(tuple(parse_qsl(parts.query, keep_blank_values=True))),
        )
        lowered = {k.lower(): v for k, v in headers.items()}
        path = target.path
        endpoint = path[len(BASE_PATH) :] if path.startswith(BASE_PATH + "/") else path
        with self._lock:
            self._stats.total += 1
            serial = self._stats.total
            self._stats.requests[endpoint] += 1
        # Webex echoes a client's TrackingID; otherwise it makes one up.
        tracking = lowered.get("trackingid") or tracking_id(serial)
        try:
            if endpoint == "/access_token" and method.upper() == "POST":
                return self._access_token(body, tracking)
            return self._respond(method.upper(), target, endpoint, lowered, tracking)
        except ConnectionReset:
            self._count_fault("reset")
            raise
        except _ApiError as exc:
            return self._error(exc.status, exc.description, tracking, exc.headers)

    # -- request flow -----------------------------------------------------------------------

    def _respond(
        self, method: str, url: _Target, endpoint: str, headers: dict[str, str], tracking: str
    ) -> SimResponse:
        plan = self.faults
        if plan.revoked:
            raise _ApiError(401, "The access token has been revoked.")
        n = plan.tick(endpoint)
        fault = plan.replace_answer(n, self.now)  # may raise ConnectionReset
        if fault is not None:
            self._count_fault(f"status_{fault.status}")
            return self._fault(fault, tracking)
        self._authenticate(headers)
        handler = self._routes.get(endpoint) if url.path.startswith(BASE_PATH + "/") else None
        if handler is None:
            raise _ApiError(404, f"No resource at '{url.path}'.")
        if method != "GET":
            raise _ApiError(405, f"{method} is not supported here.", {"Allow": "GET"})
        listing = handler(url.params)
        return self._page(listing, url, endpoint, n, tracking)

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        auth = headers.get("authorization")
        if auth is None:
            raise _ApiError(401, "The Authorization header is missing.")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token == self.token:
            return
        with self._lock:
            expires = self._issued.get(token)
        if scheme.lower() != "bearer" or expires is None or time.monotonic() >= expires:
            raise _ApiError(401, "The access token is invalid or expired.")

    def _access_token(self, body: bytes, tracking: str) -> SimResponse:
        """``POST /v1/access_token``: refresh an OAuth integration's access token."""
        form = dict(parse_qsl(body.decode("utf-8", errors="replace")))
        app = self.oauth
        if app is None:
            raise _ApiError(404, "No OAuth integration is configured in this simulator.")
        if form.get("grant_type") != "refresh_token":
            raise _ApiError(400, "unsupported_grant_type")
        if form.get("client_id") != app.client_id or form.get("client_secret") != app.client_secret:
            raise _ApiError(401, "invalid_client")
        if app.refusing or form.get("refresh_token") != app.refresh_token:
            raise _ApiError(400, "invalid_grant: the refresh token is invalid or revoked.")
        access = f"sim-access-{secrets.token_hex(12)}"
        with self._lock:
            self._issued[access] = time.monotonic() + app.expires_in
            app.issued += 1
            if app.rotate:
                app.refresh_token = f"sim-refresh-{secrets.token_hex(12)}"
            self._stats.statuses[200] += 1
        answer = {
            "access_token": access,
            "expires_in": app.expires_in,
            "refresh_token": app.refresh_token,
            "refresh_token_expires_in": 7776000,
        }
        headers = {"Content-Type": JSON_UTF8, "trackingid": tracking, "Date": self._date()}
        return SimResponse(200, headers, json.dumps(answer).encode())

    def _date(self) -> str:
        return format_datetime(self.now.astimezone(UTC), usegmt=True)

    def _page(
        self, listing: _Listing, url: _Target, endpoint: str, n: int, tracking: str
    ) -> SimResponse:
        """One page of ``listing`` from the request's cursor, with the next link if any."""
        params = url.params
        cursor = params.get("after")
        offset = _decode_cursor(cursor, params) if cursor is not None else 0
        endless = self.faults.endless(endpoint, params.get("meetingId"))
        if endless == "new-link":
            offset = 0  # the cursor is ignored
        page = listing.items[offset : offset + listing.page_size]
        if endless == "fresh-items" and offset + listing.page_size > len(listing.items):
            page = page + _fresh_items(
                listing.items, offset + len(page), listing.page_size - len(page)
            )
        end = offset + len(page)
        if endpoint == "/meetingParticipants" and params.get("meetingId") in (
            self.faults.invalid_items_for
        ):
            page = corrupt_participants(page)
            self._count_fault("invalid_items")
        body = json.dumps({"items": page}, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": listing.content_type,
            "trackingid": tracking,
            "Date": self._date(),
        }
        next_url: str | None = None
        if end < len(listing.items):
            next_url = f"{url.scheme}://{url.netloc}{url.path}?{_next_query(params, end)}"
        if endless == "fresh-items":
            end = max(end, offset + listing.page_size)
            next_url = f"{url.scheme}://{url.netloc}{url.path}?{_next_query(params, end)}"
        elif endless == "same-link":
            query = urlencode(list(params.multi_items()), quote_via=quote)
            next_url = f"{url.scheme}://{url.netloc}{url.path}?{query}"
        elif endless == "new-link":
            nonce = self._count_fault("endless_paging")
            next_url = f"{url.scheme}://{url.netloc}{url.path}?{_next_query(params, 0, nonce)}"
        if endless is not None and endless != "new-link":
            self._count_fault("endless_paging")
        if self.faults.hostile_link(n):
            self._count_fault("hostile_link")
            next_url = f"https://evil.example{url.path}?{_next_query(params, end)}"
        if next_url is not None:
            headers["Link"] = f'<{next_url}>; rel="next"'
        if self.faults.truncates(n):
            self._count_fault("truncate")
            body = body[: len(body) // 2]
        with self._lock:
            self._stats.statuses[200] += 1
            self._stats.pages[endpoint] += 1
            self._stats.items[endpoint] += len(page)
        return SimResponse(200, headers, body)

    def _error(
        self, status: int, description: str, tracking: str, extra: Mapping[str, str] | None = None
    ) -> SimResponse:
        headers = {
            "Content-Type": JSON_PLAIN,
            "trackingid": tracking,
            "Date": self._date(),
            **(extra or {}),
        }
        with self._lock:
            self._stats.statuses[status] += 1
        return SimResponse(status, headers, error_body(status, description, tracking))

    def _fault(self, fault: ErrorFault, tracking: str) -> SimResponse:
        return self._error(fault.status, fault.description, tracking, fault.headers)

    def _count_fault(self, kind: str) -> int:
        with self._lock:
            self._stats.faults[kind] += 1
            return self._stats.faults[kind]

    def _to_httpx(self, request: httpx.Request) -> httpx.Response:
        try:
            answer = self.respond(request.method, request.url, request.headers, request.content)
        except ConnectionReset as reset:
            if reset.abortive:
                raise httpx.ReadError(
                    "[Errno 104] Connection reset by peer", request=request
                ) from None
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        return httpx.Response(
            answer.status, headers=answer.headers, content=answer.body, request=request
        )

    # -- endpoints --------------------------------------------------------------------------

    def _window(self, params: httpx.QueryParams, *, span: timedelta) -> tuple[datetime, datetime]:
        """``from`` (inclusive) / ``to`` (exclusive), each defaulting from the other or ``now``."""
        raw_from, raw_to = params.get("from"), params.get("to")
        frm = _parse_time("from", raw_from) if raw_from is not None else None
        to = _parse_time("to", raw_to) if raw_to is not None else None
        if frm is None and to is None:
            to = self.now
        if frm is None:
            assert to is not None
            frm = to - span
        if to is None:
            to = frm + span
        if frm >= to:
            raise _ApiError(400, "'from' must be earlier than 'to'.")
        return frm, to

    def _check_site(self, params: httpx.QueryParams) -> None:
        site = params.get("siteUrl")
        if site is not None and site.strip().lower() != self.org.site_url.lower():
            raise _ApiError(403, f"The token has no access to site '{site}'.")

    def _list_meetings(self, params: httpx.QueryParams) -> _Listing:
        meeting_type = params.get("meetingType")
        if meeting_type is None:
            raise _ApiError(
                400,
                "'meetingType' is required: the simulator lists meeting "
                "instances only (meetingType=meeting).",
            )
        if meeting_type not in _MEETING_TYPES:
            raise _ApiError(400, f"Invalid 'meetingType': '{meeting_type}'.")
        if meeting_type != "meeting":
            raise _ApiError(
                400, "The simulator lists meeting instances only (meetingType=meeting)."
            )
        state = params.get("state")
        if state is not None and state not in _MEETING_STATES:
            raise _ApiError(400, f"Invalid 'state': '{state}'.")
        requested_max = _parse_max(params, 10)
        frm, to = self._window(params, span=timedelta(days=7))
        self._check_site(params)
        if self.faults.gateway_timeout(requested_max):
            raise _ApiError(504, "Listing timed out; reduce 'max'.")
        lo = bisect.bisect_left(self._starts, frm.timestamp())
        hi = bisect.bisect_left(self._starts, to.timestamp())
        found = self.org.meetings[lo:hi]
        if state is not None:
            found = [m for m in found if m["state"] == state]
        host_email = params.get("hostEmail")
        if host_email is not None:
            wanted = host_email.strip().lower()
            found = [
                m
                for m in found
                if m["hostEmail"].lower() == wanted or wanted in self.org.invitee_emails(m["id"])
            ]
        # Like the real API: beyond the cap, instances are simply not listed.
        found = found[: self.listing_cap]
        if self.faults.implausible & set(MEETING_FAULTS):
            found = [self._implausible_meeting(m) for m in found]
        return _Listing(found, min(requested_max, 100), JSON_UTF8)

    def _implausible_meeting(self, meeting: JSON) -> JSON:
        if not self.faults.implausible_target(meeting["id"]):
            return meeting
        self._count_fault("implausible_meeting")
        return spoil_meeting(meeting, self.faults.implausible)

    def _meeting_for(self, params: httpx.QueryParams) -> JSON:
        """The meeting named by ``meetingId`` (400 missing, injected status, 404 unknown)."""
        meeting_id = params.get("meetingId")
        if meeting_id is None or not meeting_id.strip():
            raise _ApiError(400, "'meetingId' is required.")
        status = self.faults.status_for.get(meeting_id)
        if status is not None:
            what = {404: "was not found", 410: "is no longer available"}.get(status, "was refused")
            raise _ApiError(status, f"Meeting '{meeting_id}' {what} ({status}).")
        meeting = self.org.get_meeting(meeting_id)
        if meeting is None:
            raise _ApiError(404, f"Meeting '{meeting_id}' was not found.")
        host_email = params.get("hostEmail")
        if host_email is not None and host_email.strip().lower() != meeting["hostEmail"].lower():
            raise _ApiError(404, f"Meeting '{meeting_id}' was not found for that hostEmail.")
        return meeting

    def _list_participants(self, params: httpx.QueryParams) -> _Listing:
        requested_max = _parse_max(params, 10)
        meeting = self._meeting_for(params)
        if self.faults.gateway_timeout(requested_max):
            raise _ApiError(504, "Listing timed out; reduce 'max'.")
        items = self._replaced.get(("participants", meeting["id"]))
        if items is None:
            items = self.org.participants[meeting["id"]]
        if self.faults.implausible and self.faults.implausible_target(meeting["id"]):
            items = spoil_participants(items, meeting, self.faults.implausible)
        breakout = params.get("breakoutSessionId")
        if breakout is not None:
            items = [
                p
                for p in items
                if any(b.get("id") == breakout for b in p.get("breakoutSessionsAttended", []))
            ]
        return _Listing(items, min(requested_max, 100), JSON_PLAIN)

    def _list_invitees(self, params: httpx.QueryParams) -> _Listing:
        requested_max = _parse_max(params, 10)
        meeting = self._meeting_for(params)
        if self.faults.gateway_timeout(requested_max):
            raise _ApiError(504, "Listing timed out; reduce 'max'.")
        items = self._replaced.get(("invitees", meeting["id"]))
        if items is None:
            items = self.org.invitees[meeting["id"]]
        if self.faults.implausible and self.faults.implausible_target(meeting["id"]):
            items = spoil_invitees(items, self.faults.implausible)
        panelist = params.get("panelist")
        if panelist is not None:
            if panelist not in ("true", "false"):
                raise _ApiError(400, f"Invalid 'panelist': '{panelist}'.")
            items = [i for i in items if i.get("panelist", False) == (panelist == "true")]
        return _Listing(items, min(requested_max, 100), JSON_UTF8)

    def _list_attendee_reports(self, params: httpx.QueryParams) -> _Listing:
        if self.faults.attendee_report_forbidden:
            raise _ApiError(403, "The token lacks the meeting:admin_config_read scope.")
        if params.get("siteUrl") is None:
            raise _ApiError(400, "'siteUrl' is required.")
        self._check_site(params)
        requested_max = _parse_max(params, 10)
        frm, to = self._window(params, span=timedelta(days=7))
        if to - frm > timedelta(days=30):
            raise _ApiError(400, "The interval between 'from' and 'to' cannot exceed 30 days.")
        if frm < self.now - timedelta(days=90):
            raise _ApiError(400, "'from' cannot be more than 90 days ago.")
        if self.faults.gateway_timeout(requested_max):
            raise _ApiError(504, "Listing timed out; reduce 'max'.")
        meeting_id = params.get("meetingId")
        if meeting_id is not None:
            meeting = self._meeting_for(params)
            start = datetime.fromisoformat(meeting["start"])
            items = list(self.org.attendee_reports[meeting_id]) if frm <= start < to else []
        else:
            lo = bisect.bisect_left(self._starts, frm.timestamp())
            hi = bisect.bisect_left(self._starts, to.timestamp())
            items = []
            for meeting in self.org.meetings[lo:hi]:
                items.extend(self.org.attendee_reports[meeting["id"]])
        return _Listing(items, min(requested_max, 1000), JSON_UTF8)
