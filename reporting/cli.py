"""The ``meetaudit`` command: parse, build the dependencies, call one function, print a summary.

Errors from the library (:mod:`reporting.errors`) become one plain line on stderr and the
error's exit status; no traceback reaches a compliance officer.

Exit statuses: 0 done and complete · 1 error (nothing half-written) · 2 wrong usage ·
3 finished, but some meetings could not be fetched (gaps; see the report) · 4 verification failed.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError, OperationalError

from reporting import __version__
from reporting.config import Settings, load_settings
from reporting.db import migrate
from reporting.errors import DatabaseError, HarvestIncomplete, MeetauditError

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn meetaudit's errors into one line and an exit status."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MeetauditError as exc:
            _fail(str(exc), exc.exit_code)
        except (OperationalError, DBAPIError) as exc:
            orig = exc.orig if exc.orig is not None else exc
            first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
            _fail(f"the database failed: {first}. Nothing half-written was kept; run again.", 1)
        except KeyboardInterrupt:
            _fail("stopped by the operator. Complete meetings are kept; run the same command to continue.", 130)

    return wrapper  # type: ignore[return-value]


class State:
    """What the group options build, shared by every command."""

    def __init__(self, config: Path | None, log_format: str) -> None:
        self.config = config
        self.log_format = log_format

    def settings(self, **overrides: Any) -> Settings:
        """The effective settings (built on first use, so ``--help`` never needs them)."""
        return load_settings(self.config, **overrides)


@contextmanager
def open_database(settings: Settings, *, migrate_schema: bool = True) -> Iterator[Any]:
    """The configured (or embedded) database, migrated to the newest schema."""
    from reporting.db.engine import Database

    with Database.from_settings(settings) as db:
        db.check()
        if db.embedded_dir is not None:
            click.echo(f"Using the embedded PostgreSQL (data in {db.embedded_dir}).", err=True)
        if migrate_schema and not migrate.is_current(db.engine):
            migrate.upgrade(db.engine)
        yield db


pass_state = click.make_pass_decorator(State)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="meetaudit")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path, exists=True),
    envvar="MEETAUDIT_CONFIG",
    help="Settings file (TOML). Environment variables MEETAUDIT_* override it.",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "rich", "plain", "json"]),
    default="auto",
    show_default=True,
    help="How progress is shown: a live bar (rich), readable lines (plain), or JSON lines.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show diagnostic messages.")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, log_format: str, verbose: bool) -> None:
    """meetaudit: audit-grade records and reports of who attended your Webex meetings.

    Typical month: `meetaudit monthly --month 2026-10` harvests every finished meeting of
    October from Webex into the database, then writes the PDF report and records it in the
    report ledger. Try it without a Webex account: `meetaudit demo`.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    ctx.obj = State(config, log_format)


# -- settings and database ------------------------------------------------------------------


@cli.command("config")
@pass_state
@handle_errors
def config_cmd(state: State) -> None:
    """Show the effective settings (secrets shown as ***)."""
    for key, value in state.settings().redacted().items():
        click.echo(f"{key} = {json.dumps(value, ensure_ascii=False)}")


