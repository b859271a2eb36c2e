"""The executive summary's charts as plain geometry; ``front.html`` only draws the SVG shapes.

Coordinates are in SVG user units of a ``viewBox`` the template sets; every chart is computed
from the control totals, so it is as reproducible as the numbers next to it.
"""

from __future__ import annotations

from typing import Any

from reporting.report.context import STATUS_LABELS, STATUS_ORDER, ReportContext

STATUS_COLOURS = {
    "host_attended": "#4f7cc0",
    "invited_attended": "#3f9a5b",
    "uninvited_attended": "#e07b39",
    "not_testable": "#a3adb8",
    "lobby_only": "#9b59c6",
    "invited_absent": "#c94a4a",
}
CLASS_COLOURS = {"internal": "#3f9a5b", "external": "#4f7cc0", "unidentified": "#e07b39"}


def status_bar(ctx: ReportContext, width: float = 600.0) -> dict[str, Any]:
    """One stacked bar: the reconciliation rows by status."""
    t = ctx.totals
    counts = [(s, getattr(t, s)) for s in STATUS_ORDER]
    total = sum(c for _, c in counts)
    segments = []
    x = 0.0
    for status, count in counts:
        if not count:
            continue
        w = width * count / total
        segments.append(
            {
                "x": round(x, 2),
                "w": round(w, 2),
                "colour": STATUS_COLOURS[status],
                "label": STATUS_LABELS[status],
                "count": count,
                "share": f"{100 * count / total:.1f}",
            }
        )
        x += w
    alt = f"Stacked bar of the {total:,} reconciliation rows by status: " + (
        "; ".join(f"{s['label']} {s['count']:,} ({s['share']} %)" for s in segments) or "none"
    )
    return {"width": width, "height": 22, "segments": segments, "total": total, "alt": alt}


def class_bars(ctx: ReportContext, width: float = 600.0) -> dict[str, Any]:
    """Attended minutes by classification, as horizontal bars: each the class's unrounded
    seconds summed, then rounded once to whole minutes (never a sum of rounded rows)."""
    seconds: dict[str, float] = {"internal": 0.0, "external": 0.0, "unidentified": 0.0}
    for row in ctx.org_table:
        seconds[row["classification"]] += row["seconds"]
    minutes = {cls: round(value / 60) for cls, value in seconds.items()}
    top = max(minutes.values()) or 1
    label_w = 110.0
    bars = []
    for n, (cls, value) in enumerate(minutes.items()):
        bars.append(
            {
                "y": n * 24,
                "w": round((width - label_w - 90) * value / top, 2),
                "x": label_w,
                "colour": CLASS_COLOURS[cls],
                "label": cls.capitalize(),
                "value": value,
            }
        )
    total = round(sum(seconds.values()) / 60)
    alt = "Bars of the attended minutes by classification: " + "; ".join(
        f"{b['label']} {b['value']:,}" for b in bars
    )
    return {"width": width, "height": 24 * len(bars), "bars": bars, "label_w": label_w,
            "total": total, "alt": alt}  # fmt: skip


def daily_columns(
    ctx: ReportContext, width: float = 600.0, height: float = 110.0
) -> dict[str, Any]:
    """Meetings per day of the period, as columns."""
    days = ctx.daily
    if not days:
        return {"width": width, "height": height, "columns": [], "ticks": [], "max": 0, "alt": ""}
    top = max(d["meetings"] for d in days) or 1
    slot = width / len(days)
    plot_h = height - 16
    columns = []
    ticks = []
    for n, d in enumerate(days):
        h = plot_h * d["meetings"] / top
        columns.append(
            {
                "x": round(n * slot + slot * 0.15, 2),
                "w": round(slot * 0.7, 2),
                "y": round(plot_h - h, 2),
                "h": round(h, 2),
            }
        )
        if len(days) <= 12 or n % max(1, len(days) // 10) == 0:
            ticks.append({"x": round(n * slot + slot / 2, 2), "label": d["day"][5:]})
    alt = f"Columns of the meetings per day, {days[0]['day']} to {days[-1]['day']}: " + "; ".join(
        f"{d['day'][5:]} {d['meetings']:,}" for d in days
    )
    return {
        "width": width,
        "height": height,
        "plot_h": plot_h,
        "columns": columns,
        "ticks": ticks,
        "max": top,
        "alt": alt,
    }
