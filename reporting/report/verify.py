"""Verification: is a file one meetaudit generated, unaltered; does the report ledger hold.

* :func:`verify_file` — is this file one the ledger knows, unaltered (naming every report with
  that content, when identical reports were written); when, by whom and from which harvest runs
  was it generated; is its detached signature valid. A PDF's ``manifest.json`` is compared with
  what the ledger recorded for its report.
* :func:`verify_ledger` — is every recorded file unchanged where it was written (one moved away
  is a warning), does the whole hash chain hold; lists every entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from reporting.db.engine import Database
from reporting.db.models import ReportRun
from reporting.errors import DatabaseError, VerificationError
from reporting.report import ledger, signing, trust, witness
from reporting.report.api import _sha256_file
from reporting.report.context import iso_utc
from reporting.report.exports import EARLIER_WIDTHS, MEETING_COLUMNS, RECONCILIATION_COLUMNS
from reporting.report.manifest import parse_manifest, recorded_differences


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
    kind: str = "monthly"  # monthly: a period's report; dossier: a case's (`case dossier`)
    # A report's listing reach as its entry recorded it (reporting.reach); None before it was.
    listing_reach: dict[str, Any] | None = None

    @property
    def records(self) -> str:
        """The harvest column: complete or INCOMPLETE, and a complete report whose listing
        could not see the whole organisation never plainly "complete"."""
        if not self.complete:
            return "INCOMPLETE"
        if self.listing_reach is not None and not self.listing_reach.get("whole_organisation"):
            return "complete, reach limited"
        return "complete"

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
            self.records,
            self.file_sha256[:12],
            self.file or "",
            self.output_path,
        )

    def facts(self) -> list[str]:
        """What the ledger recorded about the file, one line each: when and by whom it was
        generated, of which period, from which harvest runs."""
        runs = ", ".join(str(r) for r in self.harvest_run_ids) or "none"
        if self.kind == "dossier":
            return [
                f"generated {iso_utc(self.generated_at)} by {self.generated_by}, meetaudit "
                f"{self.meetaudit_version}, ledger entry {self.seq}",
                f"a case dossier: the questions of an investigation case asked again, the case "
                f"opened {iso_utc(self.period_from)}"
                + ("" if self.complete else "; some questions could not be asked again"),
            ]
        period = (
            f"period {iso_utc(self.period_from)} – {iso_utc(self.period_to)} ({self.timezone}); "
            f"{'complete' if self.complete else 'INCOMPLETE'}"
        )
        reach = self.listing_reach
        if reach is not None and not reach.get("whole_organisation"):
            period += (
                " — within the listing's reach only: it could not be shown to see the whole "
                "organisation (" + "; ".join(reach.get("reasons") or []) + ")"
            )
        return [
            f"generated {iso_utc(self.generated_at)} by {self.generated_by}, meetaudit "
            f"{self.meetaudit_version}, ledger entry {self.seq}",
            *(
                ["a sample of the period's reconciliation rows (meetaudit sample)"]
                if self.kind == "sample"
                else []
            ),
            period,
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
    attachment_of: LedgerEntry | None = None  # a file attached to this recorded PDF report
    attachment_name: str | None = None
    attachment_also: list[str] = field(default_factory=list)  # identical, in later reports
    also_attached_to: list[str] = field(default_factory=list)  # a recorded file, attached too
    chain_ok: bool = True
    signature: str = "absent"  # SignatureCheck.state: valid, INVALID, NOT TRUSTED, …
    signature_check: trust.SignatureCheck | None = None
    signature_ok: bool = True  # no signature problem (a missing required one is one)
    embedded_problems: list[str] = field(default_factory=list)  # a PDF's manifest vs attachments
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    # Why the ledger itself cannot be trusted beyond its hash chain (the append-only trigger,
    # the witness): the file's verdict rests on it, so any doubt fails the file.
    ledger_doubts: list[str] = field(default_factory=list)

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
        """True when no entry recording this file (or its manifest's or attachment's report)
        has a problem."""
        recorded = [
            *self.entries,
            *([self.manifest_of] if self.manifest_of else []),
            *([self.attachment_of] if self.attachment_of else []),
        ]
        return bool(recorded) and not any(e.problem for e in recorded)

    @property
    def ok(self) -> bool:
        """True when the file is recorded (or is a manifest agreeing with its report's entry, or
        an attachment the ledger recorded for its PDF), every entry involved is intact, its
        signature holds against the pinned certificates, and a PDF's manifest matches its
        attachments."""
        agrees = (
            self.known
            or (self.manifest_of is not None and not self.manifest_differences)
            or self.attachment_of is not None
        )
        return (
            agrees
            and not self.ledger_doubts
            and self.entry_intact
            and self.chain_ok
            and self.signature_ok
            and not self.embedded_problems
        )

    def verdict(self) -> str:
        """The first line: what the file is, and whether it passed."""
        p, n = self.path, len(self.entries)
        if self.ledger_doubts:
            return (
                f"FAILED: {p} cannot be confirmed: the ledger the verdict below rests on cannot "
                "be trusted (details: meetaudit verify --ledger)"
            )
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
        if self.attachment_of is not None:
            pdf = self.attachment_of
            if self.ok:
                return (
                    f"OK: {p} is the {self.attachment_name} attached to report {pdf.report_id} "
                    f"({pdf.output_path}), unaltered."
                )
            return f"FAILED: {p} is the {self.attachment_name} of report {pdf.report_id}, but see below."
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
        out.extend(
            f"  problem: the ledger this verdict rests on cannot be trusted: {doubt}"
            for doubt in self.ledger_doubts
        )
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
                "  note: compared with the ledger: the manifest's SHA-256 (for reports that "
                "recorded it), the report id, format, period, parameters, completeness, control "
                "totals, harvest runs, and when, by whom and with which software it was "
                "generated. It carries no signature of its own; the report's PDF signature covers "
                f"it: meetaudit verify {self.manifest_of.output_path}"
            )
        if self.attachment_of is not None:
            out.extend(f"  {fact}" for fact in self.attachment_of.facts())
            if self.attachment_also:
                out.append(
                    "  also attached, identical, to report(s) " + ", ".join(self.attachment_also)
                )
            out.append(
                f"  note: an attachment carries no signature of its own; the report's PDF "
                f"signature covers it: meetaudit verify {self.attachment_of.output_path}"
            )
        if self.signature_check is not None:
            out.extend(f"  {line}" for line in self.signature_check.lines())
        elif self.manifest_of is None and self.attachment_of is None:
            out.append(f"  signature: {self.signature}")
        out.extend(f"  note: {n}" for n in self.notes)
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
    ",".join(columns[:width]).encode(): name
    for name, columns in (
        ("reconciliation.csv", RECONCILIATION_COLUMNS),
        ("meetings.csv", MEETING_COLUMNS),
    )
    for width in (len(columns), *EARLIER_WIDTHS[name])
}


def _export_of(data: bytes) -> str | None:
    """Which of the report's CSV files ``data`` is, by its header row, else ``None``.

    A CSV carries no report id: its header is all that tells it is meetaudit's."""
    return _CSV_HEADERS.get(data.split(b"\n", 1)[0].rstrip(b"\r"))


