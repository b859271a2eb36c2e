"""The report's public functions: generate (or reproduce) a report, verify a file or the ledger.

Each takes the settings and the :class:`~reporting.db.engine.Database` and returns one result
object with the figures a command prints, so the CLI stays one call and one print:

* :func:`generate_report` — builds the context in one REPEATABLE READ, read-only transaction,
  writes each requested format atomically (temporary file, then rename: nothing half-written on
  failure), appends one ledger entry per file, and signs each file when a signing key is set.
  ``pdf`` writes the report, ``csv`` two files (the reconciliation and the meetings CSV), ``json``
  one. A file is never overwritten: an earlier report is evidence. When a file of the name asked
  for exists, the whole set is written beside it with the report id in its names.
  ``reproduce=<report id>`` renders an existing entry again, with its stored report id,
  generation time and parameters, and says whether the bytes are identical; it appends nothing.
* :func:`verify_file` — is this file one the ledger knows, unaltered (naming every report with
  that content, when identical reports were written); when, by whom and from which harvest runs
  was it generated; is its detached signature valid. A PDF's ``manifest.json`` is compared with
  what the ledger recorded for its report.
* :func:`verify_ledger` — is every recorded file unchanged where it was written (one moved away
  is a warning), does the whole hash chain hold; lists every entry.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import hashlib
import itertools
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from reporting import __version__
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import ReportRun
from reporting.errors import DatabaseError, ReportError, VerificationError
from reporting.harvest import Window
from reporting.report import ledger, signing, witness
from reporting.report.context import ReportContext, ReportParameters, build_context, iso_utc
from reporting.report.exports import MEETING_COLUMNS, RECONCILIATION_COLUMNS, write_json_export
from reporting.report.manifest import build_manifest, parse_manifest, recorded_differences
from reporting.report.render import ReportMeta, write_pdf

FORMATS = ("pdf", "csv", "json")
DEFAULT_ROSTER_ROW_LIMIT = 10_000
DEFAULT_EXCEPTION_ROW_LIMIT = 250
REPORT_KIND = "monthly"
_ID_TOKEN = re.compile(r"[^A-Za-z0-9-]+")

Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class _Output:
    """One file a format writes: its ledger format, what it holds, how its names end."""

    format: str  # the ledger's format: pdf, csv or json
    export: str | None  # for a CSV, the attachment it copies: reconciliation.csv, meetings.csv
    suffix: str  # the file name's ending, also the report id's (after the PDF's id)
    holds: str  # what it holds, in words


# What each --format writes, in this order; the first file of a format is its main one.
_OUTPUTS: dict[str, tuple[_Output, ...]] = {
    "pdf": (_Output("pdf", None, ".pdf", "the report, PDF/A-3b with the CSVs attached"),),
    "csv": (
        _Output("csv", "reconciliation.csv", ".csv", "reconciliation: one row per person per meeting"),
        _Output("csv", "meetings.csv", ".meetings.csv", "meetings: one row per meeting"),
    ),
    "json": (_Output("json", None, ".json", "manifest, meetings, reconciliation rows and gaps"),),
}  # fmt: skip


def _output_of(fmt: str, export: str | None) -> _Output:
    """The output a ledger entry recorded (an entry without ``export`` is the reconciliation)."""
    outs = _OUTPUTS.get(fmt, ())
    chosen = next((o for o in outs if export is None or o.export == export), None)
    if chosen is None:
        raise ReportError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")
    return chosen


class ReportInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a stop signal) while a report was being written — still a KeyboardInterrupt.

    ``files`` are those already finished before it: complete, in place and recorded in the
    ledger; nothing of the file being written is kept.
    """

    def __init__(self, files: list[ReportFile], *, reproducing: str | None = None) -> None:
        super().__init__()
        self.files = files
        self.reproducing = reproducing


@dataclass
class ReportFile:
    """One file a report run wrote (or, when reproducing, re-rendered)."""

    format: str
    path: Path
    report_id: str
    sha256: str
    bytes: int
    ledger_seq: int | None = None
    signature_path: Path | None = None
    holds: str | None = None  # what it holds, in words (the two CSVs differ)


@dataclass
class ReportResult:
    """What :func:`generate_report` did."""

    report_id: str
    label: str
    period_from: dt.datetime
    period_to: dt.datetime
    timezone: str
    generated_at: dt.datetime
    generated_by: str
    files: list[ReportFile]
    pages: int | None
    control_totals: dict[str, int]
    complete: bool
    gaps: int
    harvest_run_ids: list[int]
    rosters_included: bool
    elapsed_seconds: float
    reproduced_from: str | None = None
    matches: bool | None = None
    expected_sha256: str | None = None
    # Software that renders differently from what generated the original, if any (reproduce).
    renderer_changes: list[str] = field(default_factory=list)
    # Files that already had the names asked for: kept unchanged, this run wrote beside them.
    not_overwritten: list[Path] = field(default_factory=list)
    # The ledger head after this report, where it was published, and what failed publishing it.
    ledger_head: tuple[int, str] | None = None
    witness: str | None = None
    witness_problems: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        ctx: ReportContext,
        *,
        report_id: str,
        generated_at: dt.datetime,
        generated_by: str,
        files: list[ReportFile],
        pages: int | None,
        started: float,
        **reproduction: Any,
    ) -> ReportResult:
        """The result of rendering ``ctx``: period, totals and completeness come from it."""
        p = ctx.params
        return cls(
            report_id=report_id,
            label=p.label,
            period_from=p.period_from,
            period_to=p.period_to,
            timezone=p.timezone,
            generated_at=generated_at,
            generated_by=generated_by,
            files=files,
            pages=pages,
            control_totals=asdict(ctx.totals),
            complete=ctx.complete,
            gaps=ctx.totals.gaps,
            harvest_run_ids=[r["id"] for r in ctx.harvest_runs],
            rosters_included=ctx.rosters_included,
            elapsed_seconds=time.monotonic() - started,
            **reproduction,
        )

    @property
    def path(self) -> Path:
        """The first file written (the PDF when one was asked for)."""
        return self.files[0].path

    @property
    def sha256(self) -> str:
        """SHA-256 of the first file."""
        return self.files[0].sha256

    def lines(self) -> list[str]:
        """A short human summary, one line each."""
        t = self.control_totals
        out = []
        if self.reproduced_from:
            verdict = "identical" if self.matches else "DIFFERENT"
            out.append(f"Re-rendered report {self.reproduced_from}: {verdict} bytes")
            out.append(f"  ledger SHA-256 {self.expected_sha256}")
            out.append(f"  new    SHA-256 {self.sha256}")
        else:
            out.append(f"Report {self.report_id} ({self.label}, {self.timezone})")
        if self.not_overwritten:
            names = ", ".join(str(p) for p in self.not_overwritten)
            one = len(self.not_overwritten) == 1
            exist, stay, it = ("exists", "stays", "it") if one else ("exist", "stay", "them")
            written = (
                f"the re-rendered file was written beside {it} under a new name"
                if self.reproduced_from
                else f"this report was written beside {it}, with its report id in the file names"
            )
            out.append(
                f"  Not overwritten: {names} already {exist} and {stay} unchanged; {written}."
            )
        for f in self.files:
            extra = f", {self.pages} pages" if f.format == "pdf" and self.pages else ""
            extra += f"; {f.holds}" if f.format == "csv" and f.holds else ""
            out.append(f"  {f.format.upper():4} {f.path}  ({f.bytes:,} bytes{extra})")
            out.append(f"       SHA-256 {f.sha256}")
            if f.signature_path:
                out.append(f"       signature {f.signature_path}")
        out.append(
            f"  {t['meetings']:,} meetings ({t['meetings_complete']:,} complete), "
            f"{t['participants']:,} participants, {t['invitees']:,} invitees, "
            f"{t['sessions']:,} sessions"
        )
        if self.ledger_head is not None:
            seq, sha = self.ledger_head
            out.append(f"  ledger head: entry {seq}, SHA-256 {sha}")
            if self.witness and not self.witness_problems:
                out.append(f"       published to {self.witness}")
        out.extend(f"  WITNESS FAILED: {p}" for p in self.witness_problems)
        if not self.complete:
            missing = (
                f"{t['meetings_not_harvested']:,} meetings not harvested, {self.gaps:,} open gaps "
                "(listed in the report's Appendix A)"
            )
            if self.reproduced_from:
                out.append(
                    f"  INCOMPLETE, as the original was: {missing} when it was generated. A "
                    "reproduction shows the report as it was then, on purpose, even if those "
                    "meetings were harvested since; a new report of the period (meetaudit report) "
                    "shows the data as it is now"
                )
            else:
                out.append(
                    f"  INCOMPLETE: {missing}; run meetaudit harvest for the period, then "
                    "report again"
                )
        return out


