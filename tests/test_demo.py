"""A newcomer's first run: `meetaudit demo`, then checking its report with `--demo verify`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reporting.cli import cli


@pytest.mark.slow
def test_demo_writes_a_report_the_ledger_vouches_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh data directory: the demo must start its own embedded PostgreSQL from nothing.
    monkeypatch.setenv("MEETAUDIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEETAUDIT_OUTPUT_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("MEETAUDIT_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/never-used")
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--log-format", "plain", "demo", "--meetings", "6", "--participants", "5"]
    )
    assert result.exit_code == 0, result.output
    pdf = (
        tmp_path
        / "reports"
        / next(p.name for p in (tmp_path / "reports").glob("meetaudit-demo-*.pdf"))
    )
    assert f"Report: {pdf}" in result.output or str(pdf.name) in result.output
    assert "COMPLETE" in result.output
    assert pdf.read_bytes().startswith(b"%PDF-")

    verified = runner.invoke(cli, ["--demo", "verify", str(pdf), "--ledger"])
    assert verified.exit_code == 0, verified.output
    assert "OK:" in verified.output and "unaltered" in verified.output

    tampered = tmp_path / "tampered.pdf"
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    rejected = runner.invoke(cli, ["--demo", "verify", str(tampered)])
    assert rejected.exit_code == 4, rejected.output
    assert "FAILED" in rejected.output

    # The demo never touched the configured database (it does not even exist).
    orgs = runner.invoke(cli, ["--demo", "investigate", "orgs", "--format", "csv"])
    assert orgs.exit_code == 0, orgs.output
    assert "external" in orgs.output
