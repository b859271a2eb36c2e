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
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from reporting.db.engine import Database
from reporting.errors import DatabaseError, VerificationError
from reporting.report import ledger, signing
from reporting.report.api import _sha256_file
from reporting.report.context import iso_utc
from reporting.report.exports import MEETING_COLUMNS, RECONCILIATION_COLUMNS
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
    problems: list[str]  # of the chain, and files changed at their recorded place
    listing: list[LedgerEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # files not found or not readable
    chain_ok: bool = True

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
            out.append("The report ledger is empty: no report has been written yet.")
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
                "  (note the head hash elsewhere: removing the newest entries is only detectable "
                "against it)"
            )
        if not self.trigger_present:
            out.append("  warning: the append-only trigger on report_runs is missing or disabled")
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


def verify_ledger(db: Database) -> LedgerCheck:
    """Check every report file recorded, at the place it was written, then the whole hash
    chain: every entry's hash, every link, no missing sequence number.

    A file changed at its recorded place fails the check; one no longer there is a warning
    (files get moved: ``verify FILE`` checks it where it is). The result also lists every entry
    (:class:`LedgerEntry`), so report ids can be found.
    """
    with _reading_ledger(db) as session:
        chain = ledger.check_chain(session, keep_rows=True)
        trigger = ledger.trigger_present(session)
    check = LedgerCheck(
        entries=chain.entries,
        head_seq=chain.head_seq,
        head_sha256=chain.head_sha256,
        trigger_present=trigger,
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
    return check


_LEDGER_ENTRY_FIELDS = (
    "seq", "report_id", "format", "generated_at", "generated_by", "period_from", "period_to",
    "timezone", "complete", "file_sha256", "output_path", "meetaudit_version", "harvest_run_ids",
)  # fmt: skip
