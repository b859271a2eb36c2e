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
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reporting import __version__
from reporting.errors import (
    ConfigError,
    HarvestIncomplete,
    MeetauditError,
    PeriodError,
    QuestionError,
)
from reporting.periods import MOMENT_FORMATS

if TYPE_CHECKING:  # imported where used: `meetaudit --help` loads neither pydantic nor SQLAlchemy
    from reporting.config import Settings

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
        except (PeriodError, QuestionError) as exc:  # a mistyped period or question
            raise click.UsageError(str(exc)) from None
        except MeetauditError as exc:
            _fail(str(exc), exc.exit_code)
        except Exception as exc:
            from sqlalchemy.exc import DBAPIError  # OperationalError is one

            if not isinstance(exc, DBAPIError):
                raise
            orig = exc.orig if exc.orig is not None else exc
            first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
            _fail(f"the database failed: {first}. Nothing half-written was kept; run again.", 1)
        except KeyboardInterrupt:
            _fail(
                "stopped by the operator (Ctrl-C or a stop signal). Nothing half-written was "
                "kept; run the same command again to continue.",
                130,
            )

    return wrapper  # type: ignore[return-value]


DEMO_DATABASE = "meetaudit_demo"
DEMO_SETTINGS_FILE = "demo-settings.toml"
# The demo's ledger heads go to its own witness (under the data folder), never to yours.
_DEMO_WITNESS = {"ledger_witness": None, "ledger_witness_syslog": None}


class State:
    """What the group options build, shared by every command."""

    def __init__(self, config: Path | None, log_format: str, demo: bool = False) -> None:
        self.config = config
        self.log_format = log_format
        self.demo = demo

    def settings(self, **overrides: Any) -> Settings:
        """The effective settings (built on first use, so ``--help`` never needs them)."""
        from reporting.config import load_settings

        settings = load_settings(self.config, **overrides)
        if not self.demo:
            return settings
        demo_file = settings.data_dir / DEMO_SETTINGS_FILE
        if not demo_file.exists():
            raise ConfigError("there is no demo yet: run `meetaudit demo` first")
        demo = load_settings(demo_file, **overrides)
        # The demo's embedded database, never the configured one.
        update: dict[str, Any] = {
            "database_url": None,
            "embedded_database": DEMO_DATABASE,
            **_DEMO_WITNESS,
        }
        if "require_case" not in demo.model_fields_set:
            update["require_case"] = False  # the demo's records are simulated people
        return demo.model_copy(update=update)