def _listed(entry: dict[str, Any], bad_seqs: set[int]) -> LedgerEntry:
    """An entry (as :func:`ledger.as_dict` gives it) as listed; ``bad_seqs``: the chain check's."""
    return LedgerEntry(
        **{name: entry[name] for name in _LEDGER_ENTRY_FIELDS},
        problem=entry["seq"] in bad_seqs,
        listing_reach=(entry["parameters"] or {}).get("listing_reach"),
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


def verify_file(
    db: Database,
    path: Path,
    *,
    pins: trust.Pins | None = None,
    witness_: witness.Witness | None = None,
) -> VerifyResult:
    """Check ``path`` against the ledger and its signature; see the module docstring.

    Every entry recording the file's SHA-256 is named, not one of them: identical reports of
    unchanged data share it, and which one a copy came from cannot be told from its content.
    A ``manifest.json`` taken out of a PDF report is compared with what the ledger recorded for
    the report it names (its SHA-256 too, for reports that recorded it); a CSV taken out of a
    PDF report is found by the SHA-256 the ledger recorded for that report's attachments.

    The signature (a PDF's own, or ``FILE.p7s`` beside a CSV or JSON file) counts only when it
    chains to a certificate in ``pins`` (the verifier's ``trusted_certs``); a certificate the
    file or the ledger names is never enough. With ``witness_`` the ledger itself is checked
    too (its append-only trigger, its heads against the witness): a file's verdict rests on the
    ledger, so a rewritten or unprotected ledger fails every file (``ledger_doubts``).
    """
    pins = pins or trust.Pins()
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
        holders = _attachment_holders(session, sha) if not claimed_row else []
        chain = ledger.check_chain(session)
        if witness_ is not None:
            doubts = ledger.trigger_problems(session)
            held = witness.compare(chain.hashes, witness_.read(), tsas=pins.tsas)
            result.ledger_doubts = doubts + held.problems
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
        if claimed_entry is not None:
            _compare_manifest_hash(result, claimed_entry)
    elif claimed_entry is not None:
        result.altered = True
        result.problems.append(
            f"the ledger records SHA-256 {claimed_entry['file_sha256']} for report {claimed}; "
            "this file's differs"
        )
    elif holders and not rows:
        holder = holders[0]  # the first report it was attached to; identical later ones below
        result.attachment_of = _listed(holder, chain.bad_seqs)
        result.attachment_also = [h["report_id"] for h in holders[1:]]
        result.attachment_name = next(
            n for n, h in holder["parameters"]["attachments"].items() if h == sha
        )
    elif not rows:
        result.export = _export_of(data)
        result.problems.append(_not_recorded(result.export, data))
    result.problems.extend(
        f"ledger entry {e.seq} ({e.report_id}) was altered or its chain is broken"
        for e in [
            *result.entries,
            *([result.manifest_of] if result.manifest_of else []),
            *([result.attachment_of] if result.attachment_of else []),
        ]
        if e.problem
    )
    if data.startswith(b"%PDF-"):
        result.embedded_problems = embedded_problems(data)
        result.problems.extend(result.embedded_problems)
    if rows and holders:
        # Also attached to a PDF report (a CSV export equals the PDF's attachment): a copy taken
        # out of the PDF has no .p7s beside it, and needs none — the PDF's signature covers it.
        result.also_attached_to = [h["report_id"] for h in holders]
    if result.manifest_of is None and result.attachment_of is None:
        _check_signature(result, data, path, rows, pins)
    return result


def _attachment_holders(session: Session, sha256: str) -> list[dict[str, Any]]:
    """Entries of PDF reports that recorded an attachment with this SHA-256, oldest first."""
    seqs = session.scalars(
        text(
            "SELECT seq FROM report_runs r WHERE r.format = 'pdf' AND EXISTS (SELECT 1 FROM "
            "jsonb_each_text(COALESCE(r.parameters -> 'attachments', '{}'::jsonb)) a "
            "WHERE a.value = :sha) ORDER BY seq"
        ),
        {"sha": sha256},
    ).all()
    if not seqs:
        return []
    rows = session.scalars(select(ReportRun).where(ReportRun.seq.in_(seqs)).order_by(ReportRun.seq))
    return [ledger.as_dict(r) for r in rows]


def _compare_manifest_hash(result: VerifyResult, entry: dict[str, Any]) -> None:
    """A manifest must be byte for byte the one recorded, where the ledger recorded its hash."""
    recorded = (entry["parameters"] or {}).get("manifest_sha256")
    if recorded and recorded != result.sha256:
        result.problems.append(
            f"its SHA-256 differs from the manifest.json the ledger recorded for report "
            f"{entry['report_id']} ({recorded}): it was edited (an attachment's SHA-256, a flag "
            "count or another figure in it was changed)"
        )
        result.manifest_differences = [*result.manifest_differences, "its SHA-256"]


def embedded_problems(data: bytes) -> list[str]:
    """What is wrong between a PDF report's embedded manifest.json and its attachments: each
    attachment's SHA-256 must be the one the manifest lists, and every listed one present."""
    import pikepdf

    from reporting.report.assemble import stream_bytes

    try:
        with pikepdf.open(io.BytesIO(data)) as doc:
            files = {
                name: stream_bytes(spec.get_file().obj) for name, spec in doc.attachments.items()
            }
    except (pikepdf.PdfError, ValueError, KeyError):
        return ["its attachments cannot be read (the PDF is damaged)"]
    if "manifest.json" not in files:
        return [] if not files else ["it has attachments but no manifest.json listing them"]
    manifest = parse_manifest(files["manifest.json"])
    if manifest is None:
        return ["its manifest.json is not a meetaudit manifest"]
    problems = []
    listed = {
        str(a.get("name")): a.get("sha256")
        for a in manifest.get("attachments") or []
        if isinstance(a, dict)
    }
    for name, content in sorted(files.items()):
        if name == "manifest.json":
            continue
        actual = hashlib.sha256(content).hexdigest()
        if name not in listed:
            problems.append(f"the attachment {name} is not listed in its manifest.json")
        elif listed[name] != actual:
            problems.append(
                f"the attachment {name} has SHA-256 {actual}, but its manifest.json lists "
                f"{listed[name]}: the attachment or the manifest was changed"
            )
    problems.extend(
        f"its manifest.json lists the attachment {name}, which is not in the PDF"
        for name in sorted(set(listed) - set(files))
    )
    return problems


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
    pins: trust.Pins,
) -> None:
    """Check the file's signature against ``pins``: a PDF's own, else ``path.p7s``, else an
    earlier version's ``path.sig`` (against a pinned Ed25519 key).

    A signature that does not hold fails the file. So does a missing one, when the ledger says
    the file was signed or the verifier pins a signing certificate."""
    check = signature_of(data, path, pins)
    result.signature_check = check
    result.signature = check.state
    problems = list(check.problems)
    if check.state == trust.ABSENT:
        recorded = [e for e in entries if e["parameters"].get("signature") or e["signature_path"]]
        if result.also_attached_to:
            result.notes.append(
                "no signature beside it; its content is also attached to PDF report(s) "
                f"{', '.join(result.also_attached_to)}, whose signature covers it"
            )
        elif entries and len(recorded) == len(entries):
            where = "in the PDF" if data.startswith(b"%PDF-") else f"beside it ({path.name}.p7s)"
            problems.append(
                f"the ledger says the file was signed, but there is no signature {where}"
            )
        elif pins.signers:
            problems.append(
                "the file is not signed, and you pin a signing certificate (TRUSTED_CERTS): an "
                "unsigned file proves nothing about who made it"
            )
    elif check.timestamp_state == trust.ABSENT and pins.tsas:
        problems.append(
            "the signature has no timestamp, and you pin a time-stamping authority "
            "(TRUSTED_TSA_CERTS): when it was signed rests on the report host's clock alone"
        )
    result.problems.extend(problems)
    result.signature_ok = not problems


