"""The Webex client on its own: paging safety, Retry-After, the shared governor, retries, OAuth."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import reporting.webex.client as client_module
from reporting.errors import (
    EndlessListing,
    UnsafeLinkError,
    WebexAuthError,
    WebexHTTPError,
    WebexPayloadError,
    WebexUnreachable,
)
from reporting.webex.auth import OAuthRefresher, StaticToken
from reporting.webex.client import (
    Listing,
    ListingLimit,
    PageBudget,
    RateGovernor,
    WebexClient,
    parse_body,
    parse_retry_after,
)

BASE = "https://webexapis.com/v1"
TOKEN = "client-test-token-4b1d"

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, **kw: Any) -> WebexClient:
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("retry_after_default", 0.01)
    return WebexClient(
        BASE, kw.pop("tokens", StaticToken(TOKEN)), transport=httpx.MockTransport(handler), **kw
    )


def _run(
    client: WebexClient, path: str = "meetingInvitees", params: dict[str, Any] | None = None
) -> Any:
    async def go() -> Any:
        async with client:
            return await client.get_all(path, params or {"meetingId": "m1", "max": 100})

    return asyncio.run(go())


def _page(
    items: list[dict[str, Any]], next_url: str | None = None, **headers: str
) -> httpx.Response:
    h = {"trackingid": "ROUTER_TEST", **headers}
    if next_url:
        h["Link"] = f'<{next_url}>; rel="next"'
    return httpx.Response(200, json={"items": items}, headers=h)


# -- Retry-After ----------------------------------------------------------------------------


def test_retry_after_in_every_form() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("rand(30),add(30)", default=30.0) == 30.0
    assert parse_retry_after(None, default=12.0) == 12.0
    assert parse_retry_after("", default=12.0) == 12.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("nan", default=9.0) == 9.0
    assert parse_retry_after("99999") == 600.0  # capped
    # An HTTP date is read against the server's own Date header: a skewed local clock is harmless.
    sent = email.utils.format_datetime(
        email.utils.parsedate_to_datetime("Sun, 01 Nov 2026 10:00:00 GMT")
    )
    assert parse_retry_after("Sun, 01 Nov 2026 10:00:20 GMT", date=sent) == 20.0
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after(future) <= 30
    assert parse_retry_after("Sun, 01 Nov 2026 10:00:00", default=4.0) == 4.0  # no zone: unusable


def test_a_429_pauses_every_request_not_only_the_one_that_was_hit() -> None:
    sent: list[tuple[str, float]] = []
    limited = False

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal limited
        sent.append((request.url.params["meetingId"], time.monotonic()))
        if request.url.params["meetingId"] == "a" and not limited:
            limited = True
            return httpx.Response(429, headers={"Retry-After": "0.3"})
        return _page([])

    client = _client(handler)

    async def go() -> None:
        async with client:
            first = asyncio.create_task(client.get_all("meetingInvitees", {"meetingId": "a"}))
            await asyncio.sleep(0.05)  # "a" has been rate limited by now
            started = time.monotonic()
            await client.get_all("meetingInvitees", {"meetingId": "b"})
            assert time.monotonic() - started >= 0.2  # "b" waited too, though never limited
            await first

    asyncio.run(go())
    assert [m for m, _ in sent] == ["a", "b", "a"] or [m for m, _ in sent] == ["a", "a", "b"]
    assert client.stats.rate_limited == 1 and 0.29 <= client.governor.paused_seconds <= 0.35


def test_after_a_pause_requests_leave_one_by_one() -> None:
    governor = RateGovernor(spacing=0.05)

    async def go() -> list[float]:
        governor.pause(0.2)  # then a cool-down as long again: one request per 50 ms
        start = time.monotonic()
        waits = await asyncio.gather(*(governor.wait() for _ in range(4)))
        assert time.monotonic() - start >= 0.2 + 3 * 0.05 - 0.01
        return sorted(waits)

    waits = asyncio.run(go())
    assert waits[-1] - waits[0] >= 0.14  # spread out, not released all at once
    assert governor.pauses == 1


def test_rate_limits_have_their_own_budget_and_end_with_the_tracking_id() -> None:
    client = _client(lambda r: httpx.Response(423, headers={"Retry-After": "0", "trackingid": "T-423"}),
                     rate_limit_retries=3)  # fmt: skip
    with pytest.raises(WebexHTTPError) as caught:
        _run(client)
    assert caught.value.status == 423 and caught.value.tracking_id == "T-423"
    assert client.stats.requests == 4


# -- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault", ["500", "502", "503", "reset", "timeout", "truncated", "not-json"]
)
def test_transient_faults_are_retried(fault: str) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            if fault == "reset":
                raise httpx.ReadError("connection reset by peer", request=request)
            if fault == "timeout":
                raise httpx.ReadTimeout("timed out", request=request)
            if fault == "truncated":
                return httpx.Response(
                    200, content=b'{"items": [{"id": "x"', headers={"trackingid": "T"}
                )
            if fault == "not-json":
                return httpx.Response(
                    200, content=b"<html>gateway</html>", headers={"trackingid": "T"}
                )
            return httpx.Response(int(fault), json={"message": "boom", "trackingId": "T"})
        return _page([{"id": "i1"}])

    client = _client(handler)
    assert _run(client) == [{"id": "i1"}]
    assert client.stats.retries == 1


@pytest.mark.parametrize(
    ("error", "raised", "words"),
    [
        (httpx.ConnectError, WebexUnreachable, "cannot connect to Webex at https://"),
        (httpx.ReadError, WebexHTTPError, "the connection to Webex at https://"),
        (httpx.ReadTimeout, WebexHTTPError, "did not answer in time"),
    ],
)
def test_retries_are_bounded_and_the_error_carries_a_tracking_id(
    error: type[httpx.TransportError], raised: type[Exception], words: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("refused", request=request)

    client = _client(handler, max_retries=2)
    with pytest.raises(raised) as caught:
        _run(client)
    assert type(caught.value) is raised
    assert words in str(caught.value) and "gave up after 2 retries" in str(caught.value)
    # No answer came back, so the trackingId is the one the client sent (Webex logs it too).
    assert caught.value.tracking_id and caught.value.tracking_id.startswith("meetaudit_")
    assert client.stats.requests == 3


def test_504_retries_with_a_smaller_page() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["max"])
        if int(request.url.params["max"]) > 30:
            return httpx.Response(504, json={"message": "reduce max"})
        return _page([{"id": "ok"}])

    assert _run(_client(handler)) == [{"id": "ok"}]
    assert asked == ["100", "50", "25"]


@pytest.mark.parametrize("status", [400, 403, 404, 409, 410])
def test_other_errors_are_not_retried_and_name_status_and_tracking_id(status: int) -> None:
    client = _client(lambda r: httpx.Response(status, json={"message": "No.", "errors": [{"description": "why"}]},
                                              headers={"trackingid": "ROUTER_X"}))  # fmt: skip
    with pytest.raises(WebexHTTPError) as caught:
        _run(client)
    assert (caught.value.status, caught.value.tracking_id) == (status, "ROUTER_X")
    assert "No. why" in str(caught.value) and client.stats.requests == 1


def test_a_200_without_items_is_a_payload_error() -> None:
    with pytest.raises(WebexPayloadError):
        _run(_client(lambda r: httpx.Response(200, json={"things": []})))


def test_an_object_is_read_with_the_same_retries_and_its_tracking_id() -> None:
    """``people/me`` and ``meetingPreferences/sites`` answer one object, not a page of items:
    read with the listings' retry policy, a 504 retried as it is (no ``max`` to halve)."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if len(asked) == 1:
            return httpx.Response(503, json={"message": "busy"})
        if len(asked) == 2:
            return httpx.Response(504, json={"message": "slow"})
        return httpx.Response(200, json={"id": "me", "emails": ["a@acme.example"]},
                              headers={"trackingid": "ROUTER_ME"})  # fmt: skip

    client = _client(handler)

    async def go() -> Any:
        async with client:
            return await client.get_object("people/me")

    assert asyncio.run(go()) == ({"id": "me", "emails": ["a@acme.example"]}, "ROUTER_ME")
    assert asked == [f"{BASE}/people/me"] * 3
    with pytest.raises(WebexPayloadError, match="without an object"):
        asyncio.run(_object(_client(lambda r: httpx.Response(200, json=[1, 2]))))
    with pytest.raises(WebexHTTPError) as caught:
        asyncio.run(_object(_client(lambda r: httpx.Response(403, json={"message": "No."}))))
    assert caught.value.status == 403


