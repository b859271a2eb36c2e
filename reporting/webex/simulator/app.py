"""The simulated Webex API's HTTP behaviour, independent of any transport.

``Simulator.respond`` turns (method, URL, headers) into a ``SimResponse`` the way
``https://webexapis.com/v1`` answers the four list calls a harvest makes (``/meetings``,
``/meetingParticipants``, ``/meetingInvitees``, ``/meetingReports/attendees``), the two
single-item reads (``/meetings/{meetingId}``, ``/meetingParticipants/{participantId}``) and the
two questions a harvest asks about its token (``/people/me``, ``/meetingPreferences/sites``).
Every query parameter and header the official spec defines for them is honoured or refused
with a 400, never ignored: meeting series and scheduled occurrences (``meetingType``,
``meetingSeriesId``, series / occurrence ids as ``meetingId``) are derived from the instances
(``schedule``), and a ``timezone`` header renders times in its zone. Bearer auth,
parameter validation, RFC 5988 ``Link`` paging with opaque ``after`` cursors, the 10,000
instance cap, per-endpoint content types, the spec's error body and a ``trackingid`` header on
every answer, plus whatever the ``FaultPlan`` injects. It is synchronous, pure apart from its
counters, and thread-safe. ``handle`` / ``handle_sync`` adapt it to ``httpx.MockTransport``;
``server.serve`` puts it behind real loopback HTTP.

Any host is accepted; the path must start with ``/v1``. Next links use the scheme and host the
request came to, and keep every original query parameter. Every answer carries a ``Date`` header
from the simulator's clock.

Knobs for harvest tests: an ``OAuthIntegration`` makes ``POST /v1/access_token``
(``grant_type=refresh_token``) hand out short-lived access tokens the API then accepts;
``replace_items`` changes a meeting's participants or invitees between two harvests; a
``TokenOwner`` says whose token the API is answering. By default that is an administrator of the
organisation, whose token lists every meeting; a member's token (``TokenOwner.member``) lists, as
the spec says of a token without admin-level scopes, only the meetings its owner hosts or is
invited to — ``hostEmail`` is then not used, another meeting is not found, and the attendee
report is refused (403).
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
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

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
from reporting.webex.simulator.org import PLACEHOLDER_TIME, SimulatedOrg
from reporting.webex.simulator.schedule import (
    LIST_ONLY_FIELDS,
    Group,
    group_instances,
    meeting_renderer,
    occurrence_object,
    parse_zone,
    participant_renderer,
    report_renderer,
    scheduled_start,
    series_object,
)

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
    """What a list handler found: all matching items, the page size, the content type, and
    how to render each served item (times in a ``timezone`` header's zone) if at all."""

    items: list[JSON]
    page_size: int
    content_type: str
    render: Callable[[JSON], JSON] | None = None


#: A list endpoint's handler: query parameters and lower-cased headers to a listing.
_ListHandler = Callable[[httpx.QueryParams, Mapping[str, str]], _Listing]
#: A single-item endpoint's handler: (path id, query parameters, headers) to the item.
_ItemHandler = Callable[[str, httpx.QueryParams, Mapping[str, str]], JSON]
#: An object endpoint's handler (``/people/me``): query parameters to the object.
_ObjectHandler = Callable[[httpx.QueryParams], JSON]


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


@dataclass(frozen=True)
class TokenOwner:
    """The person whose access token the simulator accepts, as ``GET /people/me`` shows them.

    ``admin``: an administrator of the organisation with the admin-level scopes — the listing
    shows every meeting of the organisation, and ``/people/me`` carries ``roles`` (the spec:
    "the roles to which this admin user belongs"). Otherwise a member: ``roles`` is left out and
    the API answers as it does for a token without admin-level scopes (see the module
    docstring). ``sites``: the Webex sites the person is set up to use (``Get Site List``);
    empty means the organisation's one site.
    """

    email: str
    display_name: str
    admin: bool = True
    sites: tuple[str, ...] = ()

    @classmethod
    def member(cls, email: str, display_name: str = "") -> TokenOwner:
        """A member of the organisation who is no administrator."""
        return cls(email=email, display_name=display_name or email, admin=False)


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
        token_owner: TokenOwner | None = None,
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
        self.token_owner = token_owner or TokenOwner(
            email=f"compliance.admin@{org.domains[0]}", display_name="Compliance Admin"
        )
        # Access tokens handed out by the OAuth endpoint -> wall-clock expiry (time.monotonic()).
        self._issued: dict[str, float] = {}
        self._replaced: dict[tuple[str, str], list[JSON]] = {}
        # Meetings are sorted by start: a window query is two bisections, not a scan.
        self._starts = [datetime.fromisoformat(m["start"]).timestamp() for m in org.meetings]
        # Series and scheduled occurrences, derived from the instances that belong to them.
        self._groups = group_instances(org)
        self._occurrence_groups = sorted(
            (g for g in self._groups.values() if g.kind == "scheduledMeeting"),
            key=lambda g: (scheduled_start(g.id), g.id),
        )
        self._occurrences_by_series: dict[str, list[Group]] = {}
        for occurrence in self._occurrence_groups:
            series_id = occurrence.instances[0]["meetingSeriesId"]
            self._occurrences_by_series.setdefault(series_id, []).append(occurrence)
        self._routes: dict[str, _ListHandler] = {
            "/meetings": self._list_meetings,
            "/meetingParticipants": self._list_participants,
            "/meetingInvitees": self._list_invitees,
            "/meetingReports/attendees": self._list_attendee_reports,
        }
        # Objects that are neither a listing nor an item of one, by their exact path.
        self._object_routes: dict[str, tuple[_ObjectHandler, str]] = {
            "/people/me": (self._people_me, JSON_PLAIN),
            "/meetingPreferences/sites": (self._sites, JSON_UTF8),
        }
        self._item_routes: dict[str, tuple[_ItemHandler, str]] = {
            "/meetings/": (self._get_meeting, JSON_UTF8),
            "/meetingParticipants/": (self._get_participant, JSON_PLAIN),
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
        under_base = url.path.startswith(BASE_PATH + "/")
        handler = self._routes.get(endpoint) if under_base else None
        item = self._item_route(endpoint) if under_base and handler is None else None
        whole = self._object_routes.get(endpoint) if under_base else None
        if handler is None and item is None and whole is None:
            raise _ApiError(404, f"No resource at '{url.path}'.")
        if method != "GET":
            raise _ApiError(405, f"{method} is not supported here.", {"Allow": "GET"})
        if whole is not None:
            object_handler, content_type = whole
            return self._item(object_handler(url.params), content_type, tracking)
        if item is not None:
            item_handler, item_id, content_type = item
            return self._item(item_handler(item_id, url.params, headers), content_type, tracking)
        assert handler is not None
        listing = handler(url.params, headers)
        return self._page(listing, url, endpoint, n, tracking)

    def _item_route(self, endpoint: str) -> tuple[_ItemHandler, str, str] | None:
        """The single-item handler, decoded path id and content type of ``/meetings/{id}`` or
        ``/meetingParticipants/{id}``; ``None`` for any other path (deeper ones included)."""
        for prefix, (handler, content_type) in self._item_routes.items():
            rest = endpoint[len(prefix) :] if endpoint.startswith(prefix) else ""
            if rest and "/" not in rest:
                return handler, unquote(rest), content_type
        return None

    def _item(self, body: JSON, content_type: str, tracking: str) -> SimResponse:
        """A 200 answer carrying one object (not a page)."""
        headers = {"Content-Type": content_type, "trackingid": tracking, "Date": self._date()}
        with self._lock:
            self._stats.statuses[200] += 1
        return SimResponse(200, headers, json.dumps(body, ensure_ascii=False).encode())

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
        if listing.render is not None:
            page = [listing.render(item) for item in page]
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

    # -- shared parameter handling ---------------------------------------------------------

    def _zone(self, headers: Mapping[str, str]) -> ZoneInfo | None:
        """The zone of the ``timezone`` header (400 when unknown), ``None`` without it."""
        try:
            return parse_zone(headers.get("timezone"))
        except ValueError as exc:
            raise _ApiError(400, str(exc)) from None

    def _window(
        self, params: httpx.QueryParams, *, span: timedelta, forward: bool = False
    ) -> tuple[datetime, datetime]:
        """``from`` (inclusive) / ``to`` (exclusive), each defaulting from the other or ``now``.

        Without either, the window ends now (instances, reports) or, with ``forward``, starts
        now (series and scheduled meetings look ahead, as the spec says)."""
        raw_from, raw_to = params.get("from"), params.get("to")
        frm = _parse_time("from", raw_from) if raw_from is not None else None
        to = _parse_time("to", raw_to) if raw_to is not None else None
        if frm is None and to is None:
            frm, to = (self.now, self.now + span) if forward else (self.now - span, self.now)
        if frm is None:
            assert to is not None
            frm = to - span
        if to is None:
            to = frm + span
        if frm >= to:
            raise _ApiError(400, "'from' must be earlier than 'to'.")
        return frm, to

    @property
    def _sites_of_owner(self) -> tuple[str, ...]:
        return self.token_owner.sites or (self.org.site_url,)

    def _check_site(self, params: httpx.QueryParams) -> None:
        site = params.get("siteUrl")
        if site is not None and site.strip().lower() not in {
            s.lower() for s in self._sites_of_owner
        }:
            raise _ApiError(403, f"The token has no access to site '{site}'.")

    def _in_reach(self, meeting: JSON) -> bool:
        """Whether the token may see ``meeting``: any meeting for an administrator's token, else
        only those its owner hosts or is invited to (the spec's listing without admin scopes)."""
        return self.token_owner.admin or self._hosted_or_invited(
            meeting, self.token_owner.email.strip().lower()
        )

    def _refuse_injected(self, meeting_id: str) -> None:
        """Answer with the status a ``FaultPlan.status_for`` knob sets for this meeting."""
        status = self.faults.status_for.get(meeting_id)
        if status is not None:
            what = {404: "was not found", 410: "is no longer available"}.get(status, "was refused")
            raise _ApiError(status, f"Meeting '{meeting_id}' {what} ({status}).")

    def _check_host(self, params: httpx.QueryParams, meeting: JSON, meeting_id: str) -> None:
        """404 when the token may not see the meeting (a member's token: one its owner neither
        hosts nor is invited to), or when ``hostEmail`` names someone who does not host it (an
        admin acting as that user cannot see other users' meetings). The spec uses
        ``hostEmail`` only for a token with admin-level scopes: a member's is not used."""
        if not self._in_reach(meeting):
            raise _ApiError(404, f"Meeting '{meeting_id}' was not found.")
        host_email = params.get("hostEmail") if self.token_owner.admin else None
        if host_email is not None and host_email.strip().lower() != meeting["hostEmail"].lower():
            raise _ApiError(404, f"Meeting '{meeting_id}' was not found for that hostEmail.")

    def _resolve(self, params: httpx.QueryParams) -> tuple[str, Group | None, list[JSON]]:
        """``meetingId`` as (id, its series/occurrence group or ``None``, its instances).

        400 missing, the injected status, 404 unknown or not the ``hostEmail`` user's."""
        meeting_id = params.get("meetingId")
        if meeting_id is None or not meeting_id.strip():
            raise _ApiError(400, "'meetingId' is required.")
        self._refuse_injected(meeting_id)
        meeting = self.org.get_meeting(meeting_id)
        group = None
        if meeting is not None:
            instances = [meeting]
        else:
            group = self._groups.get(meeting_id)
            if group is None:
                raise _ApiError(404, f"Meeting '{meeting_id}' was not found.")
            instances = list(group.instances)
        self._check_host(params, instances[0], meeting_id)
        return meeting_id, group, instances

    def _meeting_for(self, params: httpx.QueryParams) -> JSON:
        """The ended or running instance named by ``meetingId``; 400 for a series or
        occurrence id where only instance ids are supported (attendee reports)."""
        meeting_id, group, instances = self._resolve(params)
        if group is not None:
            raise _ApiError(
                400,
                f"'{meeting_id}' is a {group.kind} id; only meeting instance ids are supported.",
            )
        return instances[0]

    def _participants_of(self, meeting: JSON) -> list[JSON]:
        """An instance's participants as served: replaced by a test, spoiled by a fault."""
        items = self._replaced.get(("participants", meeting["id"]))
        if items is None:
            items = self.org.participants[meeting["id"]]
        if self.faults.implausible and self.faults.implausible_target(meeting["id"]):
            items = spoil_participants(items, meeting, self.faults.implausible)
        return items

    def _invitees_of(self, meeting: JSON) -> list[JSON]:
        """An instance's invitees as served: replaced by a test, spoiled by a fault."""
        items = self._replaced.get(("invitees", meeting["id"]))
        if items is None:
            items = self.org.invitees[meeting["id"]]
        if self.faults.implausible and self.faults.implausible_target(meeting["id"]):
            items = spoil_invitees(items, self.faults.implausible)
        return items

    # -- /meetings ---------------------------------------------------------------------------

    def _list_meetings(self, params: httpx.QueryParams, headers: Mapping[str, str]) -> _Listing:
        """List instances, scheduled occurrences or series, by window or by a lookup key."""
        zone = self._zone(headers)
        found = self._looked_up(params)
        if found is not None:
            # The spec: max, from, to, meetingType and state are ignored for a lookup.
            self._check_site(params)
            found = self._filter_meetings(found, params)
            page_size = max(1, len(found))
        else:
            found, page_size = self._meetings_in_window(params)
        render = meeting_renderer(zone) if zone is not None else None
        return _Listing(found, page_size, JSON_UTF8, render)

    def _meetings_in_window(self, params: httpx.QueryParams) -> tuple[list[JSON], int]:
        meeting_type = _enum_param(params, "meetingType", _MEETING_TYPES)
        state = _enum_param(params, "state", _MEETING_STATES)
        # ``current`` picks a series' current occurrence in a meetingNumber / webLink lookup; a
        # window lists every occurrence anyway, but a malformed value is still refused.
        _bool_param(params, "current")
        requested_max = _parse_max(params, 10)
        instances_only = meeting_type == "meeting"
        frm, to = self._window(params, span=timedelta(days=7), forward=not instances_only)
        self._check_site(params)
        if self.faults.gateway_timeout(requested_max):
            raise _ApiError(504, "Listing timed out; reduce 'max'.")
        found = self._meetings_of_type(meeting_type, params.get("meetingSeriesId"), frm, to)
        if state is not None:
            found = [m for m in found if m["state"] == state]
        found = self._filter_meetings(found, params)
        # Like the real API: beyond the cap, meetings are simply not listed.
        found = found[: self.listing_cap]
        if self.faults.implausible & set(MEETING_FAULTS):
            found = [self._implausible_meeting(m) for m in found]
        return found, min(requested_max, 100)

    def _meetings_of_type(
        self, meeting_type: str | None, series_id: str | None, frm: datetime, to: datetime
    ) -> list[JSON]:
        """What a window lists: without ``meetingType`` series, or with ``meetingSeriesId``
        that series' occurrences and instances (the spec's defaults)."""
        if meeting_type == "meeting":
            return self._instances_between(frm, to, series_id)
        if meeting_type == "scheduledMeeting":
            return self._occurrences_between(frm, to, series_id)
        if meeting_type == "meetingSeries" or series_id is None:
            return self._series_between(frm, to, series_id)
        both = self._occurrences_between(frm, to, series_id)
        both += self._instances_between(frm, to, series_id)
        return sorted(both, key=lambda m: (datetime.fromisoformat(m["start"]), m["id"]))

    def _instances_between(self, frm: datetime, to: datetime, series_id: str | None) -> list[JSON]:
        """Instances whose actual start is in [frm, to): two bisections over sorted starts."""
        lo = bisect.bisect_left(self._starts, frm.timestamp())
        hi = bisect.bisect_left(self._starts, to.timestamp())
        found = self.org.meetings[lo:hi]
        if series_id is not None:
            found = [m for m in found if m["meetingSeriesId"] == series_id]
        return found

    def _occurrences_between(
        self, frm: datetime, to: datetime, series_id: str | None
    ) -> list[JSON]:
        """Scheduled occurrences whose scheduled start is in [frm, to)."""
        return [
            occurrence_object(self.org, g, self.now)
            for g in self._occurrence_groups
            if frm <= scheduled_start(g.id) < to
            and (series_id is None or g.instances[0]["meetingSeriesId"] == series_id)
        ]

    def _series_between(self, frm: datetime, to: datetime, series_id: str | None) -> list[JSON]:
        """Series with an occurrence scheduled in [frm, to), by their first occurrence."""
        found = [
            self._series_object(sid)
            for sid, occurrences in self._occurrences_by_series.items()
            if (series_id is None or sid == series_id)
            and any(frm <= scheduled_start(g.id) < to for g in occurrences)
        ]
        return sorted(found, key=lambda m: (datetime.fromisoformat(m["start"]), m["id"]))

    def _series_object(self, series_id: str) -> JSON:
        return series_object(
            self.org,
            self._groups[series_id],
            self._occurrences_by_series[series_id],
            self.now,
        )

    def _current_occurrence(self, series_id: str) -> JSON | None:
        """The series' occurrence that is running or still to come, if any (``current``)."""
        for group in self._occurrences_by_series[series_id]:
            occurrence = occurrence_object(self.org, group, self.now)
            if occurrence["state"] in ("inProgress", "ready"):
                return occurrence
        return None

    def _looked_up(self, params: httpx.QueryParams) -> list[JSON] | None:
        """Meetings found by ``meetingNumber``, ``webLink`` or ``roomId`` (mutually exclusive);
        ``None`` when the query names none. ``current`` (default true) asks for the series'
        running or upcoming occurrence instead of the series."""
        keys = [k for k in ("meetingNumber", "webLink", "roomId") if params.get(k) is not None]
        if not keys:
            return None
        if len(keys) > 1:
            raise _ApiError(400, "'meetingNumber', 'webLink' and 'roomId' are mutually exclusive.")
        current = _bool_param(params, "current", default=True)
        value = params[keys[0]].strip()
        if keys[0] == "meetingNumber":
            hits = [m for m in self.org.meetings if str(self.org.meeting_number(m["id"])) == value]
        elif keys[0] == "webLink":
            hits = [m for m in self.org.meetings if m["webLink"] == value]
        else:
            hits = []  # no simulated meeting is associated with a Webex space
        found = []
        for series_id in dict.fromkeys(m["meetingSeriesId"] for m in hits):
            item = (
                self._current_occurrence(series_id) if current else self._series_object(series_id)
            )
            if item is not None:
                found.append(item)
        return found

    def _filter_meetings(self, found: list[JSON], params: httpx.QueryParams) -> list[JSON]:
        """The filters every listing honours: scheduledType, instance and occurrence flags,
        integrationTag, hostEmail (an administrator's token only, as the spec says), siteUrl,
        and the reach of the token (a member's: the meetings its owner hosts or is invited to)."""
        scheduled_type = _enum_param(params, "scheduledType", _SCHEDULED_TYPES)
        if scheduled_type is not None:
            found = [m for m in found if m.get("scheduledType") == scheduled_type]
        for flag, applies_to in _MEETING_FLAGS.items():
            wanted = _bool_param(params, flag)
            if wanted is not None:
                found = [
                    m
                    for m in found
                    if m["meetingType"] != applies_to or bool(m.get(flag, False)) == wanted
                ]
        tag = params.get("integrationTag")
        if tag is not None:
            found = [m for m in found if tag in m.get("integrationTags", ())]
        host_email = params.get("hostEmail") if self.token_owner.admin else None
        if host_email is not None:
            wanted_email = host_email.strip().lower()
            found = [m for m in found if self._hosted_or_invited(m, wanted_email)]
        site = params.get("siteUrl")
        if site is not None:
            found = [m for m in found if m.get("siteUrl", "").lower() == site.strip().lower()]
        if not self.token_owner.admin:
            found = [m for m in found if self._in_reach(m)]
        return found

    def _hosted_or_invited(self, meeting: JSON, email: str) -> bool:
        """Whether ``email`` hosts the meeting or is invited to it (or, for a series or an
        occurrence, to one of its instances)."""
        if meeting["hostEmail"].lower() == email:
            return True
        group = self._groups.get(meeting["id"])
        instances = group.instances if group is not None else (meeting,)
        return any(email in self.org.invitee_emails(m["id"]) for m in instances)

    def _implausible_meeting(self, meeting: JSON) -> JSON:
        if not self.faults.implausible_target(meeting["id"]):
            return meeting
        self._count_fault("implausible_meeting")
        return spoil_meeting(meeting, self.faults.implausible)

    def _get_meeting(
        self, meeting_id: str, params: httpx.QueryParams, headers: Mapping[str, str]
    ) -> JSON:
        """``GET /meetings/{meetingId}``: an instance, occurrence or series as a
        ``MeetingSeriesObject``; ``current=true`` turns a series into its running or upcoming
        occurrence (404 when there is none)."""
        zone = self._zone(headers)
        current = _bool_param(params, "current", default=False)
        self._refuse_injected(meeting_id)
        found = self._meeting_object(meeting_id)
        if found is None:
            raise _ApiError(404, f"Meeting '{meeting_id}' was not found.")
        self._check_host(params, found, meeting_id)
        if current and found["meetingType"] == "meetingSeries":
            found = self._current_occurrence(meeting_id)
            if found is None:
                raise _ApiError(404, f"Meeting series '{meeting_id}' has no current meeting.")
        body = {k: v for k, v in found.items() if k not in LIST_ONLY_FIELDS}
        return meeting_renderer(zone)(body) if zone is not None else body

    def _meeting_object(self, meeting_id: str) -> JSON | None:
        meeting = self.org.get_meeting(meeting_id)
        if meeting is not None:
            return meeting
        group = self._groups.get(meeting_id)
        if group is None:
            return None
        if group.kind == "meetingSeries":
            return self._series_object(meeting_id)
        return occurrence_object(self.org, group, self.now)

    # -- /meetingParticipants ----------------------------------------------------------------

    def _list_participants(self, params: httpx.QueryParams, headers: Mapping[str, str]) -> _Listing:
        """Participants of an instance, or of a series' or occurrence's instances that started
        within ``meetingStartTimeFrom``/``To``; filtered by breakout session and join time."""
        zone = self._zone(headers)
        requested_max = _parse_max(params, 10)
        _, group, instances = self._resolve(params)
        instances = self._started_between(params, group, instances)
        joined = self._join_window(params)
        if self.faults.gateway_timeout(requested_max):
            raise _ApiError(504, "Listing timed out; reduce 'max'.")
        items = [p for m in instances for p in self._participants_of(m)]
        breakout = params.get("breakoutSessionId")
        if breakout is not None:
            items = [
                p
                for p in items
                if any(b.get("id") == breakout for b in p.get("breakoutSessionsAttended", []))
            ]
        if joined is not None:
            items = [p for p in items if _joined_within(p, *joined)]
        render = participant_renderer(zone) if zone is not None else None
        return _Listing(items, min(requested_max, 100), JSON_PLAIN, render)

    def _started_between(
        self, params: httpx.QueryParams, group: Group | None, instances: list[JSON]
    ) -> list[JSON]:
        """The instances of a series or occurrence that started strictly inside the
        ``meetingStartTimeFrom``/``To`` window (default: the month before now). The spec has the
        window only for series and occurrence ids: with an instance id it is refused."""
        raw_from, raw_to = params.get("meetingStartTimeFrom"), params.get("meetingStartTimeTo")
        if group is None:
            if raw_from is not None or raw_to is not None:
                raise _ApiError(
                    400,
                    "'meetingStartTimeFrom'/'meetingStartTimeTo' apply only to a meeting series "
                    "or scheduled meeting id.",
                )
            return instances
        month = timedelta(days=30)
        frm = _parse_time("meetingStartTimeFrom", raw_from) if raw_from is not None else None
        to = _parse_time("meetingStartTimeTo", raw_to) if raw_to is not None else None
        if frm is None:
            frm = (to if to is not None else self.now) - month
        if to is None:
            to = min(frm + month, self.now)
        if frm >= to:
            raise _ApiError(
                400, "'meetingStartTimeFrom' must be earlier than 'meetingStartTimeTo'."
            )
        return [m for m in instances if frm < datetime.fromisoformat(m["start"]) < to]

    def _join_window(self, params: httpx.QueryParams) -> tuple[datetime, datetime] | None:
        """``joinTimeFrom`` (inclusive) / ``joinTimeTo`` (exclusive), each defaulting to the
        other ± 7 days, at most 90 days apart; ``None`` when neither is given."""
        raw_from, raw_to = params.get("joinTimeFrom"), params.get("joinTimeTo")
        if raw_from is None and raw_to is None:
            return None
        week = timedelta(days=7)
        if raw_from is not None:
            frm = _parse_time("joinTimeFrom", raw_from)
            to = _parse_time("joinTimeTo", raw_to) if raw_to is not None else frm + week
        else:
            assert raw_to is not None
            to = _parse_time("joinTimeTo", raw_to)
            frm = to - week
        if frm >= to:
            raise _ApiError(400, "'joinTimeFrom' must be earlier than 'joinTimeTo'.")
        if to - frm > timedelta(days=90):
            raise _ApiError(
                400, "The interval between 'joinTimeFrom' and 'joinTimeTo' must be within 90 days."
            )
        return frm, to

    def _get_participant(
        self, participant_id: str, params: httpx.QueryParams, headers: Mapping[str, str]
    ) -> JSON:
        """``GET /meetingParticipants/{participantId}``: the id is ``<instance id>_<uuid>``;
        404 for an unknown id or a meeting the ``hostEmail`` user does not host."""
        meeting_id = participant_id.rpartition("_")[0]
        self._refuse_injected(meeting_id)
        meeting = self.org.get_meeting(meeting_id)
        if meeting is not None:
            self._check_host(params, meeting, meeting_id)
            for participant in self._participants_of(meeting):
                if participant.get("id") == participant_id:
                    return participant
        raise _ApiError(404, f"Participant '{participant_id}' was not found.")

    # -- /meetingInvitees --------------------------------------------------------------------

    def _list_invitees(self, params: httpx.QueryParams, headers: Mapping[str, str]) -> _Listing:
        """Invitees of an instance, or (one entry per email) of a series' or occurrence's
        instances, sorted by email; ``panelist`` filters."""
        requested_max = _parse_max(params, 10)
        meeting_id, group, instances = self._resolve(params)
        if self.faults.gateway_timeout(requested_max):
            raise _ApiError(504, "Listing timed out; reduce 'max'.")
        if group is None:
            items = self._invitees_of(instances[0])
        else:
            items = _merged_invitees(meeting_id, [self._invitees_of(m) for m in instances])
        panelist = params.get("panelist")
        if panelist is not None:
            if panelist not in ("true", "false"):
                raise _ApiError(400, f"Invalid 'panelist': '{panelist}'.")
            items = [i for i in items if i.get("panelist", False) == (panelist == "true")]
        return _Listing(items, min(requested_max, 100), JSON_UTF8)

    # -- /meetingReports/attendees -----------------------------------------------------------

    def _list_attendee_reports(
        self, params: httpx.QueryParams, headers: Mapping[str, str]
    ) -> _Listing:
        """Attendee rows of instances started in the window (≤ 30 days, from ≤ 90 days ago),
        optionally of one instance, meeting number or title; times in the ``timezone`` zone."""
        if self.faults.attendee_report_forbidden or not self.token_owner.admin:
            raise _ApiError(403, "The token lacks the meeting:admin_config_read scope.")
        if params.get("siteUrl") is None:
            raise _ApiError(400, "'siteUrl' is required.")
        self._check_site(params)
        zone = self._zone(headers)
        requested_max = _parse_max(params, 10)
        frm, to = self._window(params, span=timedelta(days=7))
        if to - frm > timedelta(days=30):
            raise _ApiError(400, "The interval between 'from' and 'to' cannot exceed 30 days.")
        if frm < self.now - timedelta(days=90):
            raise _ApiError(400, "'from' cannot be more than 90 days ago.")
        if self.faults.gateway_timeout(requested_max):
            raise _ApiError(504, "Listing timed out; reduce 'max'.")
        if params.get("meetingId") is not None:
            meetings = [self._meeting_for(params)]
            meetings = [m for m in meetings if frm <= datetime.fromisoformat(m["start"]) < to]
        else:
            meetings = self._instances_between(frm, to, None)
        items = [row for m in meetings for row in self.org.attendee_reports[m["id"]]]
        items = _filter_report_rows(items, params)
        render = report_renderer(zone) if zone is not None else None
        return _Listing(items, min(requested_max, 1000), JSON_UTF8, render)

    # -- the token's owner: /people/me, /meetingPreferences/sites ----------------------------

    def _people_me(self, params: httpx.QueryParams) -> JSON:
        """``GET /people/me`` (Get My Own Details): the token's owner as a ``Person``. An
        administrator's payload carries ``roles`` and ``licenses`` (the spec: admin users
        receive these administrative fields); a member's does not. ``callingData`` is checked
        and adds nothing (no simulated person has Webex Calling)."""
        _bool_param(params, "callingData")
        owner = self.token_owner
        first, _, last = owner.display_name.partition(" ")
        person: JSON = {
            "id": _ciscospark_id("PEOPLE", owner.email),
            "emails": [owner.email],
            "displayName": owner.display_name,
            "firstName": first,
            "lastName": last,
            "orgId": _ciscospark_id("ORGANIZATION", self.org.org_id, raw=True),
            "created": "2020-01-06T09:00:00.000Z",
            "type": "person",
        }
        if owner.admin:
            person["roles"] = [_ciscospark_id("ROLE", "full_admin")]
            person["licenses"] = [_ciscospark_id("LICENSE", f"{self.org.org_id}:meetings")]
        return person

    def _sites(self, params: httpx.QueryParams) -> JSON:
        """``GET /meetingPreferences/sites`` (Get Site List): the sites the token's owner is set
        up to use, the first one the default. ``userEmail`` is used for an administrator's
        token only (the spec): then the named person's sites, here the organisation's site for
        anyone on its email domains, else 404. ``siteUrl`` must be one of the owner's sites."""
        self._check_site(params)
        email = params.get("userEmail") if self.token_owner.admin else None
        sites = self._sites_of_owner
        if email is not None:
            domain = email.strip().lower().rpartition("@")[2]
            if domain not in self.org.domains:
                raise _ApiError(404, f"No user '{email}' on the site.")
            sites = (self.org.site_url,)
        return {"sites": [{"siteUrl": s, "default": n == 0} for n, s in enumerate(sites)]}


# -- module helpers ----------------------------------------------------------------------------


def _ciscospark_id(kind: str, key: str, *, raw: bool = False) -> str:
    """A Webex id as the People API gives it: base64 of ``ciscospark://us/<KIND>/<uuid>``; the
    uuid derived from ``key`` unless ``raw`` (``key`` is the uuid)."""
    uuid = key if raw else _uuid_of(f"{kind}:{key}")
    encoded = base64.b64encode(f"ciscospark://us/{kind}/{uuid}".encode()).decode()
    return encoded.rstrip("=")


def _uuid_of(text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


#: Boolean ``/meetings`` filters and the meeting type each applies to (the spec: the ``has*``
#: flags only to ended instances, ``isModified`` only to scheduled meetings); items of other
#: types are not filtered by them.
_MEETING_FLAGS: dict[str, str] = {
    "isModified": "scheduledMeeting",
    "hasChat": "meeting",
    "hasRecording": "meeting",
    "hasTranscription": "meeting",
    "hasSummary": "meeting",
    "hasClosedCaption": "meeting",
    "hasPolls": "meeting",
    "hasQA": "meeting",
    "hasSlido": "meeting",
}
_SCHEDULED_TYPES = frozenset({"meeting", "webinar", "personalRoomMeeting"})


def _enum_param(params: httpx.QueryParams, name: str, allowed: frozenset[str]) -> str | None:
    """A parameter limited to the spec's enum: 400 for any other value."""
    value: str | None = params.get(name)
    if value is not None and value not in allowed:
        raise _ApiError(400, f"Invalid '{name}': '{value}'.")
    return value


def _bool_param(params: httpx.QueryParams, name: str, default: bool | None = None) -> bool | None:
    """A boolean parameter (``true``/``false``); 400 for anything else."""
    value: str | None = params.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise _ApiError(400, f"Invalid '{name}': '{value}'. It must be true or false.")
    return value == "true"


def _joined_within(participant: JSON, frm: datetime, to: datetime) -> bool:
    """Whether the participant's ``joinedTime`` is in [frm, to); an unknown (missing or
    placeholder) join time is never inside a window."""
    joined = participant.get("joinedTime")
    if joined is None or joined == PLACEHOLDER_TIME:
        return False
    return frm <= datetime.fromisoformat(joined) < to


def _merged_invitees(meeting_id: str, per_instance: list[list[JSON]]) -> list[JSON]:
    """One invitee per email across a series' or occurrence's instances, naming the asked-for
    meeting, sorted by email like every invitee listing."""
    merged: dict[str, JSON] = {}
    for invitees in per_instance:
        for invitee in invitees:
            key = invitee["email"].strip().lower()
            merged.setdefault(key, {**invitee, "meetingId": meeting_id})
    return sorted(merged.values(), key=lambda i: (i["email"].strip().lower(), i["id"]))


def _filter_report_rows(rows: list[JSON], params: httpx.QueryParams) -> list[JSON]:
    """Attendee rows of one ``meetingNumber`` and / or ``meetingTitle`` (exact, any case)."""
    number = params.get("meetingNumber")
    if number is not None:
        rows = [r for r in rows if str(r.get("meetingNumber")) == number.strip()]
    title = params.get("meetingTitle")
    if title is not None:
        rows = [r for r in rows if str(r.get("meetingTitle", "")).lower() == title.strip().lower()]
    return rows
