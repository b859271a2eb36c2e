"""Shared fixtures: a real PostgreSQL for every test, isolated per test.

The server is ``MEETAUDIT_TEST_DATABASE_URL`` when set, else the embedded PostgreSQL (started once
per test session in a temporary data directory). Each worker migrates one template database with
Alembic; each test gets its own database cloned from it (``CREATE DATABASE … TEMPLATE``), so tests
never see each other's rows and the schema under test is exactly what the migrations build.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from reporting.config import Settings, load_settings
from reporting.db.embedded import EmbeddedPostgres
from reporting.db.engine import Database, normalise_url
from reporting.db.migrate import upgrade

_counter = itertools.count()


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin(url: str, sql: str) -> None:
    with psycopg.connect(_libpq(_with_database(url, "postgres")), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A URL on the PostgreSQL server the tests use (database part irrelevant)."""
    url = os.environ.get("MEETAUDIT_TEST_DATABASE_URL")
    if url:
        yield normalise_url(url)
        return
    server = EmbeddedPostgres(Path(tempfile.gettempdir()) / "meetaudit-test-pgdata")
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def template_db(pg_server_url: str, worker_id: str) -> Iterator[str]:
    """Name of a database migrated to head, to clone for each test."""
    name = f"meetaudit_tpl_{worker_id}_{os.getpid()}"
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}"')
    _admin(pg_server_url, f'CREATE DATABASE "{name}"')
    db = Database(_with_database(pg_server_url, name), data_dir=Path(tempfile.gettempdir()))
    try:
        upgrade(db.engine)
    finally:
        db.close()
    yield name
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    """URL of a fresh, fully migrated database for this test alone."""
    name = f"meetaudit_t_{os.getpid()}_{next(_counter)}"
    _admin(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _with_database(pg_server_url, name)
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """URL of a fresh database with no schema at all (for migration tests)."""
    name = f"meetaudit_e_{os.getpid()}_{next(_counter)}"
    _admin(pg_server_url, f'CREATE DATABASE "{name}"')
    yield _with_database(pg_server_url, name)
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """A :class:`Database` on this test's own migrated database."""
    with Database(database_url, data_dir=tmp_path) as database:
        yield database


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for the simulated organisation, pointing at this test's database."""
    return load_settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        output_dir=tmp_path / "reports",
        org_name="Acme Corporation",
        org_domains=["acme.example", "acme-corp.example"],
        operator="test-operator@ci",
    )


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """The xdist worker name (``gw0``…) or ``main`` when not distributed."""
    return str(getattr(request.config, "workerinput", {}).get("workerid", "main"))
