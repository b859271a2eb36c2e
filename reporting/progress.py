"""How a long operation shows its progress: Rich bars on a terminal, log lines elsewhere.

``--log-format`` picks the style: ``rich`` (a live progress bar: meetings done / total, requests,
retries, rate-limit waits, ETA), ``plain`` (one readable line every few seconds) or ``json`` (one
JSON object per event, for schedulers and log collectors).
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

from reporting.harvest import HarvestEvent


def choose_format(requested: str | None, stream: TextIO = sys.stderr) -> str:
    """``rich`` on a terminal, ``plain`` otherwise, unless the operator asked for one."""
    if requested and requested != "auto":
        return requested
    return "rich" if stream.isatty() else "plain"


class HarvestProgress:
    """A sink for :class:`HarvestEvent`; use as a context manager around the harvest."""

    def __init__(self, fmt: str, stream: TextIO = sys.stderr) -> None:
        self.fmt = fmt
        self.stream = stream
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
        record: dict[str, Any] = {"ts": time.time(), "event": event.kind}
        if event.message:
            record["message"] = event.message
        if event.total is not None:
            record["total"] = event.total
        if event.done is not None:
            record["done"] = event.done
        record.update({k: v for k, v in event.data.items() if k != "summary"})
        print(json.dumps(record, ensure_ascii=False), file=self.stream, flush=True)

    def _plain(self, event: HarvestEvent) -> None:
        now = time.monotonic()
        if event.kind == "meeting" and event.done != event.total and now - self._last_line < 5:
            return
        self._last_line = now
        if event.kind == "meeting":
            d = event.data
            line = (
                f"meetings {event.done}/{event.total}  requests {d.get('requests', 0)}  "
                f"retries {d.get('retries', 0)}  rate-limit wait {d.get('waited', 0):.0f}s  "
                f"gaps {d.get('gaps', 0)}"
            )
        elif event.kind in ("listed", "plan", "gap"):
            line = event.message
        else:
            return
        print(line, file=self.stream, flush=True)

    def _rich(self, event: HarvestEvent) -> None:
        assert self._progress is not None and self._task is not None
        if event.kind == "listing":
            self._progress.update(self._task, detail=event.message)
        elif event.kind == "plan":
            self._progress.update(
                self._task, description="Fetching meetings", total=event.total, completed=0,
                detail=event.message,
            )  # fmt: skip
        elif event.kind == "meeting":
            d = event.data
            self._progress.update(
                self._task,
                completed=event.done,
                detail=(
                    f"requests {d.get('requests', 0)} · retries {d.get('retries', 0)} · "
                    f"waited {d.get('waited', 0):.0f}s · gaps {d.get('gaps', 0)}"
                ),
            )
        elif event.kind == "gap":
            self._progress.console.print(f"[yellow]gap:[/] {event.message}")


ProgressCallback = Callable[[HarvestEvent], None]
