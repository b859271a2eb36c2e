"""A case dossier: the questions of a case asked again, as one PDF/A-3a in the report ledger.

One case is investigated on the known month through the real CLI (so the access log holds what
the commands record), data is harvested since, the case is closed, and one dossier is compiled
for the module; the tests look at it from every side.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import page as pdf_checker
import pikepdf
import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader
from sqlalchemy import select

from reporting.cli import cli
from reporting.db.engine import Database
from reporting.db.models import AccessLogEntry, ReportRun
from reporting.report import verify_file, verify_ledger
from reporting.report.assemble import stream_bytes
from reporting.report.signing import create_starter_keys
from reporting.report.trust import Pins, load_anchors
from tests.report.conftest import (
    HOSTILE_IMG,
    OWN_ORG_ID,
    RLO_NAME,
    _ts,
    add_run,
    build_known_month,
    device,
    meeting,
    person,
    store,
)

CASE = "INV-2026-014"
PURPOSE = f"Complaint about {HOSTILE_IMG} (HR-42)"


@dataclass
class Compiled:
    """The module's dossier and how it came about."""

    db: Database
    env: dict[str, str | None]
    result: Result
    path: Path
    questions: list[Result]


def _run(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def _env(database_url: str, tmp: Path) -> dict[str, str | None]:
    return {
        "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_DATABASE_URL": database_url,
        "MEETAUDIT_DATA_DIR": str(tmp / "data"),
        "MEETAUDIT_OUTPUT_DIR": str(tmp / "out"),
        "MEETAUDIT_ORG_NAME": "Acme Corporation",
        "MEETAUDIT_ORG_DOMAINS": "acme.example",
        "MEETAUDIT_ORG_IDS": OWN_ORG_ID,
        "MEETAUDIT_OPERATOR": "investigator-7@acme",
        "MEETAUDIT_REQUIRE_CASE": None,
        "MEETAUDIT_TIMEZONE": "UTC",
        "COLUMNS": "160",
    }


def _alice_again(db: Database) -> None:
    """A meeting harvested after the questions were asked, which Alice attended."""
    run = add_run(db)
    m5 = meeting("M5", "Follow-up", _ts(20, 10), _ts(20, 11), "hana.host@acme.example", "Hana")
    alice = person("p-alice-5", "M5", "Alice Ångström", "alice@acme.example",
                   [device(_ts(20, 10), _ts(20, 10, 40))])  # fmt: skip
    store(db, run, [m5], {"M5": ([alice], [])})


@pytest.fixture(scope="module")
def compiled(module_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    tmp = tmp_path_factory.mktemp("dossier")
    build_known_month(module_db)
    env = _env(module_db.engine.url.render_as_string(hide_password=False), tmp)
    opened = _run(env, "case", "open", CASE, "--purpose", PURPOSE)
    assert opened.exit_code == 0, opened.output
    questions = [
        _run(env, "investigate", "person", "alice@acme.example", "--case", CASE,
             "--month", "2026-10", "--format", "csv"),
        _run(env, "investigate", "meeting", "M4", "--case", CASE, "--format", "csv"),
        _run(env, "investigate", "orgs", "--case", CASE, "--from", "2026-10-01",
             "--to", "2026-10-31", "--format", "csv"),
    ]  # fmt: skip
    for q in questions:
        assert q.exit_code == 0, q.output
    _alice_again(module_db)
    closed = _run(env, "case", "close", CASE, "--note", "done")
    assert closed.exit_code == 0, closed.output
    result = _run(env, "case", "dossier", CASE)
    assert result.exit_code == 0, result.output
    path = Path(next(line.split()[1] for line in result.output.splitlines() if "PDF " in line))
    return Compiled(module_db, env, result, path, questions)


def _text(path: Path) -> str:
    reader = PdfReader(path)
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def _flat(text: str) -> str:
    """Text without white space: table cells wrap words anywhere."""
    return "".join(text.split())


def _attachments(path: Path) -> dict[str, bytes]:
    with pikepdf.open(path) as pdf:
        return {n: stream_bytes(s.get_file().obj) for n, s in pdf.attachments.items()}


def test_the_dossier_prints_each_question_and_its_answer_now(compiled: Compiled) -> None:
    text = _text(compiled.path)
    flat = _flat(text)
    assert "Investigation case dossier" in text
    for title in ("Meetings attended by", "Everyone in meeting", "Outside organisations"):
        assert _flat(title) in flat
    assert "alice@acme.example" in flat and "investigator-7@acme" in flat
    assert _flat("Quarterly controls review") in flat and "Follow-up" in flat  # person's rows
    assert "partner-org-42" in flat  # orgs answer (org ids are compared lower-cased)
    assert "investigateperson" in flat and "2026-10" in flat  # the question and its parameters


def test_a_count_that_changed_since_is_said_plainly(compiled: Compiled) -> None:
    flat = _flat(_text(compiled.path))
    # Alice's two participant records in M1 then; M5, harvested since, now too.
    assert _flat("The number of rows differs: 2 when it was asked, 3 now") in flat
    assert _flat("2 rows then, 3 now") in _flat(compiled.result.output)
    # The roster of M4 did not change: said so, not flagged.
    assert _flat("The same number of rows as when it was asked") in flat


def test_hostile_names_print_literally(compiled: Compiled) -> None:
    flat = _flat(_text(compiled.path))
    assert _flat(HOSTILE_IMG) in flat  # the case's purpose and a name in M4, as text
    assert "U+202E" in flat and _flat(RLO_NAME.replace("\u202e", "")) not in flat


def test_each_answer_is_attached_as_csv_with_every_row(compiled: Compiled) -> None:
    files = _attachments(compiled.path)
    assert sorted(files) == [
        "answer-01-person.csv", "answer-02-meeting.csv", "answer-03-orgs.csv", "manifest.json",
    ]  # fmt: skip
    person = list(csv.DictReader(io.StringIO(files["answer-01-person.csv"].decode())))
    assert sorted(r["meeting_id"] for r in person) == ["M1", "M1", "M5"]
    roster = list(csv.DictReader(io.StringIO(files["answer-02-meeting.csv"].decode())))
    assert len(roster) == 7 and HOSTILE_IMG in {r["display_name"] for r in roster}
    then = list(csv.DictReader(io.StringIO(compiled.questions[1].stdout)))
    assert roster == then  # the same answer as the CLI gave, the same way written
    manifest = json.loads(files["manifest.json"])
    assert manifest["case"]["ref"] == CASE
    assert [(q["rows_then"], q["rows_now"]) for q in manifest["questions"]] == [
        (2, 3), (7, 7), (manifest["questions"][2]["rows_then"],) * 2,
    ]  # fmt: skip


def test_the_dossier_is_in_the_ledger_and_verifies(compiled: Compiled) -> None:
    with compiled.db.session() as session:
        row = session.scalars(select(ReportRun).where(ReportRun.kind == "dossier")).one()
        assert row.report_id.startswith(f"DOS-{CASE}-")
        assert row.output_path == str(compiled.path.resolve())
        assert row.parameters["dossier"]["case"] == CASE
    check = verify_file(compiled.db, compiled.path)
    assert check.ok, check.lines()
    assert check.report_id == row.report_id
    verified = _run(compiled.env, "verify", str(compiled.path))
    assert verified.exit_code == 0, verified.output
    assert f"OK: {compiled.path} is report {row.report_id}" in verified.output
    ledger = verify_ledger(compiled.db)
    assert ledger.ok and row.report_id in "\n".join(ledger.lines())


def test_a_one_byte_change_fails_verification(compiled: Compiled, tmp_path: Path) -> None:
    data = bytearray(compiled.path.read_bytes())
    # In the XMP metadata: the rest of the file's objects sit in compressed object streams.
    at = data.index(b"<pdf:Producer>")
    data[at + 1] ^= 0x20
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(bytes(data))
    result = _run(compiled.env, "verify", str(changed))
    assert result.exit_code == 4, result.output
    assert "FAILED" in result.output


def test_the_dossier_is_pdfa_3a_and_pdfua_1(compiled: Compiled) -> None:
    """Tagged like the report, by the same assembler."""
    for profile in (pdf_checker.ValidationProfile.PDF_A_3A, pdf_checker.ValidationProfile.PDF_UA_1):
        result = pdf_checker.validate_pdf(str(compiled.path), profile=profile)
        assert result.is_compliant, (profile, [(f.rule_id, f.message) for f in result.failures])


def test_compiling_it_is_recorded_in_the_access_log_under_the_closed_case(
    compiled: Compiled,
) -> None:
    with compiled.db.session() as session:
        log = list(session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.seq)))
        row = session.scalars(select(ReportRun).where(ReportRun.kind == "dossier")).one()
    assert [e.question for e in log] == [
        "investigate person", "investigate meeting", "investigate orgs", "dossier",
    ]  # fmt: skip
    look = log[-1]
    assert look.case_ref == CASE and look.operator == "investigator-7@acme"
    assert look.parameters["dossier_id"] == row.report_id
    assert look.rows_returned == 3 + 7 + log[2].rows_returned
    assert f"access-log entry {look.seq}" in _text(compiled.path)


