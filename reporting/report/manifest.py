"""The report manifest: parameters, control totals, harvest runs and attachment hashes as JSON.

Embedded in the PDF as ``manifest.json`` and leading the JSON export, so a script can tie a
report out without reading the PDF. Keys are sorted and the encoding fixed, so the same report
gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from reporting.report.context import ReportContext, iso_utc
from reporting.report.exports import MEETING_COLUMNS, RECONCILIATION_COLUMNS

if TYPE_CHECKING:
    from reporting.report.render import ReportMeta

MANIFEST_SCHEMA = "meetaudit-report-manifest/1"
# A case dossier's manifest (reporting.report.dossier): the same role — it lists the SHA-256 of
# every other attachment, and names the dossier by ``report_id`` — so it is checked by the same
# code, but it describes a case, not a period's meetings.
DOSSIER_MANIFEST_SCHEMA = "meetaudit-dossier-manifest/1"
# A sample's manifest (reporting.report.sample): a period and its harvest runs, like a report's,
# and the draw (seed, sizes, positions) instead of the report's figures.
SAMPLE_MANIFEST_SCHEMA = "meetaudit-sample-manifest/1"
_SCHEMAS = frozenset({MANIFEST_SCHEMA, DOSSIER_MANIFEST_SCHEMA, SAMPLE_MANIFEST_SCHEMA})
# A manifest is a few kilobytes; a larger JSON file is an export, not worth parsing to find out.
_MANIFEST_MAX_BYTES = 4 << 20


def attachment_rows(ctx: ReportContext) -> list[dict[str, Any]]:
    """The files embedded in the PDF, as plain data (the manifest itself last)."""
    rows = []
    extra = [ctx.changes_csv] if ctx.changes_csv is not None else []
    for a in (ctx.reconciliation_csv, ctx.meetings_csv, *extra):
        rows.append(
            {
                "name": a.name,
                "path": a.path,
                "mime": a.mime,
                "description": a.description,
                "sha256": a.sha256,
                "size": a.size,
            }
        )
    rows.append(
        {
            "name": "manifest.json",
            "path": None,
            "mime": "application/json",
            "description": "Parameters, control totals, harvest runs and the SHA-256 of each "
            "other attachment",
            "sha256": "",
            "size": None,
        }
    )
    return rows


def build_manifest(ctx: ReportContext, meta: ReportMeta, *, fmt: str) -> dict[str, Any]:
    """The manifest of one report file as JSON-ready data."""
    p = ctx.params
    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "report_id": meta.report_id,
        "format": fmt,
        "generated_at": iso_utc(meta.generated_at),
        "generated_by": meta.generated_by,
        "meetaudit_version": meta.meetaudit_version,
        "renderer": {"weasyprint": meta.weasyprint_version},
        "period": {
            "label": p.label,
            "title": ctx.period_title,
            "from": iso_utc(p.period_from),
            "to": iso_utc(p.period_to),
            "timezone": p.timezone,
        },
        "parameters": p.to_json(),
        "complete": ctx.complete,
        # What the listing of the period could see (reporting.reach): "complete" claims no more.
        "listing_reach": ctx.reach.as_json(),
        # Listed in a state other than ``ended`` (per state, summed over the harvest runs; each
        # run's own counts are in ``harvest_runs``): not meetings of the report.
        "listed_not_ended": ctx.listed_not_ended,
        "control_totals": asdict(ctx.totals),
        "flag_counts": ctx.flag_counts,
        # The harvest's plausibility checks (apart from the report's row flags above): items of
        # the period each refused (open gaps) and flagged (stored with a data-quality flag).
        "plausibility_checks": {
            c["check"]: {"action": c["action"], "refused": c["refused"], "flagged": c["flagged"]}
            for c in ctx.plausibility
        },
        "harvest_run_ids": [r["id"] for r in ctx.harvest_runs],
        "harvest_runs": ctx.harvest_runs,
        "signing_key": meta.signing_key,
        "columns": {
            "reconciliation.csv": list(RECONCILIATION_COLUMNS),
            "meetings.csv": list(MEETING_COLUMNS),
        },
    }
    if p.supersedes is not None and ctx.changes is not None:
        c = ctx.changes
        manifest["supersedes"] = p.supersedes
        manifest["changes_since_superseded"] = {
            "reproducible": c["reproducible"],
            "problems": c["problems"],
            "restored_meetings": c["restored_meetings"],
            "total": c["total"],
            "counts": {row["change"]: row["count"] for row in c["counts"]},
            "control_totals_changed": c["totals"],
        }
    if ctx.altered_meetings:
        # Only when something is found: a clean report's manifest reads as it always did.
        manifest["stored_data_check"] = {
            "meetings_checked": ctx.stored_checked,
            "meetings_altered": [
                {k: a[k] for k in ("meeting_id", "recorded_sha256", "stored_sha256", "what")}
                for a in ctx.altered_meetings
            ],
        }
    if fmt == "pdf":
        manifest["attachments"] = [
            {"name": a["name"], "sha256": a["sha256"], "bytes": a["size"], "mime": a["mime"]}
            for a in attachment_rows(ctx)
            if a["path"] is not None
        ]
    return manifest


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """Canonical JSON bytes of a manifest (sorted keys, UTF-8, two-space indent)."""
    return (json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode()


def parse_manifest(data: bytes) -> dict[str, Any] | None:
    """``data`` as a manifest, when it is one (such as ``manifest.json`` taken out of a PDF with
    ``pdfdetach``), else ``None``. Only the schema decides, not the layout: a manifest pretty
    printed again is still one."""
    if len(data) > _MANIFEST_MAX_BYTES or data.lstrip()[:1] != b"{":
        return None
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(manifest, dict) or manifest.get("schema") not in _SCHEMAS:
        return None
    return manifest


def recorded_differences(manifest: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    """What ``manifest`` says differently from the ledger ``entry`` of its report, in words.

    The ledger does not record the manifest's own SHA-256, only the facts compared here; an empty
    list means the manifest agrees with every one of them, not that it is byte for byte the one
    generated (the flag counts and attachment hashes it lists are recorded nowhere else).
    """
    recorded = entry["parameters"] or {}
    if manifest.get("schema") == DOSSIER_MANIFEST_SCHEMA:
        return _dossier_differences(manifest, entry)
    if manifest.get("schema") == SAMPLE_MANIFEST_SCHEMA:
        return _sample_differences(manifest, entry)
    facts = (
        ("the report id", manifest.get("report_id"), entry["report_id"]),
        ("the format", manifest.get("format"), entry["format"]),
        *_generation_facts(manifest, entry),
        (
            "the period",
            _get(manifest, "period", "from", "to", "timezone"),
            (iso_utc(entry["period_from"]), iso_utc(entry["period_to"]), entry["timezone"]),
        ),
        ("the report parameters", manifest.get("parameters"), recorded.get("report")),
        *_rendering_facts(manifest, entry),
        ("whether the period was completely harvested", manifest.get("complete"),
         entry["complete"]),
        ("the control totals", manifest.get("control_totals"), entry["control_totals"]),
        ("the harvest runs", manifest.get("harvest_run_ids"), entry["harvest_run_ids"]),
    )  # fmt: skip
    return [name for name, said, was in facts if said != was]


#: What a manifest says, what the ledger recorded, by name.
Fact = tuple[str, Any, Any]


def _generation_facts(manifest: dict[str, Any], entry: dict[str, Any]) -> list[Fact]:
    """When, by whom and with which meetaudit a document was made: said by its manifest, and
    recorded in its ledger entry (every kind of document has them)."""
    return [
        ("when it was generated", manifest.get("generated_at"), iso_utc(entry["generated_at"])),
        ("who generated it", manifest.get("generated_by"), entry["generated_by"]),
        ("the meetaudit version", manifest.get("meetaudit_version"), entry["meetaudit_version"]),
    ]


def _rendering_facts(manifest: dict[str, Any], entry: dict[str, Any]) -> list[Fact]:
    """The renderer and the signing key, said and recorded (every kind of document)."""
    recorded = entry["parameters"] or {}
    return [
        ("the WeasyPrint version", _get(manifest, "renderer", "weasyprint")[0],
         (recorded.get("renderer") or {}).get("weasyprint")),
        ("the signing key", manifest.get("signing_key"), recorded.get("signing_key")),
    ]  # fmt: skip


def _dossier_differences(manifest: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    """:func:`recorded_differences` for a dossier's manifest: a dossier has no period or
    harvest runs of its own, so its case and the questions it answered are compared instead."""
    recorded = entry["parameters"] or {}
    dossier = recorded.get("dossier") or {}
    facts = (
        ("the dossier id", manifest.get("report_id"), entry["report_id"]),
        ("the kind of document", "dossier", entry["kind"]),
        ("the format", manifest.get("format"), entry["format"]),
        *_generation_facts(manifest, entry),
        *_rendering_facts(manifest, entry),
        ("the case", _get(manifest, "case", "ref")[0], dossier.get("case")),
        ("the access-log entries answered again", manifest.get("access_log_seqs"),
         dossier.get("access_log_seqs")),
        ("the row counts", manifest.get("control_totals"), entry["control_totals"]),
    )  # fmt: skip
    return [name for name, said, was in facts if said != was]


def _sample_differences(manifest: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    """:func:`recorded_differences` for a sample's manifest: its period, harvest runs and
    completeness as for a report, and the draw (seed, sizes, positions) instead of figures."""
    recorded = entry["parameters"] or {}
    drawn = recorded.get("sample") or {}
    said: dict[str, Any] = manifest["sample"] if isinstance(manifest.get("sample"), dict) else {}
    facts = (
        ("the sample id", manifest.get("report_id"), entry["report_id"]),
        ("the kind of document", "sample", entry["kind"]),
        ("the format", manifest.get("format"), entry["format"]),
        *_generation_facts(manifest, entry),
        (
            "the period",
            _get(manifest, "period", "from", "to", "timezone"),
            (iso_utc(entry["period_from"]), iso_utc(entry["period_to"]), entry["timezone"]),
        ),
        ("the report parameters", manifest.get("parameters"), recorded.get("report")),
        *_rendering_facts(manifest, entry),
        ("the seed", said.get("seed"), drawn.get("seed")),
        ("the rows drawn", said.get("positions"), drawn.get("positions")),
        ("whether the period was completely harvested", manifest.get("complete"),
         entry["complete"]),
        ("the control totals", manifest.get("control_totals"), entry["control_totals"]),
        ("the harvest runs", manifest.get("harvest_run_ids"), entry["harvest_run_ids"]),
    )  # fmt: skip
    return [name for name, said_, was in facts if said_ != was]


def _get(manifest: dict[str, Any], key: str, *names: str) -> tuple[Any, ...]:
    """``manifest[key][name]`` for each name (``None`` where missing or not an object)."""
    part = manifest.get(key)
    return tuple(part.get(n) if isinstance(part, dict) else None for n in names)
