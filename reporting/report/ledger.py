"""The report ledger: one hash-chained entry per report file, appended, never changed.

Each entry's ``entry_sha256`` is the SHA-256 of a canonical JSON of all its other fields,
including ``prev_entry_sha256`` (the previous entry's hash): changing any field of any entry, or
removing an entry from the middle, breaks the chain, and :func:`check_chain` says where. The
database refuses UPDATE and DELETE on the table (a trigger); tampering needs a superuser and is
still detected. Removing the *newest* entries, or rewriting an entry and recomputing every hash
after it, cannot be seen from the chain alone: each new head is therefore also published outside
the database (:mod:`reporting.report.witness`), and ``verify --ledger --expect-head`` checks a head
noted elsewhere (a ticket, an email). :func:`trigger_problems` says when the database no longer
refuses changes.

Canonical JSON: keys sorted, no whitespace, UTF-8, times as ISO 8601 UTC with ``Z``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from reporting.db.models import ReportRun
from reporting.report.context import iso_utc

# Fields hashed, in the order of the model; entry_sha256 is the hash itself.
HASHED_FIELDS = (
    "seq", "report_id", "kind", "generated_at", "generated_by", "meetaudit_version",
    "period_from", "period_to", "timezone", "format", "parameters", "harvest_run_ids",
    "control_totals", "complete", "output_path", "file_sha256", "file_bytes", "signature_path",
    "prev_entry_sha256",
)  # fmt: skip
LEDGER_LOCK_KEY = 0x6D615F6C  # "ma_l": one ledger append at a time
# What each kind of entry records, in words: a period's report, or a document of another kind.
KINDS = {
    "monthly": "a report of a period (meetaudit report)",
    "dossier": "a case dossier (meetaudit case dossier)",
    "sample": "a sample of a period's reconciliation rows (meetaudit sample)",
}


def kind_words(kind: str) -> str:
    """An entry's kind as a reader names it."""
    return KINDS.get(kind, f"a {kind} document")


def canonical(entry: dict[str, Any]) -> bytes:
    """The canonical JSON of an entry's hashed fields."""
    data = {}
    for name in HASHED_FIELDS:
        value = entry[name]
        if isinstance(value, dt.datetime):
            value = iso_utc(value)
        data[name] = value
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    """``entry_sha256`` of an entry (a dict with :data:`HASHED_FIELDS`)."""
    return hashlib.sha256(canonical(entry)).hexdigest()


def as_dict(row: ReportRun) -> dict[str, Any]:
    """A ledger row as a plain dict of its columns."""
    return {name: getattr(row, name) for name in (*HASHED_FIELDS, "entry_sha256")}


def append(session: Session, fields: dict[str, Any]) -> ReportRun:
    """Append an entry (``fields`` without seq and hashes) in the caller's transaction.

    Takes a transaction-scoped advisory lock so two reports cannot claim the same ``seq``.
    """
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEDGER_LOCK_KEY})
    last = session.scalars(select(ReportRun).order_by(ReportRun.seq.desc()).limit(1)).first()
    entry = dict(fields)
    entry["seq"] = (last.seq + 1) if last else 1
    entry["prev_entry_sha256"] = last.entry_sha256 if last else None
    # Round-trip through JSON so what is hashed is exactly what JSONB gives back later.
    for name in ("parameters", "harvest_run_ids", "control_totals"):
        entry[name] = json.loads(json.dumps(entry[name]))
    entry["entry_sha256"] = entry_hash(entry)
    row = ReportRun(**entry)
    session.add(row)
    session.flush()
    return row


def find_by_report_id(session: Session, report_id: str) -> ReportRun | None:
    """The entry with this report id, or ``None``."""
    return session.scalars(select(ReportRun).where(ReportRun.report_id == report_id)).first()


def find_of_report(session: Session, base_id: str) -> list[ReportRun]:
    """Every entry of one report run: the id itself and the ids that extend it with an ending
    (``MAR-…``, ``MAR-….csv``, ``MAR-….meetings.csv``, ``MAR-….json``), oldest first."""
    return list(
        session.scalars(
            select(ReportRun)
            .where(
                (ReportRun.report_id == base_id)
                | ReportRun.report_id.startswith(f"{base_id}.", autoescape=True)
            )
            .order_by(ReportRun.seq)
        )
    )


def find_by_sha256(session: Session, sha256: str) -> list[ReportRun]:
    """Entries whose file has this SHA-256, oldest first: several when reports of unchanged data
    are identical (two CSV reports of the same month, say)."""
    return list(
        session.scalars(
            select(ReportRun).where(ReportRun.file_sha256 == sha256).order_by(ReportRun.seq)
        )
    )


@dataclass
class ChainState:
    """Result of walking the chain."""

    entries: int = 0
    head_seq: int | None = None
    head_sha256: str | None = None
    problems: list[str] = field(default_factory=list)
    bad_seqs: set[int] = field(default_factory=set)
    rows: list[dict[str, Any]] = field(default_factory=list)  # every entry, when asked to keep
    hashes: dict[int, str] = field(default_factory=dict)  # seq -> entry_sha256, every entry


