"""Injectable, deterministic faults for the Webex simulator, and the API's error answers.

A ``FaultPlan`` is consulted once per request. The "every Nth" knobs share ONE counter: the
number of requests so far that are in the plan's scope (``paths``; every endpoint when empty),
counted globally across endpoints and threads, under a lock. Request number ``n`` (1-based)
gets a knob's fault when ``n % every == 0``. When several knobs hit the same request, the first
of this order wins: reset, 429, 423, 5xx (those replace the answer outright), then truncate
and hostile link (which spoil a successful list page). A client that retries therefore always
makes progress unless a knob is 1, which faults every request on purpose. Counted faults are
decided before authentication and routing, like a gateway in front of the API; ``revoked``
comes first of all (every call 401, nothing counted). One plan carries one counter: give each
``Simulator`` its own plan.

Meeting-specific knobs (``status_for``, ``invalid_items_for``, ``implausible``), ``revoked``,
``gateway_timeout_above_max``, ``attendee_report_forbidden`` and ``endless_paging`` do not use
the counter.

``HAND_FAULTS`` names the faults ``meetaudit simulator serve --fault NAME`` can switch on.

Every error answer has the spec's body ``{"message", "errors": [{"description"}],
"trackingId"}``; the app adds the ``trackingid`` header.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Literal

RetryAfterForm = Literal["seconds", "http-date", "malformed", "absent", "cycle"]
# How a listing's paging never ends (see ``FaultPlan.endless_paging``).
EndlessForm = Literal["new-link", "same-link", "fresh-items"]

# The Retry-After a real server once sent: never assume an integer.
MALFORMED_RETRY_AFTER = "rand(30),add(30)"

_REASONS: Mapping[int, str] = {
    400: "The request was invalid or cannot be otherwise served.",
    401: "The request requires a valid access token set in the Authorization request header.",
    403: "The request is understood, but it has been refused or access is not allowed.",
    404: "The requested resource could not be found.",
    405: "The request was made to a resource using an HTTP request method that is not supported.",
    410: "The requested resource is no longer available.",
    423: "The requested resource is temporarily unavailable.",
    429: "Too many requests have been sent in a given amount of time.",
    500: "Something went wrong on the server.",
    502: "The server received an invalid response from an upstream server.",
    503: "Server is overloaded with requests. Try again later.",
    504: "An upstream server failed to respond on time. If your query uses max parameter, "
    "please try to reduce it.",
}


class ConnectionReset(Exception):
    """Raised by ``Simulator.respond`` when the connection must drop without an answer.

    ``abortive`` tells the transport how: True means a TCP reset (``httpx.ReadError``),
    False a plain close before any byte of the answer (``httpx.RemoteProtocolError``).
    """

    def __init__(self, abortive: bool) -> None:
        super().__init__("simulated connection reset" if abortive else "simulated disconnect")
        self.abortive = abortive


def tracking_id(serial: int) -> str:
    """A deterministic ``ROUTER_…`` tracking id for the ``serial``-th request."""
    digest = hashlib.sha256(f"webex-simulator:{serial}".encode()).hexdigest().upper()
    return f"ROUTER_{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def error_body(status: int, description: str, tracking: str) -> bytes:
    """The spec's error body for ``status`` with a specific ``description``."""
    message = _REASONS.get(status, "The request could not be served.")
    body = {"message": message, "errors": [{"description": description}], "trackingId": tracking}
    return json.dumps(body, ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class ErrorFault:
    """An answer that replaces the normal one: status, description, extra headers."""

    status: int
    description: str
    headers: Mapping[str, str]


@dataclass
class FaultPlan:
    """Which faults to inject; every knob defaults to off (except the attendee-report 403).

    Count-based knobs (``*_every``, 0 = off) fire on request numbers that are multiples of the
    knob; see the module docstring for the shared counter and precedence.
    """

    #: Every Nth request answers 429 with a ``Retry-After`` in the ``retry_after`` form.
    rate_limit_every: int = 0
    #: "seconds" (``"1"``), "http-date", "malformed" (``rand(30),add(30)``), "absent", or
    #: "cycle" (those four in turn, one per 429).
    retry_after: RetryAfterForm = "seconds"
    #: The delay Retry-After asks for (seconds, or added to ``now`` for the HTTP-date form).
    retry_after_seconds: int = 1
    #: Every Nth request answers 423 Locked with an integer ``Retry-After``.
    locked_every: int = 0
    #: Every Nth request answers a 5xx, cycling through ``server_error_statuses``.
    server_error_every: int = 0
    server_error_statuses: tuple[int, ...] = (500, 502, 503)
    #: A list request whose ``max`` (or default 10) exceeds this answers 504.
    gateway_timeout_above_max: int | None = None
    #: Every Nth request drops the connection without answering (alternately close / RST).
    reset_every: int = 0
    #: Every Nth request, if it would succeed, gets its page cut off mid-JSON (still 200, with
    #: the Content-Length of the cut body).
    truncate_every: int = 0
    #: Every Nth request, if it would succeed, gets ``Link: <https://evil.example/v1/…>;
    #: rel="next"`` (also on what would have been the last page).
    hostile_link_every: int = 0
    #: Meetings whose participants pages hold items that do not fit the ``Participant`` schema.
    invalid_items_for: set[str] = field(default_factory=set)
    #: Meeting id -> status (e.g. 403, 404, 410) for its participants, invitees and reports.
    status_for: dict[str, int] = field(default_factory=dict)
    #: The token was revoked: every call answers 401.
    revoked: bool = False
    #: ``/meetingReports/attendees`` answers 403 (the token lacks the admin report scope).
    attendee_report_forbidden: bool = True
    #: Endpoint paths (e.g. ``"/meetingParticipants"``) the counted knobs apply to; empty = all.
    paths: frozenset[str] = frozenset()
    #: Implausible but schema-valid data to serve (names in ``simulator.implausible``), for the
    #: meetings ``implausible_target`` picks: about one in ``implausible_every``.
    implausible: frozenset[str] = frozenset()
    implausible_every: int = 4
    #: Paging never ends. "new-link": the cursor is ignored — every page is the first page again,
    #: with a new same-host ``next`` link each time; "same-link": every page's ``next`` link is
    #: the page itself; "fresh-items": the listing goes on forever past its end, each page with
    #: new items (copies of the listing's own under new ids) and a new link. None: off.
    endless_paging: EndlessForm | None = None
    #: Endpoint paths whose listings never end (e.g. ``"/meetings"``); empty = every listing.
    endless_paths: frozenset[str] = frozenset()
    #: Only these meetings' participant and invitee listings never end; empty = every meeting's.
    endless_meetings: frozenset[str] = frozenset()

    _counter: int = field(default=0, init=False, repr=False, compare=False)
    _rate_limited: int = field(default=0, init=False, repr=False, compare=False)
    _resets: int = field(default=0, init=False, repr=False, compare=False)
    _server_errors: int = field(default=0, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def tick(self, path: str) -> int:
        """Count a request to ``path``; its 1-based number, or 0 when out of the plan's scope."""
        if self.paths and path not in self.paths:
            return 0
        with self._lock:
            self._counter += 1
            return self._counter

    @property
    def requests_counted(self) -> int:
        """How many in-scope requests the plan has seen."""
        with self._lock:
            return self._counter

    @staticmethod
    def _hits(n: int, every: int) -> bool:
        return n > 0 and every > 0 and n % every == 0

    def replace_answer(self, n: int, now: datetime) -> ErrorFault | None:
        """The fault that replaces request ``n``'s answer; raises ``ConnectionReset`` to drop it."""
        if self._hits(n, self.reset_every):
            with self._lock:
                self._resets += 1
                abortive = self._resets % 2 == 0
            raise ConnectionReset(abortive)
        if self._hits(n, self.rate_limit_every):
            with self._lock:
                self._rate_limited += 1
                serial = self._rate_limited
            return ErrorFault(
                429, "Too many requests; retry later.", self._retry_after_header(serial, now)
            )
        if self._hits(n, self.locked_every):
            return ErrorFault(
                423,
                "The resource is locked; retry later.",
                {"Retry-After": str(self.retry_after_seconds)},
            )
        if self._hits(n, self.server_error_every) and self.server_error_statuses:
            with self._lock:
                status = self.server_error_statuses[
                    self._server_errors % len(self.server_error_statuses)
                ]
                self._server_errors += 1
            return ErrorFault(status, "Simulated upstream failure.", {})
        return None

    def _retry_after_header(self, serial: int, now: datetime) -> dict[str, str]:
        forms: tuple[RetryAfterForm, ...] = ("seconds", "http-date", "malformed", "absent")
        form = forms[(serial - 1) % 4] if self.retry_after == "cycle" else self.retry_after
        if form == "seconds":
            return {"Retry-After": str(self.retry_after_seconds)}
        if form == "http-date":
            when = now + timedelta(seconds=self.retry_after_seconds)
            return {"Retry-After": format_datetime(when, usegmt=True)}
        if form == "malformed":
            return {"Retry-After": MALFORMED_RETRY_AFTER}
        return {}

    def truncates(self, n: int) -> bool:
        """Whether request ``n``'s successful page is cut off."""
        return self._hits(n, self.truncate_every)

    def hostile_link(self, n: int) -> bool:
        """Whether request ``n``'s successful page links to another host."""
        return self._hits(n, self.hostile_link_every)

    def implausible_target(self, meeting_id: str) -> bool:
        """Whether the implausibility faults apply to ``meeting_id`` (a stable hash of the id)."""
        if not self.implausible or self.implausible_every <= 0:
            return False
        digest = hashlib.sha256(f"implausible:{meeting_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % self.implausible_every == 0

    def endless(self, endpoint: str, meeting_id: str | None) -> EndlessForm | None:
        """How the listing of ``endpoint`` (for ``meeting_id``, if any) never ends, if it does."""
        if self.endless_paging is None:
            return None
        if self.endless_paths and endpoint not in self.endless_paths:
            return None
        if self.endless_meetings and endpoint in ("/meetingParticipants", "/meetingInvitees"):
            if meeting_id not in self.endless_meetings:
                return None
        return self.endless_paging

    def gateway_timeout(self, requested_max: int) -> bool:
        """Whether a list request asking for ``requested_max`` items times out (504)."""
        limit = self.gateway_timeout_above_max
        return limit is not None and requested_max > limit


#: Faults ``meetaudit simulator serve --fault NAME`` switches on: name -> (what it does, the
#: ``FaultPlan`` settings). Several names combine; register new knobs here.
HAND_FAULTS: dict[str, tuple[str, dict[str, object]]] = {
    "endless-paging": (
        "every listing pages forever: each page is the first again, with a new next link",
        {"endless_paging": "new-link"},
    ),
    "endless-paging-same-link": (
        "every listing pages forever: each page links to itself",
        {"endless_paging": "same-link"},
    ),
    "endless-paging-fresh-items": (
        "every listing pages forever past its end, each page with new items and a new link",
        {"endless_paging": "fresh-items"},
    ),
    "endless-participants": (
        "the participant lists of meetings page forever with new items (the meeting list ends)",
        {"endless_paging": "fresh-items", "endless_paths": frozenset({"/meetingParticipants"})},
    ),
}


def _implausible_faults() -> dict[str, tuple[str, dict[str, object]]]:
    from reporting.webex.plausibility import CHECKS
    from reporting.webex.simulator.implausible import IMPLAUSIBLE_FAULTS

    own = {
        "missing_start": "Meeting listed without a start",
        "scheduled_as_instance": "A scheduled meeting listed as an instance",
    }
    return {
        name.replace("_", "-"): (
            f"about one meeting in four: {CHECKS[name].label if name in CHECKS else own[name]}",
            {"implausible": frozenset({name})},
        )
        for name in IMPLAUSIBLE_FAULTS
    }


HAND_FAULTS.update(_implausible_faults())


def hand_faults(names: list[str] | tuple[str, ...]) -> FaultPlan:
    """The fault plan for the ``HAND_FAULTS`` ``names`` (combined: implausibilities add up,
    other settings of later names win a clash)."""
    settings: dict[str, object] = {}
    implausible: set[str] = set()
    for name in names:
        knobs = dict(HAND_FAULTS[name][1])
        implausible |= set(knobs.pop("implausible", frozenset()))  # type: ignore[call-overload]
        settings.update(knobs)
    if implausible:
        settings["implausible"] = frozenset(implausible)
    return FaultPlan(**settings)  # type: ignore[arg-type]


def corrupt_participants(items: list[dict[str, object]]) -> list[dict[str, object]]:
    """Copies of participant items spoiled so they do not fit the ``Participant`` schema."""
    spoilers: tuple[dict[str, object], ...] = (
        {"devices": "laptop"},
        {"video": "sideways"},
        {"joinedTime": 1714554000},
        {"host": "yes", "email": ["a@b.example"]},
    )
    return [{**item, **spoilers[k % len(spoilers)]} for k, item in enumerate(items)]