@contextmanager
def open_database(settings: Settings, *, migrate_schema: bool = True) -> Iterator[Any]:
    """The configured (or embedded) database, migrated to the newest schema."""
    from reporting.db import migrate
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
@click.option(
    "--demo",
    is_flag=True,
    help="Work on the records of `meetaudit demo` (its own database) instead of yours.",
)
@click.pass_context
def cli(
    ctx: click.Context, config: Path | None, log_format: str, verbose: bool, demo: bool
) -> None:
    """meetaudit: audit-grade records and reports of who attended your Webex meetings.

    Typical month: `meetaudit monthly --month 2026-10` harvests every finished meeting of
    October from Webex into the database, then writes the PDF report and records it in the
    report ledger. Try it without a Webex account: `meetaudit demo`.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    ctx.obj = State(config, log_format, demo)


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
    from reporting.db import migrate

    with open_database(state.settings(), migrate_schema=False) as db:
        migrate.upgrade(db.engine, revision)
        click.echo(
            f"Database {db.display_url} is at schema revision {migrate.current_revision(db.engine)}."
        )


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Confirm; downgrading to 'base' deletes every record.")
@pass_state
@handle_errors
def db_downgrade(state: State, revision: str, yes: bool) -> None:
    """Take the schema back to REVISION ('base' removes all tables and their records)."""
    from reporting.db import migrate

    if not yes:
        raise click.UsageError("downgrading can delete records; add --yes to confirm")
    with open_database(state.settings(), migrate_schema=False) as db:
        migrate.downgrade(db.engine, revision)
        click.echo(
            f"Database is at schema revision {migrate.current_revision(db.engine) or 'base'}."
        )


@db_group.command("status")
@pass_state
@handle_errors
def db_status(state: State) -> None:
    """Say which database is used and whether its schema is current."""
    from reporting.db import migrate

    with open_database(state.settings(), migrate_schema=False) as db:
        current, head = migrate.current_revision(db.engine), migrate.head_revision()
        click.echo(f"Database: {db.display_url}")
        click.echo(f"Schema revision: {current or 'none (empty database)'}; newest: {head}")
        if current is not None and current not in migrate.known_revisions():
            click.echo(
                "This schema was written by a newer meetaudit: install that version to use it."
            )
        elif current != head:
            click.echo("Run `meetaudit db upgrade` to bring it up to date.")


# -- harvest -----------------------------------------------------------------------------------


def _window(
    settings: Settings,
    month: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    what: str = "the period",
) -> Any:
    """The period the options name (last month without any), in UTC; a mistake is a usage error
    (:func:`reporting.periods.period_from_options`, which the console reads its months with)."""
    from reporting.periods import period_from_options

    return period_from_options(settings.zone, month, start, end, what=what)


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
    if summary.attendee_backfilled:
        click.echo(
            f"  attendee report added to {summary.attendee_backfilled} of "
            f"{summary.attendee_backfill_planned} meetings stored earlier without it"
        )
    click.echo(
        f"  participants {summary.participants}, join sessions {summary.devices}, "
        f"invitees {summary.invitees}, changed since last harvest {summary.revisions}"
    )
    if summary.still_missing:
        click.echo(
            f"  still open from earlier runs: {summary.still_missing} (this run could not close "
            "them: for example a meeting Webex no longer lists; see `meetaudit gaps`)"
        )
    if summary.listed_not_ended:
        states = ", ".join(f"{k}: {v}" for k, v in summary.listed_not_ended.items())
        click.echo(
            f"  listed but not ended: {sum(summary.listed_not_ended.values())} ({states}); "
            "not counted as meetings — one still in progress is a gap until it has ended"
        )
    click.echo(
        f"  gaps {summary.gaps}, requests {summary.requests}, retries {summary.retries}, "
        f"rate-limit wait {summary.rate_limit_wait_seconds:.1f}s, elapsed {summary.elapsed_seconds:.1f}s"
    )
    if summary.listing_reach is not None:
        from reporting.reach import reach_words

        words = reach_words(summary.token_principal, summary.listing_reach)
        if summary.listing_reach["whole_organisation"]:
            click.echo(f"  {words}")
        else:
            # Complete or not, only what the listing could see: said before anyone relies on it.
            click.echo(
                f"  LISTING REACH: {words}. A report of this window says so on its cover", err=True
            )


def run_harvest(
    state: State,
    settings: Settings,
    db: Any,
    window: Any,
    *,
    refresh: bool,
    dry_run: bool = False,
    transport: Any = None,
) -> Any:
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
        if summary.attendee_backfill_planned:
            click.echo(
                f"  {summary.attendee_backfill_planned} of the complete meetings have no attendee "
                "report yet: it would be fetched for them (only the report)."
            )
        for line in summary.planned:
            click.echo(f"  {line}")
        return summary
    _print_harvest_summary(summary)
    return summary


_month_option = click.option(
    "--month",
    metavar="YYYY-MM",
    help="Calendar month in the report time zone (default: last month).",
)
_DATE_FORMATS = list(MOMENT_FORMATS)  # the console reads its From/To fields alike
_from_option = click.option(
    "--from",
    "start",
    type=click.DateTime(_DATE_FORMATS),
    metavar="DATE[THH:MM[:SS]]",
    help="Window start (included), e.g. 2026-10-01 or 2026-10-01T08:00, in the report time "
    "zone (setting TIMEZONE).",
)
_to_option = click.option(
    "--to",
    "end",
    type=click.DateTime(_DATE_FORMATS),
    metavar="DATE[THH:MM[:SS]]",
    help="Window end (not included), e.g. 2026-11-01, in the report time zone.",
)


@cli.command("harvest")
@_month_option
@_from_option
@_to_option
@click.option(
    "--refresh", is_flag=True, help="Fetch meetings again even if already stored complete."
)
@click.option("--dry-run", is_flag=True, help="List what would be fetched; store nothing.")
@pass_state
@handle_errors
def harvest_cmd(
    state: State,
    month: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    refresh: bool,
    dry_run: bool,
) -> None:
    """Copy every finished Webex meeting of a period (participants, devices, invitees) into the database.

    Safe to repeat: meetings already stored completely are skipped, interrupted runs resume.
    Exit status 3 means some meetings could not be fetched; they are listed as gaps.
    """
    settings = state.settings()
    window = _window(settings, month, start, end, what="the harvest window")
    if window.start > dt.datetime.now(dt.UTC):
        begins = window.start.astimezone(settings.zone)
        raise click.UsageError(
            f"the window starts in the future ({begins:%Y-%m-%d %H:%M} {settings.timezone}): "
            "Webex lists only meetings that have ended"
        )
    with open_database(settings) as db:
        summary = run_harvest(state, settings, db, window, refresh=refresh, dry_run=dry_run)
    if not dry_run and not summary.complete:
        # What `meetaudit gaps` counts for the window (reporting.coverage), when it was checked.
        remain = summary.open_in_window or summary.gaps + summary.still_missing
        raise HarvestIncomplete(
            f"{remain} gap(s) remain for this window (see "
            "`meetaudit gaps`); run the same command again later to fetch what is missing"
        )


@cli.command("gaps")
@_month_option
@_from_option
@_to_option
@click.option(
    "--history",
    is_flag=True,
    help="Every gap ever recorded for the period, with what became of it (fetched later, or "
    "failed again on a later run), not only the open ones.",
)
@pass_state
@handle_errors
def gaps_cmd(
    state: State,
    month: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    history: bool,
) -> None:
    """List what is missing from a period's records, and why, until a later harvest fetches it.

    The same list as the report's gaps appendix: what a harvest could not fetch (with the HTTP
    status and Webex trackingId), meetings listed but not stored yet (an interrupted harvest),
    and any part of the period no finished harvest has listed. Times are in the configured time
    zone. Exits with status 3 while anything is missing, so a scheduler can alert.
    """
    from reporting.coverage import UNCOVERED_REASON, what_is_missing

    settings = state.settings()
    zone = settings.zone
    window = _window(settings, month, start, end)

    def when(moment: dt.datetime) -> str:
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"

    with open_database(settings) as db, db.session() as session:
        missing = what_is_missing(session, window, history=history)
        lines: list[str] = []
        for span_start, span_end in missing.unlisted:
            lines.append(
                f"{'[OPEN] ' if history else ''}not listed {when(span_start)} – {when(span_end)}: "
                f"{UNCOVERED_REASON}"
            )
        for gap in missing.gaps:
            listing = (
                f"listing {when(gap.window_from)} – {when(gap.window_to)}"
                if gap.window_from and gap.window_to
                else ""
            )
            what = gap.meeting_id or listing
            if gap.meeting_id and listing and gap.start_at is None:
                what = f"{gap.meeting_id} ({listing}; no meeting stored)"  # a refused list item
            line = (
                f"{when(gap.occurred_at)} run {gap.harvest_run_id} {gap.scope} {what} "
                f"HTTP {gap.http_status or '-'} trackingId {gap.tracking_id or '-'}: {gap.reason}"
            )
            if history:
                if gap.resolved_at is not None:
                    fate = (
                        f"fetched by run {gap.resolved_by_run_id or '?'} on {when(gap.resolved_at)}"
                    )
                elif gap.superseded_at is not None:
                    fate = f"failed again on {when(gap.superseded_at)} (gap {gap.superseded_by_gap_id or '?'})"
                else:
                    fate = "OPEN"
                line = f"[{fate}] {line}"
            lines.append(line)
        for m in missing.unstored:
            lines.append(
                f"{'[OPEN] ' if history else ''}meeting {m.meeting_id} "
                f"({when(m.start_at) if m.start_at else '?'}, {m.title or 'untitled'}): listed, "
                "but its participants and invitees are not stored yet — run the harvest again"
            )
        if not lines:
            click.echo(
                "Nothing missing: the period is listed by a finished harvest and every listed "
                "meeting is stored completely."
            )
            return
        for line in lines:
            click.echo(line)
        if missing.anything_open:
            sys.exit(3)


def _stop_like_ctrl_c(signum: int, frame: Any) -> None:
    # Raised here, not by re-sending SIGINT: a command started in the background by a script or
    # cron (`nohup meetaudit harvest &`) inherits SIGINT ignored, and must still stop on `kill`.
    raise KeyboardInterrupt


def main() -> None:
    """Entry point of the ``meetaudit`` console script."""
    # `kill`, `systemctl stop` and `docker stop` send SIGTERM: stop as cleanly as on Ctrl-C (the
    # batch being written commits or rolls back, the run is recorded as interrupted).
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    cli(prog_name="meetaudit")


# -- reports -------------------------------------------------------------------------------------


def report_progress(state: State) -> Any:
    """Progress of a report (a context manager): live bars on a terminal, lines elsewhere."""
    from reporting.progress import ReportProgress, choose_format

    return ReportProgress(choose_format(state.log_format))


def run_report(
    state: State,
    settings: Settings,
    db: Any,
    window: Any,
    *,
    label: str,
    output: Path | str | None,
    formats: tuple[str, ...],
) -> Any:
    """Generate, record and print the report of ``window`` as the console's report job does
    (:func:`reporting.report.run.run_report`): a warning while a harvest runs, and the verdict
    (an error although the files were written) raised after the summary."""
    from reporting.report.run import run_report as run

    def warn(text: str) -> None:
        click.echo(f"Warning: {text}", err=True)

    outcome = _generate_and_print(
        state,
        lambda progress: run(settings, db, window, label=label, output=output, formats=formats,
                             progress=progress, warn=warn),
    )  # fmt: skip
    if outcome.verdict is not None:
        raise outcome.verdict
    return outcome.result


def _generate_and_print(state: State, generate: Callable[[Any], Any]) -> Any:
    """``generate(progress)`` with live progress, a :class:`~reporting.report.run.ReportOutcome`;
    print its report's summary; a stop becomes one line."""
    from reporting.report.api import ReportInterrupted

    try:
        with report_progress(state) as progress:
            outcome = generate(progress)
    except ReportInterrupted as exc:
        raise ReportStopped.of(exc) from None
    for line in outcome.result.lines():
        click.echo(line)
    return outcome