@cli.group("db")
def db_group() -> None:
    """Create or upgrade the database schema."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@pass_state
@handle_errors
def db_upgrade(state: State, revision: str) -> None:
    """Bring the database schema up to date (safe to run at any time)."""
    with open_database(state.settings(), migrate_schema=False) as db:
        migrate.upgrade(db.engine, revision)
        click.echo(f"Database {db.display_url} is at schema revision {migrate.current_revision(db.engine)}.")


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Confirm; downgrading to 'base' deletes every record.")
@pass_state
@handle_errors
def db_downgrade(state: State, revision: str, yes: bool) -> None:
    """Take the schema back to REVISION ('base' removes all tables and their records)."""
    if not yes:
        raise click.UsageError("downgrading can delete records; add --yes to confirm")
    with open_database(state.settings(), migrate_schema=False) as db:
        migrate.downgrade(db.engine, revision)
        click.echo(f"Database is at schema revision {migrate.current_revision(db.engine) or 'base'}.")


@db_group.command("status")
@pass_state
@handle_errors
def db_status(state: State) -> None:
    """Say which database is used and whether its schema is current."""
    with open_database(state.settings(), migrate_schema=False) as db:
        current, head = migrate.current_revision(db.engine), migrate.head_revision()
        click.echo(f"Database: {db.display_url}")
        click.echo(f"Schema revision: {current or 'none (empty database)'}; newest: {head}")
        if current != head:
            click.echo("Run `meetaudit db upgrade` to bring it up to date.")


# -- harvest -----------------------------------------------------------------------------------


def _window(settings: Settings, month: str | None, start: dt.datetime | None, end: dt.datetime | None) -> Any:
    from reporting.harvest import Window, month_window, previous_month

    if month and (start or end):
        raise click.UsageError("give either --month or --from/--to, not both")
    if start or end:
        if not (start and end):
            raise click.UsageError("--from and --to go together")
        zone = settings.zone
        return Window(
            start.replace(tzinfo=start.tzinfo or zone).astimezone(dt.UTC),
            end.replace(tzinfo=end.tzinfo or zone).astimezone(dt.UTC),
        )
    return month_window(month or previous_month(dt.datetime.now(dt.UTC), settings.zone), settings.zone)


def _print_harvest_summary(summary: Any) -> None:
    w = summary.window
    click.echo(
        f"Harvest run {summary.run_id}: {summary.status.upper()} — window "
        f"{w.start:%Y-%m-%d %H:%M} to {w.end:%Y-%m-%d %H:%M} UTC"
    )
    click.echo(
        f"  meetings listed {summary.meetings_listed}, stored now {summary.meetings_complete}, "
        f"already complete {summary.meetings_skipped}, not yet final {summary.meetings_unsettled}"
    )
    click.echo(
        f"  participants {summary.participants}, join sessions {summary.devices}, "
        f"invitees {summary.invitees}, changed since last harvest {summary.revisions}"
    )
    click.echo(
        f"  gaps {summary.gaps}, requests {summary.requests}, retries {summary.retries}, "
        f"rate-limit wait {summary.rate_limit_wait_seconds:.1f}s, elapsed {summary.elapsed_seconds:.1f}s"
    )


def run_harvest(state: State, settings: Settings, db: Any, window: Any, *, refresh: bool,
                dry_run: bool = False, transport: Any = None) -> Any:
    """Harvest ``window`` with progress shown; print the closing summary."""
    from reporting.harvest import Harvester
    from reporting.progress import HarvestProgress, choose_format

    with HarvestProgress(choose_format(state.log_format)) as progress:
        summary = Harvester(settings, db, on_event=progress, transport=transport).run(
            window, refresh=refresh, dry_run=dry_run
        )
    if dry_run:
        click.echo(
            f"Dry run: {summary.meetings_listed} ended meetings listed; "
            f"{summary.meetings_to_fetch} would be fetched, {summary.meetings_skipped} are already "
            f"complete, {summary.meetings_unsettled} ended too recently."
        )
        for line in summary.planned:
            click.echo(f"  {line}")
        return summary
    _print_harvest_summary(summary)
    return summary


_month_option = click.option("--month", metavar="YYYY-MM", help="Calendar month in the report time zone (default: last month).")
_from_option = click.option("--from", "start", type=click.DateTime(), help="Window start (inclusive), e.g. 2026-10-01.")
_to_option = click.option("--to", "end", type=click.DateTime(), help="Window end (exclusive), e.g. 2026-11-01.")


@cli.command("harvest")
@_month_option
@_from_option
@_to_option
@click.option("--refresh", is_flag=True, help="Fetch meetings again even if already stored complete.")
@click.option("--dry-run", is_flag=True, help="List what would be fetched; store nothing.")
@pass_state
@handle_errors
def harvest_cmd(state: State, month: str | None, start: dt.datetime | None, end: dt.datetime | None,
                refresh: bool, dry_run: bool) -> None:
    """Copy every finished Webex meeting of a period (participants, devices, invitees) into the database.

    Safe to repeat: meetings already stored completely are skipped, interrupted runs resume.
    Exit status 3 means some meetings could not be fetched; they are listed as gaps.
    """
    settings = state.settings()
    window = _window(settings, month, start, end)
    with open_database(settings) as db:
        summary = run_harvest(state, settings, db, window, refresh=refresh, dry_run=dry_run)
    if not dry_run and not summary.complete:
        raise HarvestIncomplete(
            f"{summary.gaps} gap(s) remain for this window (see `meetaudit gaps`); run the "
            "same command again later to fetch what is missing"
        )


@cli.command("gaps")
@_month_option
@_from_option
@_to_option
@pass_state
@handle_errors
def gaps_cmd(state: State, month: str | None, start: dt.datetime | None, end: dt.datetime | None) -> None:
    """List what could not be fetched for a period (and why), until a later harvest fetches it."""
    from reporting.harvest import open_gaps

    settings = state.settings()
    window = _window(settings, month, start, end)
    with open_database(settings) as db, db.session() as session:
        gaps = open_gaps(session, window)
        if not gaps:
            click.echo("No open gaps: every listed meeting of the period is stored completely.")
            return
        for gap in gaps:
            click.echo(
                f"{gap.occurred_at:%Y-%m-%d %H:%M} run {gap.harvest_run_id} {gap.scope} "
                f"{gap.meeting_id or ''} HTTP {gap.http_status or '-'} trackingId "
                f"{gap.tracking_id or '-'}: {gap.reason}"
            )
        sys.exit(3)


def main() -> None:
    """Entry point of the ``meetaudit`` console script."""
    cli(prog_name="meetaudit")
