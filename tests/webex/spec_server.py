"""A Webex API nobody here wrote: random schema-valid answers generated from the official spec.

``SpecServer(seed, window)`` answers ``GET /meetings``, ``/meetingParticipants``,
``/meetingInvitees`` and ``/meetingReports/attendees`` with items drawn by hypothesis-jsonschema
from the vendored OpenAPI file's response schemas. Only what the schema leaves open is random:
every item fits its schema, nothing more is promised (times may be anywhere or not times at all,
an "email" may be any string, ``end`` may precede ``start``…), like a server written by someone
who read only the spec.

A few things are made plausible enough for a harvest to go somewhere: most meeting items are
``ended`` instances with unique ids, most participants name the meeting asked for, and most times
fall near the harvested window. Some pages carry a same-host ``next`` link (a bounded number);
some answers are one of the statuses the spec documents for the operation (``429``/``423`` with
a ``Retry-After``, sometimes malformed), with the documented error body and a ``trackingid``.

Everything is a pure function of the seed and the request: a pool of items is drawn once per
seed (Hypothesis with ``@seed``), and each answer is built from the pool by a ``random.Random``
seeded with (seed, URL, how many times that URL was asked), so concurrent requests in any order
get the same answers and a failing seed replays exactly.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.webex.openapi import component_schema, documented_statuses, response_content_type

JSON = dict[str, Any]

PATHS = {
    "/meetings": "MeetingObjectForListMeeting",
    "/meetingParticipants": "Participant",
    "/meetingInvitees": "GetInviteeObject",
    "/meetingReports/attendees": "MeetingAttendeeReportObject",
}
TIME_FIELDS = frozenset(
    {"start", "end", "joinedTime", "leftTime", "meetingStartTime", "scheduledStartTime"}
)
EMAIL_FIELDS = frozenset({"email", "hostEmail"})
PLACEHOLDER = "1970-01-01T00:00:00.000Z"
# Pages one listing may have here (paging limits are another test's business).
MAX_PAGES = 3
# Chance that an answer is one of the spec's error statuses instead of a page.
ERROR_RATE = 0.06
# Statuses a real server sends now and then, weighted like one would meet them.
_COMMON_ERRORS = (429, 429, 429, 423, 500, 502, 503, 504)


def _mark_formats(node: Any) -> Any:
    """Tag time and email string properties with custom formats the generator knows."""
    if isinstance(node, list):
        return [_mark_formats(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _mark_formats(v) for k, v in node.items()}
    props = out.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            if isinstance(sub, dict) and sub.get("type") == "string" and "enum" not in sub:
                if name in TIME_FIELDS:
                    props[name] = {**sub, "format": "webex-time"}
                elif name in EMAIL_FIELDS:
                    props[name] = {**sub, "format": "webex-email"}
        # Undeclared extra fields are schema-valid but only slow generation down.
        out.setdefault("additionalProperties", False)
    return out


def _iso(moment: dt.datetime, style: int) -> str:
    if style == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return moment.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()


def _times(window: tuple[dt.datetime, dt.datetime]) -> st.SearchStrategy[str]:
    """Mostly near the window, sometimes anywhere, the placeholder, or not a time at all."""
    start, end = window
    naive = (start.replace(tzinfo=None), end.replace(tzinfo=None))
    near = st.datetimes(naive[0] - dt.timedelta(hours=6), naive[1] + dt.timedelta(hours=6))
    anywhere = st.datetimes(dt.datetime(1890, 1, 1), dt.datetime(2100, 1, 1))
    styled = st.tuples(st.one_of(near, near, near, near, anywhere), st.integers(0, 2))
    return st.one_of(
        styled.map(lambda pair: _iso(pair[0].replace(tzinfo=dt.UTC), pair[1])),
        styled.map(lambda pair: _iso(pair[0].replace(tzinfo=dt.UTC), pair[1])),
        styled.map(lambda pair: _iso(pair[0].replace(tzinfo=dt.UTC), pair[1])),
        st.just(PLACEHOLDER),
        st.text(max_size=12),
    )


def _emails() -> st.SearchStrategy[str]:
    return st.one_of(st.emails(), st.emails(), st.emails(), st.text(max_size=20))


@dataclass(frozen=True)
class Pool:
    """Schema-valid items drawn for one seed, per endpoint path."""

    items: dict[str, list[JSON]]


@functools.cache
def _pool_strategy(window: tuple[dt.datetime, dt.datetime]) -> st.SearchStrategy[Any]:
    formats = {"webex-time": _times(window), "webex-email": _emails()}
    lists = [
        st.lists(
            from_schema(_mark_formats(component_schema(name)), custom_formats=formats),
            min_size=1,
            max_size=5,
        )
        for name in PATHS.values()
    ]
    return st.tuples(*lists)


def _no_surrogates(value: Any) -> Any:
    """Lone surrogates cannot be sent as UTF-8 by any server: replace them."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    return value


