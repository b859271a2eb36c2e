"""The ledger head lives outside the database too: the attacks of whoever administers it.

Every report publishes the new ledger head to a witness (a file, a folder, syslog; with an RFC 3161
timestamp when a TSA is configured). ``verify --ledger`` holds the chain against it: each attack
below — done as a superuser with raw SQL, switching the append-only trigger off to tamper and on
again to hide it — ends in exit status 4 with a message an auditor understands. JSON reports keep
the tests fast; the ledger treats every format alike.
"""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.report import generate_report
from reporting.report.ledger import entry_hash
from reporting.report.witness import Head, token_facts
from tests.report.conftest import OCT, build_known_month, known_settings
from tests.report.test_outputs import entries, meetaudit
from tests.tsa import running_tsa


@pytest.fixture
def known(db: Database, settings: Settings) -> Settings:
    """The known month stored; its settings (the witness goes under ``tmp_path/data``)."""
    build_known_month(db)
    return known_settings(settings, timezone="UTC")


@pytest.fixture
def env(known: Settings, database_url: str) -> dict[str, str | None]:
    """The environment that makes the ``meetaudit`` command use the known month's settings."""
    names = ("data_dir", "output_dir", "org_name", "operator")
    return {
        "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_SIGNING_KEY_FILE": None,
        "MEETAUDIT_TSA_URL": None,
        "MEETAUDIT_LEDGER_WITNESS": None,
        "MEETAUDIT_LEDGER_WITNESS_SYSLOG": None,
        "MEETAUDIT_DATABASE_URL": database_url,
        "MEETAUDIT_ORG_DOMAINS": ",".join(known.org_domains),
        "MEETAUDIT_ORG_IDS": ",".join(known.org_ids),
        "MEETAUDIT_TIMEZONE": "UTC",
        **{f"MEETAUDIT_{n.upper()}": str(getattr(known, n)) for n in names},
    }


DISABLE = "ALTER TABLE report_runs DISABLE TRIGGER report_runs_append_only"
ENABLE = "ALTER TABLE report_runs ENABLE TRIGGER report_runs_append_only"


def witness_file(settings: Settings) -> Path:
    """The default witness of the test database."""
    return next((settings.data_dir / "ledger-witness").glob("*.jsonl"))


def heads(path: Path) -> list[Head]:
    return [Head.from_json(line) for line in path.read_text().splitlines()]


def three_reports(db: Database, settings: Settings) -> list[Any]:
    return [
        generate_report(settings, db, OCT, label="2026-10", formats=("json",)) for _ in range(3)
    ]


def rewrite_and_recompute(db: Database, seq: int, **changes: Any) -> None:
    """The attack: change entry ``seq``, then recompute every hash from it on with meetaudit's own
    hash function, so the chain checks out again; the trigger is switched back on afterwards."""
    with db.engine.begin() as conn:
        conn.execute(text(DISABLE))
        rows = [
            dict(r._mapping) for r in conn.execute(text("SELECT * FROM report_runs ORDER BY seq"))
        ]
        prev = None
        for row in rows:
            if row["seq"] == seq:
                row.update(changes)
            if row["seq"] >= seq:
                row["prev_entry_sha256"] = prev
                new = entry_hash(row)
                conn.execute(
                    text(
                        "UPDATE report_runs SET file_sha256 = :f, control_totals = "
                        "CAST(:c AS jsonb), prev_entry_sha256 = :p, entry_sha256 = :e "
                        "WHERE seq = :s"
                    ),
                    {"f": row["file_sha256"], "c": json.dumps(row["control_totals"]),
                     "p": prev, "e": new, "s": row["seq"]},
                )  # fmt: skip
                row["entry_sha256"] = new
            prev = row["entry_sha256"]
        conn.execute(text(ENABLE))


