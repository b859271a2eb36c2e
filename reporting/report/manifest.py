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


def attachment_rows(ctx: ReportContext) -> list[dict[str, Any]]:
    """The files embedded in the PDF, as plain data (the manifest itself last)."""
    rows = []
    for a in (ctx.reconciliation_csv, ctx.meetings_csv):
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
        "control_totals": asdict(ctx.totals),
        "flag_counts": ctx.flag_counts,
        "harvest_run_ids": [r["id"] for r in ctx.harvest_runs],
        "harvest_runs": ctx.harvest_runs,
        "signing_key": meta.signing_key,
        "columns": {
            "reconciliation.csv": list(RECONCILIATION_COLUMNS),
            "meetings.csv": list(MEETING_COLUMNS),
        },
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