@dataclass
class LedgerEntry:
    """One ledger entry as :func:`verify_ledger` lists it: which file, when, by whom, of what."""

    seq: int
    report_id: str
    format: str
    generated_at: dt.datetime
    generated_by: str
    period_from: dt.datetime
    period_to: dt.datetime
    timezone: str
    complete: bool
    file_sha256: str
    output_path: str
    problem: bool = False  # the chain check found something wrong with this entry
    meetaudit_version: str | None = None
    harvest_run_ids: list[int] = field(default_factory=list)
    file: str | None = None  # verify --ledger: the file at output_path now (UNCHANGED, CHANGED…)

    @property
    def period(self) -> str:
        """The period in the report's time zone: ``2026-10``, ``2026-10-01 to 2026-10-14``
        (whole days, the last one included), else start and end times (end excluded)."""
        try:
            zone: dt.tzinfo = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = dt.UTC
        start, end = self.period_from.astimezone(zone), self.period_to.astimezone(zone)
        if start.time() == end.time() == dt.time(0) and end > start:
            last = end.date() - dt.timedelta(days=1)
            if start.day == end.day == 1 and (last.year, last.month) == (start.year, start.month):
                text = f"{start:%Y-%m}"
            elif last == start.date():
                text = f"{start:%Y-%m-%d}"
            else:
                text = f"{start:%Y-%m-%d} to {last:%Y-%m-%d}"
        else:
            text = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"
        return f"{text} ({self.timezone})"

    def cells(self) -> tuple[str, ...]:
        """The entry's cells, in the order of :data:`LEDGER_COLUMNS`."""
        return (
            str(self.seq),
            self.report_id,
            self.format,
            self.generated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            self.generated_by,
            self.period,
            "complete" if self.complete else "INCOMPLETE",
            self.file_sha256[:12],
            self.file or "",
            self.output_path,
        )

    def facts(self) -> list[str]:
        """What the ledger recorded about the file, one line each: when and by whom it was
        generated, of which period, from which harvest runs."""
        runs = ", ".join(str(r) for r in self.harvest_run_ids) or "none"
        return [
            f"generated {iso_utc(self.generated_at)} by {self.generated_by}, meetaudit "
            f"{self.meetaudit_version}, ledger entry {self.seq}",
            f"period {iso_utc(self.period_from)} – {iso_utc(self.period_to)} ({self.timezone}); "
            f"{'complete' if self.complete else 'INCOMPLETE'}",
            f"from harvest runs {runs}",
        ]


LEDGER_COLUMNS = (
    "seq", "report id", "format", "generated (UTC)", "by", "period", "harvest", "file SHA-256",
    "file now", "written to",
)  # fmt: skip

# What verify --ledger found at the place an entry's file was written.
UNCHANGED, CHANGED, NOT_FOUND, UNREADABLE = "unchanged", "CHANGED", "not found", "unreadable"


