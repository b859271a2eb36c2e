"""``meetaudit sample``: a reproducible random sample of a period's reconciliation rows (see
:mod:`reporting.report.sample`), also drawn by ``meetaudit report --sample-size``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reporting.cli import (
    _from_option,
    _month_option,
    _to_option,
    _window,
    cli,
    handle_errors,
    open_database,
    pass_state,
    report_progress,
)
from reporting.errors import HarvestIncomplete
from reporting.periods import month_of

if TYPE_CHECKING:
    from reporting.config import Settings

SIZE_HELP = "How many rows to draw (at most the period's rows)."
SEED_HELP = (
    "The seed, a whole number you choose (a dice roll, today's date as 20261105…): the same "
    "period, size and seed always draw the same rows."
)


def draw_sample(
    state: Any,
    settings: Settings,
    db: Any,
    window: Any,
    *,
    label: str,
    size: int,
    seed: int,
    output: Path | str | None = None,
    as_of: dt.datetime | None = None,
    accompanies: str | None = None,
) -> Any:
    """Draw, write and record the sample with progress shown; print its summary."""
    from reporting.report.sample import compile_sample
    from reporting.report.witness import raise_if_unpublished

    with report_progress(state) as progress:
        result = compile_sample(
            settings, db, window, label=label, size=size, seed=seed, output=output,
            progress=progress, as_of=as_of, accompanies=accompanies,
        )  # fmt: skip
    for line in result.lines():
        click.echo(line)
    raise_if_unpublished(f"sample {result.sample_id}", result.ledger_head, result.witness_problems)
    return result


@cli.command("sample")
@_month_option
@_from_option
@_to_option
@click.option("--size", type=click.IntRange(min=1), required=True, help=SIZE_HELP)
@click.option("--seed", type=click.IntRange(min=0), required=True, help=SEED_HELP)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="File or folder (an existing one, or ending in /) to write; default: the output_dir "
    "setting. An existing file is never overwritten.",
)
@pass_state
@handle_errors
def sample_cmd(
    state: Any,
    month: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    size: int,
    seed: int,
    output: str | None,
) -> None:
    """Draw a random sample of a period's reconciliation rows, for an auditor's tests.

    The population is every reconciliation row of the period, as its report shows them, numbered
    in a fixed order; the rows are drawn with the seed you give, so the same period, size and seed
    draw the same rows again and anyone can re-perform the draw. Written as a PDF/A (the method,
    seed, population and sample size, the rows drawn) with sample.csv attached, and recorded in
    the report ledger: `meetaudit verify FILE.pdf` checks it. Exit status 3: the sample was
    written, but the period is not completely harvested (the sample says so).
    """
    settings = state.settings()
    window = _window(settings, month, start, end)
    label = month or (
        f"{window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}"
        if (start or end)
        else month_of(window, settings.zone)
    )
    with open_database(settings) as db:
        result = draw_sample(
            state, settings, db, window, label=label, size=size, seed=seed, output=output
        )
    if not result.complete:
        raise HarvestIncomplete(
            f"the sample {result.sample_id} was written and recorded, but the period is not "
            "completely harvested: the rows of meetings not harvested are not in its population "
            "(`meetaudit gaps` lists them)"
        )
