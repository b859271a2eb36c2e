"""The report's public functions: generate (or reproduce) a report.

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
Verification (:func:`~reporting.report.verify.verify_file`,
:func:`~reporting.report.verify.verify_ledger`) lives in :mod:`reporting.report.verify`.
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from reporting import __version__
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import ReportRun
from reporting.errors import DatabaseError, ReportError
from reporting.periods import Window
from reporting.report import ledger, signing, timestamps, witness
from reporting.report.context import ReportContext, ReportParameters
from reporting.report.diff import build_report_context, predecessor
from reporting.report.exports import MEETING_COLUMNS, write_json_export
from reporting.report.manifest import build_manifest
from reporting.report.registry import load_registry
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
    "pdf": (_Output("pdf", None, ".pdf", "the report, PDF/A-3a with the CSVs attached"),),
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
    unsigned_sha256: str | None = None  # a signed PDF: the SHA-256 before the signature


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
    signed_sha256: str | None = None  # reproduction of a signed file: the signed file's SHA-256
    # Software that renders differently from what generated the original, if any (reproduce).
    renderer_changes: list[str] = field(default_factory=list)
    # Files that already had the names asked for: kept unchanged, this run wrote beside them.
    not_overwritten: list[Path] = field(default_factory=list)
    # The earlier report of the period this one supersedes (id, generated_at, sha256), and
    # what changed since it (reporting.report.diff); the meetings whose stored data no longer
    # matches the digest recorded at harvest (reporting.report.integrity).
    supersedes: dict[str, str] | None = None
    changes: dict[str, Any] | None = None
    altered_meetings: list[dict[str, Any]] = field(default_factory=list)
    # The ledger head after this report, where it was published, and what failed publishing it.
    ledger_head: tuple[int, str] | None = None
    witness: str | None = None
    witness_problems: list[str] = field(default_factory=list)
    # Nothing missing from the period (reporting.coverage); ``complete`` also needs the stored
    # data unaltered.
    nothing_missing: bool = True
    # What the listing of the period could see (reporting.reach), as the ledger records it:
    # whole_organisation, verdict, reasons.
    listing_reach: dict[str, Any] = field(default_factory=dict)

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
            nothing_missing=ctx.nothing_missing,
            gaps=ctx.totals.gaps,
            harvest_run_ids=[r["id"] for r in ctx.harvest_runs],
            rosters_included=ctx.rosters_included,
            elapsed_seconds=time.monotonic() - started,
            supersedes=p.supersedes,
            changes=ctx.changes,
            altered_meetings=ctx.altered_meetings,
            listing_reach=ledger_reach(ctx),
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
            if self.signed_sha256:
                out.append(f"  ledger SHA-256 {self.expected_sha256} (the file before signing)")
                out.append(f"  new    SHA-256 {self.sha256}")
                out.append(
                    f"  The report file itself was signed after rendering: its SHA-256 "
                    f"{self.signed_sha256} covers the signature too (made once, at signing "
                    "time, never again). A reproduction renders the unsigned file, so compare "
                    "it with the SHA-256 before signing; `meetaudit verify FILE` checks the "
                    "signed file"
                )
            else:
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
            if f.unsigned_sha256:
                out.append(
                    f"       signed (PDF signature); before signing SHA-256 {f.unsigned_sha256}"
                )
            if f.signature_path:
                out.append(f"       signature {f.signature_path}")
        out.append(
            f"  {t['meetings']:,} meetings ({t['meetings_complete']:,} complete), "
            f"{t['participants']:,} participants, {t['invitees']:,} invitees, "
            f"{t['sessions']:,} sessions"
        )
        out.extend(witness.head_lines(self.ledger_head, self.witness, self.witness_problems))
        out.extend(self._findings())
        if self.listing_reach and not self.listing_reach["whole_organisation"]:
            could = (
                "could not see"
                if self.listing_reach["verdict"] == "limited"
                else "may not have seen"
            )
            out.append(
                f"  LISTING REACH: the harvest's listing {could} the whole organisation — "
                + "; ".join(self.listing_reach["reasons"])
                + ". The report says so on its cover"
                + (": complete only within that reach" if self.nothing_missing else "")
            )
        # Altered stored data is said by the findings above; what is missing, here.
        if not self.nothing_missing:
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

    def _findings(self) -> list[str]:
        """What the report says about the report it supersedes and about altered stored data."""
        out = []
        if self.supersedes is not None and self.changes is not None:
            old = self.supersedes["report_id"]
            if not self.changes["reproducible"]:
                what = "its rows cannot be rebuilt from the stored data (the report says why)"
            elif self.changes["total"]:
                what = (
                    f"{self.changes['total']:,} changes since, listed in the report; "
                    f"meetaudit report diff {old} {self.report_id} prints them"
                )
            else:
                what = "nothing changed since"
            out.append(f"  Supersedes report {old} ({self.supersedes['generated_at']}): {what}")
        if self.altered_meetings:
            n = len(self.altered_meetings)
            ids = ", ".join(a["meeting_id"] for a in self.altered_meetings[:5])
            more = f" and {n - 5:,} more" if n > 5 else ""
            out.append(
                f"  STORED DATA ALTERED: the stored records of {n:,} meeting"
                f"{'s' if n != 1 else ''} ({ids}{more}) are no longer what was harvested (the "
                "SHA-256 recorded at harvest, or the columns derived from them, no longer agree): "
                "they were changed in the database after the harvest. "
                "The report says so on its cover and lists them"
            )
        return out


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
    """What stands in the way of writing ``path``: the file itself, or its signature ``.p7s``
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