async def _object(client: WebexClient) -> Any:
    async with client:
        return await client.get_object("meetingPreferences/sites")


def test_nul_characters_are_replaced_before_parsing() -> None:
    assert parse_body(b'{"a": "x\\u0000y"}') == {"a": "x\ufffdy"}
    assert parse_body(b'{"a": "\\\\u0000"}') == {"a": "\\u0000"}  # an escaped backslash, kept


# -- paging -----------------------------------------------------------------------------------


def test_paging_follows_next_links_on_the_api_origin() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        if after is None:
            return _page([{"id": 1}], f"{BASE}/meetingInvitees?meetingId=m1&max=100&after=p2")
        return _page([{"id": 2}])

    client = _client(handler)
    assert _run(client) == [{"id": 1}, {"id": 2}]
    assert client.stats.pages == 2


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/v1/meetingInvitees?after=x",
        "http://webexapis.com/v1/meetingInvitees?after=x",  # a downgrade is another origin
        "https://webexapis.com:8443/v1/meetingInvitees?after=x",
        "https://webexapis.com.evil.example/v1/meetingInvitees?after=x",
    ],
)
def test_a_link_to_another_origin_is_refused_and_never_requested(link: str) -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(f"{request.url.scheme}://{request.url.host}:{request.url.port}")
        return _page([{"id": 1}], link)

    with pytest.raises(UnsafeLinkError) as caught:
        _run(_client(handler))
    assert hosts == ["https://webexapis.com:None"]
    assert "would send the access token there" in str(caught.value)
    assert caught.value.tracking_id == "ROUTER_TEST" and TOKEN not in str(caught.value)


