"""A sample of a period's reconciliation rows: reproducible, stated, recorded and verifiable.

A small simulated month is harvested once for the module; samples are drawn from it through the
real CLI and the library, and looked at as an auditor would: the same seed on the same data
draws the same rows, the method and sizes are stated, the file is in the ledger and verifies,
and a sample larger than the population is refused in words.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from pathlib import Path

import page as pdf_checker
import pikepdf
import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader
from sqlalchemy import select

from reporting.cli import cli
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import ReportRun
from reporting.errors import ReportError
from reporting.harvest import Window
from reporting.report import verify_file
from reporting.report.exports import RECONCILIATION_COLUMNS
from reporting.report.sample import compile_sample, draw, population_order
from reporting.webex.simulator import SimulatedOrg, generate_org
from tests.factories import harvest_org, org_settings

OCT = Window(dt.datetime(2026, 10, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


@pytest.fixture
def org() -> SimulatedOrg:
    return generate_org(seed=31, start=OCT.start, end=OCT.end, meetings=6,
                        participants_per_meeting=5)  # fmt: skip


@pytest.fixture
def harvested(settings: Settings, db: Database, org: SimulatedOrg) -> Settings:
    assert harvest_org(settings, org, OCT, now=NOW, db=db).status == "complete"
    return org_settings(settings, org)


def _env(settings: Settings, tmp: Path) -> dict[str, str | None]:
    assert settings.database_url is not None
    return {
        "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_DATABASE_URL": settings.database_url.get_secret_value(),
        "MEETAUDIT_DATA_DIR": str(tmp / "data"),
        "MEETAUDIT_OUTPUT_DIR": str(tmp / "out"),
        "MEETAUDIT_ORG_NAME": settings.org_name,
        "MEETAUDIT_ORG_DOMAINS": ",".join(settings.org_domains),
        "MEETAUDIT_ORG_IDS": ",".join(settings.org_ids),
        "MEETAUDIT_OPERATOR": "auditor-3@acme",
        "MEETAUDIT_TIMEZONE": "UTC",
        "MEETAUDIT_SIGNING_KEY_FILE": None,
        "COLUMNS": "160",
    }


def _run(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def _attachment(pdf: Path, name: str) -> bytes:
    with pikepdf.open(pdf) as doc:
        return bytes(doc.attachments[name].get_file().read_bytes())


def _sample_rows(pdf: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_attachment(pdf, "sample.csv").decode("utf-8"))))


def _text(pdf: Path) -> str:
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(pdf).pages).split())


def test_the_draw_is_pythons_random_sample_of_the_positions() -> None:
    """What the document states is what is done: Random(seed).sample(range(N), n), numbered
    from 1, in draw order."""
    assert draw(40, 5, 2026) == [p + 1 for p in random.Random(2026).sample(range(40), 5)]
    assert draw(40, 5, 2026) == draw(40, 5, 2026) != draw(40, 5, 2027)
    assert sorted(draw(7, 7, 1)) == list(range(1, 8))  # the whole population, once each
    with pytest.raises(ReportError, match="cannot be drawn from 7: the period has only 7"):
        draw(7, 8, 1)


def test_the_population_keeps_the_meeting_order_and_sorts_by_person_key() -> None:
    rows = [{"meeting_id": "B", "person_key": "z"}, {"meeting_id": "B", "person_key": "a"},
            {"meeting_id": "A", "person_key": "m"}, {"meeting_id": "A", "person_key": "b"}]  # fmt: skip
    assert population_order(rows) == [1, 0, 3, 2]


def test_same_seed_and_data_draw_the_same_sample_another_seed_another(
    harvested: Settings, db: Database, tmp_path: Path
) -> None:
    first = compile_sample(harvested, db, OCT, label="2026-10", size=6, seed=424242,
                           output=tmp_path / "a/")  # fmt: skip
    again = compile_sample(harvested, db, OCT, label="2026-10", size=6, seed=424242,
                           output=tmp_path / "b/")  # fmt: skip
    other = compile_sample(harvested, db, OCT, label="2026-10", size=6, seed=7,
                           output=tmp_path / "c/")  # fmt: skip
    assert first.sample_id != again.sample_id  # two draws, two ledger entries...
    assert first.positions == again.positions != other.positions  # ...the same rows
    assert _attachment(first.path, "sample.csv") == _attachment(again.path, "sample.csv")
    assert first.population == again.population > 6
    rows = _sample_rows(first.path)
    assert [int(r["draw"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [int(r["population_position"]) for r in rows] == first.positions
    assert list(rows[0]) == ["draw", "population_position", *RECONCILIATION_COLUMNS]
    with db.sessions() as session:
        kinds = session.scalars(select(ReportRun.kind)).all()
    assert kinds == ["sample", "sample", "sample"]


def test_the_rows_drawn_are_the_reports_rows_at_those_positions(
    harvested: Settings, db: Database, tmp_path: Path
) -> None:
    """Re-performed from the report's own reconciliation.csv: order it as stated, take the
    positions drawn, and the rows are the sample's."""
    env = _env(harvested, tmp_path)
    out = _run(env, "report", "--month", "2026-10", "--sample-size", "5", "--sample-seed", "99")
    assert out.exit_code == 0, out.output
    report = next((tmp_path / "out").glob("meetaudit-2026-10-MAR-*.pdf"))
    sample = next((tmp_path / "out").glob("meetaudit-2026-10-SMP-*.pdf"))
    report_id = report.stem.removeprefix("meetaudit-2026-10-")
    assert f"drawn from the rows of report {report_id}" in out.output
    recon = list(csv.DictReader(io.StringIO(_attachment(report, "reconciliation.csv").decode())))
    ordered = [recon[i] for i in population_order(recon)]
    drawn = _sample_rows(sample)
    positions = [int(r["population_position"]) for r in drawn]
    assert positions == draw(len(recon), 5, 99)
    for row in drawn:
        expected = ordered[int(row["population_position"]) - 1]
        assert {c: row[c] for c in RECONCILIATION_COLUMNS} == expected
    manifest = json.loads(_attachment(sample, "manifest.json"))
    assert manifest["sample"]["accompanies"] == report_id
    assert manifest["sample"]["population"] == len(recon)