class ReportStopped(MeetauditError):
    """Ctrl-C or a stop signal while a report was written: say what was kept (exit status 130)."""

    exit_code = 130

    @classmethod
    def of(cls, exc: Any) -> ReportStopped:
        """The message for a :class:`~reporting.report.api.ReportInterrupted`."""
        stopped = "stopped by the operator (Ctrl-C or a stop signal)"
        if exc.reproducing:
            return cls(
                f"{stopped} while re-rendering {exc.reproducing}: no file was kept (a "
                "reproduction records nothing in the ledger). Run the same command again."
            )
        if not exc.files:
            return cls(
                f"{stopped} while the report was being written: no report file was kept and "
                "nothing was recorded in the ledger. Run the same command again to write it."
            )
        done = "; ".join(f"{f.path} ({f.report_id})" for f in exc.files)
        return cls(
            f"{stopped} while the report was being written. Finished, kept and recorded in "
            f"the ledger: {done}. Nothing of the other files was kept. Run the same command "
            "again for a complete set (a new report, beside these files)."
        )


_formats_option = click.option(
    "--format", "formats", multiple=True, type=click.Choice(["pdf", "csv", "json"]),
    help="What to write; repeat for several (default: pdf). pdf: the report, with both CSVs "
    "attached; csv: two files, the reconciliation (NAME.csv) and the meetings (NAME.meetings.csv); "
    "json: both in one file.",
)  # fmt: skip