def report_parameters(
    settings: Settings,
    window: Window,
    *,
    label: str,
    as_of: dt.datetime,
    roster_row_limit: int = DEFAULT_ROSTER_ROW_LIMIT,
    exception_row_limit: int = DEFAULT_EXCEPTION_ROW_LIMIT,
) -> ReportParameters:
    """What a report of ``window`` as of ``as_of`` is asked for, from the settings: the same
    for the report and for a sample of its rows (reporting.report.sample)."""
    return ReportParameters(
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
        as_of=as_of,
        org_registry=(
            load_registry(settings.org_registry_file).to_json()
            if settings.org_registry_file
            else None
        ),
    )


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
    params = report_parameters(
        settings, window, label=label, as_of=generated_at, roster_row_limit=roster_row_limit,
        exception_row_limit=exception_row_limit,
    )  # fmt: skip
    witness_ = witness.Witness.from_settings(settings)
    head: tuple[int, str] | None = None
    witness_problems: list[str] = []
    identity = signing.load_identity(settings)
    stamper = timestamps.timestamper(settings)
    key_text = f"X.509 certificate {identity.describe()}" if identity else None
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
                params = replace(params, supersedes=predecessor(session, params, kind=REPORT_KIND))
                ctx = build_report_context(
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
                detached = identity is not None and out.format != "pdf"
                temp_sig = _temp_beside(signing.signature_path(target.path)) if detached else None
                try:
                    note("writing", 0, None)
                    n_pages = _write_output(out, ctx, meta, temp, workers=workers, progress=note)
                    if n_pages is not None:
                        pages = n_pages
                    unsigned_sha, _ = _sha256_file(temp)
                    parameters: dict[str, Any] = {
                        "report": params.to_json(),
                        "renderer": {"weasyprint": meta.weasyprint_version},
                        "formats": list(formats),
                        "signing_key": key_text,
                        "pages": n_pages,
                        # The unsigned render: what --reproduce renders again, byte for byte.
                        "unsigned_sha256": unsigned_sha,
                        # "complete" means no more than the listing could see (reporting.reach).
                        "listing_reach": ledger_reach(ctx),
                    }
                    if out.format == "pdf":
                        parameters.update(_attachment_hashes(temp))
                    if identity is not None:
                        note("signing", 0, None)
                        parameters["signature"] = _sign(
                            identity, stamper, out, temp, temp_sig, report_id
                        )
                    sha, size = _sha256_file(temp)
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
                            signing.signature_path(path) if detached else None, out.holds,
                            unsigned_sha256=unsigned_sha if unsigned_sha != sha else None,
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


def ledger_reach(ctx: ReportContext) -> dict[str, Any]:
    """What a report's ledger entry records of its listing's reach (reporting.reach), so that
    ``verify --ledger`` never lists it as plainly complete when the listing could not see the
    whole organisation."""
    reach = ctx.reach
    return {
        "whole_organisation": reach.whole_organisation,
        "verdict": reach.verdict,
        "reasons": reach.reasons,
    }


def _attachment_hashes(pdf: Path) -> dict[str, Any]:
    """The SHA-256 of each file attached to the PDF and of its manifest, for the ledger: so an
    attachment taken out of the PDF can be verified on its own, and an edited manifest fails."""
    import pikepdf

    from reporting.report.assemble import stream_bytes

    hashes: dict[str, str] = {}
    with pikepdf.open(pdf) as doc:
        for name, spec in doc.attachments.items():
            hashes[name] = hashlib.sha256(stream_bytes(spec.get_file().obj)).hexdigest()
    return {
        "attachments": {n: h for n, h in sorted(hashes.items()) if n != "manifest.json"},
        "manifest_sha256": hashes.get("manifest.json"),
    }


def _sign(
    identity: signing.SigningIdentity,
    stamper: timestamps.HttpxTimeStamper | None,
    out: _Output,
    temp: Path,
    temp_sig: Path | None,
    report_id: str,
) -> dict[str, Any]:
    """Sign the finished ``temp``: a PDF in place (PAdES, appended), else ``temp_sig`` (.p7s).
    Returns what the ledger records about the signature (a claim; verification pins its own)."""
    if out.format == "pdf":
        signed = _temp_beside(temp)
        try:
            signing.sign_pdf(
                identity, temp, signed, timestamper=stamper,
                reason=f"meetaudit report {report_id}: generated and recorded in the report ledger",
            )  # fmt: skip
            os.replace(signed, temp)
        finally:
            _discard(signed)
        kind = "PAdES (embedded in the PDF)"
    else:
        assert temp_sig is not None
        temp_sig.write_bytes(signing.sign_detached(identity, temp, timestamper=stamper))
        kind = "CMS, detached (.p7s)"
    return {
        "kind": kind,
        "signer": identity.ledger_facts(),
        "timestamp_authority": stamper.url if stamper else None,
    }


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
    # A signed file's bytes include a signature made at signing time; what is rendered again
    # is the unsigned file, whose SHA-256 the ledger records beside the signed one's.
    expected = stored.get("unsigned_sha256") or entry["file_sha256"]
    with tempfile.TemporaryDirectory(prefix="meetaudit-report-") as tmp:
        with snapshot(db) as session:
            ctx = build_report_context(
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
        reproduced_from=entry["report_id"], matches=sha == expected,
        expected_sha256=expected, renderer_changes=_renderer_changes(meta),
        signed_sha256=entry["file_sha256"] if expected != entry["file_sha256"] else None,
        not_overwritten=in_the_way,
    )  # fmt: skip


def _entry_to_reproduce(session: Session, report_id: str) -> dict[str, Any]:
    """The entry of ``report_id``; when there is none, an error naming the ids the same report
    run does have (``MAR-…`` asked for, but only ``MAR-….csv`` and ``MAR-….meetings.csv`` were
    written), else where the ids are listed."""
    row = ledger.find_by_report_id(session, report_id)
    if row is not None:
        not_a_report(row)
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


def not_a_report(row: ReportRun) -> None:
    """Refuse a ledger entry that is not a period's report (a case dossier, a sample): it is
    not rendered again or compared as a report; it is checked with ``meetaudit verify FILE``."""
    if row.kind != REPORT_KIND:
        raise ReportError(
            f"{row.report_id} is {ledger.kind_words(row.kind)}, not a report of a period: it "
            "cannot be rendered again or compared with a report. Check its file with "
            "`meetaudit verify FILE.pdf`"
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