@dataclass
class VerifyResult:
    """What :func:`verify_file` found out about a file.

    A file is one of: a recorded report file (``entries``: every entry recording its SHA-256 —
    several when identical reports were written, e.g. two CSV reports of unchanged data); the
    ``manifest.json`` attached to a PDF report (``manifest``; not recorded on its own, but its
    report is: ``manifest_of``); a file claiming a recorded report with other bytes
    (``altered``); a meetaudit CSV the ledger does not record (``export``); or unknown.
    """

    path: Path
    sha256: str
    bytes: int
    entries: list[LedgerEntry] = field(default_factory=list)
    altered: bool = False
    claimed_report_id: str | None = None
    manifest: bool = False
    manifest_of: LedgerEntry | None = None
    manifest_differences: list[str] = field(default_factory=list)
    export: str | None = None  # an unrecorded CSV: reconciliation.csv or meetings.csv
    chain_ok: bool = True
    signature: str = "absent"  # "valid", "invalid", "absent", "unchecked"
    signature_key: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        """True when the ledger records a file with exactly this content."""
        return bool(self.entries)

    @property
    def entry(self) -> LedgerEntry | None:
        """The entry this file is: the only one with its content, else the one recorded as
        written at this very path; ``None`` when identical content leaves it open."""
        if len(self.entries) == 1:
            return self.entries[0]
        here = str(self.path.resolve())
        at_path = [e for e in self.entries if e.output_path == here]
        return at_path[0] if len(at_path) == 1 else None

    @property
    def report_id(self) -> str | None:
        """The report id of :attr:`entry`."""
        return self.entry.report_id if self.entry else None

    @property
    def generated_by(self) -> str | None:
        """Who generated :attr:`entry`."""
        return self.entry.generated_by if self.entry else None

    @property
    def harvest_run_ids(self) -> list[int]:
        """The harvest runs :attr:`entry` was generated from."""
        return self.entry.harvest_run_ids if self.entry else []

    @property
    def output_path(self) -> str | None:
        """Where :attr:`entry`'s file was written."""
        return self.entry.output_path if self.entry else None

    @property
    def entry_intact(self) -> bool:
        """True when no entry recording this file (or its manifest's report) has a problem."""
        recorded = [*self.entries, *([self.manifest_of] if self.manifest_of else [])]
        return bool(recorded) and not any(e.problem for e in recorded)

    @property
    def ok(self) -> bool:
        """True when the file is recorded (or is a manifest agreeing with its report's entry),
        every entry involved is intact and no signature is bad."""
        agrees = self.known or (self.manifest_of is not None and not self.manifest_differences)
        return agrees and self.entry_intact and self.chain_ok and self.signature != "invalid"

    def verdict(self) -> str:
        """The first line: what the file is, and whether it passed."""
        p, n = self.path, len(self.entries)
        if self.manifest_of is not None:
            rid = self.manifest_of.report_id
            held = "attached to" if self.manifest_of.format == "pdf" else "at the head of"
            if self.ok:
                return (
                    f"OK: {p} is the manifest.json {held} report {rid}, and what it says "
                    "agrees with what the ledger recorded for that report."
                )
            return f"FAILED: {p} is a manifest of report {rid}, but see below."
        if self.manifest:
            return f"FAILED: {p} is a report manifest, but of no report the ledger knows."
        if self.known and self.ok:
            if n == 1:
                return f"OK: {p} is report {self.report_id}, unaltered."
            return (
                f"OK: {p} is unaltered: its content is exactly that of {n} recorded report "
                "files, listed below (reports of unchanged data are identical)."
            )
        if self.known:
            named = f"is report {self.report_id}" if n == 1 else f"has the content of {n} reports"
            return f"FAILED: {p} {named}, but see below."
        if self.altered:
            return (
                f"FAILED: {p} claims to be report {self.claimed_report_id}, but its SHA-256 "
                "differs from the one recorded: the file was altered."
            )
        if self.export:
            return (
                f"NOT VERIFIED: {p} is a meetaudit {self.export} (by its header) that the "
                "ledger does not record."
            )
        return f"FAILED: {p} is not a report the ledger knows."

    def lines(self) -> list[str]:
        """A short human verdict and the facts behind it."""
        out = [self.verdict(), f"  SHA-256 {self.sha256}"]
        if len(self.entries) == 1:
            out.extend(f"  {fact}" for fact in self.entries[0].facts())
        elif self.entries:
            here = self.entry
            for e in self.entries:
                mark = " (this file is where it was written)" if e is here else ""
                out.append(f"  - report {e.report_id}{mark}:")
                out.extend(f"      {fact}" for fact in [*e.facts(), f"written to {e.output_path}"])
            if here is None:
                out.append(
                    "  The content alone cannot tell which of them this copy was made from; it "
                    "is unaltered either way."
                )
        if self.manifest_of is not None:
            out.extend(f"  {fact}" for fact in self.manifest_of.facts())
            out.append(
                "  note: the ledger records the SHA-256 of the report file, not of its manifest. "
                "Compared with the ledger: the report id, format, period, parameters, "
                "completeness, control totals, harvest runs, and when, by whom and with which "
                "software it was generated. The rest (flag counts, the attachments' SHA-256) only "
                f"the report file itself proves: meetaudit verify {self.manifest_of.output_path}"
            )
        out.append(
            f"  signature: {self.signature}"
            + (f" ({self.signature_key})" if self.signature_key else "")
        )
        out.extend(f"  problem: {p}" for p in self.problems)
        return out

    def raise_for_status(self) -> None:
        """Raise :class:`VerificationError` (exit status 4) unless :attr:`ok`."""
        if not self.ok:
            raise VerificationError(
                " ".join(
                    line.strip()
                    for line in self.lines()[:1] + [f"problem: {p}" for p in self.problems]
                )
            )


