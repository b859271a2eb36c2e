"""``meetaudit db roles``: set up the owner, writer and reader roles (see :mod:`reporting.db.roles`)."""

from __future__ import annotations

from pathlib import Path

import click

from reporting.cli import State, handle_errors, open_database
from reporting.errors import ConfigError

pass_state = click.make_pass_decorator(State)


def _read_password(role: str, path: Path) -> str:
    try:
        password = path.read_text(encoding="utf-8-sig").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the password file {path} for {role}: {exc.strerror}"
        ) from exc
    if not password:
        raise ConfigError(f"the password file {path} for {role} is empty")
    return password


@click.command("roles")
@click.option(
    "--owner",
    default="meetaudit_owner",
    show_default=True,
    help="Role that owns the tables and runs `meetaudit db upgrade`.",
)
@click.option(
    "--writer",
    default="meetaudit_writer",
    show_default=True,
    help="Role for harvest, report, monthly and verify: appends to the ledger, never changes it.",
)
@click.option(
    "--reader",
    default="meetaudit_reader",
    show_default=True,
    help="Role that may read every table and change nothing.",
)
@click.option(
    "--prompt-passwords",
    is_flag=True,
    help="Ask for each role's password (typed twice, never shown).",
)
@click.option(
    "--password-file",
    "password_files",
    multiple=True,
    metavar="ROLE=FILE",
    help="Set ROLE's password from FILE (its text, surrounding spaces and line breaks ignored); repeat for several roles.",
)
@pass_state
@handle_errors
def db_roles(
    state: State,
    owner: str,
    writer: str,
    reader: str,
    prompt_passwords: bool,
    password_files: tuple[str, ...],
) -> None:
    """Create the owner, writer and reader roles and give each only what it needs (run as the
    PostgreSQL administrator; safe to run again, and run it again after `db upgrade`).

    Day to day, meetaudit then connects as the writer, which can add ledger entries but not
    change, delete or truncate them, nor disable or drop the trigger that protects them.
    Passwords are never printed; they reach the server only as SCRAM-SHA-256 verifiers.
    """
    from reporting.db.roles import RoleNames, set_up_roles

    names = RoleNames(owner, writer, reader)
    passwords: dict[str, str] = {}
    for item in password_files:
        role, sep, file = item.partition("=")
        if not sep or role not in names.all():
            raise click.UsageError(
                f"--password-file takes ROLE=FILE with ROLE one of {', '.join(names.all())}"
            )
        passwords[role] = _read_password(role, Path(file))
    if prompt_passwords:
        for role in names.all():
            if role not in passwords:
                passwords[role] = click.prompt(
                    f"Password for {role}", hide_input=True, confirmation_prompt=True
                )
    with open_database(state.settings()) as db:
        with db.engine.begin() as conn:
            done = set_up_roles(conn, names, passwords)
        from sqlalchemy.engine import make_url

        url = make_url(db.url)
    click.echo(f"Roles set up in database {url.database} ({db.display_url}):")
    for line in done:
        click.echo(f"  {line}")
    as_writer = url.set(drivername="postgresql", username=writer, password=None)
    as_owner = url.set(drivername="postgresql", username=owner, password=None)
    click.echo("Day to day (harvest, report, monthly, verify), connect as the writer:")
    click.echo(f"  MEETAUDIT_DATABASE_URL={as_writer.render_as_string(hide_password=True)}")
    click.echo("Schema upgrades only, as the owner:")
    click.echo(
        f"  MEETAUDIT_DATABASE_URL={as_owner.render_as_string(hide_password=True)} meetaudit db upgrade"
    )
