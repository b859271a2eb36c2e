"""A case dossier: every question asked in an investigation case, asked again, as one PDF/A-3a.

The access log (:mod:`reporting.cases`) records each question — who asked, when, in which case,
the question and its parameters, how many rows came back — but deliberately not the answer
rows: keeping every answer would make the log a second copy of people's records. A dossier
therefore asks each recorded question of the case again, with the same parameters, and prints
the answer it gets now beside what the log recorded then. Where the row count differs, it says
so: the stored records (or the settings that classify them) changed since the question was
asked, typically because data was harvested since. A dossier is evidence of what was asked and
of what the records answer today, never a claim about what the investigator saw then.

Compiling a dossier is itself a look at personal data, so it is recorded in the access log
(question ``dossier``) under the case — before anything is rendered, as every answer is — also
for a closed case: the dossier is the record of what was done in it, and its compilation
belongs to it. The file is rendered by the report's pipeline (:func:`~reporting.report.render.
write_document`: same fonts, page furniture with the dossier id on every page, the same
assembler), with each answer attached as CSV and a manifest listing their SHA-256, then signed
when a signing certificate is configured and recorded in the report ledger with kind ``dossier``
(:func:`~reporting.report.document.publish_document`, as a sample is) —
so ``meetaudit verify`` checks it exactly as it checks a report, and the report's own
predecessor search (which looks for the same kind and period) never takes it for a report.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from reporting import __version__
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import AccessLogEntry, InvestigationCase
from reporting.errors import DatabaseError, MeetauditError, ReportError
from reporting.investigate import cell_text
from reporting.report import signing, witness
from reporting.report.api import (
    _ID_TOKEN,
    _as_folder,
    _discard,
    _next_full_second,
    _prepare_folder,
    _Target,
    _temp_beside,
    _weasyprint_version,
)
from reporting.report.context import iso_utc
from reporting.report.document import publish_document
from reporting.report.manifest import DOSSIER_MANIFEST_SCHEMA, manifest_bytes
from reporting.report.render import ReportMeta
from reporting.report.templating import plain_text

if TYPE_CHECKING:
    from reporting.investigate import Question

DOSSIER_KIND = "dossier"
DOSSIER_QUESTION = "dossier"  # the access log's name for compiling one
# Rows printed per answer: a dossier is read, and the attached CSV holds every row. An answer
# of thousands of rows printed in full would make the one WeasyPrint document slow and large.
ROWS_PRINTED = 200


def _questions() -> dict[str, Question]:
    """Every question of ``meetaudit investigate`` (and the console's), by its name there: the
    table both faces ask through (:data:`reporting.investigate.QUESTIONS`), so the answer is the
    one the command would give now."""
    from reporting.investigate import QUESTIONS

    return QUESTIONS


def question_of(recorded: str) -> str | None:
    """The investigate question an access-log entry records (``investigate person`` from the
    CLI, ``console investigate person`` from the web console), else ``None``: downloads,
    verifications and earlier dossiers are looks, but not questions to ask again."""
    name = recorded.removeprefix("console ")
    if not name.startswith("investigate "):
        return None
    name = name.removeprefix("investigate ")
    return name if name in _questions() else None


def arguments_of(recorded: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The question's arguments under the CLI's names. The console records the one text field
    it has as ``who``: the meeting id for ``meeting``, the title for ``meetings``."""
    args = dict(parameters)
    if recorded.startswith("console "):
        name = question_of(recorded)
        if name == "meeting":
            args.setdefault("meeting_id", args.get("who"))
        elif name == "meetings":
            args.setdefault("title", args.get("who"))
    return args


def _moment(value: Any, zone: dt.tzinfo) -> dt.datetime | None:
    """A --from/--to value as the log stored it (``2026-10-01 00:00:00``, maybe with an
    offset); a time without one is in the configured zone, as the CLI reads it."""
    if not value:
        return None
    moment = dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def period_of(args: dict[str, Any], zone: dt.tzinfo) -> Any:
    """The period a question searched, rebuilt from its recorded ``month``/``start``/``end`` as
    the faces read them (:func:`reporting.investigate.search_period`)."""
    from reporting.investigate import search_period

    month = str(args.get("month") or "").strip() or None
    return search_period(
        zone, month, _moment(args.get("start"), zone), _moment(args.get("end"), zone)
    )


# -- answering again ---------------------------------------------------------------------------


@dataclass
class Answer:
    """One access-log entry of the case and, for a question, the answer it gets now."""

    number: int
    seq: int
    asked_at: dt.datetime
    asked_by: str
    recorded: str  # the question as the log names it
    parameters: dict[str, Any]
    output_format: str
    rows_then: int
    question: str | None = None  # the investigate question, when it is one
    title: str = ""
    subject: str | None = None
    period: str | None = None
    rows: list[Any] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    problem: str | None = None  # why it could not be asked again
    attachment: str | None = None

    @property
    def asked_again(self) -> bool:
        """Asked again and answered (not merely listed, not failed)."""
        return self.question is not None and self.problem is None

    @property
    def rows_now(self) -> int | None:
        """Rows the question answers with now; ``None`` when it was not asked again."""
        return len(self.rows) if self.asked_again else None

    @property
    def changed(self) -> bool:
        """The count differs from the one the log recorded."""
        return self.asked_again and self.rows_now != self.rows_then


def answer_again(
    session: Session, settings: Settings, entry: AccessLogEntry, number: int
) -> Answer:
    """Ask the question of ``entry`` again; a question that can no longer be asked (a meeting
    id that now matches several meetings, a parameter this version does not know) is kept,
    with the reason, rather than failing the dossier: the log entry stays evidence."""
    from reporting.investigate import describe_period

    answer = Answer(
        number=number, seq=entry.seq, asked_at=entry.at, asked_by=entry.operator,
        recorded=entry.question, parameters=dict(entry.parameters or {}),
        output_format=entry.output_format, rows_then=entry.rows_returned,
    )  # fmt: skip
    name = question_of(entry.question)
    if name is None:
        return answer
    question = _questions()[name]
    args = arguments_of(entry.question, answer.parameters)
    answer.question, answer.title = name, question.title
    answer.subject = str(args.get(question.subject) or "") if question.subject else None
    answer.columns = [f.name for f in dataclasses.fields(question.row_type)]
    try:
        period = period_of(args, settings.zone)
        answer.period = describe_period(period, settings.zone)
        with session.begin_nested():  # a failed query must not end the dossier's transaction
            answer.rows = question.ask(session, settings, args, period)
    except (MeetauditError, KeyError, ValueError, TypeError) as exc:
        answer.rows = []
        answer.problem = _why(exc)
    return answer


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"the log entry lacks the parameter {exc.args[0]!r} this question needs"
    return str(exc) or type(exc).__name__


# -- the document ------------------------------------------------------------------------------


def new_dossier_id(ref: str) -> str:
    """``DOS-<case reference>-<8 random base32 characters>``; the reference's characters that
    an id cannot hold (``verify`` reads ids as ``[A-Za-z0-9._-]``) become ``-``."""
    token = base64.b32encode(secrets.token_bytes(5)).decode()
    clean = _ID_TOKEN.sub("-", ref).strip("-") or "case"
    return f"DOS-{clean}-{token}"


def answer_csv(answer: Answer, zone: dt.tzinfo) -> bytes:
    """The answer's rows as the CLI's ``--format csv`` writes them; the header even when no
    row came back, so an empty answer still says what it would have held."""
    from reporting.investigate import write_csv

    out = io.StringIO()
    if answer.rows:
        write_csv(answer.rows, out, zone)
    else:
        csv.writer(out, lineterminator="\r\n").writerow(answer.columns)
    return out.getvalue().encode("utf-8")


def _local(value: dt.datetime | None, zone: dt.tzinfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z") if value else ""


def _case_data(case: InvestigationCase, zone: dt.tzinfo) -> dict[str, Any]:
    return {
        "ref": case.ref,
        "purpose": case.purpose,
        "opened": _local(case.opened_at, zone),
        "opened_by": case.opened_by,
        "closed": _local(case.closed_at, zone) if case.closed_at else None,
        "closed_by": case.closed_by,
        "close_note": case.close_note,
    }


def _answer_data(a: Answer, zone: dt.tzinfo) -> dict[str, Any]:
    """What the template prints of one answer (every value still a stranger's text)."""
    return {
        "number": a.number,
        "anchor": f"q{a.number}",
        "seq": a.seq,
        "asked": _local(a.asked_at, zone),
        "asked_by": a.asked_by,
        "recorded": a.recorded,
        "parameters": [(k, cell_text(v, zone)) for k, v in sorted(a.parameters.items()) if v],
        "format": a.output_format,
        "question": a.question,
        "title": a.title,
        "subject": a.subject,
        "period": a.period,
        "rows_then": a.rows_then,
        "rows_now": a.rows_now,
        "changed": a.changed,
        "problem": a.problem,
        "columns": a.columns,
        "rows": [
            [cell_text(v, zone) for v in dataclasses.astuple(r)] for r in a.rows[:ROWS_PRINTED]
        ],
        "more": max(0, len(a.rows) - ROWS_PRINTED),
        "attachment": a.attachment,
    }


def _totals(answers: list[Answer]) -> dict[str, int]:
    asked = [a for a in answers if a.asked_again]
    return {
        "log_entries": len(answers),
        "questions": sum(1 for a in answers if a.question is not None),
        "asked_again": len(asked),
        "not_asked_again": sum(1 for a in answers if a.question is not None and a.problem),
        "rows_then": sum(a.rows_then for a in asked),
        "rows_now": sum(a.rows_now or 0 for a in asked),
        "counts_changed": sum(1 for a in asked if a.changed),
    }


@dataclass
class DossierResult:
    """What :func:`compile_dossier` did: the file, its ledger entry, the answers."""

    dossier_id: str
    case_ref: str
    path: Path
    sha256: str
    bytes: int
    pages: int
    ledger_seq: int
    access_log_seq: int
    answers: list[Answer]
    signed: bool = False
    unsigned_sha256: str | None = None
    ledger_head: tuple[int, str] | None = None
    witness: str | None = None
    witness_problems: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    def lines(self) -> list[str]:
        """A short human summary, one line each."""
        t = _totals(self.answers)
        out = [
            f"Dossier {self.dossier_id} of case {plain_text(self.case_ref)}",
            f"  PDF  {self.path}  ({self.bytes:,} bytes, {self.pages} pages)",
            f"       SHA-256 {self.sha256}",
        ]
        if self.unsigned_sha256:
            out.append(
                f"       signed (PDF signature); before signing SHA-256 {self.unsigned_sha256}"
            )
        out.append(
            f"  {t['questions']} question(s) asked again of {t['log_entries']} access-log "
            f"entr{'y' if t['log_entries'] == 1 else 'ies'}: {t['rows_now']:,} rows now, "
            f"{t['rows_then']:,} then"
        )
        for a in self.answers:
            if a.changed:
                out.append(
                    f"  question {a.number} (log entry {a.seq}): {a.rows_then:,} rows then, "
                    f"{a.rows_now:,} now — the records changed since it was asked"
                )
            elif a.problem:
                out.append(
                    f"  question {a.number} (log entry {a.seq}) not asked again: {plain_text(a.problem)}"
                )
        out.append(f"  recorded in the access log as entry {self.access_log_seq}")
        out.extend(witness.head_lines(self.ledger_head, self.witness, self.witness_problems,
                                      prefix=f"ledger entry {self.ledger_seq}; "))  # fmt: skip
        return out


def compile_dossier(
    settings: Settings,
    db: Database,
    ref: str,
    *,
    output: Path | str | None = None,
    question: str = DOSSIER_QUESTION,
    context: dict[str, Any] | None = None,
) -> DossierResult:
    """Ask every question of case ``ref`` again, record the look, render, sign and record the
    dossier; see the module docstring. ``output``: a file name or a folder (as for a report),
    else ``settings.output_dir``; an existing file is never overwritten. The look is recorded
    as ``question``, by ``settings.operator``, with ``context`` beside its own parameters (the
    console: ``console dossier``, the signed-in person's role and client address).

    An unknown case is a :class:`~reporting.errors.CaseError`; a closed case gets its dossier.
    """
    from reporting.cases import check_log, entries, find_case, record_access

    started = time.monotonic()
    generated_at = _next_full_second()
    identity = signing.load_identity(settings)
    key_text = f"X.509 certificate {identity.describe()}" if identity else None
    with db.session() as session:
        case = find_case(session, ref)
        dossier_id = new_dossier_id(case.ref)
        target = _target(settings, output, dossier_id)
        _prepare_folder(target.folder)
        logged = entries(session, case_ref=case.ref)
        log_state = check_log(session)
        answers = [answer_again(session, settings, e, n) for n, e in enumerate(logged, start=1)]
        look = record_access(
            session, operator=settings.operator, case_ref=case.ref, question=question,
            parameters={**(context or {}), "dossier_id": dossier_id,
                        "access_log_seqs": [a.seq for a in answers]},
            rows_returned=sum(a.rows_now or 0 for a in answers), output_format="pdf",
        )  # fmt: skip
        case_data = _case_data(case, settings.zone)
        case_facts = {"opened_at": case.opened_at, "closed": case.closed_at is not None}
        look_seq = look.seq
    # Committed here, before anything is rendered: a dossier whose look could not be recorded
    # is never written.
    meta = ReportMeta(
        report_id=dossier_id, generated_at=generated_at, generated_by=settings.operator,
        meetaudit_version=__version__, weasyprint_version=_weasyprint_version(),
        signing_key=key_text,
    )  # fmt: skip
    temp = _temp_beside(target.path)
    try:
        with tempfile.TemporaryDirectory(prefix="meetaudit-dossier-") as tmp:
            pages = _render(
                settings, meta, case_data, answers, Path(tmp), temp,
                log_ok=not (log_state.bad_seqs & {a.seq for a in answers}) and log_state.trigger,
                look_seq=look_seq,
            )  # fmt: skip
        totals = _totals(answers)
        done = publish_document(
            settings, db, temp, target.names(dossier_id), document_id=dossier_id,
            kind=DOSSIER_KIND, generated_at=generated_at, identity=identity, key_text=key_text,
            pages=pages,
            parameters={
                "dossier": {"case": case_data["ref"], "access_log_seqs": [a.seq for a in answers],
                            "access_log_seq": look_seq, "case_closed": case_facts["closed"]},
                "renderer": {"weasyprint": meta.weasyprint_version},
            },
            fields={
                # The span of the case up to its dossier: a dossier covers no period of meetings.
                "period_from": case_facts["opened_at"], "period_to": generated_at,
                "harvest_run_ids": [], "control_totals": totals,
                # Complete: every question of the case could be asked again.
                "complete": not totals["not_asked_again"],
            },
        )  # fmt: skip
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseError(
            f"recording dossier {dossier_id} in the ledger failed: "
            f"{str(exc.orig or exc).strip().splitlines()[0]}; no file was kept. Its compilation "
            f"stays recorded in the access log (entry {look_seq}); run it again."
        ) from None
    except OSError as exc:
        raise ReportError(
            f"writing {target.path} failed: {exc.strerror or exc}; nothing was kept and nothing "
            f"was recorded in the ledger (the compilation stays in the access log, entry "
            f"{look_seq})."
        ) from exc
    finally:
        _discard(temp)
    return DossierResult(
        dossier_id=dossier_id, case_ref=case_data["ref"], path=done.path, sha256=done.sha256,
        bytes=done.bytes, pages=pages, ledger_seq=done.ledger_seq, access_log_seq=look_seq,
        answers=answers, signed=done.signed, unsigned_sha256=done.unsigned_sha256,
        ledger_head=done.ledger_head, witness=done.witness,
        witness_problems=done.witness_problems, elapsed_seconds=time.monotonic() - started,
    )  # fmt: skip


def _target(settings: Settings, output: Path | str | None, dossier_id: str) -> _Target:
    """Where the dossier goes: ``output`` as a file name, or a folder (``output`` or the
    ``output_dir`` setting) with the dossier id as the name."""
    folder = settings.output_dir if output is None else _as_folder(output)
    if folder is not None:
        return _Target(folder, dossier_id, ".pdf")
    path = Path(output or "")
    return _Target(path.parent, path.stem if path.suffix else path.name, path.suffix or ".pdf")


def _render(
    settings: Settings,
    meta: ReportMeta,
    case: dict[str, Any],
    answers: list[Answer],
    work: Path,
    temp: Path,
    *,
    log_ok: bool,
    look_seq: int,
) -> int:
    """Write the answers' CSVs and the manifest, render the PDF to ``temp``; return its page
    count."""
    from reporting.report.assemble import DocumentInfo
    from reporting.report.render import write_document

    zone = settings.zone
    attachments = []
    for a in answers:
        if a.question is None:
            continue
        a.attachment = f"answer-{a.number:02d}-{a.question}.csv"
        path = work / a.attachment
        path.write_bytes(answer_csv(a, zone))
        attachments.append({
            "name": a.attachment, "path": path, "mime": "text/csv",
            "description": f"Answer to question {a.number} (access-log entry {a.seq}), asked "
                           f"again for dossier {meta.report_id}",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "size": path.stat().st_size,
        })  # fmt: skip
    manifest = manifest_bytes(_manifest(meta, case, answers, attachments, look_seq))
    attachments.append({
        "name": "manifest.json", "path": None, "mime": "application/json",
        "description": "The case, each access-log entry answered again with its row counts, "
                       "and the SHA-256 of each other attachment",
        "sha256": "", "size": None,
    })  # fmt: skip
    data = {
        "report_id": meta.report_id,
        "org_name": settings.org_name,
        "case": case,
        "generated_local": _local(meta.generated_at, zone),
        "generated_utc": iso_utc(meta.generated_at),
        "generated_by": meta.generated_by,
        "version": meta.meetaudit_version,
        "signing_key": meta.signing_key,
        "timezone": settings.timezone,
        "log_ok": log_ok,
        "look_seq": look_seq,
        "totals": _totals(answers),
        "answers": [_answer_data(a, zone) for a in answers],
        "rows_printed": ROWS_PRINTED,
        "attachments": [a for a in attachments if a["path"] is not None],
    }
    sections = [("log", "Access log of the case")] + [
        (f"q{a.number}", plain_text(f"{a.number}  {a.title or a.recorded} {a.subject or ''}", 100))
        for a in answers
    ]
    info = DocumentInfo(
        title=plain_text(f"{settings.org_name} — investigation case dossier {case['ref']}", 300),
        subject=plain_text(
            f"The questions asked in investigation case {case['ref']}, each asked again on "
            f"{iso_utc(meta.generated_at)}, with the answers. Dossier {meta.report_id}.",
            400,
        ),
        keywords=plain_text(f"meetaudit; dossier; {case['ref']}; {meta.report_id}", 300),
        contents_page=False,
    )
    pages = write_document(
        temp, template="dossier.html", data=data, meta=meta, info=info,
        attachments=attachments, manifest=manifest,
        header=plain_text(f"{settings.org_name} · case dossier · {case['ref']}", 110),
        footer=f"Dossier {meta.report_id}", sections=sections,
    )  # fmt: skip
    return pages


def _manifest(
    meta: ReportMeta,
    case: dict[str, Any],
    answers: list[Answer],
    attachments: list[dict[str, Any]],
    look_seq: int,
) -> dict[str, Any]:
    """The dossier's manifest.json: what ``verify`` compares with the ledger, and what a script
    reads to tie the CSVs to the questions without reading the PDF."""
    return {
        "schema": DOSSIER_MANIFEST_SCHEMA,
        "report_id": meta.report_id,
        "kind": DOSSIER_KIND,
        "format": "pdf",
        "generated_at": iso_utc(meta.generated_at),
        "generated_by": meta.generated_by,
        "meetaudit_version": meta.meetaudit_version,
        "renderer": {"weasyprint": meta.weasyprint_version},
        "signing_key": meta.signing_key,
        "case": case,
        "access_log_seqs": [a.seq for a in answers],
        "dossier_access_log_seq": look_seq,
        "control_totals": _totals(answers),
        "questions": [
            {
                "number": a.number,
                "access_log_seq": a.seq,
                "question": a.recorded,
                "parameters": a.parameters,
                "asked_at": iso_utc(a.asked_at),
                "asked_by": a.asked_by,
                "rows_then": a.rows_then,
                "rows_now": a.rows_now,
                "asked_again": a.asked_again,
                "problem": a.problem,
                "attachment": a.attachment,
            }
            for a in answers
        ],
        "attachments": [
            {"name": a["name"], "sha256": a["sha256"], "bytes": a["size"], "mime": a["mime"]}
            for a in attachments
        ],
    }
