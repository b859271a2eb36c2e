"""The analysts' SQL views say what the report says: the same rows, classification and masking.

The views (migration 0114) are a second reader of the stored records, so each is checked
against the report's own code on the same data: the SQL functions against ``mask_phone``,
``caller_name``, ``email_domain`` and ``classify_with`` on many generated inputs, and the
reconciliation and organisation views against the report's context for the known month.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, text

from reporting.db.engine import Database
from reporting.db.views import store_view_settings
from reporting.report.api import snapshot
from reporting.report.classify import caller_name, classify_with, email_domain, mask_phone
from reporting.report.context import ReportContext, ReportParameters, build_context
from tests.report.conftest import OCT, OWN_ORG_ID, build_known_month

README = Path(__file__).resolve().parents[2] / "README.md"

# Phone numbers as people type them, with other scripts' digits, superscripts and odd spaces.
_PHONE_CHARS = st.sampled_from([*"0123456789+-() .#*x", "٣", "٧", "²", "\u00a0", "\u2003",
                                "\x1c", "\t", "a", "ё", "𝟕", "①"])  # fmt: skip
phones = st.one_of(st.none(), st.text(_PHONE_CHARS, max_size=24))
_EMAIL_CHARS = st.sampled_from([*"abcXY.@- _", "\u00a0", "\t", "é"])
emails = st.one_of(st.none(), st.text(_EMAIL_CHARS, max_size=16))
org_ids = st.one_of(st.none(), st.sampled_from(["", " ", "ORG-1", "org-1 ", "Org-2", "\tx9"]))
domains = st.lists(st.sampled_from(["a.b", "@A.B", " x ", "", "b", "Y.a.b", "é"]), max_size=3)

_FEW = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def _sql(conn: Connection, expression: str, rows: list[dict[str, Any]]) -> list[Any]:
    """``expression`` evaluated on every row in one statement (a round trip per batch)."""
    return [conn.execute(text(f"SELECT {expression}"), row).scalar() for row in rows]


@_FEW
@given(batch=st.lists(phones, min_size=1, max_size=40))
def test_masked_phone_numbers_match_mask_phone(db: Database, batch: list[str | None]) -> None:
    with db.engine.connect() as conn:
        got = _sql(conn, "meetaudit_mask_phone(:n)", [{"n": n} for n in batch])
    assert got == [mask_phone(n) for n in batch]


def test_masked_phone_numbers_on_hand_picked_numbers(db: Database) -> None:
    numbers = ["+1-555-0199", "  +44 20 7946 0958 ", "1234", "12345", "", "   ", None,
               "+٩٧١ ٤ ٣٦٦ ٢٢٢٢", "tel: 555 01 99 ext.", "①②③④⑤⑥", "𝟓𝟓𝟓𝟎𝟏𝟗𝟗"]  # fmt: skip
    with db.engine.connect() as conn:
        got = _sql(conn, "meetaudit_mask_phone(:n)", [{"n": n} for n in numbers])
    assert got == [mask_phone(n) for n in numbers]
    assert got[0] == "+1-555-01••" and got[2] == "••" and got[6] is None


@_FEW
@given(batch=st.lists(st.tuples(phones, st.lists(phones, max_size=3)), min_size=1, max_size=30))
def test_callers_names_are_masked_as_the_report_masks_them(
    db: Database, batch: list[tuple[str | None, list[str | None]]]
) -> None:
    rows = [{"name": name, "phones": nums} for name, nums in batch]
    with db.engine.connect() as conn:
        got = _sql(conn, "meetaudit_caller_name(:name, CAST(:phones AS text[]))", rows)
    assert got == [caller_name(name, [n for n in nums if n]) for name, nums in batch]


@_FEW
@given(batch=st.lists(st.tuples(org_ids, emails, domains), min_size=1, max_size=30))
def test_classification_matches_the_report(
    db: Database, batch: list[tuple[str | None, str | None, list[str]]]
) -> None:
    own_ids = ["org-1", " ORG-3 "]
    rows = [{"o": o, "e": e, "ids": own_ids, "doms": d} for o, e, d in batch]
    with db.engine.connect() as conn:
        got = [tuple(conn.execute(text(
            "SELECT meetaudit_classify(:o, :e, CAST(:ids AS text[]), CAST(:doms AS text[])), "
            "meetaudit_org_key(:o, :e, CAST(:ids AS text[]), CAST(:doms AS text[]), 'Acme'), "
            "meetaudit_email_domain(:e)"), r).one()) for r in rows]  # fmt: skip
    want = [(*classify_with(o, e, own_ids, d, "Acme"), email_domain(e)) for o, e, d in batch]
    assert got == want


# -- the views against the report, on the known month ------------------------------------------


def _params() -> ReportParameters:
    return ReportParameters(
        label="2026-10", period_from=OCT.start, period_to=OCT.end, timezone="UTC",
        org_name="Acme Corporation", org_domains=("acme.example",), org_ids=(OWN_ORG_ID,),
        min_attendance_minutes=2.0, show_phone_numbers=False, roster_row_limit=10_000,
        exception_row_limit=500,
        as_of=dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=5),
    )  # fmt: skip


@pytest.fixture
def known(db: Database, tmp_path: Path) -> ReportContext:
    """The known month stored, the views told the report's settings, and the report's context."""
    build_known_month(db)
    p = _params()
    with db.engine.begin() as conn:
        store_view_settings(conn, p.org_name, p.org_domains, p.org_ids, p.timezone,
                            p.min_attendance_minutes)  # fmt: skip
    with snapshot(db) as session:
        return build_context(session, p, workdir=tmp_path, keep_rows=True)


_COMPARED = ("person_key", "display_name", "email", "role", "invited", "admitted", "status",
             "classification", "org_id", "email_domain", "sessions", "attended_seconds",
             "phone_numbers", "participant_ids", "flags")  # fmt: skip


def _view_rows(db: Database, view: str, where: str = "") -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(f"SELECT * FROM {view} {where}")).mappings()]


def test_reconciliation_view_has_the_reports_rows(db: Database, known: ReportContext) -> None:
    assert known.rows is not None
    report = {(r["meeting_id"], r["person_key"]): r for r in known.rows}
    view = {(r["meeting_id"], r["person_key"]): r
            for r in _view_rows(db, "analyst_reconciliation",
                                "WHERE meeting_start_at >= '2026-10-01Z'")}  # fmt: skip
    assert set(view) == set(report)
    for key, want in report.items():
        got = view[key]
        assert {c: got[c] for c in _COMPARED} == {c: want[c] for c in _COMPARED}, key
        assert got["organisation"] == want["org_key"], key
        for column in ("first_joined", "last_left"):
            shown = got[column].isoformat() if got[column] else None
            assert shown == want[column], (key, column)
    # The caller's number and their name, which is it, are masked.
    phone = view[("M1", "participant:p-phone")]
    assert (phone["display_name"], phone["phone_numbers"]) == ("+1-555-01••", ["+1-555-01••"])


def test_organisations_view_has_the_reports_table(db: Database, known: ReportContext) -> None:
    view = {(r["classification"], r["organisation"]): r
            for r in _view_rows(db, "analyst_organisations", "WHERE month = '2026-10-01'")}  # fmt: skip
    report = {(r["classification"], r["org_key"]): r for r in known.org_table}
    assert set(view) == set(report)
    for key, want in report.items():
        assert (view[key]["meetings"], view[key]["people"]) == (want["meetings"], want["people"])


def test_attendances_and_sessions_mask_phone_numbers(db: Database, known: ReportContext) -> None:
    attendances = {r["participant_id"]: r for r in _view_rows(db, "analyst_attendances")}
    assert len(attendances) == known.totals.participants + 0  # M0 of September has none stored
    caller = attendances["p-phone"]
    assert (caller["display_name"], caller["phone_numbers"]) == ("+1-555-01••", ["+1-555-01••"])
    assert caller["classification"] == "unidentified" and caller["organisation"] is None
    masked = _view_rows(db, "analyst_join_sessions", "WHERE participant_id = 'p-phone'")
    full = _view_rows(db, "analyst_join_sessions_unmasked", "WHERE participant_id = 'p-phone'")
    assert [r["phone_number"] for r in masked] == ["+1-555-01••"]
    assert [r["phone_number"] for r in full] == ["+1-555-0199"]
    meetings = {r["meeting_id"]: r for r in _view_rows(db, "analyst_meetings")}
    assert meetings["M3"]["harvest_status"] == "not_harvested"
    assert (meetings["M1"]["participant_records"], meetings["M1"]["invitees"]) == (9, 5)


def test_without_stored_settings_nobody_is_internal(db: Database) -> None:
    build_known_month(db)
    rows = _view_rows(db, "analyst_reconciliation")
    assert rows and {r["classification"] for r in rows} <= {"external", "unidentified"}
    (own,) = _view_rows(db, "analyst_own_organisation")
    assert own["stored_at"] is None and own["org_domains"] == []


# -- documented ----------------------------------------------------------------------------------


def _view_columns(db: Database) -> dict[str, list[tuple[str, str | None]]]:
    with db.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT c.relname, a.attname, col_description(c.oid, a.attnum) "
            "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
            "WHERE c.relkind = 'v' AND c.relname LIKE 'analyst\\_%' "
            "AND c.relnamespace = current_schema()::regnamespace ORDER BY c.relname, a.attnum"
        )).all()  # fmt: skip
    out: dict[str, list[tuple[str, str | None]]] = {}
    for view, column, comment in rows:
        out.setdefault(view, []).append((column, comment))
    return out


def test_every_view_and_column_is_documented_in_the_database_and_the_readme(db: Database) -> None:
    columns = _view_columns(db)
    assert len(columns) == 8
    section = README.read_text(encoding="utf-8").split("## SQL views for analysts", 1)[1]
    section = section.split("\n## ", 1)[0]
    with db.engine.connect() as conn:
        for view, cols in columns.items():
            assert conn.execute(text("SELECT obj_description(CAST(:v AS regclass), 'pg_class')"),
                                {"v": view}).scalar(), view  # fmt: skip
            assert f"`{view}`" in section, view
            listed = re.search(rf"^`{view}`:.*?(?:\n\n|\Z)", section, re.M | re.S)
            assert listed is not None, view
            for column, comment in cols:
                assert comment, (view, column)
                assert f"`{column}`" in listed.group(0), (view, column)