@cli.group("report", invoke_without_command=True)
@_month_option
@_from_option
@_to_option
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="File or folder (an existing one, or ending in /) to write; default: the output_dir "
    "setting. An existing file is never overwritten: the new one goes beside it, with the report "
    "id in its name.",
)
@_formats_option
@click.option(
    "--reproduce",
    metavar="REPORT_ID",
    help="Render a ledger entry again from the stored data and compare its SHA-256 (ids: "
    "`meetaudit verify --ledger`). Takes the entry's own period and format.",
)
@click.option(
    "--sample-size",
    type=click.IntRange(min=1),
    metavar="N",
    help="Also draw a random sample of N of the report's reconciliation rows, from the same "
    "data, as its own PDF (see `meetaudit sample`); needs --sample-seed.",
)
@click.option(
    "--sample-seed",
    type=click.IntRange(min=0),
    metavar="S",
    help="The sample's seed, a whole number you choose: the same rows and seed always draw the "
    "same sample.",
)
@pass_state
@handle_errors
def report_cmd(
    state: State,
    month: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    output: str | None,
    formats: tuple[str, ...],
    reproduce: str | None,
    sample_size: int | None = None,
    sample_seed: int | None = None,
) -> None:
    """Write the audit report of a period (PDF/A with the full data attached) and record it in the ledger.

    The report sets invitees against attendees for every meeting, lists external participants by
    organisation, shows data-quality flags and every gap. Exit status 3: the period is not
    completely harvested (the report says what is missing). Exit status 4: the stored records
    of some meetings no longer match what was harvested (the report says which).

    `meetaudit report diff OLD_ID NEW_ID` prints what changed between two reports of a period.
    """
    if click.get_current_context().invoked_subcommand:
        return
    if reproduce and (month or start or end or formats or sample_size):
        raise click.UsageError(
            "--reproduce renders a ledger entry again with the period and format it was "
            "generated with: leave out --month, --from, --to, --format and --sample-size"
        )
    if (sample_size is None) != (sample_seed is None):
        raise click.UsageError("--sample-size and --sample-seed go together")
    settings = state.settings()
    with open_database(settings) as db:
        if reproduce:
            from reporting.report import generate_report
            from reporting.report.run import ReportOutcome

            result = _generate_and_print(
                state,
                lambda progress: ReportOutcome(generate_report(
                    settings, db, None, label=reproduce, output=output, reproduce=reproduce,
                    progress=progress)),
            ).result  # fmt: skip
            if not result.matches:
                from reporting.errors import VerificationError

                if result.renderer_changes:
                    raise VerificationError(
                        f"re-rendering {reproduce} gave different bytes, and this installation "
                        f"renders differently from the one that generated it "
                        f"({'; '.join(result.renderer_changes)}): reproduce it with the versions "
                        "it was generated with. The original file is checked with `meetaudit "
                        "verify FILE`, which does not depend on versions"
                    )
                raise VerificationError(
                    f"re-rendering {reproduce} gave different bytes with the same software: the "
                    "stored data it reads changed since it was generated (see `meetaudit "
                    "investigate` and the meeting revisions), or the system's fonts libraries "
                    "(Pango, HarfBuzz) differ. The original file is checked with `meetaudit "
                    "verify FILE`"
                )
            return
        from reporting.periods import month_of

        window = _window(settings, month, start, end)
        label = month or (
            f"{window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}"
            if (start or end)
            else month_of(window, settings.zone)
        )
        result = run_report(
            state, settings, db, window, label=label, output=output, formats=formats or ("pdf",)
        )
        if sample_size is not None and sample_seed is not None:
            from reporting.cli_sample import draw_sample

            # The report's own rows: read as of its generation time, named in the sample.
            draw_sample(
                state, settings, db, window, label=label, size=sample_size, seed=sample_seed,
                output=result.path.parent, as_of=result.generated_at,
                accompanies=result.report_id,
            )  # fmt: skip
    if not result.complete:
        raise HarvestIncomplete(
            f"the report is marked INCOMPLETE: {result.gaps} open gap"
            f"{'' if result.gaps == 1 else 's'}, listed in its Appendix A and by `meetaudit gaps`"
        )


@report_cmd.command("diff")
@click.argument("old_id")
@click.argument("new_id")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text",
    show_default=True, help="text: a summary and every change; csv: one row per change; json: both.",
)  # fmt: skip
@pass_state
@handle_errors
def report_diff_cmd(state: State, old_id: str, new_id: str, fmt: str) -> None:
    """What changed between two reports of one period: meetings added or removed, people
    reclassified, rows whose status or minutes changed.

    Each report is rebuilt from the stored data with its own parameters and as of its own
    generation time, as `report --reproduce` does; when the stored data no longer shows what a
    report showed, it says so instead of comparing. Report ids: `meetaudit verify --ledger`.
    """
    import tempfile

    from reporting.report.api import snapshot
    from reporting.report.diff import report_diff

    settings = state.settings()
    with open_database(settings) as db, tempfile.TemporaryDirectory(prefix="meetaudit-") as tmp:
        with snapshot(db) as session:
            result = report_diff(session, old_id, new_id, workdir=Path(tmp))
    if fmt == "csv":
        click.echo(result.csv_bytes(), nl=False)
    elif fmt == "json":
        click.echo(result.json_text(), nl=False)
    else:
        for line in result.lines():
            click.echo(line)