def test_the_document_states_method_seed_and_sizes_and_verifies(
    harvested: Settings, db: Database, tmp_path: Path
) -> None:
    env = _env(harvested, tmp_path)
    out = _run(env, "sample", "--month", "2026-10", "--size", "4", "--seed", "31337")
    assert out.exit_code == 0, out.output
    # Progress of the long steps, as a report shows it (lines when not on a terminal).
    assert "Reading the period's records" in out.stderr and "Drawing the sample" in out.stderr
    (pdf,) = (tmp_path / "out").glob("*.pdf")
    text = _text(pdf)
    population = json.loads(_attachment(pdf, "manifest.json"))["sample"]["population"]
    assert f"4 of the {population} reconciliation rows of the period, seed 31337" in text
    assert "random.Random(seed).sample(range(N), n)" in text
    assert "within a meeting, by person key" in text
    assert "Drawn from a complete period." in text
    with db.sessions() as session:
        row = session.scalars(select(ReportRun)).one()
    assert row.kind == "sample" and row.report_id.startswith("SMP-2026-10-")
    assert row.parameters["sample"]["seed"] == 31337
    assert row.control_totals["sample_rows"] == 4 and row.complete
    check = verify_file(db, pdf)
    assert check.ok, check.lines()
    verified = _run(env, "verify", str(pdf))
    assert verified.exit_code == 0, verified.output
    assert f"is report {row.report_id}" in verified.output
    assert "a sample of the period's reconciliation rows" in verified.output
    # sample.csv taken out of the PDF is known to the ledger too.
    extracted = tmp_path / "sample.csv"
    extracted.write_bytes(_attachment(pdf, "sample.csv"))
    assert verify_file(db, extracted).ok
    ledger = _run(env, "verify", "--ledger")
    assert ledger.exit_code == 0 and row.report_id in ledger.output, ledger.output
    report_again = _run(env, "report", "--reproduce", row.report_id)
    assert report_again.exit_code == 1
    assert "a sample of a period's reconciliation rows (meetaudit sample)" in report_again.output
    # Tagged like the report: PDF/A-3a and PDF/UA-1.
    for profile in (pdf_checker.ValidationProfile.PDF_A_3A, pdf_checker.ValidationProfile.PDF_UA_1):
        checked = pdf_checker.validate_pdf(str(pdf), profile=profile)
        assert checked.is_compliant, (profile, [(f.rule_id, f.message) for f in checked.failures])


def test_a_sample_larger_than_the_population_is_refused_in_words(
    harvested: Settings, db: Database, tmp_path: Path
) -> None:
    env = _env(harvested, tmp_path)
    out = _run(env, "sample", "--month", "2026-10", "--size", "100000", "--seed", "1")
    assert out.exit_code == 1
    assert "a sample of 100,000 rows cannot be drawn from" in out.output
    assert "Ask for --size" in out.output and "Traceback" not in out.output
    assert not list((tmp_path / "out").glob("*.pdf"))
    with db.sessions() as session:
        assert session.scalars(select(ReportRun)).first() is None
    usage = _run(env, "sample", "--month", "2026-10", "--size", "0", "--seed", "1")
    assert usage.exit_code == 2
    assert _run(env, "report", "--month", "2026-10", "--sample-size", "3").exit_code == 2
