"""Where report files go, and what finding them again looks like, as a compliance officer meets it.

An earlier report is evidence: no later run may replace it (not `report`, not `monthly`, not
`--reproduce`). `-o reports/` is a folder. `--format csv` writes both CSVs, each in the ledger.
`verify --ledger` lists the report ids. Ctrl-C leaves no half report and says what was kept.
Real PostgreSQL throughout; CSV where the PDF is not the point (rendering is the slow part).
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text

from reporting.cli import cli
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import ReportRun
from reporting.report import generate_report, verify_file
from reporting.report.api import ReportInterrupted, _claim
from reporting.report.exports import MEETING_COLUMNS, RECONCILIATION_COLUMNS
from reporting.report.signing import StarterKeys, create_starter_keys
from reporting.report.trust import Pins, load_anchors
from reporting.report.verify import LedgerEntry
from tests.factories import TOKEN
from tests.report.conftest import OCT, build_known_month, known_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def known(db: Database, settings: Settings) -> Settings:
    """The known month stored; its settings (reports go to ``tmp_path/reports``)."""
    build_known_month(db)
    return known_settings(settings, timezone="UTC")


@pytest.fixture
def env(known: Settings, database_url: str) -> dict[str, str | None]:
    """The environment that makes the ``meetaudit`` command use the known month's settings."""
    return {
        "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_SIGNING_KEY_FILE": None,
        "MEETAUDIT_DATABASE_URL": database_url,
        "MEETAUDIT_DATA_DIR": str(known.data_dir),
        "MEETAUDIT_OUTPUT_DIR": str(known.output_dir),
        "MEETAUDIT_ORG_NAME": known.org_name,
        "MEETAUDIT_ORG_DOMAINS": ",".join(known.org_domains),
        "MEETAUDIT_ORG_IDS": ",".join(known.org_ids),
        "MEETAUDIT_OPERATOR": known.operator,
        "MEETAUDIT_TIMEZONE": "UTC",
    }