@cli.command("verify")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--ledger",
    is_flag=True,
    help="List every report in the ledger (report id, format, when, by whom, period, file), "
    "check that each recorded file is unchanged where it was written (one no longer there is a "
    "warning: files get moved), then check the hash chain of the whole ledger, that the database "
    "still refuses changes to it, and every head its witness recorded.",
)
@click.option(
    "--expect-head",
    metavar="SHA256",
    help="With --ledger: a ledger head noted elsewhere (printed by `report` and `verify --ledger`); "
    "verification fails unless the ledger still holds that entry, unchanged.",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Check FILES without the database: each signature and timestamp against the "
    "certificates you pin (TRUSTED_CERTS, TRUSTED_TSA_CERTS), and a PDF's manifest.json against "
    "its attachments.",
)
@pass_state
@handle_errors
def verify_cmd(
    state: State,
    files: tuple[Path, ...],
    ledger: bool,
    offline: bool = False,
    expect_head: str | None = None,
) -> None:
    """Check that report FILES are ones meetaudit generated, unaltered; and/or check the ledger.

    Says when, by whom and from which harvest runs each file was generated (every report with
    that content, when identical reports were written), and checks its signature when there is
    one. A manifest.json taken out of a PDF report is compared with what the ledger recorded for
    that report. --ledger lists every entry, checks each recorded file where it was written,
    then the chain. Signatures count only against the certificates you pin (TRUSTED_CERTS,
    TRUSTED_TSA_CERTS), never a key found in the file or the ledger. Exit status 4 when anything
    fails verification (a changed file, a broken chain, a file the ledger does not record, a
    signature not from a pinned certificate); a recorded file no longer where it was written is
    only a warning.
    """
    from reporting.errors import VerificationError
    from reporting.report import verify_file, verify_ledger
    from reporting.report.trust import pins_from
    from reporting.report.witness import Witness

    if not files and not ledger:
        raise click.UsageError("name a report file to verify, or give --ledger")
    if offline and ledger:
        raise click.UsageError("--ledger needs the database; --offline checks FILES without it")
    if expect_head is not None and not ledger:
        raise click.UsageError("--expect-head checks the ledger: give --ledger too")
    if expect_head is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", expect_head.strip()):
        raise click.UsageError("--expect-head takes a SHA-256: 64 hexadecimal digits")
    settings = state.settings()
    pins = pins_from(settings)
    failed = []
    if offline:
        from reporting.report.verify import verify_offline

        for path in files:
            checked = verify_offline(path, pins=pins)
            for line in checked.lines():
                click.echo(line)
            if not checked.ok:
                failed.append(str(path))
        if failed:
            raise VerificationError(f"verification failed for {', '.join(failed)}")
        return
    with open_database(settings) as db:
        witness = Witness.from_settings(settings)
        for path in files:
            # A file's verdict rests on the ledger: one rewritten or unprotected fails every file.
            result = verify_file(db, path, pins=pins, witness_=witness)
            for line in result.lines():
                click.echo(line)
            if not result.ok:
                failed.append(str(path))
        if ledger:
            check = verify_ledger(db, witness_=witness, expect_head=expect_head, pins=pins)
            for line in check.lines():
                click.echo(line)
            if not check.ok:
                failed.append("the report ledger")
    if failed:
        raise VerificationError(f"verification failed for {', '.join(failed)}")


@cli.command("monthly")
@_month_option
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="File or folder (an existing one, or ending in /) for the report. An existing file is "
    "never overwritten: the new one goes beside it, with the report id in its name.",
)
@_formats_option
@pass_state
@handle_errors
def monthly_cmd(
    state: State, month: str | None, output: str | None, formats: tuple[str, ...]
) -> None:
    """Harvest a month, write its report and record it in the ledger: the job for cron or a timer.

    Exit status 0: report complete. 3: written, but some meetings could not be fetched (listed in
    the report); run again later. 4: written, but the stored records of some meetings were changed
    in the database after the harvest (listed in the report). 1: error, nothing half-written kept.
    """
    from reporting.periods import previous_month

    settings = state.settings()
    month = month or previous_month(dt.datetime.now(dt.UTC), settings.zone)
    window = _window(settings, month, None, None)
    with open_database(settings) as db:
        summary = run_harvest(state, settings, db, window, refresh=False)
        result = run_report(
            state, settings, db, window, label=month, output=output, formats=formats or ("pdf",)
        )
    # The report's completeness is the one definition (reporting.coverage) as of its time; the
    # harvest's status asks the same for the same month, so the two agree but for what changed
    # between them (nothing, in one command).
    if not result.complete:
        raise HarvestIncomplete(
            f"the report for {month} is INCOMPLETE ({result.gaps} open gap"
            f"{'' if result.gaps == 1 else 's'}, listed in it and by `meetaudit gaps`); run "
            "`meetaudit monthly` again later to fetch what is missing"
        )
    if not summary.complete:
        raise HarvestIncomplete(
            f"harvest run {summary.run_id} for {month} ended {summary.status}, although the "
            "report found nothing missing; see `meetaudit gaps` and run `meetaudit monthly` again"
        )


# -- the simulator and the demo ------------------------------------------------------------------

DEMO_TOKEN = "simulated-token"  # noqa: S105 - the simulator's own token, not a secret


@cli.group("simulator")
def simulator_group() -> None:
    """A simulated Webex organisation, to try meetaudit without a Webex account."""


