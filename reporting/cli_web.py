"""``meetaudit serve`` and ``meetaudit users …``: the web console and its local accounts."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

import click

from reporting.cli import cli, handle_errors, open_database, pass_state
from reporting.errors import ConfigError


@cli.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; keep the default behind a reverse proxy with TLS.",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Proxies whose X-Forwarded-For/-Proto headers are believed (the access log "
              "records the client address they give).")  # fmt: skip
@pass_state
@handle_errors
def serve_cmd(state: Any, host: str, port: int, forwarded_allow_ips: str) -> None:
    """Serve the compliance console in a browser: overview, reports, verification, gaps,
    investigations and the access log, for officers, auditors, investigators and admins.

    With --demo (`meetaudit --demo serve`) it serves the demo's records and prints a one-time
    password for the account `admin`, new at every start.
    """
    import uvicorn

    from reporting.db.engine import Database
    from reporting.web.app import create_app

    settings = state.settings()
    with open_database(settings):  # creates or upgrades the schema first
        pass
    db = Database.from_settings(settings)
    if state.demo:
        password = secrets.token_urlsafe(12)
        _demo_admin(db, password)
        click.echo("Demo console: sign in as  admin  with the one-time password:")
        click.echo(f"    {password}")
    click.echo(f"Serving the console on http://{host}:{port}/  (Ctrl-C stops it)")
    uvicorn.run(
        create_app(settings, db),
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level="warning",
    )


def _demo_admin(db: Any, password: str) -> None:
    """(Re)create the demo's `admin` account with a new password; old sessions end."""
    from sqlalchemy import delete

    from reporting.db.models import WebUser
    from reporting.web import accounts

    with db.session() as session:
        session.execute(delete(WebUser).where(WebUser.name == "admin"))
        accounts.add_user(session, "admin", "admin", password, by="meetaudit demo")


@cli.group("users")
def users_group() -> None:
    """Local accounts of the web console (`meetaudit serve`), each with one role.

    Roles: officer (harvests, reports, gaps), auditor (reports, ledger, verification, access
    log; no personal search), investigator (searches within a case), admin (accounts, access
    log).
    """


@users_group.command("add")
@click.argument("name")
@click.option("--role", required=True,
              type=click.Choice(["officer", "auditor", "investigator", "admin"]),
              help="What the account may do.")  # fmt: skip
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the password from this file (first line) instead of asking for it.",
)
@pass_state
@handle_errors
def users_add(state: Any, name: str, role: str, password_file: Path | None) -> None:
    """Create the account NAME with a password (asked twice, never shown; 12 characters or
    more), stored as an Argon2id hash."""
    from reporting.web import accounts

    if password_file is not None:
        lines = password_file.read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        raise ConfigError("give the password with --password-file, or run this on a terminal")
    settings = state.settings()
    with open_database(settings) as db, db.session() as session:
        user = accounts.add_user(session, name, role, password, by=settings.operator)
        click.echo(f"Account {user.name} created with role {user.role}.")


@users_group.command("list")
@pass_state
@handle_errors
def users_list(state: Any) -> None:
    """Every account: role, created, last sign-in, state."""
    from reporting.web import accounts

    settings = state.settings()
    with open_database(settings) as db, db.session() as session:
        for u in accounts.list_users(session):
            last = f"{u.last_login_at:%Y-%m-%d %H:%M} UTC" if u.last_login_at else "never"
            status = "disabled" if u.disabled else "active"
            click.echo(f"{u.name:<24} {u.role:<13} last sign-in {last:<22} {status}")


@users_group.command("disable")
@click.argument("name")
@pass_state
@handle_errors
def users_disable(state: Any, name: str) -> None:
    """Disable the account NAME: it can no longer sign in, and its sessions end."""
    from reporting.web import accounts

    settings = state.settings()
    with open_database(settings) as db, db.session() as session:
        accounts.set_disabled(session, name, True)
        click.echo(f"Account {name} disabled; its sessions ended.")


@users_group.command("token")
@click.argument("name")
@click.option("--label", default="script", show_default=True, help="What the token is for.")
@pass_state
@handle_errors
def users_token(state: Any, name: str, label: str) -> None:
    """Make a personal API token for the account NAME, for scripts using /api/v1 with
    `Authorization: Bearer TOKEN`. It is shown once: keep it like a password. The account's role
    and the access log apply to everything done with it."""
    from reporting.web import accounts

    settings = state.settings()
    with open_database(settings) as db, db.session() as session:
        token = accounts.new_api_token(session, name, label)
    click.echo(f"API token for {name} ({label}), shown this once:")
    click.echo(f"    {token}")


@users_group.command("revoke-tokens")
@click.argument("name")
@pass_state
@handle_errors
def users_revoke_tokens(state: Any, name: str) -> None:
    """Revoke every API token of the account NAME."""
    from reporting.web import accounts

    settings = state.settings()
    with open_database(settings) as db, db.session() as session:
        count = accounts.revoke_api_tokens(session, name)
    click.echo(f"{count} API token(s) of {name} revoked.")