def _endless(kind: str, per_page: int = 100) -> tuple[Handler, list[str]]:
    """A server whose paging never ends, in one of the ways seen from real and mock servers."""
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        n = len(urls)
        fresh = [{"id": f"p{n}-{k}"} for k in range(per_page)]
        after = f"{BASE}/meetingInvitees?meetingId=m1&max={per_page}&after=c{n}"
        if kind == "same-link":  # the next link is the page just read
            return _page(fresh, str(request.url))
        if kind == "cycle":  # A -> B -> A
            return _page(fresh, f"{BASE}/meetingInvitees?meetingId=m1&after={'AB'[n % 2]}")
        if kind == "new-link-same-items":  # the cursor is ignored: page one again, a new link
            return _page([{"id": f"p-{k}"} for k in range(per_page)], after)
        if kind == "empty-pages":
            return _page([], after)
        if kind == "other-listing":
            return _page(fresh, f"{BASE}/people?after=c{n}")
        return _page(fresh, after)  # "fresh-items": forever onward with new items

    return handler, urls


@pytest.mark.parametrize(
    ("kind", "why", "most_requests"),
    [
        ("same-link", "link is the page just read", 1),
        ("cycle", "paging link it had sent before", 3),
        ("new-link-same-items", "a page repeated 100 items already sent", 2),
        ("empty-pages", "more pages than a listing of at most 10,000 items needs", 102),
        ("fresh-items", "beyond 10,000 items", 100),
    ],
)
def test_a_listing_that_makes_no_progress_stops_at_once(
    kind: str, why: str, most_requests: int
) -> None:
    handler, urls = _endless(kind)
    started = time.monotonic()
    with pytest.raises(EndlessListing, match=why) as caught:
        _run(_client(handler))
    assert len(urls) <= most_requests and time.monotonic() - started < 10
    assert caught.value.tracking_id == "ROUTER_TEST" and caught.value.pages == len(urls)
    assert "paging was stopped" in str(caught.value)


def test_a_link_to_another_listing_is_refused() -> None:
    handler, urls = _endless("other-listing")
    with pytest.raises(UnsafeLinkError, match="another listing"):
        _run(_client(handler))
    assert len(urls) == 1


def test_a_listing_at_the_cap_is_cut_at_once_for_the_caller_to_split() -> None:
    handler, urls = _endless("fresh-items")

    async def go() -> Listing:
        async with _client(handler) as client:
            return await client.get_listing(
                "meetingInvitees", {"meetingId": "m1", "max": 100}, limit=ListingLimit(cut=True)
            )

    listing = asyncio.run(go())
    assert listing.cut and len(listing.items) == 10_000 and len(urls) == 100