@simulator_group.command("serve")
@click.option(
    "--month", metavar="YYYY-MM", help="Month the simulated meetings fall in (default: last month)."
)
@click.option("--seed", default=7, show_default=True, help="Same seed, same organisation.")
@click.option("--meetings", default=60, show_default=True, help="How many ended meetings.")
@click.option(
    "--participants", default=12, show_default=True, help="Average participants per meeting."
)
@click.option(
    "--port", default=8765, show_default=True, help="Loopback port to listen on (0: any free one)."
)
@click.option("--latency", default=0.0, show_default=True, help="Seconds added to every answer.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME",
    help="Misbehave like a faulty server, to see what meetaudit does: endless paging, or "
    "implausible data. Repeat for several; `--fault list` lists them.",
)
@click.option(
    "--non-admin",
    is_flag=True,
    help="Answer as for the token of an ordinary member of the organisation (the host of the "
    "first meeting), not an administrator's: the meeting list then shows only that person's "
    "meetings, as Webex does. To see how a report discloses a token that could not list the "
    "whole organisation.",
)
@pass_state
@handle_errors
def simulator_serve(
    state: State,
    month: str | None,
    seed: int,
    meetings: int,
    participants: int,
    port: int,
    latency: float,
    faults: tuple[str, ...] = (),
    non_admin: bool = False,
) -> None:
    """Serve a simulated Webex API on 127.0.0.1 until Ctrl-C (token: simulated-token)."""
    from reporting.webex.simulator import (
        HAND_FAULTS,
        Simulator,
        TokenOwner,
        generate_org,
        hand_faults,
        serve,
    )

    if "list" in faults:
        for name, (what, _) in HAND_FAULTS.items():
            click.echo(f"{name:34} {what}")
        return
    unknown = [f for f in faults if f not in HAND_FAULTS]
    if unknown:
        raise click.UsageError(
            f"unknown fault {', '.join(unknown)}; `meetaudit simulator serve --fault list` "
            "lists them"
        )

    settings = state.settings()
    window = _window(settings, month, None, None)
    org = generate_org(
        seed=seed,
        start=window.start,
        end=window.end,
        meetings=meetings,
        participants_per_meeting=participants,
    )
    owner = None
    if non_admin and org.meetings:
        first = org.meetings[0]
        owner = TokenOwner.member(first["hostEmail"], first["hostDisplayName"])
    simulator = Simulator(
        org, token=DEMO_TOKEN, latency=latency, faults=hand_faults(faults), token_owner=owner
    )
    with serve(simulator, port=port) as base_url:
        click.echo(f"Simulated Webex API for {org.org_name} ({meetings} meetings) at {base_url}")
        who = simulator.token_owner
        click.echo(
            f"  the token belongs to {who.display_name} <{who.email}>, "
            + (
                "an administrator"
                if who.admin
                else "not an administrator: it lists only their meetings"
            )
        )
        for name in faults:
            click.echo(f"  fault on: {name} — {HAND_FAULTS[name][0]}")
        click.echo("Harvest it from another terminal with:")
        click.echo(f"  MEETAUDIT_WEBEX_BASE_URL={base_url} MEETAUDIT_WEBEX_TOKEN={DEMO_TOKEN} \\")
        click.echo(
            f"  MEETAUDIT_ORG_DOMAINS={','.join(org.domains)} MEETAUDIT_ORG_IDS={org.org_id} \\"
        )
        click.echo(
            f"  meetaudit harvest --from {window.start:%Y-%m-%dT%H:%M:%S} --to {window.end:%Y-%m-%dT%H:%M:%S}"
        )
        click.echo("Press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("Simulator stopped.")


@cli.command("demo")
@click.option(
    "--seed", default=7, show_default=True, help="Same seed, same simulated organisation."
)
@click.option(
    "--meetings", default=60, show_default=True, help="Ended meetings in the simulated month."
)
@click.option(
    "--participants", default=12, show_default=True, help="Average participants per meeting."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PDF.",
)
@pass_state
@handle_errors
def demo_cmd(
    state: State, seed: int, meetings: int, participants: int, output: Path | None
) -> None:
    """Try everything on a simulated organisation: harvest last month, write the PDF report.

    Uses the embedded PostgreSQL (database "meetaudit_demo", never your configured one) and a
    simulated Webex API on a free loopback port. Prints the PDF's path and SHA-256. Afterwards,
    `meetaudit --demo COMMAND` works on the demo's records (verify, investigate, report...).
    """
    from reporting.db import migrate
    from reporting.db.engine import Database
    from reporting.periods import month_window, previous_month
    from reporting.report import generate_report
    from reporting.webex.simulator import Simulator, generate_org, serve

    started = time.monotonic()
    base = State(state.config, state.log_format).settings()
    month = previous_month(dt.datetime.now(dt.UTC), base.zone)
    window = month_window(month, base.zone)
    org = generate_org(
        seed=seed,
        start=window.start,
        end=window.end,
        meetings=meetings,
        participants_per_meeting=participants,
    )
    click.echo(f"Simulated organisation {org.org_name}: {meetings} meetings in {month}.")
    with serve(Simulator(org, token=DEMO_TOKEN)) as base_url:
        settings = State(state.config, state.log_format).settings(
            webex_base_url=base_url,
            webex_token=DEMO_TOKEN,
            webex_site_urls=[],
            webex_host_emails=[],
            org_name=f"{org.org_name} (simulated)",
            org_domains=list(org.domains),
            org_ids=[org.org_id],
        )
        # Whatever the environment says, the demo never touches a real database or Webex.
        settings = settings.model_copy(
            update={
                "database_url": None,
                "webex_token_file": None,
                "webex_refresh_token": None,
                "embedded_database": DEMO_DATABASE,
                **_DEMO_WITNESS,
            }
        )
        _remember_demo(settings)
        with Database.from_settings(settings) as db:
            click.echo(
                f"Embedded PostgreSQL: data in {db.embedded_dir}, database {DEMO_DATABASE!r}."
            )
            migrate.upgrade(db.engine)
            summary = run_harvest(state, settings, db, window, refresh=False)
            target = output or settings.output_dir / f"meetaudit-demo-{month}.pdf"
            with report_progress(state) as progress:
                result = generate_report(
                    settings, db, window, label=month, output=target, progress=progress
                )
    for line in result.lines():
        click.echo(line)
    click.echo(f"Report: {result.path}")
    click.echo(f"SHA-256: {result.sha256}")
    click.echo(
        f"Done in {time.monotonic() - started:.1f}s (harvest run {summary.run_id}, "
        f"{result.pages} pages)."
    )
    click.echo("Explore the demo's records with --demo, for example:")
    click.echo(f"  meetaudit --demo verify {result.path}")
    click.echo(f"  meetaudit --demo investigate orgs --month {month}")


def _remember_demo(settings: Settings) -> None:
    """Write the demo organisation's identity where `meetaudit --demo` finds it."""
    lines = [
        "# Written by `meetaudit demo`: the simulated organisation, for `meetaudit --demo ...`.",
        f"org_name = {json.dumps(settings.org_name)}",
        f"org_domains = {json.dumps(settings.org_domains)}",
        f"org_ids = {json.dumps(settings.org_ids)}",
        f"timezone = {json.dumps(settings.timezone)}",
        f"output_dir = {json.dumps(str(settings.output_dir.resolve()))}",
    ]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / DEMO_SETTINGS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- investigate ---------------------------------------------------------------------------------


def _emit_rows(
    rows: list[Any], fmt: str, title: str, settings: Settings, person_title: str | None = None
) -> None:
    """Print dataclass rows as tables (terminal), CSV or JSON, times in the configured zone."""
    from reporting.investigate import print_rows, write_csv, write_json

    if fmt == "json":
        write_json(rows, sys.stdout, settings.zone)
    elif fmt == "csv":
        write_csv(rows, sys.stdout, settings.zone)
    else:
        from rich.console import Console

        print_rows(Console(), rows, title, settings.zone, person_title)


def _announce_matches(answered: Any, fmt: str) -> None:
    """Say whom the answer is for when what was typed matched only close names, or several
    people (on stderr for CSV / JSON, which stay data only)."""
    if answered.close_note:
        click.echo(answered.close_note, err=fmt != "table")
    if answered.matches_note is None:
        return
    people = answered.people
    if fmt != "table":
        labels = "; ".join(p.label for p in people)
        click.echo(f"{answered.matches_note}: {labels}", err=True)
        return
    click.echo(f"{answered.matches_note}:")
    width = max(len(p.label) for p in people)
    for p in people:
        click.echo(f"  {p.label:<{width}}  {p.meetings} meeting{'' if p.meetings == 1 else 's'}")
    click.echo()


_format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
    help="Output as a table on the terminal, or CSV / JSON for further analysis.",
)  # fmt: skip


