"""A reproducible random sample of a period's reconciliation rows, for an auditor's tests.

The population is every reconciliation row of the period, built exactly as the report builds
them (:func:`~reporting.report.context.build_context`, as of one moment): one row per person per
meeting harvested completely. It is put in a stated, stable order — meetings by actual start,
then meeting id (the report's order); within a meeting, by the row's person key (the trimmed,
lower-cased email, else ``participant:<id>``, one per person per meeting) — and numbered from 1.
The sample is :func:`draw`: Python's ``random.Random(seed).sample(range(N), n)``, the Mersenne
Twister seeded with the integer seed, drawing ``n`` distinct positions of the ``N`` without
replacement. The same seed on the same data gives the same sample, on any machine with the same
Python (its version is recorded); a different seed, an independent one.

The sample is written as one PDF/A-3b by the report's pipeline
(:func:`~reporting.report.render.write_document`) — the method, seed, population and sample
sizes, the period's completeness and listing reach, and the rows drawn — with ``sample.csv``
(the rows drawn, in draw order, with their draw number and population position, then the
reconciliation columns) and a manifest attached; signed when a signing certificate is
configured, and recorded in the report ledger with kind ``sample``
(:func:`~reporting.report.document.publish_document`), so ``meetaudit verify`` checks it as it
checks a report. Every draw is recorded: a sample drawn again until it pleased would show in
the ledger.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import platform
import random
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from reporting import __version__
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.errors import DatabaseError, ReportError
from reporting.periods import Window
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
    report_parameters,
    snapshot,
)
from reporting.report.context import (
    FLAG_LABELS,
    NOT_TESTABLE_REASONS,
    STATUS_LABELS,
    ReportContext,
    ReportParameters,
    build_context,
    iso_utc,
    period_title,
)
from reporting.report.document import publish_document
from reporting.report.exports import RECONCILIATION_COLUMNS, csv_cell
from reporting.report.manifest import SAMPLE_MANIFEST_SCHEMA, manifest_bytes
from reporting.report.render import ReportMeta, reach_data
from reporting.report.templating import plain_text

SAMPLE_KIND = "sample"
SAMPLE_COLUMNS: tuple[str, ...] = ("draw", "population_position", *RECONCILIATION_COLUMNS)
METHOD = (
    "random.Random(seed).sample(range(N), n) of Python {python}: the Mersenne Twister seeded "
    "with the integer seed draws n distinct positions of the N rows, without replacement"
)
ORDER = (
    "meetings by actual start, then meeting id (the report's order); within a meeting, by "
    "person key (the trimmed, lower-cased email, else participant:<id>)"
)
# Rows printed: a sample is for working through by hand, and every row is in sample.csv anyway.
ROWS_PRINTED = 500

Progress = Callable[[str, int, int | None], None]


def draw(population: int, size: int, seed: int) -> list[int]:
    """The sample's positions (1-based), in draw order: ``random.Random(seed).sample`` of the
    population's positions; see the module docstring. ``size`` larger than ``population`` is
    a :class:`~reporting.errors.ReportError` in words."""
    if size > population:
        raise ReportError(
            f"a sample of {size:,} rows cannot be drawn from {population:,}: the period has "
            f"only {population:,} reconciliation row{'s' if population != 1 else ''}. Ask for "
            f"--size {population:,} or fewer (at {population:,}, every row is in the sample)"
        )
    return [position + 1 for position in random.Random(seed).sample(range(population), size)]


def population_order(rows: Iterable[dict[str, Any]]) -> list[int]:
    """The indices of ``rows`` (in the report's order) in the population's stated order: the
    report's meeting order kept, the rows of each meeting by person key."""
    keys: list[tuple[int, str, int]] = []
    meeting = -1
    last: str | None = None
    for index, row in enumerate(rows):
        if row["meeting_id"] != last:
            meeting += 1
            last = row["meeting_id"]
        keys.append((meeting, row["person_key"], index))
    keys.sort()
    return [index for _, _, index in keys]


@dataclass
class SampleResult:
    """What :func:`compile_sample` did: the file, its ledger entry, the population and draw."""

    sample_id: str
    label: str
    path: Path
    sha256: str
    bytes: int
    pages: int
    ledger_seq: int
    seed: int
    population: int
    positions: list[int]
    complete: bool
    listing_reach: dict[str, Any]
    accompanies: str | None = None
    signed: bool = False
    unsigned_sha256: str | None = None
    ledger_head: tuple[int, str] | None = None
    witness: str | None = None
    witness_problems: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    def lines(self) -> list[str]:
        """A short human summary, one line each."""
        out = [
            f"Sample {self.sample_id} ({self.label}): {len(self.positions):,} of "
            f"{self.population:,} reconciliation rows, seed {self.seed}"
            + (f", drawn from the rows of report {self.accompanies}" if self.accompanies else ""),
            f"  PDF  {self.path}  ({self.bytes:,} bytes, {self.pages} pages; sample.csv attached)",
            f"       SHA-256 {self.sha256}",
        ]
        if self.unsigned_sha256:
            out.append(
                f"       signed (PDF signature); before signing SHA-256 {self.unsigned_sha256}"
            )
        out.append(
            f"  positions drawn: {', '.join(str(p) for p in self.positions[:12])}"
            + (" …" if len(self.positions) > 12 else "")
        )
        out.extend(witness.head_lines(self.ledger_head, self.witness, self.witness_problems,
                                      prefix=f"ledger entry {self.ledger_seq}; "))  # fmt: skip
        if not self.complete:
            out.append(
                "  INCOMPLETE period: the population holds only the meetings harvested "
                "completely; the sample says so, and `meetaudit gaps` lists what is missing"
            )
        if not self.listing_reach.get("whole_organisation", True):
            could = (
                "could not see"
                if self.listing_reach.get("verdict") == "limited"
                else "may not have seen"
            )
            out.append(
                f"  LISTING REACH: the harvest's listing {could} the whole organisation — "
                + "; ".join(self.listing_reach.get("reasons") or [])
                + ". The population holds only what it saw; the sample says so"
            )
        return out


def new_sample_id(label: str) -> str:
    """``SMP-<label>-<8 random base32 characters>``."""
    token = base64.b32encode(secrets.token_bytes(5)).decode()
    clean = _ID_TOKEN.sub("-", label).strip("-") or "period"
    return f"SMP-{clean}-{token}"


def compile_sample(
    settings: Settings,
    db: Database,
    window: Window,
    *,
    label: str,
    size: int,
    seed: int,
    output: Path | str | None = None,
    progress: Progress | None = None,
    as_of: dt.datetime | None = None,
    accompanies: str | None = None,
) -> SampleResult:
    """Draw, write, sign and record a sample of ``window``'s reconciliation rows; see the module
    docstring. The rows are read as of ``as_of`` (default: the sample's own generation time);
    ``accompanies`` names the report whose generation time that is, when the sample is drawn
    with it (``meetaudit report --sample-size``). ``output``: a file name or a folder, else
    ``settings.output_dir``; an existing file is never overwritten."""
    started = time.monotonic()
    note = progress or (lambda stage, done, total: None)
    if size < 1:
        raise ReportError("a sample needs at least one row: give --size 1 or more")
    generated_at = _next_full_second()
    if window.end > generated_at:
        raise ReportError(
            f"the period {label} is not over yet: its rows can still change. Draw the sample "
            "once the period is over (and harvested)"
        )
    params = report_parameters(settings, window, label=label, as_of=as_of or generated_at)
    sample_id = new_sample_id(label)
    target = _target(settings, output, label, sample_id)
    _prepare_folder(target.folder)
    identity = signing.load_identity(settings)
    key_text = f"X.509 certificate {identity.describe()}" if identity else None
    meta = ReportMeta(
        report_id=sample_id, generated_at=generated_at, generated_by=settings.operator,
        meetaudit_version=__version__, weasyprint_version=_weasyprint_version(),
        signing_key=key_text,
    )  # fmt: skip
    temp = _temp_beside(target.path)
    try:
        with tempfile.TemporaryDirectory(prefix="meetaudit-sample-") as tmp:
            work = Path(tmp)
            with snapshot(db) as session:
                ctx = build_context(session, params, workdir=work, keep_rows=True, progress=note)
            assert ctx.rows is not None
            note("drawing", 0, None)
            order = population_order(iter(ctx.rows))
            positions = draw(len(order), size, seed)
            wanted = {order[p - 1]: n for n, p in enumerate(positions)}
            drawn: list[dict[str, Any]] = [{} for _ in positions]
            for index, row in enumerate(ctx.rows):
                if index in wanted:
                    n = wanted[index]
                    drawn[n] = {"draw": n + 1, "population_position": positions[n], **row}
            note("document", 0, None)
            sample = _Sample(params, ctx, seed, len(order), drawn, accompanies)
            pages = _render(settings, meta, sample, work, temp)
        reach = reach_json(ctx)
        done = publish_document(
            settings, db, temp, target.names(sample_id), document_id=sample_id,
            kind=SAMPLE_KIND, generated_at=generated_at, identity=identity, key_text=key_text,
            pages=pages,
            parameters={
                "sample": sample.facts(),
                # The population's rows are the report's, built with these parameters.
                "report": params.to_json(),
                "renderer": {"weasyprint": meta.weasyprint_version},
                "listing_reach": reach,
            },
            fields={
                "period_from": window.start, "period_to": window.end,
                "harvest_run_ids": [r["id"] for r in ctx.harvest_runs],
                "control_totals": sample.totals(),
                "complete": ctx.complete,
            },
        )  # fmt: skip
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseError(
            f"recording sample {sample_id} in the ledger failed: "
            f"{str(exc.orig or exc).strip().splitlines()[0]}; no file was kept. Check the "
            "database and draw it again (the same seed gives the same sample)."
        ) from None
    except OSError as exc:
        raise ReportError(
            f"writing {target.path} failed: {exc.strerror or exc}; nothing was kept and nothing "
            "was recorded in the ledger."
        ) from exc
    finally:
        _discard(temp)
    return SampleResult(
        sample_id=sample_id, label=label, path=done.path, sha256=done.sha256, bytes=done.bytes,
        pages=pages, ledger_seq=done.ledger_seq, seed=seed, population=len(order),
        positions=positions, complete=ctx.complete, listing_reach=reach,
        accompanies=accompanies, signed=done.signed, unsigned_sha256=done.unsigned_sha256,
        ledger_head=done.ledger_head, witness=done.witness,
        witness_problems=done.witness_problems, elapsed_seconds=time.monotonic() - started,
    )  # fmt: skip


def reach_json(ctx: ReportContext) -> dict[str, Any]:
    """The period's listing reach as the ledger records it (as for a report)."""
    return {
        "whole_organisation": ctx.reach.whole_organisation,
        "verdict": ctx.reach.verdict,
        "reasons": ctx.reach.reasons,
    }


@dataclass
class _Sample:
    """The drawn sample and what it was drawn from, for the document, CSV and manifest."""

    params: ReportParameters
    ctx: ReportContext
    seed: int
    population: int
    rows: list[dict[str, Any]]
    accompanies: str | None

    def facts(self) -> dict[str, Any]:
        """What the ledger and the manifest record of the draw."""
        return {
            "seed": self.seed,
            "size": len(self.rows),
            "population": self.population,
            "method": METHOD.format(python=platform.python_version()),
            "python": platform.python_version(),
            "population_order": ORDER,
            "positions": [r["population_position"] for r in self.rows],
            "rows_as_of": iso_utc(self.params.as_of),
            "accompanies": self.accompanies,
        }

    def totals(self) -> dict[str, int]:
        """The ledger's control totals of a sample."""
        return {
            "population_rows": self.population,
            "sample_rows": len(self.rows),
            "meetings_complete": self.ctx.totals.meetings_complete,
            "meetings_not_harvested": self.ctx.totals.meetings_not_harvested,
            "gaps": self.ctx.totals.gaps,
        }

    def csv_bytes(self) -> bytes:
        """``sample.csv``: the rows drawn in draw order, as ``reconciliation.csv`` writes them,
        after their draw number and population position."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(SAMPLE_COLUMNS)
        for row in self.rows:
            writer.writerow([csv_cell(row[c]) for c in SAMPLE_COLUMNS])
        return out.getvalue().encode("utf-8")


def _target(settings: Settings, output: Path | str | None, label: str, sample_id: str) -> _Target:
    """Where the sample goes: ``output`` as a file name, or a folder (``output`` or the
    ``output_dir`` setting) with ``meetaudit-<label>-<sample id>.pdf`` as the name."""
    folder = settings.output_dir if output is None else _as_folder(output)
    if folder is not None:
        clean = _ID_TOKEN.sub("-", label).strip("-") or "period"
        return _Target(folder, f"meetaudit-{clean}-{sample_id}", ".pdf")
    path = Path(output or "")
    return _Target(path.parent, path.stem if path.suffix else path.name, path.suffix or ".pdf")


def _render(settings: Settings, meta: ReportMeta, sample: _Sample, work: Path, temp: Path) -> int:
    """Write ``sample.csv`` and the manifest, render the PDF to ``temp``; return its pages."""
    import hashlib

    from reporting.report.assemble import DocumentInfo
    from reporting.report.render import write_document

    params, ctx = sample.params, sample.ctx
    zone = settings.zone
    csv_path = work / "sample.csv"
    csv_path.write_bytes(sample.csv_bytes())
    attachments: list[dict[str, Any]] = [{
        "name": "sample.csv", "path": csv_path, "mime": "text/csv",
        "description": "The rows drawn, in draw order: draw number, position in the population, "
                       "then the columns of the report's reconciliation.csv",
        "sha256": hashlib.sha256(csv_path.read_bytes()).hexdigest(),
        "size": csv_path.stat().st_size,
    }]  # fmt: skip
    manifest = manifest_bytes(_manifest(meta, sample, attachments))
    attachments.append({
        "name": "manifest.json", "path": None, "mime": "application/json",
        "description": "The period, the method, seed, population and sample sizes, the positions "
                       "drawn, and the SHA-256 of sample.csv",
        "sha256": "", "size": None,
    })  # fmt: skip
    facts = sample.facts()
    data = {
        "report_id": meta.report_id,
        "org_name": params.org_name,
        "period_title": period_title(params),
        "label": params.label,
        "timezone": params.timezone,
        "period_utc": f"{iso_utc(params.period_from)} – {iso_utc(params.period_to)}",
        "generated_local": meta.generated_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z"),
        "generated_utc": iso_utc(meta.generated_at),
        "rows_as_of": params.as_of.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z"),
        "generated_by": meta.generated_by,
        "version": meta.meetaudit_version,
        "signing_key": meta.signing_key,
        "seed": sample.seed,
        "size": len(sample.rows),
        "population": sample.population,
        "method": facts["method"],
        "order": ORDER,
        "accompanies": sample.accompanies,
        "complete": ctx.complete,
        "totals": {
            "meetings_complete": ctx.totals.meetings_complete,
            "meetings_not_harvested": ctx.totals.meetings_not_harvested,
            "gaps": ctx.totals.gaps,
        },
        "reach": reach_data(ctx, zone),
        "harvest_runs": [r["id"] for r in ctx.harvest_runs],
        "rows": [_printed(r) for r in sample.rows[:ROWS_PRINTED]],
        "more": max(0, len(sample.rows) - ROWS_PRINTED),
        "rows_printed": ROWS_PRINTED,
        "attachments": [a for a in attachments if a["path"] is not None],
    }
    info = DocumentInfo(
        title=plain_text(f"{params.org_name} — sample of reconciliation rows, "
                         f"{period_title(params)}", 300),
        subject=plain_text(
            f"{len(sample.rows)} of the {sample.population} reconciliation rows of "
            f"{params.label}, drawn with seed {sample.seed}. Sample {meta.report_id}.", 400),
        keywords=plain_text(f"meetaudit; sample; {params.label}; {meta.report_id}", 300),
        contents_page=False,
    )  # fmt: skip
    return write_document(
        temp, template="sample.html", data=data, meta=meta, info=info, attachments=attachments,
        manifest=manifest, header=plain_text(f"{params.org_name} · sample · {params.label}", 110),
        footer=f"Sample {meta.report_id}",
        sections=[("method", "Method"), ("rows", "The rows drawn")],
    )  # fmt: skip


def _printed(row: dict[str, Any]) -> dict[str, Any]:
    """One row drawn, as the document prints it (every value still a stranger's text)."""
    return {
        "draw": row["draw"],
        "position": row["population_position"],
        # The references the period's report gives the row, from the same data as of the same
        # moment: the sample's line ties to the report's roster line and CSV row.
        "row_ref": row["row_ref"],
        "caller_ref": row["caller_ref"],
        "meeting_start": (row["meeting_start"] or "")[:16].replace("T", " "),
        "meeting_title": row["meeting_title"] or "",
        "meeting_id": row["meeting_id"],
        "name": row["display_name"] or "",
        "email": row["email"] or "",
        "person_key": row["person_key"],
        "status": STATUS_LABELS.get(row["status"], row["status"]),
        "reason": NOT_TESTABLE_REASONS.get(row["status_reason"] or "", row["status_reason"]),
        "classification": row["classification"],
        "minutes": row["attended_minutes"],
        "flags": ", ".join(FLAG_LABELS.get(f, f) for f in row["flags"]),
    }


def _manifest(
    meta: ReportMeta, sample: _Sample, attachments: list[dict[str, Any]]
) -> dict[str, Any]:
    """The sample's manifest.json: what ``verify`` compares with the ledger, and what a script
    reads to tie sample.csv to the draw without reading the PDF."""
    p = sample.params
    return {
        "schema": SAMPLE_MANIFEST_SCHEMA,
        "report_id": meta.report_id,
        "kind": SAMPLE_KIND,
        "format": "pdf",
        "generated_at": iso_utc(meta.generated_at),
        "generated_by": meta.generated_by,
        "meetaudit_version": meta.meetaudit_version,
        "renderer": {"weasyprint": meta.weasyprint_version},
        "signing_key": meta.signing_key,
        "period": {
            "label": p.label,
            "from": iso_utc(p.period_from),
            "to": iso_utc(p.period_to),
            "timezone": p.timezone,
        },
        "parameters": p.to_json(),
        "sample": sample.facts(),
        "complete": sample.ctx.complete,
        "listing_reach": sample.ctx.reach.as_json(),
        "control_totals": sample.totals(),
        "harvest_run_ids": [r["id"] for r in sample.ctx.harvest_runs],
        "columns": {"sample.csv": list(SAMPLE_COLUMNS)},
        "attachments": [
            {"name": a["name"], "sha256": a["sha256"], "bytes": a["size"], "mime": a["mime"]}
            for a in attachments
        ],
    }