@functools.lru_cache(maxsize=64)
def draw_pool(seed_value: int, window: tuple[dt.datetime, dt.datetime]) -> Pool:
    """The items of ``seed_value``: one Hypothesis run, seeded, that keeps its last example
    (the first one Hypothesis tries is the simplest possible, the same for every seed)."""
    strategy = _pool_strategy(window)
    drawn: list[Any] = []

    @settings(
        max_examples=2,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_value)
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return Pool({path: _no_surrogates(items) for path, items in zip(PATHS, drawn[-1], strict=True)})


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _day_meeting(seed_value: int, day_from: str, n: int) -> str:
    """The ``n``-th id digest of meetings shared by a day's listing and its attendee report."""
    return _digest(seed_value, "day", day_from[:10], n)


class SpecServer:
    """The random server of one seed; ``handle`` is an async ``httpx.MockTransport`` handler."""

    def __init__(self, seed_value: int, window: tuple[dt.datetime, dt.datetime]) -> None:
        self.seed = seed_value
        self.window = window
        self.pool = draw_pool(seed_value, window)
        self.asked: Counter[str] = Counter()
        self.requests = 0
        self.statuses: Counter[int] = Counter()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (see the module docstring)."""
        self.requests += 1
        url = str(request.url)
        self.asked[url] += 1
        rng = random.Random(_digest(self.seed, url, self.asked[url]))
        path = request.url.path.removeprefix("/v1")
        tracking = f"ROUTER_{_digest(self.seed, url, self.asked[url])[:32].upper()}"
        if path not in PATHS:
            return self._error(404, f"No resource at {path}.", tracking)
        if rng.random() < ERROR_RATE:
            statuses = documented_statuses(path)
            status = rng.choice(_COMMON_ERRORS) if rng.random() < 0.8 else rng.choice(statuses)
            if status == 401 and rng.random() < 0.7:
                status = 503  # a revoked token ends the run: keep it rare
            headers = {}
            if status in (429, 423):
                headers["Retry-After"] = rng.choice(("0", "1", "rand(30),add(30)", "0"))
            return self._error(status, f"Random answer {status}.", tracking, headers)
        params = request.url.params
        page = int(params.get("after", "0") or 0)
        items = self._items(path, params, page, rng)
        headers = {"Content-Type": response_content_type(path), "trackingid": tracking}
        if page + 1 < MAX_PAGES and rng.random() < 0.3:
            kept = [(k, v) for k, v in params.multi_items() if k != "after"]
            query = urlencode([*kept, ("after", str(page + 1))])
            headers["Link"] = (
                f'<{request.url.scheme}://{request.url.netloc.decode()}{request.url.path}?{query}>; rel="next"'
            )
        self.statuses[200] += 1
        body = json.dumps({"items": items}, ensure_ascii=False).encode("utf-8")
        return httpx.Response(200, headers=headers, content=body)

    def _error(
        self, status: int, text: str, tracking: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        self.statuses[status] += 1
        body = {"message": text, "errors": [{"description": text}], "trackingId": tracking}
        return httpx.Response(
            status,
            headers={"Content-Type": "application/json", "trackingid": tracking, **(headers or {})},
            content=json.dumps(body).encode(),
        )

    def _items(
        self, path: str, params: httpx.QueryParams, page: int, rng: random.Random
    ) -> list[JSON]:
        pool = self.pool.items[path]
        count = rng.choice((0, 1, 2, 3, len(pool), len(pool) + 2))
        out = []
        for index in range(count):
            item = json.loads(json.dumps(rng.choice(pool)))
            ident = _digest(self.seed, path, sorted(params.multi_items()), page, index)
            if path == "/meetings":
                if rng.random() < 0.3:
                    # An id the attendee report of that day also names.
                    ident = _day_meeting(self.seed, params.get("from", ""), rng.randrange(3))
                self._plausible_meeting(item, ident, rng)
            elif path == "/meetingParticipants":
                meeting_id = params.get("meetingId", "")
                if rng.random() < 0.9:
                    item["id"] = f"{meeting_id}_{ident[:8]}-{ident[8:12]}-4{ident[13:16]}"
                if rng.random() < 0.85:
                    item["meetingId"] = meeting_id
            elif path == "/meetingInvitees":
                meeting_id = params.get("meetingId", "")
                if rng.random() < 0.9:
                    item["id"] = f"{meeting_id[:32]}_{int(ident[:8], 16)}"
                if rng.random() < 0.85:
                    item["meetingId"] = meeting_id
            elif path == "/meetingReports/attendees" and rng.random() < 0.7:
                # Rows of meetings this server lists for that day (first page).
                listed = _day_meeting(self.seed, params.get("from", ""), rng.randrange(3))
                item["meetingId"] = f"{listed[:32]}_I_{int(listed[32:48], 16)}"
            out.append(item)
        return out

    def _plausible_meeting(self, item: JSON, ident: str, rng: random.Random) -> None:
        if rng.random() < 0.9:
            series = ident[:32]
            item["meetingSeriesId"] = series
            item["id"] = f"{series}_I_{int(ident[32:48], 16)}"
        if rng.random() < 0.75:
            item["state"] = "ended"
        if rng.random() < 0.75:
            item["meetingType"] = "meeting"
