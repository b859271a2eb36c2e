"""The ledger's witness: every new ledger head, published outside the database.

The hash chain (:mod:`reporting.report.ledger`) proves that no entry was changed *unless* whoever
administers the database deletes the newest entries, or rewrites an entry and recomputes every
hash after it with meetaudit's own hash function. Both leave a chain that checks out. What they
cannot change is a copy of each head kept elsewhere: after every ledger append commits,
:meth:`Witness.publish` writes the new head — entry number, entry SHA-256, report id, times, and an
RFC 3161 timestamp token from the configured time-stamping authority — to

* a file, one JSON line per head, opened append-only and synced to disk; or a folder, one file per
  head created exclusively (never replaced), which can sit on WORM storage; and
* syslog, when configured, so the head also lands on a log host the database administrator does
  not control.

:func:`compare` then holds the chain against the witnessed heads (and a head noted elsewhere,
``verify --ledger --expect-head``): a witnessed entry the ledger no longer has (deleted), or has
with a different hash (rewritten), fails verification.

The timestamp token is over the entry's SHA-256 itself (its message imprint *is* ``entry_sha256``):
it proves the entry, exactly as hashed, existed at the time the authority signed.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import json
import os
import socket
from dataclasses import dataclass, field
from logging.handlers import SysLogHandler
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from reporting.config import Settings
from reporting.errors import ConfigError, WitnessError

FORMAT = "meetaudit-ledger-head/1"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


@dataclass(frozen=True)
class Head:
    """One published ledger head."""

    seq: int
    entry_sha256: str
    report_id: str
    generated_at: str
    published_at: str
    database: str
    tsa_url: str | None = None
    timestamp_token: str | None = None  # base64 of the DER TimeStampToken over entry_sha256

    def to_json(self) -> str:
        """One line of JSON (the file witness's line, the folder witness's file, syslog's text)."""
        data = {"format": FORMAT, **self.__dict__}
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Head:
        """Parse a head; ``ValueError`` when it is not one meetaudit wrote."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a meetaudit ledger head")
        seq, sha = data.get("seq"), data.get("entry_sha256")
        if not isinstance(seq, int) or not isinstance(sha, str) or len(sha) != 64:
            raise ValueError("no entry number or SHA-256")
        return cls(
            seq=seq,
            entry_sha256=sha,
            report_id=str(data.get("report_id")),
            generated_at=str(data.get("generated_at")),
            published_at=str(data.get("published_at")),
            database=str(data.get("database")),
            tsa_url=data.get("tsa_url"),
            timestamp_token=data.get("timestamp_token"),
        )

    def named(self) -> str:
        """``entry 7 (MAR-…, witnessed 2026-11-02T01:00:00Z)``."""
        return f"entry {self.seq} ({self.report_id}, witnessed {self.published_at})"


def timestamp_token(tsa_url: str, sha256_hex: str, *, timeout: float = 30) -> bytes:
    """An RFC 3161 timestamp token (DER) from the authority at ``tsa_url`` whose message imprint
    is the SHA-256 ``sha256_hex``."""
    from reporting.report.timestamps import HttpxTimeStamper, token_over_digest

    return token_over_digest(HttpxTimeStamper(tsa_url, timeout=timeout), bytes.fromhex(sha256_hex))


def token_facts(token_b64: str) -> tuple[str, dt.datetime]:
    """The message imprint (hex) and the signing time a timestamp token states."""
    from asn1crypto import cms, tsp

    info = cms.ContentInfo.load(base64.b64decode(token_b64))
    tst = info["content"]["encap_content_info"]["content"].parsed
    if not isinstance(tst, tsp.TSTInfo):
        raise ValueError("not a timestamp token")
    imprint = tst["message_imprint"]
    if imprint["hash_algorithm"]["algorithm"].native != "sha256":
        raise ValueError("the token is not over a SHA-256")
    return bytes(imprint["hashed_message"].native).hex(), tst["gen_time"].native


def send_syslog(address: str, message: str) -> None:
    """Send ``message`` to syslog: ``local`` (the system log socket) or ``HOST:PORT`` (UDP).
    Raises ``OSError`` when it cannot be sent (so a failure is never silent)."""
    pri = SysLogHandler.LOG_AUTH << 3 | SysLogHandler.LOG_NOTICE
    data = f"<{pri}>meetaudit[{os.getpid()}]: {message}".encode()
    if address == "local":
        path = next((p for p in ("/dev/log", "/var/run/syslog") if os.path.exists(p)), None)
        if path is None:
            raise OSError(errno.ENOENT, "no system log socket (/dev/log)")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(path)
                sock.send(data)
        except OSError as exc:
            if exc.errno != errno.EPROTOTYPE:
                raise
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(path)
                sock.sendall(data + b"\0")
        return
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, (host, int(port)))


@dataclass
class Witnessed:
    """What a witness holds: its heads, and anything in it that is not a head."""

    where: str
    exists: bool
    heads: list[Head] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


@dataclass
class Witness:
    """Where new ledger heads are published (see the module docstring)."""

    path: Path
    syslog: str | None = None
    tsa_url: str | None = None
    database: str = ""
    timeout: float = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> Witness:
        """The witness the settings name; by default a file under the data folder, one per
        database, so that the demo's ledger and yours never share one."""
        if settings.database_url is not None:
            database = make_url(settings.database_url.get_secret_value()).database or "postgres"
        else:
            database = settings.embedded_database
        path = settings.ledger_witness or (
            settings.data_dir / "ledger-witness" / f"{database}.jsonl"
        )
        syslog = settings.ledger_witness_syslog
        if syslog is not None and syslog != "local":
            host, _, port = syslog.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(
                    f"ledger_witness_syslog is {syslog!r}: give 'local' for this computer's "
                    "system log, or HOST:PORT of a syslog server (UDP)"
                )
        return cls(path.expanduser(), syslog, settings.tsa_url, database, settings.tsa_timeout)

    @property
    def is_folder(self) -> bool:
        """True when the witness is a folder (one file per head)."""
        return self.path.is_dir()

    def describe(self) -> str:
        """Where heads go, in words."""
        where = f"the folder {self.path}" if self.is_folder else f"the file {self.path}"
        if self.syslog:
            where += f" and syslog ({self.syslog})"
        return where

    def publish(self, seq: int, entry_sha256: str, report_id: str, generated_at: Any) -> list[str]:
        """Publish a new head, after its entry committed. Returns the problems (empty when every
        place took it): a failure is reported, never raised, because the report is recorded."""
        problems = []
        token = None
        if self.tsa_url:
            try:
                token = base64.b64encode(
                    timestamp_token(self.tsa_url, entry_sha256, timeout=self.timeout)
                ).decode()
            except Exception as exc:  # noqa: BLE001 - any failure of the TSA is reported as one
                problems.append(
                    f"the time-stamping authority {self.tsa_url} gave no timestamp for entry "
                    f"{seq} ({_reason(exc)}): its head was published without a trusted time"
                )
        head = Head(
            seq=seq,
            entry_sha256=entry_sha256,
            report_id=report_id,
            generated_at=_iso(generated_at),
            published_at=_now(),
            database=self.database,
            tsa_url=self.tsa_url if token else None,
            timestamp_token=token,
        )
        try:
            self._write(head)
        except OSError as exc:
            problems.append(
                f"the head of entry {seq} could not be written to the witness {self.path}: "
                f"{exc.strerror or exc}"
            )
        if self.syslog:
            try:
                send_syslog(self.syslog, f"ledger head {head.to_json()}")
            except (OSError, ValueError) as exc:
                problems.append(
                    f"the head of entry {seq} could not be sent to syslog ({self.syslog}): "
                    f"{getattr(exc, 'strerror', None) or exc}"
                )
        return problems

    def _write(self, head: Head) -> None:
        data = (head.to_json() + "\n").encode()
        if self.is_folder:
            target = self.path / f"{head.seq:010d}-{head.entry_sha256}.json"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target = self.path
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        fd = os.open(target, flags, 0o644)
        try:
            # One write of one line: appends of concurrent reports never interleave.
            if os.write(fd, data) != len(data):
                raise OSError(errno.EIO, "the head was written only in part")
            os.fsync(fd)
        finally:
            os.close(fd)
        _sync_folder(target.parent)

    def read(self) -> Witnessed:
        """Every head the witness holds (and anything in it that is not a head)."""
        found = Witnessed(where=self.describe_store(), exists=self.path.exists())
        if not found.exists:
            return found
        if self.is_folder:
            items = [(p.name, p.read_text("utf-8")) for p in sorted(self.path.glob("*.json"))]
        else:
            text = self.path.read_text("utf-8")
            items = [(f"line {n}", line) for n, line in enumerate(text.splitlines(), 1) if line]
        for name, item in items:
            try:
                found.heads.append(Head.from_json(item))
            except ValueError:  # json.JSONDecodeError is one
                found.unreadable.append(name)
        return found

    def describe_store(self) -> str:
        """The file or folder, in words."""
        return f"the witness folder {self.path}" if self.is_folder else f"the witness {self.path}"


def _sync_folder(folder: Path) -> None:
    """Make a new or grown file's directory entry durable too (not possible everywhere)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reason(exc: BaseException) -> str:
    parts: list[str] = []
    cause: BaseException | None = exc
    while cause is not None and len(parts) < 3:
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        parts.append(text[:200])
        cause = cause.__cause__
    return ": ".join(parts)


@dataclass
class Comparison:
    """What holding the ledger against its witness (and a head noted elsewhere) found."""

    problems: list[str] = field(default_factory=list)  # verification fails
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was checked and held


def raise_if_unpublished(what: str, head: tuple[int, str] | None, problems: list[str]) -> None:
    """After a file was written and recorded (``what``: "report X", "dossier Y"): a
    :class:`WitnessError` (exit status 1) when its new ledger head could not be published, naming
    the head to note elsewhere meanwhile. The file itself is valid."""
    if not problems or head is None:
        return
    seq, sha = head
    raise WitnessError(
        f"{what} was written and recorded in the ledger, but the new ledger head was not "
        f"published as configured: {'; '.join(problems)}. The {what.split()[0]} itself is "
        "valid. Until a head is published, deleting its ledger entries would go unnoticed by the "
        "witness: fix the witness (the next head published covers this one) and note this head "
        f"elsewhere now: entry {seq}, SHA-256 {sha}"
    )


def head_lines(
    head: tuple[int, str] | None, where: str | None, problems: list[str], *, prefix: str = ""
) -> list[str]:
    """What a command that appended to the ledger prints about it: the new head (to note
    elsewhere), where it was published, and each publishing failure."""
    out = []
    if head is not None:
        seq, sha = head
        out.append(f"  {prefix}ledger head: entry {seq}, SHA-256 {sha}")
        if where and not problems:
            out.append(f"       published to {where}")
    out.extend(f"  WITNESS FAILED: {p}" for p in problems)
    return out


def compare(
    hashes: dict[int, str],
    witnessed: Witnessed | None,
    expect_head: str | None = None,
    *,
    tsas: list[Any] | None = None,
) -> Comparison:
    """Hold the ledger (``hashes``: entry number → entry SHA-256) against the witnessed heads
    and against ``expect_head`` (a head SHA-256 noted elsewhere). Each head's timestamp token is
    checked against ``tsas``, the TSA roots the verifier pins (``reporting.report.trust``)."""
    out = Comparison()
    head_seq = max(hashes) if hashes else 0
    if witnessed is not None:
        _against_witness(out, hashes, head_seq, witnessed, tsas or [])
    if expect_head is not None:
        _against_expected(out, hashes, head_seq, expect_head.strip().lower())
    return out


def _against_witness(
    out: Comparison, hashes: dict[int, str], head_seq: int, w: Witnessed, tsas: list[Any]
) -> None:
    for name in w.unreadable:
        out.problems.append(
            f"{w.where} holds something that is not a ledger head meetaudit wrote ({name}): the "
            "witness was altered"
        )
    if not w.heads:
        if hashes and not w.unreadable:
            state = "holds no head" if w.exists else "does not exist"
            out.warnings.append(
                f"{w.where} {state}: entries 1–{head_seq} were written before it was set up (or "
                "it was removed), so deleting or rewriting them is not detectable against it"
            )
        return
    newest = max(w.heads, key=lambda h: h.seq)
    if not hashes:
        out.problems.append(
            f"the ledger is EMPTY, but {w.where} recorded {len(w.heads)} ledger head(s), the "
            f"newest {newest.named()}: every entry was deleted from the database. The reports "
            "written until then can no longer be verified against this database"
        )
        return
    deleted = sorted({h.seq for h in w.heads if h.seq not in hashes})
    after_end = [s for s in deleted if s > head_seq]
    if after_end:
        last = next(h for h in w.heads if h.seq == after_end[-1])
        out.problems.append(
            f"the ledger is TRUNCATED: it ends at entry {head_seq}, but {w.where} recorded "
            f"{last.named()}. Entries {head_seq + 1}–{last.seq} were deleted from the database"
        )
    inside = [s for s in deleted if s <= head_seq]
    if inside:
        out.problems.append(
            f"entries the witness recorded are no longer in the ledger: {_seqs(inside)} (deleted "
            "from the database)"
        )
    rewritten = sorted(
        {h.seq: h for h in w.heads if h.seq in hashes and hashes[h.seq] != h.entry_sha256}.items()
    )
    if rewritten:
        first = rewritten[0][1]
        out.problems.append(
            f"the ledger was REWRITTEN: {w.where} recorded {first.named()} with SHA-256 "
            f"{first.entry_sha256}, the ledger now has {hashes[first.seq]} for it"
            + (
                f" (and {len(rewritten) - 1} more witnessed head(s) differ: entries "
                f"{_seqs([s for s, _ in rewritten[1:]])})"
                if len(rewritten) > 1
                else ""
            )
            + ". Its entries were changed and their hashes recomputed; what the ledger says about "
            f"the reports from entry {first.seq} on cannot be trusted"
        )
    if not deleted and not rewritten:
        out.notes.append(
            f"witness: {w.where} holds {len(w.heads)} head(s); every one is in the ledger, "
            f"unchanged (newest: {newest.named()})"
        )
        _check_tokens(out, [h for h in w.heads if h.timestamp_token], tsas)
    if newest.seq < head_seq:
        out.warnings.append(
            f"entries {newest.seq + 1}–{head_seq} are newer than the newest head in {w.where} "
            "(publishing their head failed, or another witness is configured): they are not "
            "covered by it"
        )


def _check_tokens(out: Comparison, heads: list[Head], tsas: list[Any]) -> None:
    """Each timestamp token must be over the head it came with, and signed by a time-stamping
    authority the verifier pins; without pinned roots its time is reported as unconfirmed."""
    from reporting.report import trust

    unconfirmed = 0
    for h in heads:
        try:
            imprint, _ = token_facts(h.timestamp_token or "")
        except Exception:  # noqa: BLE001 - an unreadable token is a finding, whatever broke
            out.problems.append(f"the timestamp token of witnessed {h.named()} is unreadable")
            continue
        if imprint != h.entry_sha256:
            out.problems.append(
                f"the timestamp token of witnessed {h.named()} is over another hash ({imprint}): "
                "the witness was altered"
            )
            continue
        checked = trust.check_timestamp_token(
            base64.b64decode(h.timestamp_token or ""), bytes.fromhex(h.entry_sha256), tsas
        )
        if checked.state in (trust.INVALID, trust.UNTRUSTED):
            out.problems.append(
                f"the timestamp token of witnessed {h.named()} is {checked.state}: "
                f"{checked.problem}"
            )
        elif checked.state == trust.UNCHECKED:
            unconfirmed += 1
    if heads:
        newest = max(heads, key=lambda h: h.seq)
        _, when = token_facts(newest.timestamp_token or "")
        out.notes.append(
            f"witness: {len(heads)} head(s) carry an RFC 3161 timestamp over their SHA-256; the "
            f"newest, entry {newest.seq}, timestamped {_iso(when)} by {newest.tsa_url}"
        )
    if unconfirmed:
        out.warnings.append(
            f"the timestamps of {unconfirmed} witnessed head(s) are not confirmed: no trusted "
            "time-stamping authority is configured (TRUSTED_TSA_CERTS), so who stamped them "
            "cannot be checked"
        )
    elif heads and tsas:
        out.notes.append(
            "witness: every head's timestamp is signed by a time-stamping authority you trust"
        )


def _against_expected(out: Comparison, hashes: dict[int, str], head_seq: int, sha: str) -> None:
    seq = next((s for s, h in hashes.items() if h == sha), None)
    if seq is None:
        out.problems.append(
            f"the head noted elsewhere, SHA-256 {sha}, is NOT in the ledger: the entry it names "
            "was deleted or rewritten since it was noted (or it is the head of another ledger)"
        )
    elif seq == head_seq:
        out.notes.append(f"expected head: entry {seq}, the newest entry, unchanged")
    else:
        out.notes.append(
            f"expected head: entry {seq} is in the ledger, unchanged; entries {seq + 1}–"
            f"{head_seq} were added since it was noted"
        )


def _seqs(seqs: list[int]) -> str:
    shown = ", ".join(str(s) for s in seqs[:10])
    return shown + (f" and {len(seqs) - 10} more" if len(seqs) > 10 else "")
