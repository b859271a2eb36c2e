"""The PDF writer: bounded parts rendered (in worker processes when it pays), then assembled.

WeasyPrint's time and memory grow with the rows of one document, so the body is cut into parts
of a few hundred rows (:mod:`reporting.report.sections`), each rendered as its own document. The
front matter (cover, contents, method, summary) is rendered last, once the page of every heading
is known; page headers and "Page X of Y" footers are rendered as one overlay page per page and
stamped on; :mod:`reporting.report.assemble` joins it all into one tagged PDF/A-3a (and
PDF/UA-1) with bookmarks, contents links, attachments and XMP metadata. At any time the main process holds at most a few
parts' rows, and each worker one part's layout.

Reproducibility: the parts, their order and everything printed derive from the context and the
:class:`ReportMeta` (report id, generation time) — never from the clock, the machine's fonts or
the number of workers — so the same report renders to the same bytes.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import hashlib
import multiprocessing
import os
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reporting.reach import owner_words
from reporting.report import charts
from reporting.report.context import (
    STATUS_DESCRIPTIONS,
    STATUS_LABELS,
    STATUS_ORDER,
    ReportContext,
)
from reporting.report.diff import CHANGE_KINDS
from reporting.report.pdftext import actual_text_spans
from reporting.report.sections import (
    DEFAULT_PART_ROWS,
    Part,
    TocEntry,
    body_events,
    exception_numbers,
    outline_entries,
    plan_parts,
)
from reporting.report.templating import environment, make_fetcher, templates_base_url
from reporting.resources import templates_dir

A4_HEIGHT_PT = 841.8898
OVERLAY_PAGES_PER_PART = 250
# Templates rendered as the base of a final file (PDF/A-3a, /ID from ``f.report_id``): the
# report's front matter, and a case dossier, which is a single document.
BASE_TEMPLATES = frozenset({"front.html", "dossier.html", "sample.html"})
OVERLAY_TEMPLATE = "overlay.html"


@dataclass(frozen=True)
class ReportMeta:
    """Who and when: everything printed about the report itself, fixed by its ledger entry."""

    report_id: str
    generated_at: dt.datetime
    generated_by: str
    meetaudit_version: str
    weasyprint_version: str
    signing_key: str | None = None  # the signing certificate, printed on the method page


@dataclass
class PdfInfo:
    """What :func:`write_pdf` produced."""

    pages: int
    parts: int
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _PartJob:
    index: int
    template: str
    context: dict[str, Any]
    out: Path


@dataclass
class _PartDone:
    index: int
    path: Path
    pages: int
    anchors: dict[str, tuple[int, float]]


# Font subsets carry a "modified" time; without HarfBuzz's subsetter WeasyPrint falls back to
# fontTools, which stamps the current time unless SOURCE_DATE_EPOCH fixes it (the
# reproducible-builds convention). A fixed instant keeps the same report byte-identical.
FONT_TIMESTAMP_EPOCH = "1767225600"  # 2026-01-01T00:00:00Z


@contextlib.contextmanager
def _fixed_font_timestamps() -> Iterator[None]:
    before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = FONT_TIMESTAMP_EPOCH
    try:
        yield
    finally:
        if before is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = before


def _render_job(job: _PartJob) -> _PartDone:
    """Render one part to its own PDF file (runs in a worker process or in-process)."""
    with _fixed_font_timestamps(), actual_text_spans():
        return _render(job)


def _render(job: _PartJob) -> _PartDone:
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    html = environment().get_template(job.template).render(**job.context)
    fetcher = make_fetcher()
    # A fresh font configuration per part: the bytes must not depend on what a worker did before.
    fonts = FontConfiguration()
    css = CSS(filename=str(templates_dir() / "report.css"), url_fetcher=fetcher, font_config=fonts)
    document = HTML(string=html, base_url=templates_base_url(), url_fetcher=fetcher).render(
        stylesheets=[css], font_config=fonts
    )
    anchors: dict[str, tuple[int, float]] = {}
    for number, page in enumerate(document.pages):
        for name, (_x, y, *_rest) in page.anchors.items():
            anchors.setdefault(name, (number, float(y)))
    options: dict[str, Any] = {
        "pdf_identifier": f"meetaudit-part-{job.index}".encode(),
        # Tagged: headings, paragraphs, tables, links in a structure tree the assembler joins.
        # The page furniture is not: it is stamped on as an artifact.
        "pdf_tags": job.template != OVERLAY_TEMPLATE,
    }
    if job.template in BASE_TEMPLATES:
        # The front matter is the base of the final file: its /ID (first half) is kept, so
        # derive it from the report id rather than let WeasyPrint pick one.
        options["pdf_variant"] = "pdf/a-3a"
        options["pdf_identifier"] = (
            hashlib.md5(job.context["f"]["report_id"].encode(), usedforsecurity=False)
            .hexdigest()
            .encode()
        )
    document.write_pdf(job.out, **options)
    return _PartDone(job.index, job.out, len(document.pages), anchors)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Renderer:
    """Runs part jobs in order, in a process pool when there are enough of them."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: cf.ProcessPoolExecutor | None = None

    def __enter__(self) -> _Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self, jobs: Iterable[_PartJob], *, parallel: bool) -> Iterator[_PartDone]:
        """Render the jobs; results come back in job order, with a bounded number in flight."""
        if not parallel or self.workers <= 1:
            for job in jobs:
                yield _render_job(job)
            return
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                # Ctrl-C reaches the whole process group: the workers leave it to this process,
                # which shuts the pool down (no worker tracebacks under the one-line message).
                initializer=_ignore_interrupts,
            )
        pending: list[cf.Future[_PartDone]] = []
        for job in jobs:
            pending.append(self._pool.submit(_render_job, job))
            while len(pending) >= self.workers * 2:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def default_workers() -> int:
    """Worker processes for rendering: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _fmt_local(value: dt.datetime, zone: dt.tzinfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def front_data(
    ctx: ReportContext,
    meta: ReportMeta,
    toc: list[TocEntry],
    attachments: list[dict[str, Any]],
) -> dict[str, Any]:
    """The plain data the front matter template formats."""
    from zoneinfo import ZoneInfo

    p = ctx.params
    zone = ZoneInfo(p.timezone)
    last = p.period_to - dt.timedelta(seconds=1)
    hours = ctx.totals.attended_seconds / 3600
    external = [r for r in ctx.org_table if r["classification"] == "external"]
    return {
        "doc_title": f"{p.org_name} — Webex meeting audit report, {ctx.period_title}",
        "org_name": p.org_name,
        "period_title": ctx.period_title,
        "period_local": f"{p.period_from.astimezone(zone):%Y-%m-%d %H:%M} – "
        f"{last.astimezone(zone):%Y-%m-%d %H:%M:%S}",
        "period_utc": f"{p.period_from.astimezone(dt.UTC):%Y-%m-%d %H:%M} – "
        f"{p.period_to.astimezone(dt.UTC):%Y-%m-%d %H:%M}",
        "timezone": p.timezone,
        "report_id": meta.report_id,
        "generated_local": _fmt_local(meta.generated_at, zone),
        "generated_utc": meta.generated_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generated_by": meta.generated_by,
        "version": meta.meetaudit_version,
        "weasyprint_version": meta.weasyprint_version,
        "signing_key": meta.signing_key,
        "complete": ctx.complete,
        "reach": reach_data(ctx, zone),
        "listed_not_ended": ctx.listed_not_ended,
        "listed_not_ended_total": sum(ctx.listed_not_ended.values()),
        "totals": asdict(ctx.totals),
        "org_domains": list(p.org_domains),
        "org_ids": list(p.org_ids),
        "min_minutes": f"{p.min_attendance_minutes:g}",
        "org_registry": p.org_registry,
        "show_phone_numbers": p.show_phone_numbers,
        "harvest_runs": ctx.harvest_runs,
        "last_harvest_finished": ctx.last_harvest_finished,
        "api_urls": sorted({r["api_base_url"] for r in ctx.harvest_runs}),
        "rosters_included": ctx.rosters_included,
        "roster_rows": ctx.roster_rows,
        "roster_rows_text": f"{ctx.roster_rows:,}+",
        "roster_limit": p.roster_row_limit,
        "exception_limit": p.exception_row_limit,
        "attended_hours": f"{hours:,.1f}",
        "external_org_ids": sum(1 for r in external if r["is_org_id"]),
        "external_domains": sum(1 for r in external if not r["is_org_id"]),
        "top_orgs": external[:10],
        "toc": [
            {
                "level": e.level,
                "num": e.num,
                "title": e.title,
                "anchor": e.anchor,
                "page": e.page if e.page is not None else 0,
            }
            for e in toc
            if e.toc
        ],
        "attachments": attachments,
        "supersedes": p.supersedes,
        "changes": _with_refs(ctx.changes, ctx.meeting_refs),
        "change_labels": CHANGE_KINDS,
        "stored_checked": ctx.stored_checked,
        "altered": [
            {**a, "meeting_ref": ctx.meeting_refs.get(a["meeting_id"])}
            for a in ctx.altered_meetings
        ],
        "plausibility": ctx.plausibility,
        "statuses": [(STATUS_LABELS[s], STATUS_DESCRIPTIONS[s]) for s in STATUS_ORDER],
        "sections": exception_numbers(),
        "charts": {
            "status": charts.status_bar(ctx),
            "classes": charts.class_bars(ctx),
            "daily": charts.daily_columns(ctx),
        },
    }


def reach_data(ctx: ReportContext, zone: dt.tzinfo) -> dict[str, Any]:
    """What the report says of its listing's reach (reporting.reach), as plain data: the
    period's verdict, and per harvest run whose token listed and what it could see."""
    reach = ctx.reach
    p = ctx.params
    runs = []
    for r in ctx.harvest_runs:
        principal = r.get("token_principal")
        listing = r.get("listing_reach")
        if principal is None or listing is None:
            runs.append({"id": r["id"], "recorded": False, "status": r["status"]})
            continue
        token_sites = listing.get("token_sites")
        runs.append({
            "id": r["id"], "recorded": True, "status": r["status"],
            "known": bool(principal.get("known")),
            "who": owner_words(principal),
            "admin": principal.get("admin"),
            "roles": len(principal.get("roles") or []),
            "org_id": principal.get("org_uuid") or principal.get("org_id"),
            "own_org": (principal.get("org_uuid") or principal.get("org_id")) in p.org_ids
            if p.org_ids else None,
            "asked": "HTTP {} (trackingId {})".format(principal.get("http_status") or "—",
                                                     principal.get("tracking_id") or "—"),
            "token_sites": ", ".join(token_sites) if token_sites is not None else None,
            "sites_listed": ", ".join(listing.get("sites_listed") or []),
            "hosts_listed": listing.get("hosts_listed") or [],
            "listed": listing.get("meetings_listed", 0),
            "checked": listing.get("meetings_checked", 0),
            "beyond": listing.get("meetings_beyond_owner", 0),
            "verdict": listing.get("verdict"),
            "limits": listing.get("limits") or [],
            "scopes": listing.get("scopes"),
        })  # fmt: skip
    whole_period = reach.limited == [(p.period_from, p.period_to)]
    return {
        "whole": reach.whole_organisation,
        "verdict": reach.verdict,
        "reasons": reach.reasons,
        "spans": [
            f"{a.astimezone(zone):%Y-%m-%d %H:%M} – {b.astimezone(zone):%Y-%m-%d %H:%M}"
            for a, b in reach.limited
        ],
        "whole_period": whole_period,
        "listed_any": bool(reach.runs),
        "runs": runs,
    }


