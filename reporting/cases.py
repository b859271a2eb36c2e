"""Investigation cases and the access log: every look at personal data is itself recorded.

A *case* (``meetaudit case open REF --purpose "…"``) is the reason an investigator looks at
people's records; with ``require_case`` (on by default, off in the demo) every investigate
question must name an open case. Whether or not a case is required, every question answered is
appended to the *access log*: who asked (the operator), when, in which case, the question and its
parameters, how many rows came back and in which format — recorded *before* the answer is shown,
so an answer whose look could not be recorded is never shown.

The access log is protected like the report ledger (``reporting.report.ledger``): each entry's
``entry_sha256`` is the SHA-256 of a canonical JSON of its other fields, including the previous
entry's hash, and the database refuses UPDATE, DELETE and TRUNCATE on the table (a trigger).
:func:`check_log` walks the chain and says where it breaks; removing the newest entries is only
detectable against a head hash noted elsewhere, which ``meetaudit access-log`` prints.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reporting import __version__
from reporting.db.models import AccessLogEntry, InvestigationCase
from reporting.errors import CaseError
from reporting.report.ledger import trigger_problems

ACCESS_LOG_LOCK_KEY = 0x6D615F61  # "ma_a": one access-log append at a time
HASHED_FIELDS = (
    "seq", "at", "operator", "case_ref", "question", "parameters", "rows_returned",
    "output_format", "meetaudit_version", "prev_entry_sha256",
)  # fmt: skip
MAX_REF = 80


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def canonical(entry: dict[str, Any]) -> bytes:
    """The canonical JSON of an entry's hashed fields (keys sorted, no spaces, times in UTC)."""
    data = {}
    for name in HASHED_FIELDS:
        value = entry[name]
        data[name] = _iso(value) if isinstance(value, dt.datetime) else value
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    """``entry_sha256`` of an access-log entry (a dict with :data:`HASHED_FIELDS`)."""
    return hashlib.sha256(canonical(entry)).hexdigest()


# -- cases ----------------------------------------------------------------------------------------


def _clean_ref(ref: str) -> str:
    ref = ref.strip()
    if not ref or len(ref) > MAX_REF or any(not c.isprintable() for c in ref):
        raise CaseError(
            f"a case reference is 1 to {MAX_REF} printable characters, such as INV-2026-014"
        )
    return ref


def open_case(session: Session, ref: str, purpose: str, *, operator: str) -> InvestigationCase:
    """Open a new case; its reference must not have been used before (closed cases included)."""
    ref = _clean_ref(ref)
    if not purpose.strip():
        raise CaseError('say why the case is opened: --purpose "…" (it is recorded)')
    if session.get(InvestigationCase, ref) is not None:
        raise CaseError(f"case {ref} already exists; a reference is used once — choose another one")
    case = InvestigationCase(
        ref=ref,
        purpose=purpose.strip(),
        opened_at=dt.datetime.now(dt.UTC),
        opened_by=operator,
    )
    session.add(case)
    try:
        session.flush()
    except IntegrityError:  # opened at the same moment by someone else
        raise CaseError(f"case {ref} already exists; choose another reference") from None
    return case


def close_case(session: Session, ref: str, *, operator: str, note: str | None) -> InvestigationCase:
    """Close an open case: no further question can be asked in it."""
    case = find_case(session, ref)
    if case.closed_at is not None:
        raise CaseError(f"case {case.ref} was already closed on {_iso(case.closed_at)}")
    case.closed_at = dt.datetime.now(dt.UTC)
    case.closed_by = operator
    case.close_note = note.strip() if note and note.strip() else None
    session.flush()
    return case


def find_case(session: Session, ref: str) -> InvestigationCase:
    """The case with this reference; :class:`CaseError` when there is none."""
    case = session.get(InvestigationCase, ref.strip())
    if case is None:
        raise CaseError(
            f"there is no case {ref.strip()!r}: open it first with "
            f'`meetaudit case open {ref.strip()} --purpose "…"` (see `meetaudit case list`)'
        )
    return case


def open_case_for_question(session: Session, ref: str | None, *, required: bool) -> str | None:
    """The case a question is asked in, checked: it must exist and be open; required unless
    the settings say otherwise."""
    if ref is None:
        if required:
            raise CaseError(
                "looking at people's records needs a case: add --case REF "
                '(open one with `meetaudit case open REF --purpose "…"`); every question is '
                "recorded in the access log with its case"
            )
        return None
    case = find_case(session, ref)
    if case.closed_at is not None:
        raise CaseError(
            f"case {case.ref} was closed on {_iso(case.closed_at)}: no further questions can be "
            "asked in it; open a new case"
        )
    return case.ref


