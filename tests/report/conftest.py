"""Fixtures for the report tests: a hand-built month whose every figure is known, and helpers.

``known_month`` stores, through the real write path (``reporting.db.writes``), a month with one
of each case the report must get right — a case-variant invitee email, a person on two devices
who also rejoined, an invitee who never came, an uninvited partner with an orgId, a lobby-only
invitee from a subdomain, a phone caller, placeholder 1970 times, a meeting without invitees, a
meeting listed but never fetched (with its gap), and hostile display names — so tests can assert
exact numbers and names.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pypdf import PdfReader
from sqlalchemy.engine import make_url

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import HarvestRun
from reporting.db.writes import MeetingRecord, record_gap, store_meetings, upsert_listed_meetings
from reporting.harvest import Window
from reporting.webex import schemas
from tests.tsa import TSA, running_tsa

UTC = dt.UTC
OCT = Window(dt.datetime(2026, 10, 1, tzinfo=UTC), dt.datetime(2026, 11, 1, tzinfo=UTC))
OWN_ORG_ID = "3f2a0c1e-acme-own-org"
HOSTILE_IMG = '<img src="file:///etc/passwd">'
HOSTILE_STYLE = "<style>body{display:none}</style>"
HOSTILE_URL = "url(http://evil.example/x)"
LONG_NAME = "".join(chr(0x41 + i % 26) for i in range(2000))
RLO_NAME = "Invoice \u202efdp.exe"
ZW_NAME = "Ad\u200bmin Us\u200ber"

_counter = itertools.count()


def _ts(day: int, hh: int, mm: int = 0) -> str:
    return dt.datetime(2026, 10, day, hh, mm, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def device(start: str, end: str, **extra: Any) -> dict[str, Any]:
    """A ``Device`` item."""
    return {"correlationId": f"c{next(_counter)}", "deviceType": "webex_app", "audioType": "voip",
            "joinedTime": start, "leftTime": end, **extra}  # fmt: skip


def person(pid: str, mid: str, name: str, email: str | None, devices: list[dict[str, Any]],
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    """A ``Participant`` item."""
    item: dict[str, Any] = {
        "id": pid, "meetingId": mid, "displayName": name, "host": False, "coHost": False,
        "invitee": False, "state": "end", "devices": devices,
    }  # fmt: skip
    if email is not None:
        item["email"] = email
    if devices and "joinedTime" not in extra:
        item["joinedTime"] = devices[0]["joinedTime"]
        item["leftTime"] = devices[-1]["leftTime"]
    item.update(extra)
    return item


def invitee(mid: str, email: str, name: str, **extra: Any) -> dict[str, Any]:
    """A ``GetInviteeObject`` item."""
    return {"id": f"inv{next(_counter)}", "meetingId": mid, "email": email, "displayName": name,
            "coHost": False, "panelist": False, **extra}  # fmt: skip


def meeting(
    mid: str, title: str, start: str, end: str, host_email: str, host_name: str
) -> dict[str, Any]:
    """A ``MeetingObjectForListMeeting`` item."""
    return {"id": mid, "meetingSeriesId": f"series-{mid}", "title": title, "start": start,
            "end": end, "state": "ended", "meetingType": "meeting", "timezone": "UTC",
            "hostEmail": host_email, "hostDisplayName": host_name,
            "meetingNumber": "2550001"}  # fmt: skip


Items = list[dict[str, Any]]


def store(
    db: Database, run_id: int, meetings: Items, people: dict[str, tuple[Items, Items]]
) -> None:
    """List ``meetings`` and store the participants and invitees of those in ``people``."""
    with db.session() as session:
        upsert_listed_meetings(
            session, run_id, [(schemas.Meeting.model_validate(m), m) for m in meetings]
        )
        records = [
            MeetingRecord(
                meeting_id=mid,
                participants=[(schemas.Participant.model_validate(p), p) for p in parts],
                invitees=[(schemas.Invitee.model_validate(i), i) for i in invs],
            )
            for mid, (parts, invs) in people.items()
        ]
        store_meetings(session, run_id, records)


def add_run(db: Database, window: Window = OCT, status: str = "complete", **extra: Any) -> int:
    """A finished harvest run over ``window``; returns its id."""
    with db.session() as session:
        run = HarvestRun(
            operator="harvester@ci", hostname="ci-host", meetaudit_version="0.1.0",
            api_base_url="https://webexapis.com/v1", window_from=window.start,
            window_to=window.end, parameters={}, status=status,
            started_at=dt.datetime(2026, 11, 2, 1, 0, tzinfo=UTC),
            finished_at=dt.datetime(2026, 11, 2, 1, 5, tzinfo=UTC), **extra,
        )  # fmt: skip
        session.add(run)
        session.flush()
        return run.id


def build_known_month(db: Database) -> dict[str, Any]:
    """Store the known month (see the module docstring); return what tests need to know."""
    run = add_run(db, status="incomplete", gaps=1)
    m1 = meeting(
        "M1",
        "Quarterly controls review",
        _ts(5, 10),
        _ts(5, 11),
        "hana.host@acme.example",
        "Hana Host",
    )
    m2 = meeting(
        "M2", "Ad-hoc call", _ts(6, 9), _ts(6, 9, 30), "hana.host@acme.example", "Hana Host"
    )
    m3 = meeting(
        "M3",
        "Board prep (never fetched)",
        _ts(7, 14),
        _ts(7, 15),
        "hana.host@acme.example",
        "Hana Host",
    )
    m4 = meeting(
        "M4", "Hostile guests", _ts(8, 16), _ts(8, 17), "hana.host@acme.example", "Hana Host"
    )
    m_out = meeting(
        "M0",
        "September meeting",
        "2026-09-30T10:00:00Z",
        "2026-09-30T11:00:00Z",
        "hana.host@acme.example",
        "Hana Host",
    )
    p1 = [
        person("p-host", "M1", "Hana Host", "hana.host@acme.example",
               [device(_ts(5, 10), _ts(5, 11))], host=True),
        # Two overlapping devices, then a rejoin as a second participant: one attendee, 55 min.
        person("p-alice-1", "M1", "Alice Ångström", "alice@acme.example",
               [device(_ts(5, 10), _ts(5, 10, 30)), device(_ts(5, 10, 20), _ts(5, 10, 50))],
               invitee=True),
        person("p-alice-2", "M1", "Alice Ångström", "ALICE@acme.example",
               [device(_ts(5, 10, 55), _ts(5, 11))], invitee=True),
        person("p-carol", "M1", "Carol Partner", "carol@partner.example",
               [device(_ts(5, 10, 5), _ts(5, 10, 45))], orgId="PARTNER-ORG-42"),
        person("p-dave", "M1", "Dave Lobby", "dave@eu.acme.example",
               [device(_ts(5, 10, 1), _ts(5, 10, 9), audioType="inactive")], state="lobby"),
        person("p-phone", "M1", "+1-555-0199", None,
               [device(_ts(5, 10, 10), _ts(5, 10, 40), audioType="pstn", callType="callIn",
                       phoneNumber="+1-555-0199", deviceType="phone")]),
        # Marked an invitee by Webex, but not on the list; one minute, plus a 1970 placeholder.
        person("p-erin", "M1", "Erin Early", "erin@acme.example",
               [device(_ts(5, 10, 2), _ts(5, 10, 3)),
                device("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z", audioType="inactive")],
               invitee=True),
        person("p-frank", "M1", "Frank Field", "frank@freemail.example",
               [device(_ts(5, 10), _ts(5, 10, 30))], orgId=OWN_ORG_ID.upper(), coHost=True),
        person("p-dmitry", "M1", "Дмитрий Смирнов", "dmitry@globex.example",
               [device(_ts(5, 10), _ts(5, 10, 40))]),
    ]  # fmt: skip
    i1 = [
        invitee("M1", "  Alice@ACME.example ", "Alice Ångström"),
        invitee("M1", "bob@globex.example", "Bob Absent"),
        invitee("M1", "dave@eu.acme.example", "Dave Lobby"),
        invitee("M1", "frank@freemail.example", "Frank Field", coHost=True),
        invitee("M1", "dmitry@globex.example", "Дмитрий Смирнов"),
    ]
    p2 = [person("p-gina", "M2", "Gina Guest", "gina@guest.example",
                 [device(_ts(6, 9), _ts(6, 9, 30))])]  # fmt: skip
    hostile = [HOSTILE_IMG, HOSTILE_STYLE, HOSTILE_URL, LONG_NAME, RLO_NAME, ZW_NAME]
    p4 = [person("p-host4", "M4", "Hana Host", "hana.host@acme.example",
                 [device(_ts(8, 16), _ts(8, 17))], host=True)]  # fmt: skip
    i4 = []
    for n, name in enumerate(hostile):
        email = f"hostile{n}@evil.example"
        p4.append(person(f"p-h{n}", "M4", name, email, [device(_ts(8, 16, 5), _ts(8, 16, 50))]))
        i4.append(invitee("M4", email, name))
    store(db, run, [m1, m2, m3, m4, m_out], {"M1": (p1, i1), "M2": (p2, []), "M4": (p4, i4)})
    with db.session() as session:
        record_gap(session, run, scope="participants", meeting_id="M3", http_status=503,
                   tracking_id="ROUTER_TRACK_777", reason="503 Service Unavailable after 6 retries",
                   url="https://webexapis.com/v1/meetingParticipants?meetingId=M3")  # fmt: skip
    return {"run_id": run}


def known_settings(settings: Settings, **overrides: Any) -> Settings:
    """Settings for the known month: Acme's domains and org id, reports into tmp."""
    values: dict[str, Any] = {"org_domains": ["acme.example"], "org_ids": [OWN_ORG_ID]}
    values.update(overrides)
    return settings.model_copy(update=values)


