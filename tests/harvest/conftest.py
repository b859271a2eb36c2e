"""Shared pieces of the harvest tests: a small simulated month and the clock after it."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator

import pytest

from reporting.harvest import Window
from reporting.webex.simulator import SimulatedOrg, generate_org

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
WINDOW = Window(START, END)
# A fixed "now" well after the month: every meeting is settled, and within the attendee
# report's 90 days.
NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def org() -> SimulatedOrg:
    """40 meetings of about 8 people in October 2026, every awkward shape at least once."""
    return generate_org(seed=11, start=START, end=END, meetings=40, participants_per_meeting=8)


@pytest.fixture
def other_database_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    """A second fresh, migrated database (for a clean run to compare with)."""
    from tests.conftest import _admin, _with_database

    name = f"meetaudit_o_{os.getpid()}_{next(_counter)}"
    _admin(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _with_database(pg_server_url, name)
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_counter = itertools.count()