def test_an_unknown_case_is_a_clear_error(compiled: Compiled) -> None:
    result = _run(compiled.env, "case", "dossier", "NOPE-1")
    assert result.exit_code == 2, result.output
    assert "there is no case 'NOPE-1'" in result.output


def test_a_dossier_is_no_report_to_reproduce_or_compare(compiled: Compiled) -> None:
    with compiled.db.session() as session:
        dossier_id = session.scalars(select(ReportRun.report_id)).one()
    again = _run(compiled.env, "report", "--reproduce", dossier_id)
    assert again.exit_code == 1 and "not a report of a period" in again.output
    diff = _run(compiled.env, "report", "diff", dossier_id, dossier_id)
    assert diff.exit_code == 1 and "not a report of a period" in diff.output


def test_with_a_signing_certificate_the_dossier_is_signed(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    keys = create_starter_keys(tmp_path / "keys", org_name="Acme Corporation")
    build_known_month(db)
    env = {
        **_env(database_url, tmp_path),
        "MEETAUDIT_SIGNING_CERT_FILE": str(keys.signing_cert),
        "MEETAUDIT_SIGNING_KEY_FILE": str(keys.signing_key),
    }
    assert _run(env, "case", "open", "INV-9", "--purpose", "signed").exit_code == 0
    asked = _run(env, "investigate", "orgs", "--case", "INV-9", "--month", "2026-10")
    assert asked.exit_code == 0, asked.output
    result = _run(env, "case", "dossier", "INV-9", "-o", str(tmp_path / "dossier.pdf"))
    assert result.exit_code == 0, result.output
    path = tmp_path / "dossier.pdf"
    with db.session() as session:
        row = session.scalars(select(ReportRun)).one()
        assert row.parameters["signature"]["kind"].startswith("PAdES")
        assert row.parameters["unsigned_sha256"] != row.file_sha256
    pins = Pins(signers=load_anchors([str(keys.ca_cert)], setting="TRUSTED_CERTS"))
    check = verify_file(db, path, pins=pins)
    assert check.ok and check.signature == "valid", check.lines()
