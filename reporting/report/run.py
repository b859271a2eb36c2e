"""Running a report as both faces run it: the warning before, the verdict after.

:func:`generate_report` writes and records the files; a run around it also says what the
operator must know. Before: whether a harvest is running against the database (the meetings it
has not stored yet are gaps in the report). After: whether the run ends in an error although its
files were written and recorded — the new ledger head could not be published
(:class:`~reporting.errors.WitnessError`), or the stored records of some meetings no longer match
what was harvested (:class:`~reporting.errors.VerificationError`). ``meetaudit report`` and
``meetaudit monthly`` print the warning and raise the verdict (exit status 1 or 4); the
console's report job shows both on its page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.errors import MeetauditError, VerificationError, WitnessError
from reporting.periods import Window
from reporting.report.api import ReportResult, generate_report
from reporting.report.witness import raise_if_unpublished

HARVEST_RUNNING = (
    "a harvest is running against this database right now; the meetings it has not stored yet "
    "are gaps in this report. Let it finish for a complete report."
)


@dataclass
class ReportOutcome:
    """A report written and recorded, what was said before it, and the verdict after it."""

    result: ReportResult
    warnings: list[str] = field(default_factory=list)
    #: The error the run ends with although its files were written and recorded, or ``None``.
    verdict: MeetauditError | None = None


def verdict_of(result: ReportResult) -> MeetauditError | None:
    """The error a written and recorded report ends with: its ledger head unpublished (first:
    it is about the ledger, whatever the report says), else stored records altered."""
    try:
        raise_if_unpublished(
            f"report {result.report_id}", result.ledger_head, result.witness_problems
        )
    except WitnessError as exc:
        return exc
    if result.altered_meetings:
        return VerificationError(
            f"the report {result.report_id} was written and recorded, and it says on its cover "
            f"that the stored records of {len(result.altered_meetings):,} meetings of the period "
            "no longer match what was harvested (changed in the database after the harvest). "
            "Keep it as evidence and find out who changed them"
        )
    return None


def run_report(
    settings: Settings,
    db: Database,
    window: Window,
    *,
    label: str,
    warn: Callable[[str], None] | None = None,
    **options: Any,
) -> ReportOutcome:
    """:func:`generate_report` of ``window`` (``options`` are its), with the warnings said
    before it — each also passed to ``warn`` as it arises, so a terminal shows it before the long
    part — and the verdict after it (see the module docstring)."""
    from reporting.harvest import harvest_running

    warnings = []
    if harvest_running(db):
        warnings.append(HARVEST_RUNNING)
        if warn is not None:
            warn(HARVEST_RUNNING)
    result = generate_report(settings, db, window, label=label, **options)
    return ReportOutcome(result, warnings, verdict_of(result))