def signature_of(data: bytes, path: Path, pins: trust.Pins) -> trust.SignatureCheck:
    """The signature of the file ``path`` (content ``data``), checked against ``pins``."""
    if data.startswith(b"%PDF-"):
        check = trust.check_pdf(data, pins.signers, pins.tsas)
        if check.state != trust.ABSENT:
            return check
    p7s = signing.signature_path(path)
    if p7s.exists():
        return trust.check_detached(data, p7s.read_bytes(), pins.signers, pins.tsas)
    sig = signing.legacy_signature_path(path)
    if sig.exists():
        return _legacy_check(data, sig, pins)
    return trust.SignatureCheck(state=trust.ABSENT)


def _legacy_check(data: bytes, sig: Path, pins: trust.Pins) -> trust.SignatureCheck:
    """An earlier version's Ed25519 ``.sig``, against the Ed25519 public keys pinned."""
    if not pins.legacy_keys:
        return trust.SignatureCheck(
            state=trust.UNCHECKED,
            signer=f"an Ed25519 key ({sig.name}, written by an earlier meetaudit)",
            problems=[
                f"{sig.name} is an Ed25519 signature of an earlier meetaudit; no Ed25519 public "
                "key is pinned (TRUSTED_CERTS), and a key recorded in the ledger is never enough"
            ],
        )
    signature = sig.read_bytes()
    for key, source in pins.legacy_keys:
        if signing.legacy_verify(key, data, signature):
            return trust.SignatureCheck(
                state=trust.VALID,
                signer=f"Ed25519 key {signing.legacy_fingerprint(key)}",
                anchor=f"Ed25519 key {signing.legacy_fingerprint(key)}, pinned in {source}",
            )
    return trust.SignatureCheck(
        state=trust.INVALID,
        problems=[f"the signature {sig.name} does not match the file and the pinned keys"],
    )