@dataclass
class LedgerCheck:
    """What :func:`verify_ledger` found: the recorded files, then the chain."""

    entries: int
    head_seq: int | None
    head_sha256: str | None
    trigger_present: bool
    problems: list[str]  # of the chain, the trigger, the witness, files changed where written
    listing: list[LedgerEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # files not found or not readable
    chain_ok: bool = True
    witness: list[str] = field(default_factory=list)  # what the witness check found, in words

    @property
    def ok(self) -> bool:
        """True when every entry's hash and link recompute and no recorded file was changed
        (a file moved away is a warning, not a failure)."""
        return not self.problems

    def table(self) -> list[str]:
        """Every entry, oldest first, one line each under a header (nothing when empty)."""
        if not self.listing:
            return []
        rows = [LEDGER_COLUMNS, *(e.cells() for e in self.listing)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(LEDGER_COLUMNS))]
        marks = ["", *("!" if e.problem or e.file == CHANGED else "" for e in self.listing)]
        out = []
        for mark, row in zip(marks, rows, strict=True):
            cells = [row[0].rjust(widths[0])]
            cells += [cell.ljust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            out.append(f"{mark:1} {'  '.join(cells)}".rstrip())
        if any(marks):
            out.append("Entries marked ! have a problem (listed below).")
        return out

    def files(self) -> str:
        """How many recorded files are unchanged, changed, gone from where they were written."""
        counts = {state: 0 for state in (UNCHANGED, CHANGED, NOT_FOUND, UNREADABLE)}
        for e in self.listing:
            if e.file in counts:
                counts[e.file] += 1
        found = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        return f"files, each at the place it was written: {found}"

    def lines(self) -> list[str]:
        """Every entry, then a verdict, the files, the chain, its head (keep it elsewhere), each
        warning and problem."""
        verdict = "OK" if self.ok else "FAILED"
        out = []
        if self.listing:
            out.append(
                "Report ledger, oldest first (harvest: whether the period was completely "
                "harvested; file SHA-256: its first 12 hex digits; file now: the file at the "
                "place it was written, checked against that SHA-256):"
            )
            out.extend(self.table())
        elif self.entries == 0:
            out.append(
                "The report ledger is empty"
                + (": no report has been written yet." if self.ok else ".")
            )
        out.append(
            f"{verdict}: report ledger of {self.entries} entr{'y' if self.entries == 1 else 'ies'}"
        )
        if self.listing:
            out.append(f"  {self.files()}")
        out.append(
            "  hash chain: "
            + ("intact" if self.chain_ok else "BROKEN: the ledger itself was altered (see below)")
        )
        if self.head_seq is not None:
            out.append(f"  head: entry {self.head_seq}, SHA-256 {self.head_sha256}")
            out.append(
                "  (note the head hash elsewhere too, a ticket or an email, and check against it "
                "later with --expect-head)"
            )
        out.append(
            "  append-only trigger: "
            + ("in place" if self.trigger_present else "MISSING OR DISABLED (see below)")
        )
        out.extend(f"  {w}" for w in self.witness)
        out.extend(f"  warning: {w}" for w in self.warnings)
        out.extend(f"  problem: {p}" for p in self.problems)
        return out

    def raise_for_status(self) -> None:
        """Raise :class:`VerificationError` (exit status 4) unless :attr:`ok`."""
        if not self.ok:
            raise VerificationError(
                "the report ledger failed verification: " + "; ".join(self.problems)
            )


# -- generation ---------------------------------------------------------------------------------


@contextlib.contextmanager
def snapshot(db: Database) -> Iterator[Session]:
    """A session in one REPEATABLE READ, read-only transaction (rolled back at the end)."""
    try:
        with db.engine.connect() as conn:
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with Session(bind=conn) as session, session.begin():
                yield session
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseError(
            f"reading the report data from PostgreSQL at {db.display_url} failed: "
            f"{str(exc.orig or exc).strip().splitlines()[0]}. Nothing was written; check the "
            "server and run the report again."
        ) from None


def new_report_id(label: str) -> str:
    """A fresh report id: ``MAR-<label>-<8 random base32 characters>``."""
    token = base64.b32encode(secrets.token_bytes(5)).decode()
    clean = _ID_TOKEN.sub("-", label).strip("-") or "report"
    return f"MAR-{clean}-{token}"


def _next_full_second() -> dt.datetime:
    """The next whole second, once it has passed: the report's generation time and ``as_of``.

    Every row the snapshot sees was recorded before it (a harvest that finished a moment ago is
    included), and the PDF's dates have whole seconds. Waiting costs under a second.
    """
    now = dt.datetime.now(dt.UTC)
    at = now.replace(microsecond=0) + dt.timedelta(seconds=1)
    time.sleep(max(0.0, (at - now).total_seconds()) + 0.001)
    return at


def _sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _weasyprint_version() -> str:
    import weasyprint

    return str(weasyprint.__version__)


def _write_output(
    out: _Output,
    ctx: ReportContext,
    meta: ReportMeta,
    target: Path,
    *,
    workers: int | None,
    progress: Progress | None,
) -> int | None:
    """Write one output to ``target``; return the page count for a PDF."""
    fmt = out.format
    if fmt == "pdf":
        info = write_pdf(ctx, meta, target, workers=workers, progress=progress)
        return info.pages
    if fmt == "csv":
        source = ctx.meetings_csv if out.export == "meetings.csv" else ctx.reconciliation_csv
        shutil.copyfile(source.path, target)
        return None
    if fmt == "json":
        assert ctx.rows is not None
        manifest = build_manifest(ctx, meta, fmt="json")
        with target.open("wb") as fh:
            write_json_export(
                fh,
                manifest,
                ({c: m[c] for c in MEETING_COLUMNS} for m in ctx.meetings),
                iter(ctx.rows),
                iter(ctx.gaps),
            )
        return None
    raise ReportError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")


@dataclass(frozen=True)
class _Target:
    """Where one file goes: ``folder/base+suffix``, or a name beside it when that is taken."""

    folder: Path
    base: str
    suffix: str

    @property
    def path(self) -> Path:
        """The name asked for."""
        return self.folder / f"{self.base}{self.suffix}"

    def names(self, tag: str | None, *, first: bool = True) -> Iterator[Path]:
        """The names to try in turn: :attr:`path` (when ``first``), ``base.TAG+suffix``, then
        ``base.TAG.2+suffix``, ``base.TAG.3+suffix``… (without a tag: ``base.2+suffix``…)."""
        if first:
            yield self.path
        stem = f"{self.base}.{tag}" if tag else self.base
        if tag:
            yield self.folder / f"{stem}{self.suffix}"
        for n in itertools.count(2):
            yield self.folder / f"{stem}.{n}{self.suffix}"


def _as_folder(output: Path | str) -> Path | None:
    """``output`` as a folder, when it names one: it ends in a path separator (``reports/``),
    or is an existing directory. A string is needed for the separator: ``Path`` drops it."""
    text = os.fspath(output)
    separators = tuple(sep for sep in (os.sep, os.altsep, "/") if sep)
    if text.endswith(separators) or Path(text).is_dir():
        return Path(text)
    return None


def _targets(
    settings: Settings, output: Path | str | None, outputs: list[_Output], stem: str
) -> dict[_Output, _Target]:
    """Where each output goes.

    No ``output``: ``settings.output_dir/stem+suffix``. A folder (see :func:`_as_folder`): the
    same names in it. A file name: one format's main file takes it as given; every other file
    takes its stem (``october.pdf`` → ``october.csv``, ``october.meetings.csv``).
    """
    folder = settings.output_dir if output is None else _as_folder(output)
    if folder is not None:
        return {out: _Target(folder, stem, out.suffix) for out in outputs}
    path = Path(output or "")
    exact = len({out.format for out in outputs}) == 1 and bool(path.suffix)
    known = path.suffix.lower().lstrip(".") in FORMATS
    base = path.stem if exact or known else path.name
    targets = {out: _Target(path.parent, base, out.suffix) for out in outputs}
    if exact:
        targets[outputs[0]] = _Target(path.parent, path.stem, path.suffix)
    return targets


def _taken(path: Path) -> Path | None:
    """What stands in the way of writing ``path``: the file itself, or its signature ``.sig``
    (an old signature beside a new file would make it fail verification), else ``None``."""
    for candidate in (path, signing.signature_path(path)):
        if os.path.lexists(candidate):
            return candidate
    return None


# Errors of os.link on a file system without hard links (FAT, some network shares).
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS, errno.EXDEV}
)


def _place(temp: Path, target: Path) -> bool:
    """Rename the finished file ``temp`` to ``target`` unless that name exists; never replace a
    file. A hard link fails atomically when the name is taken, so even a report written at the
    same moment is safe. Returns False (``temp`` untouched) when the name is taken."""
    try:
        os.link(temp, target)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(target):  # no hard links here: look, then rename
            return False
        os.replace(temp, target)
    else:
        temp.unlink()
    return True