def check_chain(session: Session, *, keep_rows: bool = False) -> ChainState:
    """Walk every entry in order, recomputing hashes and links; collect every problem found.

    ``keep_rows``: also keep every entry (as :func:`as_dict` gives it) in :attr:`ChainState.rows`.
    """
    state = ChainState()
    prev: dict[str, Any] | None = None
    expected_seq = 1
    rows = session.execute(select(ReportRun).order_by(ReportRun.seq)).scalars()
    for row in rows:
        entry = as_dict(row)
        seq = entry["seq"]
        state.entries += 1
        state.hashes[seq] = entry["entry_sha256"]
        if keep_rows:
            state.rows.append(entry)
        if seq != expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}–{seq - 1}"
            state.problems.append(
                f"entry {missing} is missing: the ledger jumps from {expected_seq - 1} to {seq} "
                "(an entry was removed)"
            )
            state.bad_seqs.add(seq)
        recomputed = entry_hash(entry)
        if recomputed != entry["entry_sha256"]:
            state.problems.append(
                f"entry {seq} ({entry['report_id']}) was altered: its content no longer matches "
                "its hash"
            )
            state.bad_seqs.add(seq)
        expected_prev = prev["entry_sha256"] if prev else None
        if entry["prev_entry_sha256"] != expected_prev:
            state.problems.append(
                f"entry {seq} ({entry['report_id']}) does not chain to the entry before it "
                "(an entry before it was removed or altered)"
            )
            state.bad_seqs.add(seq)
        prev = entry
        expected_seq = seq + 1
    if prev is not None:
        state.head_seq = prev["seq"]
        state.head_sha256 = prev["entry_sha256"]
    return state


def trigger_present(session: Session) -> bool:
    """True when the database still refuses UPDATE, DELETE and TRUNCATE on the ledger."""
    return not trigger_problems(session)


TRIGGER = "report_runs_append_only"
# The append-only tables, each with what its trigger is called in messages and the body of its
# trigger function as the migrations create it, whitespace collapsed.
_APPEND_ONLY = {
    "report_runs": (
        "the ledger",
        "BEGIN RAISE EXCEPTION 'the report ledger is append-only: % on report_runs refused', "
        "TG_OP USING ERRCODE = 'insufficient_privilege'; END;",
    ),
    "access_log": (
        "the access log",
        "BEGIN RAISE EXCEPTION 'the access log is append-only: % on access_log refused', "
        "TG_OP USING ERRCODE = 'insufficient_privilege'; END;",
    ),
}
# pg_trigger.tgtype bits: DELETE, UPDATE, TRUNCATE.
_REFUSED = {"DELETE": 8, "UPDATE": 16, "TRUNCATE": 32}


def trigger_problems(session: Session, table: str = "report_runs") -> list[str]:
    """Why the database no longer refuses changes to ``table`` (the ledger, or the access log):
    its append-only trigger is missing, disabled (or set to fire only on replicas), no longer
    covers UPDATE, DELETE or TRUNCATE, or its function no longer refuses. Empty when intact."""
    what, body = _APPEND_ONLY[table]
    trigger = f"{table}_append_only"
    row = session.execute(
        text(
            "SELECT t.tgenabled, t.tgtype, p.proname, p.prosrc FROM pg_trigger t "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgname = :name AND t.tgrelid = CAST(:table AS regclass)"
        ),
        {"name": trigger, "table": table},
    ).first()
    lost = f"the database no longer refuses changes to {what}"
    if row is None:
        return [
            f"the append-only trigger {trigger} on {what} (table {table}) is missing (it was "
            f"dropped): {lost}. Someone with administrator rights on the database removed it; "
            "restore it with `meetaudit db upgrade` as the owner role only after finding out who "
            "did and why"
        ]
    enabled, tgtype, proname, prosrc = row
    problems = []
    if enabled in ("D", "R"):
        how = "disabled" if enabled == "D" else "set to fire only on replicas"
        problems.append(
            f"the append-only trigger {trigger} on {what} (table {table}) is {how}: {lost}. "
            "Someone with administrator rights on the database switched it off (ALTER TABLE … "
            "DISABLE TRIGGER); find out who and why before trusting entries written since"
        )
    uncovered = [op for op, bit in _REFUSED.items() if not int(tgtype) & bit]
    if uncovered:
        problems.append(
            f"the append-only trigger {trigger} no longer covers {', '.join(uncovered)}: it was "
            "replaced by one that lets those changes through"
        )
    if proname != trigger or " ".join(str(prosrc).split()) != body:
        problems.append(
            f"the append-only trigger {trigger} no longer runs the function that refuses every "
            "change: its function was replaced"
        )
    return problems