def test_each_report_publishes_its_head_and_verify_holds_the_ledger_against_it(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    results = three_reports(db, known)
    published = heads(witness_file(known))
    rows = entries(db)
    assert [(h.seq, h.entry_sha256, h.report_id) for h in published] == [
        (r.seq, r.entry_sha256, r.report_id) for r in rows
    ]
    assert all(h.timestamp_token is None for h in published)  # no TSA configured
    assert f"  ledger head: entry 3, SHA-256 {rows[-1].entry_sha256}" in results[-1].lines()

    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 0, result.output
    assert "  append-only trigger: in place" in result.output
    assert "holds 3 head(s); every one is in the ledger, unchanged" in result.output

    ok = meetaudit(env, "verify", "--ledger", "--expect-head", rows[1].entry_sha256)
    assert ok.exit_code == 0, ok.output
    assert "expected head: entry 2 is in the ledger, unchanged; entries 3–3 were added" in ok.output


def test_with_a_tsa_every_head_carries_a_timestamp_over_its_hash(
    db: Database, known: Settings, env: dict[str, str | None], tmp_path: Path
) -> None:
    with running_tsa(tmp_path / "tsa") as tsa:
        url = tsa.url
        generate_report(known.model_copy(update={"tsa_url": url}), db, OCT, label="x",
                        formats=("json",))  # fmt: skip
    (head,) = heads(witness_file(known))
    assert tsa.requests == 1 and head.tsa_url == url
    imprint, when = token_facts(head.timestamp_token or "")
    assert imprint == head.entry_sha256 == entries(db)[0].entry_sha256
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 0, result.output
    assert f"timestamped {when:%Y-%m-%dT%H:%M:%SZ} by {url}" in result.output
    # Nothing pinned: the time is not called confirmed.
    assert "timestamps of 1 witnessed head(s) are not confirmed" in result.output
    # Pinned: only the TSA the verifier chose makes the time trusted.
    pinned = meetaudit({**env, "MEETAUDIT_TRUSTED_TSA_CERTS": str(tsa.root_pem)}, "verify",
                       "--ledger")  # fmt: skip
    assert pinned.exit_code == 0, pinned.output
    assert "signed by a time-stamping authority you trust" in pinned.output
    with running_tsa(tmp_path / "stranger", name="Stranger TSA") as stranger:
        other_root = stranger.root_pem
    untrusted = meetaudit({**env, "MEETAUDIT_TRUSTED_TSA_CERTS": str(other_root)}, "verify",
                          "--ledger")  # fmt: skip
    assert untrusted.exit_code == 4, untrusted.output
    assert "is NOT TRUSTED" in untrusted.output and "not a time-stamping authority you trust" in (
        untrusted.output
    )

    # A token swapped for one over another hash is caught.
    with running_tsa(tmp_path / "tsa2") as other_tsa:
        from reporting.report.witness import timestamp_token

        other = base64.b64encode(timestamp_token(other_tsa.url, "00" * 32)).decode()
    path = witness_file(known)
    path.write_text(path.read_text().replace(head.timestamp_token or "", other))
    forged = meetaudit(env, "verify", "--ledger")
    assert forged.exit_code == 4
    assert (
        "timestamp token of witnessed entry 1" in forged.output and "another hash" in forged.output
    )


def test_a_folder_witness_gets_one_file_per_head_and_syslog_gets_each_head(
    db: Database, known: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "worm"
    folder.mkdir()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as log:
        log.bind(("127.0.0.1", 0))
        log.settimeout(5)
        settings = known.model_copy(
            update={"ledger_witness": folder,
                    "ledger_witness_syslog": f"127.0.0.1:{log.getsockname()[1]}"}
        )  # fmt: skip
        for _ in range(2):
            generate_report(settings, db, OCT, label="2026-10", formats=("json",))
        messages = [log.recv(65536).decode() for _ in range(2)]
    rows = entries(db)
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{r.seq:010d}-{r.entry_sha256}.json" for r in rows
    ]
    for message, row in zip(messages, rows, strict=True):
        assert message.startswith("<") and "meetaudit[" in message
        assert f'"entry_sha256":"{row.entry_sha256}"' in message


def test_a_witness_that_cannot_be_written_fails_the_run_loudly_but_keeps_the_report(
    db: Database, known: Settings, env: dict[str, str | None], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {**env, "MEETAUDIT_LEDGER_WITNESS": str(blocker / "witness.jsonl")}
    result = meetaudit(env, "report", "--month", "2026-10", "--format", "json")
    assert result.exit_code == 1, result.output
    (row,) = entries(db)
    assert (
        "WITNESS FAILED: the head of entry 1 could not be written to the witness" in result.output
    )
    assert f"report {row.report_id.removesuffix('.json')} was written and recorded" in result.output
    assert f"note this head elsewhere now: entry 1, SHA-256 {row.entry_sha256}" in result.output
    assert Path(row.output_path).exists()


# -- the attacks --------------------------------------------------------------------------------


def test_rewriting_an_entry_to_a_tampered_files_hash_and_recomputing_the_chain_fails(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    results = three_reports(db, known)
    genuine = results[1].path
    tampered = genuine.with_name("tampered.json")
    tampered.write_bytes(genuine.read_bytes().replace(b'"Acme Corporation"', b'"Acme Corp"'))
    import hashlib

    rewrite_and_recompute(db, 2, file_sha256=hashlib.sha256(tampered.read_bytes()).hexdigest())
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 4, result.output
    assert "  hash chain: intact" in result.output  # the chain alone no longer shows it
    assert "the ledger was REWRITTEN" in result.output
    assert (
        "recorded entry 2 (" in result.output
        and "(and 1 more witnessed head(s) differ" in result.output
    )
    # The tampered file no longer verifies: the ledger it would rest on is the rewritten one.
    file_check = meetaudit(env, "verify", str(tampered))
    assert file_check.exit_code == 4, file_check.output
    assert "the ledger this verdict rests on cannot be trusted" in file_check.output
    assert f"FAILED: {tampered} cannot be confirmed" in file_check.output


def test_rewriting_control_totals_and_recomputing_the_chain_fails(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    three_reports(db, known)
    totals = dict(entries(db)[2].control_totals)
    totals["meetings"] += 1
    rewrite_and_recompute(db, 3, control_totals=totals)
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 4, result.output
    assert "the ledger was REWRITTEN" in result.output and "recorded entry 3 (" in result.output


def test_deleting_the_newest_entries_fails(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    three_reports(db, known)
    with db.engine.begin() as conn:
        conn.execute(text(DISABLE))
        conn.execute(text("DELETE FROM report_runs WHERE seq >= 2"))
        conn.execute(text(ENABLE))
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 4, result.output
    assert "the ledger is TRUNCATED: it ends at entry 1" in result.output
    assert "Entries 2–3 were deleted from the database" in result.output


def test_deleting_every_entry_fails(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    three_reports(db, known)
    with db.engine.begin() as conn:
        conn.execute(text(DISABLE))
        conn.execute(text("DELETE FROM report_runs"))
        conn.execute(text(ENABLE))
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 4, result.output
    assert "The report ledger is empty." in result.output
    assert "no report has been written yet" not in result.output
    assert "the ledger is EMPTY, but the witness" in result.output
    assert "every entry was deleted from the database" in result.output


def test_a_disabled_append_only_trigger_fails(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    three_reports(db, known)
    with db.engine.begin() as conn:
        conn.execute(text(DISABLE))
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 4, result.output
    assert "append-only trigger: MISSING OR DISABLED" in result.output
    assert (
        "(table report_runs) is disabled: the database no longer refuses changes" in result.output
    )
    with db.engine.begin() as conn:
        conn.execute(text(ENABLE.replace("ENABLE", "ENABLE REPLICA")))
    replica = meetaudit(env, "verify", "--ledger")
    assert replica.exit_code == 4 and "set to fire only on replicas" in replica.output


def test_a_dropped_append_only_trigger_fails(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    three_reports(db, known)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER report_runs_append_only ON report_runs"))
    result = meetaudit(env, "verify", "--ledger")
    assert result.exit_code == 4, result.output
    assert "report_runs_append_only on the ledger (table report_runs) is missing" in result.output


def test_a_head_noted_elsewhere_catches_what_a_removed_witness_cannot(
    db: Database, known: Settings, env: dict[str, str | None]
) -> None:
    three_reports(db, known)
    noted = entries(db)[-1].entry_sha256
    with db.engine.begin() as conn:
        conn.execute(text(DISABLE))
        conn.execute(text("DELETE FROM report_runs WHERE seq = 3"))
        conn.execute(text(ENABLE))
    witness_file(known).unlink()  # the attacker also controls the report host
    alone = meetaudit(env, "verify", "--ledger")
    assert alone.exit_code == 0, alone.output  # nothing left to compare with, but it says so
    assert "does not exist: entries 1–2 were written before it was set up" in alone.output
    result = meetaudit(env, "verify", "--ledger", "--expect-head", noted)
    assert result.exit_code == 4, result.output
    assert f"the head noted elsewhere, SHA-256 {noted}, is NOT in the ledger" in result.output
    bad = meetaudit(env, "verify", "--ledger", "--expect-head", "abc")
    assert bad.exit_code == 2 and "64 hexadecimal digits" in bad.output
