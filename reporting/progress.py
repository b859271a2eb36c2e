"""How a long operation shows its progress: Rich bars on a terminal, log lines elsewhere.

``--log-format`` picks the style: ``rich`` (a live progress bar: meetings done / total, pages,
requests, retries, rate-limit waits, ETA), ``plain`` (one readable line every few seconds) or
``json`` (one JSON object per event, for schedulers and log collectors; the last one, ``finished``,
carries the whole summary). No line ever carries the access token: events hold counts, messages
and trackingIds only.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from reporting.harvest import HarvestEvent


def choose_format(requested: str | None, stream: TextIO | None = None) -> str:
    """``rich`` on a terminal, ``plain`` otherwise, unless the operator asked for one."""
    if requested and requested != "auto":
        return requested
    return "rich" if (stream or sys.stderr).isatty() else "plain"


class HarvestProgress:
    """A sink for :class:`HarvestEvent`; use as a context manager around the harvest."""

    def __init__(self, fmt: str, stream: TextIO | None = None) -> None:
        self.fmt = fmt
        # Looked up now, not at import: a test runner may have replaced sys.stderr since.
        self.stream = stream if stream is not None else sys.stderr
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_line = 0.0

    def __enter__(self) -> HarvestProgress:
        if self.fmt == "rich":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("Listing meetings", total=None, detail="")
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: HarvestEvent) -> None:
        if self.fmt == "json":
            self._json(event)
        elif self.fmt == "rich":
            self._rich(event)
        else:
            self._plain(event)

    def _json(self, event: HarvestEvent) -> None:
        record: dict[str, Any] = {"ts": round(time.time(), 3), "event": event.kind}
        if event.message:
            record["message"] = event.message
        if event.total is not None:
            record["total"] = event.total
        if event.done is not None:
            record["done"] = event.done
        for key, value in event.data.items():
            record[key] = value.as_dict() if key == "summary" else value
        print(json.dumps(record, ensure_ascii=False, default=str), file=self.stream, flush=True)

    def _plain(self, event: HarvestEvent) -> None:
        now = time.monotonic()
        d = event.data
        if event.kind == "progress":
            if event.done != event.total and now - self._last_line < 5:
                return
            self._last_line = now
            eta = d.get("eta_seconds")
            line = (
                f"meetings {event.done}/{event.total}  pages {d.get('pages', 0)}  requests "
                f"{d.get('requests', 0)}  retries {d.get('retries', 0)}  rate-limit wait "
                f"{d.get('waited', 0):.0f}s  gaps {d.get('gaps', 0)}"
                + (f"  ETA {_duration(eta)}" if eta is not None else "")
            )
        elif event.kind in ("listed", "plan", "gap", "note"):
            line = f"gap: {event.message}" if event.kind == "gap" else event.message
        elif event.kind == "retry" and d.get("status") in (429, 423):
            line = event.message
        else:
            return
        print(line, file=self.stream, flush=True)

    def _rich(self, event: HarvestEvent) -> None:
        assert self._progress is not None and self._task is not None
        d = event.data
        if event.kind == "listing":
            self._progress.update(self._task, detail=f"{event.message} · pages {d.get('pages', 0)}")
        elif event.kind == "plan":
            self._progress.update(self._task, description="Fetching meetings", total=event.total)
            self._progress.console.print(Text(event.message))
        elif event.kind == "progress":
            # Fetching starts while the listing goes on: the total grows until "plan".
            self._progress.update(
                self._task,
                description="Fetching meetings",
                total=event.total,
                completed=event.done,
                detail=(
                    f"pages {d.get('pages', 0)} · requests {d.get('requests', 0)} · retries "
                    f"{d.get('retries', 0)} · rate-limit wait {d.get('waited', 0):.0f}s · gaps "
                    f"{d.get('gaps', 0)}"
                ),
            )
        elif event.kind in ("gap", "note"):
            # Text(), not markup: gap reasons quote data from strangers.
            label = "[yellow]gap:[/] " if event.kind == "gap" else "[cyan]note:[/] "
            self._progress.console.print(Text.from_markup(label).append(event.message))
        elif event.kind == "retry" and d.get("status") in (429, 423):
            self._progress.console.print(Text(event.message, style="dim"))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


ProgressCallback = Callable[[HarvestEvent], None]


_STAGES = {
    "reading": "Reading the period's records",
    "writing": "Writing the attachments",
    "rendering": "Rendering PDF parts",
    "assembling": "Assembling the PDF/A",
    "drawing": "Drawing the sample",
    "document": "Rendering the PDF/A",
}


class ReportProgress:
    """Progress of a report, as ``generate_report(progress=...)`` reports it: (stage, done, total).

    A context manager: with ``rich`` a live bar per stage (meetings read of the period's total,
    PDF parts rendered), otherwise a line per stage and a count every few seconds.
    """

    def __init__(self, fmt: str, stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self.stream = stream or sys.stderr
        self._stage: str | None = None
        self._last = 0.0
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ReportProgress:
        if self.fmt == "rich":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:>6.0f}{task.fields[of]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
            )
            self._progress.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            for task in self._tasks.values():
                self._progress.update(task, total=self._progress.tasks[task].completed or 1)
            self._progress.stop()

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        label = _STAGES.get(stage, stage)
        if self._progress is not None:
            previous = self._tasks.get(self._stage or "")
            if stage != self._stage and previous is not None:
                # The earlier stage is over: show its bar full.
                finished = self._progress.tasks[previous].completed
                self._progress.update(previous, total=finished or 1, completed=finished or 1)
            if stage not in self._tasks:
                self._tasks[stage] = self._progress.add_task(label, total=total, of="")
            of = f" / {total}" if total else ""
            self._progress.update(self._tasks[stage], completed=done, total=total, of=of)
            self._stage = stage
            return
        now = time.monotonic()
        if stage == self._stage and now - self._last < 3 and done != total:
            return
        self._stage, self._last = stage, now
        if self.fmt == "json":
            record = {
                "ts": time.time(),
                "event": "report",
                "stage": stage,
                "done": done,
                "total": total,
            }
            print(json.dumps(record), file=self.stream, flush=True)
            return
        count = f" {done}/{total}" if total else (f" {done}" if done else "")
        print(f"{label}{count}", file=self.stream, flush=True)
