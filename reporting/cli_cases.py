"""``meetaudit case …`` and ``meetaudit access-log``: why people's records are looked at, and the
record of every look (see :mod:`reporting.cases`)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from typing import Any

import click

from reporting.cli import cli, handle_errors, open_database, pass_state
from reporting.errors import VerificationError


def _when(moment: dt.datetime | None, zone: Any) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


@cli.group("case")
def case_group() -> None:
    """Open, close and list investigation cases.

    A case names why people's records are looked at. With MEETAUDIT_REQUIRE_CASE (on by
    default; off for the demo's simulated people) every `meetaudit investigate` question must
    name an open case with --case REF, and the access log records each question with its case.
    """


@case_group.command("open")
@click.argument("ref")
@click.option("--purpose", required=True, help="Why the case is opened (recorded with it).")
@pass_state
@handle_errors
def case_open(state: Any, ref: str, purpose: str) -> None:
    """Open case REF (a reference used once, such as INV-2026-014)."""
    from reporting.cases import open_case

    settings = state.settings()
    with open_database(settings) as db, db.session() as session:
        case = open_case(session, ref, purpose, operator=settings.operator)
        session.commit()
        click.echo(
            f"Case {case.ref} opened by {case.opened_by} on "
            f"{_when(case.opened_at, settings.zone)} ({settings.timezone})."
        )
        click.echo(f"Ask questions in it with: meetaudit investigate … --case {case.ref}")


@case_group.command("close")
@click.argument("ref")
@click.option("--note", help="How the case ended (recorded with it).")
@pass_state
@handle_errors
def case_close(state: Any, ref: str, note: str | None) -> None:
    """Close case REF: no further questions can be asked in it; its record stays."""
    from reporting.cases import close_case

    settings = state.settings()
    with open_database(settings) as db, db.session() as session:
        case = close_case(session, ref, operator=settings.operator, note=note)
        session.commit()
        click.echo(f"Case {case.ref} closed by {case.closed_by}.")


@case_group.command("dossier")
@click.argument("ref")
@click.option(
    "-o", "--output", type=click.Path(),
    help="File or folder (an existing one, or ending in /) to write; default: the output_dir "
    "setting. An existing file is never overwritten.",
)  # fmt: skip
@pass_state
@handle_errors
def case_dossier(state: Any, ref: str, output: str | None) -> None:
    """Write the dossier of case REF: every question asked in it, asked again, as one PDF/A.

    The access log keeps the questions, not the answers: each recorded question is asked again
    with the same parameters and printed with today's answer beside what the log recorded then
    (when, by whom, how many rows); where the number of rows differs, the dossier says so. The
    answers are attached as CSV. Compiling it is recorded in the access log under the case, the
    file in the report ledger (check it with `meetaudit verify FILE.pdf`); it is signed when a
    signing certificate is configured. A closed case gets its dossier too.
    """
    from reporting.report.dossier import compile_dossier

    settings = state.settings()
    with open_database(settings) as db:
        result = compile_dossier(settings, db, ref, output=output)
    for line in result.lines():
        click.echo(line)
    from reporting.report.witness import raise_if_unpublished

    raise_if_unpublished(
        f"dossier {result.dossier_id}", result.ledger_head, result.witness_problems
    )


@case_group.command("list")
@pass_state
@handle_errors
def case_list(state: Any) -> None:
    """Every case, newest first: purpose, who opened and closed it, questions asked in it."""
    from rich.console import Console
    from rich.table import Table

    from reporting.cases import list_cases

    settings = state.settings()
    with open_database(settings) as db, db.session() as session:
        cases = list_cases(session)
    if not cases:
        click.echo('No cases yet. Open one with: meetaudit case open REF --purpose "…"')
        return
    table = Table(title=f"Investigation cases (times in {settings.timezone})")
    for column in ("case", "purpose", "opened", "by", "closed", "by", "questions"):
        table.add_column(column, overflow="fold")
    for c in cases:
        table.add_row(
            c.ref, c.purpose, _when(c.opened_at, settings.zone), c.opened_by,
            _when(c.closed_at, settings.zone) or "open", c.closed_by or "", str(c.questions),
        )  # fmt: skip
    Console().print(table)


@cli.command("access-log")
@click.option("--case", "case", metavar="REF", help="Only the questions asked in this case.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
    show_default=True, help="A table on the terminal, or CSV / JSON.",
)  # fmt: skip
@pass_state
@handle_errors
def access_log_cmd(state: Any, case: str | None, fmt: str) -> None:
    """Show the access log — every question asked of the records — and check its integrity.

    Lists who asked what, when, in which case, with which parameters, how many rows came back
    and in which format; then checks the hash chain and that the database still refuses changes
    to the log. Exits 4 when an entry was altered or removed, or the log is no longer protected.
    Note the head hash it prints elsewhere: removing the newest entries is only detectable
    against it.
    """
    from reporting.cases import check_log, entries

    settings = state.settings()
    with open_database(settings) as db, db.session() as session:
        rows = entries(session, case_ref=case)
        state_ = check_log(session)
    out = sys.stdout if fmt == "table" else sys.stderr
    data: list[dict[str, Any]] = [
        {
            "seq": r.seq, "at": r.at.astimezone(settings.zone).isoformat(),
            "operator": r.operator, "case": r.case_ref or "", "question": r.question,
            "parameters": r.parameters, "rows": r.rows_returned, "format": r.output_format,
        }
        for r in rows
    ]  # fmt: skip
    if fmt == "json":
        json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["seq", "at", "operator", "case", "question", "parameters", "rows",
                         "format"])  # fmt: skip
        for d in data:
            writer.writerow([d["seq"], d["at"], d["operator"], d["case"], d["question"],
                             json.dumps(d["parameters"], ensure_ascii=False, sort_keys=True),
                             d["rows"], d["format"]])  # fmt: skip
    else:
        from rich.console import Console
        from rich.table import Table

        if data:
            table = Table(title=f"Access log (times in {settings.timezone})")
            for column in ("#", "when", "who", "case", "question", "parameters", "rows", "as"):
                table.add_column(column, overflow="fold")
            for d in data:
                params = ", ".join(f"{k}={v}" for k, v in sorted(d["parameters"].items()) if v)
                table.add_row(
                    str(d["seq"]), d["at"][:16].replace("T", " "), d["operator"], d["case"],
                    d["question"], params, str(d["rows"]), d["format"],
                )  # fmt: skip
            Console().print(table)
        else:
            click.echo("No question recorded" + (f" in case {case}." if case else " yet."))
    for problem in state_.problems:
        click.echo(f"PROBLEM: {problem}", file=out)
    head = f"head #{state_.head_seq} {state_.head_sha256}" if state_.head_sha256 else "empty"
    if not state_.intact:
        raise VerificationError(
            f"the access log is NOT intact ({len(state_.problems)} problem(s) above; "
            f"{state_.entries} entries, {head})"
        )
    click.echo(
        f"OK: access log of {state_.entries} entr{'y' if state_.entries == 1 else 'ies'} intact, "
        f"protected by the database; {head} (note it elsewhere: removing the newest entries is "
        "only detectable against it)",
        file=out,
    )
