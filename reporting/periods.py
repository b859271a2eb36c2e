"""Periods as the commands name them: a UTC window, a calendar month in the configured zone.

Kept apart from the harvester so that asking a question for a month does not load it. Both faces
read a period given as options (``--month``, or ``--from``/``--to``; the console's month field)
with :func:`period_from_options`, so a mistake gets the same message from either.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from reporting.errors import ConfigError, PeriodError


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
        raise PeriodError(f"{month!r} is not a month; write it as YYYY-MM, e.g. 2026-10")
    first = dt.datetime(year, mon, 1, tzinfo=zone)
    nxt = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return Window(first.astimezone(dt.UTC), nxt.astimezone(dt.UTC))


def month_of(window: Window, zone: dt.tzinfo) -> str:
    """``YYYY-MM`` of the month ``window`` starts in (in ``zone``): a month window's label."""
    return f"{window.start.astimezone(zone):%Y-%m}"


def previous_month(now: dt.datetime, zone: dt.tzinfo) -> str:
    """``YYYY-MM`` of the month before the one ``now`` falls in (in ``zone``)."""
    local = now.astimezone(zone)
    year, mon = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{mon:02d}"


def period_from_options(
    zone: dt.tzinfo,
    month: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    what: str = "the period",
    now: dt.datetime | None = None,
) -> Window:
    """The period the options name (last month without any), in UTC; a mistake is a
    :class:`~reporting.errors.PeriodError`.

    ``month`` is ``YYYY-MM``; ``start`` and ``end`` (given together) without a time zone are in
    ``zone``. ``what`` names the period in that error as the command calls it ("the harvest
    window"); ``now`` decides which month is the last one (default: the present).
    """
    if month is not None and not month.strip():
        raise PeriodError("--month is empty; write it as YYYY-MM, e.g. 2026-10")
    if month and (start or end):
        raise PeriodError("give either --month or --from/--to, not both")
    if start or end:
        if not (start and end):
            raise PeriodError("--from and --to go together")
        for option, value in (("--from", start), ("--to", end)):
            # The years --month accepts: a typo such as 0001 or 9999 would otherwise ask Webex
            # about every day in between.
            if not 1990 <= value.year <= 2999:
                raise PeriodError(
                    f"{option} {value.isoformat(sep=' ')[:10]} is not a date to ask Webex about (years "
                    "1990 to 2999)"
                )
        begins = start.replace(tzinfo=start.tzinfo or zone).astimezone(dt.UTC)
        ends = end.replace(tzinfo=end.tzinfo or zone).astimezone(dt.UTC)
        if ends <= begins:
            raise PeriodError(
                f"{what} ends before it starts: --to {end:%Y-%m-%d %H:%M} is not after "
                f"--from {start:%Y-%m-%d %H:%M}"
            )
        return Window(begins, ends)
    return month_window(month or previous_month(now or dt.datetime.now(dt.UTC), zone), zone)


#: How a moment is written wherever a period's start or end is typed (``--from``/``--to`` and the
#: console's From/To fields): a day, or a day and a time, in the configured zone.
MOMENT_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M")


def parse_moment(text: str, option: str) -> dt.datetime | None:
    """A typed start or end (``option`` names the field in the message), ``None`` when empty;
    anything else is a :class:`PeriodError` naming what was typed and how to write it."""
    typed = text.strip()
    if not typed:
        return None
    for fmt in MOMENT_FORMATS:
        try:
            return dt.datetime.strptime(typed, fmt)
        except ValueError:
            continue
    raise PeriodError(
        f"{option} {typed[:40]!r} is not a date: write it as YYYY-MM-DD or YYYY-MM-DDTHH:MM, "
        "e.g. 2026-10-01"
    )
