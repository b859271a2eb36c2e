"""``meetaudit db views``: who may read the analysts' SQL views (see :mod:`reporting.db.views`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reporting.cli import State, handle_errors, open_database

if TYPE_CHECKING:  # loaded only when a command runs: `meetaudit --help` stays quick
    from sqlalchemy import Connection

    from reporting.config import Settings

pass_state = click.make_pass_decorator(State)


@click.group("views")
def views_group() -> None:
    """SQL views for analysts: grant a read-only database role access to them, and nothing else.

    The views (names beginning analyst_) show meetings, attendances, join sessions, the report's
    reconciliation rows and organisations, with phone numbers masked; see the README.
    """


def _store(conn: Connection, settings: Settings) -> None:
    """Copy the organisation's own name, domains and orgIds where the views read them."""
    from reporting.db.views import store_view_settings

    store_view_settings(conn, settings.org_name, settings.org_domains, settings.org_ids,
                        settings.timezone, settings.min_attendance_minutes)  # fmt: skip


def _echo_settings(settings: Settings) -> None:
    domains = ", ".join(settings.org_domains) or "none"
    ids = ", ".join(settings.org_ids) or "none"
    click.echo(
        f"The views count as internal ({settings.org_name}): email domains {domains}; "
        f"Webex orgIds {ids}; months in {settings.timezone}."
    )
    if not settings.org_domains and not settings.org_ids:
        click.echo("Warning: no own domains or orgIds are configured, so nobody is internal.")


@views_group.command("grant")
@click.argument("role")
@click.option(
    "--unmasked-phones",
    is_flag=True,
    help="Also let ROLE read phone numbers in full (analyst_join_sessions_unmasked). "
    "Without it, ROLE sees them with the last two digits hidden, and loses any earlier "
    "access to the full numbers.",
)
@pass_state
@handle_errors
def views_grant(state: State, role: str, unmasked_phones: bool) -> None:
    """Let the database role ROLE read the analysts' views, and nothing else.

    ROLE must already exist (the database administrator creates it). It gets the right to read
    the views only: not the tables behind them, and no right to change anything. Run as the
    PostgreSQL administrator or the owner of meetaudit's tables; safe to run again, and run it
    again after `meetaudit db upgrade`. Also stores the organisation's own domains and orgIds
    from these settings, which the views classify people by.
    """
    from reporting.db.views import grant_views

    settings = state.settings()
    with open_database(settings) as db:
        with db.engine.begin() as conn:
            granted = grant_views(conn, role, unmasked_phones=unmasked_phones)
            _store(conn, settings)
    click.echo(f"The role {role} may now read these views, and change nothing:")
    for view in granted.views:
        click.echo(f"  {view}")
    if granted.unmasked:
        click.echo(f"Phone numbers in full, too: {', '.join(granted.unmasked)}")
    else:
        click.echo("Phone numbers are shown with their last two digits hidden.")
    if granted.also_reads:
        click.echo(
            f"Note: {role} can also read meetaudit's tables through other grants "
            f"({', '.join(granted.also_reads)}), phone numbers in full included. Grant analysts "
            "a role of their own if they should see the views only."
        )
    _echo_settings(settings)


@views_group.command("revoke")
@click.argument("role")
@pass_state
@handle_errors
def views_revoke(state: State, role: str) -> None:
    """Take the analysts' views away from the database role ROLE (the role itself stays)."""
    from reporting.db.views import revoke_views

    with open_database(state.settings()) as db:
        with db.engine.begin() as conn:
            before = revoke_views(conn, role)
    if before:
        click.echo(f"The role {role} can no longer read: {', '.join(before)}")
    else:
        click.echo(f"The role {role} could not read any of the views; nothing to take away.")


@views_group.command("settings")
@pass_state
@handle_errors
def views_settings(state: State) -> None:
    """Store the organisation's own name, domains and orgIds where the views read them.

    The views cannot read meetaudit's settings, so they classify people by a copy; run this
    after changing org_name, org_domains, org_ids or timezone (`grant` does it too).
    """
    settings = state.settings()
    with open_database(settings) as db:
        with db.engine.begin() as conn:
            _store(conn, settings)
    _echo_settings(settings)