def meetaudit(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-format", "plain", *args], env=env)


def entries(db: Database) -> list[ReportRun]:
    with db.sessions() as session:
        return list(session.scalars(select(ReportRun).order_by(ReportRun.seq)))


def files_in(folder: Path) -> set[str]:
    """Every file under ``folder`` (hidden temporary files too), relative names."""
    if not folder.exists():
        return set()
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def fingerprint(path: Path) -> tuple[int, int, bytes]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, path.read_bytes()


@pytest.fixture
def signing_keys(tmp_path: Path) -> StarterKeys:
    """A starter CA and signing certificate, as `meetaudit keys init` makes them."""
    return create_starter_keys(tmp_path / "keys", org_name="Acme")


# -- 1. verify --ledger lists the reports ------------------------------------------------------


def test_verify_ledger_lists_every_entry_then_the_verdict(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    for _ in range(2):
        generate_report(known, db, OCT, label="2026-10", formats=("csv",))
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = entries(db)
    assert len(rows) == 4  # two reports, two CSV files each
    verdict = lines.index("OK: report ledger of 4 entries")
    header = next(n for n, line in enumerate(lines) if "report id" in line)
    assert header < verdict
    for row, line in zip(rows, lines[header + 1 : verdict], strict=True):
        assert line.split()[:3] == [str(row.seq), row.report_id, "csv"]
        generated = row.generated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        for fact in (
            generated,
            "test-operator@ci",
            "2026-10 (UTC)",
            "INCOMPLETE",
            row.file_sha256[:12],
            "unchanged",
            row.output_path,
        ):
            assert fact in line, (fact, line)
    assert lines[verdict + 1 : verdict + 4] == [
        "  files, each at the place it was written: 4 unchanged",
        "  hash chain: intact",
        f"  head: entry 4, SHA-256 {rows[-1].entry_sha256}",
    ]


def test_verify_ledger_checks_every_recorded_file_where_it_was_written(
    db: Database, known: Settings, env: dict[str, str | None], tmp_path: Path
) -> None:
    json_files = [
        generate_report(known, db, OCT, label="2026-10", formats=("json",)).path for _ in range(2)
    ]
    generate_report(known, db, OCT, label="2026-10", formats=("csv",))
    moved, altered = json_files
    moved.rename(tmp_path / "archived.json")
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 0, "a file moved away is a warning, not a failure"
    lines = result.output.splitlines()
    rows = lines[next(n for n, line in enumerate(lines) if "report id" in line) + 1 :][:4]
    assert "not found" in rows[0] and all("unchanged" in row for row in rows[1:])
    assert "files, each at the place it was written: 3 unchanged, 1 not found" in result.output
    assert "warning: entry 1 (" in result.output and f"no longer at {moved}" in result.output
    assert "Not a failure: files get moved" in result.output
    assert "OK: report ledger of 4 entries" in lines

    with altered.open("ab") as fh:
        fh.write(b" ")
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 4, result.output
    lines = result.output.splitlines()
    assert "FAILED: report ledger of 4 entries" in lines
    assert "  hash chain: intact" in lines  # the ledger is fine; a file is not
    marked = [line for line in lines if line.startswith("!")]
    assert len(marked) == 1 and marked[0].split()[1] == "2" and "CHANGED" in marked[0]
    assert "problem: entry 2 (" in result.output
    assert f"the file at {altered} was CHANGED since it was written" in result.output


def test_a_broken_ledger_is_listed_with_the_bad_entry_marked_and_exits_4(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    for _ in range(2):
        generate_report(known, db, OCT, label="2026-10", formats=("json",))
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE report_runs DISABLE TRIGGER report_runs_append_only"))
        conn.execute(text("UPDATE report_runs SET generated_by = 'mallory' WHERE seq = 2"))
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 4, result.output
    marked = [line for line in result.output.splitlines() if line.startswith("!")]
    assert len(marked) == 1 and marked[0].split()[1] == "2" and "mallory" in marked[0]
    assert "FAILED: report ledger of 2 entries" in result.output
    assert "entry 2 (" in result.output and "altered" in result.output
    assert "head: entry 2" in result.output


def test_an_empty_ledger_says_so(env: dict[str, str | None]) -> None:
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 0, result.output
    assert "The report ledger is empty" in result.output
    assert "OK: report ledger of 0 entries" in result.output


def test_the_listed_period_reads_as_the_report_was_asked_for() -> None:
    zurich = dt.timezone(dt.timedelta(hours=2))  # October in Zurich, before the clocks change

    def period(start: dt.datetime, end: dt.datetime, zone: str = "Europe/Zurich") -> str:
        return LedgerEntry(
            1, "MAR-x", "csv", start, "t", start, end, zone, True, "0" * 64, "/x"
        ).period

    month = (dt.datetime(2026, 10, 1, tzinfo=zurich), dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    assert period(month[0], month[1] - dt.timedelta(hours=1)) == "2026-10 (Europe/Zurich)"
    days = (dt.datetime(2026, 10, 5, tzinfo=dt.UTC), dt.datetime(2026, 10, 12, tzinfo=dt.UTC))
    assert period(*days, "UTC") == "2026-10-05 to 2026-10-11 (UTC)"
    assert period(days[0], days[0] + dt.timedelta(days=1), "UTC") == "2026-10-05 (UTC)"
    hours = (
        dt.datetime(2026, 10, 5, 9, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 5, 17, tzinfo=dt.UTC),
    )
    assert period(*hours, "UTC") == "2026-10-05 09:00 to 2026-10-05 17:00 (UTC)"


# -- 2. an earlier report is never overwritten -------------------------------------------------


def test_a_second_report_to_the_same_name_is_written_beside_the_first(
    db: Database, env: dict[str, str | None], tmp_path: Path
) -> None:
    out = tmp_path / "audit"
    first = meetaudit(
        env, "report", "--month", "2026-10", "--format", "csv", "-o", str(out / "october.csv")
    )
    assert first.exit_code == 3, first.output  # written; the known month has a gap
    assert files_in(out) == {"october.csv", "october.meetings.csv"}
    before = {name: fingerprint(out / name) for name in files_in(out)}

    second = meetaudit(
        env, "report", "--month", "2026-10", "--format", "csv", "-o", str(out / "october.csv")
    )
    assert second.exit_code == 3, second.output
    new_id = entries(db)[-1].report_id.removesuffix(".meetings.csv")
    in_the_way = f"{out / 'october.csv'}, {out / 'october.meetings.csv'}"
    assert f"Not overwritten: {in_the_way} already exist and stay unchanged" in second.output
    assert files_in(out) == {
        "october.csv",
        "october.meetings.csv",
        f"october.{new_id}.csv",
        f"october.{new_id}.meetings.csv",
    }
    assert {name: fingerprint(out / name) for name in before} == before
    # The ledger records where each file really is, and every file verifies.
    assert [Path(r.output_path).name for r in entries(db)] == [
        "october.csv",
        "october.meetings.csv",
        f"october.{new_id}.csv",
        f"october.{new_id}.meetings.csv",
    ]
    verified = meetaudit(env, "verify", *(str(out / name) for name in sorted(files_in(out))))
    assert verified.exit_code == 0, verified.output


@pytest.mark.parametrize("in_the_way", ["october.json", "october.csv.p7s"])
def test_one_file_in_the_way_moves_the_whole_signed_set_beside_it(
    db: Database, known: Settings, tmp_path: Path, signing_keys: StarterKeys, in_the_way: str
) -> None:
    out = tmp_path / "audit"
    out.mkdir()
    (out / in_the_way).write_bytes(b"an earlier report: evidence\n")
    settings = known.model_copy(
        update={
            "signing_cert_file": signing_keys.signing_cert,
            "signing_key_file": signing_keys.signing_key,
        }
    )
    pins = Pins(signers=load_anchors([str(signing_keys.ca_cert)], setting="TRUSTED_CERTS"))
    result = generate_report(
        settings, db, OCT, label="2026-10", formats=("csv", "json"), output=out / "october.json"
    )
    rid = result.report_id
    assert result.not_overwritten == [out / in_the_way]
    assert (out / in_the_way).read_bytes() == b"an earlier report: evidence\n"
    written = {f"october.{rid}{end}" for end in (".csv", ".meetings.csv", ".json")}
    assert files_in(out) == {in_the_way} | written | {f"{name}.p7s" for name in written}
    for f in result.files:
        check = verify_file(db, f.path, pins=pins)
        assert check.ok and check.signature == "valid" and check.output_path == str(f.path)
    assert "Not overwritten" in "\n".join(result.lines())


def test_a_name_taken_at_the_last_moment_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another report may take the name between the check and the rename: never replace it."""
    taken = tmp_path / "october.pdf"
    taken.write_bytes(b"written by another run a moment ago")
    names = iter([taken, tmp_path / "october.MAR-x.pdf"])
    temp = tmp_path / ".tmp"
    temp.write_bytes(b"this run's report")
    assert _claim(temp, None, names, []) == tmp_path / "october.MAR-x.pdf"
    assert taken.read_bytes() == b"written by another run a moment ago"

    def no_hard_links(src: Any, dst: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)  # e.g. a FAT or SMB share
    temp.write_bytes(b"a third report")
    names = iter([taken, tmp_path / "october.MAR-x.pdf", tmp_path / "october.MAR-x.2.pdf"])
    assert _claim(temp, None, names, []) == tmp_path / "october.MAR-x.2.pdf"
    assert (tmp_path / "october.MAR-x.2.pdf").read_bytes() == b"a third report"
    assert taken.read_bytes() == b"written by another run a moment ago"
    assert (tmp_path / "october.MAR-x.pdf").read_bytes() == b"this run's report"


def test_a_reproduction_never_overwrites_either(db: Database, known: Settings) -> None:
    original = generate_report(known, db, OCT, label="2026-10", formats=("csv",))
    meetings = next(f for f in original.files if f.report_id.endswith(".meetings.csv"))
    kept = fingerprint(meetings.path)
    paths = []
    for output in (None, None, meetings.path):  # the last one names the original itself
        again = generate_report(
            known, db, None, label="x", reproduce=meetings.report_id, output=output
        )
        assert again.matches is True, "the meetings CSV reproduces byte for byte"
        paths.append(again.path)
    out = known.output_dir
    base_id = meetings.report_id.removesuffix(".meetings.csv")
    assert paths == [
        out / f"{base_id}.reproduced.meetings.csv",
        out / f"{base_id}.reproduced.2.meetings.csv",
        meetings.path.with_name(meetings.path.stem + ".2.csv"),
    ]
    assert fingerprint(meetings.path) == kept
    assert again.not_overwritten == [meetings.path]
    assert "Not overwritten" in "\n".join(again.lines())
    assert len(entries(db)) == 2  # a reproduction records nothing


def test_monthly_run_twice_keeps_the_first_report_and_succeeds(
    database_url: str, tmp_path: Path
) -> None:
    from reporting.webex.simulator import Simulator, generate_org, serve

    org = generate_org(seed=3, start=OCT.start, end=OCT.end, meetings=3, participants_per_meeting=3)
    out = tmp_path / "reports"
    with serve(Simulator(org, token=TOKEN)) as base_url:
        env: dict[str, str | None] = {
            "MEETAUDIT_CONFIG": None,
            "MEETAUDIT_SIGNING_KEY_FILE": None,
            "MEETAUDIT_DATABASE_URL": database_url,
            "MEETAUDIT_DATA_DIR": str(tmp_path / "d"),
            "MEETAUDIT_WEBEX_BASE_URL": base_url,
            "MEETAUDIT_WEBEX_TOKEN": TOKEN,
            "MEETAUDIT_WEBEX_TOKEN_FILE": None,
            "MEETAUDIT_WEBEX_REFRESH_TOKEN": None,
            "MEETAUDIT_ORG_DOMAINS": ",".join(org.domains),
            "MEETAUDIT_TIMEZONE": "UTC",
        }
        runs = [
            meetaudit(
                env,
                "monthly",
                "--month",
                "2026-10",
                "--format",
                "csv",
                "-o",
                str(out / "october.csv"),
            )
            for _ in range(2)
        ]
    assert [r.exit_code for r in runs] == [0, 0], runs[-1].output
    assert "Not overwritten" not in runs[0].output and "Not overwritten" in runs[1].output
    assert len(files_in(out)) == 4 and {"october.csv", "october.meetings.csv"} <= files_in(out)


# -- 3. -o reports/ is a folder ------------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder/", "existing-folder"])
def test_an_output_ending_in_a_separator_or_naming_a_folder_is_a_folder(
    db: Database, env: dict[str, str | None], tmp_path: Path, existing: bool
) -> None:
    folder = tmp_path / "x" / "newdir"
    if existing:
        folder.mkdir(parents=True)
    arg = str(folder) if existing else str(folder) + os.sep
    result = meetaudit(env, "report", "--month", "2026-10", "--format", "csv", "-o", arg)
    assert result.exit_code == 3, result.output
    rid = entries(db)[0].report_id.removesuffix(".csv")
    assert files_in(tmp_path / "x") == {
        f"newdir/meetaudit-2026-10-{rid}.csv",
        f"newdir/meetaudit-2026-10-{rid}.meetings.csv",
    }
    assert [Path(r.output_path).parent for r in entries(db)] == [folder.resolve()] * 2


# -- 4. --format csv writes both CSVs ------------------------------------------------------------


def test_csv_writes_the_reconciliation_and_the_meetings_file_each_in_the_ledger(
    db: Database, env: dict[str, str | None], tmp_path: Path
) -> None:
    target = tmp_path / "october.csv"
    result = meetaudit(env, "report", "--month", "2026-10", "--format", "csv", "-o", str(target))
    assert result.exit_code == 3, result.output
    meetings_file = tmp_path / "october.meetings.csv"
    with target.open(encoding="utf-8", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == RECONCILIATION_COLUMNS
    with meetings_file.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == MEETING_COLUMNS
    assert sorted(r["meeting_id"] for r in rows) == ["M1", "M2", "M3", "M4"]  # not September's
    assert {r["meeting_id"]: r["harvest_status"] for r in rows}["M3"] == "not_harvested"
    recon, meet = entries(db)
    assert recon.report_id.endswith(".csv") and not recon.report_id.endswith(".meetings.csv")
    assert meet.report_id == recon.report_id.removesuffix(".csv") + ".meetings.csv"
    assert (recon.format, meet.format) == ("csv", "csv")
    assert recon.parameters["export"] == "reconciliation.csv"
    assert meet.parameters["export"] == "meetings.csv"
    assert "meetings: one row per meeting" in result.output
    verified = meetaudit(env, "verify", str(meetings_file))
    assert verified.exit_code == 0, verified.output
    assert f"is report {meet.report_id}, unaltered" in verified.output


# -- 5. --reproduce takes the entry's own period and format ------------------------------------


@pytest.mark.parametrize(
    "extra",
    [["--month", "2026-09"], ["--from", "2026-09-01", "--to", "2026-10-01"], ["--format", "csv"]],
    ids=["month", "from-to", "format"],
)
def test_reproduce_with_a_period_or_format_is_a_usage_error(extra: list[str]) -> None:
    result = CliRunner().invoke(cli, ["report", "--reproduce", "MAR-2026-10-ABCD2345", *extra])
    assert result.exit_code == 2, result.output
    assert "--reproduce renders a ledger entry again with the period and format" in result.output


def test_reproducing_the_id_of_a_report_run_names_the_ids_of_its_files(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    run = generate_report(known, db, OCT, label="2026-10", formats=("csv",))
    recon, meetings = (f.report_id for f in run.files)
    for asked in (run.report_id, f"{run.report_id}.pdf"):
        result = meetaudit(env, "report", "--reproduce", asked)
        assert result.exit_code == 1, result.output
        message = " ".join(result.output.split())
        assert (
            f"the ledger has no report file with the id '{asked}'. Report {run.report_id} "
            "was written as 2 files, each with its own id:" in message
        )
        assert f"{recon} (reconciliation: one row per person per meeting)" in message
        assert f"{meetings} (meetings: one row per meeting)" in message
        assert f"meetaudit report --reproduce {recon}" in message
    unknown = " ".join(
        meetaudit(env, "report", "--reproduce", "MAR-2026-10-NOSUCH00").output.split()
    )
    assert "no report 'MAR-2026-10-NOSUCH00' in the ledger. `meetaudit verify --ledger`" in unknown


def test_a_reproduction_is_named_cleanly_and_explains_an_incomplete_past(
    db: Database, known: Settings
) -> None:
    original = generate_report(known, db, OCT, label="2026-10", formats=("json",))
    assert not original.complete  # M3 was never harvested
    again = generate_report(known, db, None, label="x", reproduce=original.files[0].report_id)
    assert again.matches is True
    assert again.path == known.output_dir / f"{original.report_id}.reproduced.json"
    text = "\n".join(again.lines())
    assert "INCOMPLETE, as the original was" in text
    assert "A reproduction shows the report as it was then, on purpose" in text
    assert "run meetaudit harvest" not in text  # that advice is for a new report
    assert "run meetaudit harvest" in "\n".join(original.lines())


# -- 6. Ctrl-C ---------------------------------------------------------------------------------


def _interrupt_on_call(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Ctrl-C while the ``call``-th file is being written (1: the first)."""
    from reporting.report import api

    real = api._write_output
    calls = iter(range(1, 100))

    def write(*args: Any, **kwargs: Any) -> int | None:
        result = real(*args, **kwargs)  # the temporary file is half there: then the signal
        if next(calls) == call:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(api, "_write_output", write)


def test_ctrl_c_before_any_file_is_finished_keeps_nothing_and_says_so(
    db: Database, known: Settings, env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    _interrupt_on_call(monkeypatch, 1)
    result = meetaudit(env, "report", "--month", "2026-10", "--format", "csv", "--format", "json")
    assert result.exit_code == 130, result.output
    assert (
        "stopped by the operator (Ctrl-C or a stop signal) while the report was being written: "
        "no report file was kept and nothing was recorded in the ledger" in result.output
    )
    assert "continue" not in result.output  # that is the harvest's wording
    assert files_in(known.output_dir) == set() and entries(db) == []


def test_ctrl_c_after_some_files_names_those_kept_and_nothing_else_is_left(
    db: Database, known: Settings, env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    _interrupt_on_call(monkeypatch, 3)  # the two CSVs are done, the JSON is being written
    result = meetaudit(env, "report", "--month", "2026-10", "--format", "csv", "--format", "json")
    assert result.exit_code == 130, result.output
    kept = entries(db)
    assert [Path(r.output_path).suffixes[-1] for r in kept] == [".csv", ".csv"]
    assert files_in(known.output_dir) == {Path(r.output_path).name for r in kept}
    for row in kept:
        assert f"{row.output_path} ({row.report_id})" in result.output.replace("\n", "")
    assert "Nothing of the other files was kept" in result.output


def test_ctrl_c_during_a_reproduction_keeps_nothing(
    db: Database, known: Settings, env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = generate_report(known, db, OCT, label="2026-10", formats=("json",))
    rid = original.files[0].report_id
    _interrupt_on_call(monkeypatch, 1)
    with pytest.raises(ReportInterrupted):  # still a KeyboardInterrupt, for any other caller
        generate_report(known, db, None, label="x", reproduce=rid)
    _interrupt_on_call(monkeypatch, 1)
    result = meetaudit(env, "report", "--reproduce", rid)
    assert result.exit_code == 130, result.output
    assert f"while re-rendering {rid}: no file was kept" in result.output
    assert files_in(known.output_dir) == {original.path.name}


@pytest.mark.slow
def test_a_real_ctrl_c_while_the_pdf_renders_leaves_no_file_and_no_entry(
    db: Database, known: Settings, env: dict[str, str | None], tmp_path: Path
) -> None:
    """SIGINT to the whole process group, as a terminal sends it: the render workers get it too."""
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("MEETAUDIT_")}
    process_env.update({k: v for k, v in env.items() if v is not None})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reporting",
            "--log-format",
            "json",
            "report",
            "--month",
            "2026-10",
            "-o",
            str(tmp_path / "out" / "october.pdf"),
        ],
        env=process_env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # As from a terminal, whatever SIGINT disposition the test run itself inherited.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    for line in process.stderr:
        if '"stage": "rendering"' in line:
            break
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1].startswith("Error: stopped by the operator")
    assert "no report file was kept and nothing was recorded in the ledger" in stderr
    assert files_in(tmp_path / "out") == set() and entries(db) == []
    assert "Traceback" not in stderr  # the render workers leave Ctrl-C to the main process


def test_a_place_that_cannot_be_written_is_refused_before_any_work(
    known: Settings, db: Database, env: dict[str, str | None], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    result = meetaudit(env, "report", "--month", "2026-10", "-o", str(blocker / "october.pdf"))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot write the report to {blocker}")
    assert "Nothing was written or recorded" in result.output and "Traceback" not in result.output
    assert entries(db) == []


def test_verify_says_when_a_file_is_empty_or_not_a_report(
    known: Settings, db: Database, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    picture = tmp_path / "photo.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert verify_file(db, empty).problems[-1].endswith("(the file is empty)")
    assert "not a PDF, CSV or JSON file" in verify_file(db, picture).problems[-1]


# -- 8. verify: what a file is, when the ledger records it more than once or not at all ----------


def test_identical_report_files_name_every_report_they_match(
    db: Database, known: Settings, env: dict[str, str | None], tmp_path: Path
) -> None:
    first, second = (
        generate_report(known, db, OCT, label="2026-10", formats=("csv",)) for _ in range(2)
    )
    a, b = first.files[0], second.files[0]
    assert a.sha256 == b.sha256  # unchanged data, identical reconciliation CSVs

    result = meetaudit(env, "verify", str(a.path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        lines[0] == f"OK: {a.path} is unaltered: its content is exactly that of 2 recorded "
        "report files, listed below (reports of unchanged data are identical)."
    )
    assert f"  - report {a.report_id} (this file is where it was written):" in lines
    assert f"  - report {b.report_id}:" in lines
    for f in (a, b):
        assert f"      written to {f.path}" in lines
    assert verify_file(db, a.path).report_id == a.report_id  # the one written here

    copy = tmp_path / "copy.csv"
    copy.write_bytes(a.path.read_bytes())
    check = verify_file(db, copy)
    assert check.ok and check.report_id is None and len(check.entries) == 2
    assert "cannot tell which of them this copy was made from" in "\n".join(check.lines())


def _attachments(pdf: Path) -> dict[str, bytes]:
    import pikepdf

    with pikepdf.open(pdf) as doc:
        return {name: f.get_file().read_bytes() for name, f in doc.attachments.items()}


def test_an_attachment_taken_out_of_a_pdf_is_not_called_altered(
    db: Database, known: Settings, env: dict[str, str | None], tmp_path: Path
) -> None:
    report = generate_report(known, db, OCT, label="2026-10", workers=1)
    attached = _attachments(report.path)
    for name, data in attached.items():
        (tmp_path / name).write_bytes(data)

    manifest = tmp_path / "manifest.json"
    result = meetaudit(env, "verify", str(manifest))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"OK: {manifest} is the manifest.json attached to report {report.report_id}, and what it "
        "says agrees with what the ledger recorded for that report."
    )
    assert "altered" not in result.output
    assert f"meetaudit verify {report.path}" in " ".join(result.output.split())

    # The ledger records each attachment's SHA-256: a genuine extracted CSV verifies on its own.
    reconciliation = tmp_path / "reconciliation.csv"
    result = meetaudit(env, "verify", str(reconciliation))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"OK: {reconciliation} is the reconciliation.csv attached to report {report.report_id} "
        f"({report.path}), unaltered."
    )
    assert "meetings.csv" in verify_file(db, tmp_path / "meetings.csv").verdict()
    changed = tmp_path / "changed.csv"
    changed.write_bytes(attached["reconciliation.csv"].replace(b"Bob Absent", b"Bob Present"))
    assert meetaudit(env, "verify", str(changed)).exit_code == 4

    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(attached["manifest.json"].replace(b'"meetings": 4', b'"meetings": 3'))
    assert tampered.read_bytes() != attached["manifest.json"]
    check = verify_file(db, tampered)
    assert not check.ok and check.manifest_differences == ["the control totals", "its SHA-256"]
    assert (
        check.verdict() == f"FAILED: {tampered} is a manifest of report {report.report_id}, "
        "but see below."
    )
