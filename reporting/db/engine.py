"""Engine and session factory, built on request from the settings (never at import time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from reporting.config import Settings, redact_url
from reporting.db.embedded import DATABASE_NAME, EmbeddedPostgres
from reporting.errors import ConfigError, DatabaseError


def normalise_url(url: str) -> str:
    """Force the psycopg 3 driver on a ``postgresql://`` URL; refuse anything not PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"the database URL {redact_url(url)} is not a valid URL") from exc
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            f"meetaudit stores its records in PostgreSQL only; {redact_url(url)} is "
            f"{parsed.get_backend_name()!r}"
        )
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def create_db_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for ``url`` that checks connections before use and fails fast when down."""
    return create_engine(
        normalise_url(url),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"connect_timeout": 10, "application_name": "meetaudit"},
    )


class Database:
    """The database of one meetaudit process: an engine, its sessions, maybe an embedded server.

    Use as a context manager; leaving it disposes the engine and releases the embedded server.
    """

    def __init__(
        self,
        url: str | None,
        *,
        data_dir: Path,
        pool_size: int = 5,
        embedded_database: str = DATABASE_NAME,
    ) -> None:
        self._embedded: EmbeddedPostgres | None = None
        if url is None:
            self._embedded = EmbeddedPostgres(data_dir / "pgdata", embedded_database)
            url = self._embedded.start()
        self.url = normalise_url(url)
        self.engine = create_db_engine(self.url, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, pool_size: int = 5) -> Database:
        """The configured server, or the embedded one when ``database_url`` is unset."""
        url = settings.database_url.get_secret_value() if settings.database_url else None
        return cls(
            url,
            data_dir=settings.data_dir,
            pool_size=pool_size,
            embedded_database=settings.embedded_database,
        )

    @property
    def embedded_dir(self) -> Path | None:
        """Where the embedded server keeps its data, or ``None`` for an external server."""
        return self._embedded.pgdata if self._embedded else None

    @property
    def display_url(self) -> str:
        """The URL with its password hidden, for messages."""
        return redact_url(self.url)

    def check(self) -> None:
        """Connect once; raise :class:`DatabaseError` naming the server when that fails."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError) as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {self.display_url}: "
                f"{_first_line(exc.orig) if exc.orig else exc}. Check that the server is "
                "running and MEETAUDIT_DATABASE_URL is right; nothing was written."
            ) from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        """Dispose the engine and release the embedded server."""
        self.engine.dispose()
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
