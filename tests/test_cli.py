"""The command line as a compliance officer meets it: help, settings, clear errors."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reporting.cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=lambda p: " ".join(p))
def test_every_command_explains_itself(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help and len(command.help.strip()) > 20, f"{' '.join(path)} needs help text"


def test_config_redacts_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEETAUDIT_WEBEX_TOKEN", "tok-very-secret-123")
    monkeypatch.setenv(
        "MEETAUDIT_DATABASE_URL", "postgresql://auditor:pw-very-secret@db.example/meetaudit"
    )
    monkeypatch.setenv("MEETAUDIT_WEBEX_CLIENT_SECRET", "cs-very-secret")
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 0, result.output
    assert "very-secret" not in result.output
    assert "auditor:***@db.example" in result.output
    assert 'webex_token = "***"' in result.output


@pytest.mark.parametrize("parameter", ["password", "PASSWORD", "sslpassword"])
def test_a_password_given_as_a_url_parameter_is_hidden_too(
    monkeypatch: pytest.MonkeyPatch, parameter: str
) -> None:
    # libpq also takes the password from the query string; it must be hidden there as well.
    url = f"postgresql://auditor@127.0.0.1:9/meetaudit?sslmode=disable&{parameter}=pw-very-secret"
    monkeypatch.setenv("MEETAUDIT_DATABASE_URL", url)
    monkeypatch.setenv("MEETAUDIT_WEBEX_TOKEN", "t0ken-value")
    for args in (["config"], ["gaps"], ["harvest", "--month", "2026-10"]):
        result = CliRunner().invoke(cli, args)
        assert "very-secret" not in result.output, (args, result.output)
    assert f"{parameter}=***" in CliRunner().invoke(cli, ["config"]).output
    assert "sslmode=disable" in CliRunner().invoke(cli, ["config"]).output


def test_settings_file_and_environment(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "meetaudit.toml"
    config.write_text(
        'org_name = "Acme AG"\norg_domains = ["Acme.example"]\ntimezone = "Europe/Zurich"\n'
    )
    monkeypatch.setenv("MEETAUDIT_TIMEZONE", "Europe/Berlin")
    result = CliRunner().invoke(cli, ["--config", str(config), "config"])
    assert result.exit_code == 0, result.output
    assert 'org_name = "Acme AG"' in result.output
    assert 'org_domains = ["acme.example"]' in result.output
    assert 'timezone = "Europe/Berlin"' in result.output  # the environment wins over the file


def test_bad_setting_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEETAUDIT_TIMEZONE", "Mars/Olympus")
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 1
    assert "unknown time zone 'Mars/Olympus'" in result.output
    assert "Traceback" not in result.output


def test_dead_database_is_one_clear_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Port 9 on loopback: nothing listens there, the connection is refused at once.
    monkeypatch.setenv(
        "MEETAUDIT_DATABASE_URL", "postgresql://auditor:pw-secret@127.0.0.1:9/meetaudit"
    )
    monkeypatch.setenv("MEETAUDIT_WEBEX_TOKEN", "t0ken-value")
    result = CliRunner().invoke(cli, ["harvest", "--month", "2026-10"])
    assert result.exit_code == 1
    assert (
        "cannot connect to PostgreSQL at postgresql+psycopg://auditor:***@127.0.0.1:9/meetaudit"
        in result.output
    )
    assert "pw-secret" not in result.output and "Traceback" not in result.output


def test_harvest_without_a_token_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("MEETAUDIT_DATABASE_URL", database_url)
    for name in (
        "MEETAUDIT_WEBEX_TOKEN",
        "MEETAUDIT_WEBEX_TOKEN_FILE",
        "MEETAUDIT_WEBEX_REFRESH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["harvest", "--month", "2026-10"])
    assert result.exit_code == 1
    assert "no Webex access token" in result.output and "meetaudit demo" in result.output


def test_month_must_be_a_month(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("MEETAUDIT_DATABASE_URL", database_url)
    monkeypatch.setenv("MEETAUDIT_WEBEX_TOKEN", "t0ken-value")
    result = CliRunner().invoke(cli, ["harvest", "--month", "October"])
    assert result.exit_code == 2  # a usage mistake
    assert "'October' is not a month; write it as YYYY-MM" in result.output


def test_db_status_and_upgrade(monkeypatch: pytest.MonkeyPatch, empty_database_url: str) -> None:
    monkeypatch.setenv("MEETAUDIT_DATABASE_URL", empty_database_url)
    status = CliRunner().invoke(cli, ["db", "status"])
    assert status.exit_code == 0, status.output
    assert "empty database" in status.output and "meetaudit db upgrade" in status.output
    upgraded = CliRunner().invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    again = CliRunner().invoke(cli, ["db", "status"])
    assert "Run `meetaudit db upgrade`" not in again.output


def test_readme_documents_every_export_column() -> None:
    from pathlib import Path

    from reporting.report.exports import MEETING_COLUMNS, RECONCILIATION_COLUMNS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for columns in (RECONCILIATION_COLUMNS, MEETING_COLUMNS):
        assert "`" + "`, `".join(columns) + "`" in readme


def test_readme_documents_every_setting() -> None:
    from pathlib import Path

    from reporting.config import Settings

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    undocumented = [name for name in Settings.model_fields if name.upper() not in readme]
    assert not undocumented, f"add these settings to the README's table: {undocumented}"


def test_a_mistyped_setting_is_named_with_the_likely_one(tmp_path: Path) -> None:
    config = tmp_path / "meetaudit.toml"
    config.write_text('org_nmae = "Acme"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "config"])
    assert result.exit_code == 1
    assert "unknown setting 'org_nmae' (did you mean org_name?)" in result.output
    assert "Traceback" not in result.output


def test_token_characters_are_checked_not_crashed_on(tmp_path: Path) -> None:
    from reporting.config import load_settings
    from reporting.errors import ConfigError

    bom = tmp_path / "bom.tok"
    bom.write_bytes("\ufeffabc-123\r\n".encode())
    assert load_settings(webex_token_file=bom).access_token() == "abc-123"
    dash = load_settings(webex_token="abc\u2011123")
    with pytest.raises(ConfigError, match=r"characters a token cannot have \(U\+2011\)") as caught:
        dash.access_token()
    assert "abc" not in str(caught.value)  # the secret is never shown
    binary = tmp_path / "bin.tok"
    binary.write_bytes(b"\xff\xfe\x00x")
    with pytest.raises(ConfigError, match="is not text"):
        load_settings(webex_token_file=binary).access_token()


@pytest.mark.parametrize("month", ["26-1", "2026-13", "9999-12", "0001-01", "2026-1", "october"])
def test_a_month_that_is_not_yyyy_mm_is_refused(month: str) -> None:
    result = CliRunner().invoke(cli, ["harvest", "--month", month, "--dry-run"],
                                env={"MEETAUDIT_WEBEX_TOKEN": "x"})  # fmt: skip
    assert result.exit_code == 2  # a usage mistake
    assert "is not a month; write it as YYYY-MM" in result.output
    assert "Traceback" not in result.output


def test_settings_file_problems_name_the_file(tmp_path: Path) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text('timezon = "Europe/Zurich"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(typo), "config"])
    assert result.exit_code == 1
    assert f"{typo} has an unknown setting 'timezon' (did you mean timezone?)" in result.output
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    result = CliRunner().invoke(cli, ["--config", str(binary), "config"])
    assert result.exit_code == 1 and "is not text (UTF-8)" in result.output


def test_a_misspelt_environment_variable_is_warned_about() -> None:
    result = CliRunner().invoke(cli, ["config"], env={"MEETAUDIT_TIMEZON": "Europe/Zurich"})
    assert result.exit_code == 0
    assert (
        "Warning: ignoring MEETAUDIT_TIMEZON: not a meetaudit setting "
        "(did you mean MEETAUDIT_TIMEZONE?)" in result.stderr
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--month", ""], "--month is empty"),
        (["--month", "26-1"], "is not a month"),
        (["--from", "0001-01-01", "--to", "2026-01-02"], "--from 0001-01-01 is not a date"),
        (["--from", "2026-01-01", "--to", "9999-12-31"], "--to 9999-12-31 is not a date"),
        (["--from", "2998-01-01", "--to", "2998-01-02"], "the window starts in the future"),
        (
            ["--from", "2026-10-20", "--to", "2026-10-10"],
            "the harvest window ends before it starts",
        ),
    ],
)
def test_a_harvest_window_mistake_is_a_usage_error_before_any_request(
    monkeypatch: pytest.MonkeyPatch, args: list[str], words: str
) -> None:
    # A typo must not ask Webex about 740,000 days, nor end in a traceback (year 9999).
    monkeypatch.setenv("MEETAUDIT_DATABASE_URL", "postgresql://auditor@127.0.0.1:9/meetaudit")
    monkeypatch.setenv("MEETAUDIT_WEBEX_TOKEN", "t0ken-value")
    monkeypatch.setenv("MEETAUDIT_TIMEZONE", "America/New_York")
    result = CliRunner().invoke(cli, ["harvest", "--dry-run", *args])
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