@cli.group("investigate")
def investigate_group() -> None:
    """Ask the stored records: who attended what, with whom, from which device, which outside organisations.

    A person is given by email address, by a fragment of a name or address (`anders`,
    `andersen@globex`, `@post.test`), or by a person key an answer printed
    (`participant:<id>`, a caller without email); a fragment that matches several people is
    answered person by person, each under their name and email. Attended means admitted, as in
    the report: meetings a person only waited in the lobby of are shown apart. Add --month or
    --from/--to to limit to a period (every answer says which period it searched, and whether
    that period was harvested); --format csv or json for further analysis. Times are shown in
    the configured time zone; phone numbers, and callers' names that are their numbers, are
    masked unless MEETAUDIT_SHOW_PHONE_NUMBERS.
    """


_case_option = click.option(
    "--case",
    "case",
    metavar="REF",
    help="The investigation case the question is asked in (`meetaudit case open`); required "
    "unless MEETAUDIT_REQUIRE_CASE is false. Every question is recorded in the access log.",
)


def _question_options(func: F) -> F:
    """The case, period and output options every investigate question takes."""
    for option in (_case_option, _format_option, _to_option, _from_option, _month_option):
        func = option(func)
    return func


def _check_case(session: Any, settings: Settings, case: str | None) -> str | None:
    """The open case a question is asked in (refused before anything is looked at)."""
    from reporting.cases import open_case_for_question

    return open_case_for_question(session, case, required=settings.require_case)


def _record_look(session: Any, settings: Settings, case: str | None, rows: int, fmt: str) -> None:
    """Record the question being answered in the access log and commit it, before the answer
    is shown: an answer whose look could not be recorded is never shown."""
    from reporting.cases import record_access

    ctx = click.get_current_context()
    record_access(
        session,
        operator=settings.operator,
        case_ref=case,
        question=" ".join(ctx.command_path.split()[1:]),
        parameters={k: v for k, v in ctx.params.items() if k not in ("case", "fmt")},
        rows_returned=rows,
        output_format=fmt,
    )
    session.commit()


def _answer(
    state: State,
    name: str,
    title: str,
    fmt: str,
    month: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    args: dict[str, Any] | None = None,
    person_title: str | None = None,
    apart: tuple[str, str] | None = None,
    case: str | None = None,
) -> None:
    """Open the records, ask question ``name`` for the period, print the rows with what
    :func:`reporting.investigate.answer_question` says beside them (the console shows the same).

    Always say which period was searched and what of it was never harvested (for CSV / JSON on
    stderr, so stdout stays data only); when nothing is found, also whether the period holds
    harvested meetings at all; first, whether what was typed matches several people. With
    ``person_title`` (and ``apart``), see :func:`reporting.investigate.print_rows`.
    """
    from reporting.investigate import answer_question, check_question, print_rows, search_period

    args = args or {}
    check_question(name, args)  # a mistake is told before anything is opened
    settings = state.settings()
    p = search_period(settings.zone, month, start, end)
    with open_database(settings) as db, db.session() as session:
        case = _check_case(session, settings, case)
        answered = answer_question(session, settings, name, args, p)
        _record_look(session, settings, case, len(answered.rows), fmt)
        table = fmt == "table"
        click.echo(f"Period searched: {answered.searched}", err=not table)
        _announce_matches(answered, fmt)
        if table:
            from rich.console import Console

            print_rows(Console(), answered.rows, title, settings.zone, person_title, apart=apart)
        else:
            _emit_rows(answered.rows, fmt, title, settings)
        for note in answered.notes:
            click.echo(note, err=not table)