def _with_refs(changes: dict[str, Any] | None, refs: dict[str, str]) -> dict[str, Any] | None:
    """The changes since a superseded report, each listed row with its meeting's reference in
    this report (none for a meeting this report no longer has)."""
    if changes is None:
        return None
    rows = [{**r, "meeting_ref": refs.get(r["meeting_id"])} for r in changes["rows"]]
    return {**changes, "rows": rows}


FRONT_TOC = (
    TocEntry("method", "1", "Method and parameters", 1, True),
    TocEntry("method-period", "1.1", "Scope and parameters", 2, True),
    TocEntry("method-source", "1.2", "Data source and harvest runs", 2, True),
    TocEntry("method-totals", "1.3", "Control totals", 2, True),
    TocEntry("method-report", "1.4", "This report and its attachments", 2, True),
    TocEntry("method-plausibility", "1.5", "Plausibility checks", 2, True),
    TocEntry("summary", "2", "Executive summary", 1, True),
)


def front_toc(ctx: ReportContext) -> tuple[TocEntry, ...]:
    """:data:`FRONT_TOC`, with the sections only some reports have: what changed since the
    report this one supersedes, and the meetings whose stored data no longer matches."""
    extra = []
    if ctx.params.supersedes is not None:
        since = ctx.params.supersedes["report_id"]
        extra.append(TocEntry("method-changes", "1.6", f"What changed since {since}", 2, True))
    if ctx.altered_meetings:
        num = f"1.{6 + len(extra)}"
        extra.append(TocEntry("method-altered", num, "Stored data no longer as harvested", 2, True))
    return (*FRONT_TOC[:-1], *extra, FRONT_TOC[-1])


