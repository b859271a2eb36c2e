"""Periods as the commands name them: a UTC window, a calendar month in the configured zone.

Kept apart from the harvester so that asking a question for a month does not load it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from reporting.errors import ConfigError


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` in UTC."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigError("harvest window times must carry a time zone")
        if self.end <= self.start:
            raise ConfigError("the harvest window ends before it starts")

    def chunks(self, size: dt.timedelta) -> Iterator[Window]:
        """Consecutive sub-windows of at most ``size``."""
        cursor = self.start
        while cursor < self.end:
            nxt = min(cursor + size, self.end)
            yield Window(cursor, nxt)
            cursor = nxt

    def halves(self) -> tuple[Window, Window]:
        """The window split in two at its midpoint (whole seconds, so the API can name it)."""
        mid = self.start + (self.end - self.start) / 2
        mid = mid.replace(microsecond=0)
        if mid <= self.start:
            mid = self.start + dt.timedelta(seconds=1)
        return Window(self.start, mid), Window(mid, self.end)


def month_window(month: str, zone: dt.tzinfo) -> Window:
    """The calendar month ``YYYY-MM`` in ``zone``, as a UTC window."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
    year, mon = (int(match[1]), int(match[2])) if match else (0, 0)
    if not (1990 <= year <= 2999 and 1 <= mon <= 12):
        raise ConfigError(f"{month!r} is not a month; write it as YYYY-MM, e.g. 2026-10")
    first = dt.datetime(year, mon, 1, tzinfo=zone)
    nxt = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return Window(first.astimezone(dt.UTC), nxt.astimezone(dt.UTC))


def previous_month(now: dt.datetime, zone: dt.tzinfo) -> str:
    """``YYYY-MM`` of the month before the one ``now`` falls in (in ``zone``)."""
    local = now.astimezone(zone)
    year, mon = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{mon:02d}"