@investigate_group.command("person")
@click.argument("who")
@_question_options
@pass_state
@handle_errors
def investigate_person(state: State, /, who: str, fmt: str, **period: Any) -> None:
    """Which meetings WHO attended: when, role, invited or not, sessions, minutes, devices.

    Attended means admitted, as in the report; the meetings WHO only waited in the lobby of
    (never admitted) are listed apart, as "Lobby only" (CSV / JSON: `admitted` false).
    """
    from reporting.investigate import LOBBY_ONLY

    _answer(state, "person", f"Meetings attended by {who}", fmt, args={"who": who},
            person_title="Meetings attended by", apart=("admitted", LOBBY_ONLY),
            **period)  # fmt: skip


@investigate_group.command("with")
@click.argument("who")
@_question_options
@pass_state
@handle_errors
def investigate_with(state: State, /, who: str, fmt: str, **period: Any) -> None:
    """Who met WHO: admitted to the meetings WHO was admitted to, most shared meetings first.

    Lobby-only stays count for neither side. Unidentified attendees (phone callers without an
    email) are listed too, each as one person, as the report counts them.
    """
    _answer(state, "with", f"People in meetings with {who}", fmt, args={"who": who}, **period)


@investigate_group.command("devices")
@click.argument("who")
@_question_options
@pass_state
@handle_errors
def investigate_devices(state: State, /, who: str, fmt: str, **period: Any) -> None:
    """Which devices WHO joined from (phone numbers masked unless MEETAUDIT_SHOW_PHONE_NUMBERS)."""
    _answer(state, "devices", f"Devices used by {who}", fmt, args={"who": who},
            person_title="Devices used by", **period)  # fmt: skip


@investigate_group.command("orgs")
@_question_options
@pass_state
@handle_errors
def investigate_orgs(state: State, /, fmt: str, **period: Any) -> None:
    """Which outside organisations (by Webex org ID, else email domain) took part, and how much.

    People are counted as the report counts them: per person key, so every phone caller without
    an email is a person of their own.
    """
    _answer(state, "orgs", "Outside organisations", fmt, **period)


@investigate_group.command("meeting")
@click.argument("meeting_id")
@_case_option
@_format_option
@pass_state
@handle_errors
def investigate_meeting(state: State, meeting_id: str, fmt: str, case: str | None) -> None:
    """Everyone in one meeting, and the invitees who did not come.

    MEETING_ID as Webex gives it (as `investigate meetings` shows it), or a beginning of it that
    only one stored meeting's id has.
    """
    from reporting.investigate import answer_question, check_question

    args = {"meeting_id": meeting_id}
    check_question("meeting", args)
    settings = state.settings()
    with open_database(settings) as db, db.session() as session:
        case = _check_case(session, settings, case)
        answered = answer_question(session, settings, "meeting", args)
        _record_look(session, settings, case, len(answered.rows), fmt)
        table = fmt == "table"
        for line in answered.heading if table else []:
            click.echo(line)
        _emit_rows(answered.rows, fmt, "Participants", settings)
        for note in answered.notes if table else []:
            click.echo(note)


@investigate_group.command("meetings")
@click.option(
    "--title",
    help="Part of the meeting title, any case, matched anywhere in it: 'board' also finds "
    "'Onboarding'.",
)
@click.option(
    "--host",
    help="The host, found as a person is: email address, or part of the address or name.",
)
@_question_options
@pass_state
@handle_errors
def investigate_meetings(
    state: State, /, title: str | None, host: str | None, fmt: str, **period: Any
) -> None:
    """Find stored meetings by title and/or host, newest first."""
    _answer(state, "meetings", "Meetings", fmt, args={"title": title, "host": host}, **period)


@investigate_group.command("phone")
@click.argument("number")
@_question_options
@pass_state
@handle_errors
def investigate_phone(state: State, /, number: str, fmt: str, **period: Any) -> None:
    """Who joined from phone NUMBER (the whole number or its last digits), when, which meetings.

    Only the digits count: `+41 44 555 01 88`, `0041445550188` and `0188` all find that number.
    Numbers, and callers' names that are their number, stay masked unless
    MEETAUDIT_SHOW_PHONE_NUMBERS.
    """
    _answer(state, "phone", "Sessions joined from the phone number searched", fmt,
            args={"number": number}, **period)  # fmt: skip


@investigate_group.command("device")
@click.argument("device")
@_question_options
@pass_state
@handle_errors
def investigate_device(state: State, /, device: str, fmt: str, **period: Any) -> None:
    """Who joined from DEVICE: a correlationId (one device), else a client type (`mac`, `tp`...).

    One row per person, most sessions first, with the meetings they joined from it.
    """
    _answer(state, "device", f"Sessions from {device}", fmt, args={"device": device}, **period)


@investigate_group.command("timeline")
@click.argument("who")
@_question_options
@pass_state
@handle_errors
def investigate_timeline(state: State, /, who: str, fmt: str, **period: Any) -> None:
    """WHO's timeline: every meeting attended, lobby waited in and invitation not taken up, in order.

    Each meeting attended names the outside organisations admitted to it, as the report
    classifies them.
    """
    _answer(state, "timeline", f"Timeline of {who}", fmt, args={"who": who},
            person_title="Timeline of", **period)  # fmt: skip


# Command groups kept in modules of their own register themselves on ``cli`` when imported.
from reporting import cli_cases, cli_sample, cli_web  # noqa: E402, F401
from reporting.cli_keys import keys_group  # noqa: E402 - its commands use the helpers above

cli.add_command(keys_group)
from reporting.cli_roles import db_roles  # noqa: E402 - the command needs the group defined above

db_group.add_command(db_roles)
from reporting.cli_views import views_group  # noqa: E402 - the command needs the group defined above

db_group.add_command(views_group)
