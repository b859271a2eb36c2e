"""Row spools: long lists of plain rows kept on disk, so a big month never sits in memory.

The context of a 20,000-meeting month has a per-meeting index of 20,000 rows and perhaps
hundreds of thousands of roster rows; they are written here once, in report order, while the
database is read, and read back in bounded batches while the PDF is rendered.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

_BATCH = 500


class Spool:
    """An append-only sequence of plain (picklable) rows in a file; iterate to read them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._pending: list[Any] = []
        self._file: BinaryIO | None = path.open("wb")

    def append(self, row: Any) -> None:
        """Add one row (only plain data: dicts, lists, strings, numbers)."""
        self._pending.append(row)
        self.count += 1
        if len(self._pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending and self._file is not None:
            pickle.dump(self._pending, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._pending = []

    def close(self) -> None:
        """Finish writing; the spool can be read from then on."""
        if self._file is not None:
            self._flush()
            self._file.close()
            self._file = None

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Any]:
        self.close()
        with self.path.open("rb") as fh:
            while True:
                try:
                    batch = pickle.load(fh)  # noqa: S301 - our own file, written just before
                except EOFError:
                    return
                yield from batch

    def __getstate__(self) -> dict[str, Any]:
        self.close()
        return {"path": self.path, "count": self.count}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.count = state["count"]
        self._pending = []
        self._file = None