@dataclass
class OfflineResult:
    """What :func:`verify_offline` found: the file's own evidence, without the ledger."""

    path: Path
    sha256: str
    signature: trust.SignatureCheck
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The signature holds against the pinned certificates and nothing else is wrong."""
        return not self.problems

    def lines(self) -> list[str]:
        """A verdict, the signature's facts, each problem."""
        if self.ok:
            head = (
                f"OK (offline): {self.path} is signed by a certificate you trust and unaltered "
                "since it was signed"
            )
            if self.path.read_bytes()[:5] == b"%PDF-":
                head += "; its attachments are the ones its manifest lists"
            head += "."
        else:
            head = f"FAILED (offline): {self.path}, see below."
        out = [head, f"  SHA-256 {self.sha256}"]
        out.extend(f"  {line}" for line in self.signature.lines())
        out.append(
            "  offline: the report ledger was not consulted (whether the report was recorded, "
            "and its harvest runs, need `meetaudit verify FILE` with the database)"
        )
        out.extend(f"  problem: {p}" for p in self.problems)
        return out


def verify_offline(path: Path, *, pins: trust.Pins) -> OfflineResult:
    """Check ``path`` with no database: its signature and timestamp against ``pins``; for a PDF
    report also its manifest.json against its attachments. A file with no signature of its own
    (an attachment, a manifest) cannot be verified offline: verify the PDF it came from."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VerificationError(f"cannot read {path}: {exc.strerror}") from exc
    check = signature_of(data, path, pins)
    result = OfflineResult(path, hashlib.sha256(data).hexdigest(), check)
    result.problems.extend(check.problems)
    if check.state == trust.ABSENT:
        result.problems.append(
            "the file carries no signature (none in it, no .p7s beside it), so nothing can be "
            "checked without the ledger. A file taken out of a PDF report is covered by that "
            "PDF's signature: verify the PDF offline, then compare this file's SHA-256 with the "
            "one its manifest.json lists; or run `meetaudit verify FILE` with the database"
        )
    elif check.timestamp_state == trust.ABSENT and pins.tsas:
        result.problems.append(
            "the signature has no timestamp, and you pin a time-stamping authority "
            "(TRUSTED_TSA_CERTS)"
        )
    if data.startswith(b"%PDF-"):
        result.problems.extend(embedded_problems(data))
    return result


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
    db: Database,
    *,
    witness_: witness.Witness | None = None,
    expect_head: str | None = None,
    pins: trust.Pins | None = None,
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
        chain.hashes,
        witness_.read() if witness_ is not None else None,
        expect_head,
        tsas=(pins or trust.Pins()).tsas,
    )
    check.problems.extend(held.problems)
    check.warnings.extend(held.warnings)
    check.witness.extend(held.notes)
    return check


_LEDGER_ENTRY_FIELDS = (
    "seq", "report_id", "format", "generated_at", "generated_by", "period_from", "period_to",
    "timezone", "complete", "file_sha256", "output_path", "meetaudit_version", "harvest_run_ids",
    "kind",
)  # fmt: skip