FRONT_SECTIONS = (("contents", "Contents"), ("method", "1  Method and parameters"),
                  ("summary", "2  Executive summary"))  # fmt: skip


def write_pdf(
    ctx: ReportContext,
    meta: ReportMeta,
    target: Path,
    *,
    workers: int | None = None,
    part_rows: int = DEFAULT_PART_ROWS,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> PdfInfo:
    """Render the report to ``target`` (a PDF/A-3a file); see the module docstring.

    The reconciliation and meetings CSV files and the JSON manifest are embedded as attachments.
    """
    from reporting.report.assemble import assemble, report_info
    from reporting.report.manifest import attachment_rows, build_manifest, manifest_bytes

    attachments = attachment_rows(ctx)
    manifest = manifest_bytes(build_manifest(ctx, meta, fmt="pdf"))

    note = progress or (lambda stage, done, total: None)
    workers = workers or default_workers()
    with (
        tempfile.TemporaryDirectory(prefix="meetaudit-pdf-") as tmp,
        _Renderer(workers) as renderer,
    ):
        work = Path(tmp)
        # Meeting references link to the rosters when the PDF prints them.
        common = {"title": meta.report_id, "links": ctx.rosters_included}
        parts: list[Part] = []

        def jobs() -> Iterator[_PartJob]:
            for part in plan_parts(body_events(ctx), part_rows):
                parts.append(
                    Part(part.index, part.section, [b for b in part.blocks if b.get("id")])
                )  # keep only what the outline needs, not the rows
                rosters = any(b["kind"] == "meeting" for b in part.blocks)
                yield _PartJob(
                    part.index, "part.html", {**common, "blocks": part.blocks, "rosters": rosters},
                    work / f"part-{part.index:05d}.pdf",
                )  # fmt: skip

        done: list[_PartDone] = []
        for result in renderer.run(jobs(), parallel=True):
            done.append(result)
            note("rendering", len(done), None)
        body_toc: list[list[TocEntry]] = [outline_entries(p) for p in parts]

        # The front matter: rendered until its own length is stable, then with page numbers.
        front_entries = front_toc(ctx)
        front_pages = 0
        front: _PartDone | None = None
        for _ in range(3):
            offset = front_pages
            page = offset
            toc = [TocEntry(**asdict(e)) for e in front_entries]
            for part_done, entries in zip(done, body_toc, strict=True):
                for e in entries:
                    pg, y = part_done.anchors.get(e.anchor, (0, 0.0))
                    e.page, e.top = page + pg + 1, y
                    toc.append(e)
                page += part_done.pages
            if front is not None:
                for e in toc[: len(front_entries)]:
                    pg, y = front.anchors.get(e.anchor, (0, 0.0))
                    e.page, e.top = pg + 1, y
            data = front_data(ctx, meta, toc, attachments)
            front = _render_job(_PartJob(-1, "front.html", {"f": data}, work / "front.pdf"))
            if front.pages == front_pages:
                break
            front_pages = front.pages
        assert front is not None
        for e in toc[: len(front_entries)]:
            pg, y = front.anchors.get(e.anchor, (0, 0.0))
            e.page, e.top = pg + 1, y
        note("rendering", len(done) + 1, None)

        total = front.pages + sum(d.pages for d in done)
        overlay_pages = _overlay_pages(ctx, meta, front, parts, done, total)
        overlays = list(
            renderer.run(
                (
                    _PartJob(n, OVERLAY_TEMPLATE, {"pages": chunk}, work / f"overlay-{n:05d}.pdf")
                    for n, chunk in enumerate(_chunks(overlay_pages, OVERLAY_PAGES_PER_PART))
                ),
                parallel=len(overlay_pages) > OVERLAY_PAGES_PER_PART,
            )
        )
        note("assembling", 0, None)
        assemble(
            target,
            front=front.path,
            parts=[d.path for d in done],
            overlays=[o.path for o in overlays],
            toc=toc,
            attachments=attachments,
            manifest_bytes=manifest,
            info=report_info(ctx, meta),
            meta=meta,
        )
        return PdfInfo(pages=total, parts=len(done) + 1, attachments=attachments)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _overlay_pages(
    ctx: ReportContext,
    meta: ReportMeta,
    front: _PartDone,
    parts: list[Part],
    done: list[_PartDone],
    total: int,
) -> list[dict[str, Any]]:
    left = f"{ctx.params.org_name} · Webex meeting audit report · {ctx.period_title}"
    sections: list[str] = [""] * front.pages
    starts = sorted(
        (front.anchors[a][0], title) for a, title in FRONT_SECTIONS if a in front.anchors
    )
    for n in range(front.pages):
        current = ""
        for start, title in starts:
            if start <= n:
                current = title
        sections[n] = current
    for part, part_done in zip(parts, done, strict=True):
        sections.extend([part.section] * part_done.pages)
    return [
        {
            "cover": n == 0,
            "left": left,
            "section": sections[n],
            "report": f"Report {meta.report_id}",
            "label": f"Page {n + 1} of {total}",
        }
        for n in range(total)
    ]


def write_document(
    target: Path,
    *,
    template: str,
    data: dict[str, Any],
    meta: ReportMeta,
    info: Any,
    attachments: list[dict[str, Any]],
    manifest: bytes,
    header: str,
    footer: str,
    sections: list[tuple[str, str]],
) -> int:
    """Render a single-document PDF (``template`` with ``f=data``, one of
    :data:`BASE_TEMPLATES`) through the report's pipeline; return its page count.

    For documents short enough to render as one WeasyPrint document, such as a case dossier:
    the same fonts, stylesheet and URL fetcher as the report, the same page furniture (``header``
    top left, the section a page is in top right, ``footer`` — naming the document id — and
    "Page X of Y" below), and
    the same assembler, so the result is a PDF/A-3a with ``attachments`` and ``manifest``
    embedded as the report's are. ``sections``: (anchor, title) pairs, in order; each becomes a
    bookmark and names the pages from its anchor on. ``info`` is an
    :class:`~reporting.report.assemble.DocumentInfo`.
    """
    from reporting.report.assemble import assemble

    if template not in BASE_TEMPLATES:
        raise ValueError(f"{template} is not rendered as a document of its own")
    with tempfile.TemporaryDirectory(prefix="meetaudit-pdf-") as tmp, _Renderer(1) as renderer:
        work = Path(tmp)
        body = _render_job(_PartJob(-1, template, {"f": data}, work / "document.pdf"))
        toc = []
        for anchor, title in sections:
            page, top = body.anchors.get(anchor, (0, 0.0))
            toc.append(TocEntry(anchor, "", title, 1, True, page=page + 1, top=top))
        starts = sorted((body.anchors[a][0], title) for a, title in sections if a in body.anchors)
        pages = [
            {
                "cover": n == 0,
                "left": header,
                "section": next((t for start, t in reversed(starts) if start <= n), ""),
                "report": footer,
                "label": f"Page {n + 1} of {body.pages}",
            }
            for n in range(body.pages)
        ]
        overlays = [
            o.path
            for o in renderer.run(
                (
                    _PartJob(n, OVERLAY_TEMPLATE, {"pages": chunk}, work / f"overlay-{n:05d}.pdf")
                    for n, chunk in enumerate(_chunks(pages, OVERLAY_PAGES_PER_PART))
                ),
                parallel=False,
            )
        ]
        assemble(
            target, front=body.path, parts=[], overlays=overlays, toc=toc,
            attachments=attachments, manifest_bytes=manifest, info=info, meta=meta,
        )  # fmt: skip
        return body.pages


def render_pdf(ctx: ReportContext, meta: ReportMeta, **kwargs: Any) -> bytes:
    """The report as bytes (for tests and small periods; :func:`write_pdf` streams to a file)."""
    with tempfile.TemporaryDirectory(prefix="meetaudit-pdf-") as tmp:
        target = Path(tmp) / "report.pdf"
        write_pdf(ctx, meta, target, **kwargs)
        return target.read_bytes()