def test_a_long_listing_near_the_cap_completes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("after", "0"))
        nxt = f"{BASE}/meetingInvitees?meetingId=m1&max=100&after={n + 1}" if n < 99 else None
        return _page([{"id": f"i{n}-{k}"} for k in range(100)], nxt)

    async def go() -> Listing:
        async with _client(handler) as client:
            return await client.get_listing(
                "meetingInvitees", {"meetingId": "m1", "max": 100}, limit=ListingLimit(cut=True)
            )

    listing = asyncio.run(go())
    assert not listing.cut and len(listing.items) == 10_000 and len(listing.pages) == 100
    # Short pages are allowed up to the listing's room plus a small margin.
    short = _client(lambda r: _page([{"id": r.url.params.get("after", "0")}], None))
    assert _run(short) == [{"id": "0"}]


def test_listings_sharing_a_page_budget_stop_when_it_is_spent() -> None:
    handler, urls = _endless("fresh-items")
    budget = PageBudget(pages=30)

    async def go() -> list[BaseException | Listing]:
        async with _client(handler) as client:
            return await asyncio.gather(
                *(client.get_listing("meetingInvitees", {"meetingId": f"m{k}", "max": 100},
                                     limit=ListingLimit(cut=True, budget=budget))
                  for k in range(3)),
                return_exceptions=True,
            )  # fmt: skip

    outcomes = asyncio.run(go())
    assert all(isinstance(o, EndlessListing) and "30 pages allowed" in str(o) for o in outcomes)
    assert len(urls) == 30 and budget.spent


def test_memory_does_not_grow_with_the_pages_a_server_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Streaming pages of an endless server with no practical item bound: the client keeps only
    # hashes of its latest links and items (windows made small here), so what it holds after
    # 900 pages is what it held after 300 — not what a server like the one that filled 288 MB
    # adds with every page.
    monkeypatch.setattr(client_module, "SEEN_LINKS", 50)
    monkeypatch.setattr(client_module, "SEEN_ITEMS", 100)
    handler, urls = _endless("fresh-items", per_page=5)
    client = _client(handler)
    held: dict[int, int] = {}
    mine = [tracemalloc.Filter(True, client_module.__file__)]

    async def go() -> None:
        async with client:
            pages = client.pages("meetingInvitees", {"meetingId": "m1", "max": 5},
                                 limit=ListingLimit(items=10**9))  # fmt: skip
            async for _ in pages:
                if len(urls) in (300, 900):
                    gc.collect()
                    snapshot = tracemalloc.take_snapshot().filter_traces(mine)
                    held[len(urls)] = sum(stat.size for stat in snapshot.statistics("filename"))
                if len(urls) == 900:
                    break
            await pages.aclose()

    tracemalloc.start(1)
    try:
        asyncio.run(go())
    finally:
        tracemalloc.stop()
    # 600 more pages of 5 items and a link each would add well over 100 kB if they were kept.
    assert held[900] - held[300] < 20_000, held


def test_a_runaway_listing_ends_within_bounded_memory() -> None:
    handler, urls = _endless("fresh-items")
    tracemalloc.start()
    try:
        with pytest.raises(EndlessListing):
            _run(_client(handler))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(urls) == 100 and peak < 60_000_000


def test_the_token_goes_in_the_header_and_only_there() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _page([])

    _run(_client(handler))
    (request,) = seen
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(request.url) and request.headers["TrackingID"].startswith("meetaudit_")


# -- authentication ---------------------------------------------------------------------------


def test_a_static_token_refused_is_an_auth_error_without_the_token() -> None:
    with pytest.raises(WebexAuthError) as caught:
        _run(_client(lambda r: httpx.Response(401, json={"message": "expired"})))
    assert caught.value.status == 401 and TOKEN not in str(caught.value)
    assert "MEETAUDIT_WEBEX_TOKEN" in str(caught.value)


class _TokenServer:
    """An OAuth token endpoint and an API that accepts only the newest access token."""

    def __init__(self, expires_in: float = 3600, fail: bool = False) -> None:
        self.expires_in = expires_in
        self.fail = fail
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.refuse_all = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/access_token"):
            form = dict(httpx.QueryParams(request.content.decode()))
            assert form["grant_type"] == "refresh_token" and form["client_secret"] == "s3cret"
            if self.fail:
                return httpx.Response(
                    400, json={"message": "invalid_grant"}, headers={"trackingid": "T-OAUTH"}
                )
            token = f"access-{len(self.issued) + 1}"
            self.issued.append(token)
            return httpx.Response(200, json={"access_token": token, "expires_in": self.expires_in,
                                             "refresh_token": "r2"})  # fmt: skip
        token = request.headers["Authorization"].removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked or self.refuse_all:
            return httpx.Response(401, json={"message": "expired"})
        return _page([{"id": token}])