# -- databases shared by a module (rendering is the slow part; the data is read-only) ----------


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def module_db(
    pg_server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A migrated database for one test module (for tests that only read)."""
    name = f"meetaudit_rm_{os.getpid()}_{next(_counter)}"
    admin = _libpq(
        make_url(pg_server_url).set(database="postgres").render_as_string(hide_password=False)
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')  # type: ignore[arg-type]
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    db = Database(url, data_dir=tmp_path_factory.mktemp("db"))
    try:
        yield db
    finally:
        db.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


# -- reading PDFs -----------------------------------------------------------------------------


def pdf_sections(data: bytes) -> dict[str, str]:
    """Text of the PDF per bookmark (``"3.1"`` → text of its pages), from the outline."""
    reader = PdfReader(io.BytesIO(data))
    texts = [page.extract_text() or "" for page in reader.pages]
    marks: list[tuple[str, int]] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                marks.append((item.title.split("  ")[0], reader.get_destination_page_number(item)))

    walk(reader.outline)
    marks.sort(key=lambda m: m[1])
    out: dict[str, str] = {}
    for n, (key, first) in enumerate(marks):
        # Up to and including the page where the next section starts: a table may run onto it.
        last = next((p for _, p in marks[n + 1 :] if p > first), len(texts) - 1)
        out[key] = "\n".join(texts[first : last + 1])
    return out


def report_pdf_path(tmp: Path) -> Path:
    """Where a test writes its PDF."""
    return tmp / "report.pdf"


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TSA]:
    """A time-stamping authority on loopback for the module's reports (tests.tsa)."""
    with running_tsa(tmp_path_factory.mktemp("tsa")) as running:
        yield running