def _claim(temp: Path, temp_sig: Path | None, names: Iterator[Path], placed: list[Path]) -> Path:
    """Place ``temp`` (and its signature) under the first of ``names`` free for both; return it.

    Every name placed is appended to ``placed`` (for the caller to remove if it fails later)."""
    for target in names:
        sig = signing.signature_path(target)
        if os.path.lexists(sig) or not _place(temp, target):
            continue
        placed.append(target)
        if temp_sig is None:
            return target
        if _place(temp_sig, sig):
            placed.append(sig)
            return target
        # The signature's name was taken meanwhile: take the file back, try the next name.
        placed.remove(target)
        os.replace(target, temp)
    raise AssertionError("unreachable: the names never run out")  # pragma: no cover


def _prepare_folder(folder: Path) -> None:
    """Create the output folder and make sure files can be written there, before any work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _temp_beside(folder / "write-test")
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as exc:
        raise ReportError(
            f"cannot write the report to {folder}: {exc.strerror or exc}; choose another place "
            "with -o (or the OUTPUT_DIR setting). Nothing was written or recorded."
        ) from None


def _discard(path: Path) -> None:
    """Remove a temporary file if it is there; a failure to remove must not hide the real one."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _temp_beside(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")


def generate_report(
    settings: Settings,
    db: Database,
    window: Window | None,
    *,
    label: str,
    output: Path | str | None = None,
    formats: tuple[str, ...] | list[str] = ("pdf",),
    reproduce: str | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    roster_row_limit: int = DEFAULT_ROSTER_ROW_LIMIT,
    exception_row_limit: int = DEFAULT_EXCEPTION_ROW_LIMIT,
) -> ReportResult:
    """Build, write, record and sign the report of ``window``; see the module docstring.

    ``formats`` are any of ``pdf``, ``csv``, ``json``; ``csv`` writes two files, the
    reconciliation and the meetings CSV. Each file gets its own ledger entry (report id ``MAR-…``
    for the PDF, ``MAR-….csv``, ``MAR-….meetings.csv``, ``MAR-….json`` for the exports). Files go
    to ``output`` (a file name — other files take its stem — or a folder: an existing directory,
    or a string ending in a path separator, created if missing), else to
    ``settings.output_dir``. No file is ever overwritten: when a name asked for (or its ``.sig``)
    exists, every file of this report is written beside it as ``NAME.<report id>.EXT`` instead,
    and :attr:`ReportResult.not_overwritten` says which files were in the way. The ledger records
    the names actually written. On Ctrl-C, :class:`ReportInterrupted` (a KeyboardInterrupt) says
    which files were already finished and recorded. ``progress(stage, done, total)`` is called
    now and then (stages
    ``reading`` with meetings read of the period's total, ``writing``, ``rendering`` with parts
    done, ``assembling``). ``workers`` caps the rendering processes (default: the CPUs, at most
    4); it never changes the output. ``roster_row_limit``: above this many person rows the PDF
    prints one line per meeting instead of full rosters (every row stays in the attachment);
    ``exception_row_limit``: rows printed per exception list.
    """
    started = time.monotonic()
    note = progress or (lambda stage, done, total: None)
    if reproduce is not None:
        try:
            return _reproduce(settings, db, reproduce, output=output, workers=workers,
                              progress=progress, started=started)  # fmt: skip
        except ReportInterrupted:
            raise
        except KeyboardInterrupt as exc:
            raise ReportInterrupted([], reproducing=reproduce) from exc
    if window is None:
        raise ReportError("a report needs a period (a month such as 2026-10), or --reproduce ID")
    formats = tuple(dict.fromkeys(f.lower() for f in formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ReportError(
            f"unknown report format {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(FORMATS)}"
        )
    generated_at = _next_full_second()
    if window.end > generated_at:
        # Webex cannot have finished meetings of time still to come: such a report would be
        # evidence of nothing, recorded in the ledger for good.
        raise ReportError(
            f"the period {label} is not over yet: it ends "
            f"{window.end.astimezone(settings.zone):%Y-%m-%d %H:%M} ({settings.timezone}). A report covers "
            "a finished period; for the part that is over, give --from and --to with an end that "
            "has passed."
        )
    base_id = new_report_id(label)
    params = ReportParameters(
        label=label,
        period_from=window.start,
        period_to=window.end,
        timezone=settings.timezone,
        org_name=settings.org_name,
        org_domains=tuple(settings.org_domains),
        org_ids=tuple(settings.org_ids),
        min_attendance_minutes=settings.min_attendance_minutes,
        show_phone_numbers=settings.show_phone_numbers,
        roster_row_limit=roster_row_limit,
        exception_row_limit=exception_row_limit,
        as_of=generated_at,
    )
    witness_ = witness.Witness.from_settings(settings)
    head: tuple[int, str] | None = None
    witness_problems: list[str] = []
    key = signing.load_private_key(settings.signing_key_file) if settings.signing_key_file else None
    public = key.public_key() if key else None
    key_text = f"Ed25519 {signing.fingerprint(public)}" if public else None
    safe_label = _ID_TOKEN.sub("-", label).strip("-") or "report"
    outputs = [out for fmt in formats for out in _OUTPUTS[fmt]]
    targets = _targets(settings, output, outputs, f"meetaudit-{safe_label}-{base_id}")
    for target in targets.values():
        try:
            _prepare_folder(target.folder)
        except OSError as exc:
            raise ReportError(
                f"cannot create the output folder {target.folder}: {exc.strerror}"
            ) from exc
    # An earlier file is evidence: if any name is taken, the whole set moves beside it, so the
    # files of one report keep the same names and none of an earlier one is replaced.
    in_the_way = [p for p in (_taken(t.path) for t in targets.values()) if p is not None]

    files: list[ReportFile] = []
    pages: int | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="meetaudit-report-") as tmp:
            with snapshot(db) as session:
                ctx = build_context(
                    session, params, workdir=Path(tmp), keep_rows="json" in formats, progress=note
                )
            for out in outputs:
                report_id = base_id + (out.suffix if out.format != "pdf" else "")
                meta = ReportMeta(
                    report_id=report_id,
                    generated_at=generated_at,
                    generated_by=settings.operator,
                    meetaudit_version=__version__,
                    weasyprint_version=_weasyprint_version(),
                    signing_key=key_text,
                )
                target = targets[out]
                temp = _temp_beside(target.path)
                temp_sig = _temp_beside(signing.signature_path(target.path)) if key else None
                try:
                    note("writing", 0, None)
                    n_pages = _write_output(out, ctx, meta, temp, workers=workers, progress=note)
                    if n_pages is not None:
                        pages = n_pages
                    sha, size = _sha256_file(temp)
                    if key is not None and temp_sig is not None:
                        temp_sig.write_bytes(signing.sign(key, temp.read_bytes()))
                    parameters: dict[str, Any] = {
                        "report": params.to_json(),
                        "renderer": {"weasyprint": meta.weasyprint_version},
                        "formats": list(formats),
                        "signing_key": key_text,
                        "signing_public_key": (
                            base64.b64encode(signing.raw_public(public)).decode()
                            if public
                            else None
                        ),
                        "pages": n_pages,
                    }
                    if out.export:
                        parameters["export"] = out.export
                    fields = {
                        "report_id": report_id,
                        "kind": REPORT_KIND,
                        "generated_at": generated_at,
                        "generated_by": settings.operator,
                        "meetaudit_version": __version__,
                        "period_from": window.start,
                        "period_to": window.end,
                        "timezone": settings.timezone,
                        "format": out.format,
                        "parameters": parameters,
                        "harvest_run_ids": [r["id"] for r in ctx.harvest_runs],
                        "control_totals": asdict(ctx.totals),
                        "complete": ctx.complete,
                        "file_sha256": sha,
                        "file_bytes": size,
                    }
                    names = target.names(base_id, first=not in_the_way)
                    row, path = _publish(db, fields, temp, temp_sig, names)
                    seq, head = row.seq, (row.seq, row.entry_sha256)
                    witness_problems += witness_.publish(
                        row.seq, row.entry_sha256, report_id, generated_at
                    )
                    files.append(
                        ReportFile(
                            out.format, path, report_id, sha, size, seq,
                            signing.signature_path(path) if key else None, out.holds,
                        )
                    )  # fmt: skip
                except (OperationalError, DBAPIError) as exc:
                    raise DatabaseError(
                        f"recording report {report_id} in the ledger failed: "
                        f"{str(exc.orig or exc).strip().splitlines()[0]}; no file was kept. "
                        "Check the database and run the report again."
                    ) from None
                except OSError as exc:
                    raise ReportError(
                        f"writing {target.path} failed: {exc.strerror or exc}; nothing was kept "
                        "and nothing was recorded in the ledger."
                    ) from exc
                finally:
                    _discard(temp)
                    if temp_sig is not None:
                        _discard(temp_sig)
    except ReportInterrupted:
        raise
    except KeyboardInterrupt as exc:
        raise ReportInterrupted(files) from exc
    return ReportResult.of(
        ctx, report_id=base_id, generated_at=generated_at, generated_by=settings.operator,
        files=files, pages=pages, started=started, not_overwritten=in_the_way,
        ledger_head=head, witness=witness_.describe(), witness_problems=witness_problems,
    )  # fmt: skip


def _publish(
    db: Database,
    fields: dict[str, Any],
    temp: Path,
    temp_sig: Path | None,
    names: Iterator[Path],
) -> tuple[ReportRun, Path]:
    """Put the file (and signature) in place under the first free name, then append the ledger
    entry recording that name; all or nothing. Returns the committed entry and the file's path.

    The file is in place before the entry commits; when the commit fails it is removed again.
    """
    placed: list[Path] = []
    committed = False
    try:
        target = _claim(temp, temp_sig, names, placed)
        fields = {
            **fields,
            "output_path": str(target.resolve()),
            "signature_path": (
                str(signing.signature_path(target).resolve()) if temp_sig is not None else None
            ),
        }
        with db.session() as session:
            row = ledger.append(session, fields)
        committed = True
        return row, target
    finally:
        if not committed:
            for path in placed:
                _discard(path)


def _reproduce(
    settings: Settings,
    db: Database,
    report_id: str,
    *,
    output: Path | str | None,
    workers: int | None,
    progress: Progress | None,
    started: float,
) -> ReportResult:
    """Render a ledger entry again with its stored id, time and parameters; compare the hashes.

    Written to ``output`` (a file, or a folder) or ``settings.output_dir``, by default as the
    report's id and file ending with ``.reproduced`` between (``MAR-….reproduced.pdf``,
    ``MAR-….reproduced.meetings.csv``); never over an existing file: then as ``NAME.2.EXT``,
    ``NAME.3.EXT``…
    """
    with db.sessions() as session:
        entry = _entry_to_reproduce(session, report_id)
    stored = entry["parameters"]
    params = ReportParameters.from_json(stored["report"])
    fmt = entry["format"]
    out = _output_of(fmt, stored.get("export"))
    meta = ReportMeta(
        report_id=entry["report_id"],
        generated_at=entry["generated_at"].astimezone(dt.UTC),
        generated_by=entry["generated_by"],
        meetaudit_version=entry["meetaudit_version"],
        weasyprint_version=stored["renderer"]["weasyprint"],
        signing_key=stored.get("signing_key"),
    )
    folder = settings.output_dir if output is None else _as_folder(output)
    if folder is not None:
        base_id = entry["report_id"].removesuffix(out.suffix)  # a PDF's id has no ending
        target = _Target(folder, f"{base_id}.reproduced", out.suffix)
    else:
        path = Path(output or "")
        target = _Target(path.parent, path.stem, path.suffix)
    _prepare_folder(target.folder)
    in_the_way = [p for p in [_taken(target.path)] if p is not None]
    temp = _temp_beside(target.path)
    with tempfile.TemporaryDirectory(prefix="meetaudit-report-") as tmp:
        with snapshot(db) as session:
            ctx = build_context(
                session, params, workdir=Path(tmp), keep_rows=fmt == "json", progress=progress
            )
        try:
            pages = _write_output(out, ctx, meta, temp, workers=workers, progress=progress)
            sha, size = _sha256_file(temp)
            written = _claim(temp, None, target.names(None), [])
        finally:
            _discard(temp)
    return ReportResult.of(
        ctx, report_id=entry["report_id"], generated_at=meta.generated_at,
        generated_by=meta.generated_by, pages=pages, started=started,
        files=[ReportFile(fmt, written, entry["report_id"], sha, size, holds=out.holds)],
        reproduced_from=entry["report_id"], matches=sha == entry["file_sha256"],
        expected_sha256=entry["file_sha256"], renderer_changes=_renderer_changes(meta),
        not_overwritten=in_the_way,
    )  # fmt: skip


def _entry_to_reproduce(session: Session, report_id: str) -> dict[str, Any]:
    """The entry of ``report_id``; when there is none, an error naming the ids the same report
    run does have (``MAR-…`` asked for, but only ``MAR-….csv`` and ``MAR-….meetings.csv`` were
    written), else where the ids are listed."""
    row = ledger.find_by_report_id(session, report_id)
    if row is not None:
        return ledger.as_dict(row)
    base_id = _base_report_id(report_id)
    same_run = [ledger.as_dict(r) for r in ledger.find_of_report(session, base_id)]
    if not same_run:
        raise ReportError(
            f"no report {report_id!r} in the ledger. `meetaudit verify --ledger` lists every "
            "report id: a PDF report's looks like MAR-2026-10-ABCD2345, and the CSV and JSON "
            "files' end in .csv, .meetings.csv or .json"
        )
    ids = "; ".join(
        f"{e['report_id']} ({_output_of(e['format'], e['parameters'].get('export')).holds})"
        for e in same_run
    )
    n = len(same_run)
    raise ReportError(
        f"the ledger has no report file with the id {report_id!r}. Report {base_id} was written "
        f"as {n} file{'s' if n > 1 else ''}, each with its own id: {ids}. Give the exact id of "
        f"the one to render again, e.g. meetaudit report --reproduce {same_run[0]['report_id']}"
    )


def _base_report_id(report_id: str) -> str:
    """``report_id`` without a file ending (``.pdf``, ``.csv``, ``.meetings.csv``, ``.json``):
    the id of the report run, which its PDF has as it is."""
    endings = sorted({o.suffix for outs in _OUTPUTS.values() for o in outs}, key=len, reverse=True)
    ending = next((e for e in endings if report_id.lower().endswith(e)), "")
    return report_id[: len(report_id) - len(ending)]


def _renderer_changes(original: ReportMeta) -> list[str]:
    """What renders differently now from when ``original`` was generated: a byte-identical
    reproduction needs the same meetaudit and WeasyPrint (and Pango, HarfBuzz) versions."""
    changes = []
    if original.meetaudit_version != __version__:
        changes.append(f"meetaudit {original.meetaudit_version} then, {__version__} now")
    if original.weasyprint_version != _weasyprint_version():
        changes.append(
            f"WeasyPrint {original.weasyprint_version} then, {_weasyprint_version()} now"
        )
    return changes


# -- verification -------------------------------------------------------------------------------

_PDF_ID = re.compile(rb"<dc:identifier>([A-Za-z0-9._-]{1,120})</dc:identifier>")
_JSON_ID = re.compile(rb'"report_id":\s*"([A-Za-z0-9._-]{1,120})"')


def _claimed_id(data: bytes) -> str | None:
    """The report id a PDF, JSON export or manifest names inside it (a CSV names none)."""
    for pattern in (_PDF_ID, _JSON_ID):
        match = pattern.search(data)
        if match:
            return match.group(1).decode()
    return None


def _what_it_is(data: bytes) -> str:
    """A hint for a file the ledger does not know: empty, or not a report at all."""
    if not data:
        return " (the file is empty)"
    head = data[:4096]
    text_like = not any(b < 9 or 13 < b < 32 for b in head)  # no control bytes: CSV or JSON
    if data.startswith(b"%PDF-") or (text_like and (b"," in head or head.lstrip()[:1] == b"{")):
        return ""
    return " (it does not look like a meetaudit report: not a PDF, CSV or JSON file)"


_CSV_HEADERS = {
    ",".join(columns).encode(): name
    for name, columns in (
        ("reconciliation.csv", RECONCILIATION_COLUMNS),
        ("meetings.csv", MEETING_COLUMNS),
    )
}


def _export_of(data: bytes) -> str | None:
    """Which of the report's CSV files ``data`` is, by its header row, else ``None``.

    A CSV carries no report id: its header is all that tells it is meetaudit's."""
    return _CSV_HEADERS.get(data.split(b"\n", 1)[0].rstrip(b"\r"))


def _listed(entry: dict[str, Any], bad_seqs: set[int]) -> LedgerEntry:
    """An entry (as :func:`ledger.as_dict` gives it) as listed; ``bad_seqs``: the chain check's."""
    return LedgerEntry(
        **{name: entry[name] for name in _LEDGER_ENTRY_FIELDS}, problem=entry["seq"] in bad_seqs
    )


@contextlib.contextmanager
def _reading_ledger(db: Database) -> Iterator[Session]:
    """A session to read the ledger in; a database failure is one DatabaseError naming it."""
    try:
        with db.sessions() as session:
            yield session
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseError(
            f"cannot read the report ledger at {db.display_url}: "
            f"{str(exc.orig or exc).strip().splitlines()[0]}"
        ) from None


def verify_file(db: Database, path: Path, *, key_file: Path | None = None) -> VerifyResult:
    """Check ``path`` against the ledger and its detached signature; see the module docstring.

    Every entry recording the file's SHA-256 is named, not one of them: identical reports of
    unchanged data share it, and which one a copy came from cannot be told from its content.
    A ``manifest.json`` taken out of a PDF report is not recorded itself; it is compared with
    what the ledger recorded for the report it names.

    The signature ``path.sig`` is checked with the public key of ``key_file`` (a PEM public or
    private key, e.g. ``settings.signing_key_file``) when given, else with the public key the
    ledger entry recorded when the file was signed.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VerificationError(f"cannot read {path}: {exc.strerror}") from exc
    sha = hashlib.sha256(data).hexdigest()
    result = VerifyResult(path=path, sha256=sha, bytes=len(data))
    with _reading_ledger(db) as session:
        rows = [ledger.as_dict(r) for r in ledger.find_by_sha256(session, sha)]
        claimed = _claimed_id(data) if not rows else None
        claimed_row = ledger.find_by_report_id(session, claimed) if claimed else None
        claimed_entry = ledger.as_dict(claimed_row) if claimed_row else None
        chain = ledger.check_chain(session)
    result.chain_ok = not chain.problems
    if not result.chain_ok:
        result.problems.append(
            "the report ledger itself fails verification (meetaudit verify --ledger)"
        )
    result.entries = [_listed(e, chain.bad_seqs) for e in rows]
    result.claimed_report_id = claimed
    manifest = parse_manifest(data) if not rows else None
    if manifest is not None:
        _compare_manifest(result, manifest, claimed_entry, chain.bad_seqs)
    elif claimed_entry is not None:
        result.altered = True
        result.problems.append(
            f"the ledger records SHA-256 {claimed_entry['file_sha256']} for report {claimed}; "
            "this file's differs"
        )
    elif not rows:
        result.export = _export_of(data)
        result.problems.append(_not_recorded(result.export, data))
    result.problems.extend(
        f"ledger entry {e.seq} ({e.report_id}) was altered or its chain is broken"
        for e in [*result.entries, *([result.manifest_of] if result.manifest_of else [])]
        if e.problem
    )
    _check_signature(result, data, path, rows, key_file)
    return result


def _compare_manifest(
    result: VerifyResult,
    manifest: dict[str, Any],
    entry: dict[str, Any] | None,
    bad_seqs: set[int],
) -> None:
    """Judge a manifest by the ledger entry of the report it names (it has no entry itself)."""
    result.manifest = True
    if entry is None:
        named = f"report {result.claimed_report_id}" if result.claimed_report_id else "no report"
        result.problems.append(
            f"it names {named}, and the ledger has no entry of that id: it is not the manifest "
            "of a report this ledger recorded"
        )
        return
    result.manifest_of = _listed(entry, bad_seqs)
    result.manifest_differences = recorded_differences(manifest, entry)
    if result.manifest_differences:
        result.problems.append(
            f"it says something different from what the ledger recorded for report "
            f"{entry['report_id']}: {', '.join(result.manifest_differences)}. It was altered, "
            "or it is not that report's manifest"
        )


def _not_recorded(export: str | None, data: bytes) -> str:
    """Why a file with no entry cannot be checked, and for a meetaudit CSV what to do instead."""
    if export is None:
        return "no ledger entry has this file's SHA-256" + _what_it_is(data)
    return (
        "no ledger entry has this file's SHA-256. A CSV carries no report id, so its report "
        "cannot be read from it. If `meetaudit report --format csv` wrote it, it was changed "
        "since (the ledger records every file that command writes). If it was taken out of a PDF report "
        f"(its attachment {export}), it is not recorded on its own: verify that PDF (meetaudit "
        f"verify REPORT.pdf) and compare this SHA-256 with the one the PDF's manifest.json lists "
        f"for {export}"
    )


def _check_signature(
    result: VerifyResult,
    data: bytes,
    path: Path,
    entries: list[dict[str, Any]],
    key_file: Path | None,
) -> None:
    """Check ``path.sig`` with ``key_file``, else with the public keys ``entries`` recorded.

    With several entries (identical files) the signature is valid when one of their keys
    verifies it, and required only when every one of them was signed."""
    sig_path = signing.signature_path(path)
    if not sig_path.exists():
        result.signature = "absent"
        if entries and all(e.get("signature_path") for e in entries):
            result.problems.append(f"the file was signed, but {sig_path.name} is not beside it")
            result.signature = "invalid"
        return
    if key_file is not None:
        keys = [(signing.load_public_key(key_file), f"key file {key_file}")]
    else:
        recorded = dict.fromkeys(
            e["parameters"]["signing_public_key"]
            for e in entries
            if e["parameters"].get("signing_public_key")
        )
        keys = [(signing.public_from_b64(k), "public key recorded in the ledger") for k in recorded]
    if not keys:
        result.signature = "unchecked"
        result.signature_key = "no public key configured or recorded"
        return
    signature = sig_path.read_bytes()
    for key, source in keys:
        result.signature_key = f"{signing.fingerprint(key)}, {source}"
        if signing.verify(key, data, signature):
            result.signature = "valid"
            return
    result.signature = "invalid"
    result.problems.append(f"the signature {sig_path.name} does not match the file and key")


def _recorded_file(entry: dict[str, Any]) -> tuple[str, str | None]:
    """The entry's file at the place the ledger says it was written: its state (UNCHANGED,
    CHANGED, NOT_FOUND, UNREADABLE) and the detail a message needs (its SHA-256 now, or why
    it could not be read)."""
    try:
        now, _ = _sha256_file(Path(entry["output_path"]))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return NOT_FOUND, None
    except OSError as exc:
        return UNREADABLE, exc.strerror or str(exc)
    return (UNCHANGED if now == entry["file_sha256"] else CHANGED), now


def _file_finding(entry: dict[str, Any], state: str, detail: str | None) -> str:
    """What a compliance officer needs to know about a recorded file not found unchanged."""
    name = f"entry {entry['seq']} ({entry['report_id']})"
    where = entry["output_path"]
    if state == CHANGED:
        return (
            f"{name}: the file at {where} was CHANGED since it was written (altered, or replaced "
            f"by another file): its SHA-256 is now {detail}, the ledger recorded "
            f"{entry['file_sha256']}. It is no longer the report that was generated: keep it for "
            f"the investigation; meetaudit report --reproduce {entry['report_id']} renders the "
            "original again"
        )
    if state == UNREADABLE:
        return (
            f"{name}: the file at {where} could not be read ({detail}), so it was not checked; "
            "check it with meetaudit verify FILE as a user who may read it"
        )
    return (
        f"{name}: the file is no longer at {where} (moved, renamed or deleted, or this computer "
        "does not see that folder), so it was not checked. Not a failure: files get moved; "
        "check it where it is now with meetaudit verify FILE"
    )


def verify_ledger(
    db: Database, *, witness_: witness.Witness | None = None, expect_head: str | None = None
) -> LedgerCheck:
    """Check every report file recorded, at the place it was written, then the whole hash
    chain: every entry's hash, every link, no missing sequence number; then that the database
    still refuses changes (the append-only trigger), and the chain against the heads
    ``witness_`` holds and against ``expect_head`` (a head SHA-256 noted elsewhere).

    A file changed at its recorded place fails the check; one no longer there is a warning
    (files get moved: ``verify FILE`` checks it where it is). The result also lists every entry
    (:class:`LedgerEntry`), so report ids can be found.
    """
    with _reading_ledger(db) as session:
        chain = ledger.check_chain(session, keep_rows=True)
        trigger = ledger.trigger_problems(session)
    check = LedgerCheck(
        entries=chain.entries,
        head_seq=chain.head_seq,
        head_sha256=chain.head_sha256,
        trigger_present=not trigger,
        problems=[],
        chain_ok=not chain.problems,
    )
    for e in chain.rows:
        listed = _listed(e, chain.bad_seqs)
        listed.file, detail = _recorded_file(e)
        check.listing.append(listed)
        if listed.file != UNCHANGED:
            findings = check.problems if listed.file == CHANGED else check.warnings
            findings.append(_file_finding(e, listed.file, detail))
    check.problems.extend(chain.problems)
    check.problems.extend(trigger)
    held = witness.compare(
        chain.hashes, witness_.read() if witness_ is not None else None, expect_head
    )
    check.problems.extend(held.problems)
    check.warnings.extend(held.warnings)
    check.witness.extend(held.notes)
    return check


_LEDGER_ENTRY_FIELDS = (
    "seq", "report_id", "format", "generated_at", "generated_by", "period_from", "period_to",
    "timezone", "complete", "file_sha256", "output_path", "meetaudit_version", "harvest_run_ids",
)  # fmt: skip