def _oauth() -> OAuthRefresher:
    return OAuthRefresher(f"{BASE}/access_token", "client", "s3cret", "r1")


def test_oauth_refreshes_before_the_token_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    server = _TokenServer(expires_in=100)
    tokens = _oauth()
    clock = [1000.0]
    monkeypatch.setattr("reporting.webex.auth.time.monotonic", lambda: clock[0])
    client = _client(server, tokens=tokens)

    async def go() -> list[Any]:
        async with client:
            first = await client.get_all("meetingInvitees", {"meetingId": "m"})
            clock[0] += 70  # still valid: no refresh
            second = await client.get_all("meetingInvitees", {"meetingId": "m"})
            clock[0] += 15  # 85 s into a 100 s token: inside the margin, refreshed first
            third = await client.get_all("meetingInvitees", {"meetingId": "m"})
            return [first, second, third]

    assert asyncio.run(go()) == [[{"id": "access-1"}], [{"id": "access-1"}], [{"id": "access-2"}]]
    assert server.issued == ["access-1", "access-2"]


def test_oauth_refreshes_once_on_a_401_then_gives_up() -> None:
    server = _TokenServer()
    tokens = _oauth()
    client = _client(server, tokens=tokens)

    async def go() -> None:
        async with client:
            assert await client.get_all("meetingInvitees", {"meetingId": "m"}) == [
                {"id": "access-1"}
            ]
            server.revoked.add("access-1")
            assert await client.get_all("meetingInvitees", {"meetingId": "m"}) == [
                {"id": "access-2"}
            ]
            server.refuse_all = True  # the refreshed token is refused too: stop, do not loop
            with pytest.raises(WebexAuthError, match="HTTP 401"):
                await client.get_all("meetingInvitees", {"meetingId": "m"})

    asyncio.run(go())
    assert server.issued == ["access-1", "access-2", "access-3"]


def test_oauth_refresh_failure_is_a_clear_auth_error() -> None:
    client = _client(_TokenServer(fail=True), tokens=_oauth())
    with pytest.raises(WebexAuthError) as caught:
        _run(client)
    message = str(caught.value)
    assert "refreshing the Webex access token failed (HTTP 400)" in message
    assert caught.value.tracking_id == "T-OAUTH"
    assert "s3cret" not in message and "r1" not in message.split()
    assert "s3cret" not in repr(_oauth())


# -- the connection pools ---------------------------------------------------------------------


def test_requests_run_side_by_side_over_loopback_and_pools_balance() -> None:
    import datetime as dt

    from reporting.webex.client import _PooledTransport
    from reporting.webex.simulator import Simulator, generate_org, serve

    org = generate_org(start=dt.datetime(2026, 10, 1, tzinfo=dt.UTC), end=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                       meetings=8)  # fmt: skip
    with serve(Simulator(org, token=TOKEN, latency=0.2)) as base_url:
        client = WebexClient(base_url, StaticToken(TOKEN), concurrency=8)
        transport = client._http._transport
        assert isinstance(transport, _PooledTransport) and len(transport._pools) == 2

        async def go() -> float:
            async with client:
                started = time.monotonic()
                found = await asyncio.gather(*(client.get_all("meetingInvitees", {"meetingId": m["id"], "max": 100})
                                               for m in org.meetings))  # fmt: skip
                assert [len(f) for f in found] == [len(org.invitees[m["id"]]) for m in org.meetings]
                return time.monotonic() - started

        elapsed = asyncio.run(go())
    assert elapsed < 0.9  # one after the other would take 8 × 0.2 s
    assert transport._busy == [0, 0]


def test_webex_error_texts_read_as_sentences_without_repeats() -> None:
    from reporting.webex.client import _sentences

    assert _sentences(["Access denied.", "Access denied", "Meeting 'x' was refused (403)"]) == (
        "Access denied. Meeting 'x' was refused (403)"
    )
    assert _sentences(["Not found", "Try later"]) == "Not found. Try later"
    assert _sentences(["", "Only this."]) == "Only this."