@dataclass
class CaseSummary:
    """A case with the number of questions asked in it."""

    ref: str
    purpose: str
    opened_at: dt.datetime
    opened_by: str
    closed_at: dt.datetime | None
    closed_by: str | None
    questions: int


def list_cases(session: Session) -> list[CaseSummary]:
    """Every case, newest first, with how many questions the access log records for it."""
    rows = session.execute(
        text(
            """
            SELECT c.ref, c.purpose, c.opened_at, c.opened_by, c.closed_at, c.closed_by,
                   (SELECT count(*) FROM access_log a WHERE a.case_ref = c.ref) AS questions
            FROM investigation_cases c ORDER BY c.opened_at DESC, c.ref
            """
        )
    )
    return [CaseSummary(*row) for row in rows]


# -- the access log -------------------------------------------------------------------------------


def record_access(
    session: Session,
    *,
    operator: str,
    case_ref: str | None,
    question: str,
    parameters: dict[str, Any],
    rows_returned: int,
    output_format: str,
) -> AccessLogEntry:
    """Append one entry in the caller's transaction (an advisory lock serialises appends)."""
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ACCESS_LOG_LOCK_KEY})
    last = session.scalars(
        select(AccessLogEntry).order_by(AccessLogEntry.seq.desc()).limit(1)
    ).first()
    entry: dict[str, Any] = {
        "seq": (last.seq + 1) if last else 1,
        "at": dt.datetime.now(dt.UTC),
        "operator": operator,
        "case_ref": case_ref,
        "question": question,
        # Round-trip through JSON so what is hashed is exactly what JSONB gives back later.
        "parameters": json.loads(json.dumps(parameters, default=str)),
        "rows_returned": rows_returned,
        "output_format": output_format,
        "meetaudit_version": __version__,
        "prev_entry_sha256": last.entry_sha256 if last else None,
    }
    entry["entry_sha256"] = entry_hash(entry)
    row = AccessLogEntry(**entry)
    session.add(row)
    session.flush()
    return row


def as_dict(row: AccessLogEntry) -> dict[str, Any]:
    """An access-log row as a plain dict of its columns."""
    return {name: getattr(row, name) for name in (*HASHED_FIELDS, "entry_sha256")}


@dataclass
class LogState:
    """What walking the access log found."""

    entries: int = 0
    head_seq: int | None = None
    head_sha256: str | None = None
    trigger: bool = True
    problems: list[str] = field(default_factory=list)
    bad_seqs: set[int] = field(default_factory=set)

    @property
    def intact(self) -> bool:
        """No entry altered or removed, and the database still refuses changes."""
        return not self.problems and self.trigger


def check_log(session: Session) -> LogState:
    """Walk every entry in order, recomputing hashes and links; collect every problem found."""
    state = LogState()
    prev: dict[str, Any] | None = None
    expected = 1
    for row in session.execute(select(AccessLogEntry).order_by(AccessLogEntry.seq)).scalars():
        entry = as_dict(row)
        seq = entry["seq"]
        state.entries += 1
        if seq != expected:
            state.problems.append(
                f"entry {expected}{'' if seq == expected + 1 else f'–{seq - 1}'} is missing: the "
                f"log jumps from {expected - 1} to {seq} (an entry was removed)"
            )
            state.bad_seqs.add(seq)
        if entry_hash(entry) != entry["entry_sha256"]:
            state.problems.append(
                f"entry {seq} was altered: its content no longer matches its hash"
            )
            state.bad_seqs.add(seq)
        if entry["prev_entry_sha256"] != (prev["entry_sha256"] if prev else None):
            state.problems.append(
                f"entry {seq} does not chain to the entry before it (an entry before it was "
                "removed or altered)"
            )
            state.bad_seqs.add(seq)
        prev = entry
        expected = seq + 1
    if prev is not None:
        state.head_seq = prev["seq"]
        state.head_sha256 = prev["entry_sha256"]
    trigger = trigger_problems(session, "access_log")
    state.trigger = not trigger
    state.problems.extend(trigger)
    return state


def entries(session: Session, *, case_ref: str | None = None) -> list[AccessLogEntry]:
    """Access-log entries, oldest first, of one case or all."""
    query = select(AccessLogEntry).order_by(AccessLogEntry.seq)
    if case_ref is not None:
        query = query.where(AccessLogEntry.case_ref == case_ref)
    return list(session.scalars(query))
