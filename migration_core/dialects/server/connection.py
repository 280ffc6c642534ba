"""A sqlite3-like connection face over SQLAlchemy for the server dialects, and the driver's error text."""

from __future__ import annotations

import os
import re
import socket

from typing import Any, Callable

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ...errors import ConfigurationError
from ...urls import mask_url, parse_url, scrub


def make_engine(url: str) -> Engine:
    """NullPool: every connection is opened and closed by its user, so nothing lingers on the
    server (tests drop their databases; an idle pooled session would hold them)."""
    return create_engine(parse_url(url), poolclass=NullPool)


class ServerConnection:
    """sqlite3-like face (`execute`, `executemany`, `in_transaction`, `close`) over a SQLAlchemy
    connection in AUTOCOMMIT mode. Transactions are explicit `BEGIN`/`COMMIT` text, so the shared
    history code and the executors drive them the same way on every database, and every statement
    still goes through SQLAlchemy (a `before_cursor_execute` listener sees them all)."""

    def __init__(self, sa: Connection, in_tx: Callable[[Any], bool]):
        self.sa = sa
        self._in_tx = in_tx

    @property
    def driver(self) -> Any:
        return self.sa.connection.driver_connection

    def execute(self, sql: str, params: tuple | list | dict | None = None):
        """Without `params` the driver is given none, so a `%` in the text (`LIKE 'a%'`, a DEFINER
        `'app'@'%'`, `v % 2`) is not taken for a placeholder (SQLAlchemy's `no_parameters`)."""
        if params:
            return self.sa.exec_driver_sql(sql, tuple(params) if isinstance(params, list) else params)
        return self.sa.exec_driver_sql(sql, execution_options={"no_parameters": True})

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        if rows:
            self.sa.exec_driver_sql(sql, [tuple(r) for r in rows])

    @property
    def in_transaction(self) -> bool:
        return self._in_tx(self.driver)

    def close(self) -> None:
        self.sa.close()

    def cut(self) -> None:
        """Shut the connection's socket down, from any thread: whatever this connection waits for ends
        at once with an error, and the server ends the session (PostgreSQL rolls its transaction back;
        MariaDB ends the statement under way, as when a client is killed). For giving up work another
        thread is doing on it (an interrupted status); the connection is unusable afterwards."""
        try:
            driver = self.driver
            fd = driver.fileno() if hasattr(driver, "fileno") else driver._sock.fileno()  # psycopg / PyMySQL
            sock = socket.socket(fileno=os.dup(fd))
        except (OSError, AttributeError, ValueError):
            return  # already closed
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.close()


def runnable(compiled: str) -> str:
    """Text SQLAlchemy compiled for a `format`/`pyformat` driver (psycopg, PyMySQL) has `%%` for each `%`,
    for the driver to undo when it fills in parameters; a plan's statements run without any
    (`ServerConnection.execute`), so they need the `%` itself."""
    return compiled.replace("%%", "%")


def connect_server(engine: Engine, in_tx: Callable[[Any], bool]) -> ServerConnection:
    try:
        sa = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise ConfigurationError(f"cannot connect to {mask_url(engine.url)}: {scrub(_first_line(exc), engine.url)}") from None
    return ServerConnection(sa, in_tx)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else exc.__class__.__name__


def errno(exc: BaseException) -> int | None:
    """The driver's error number (PyMySQL: `args[0]`), or None."""
    args = getattr(getattr(exc, "orig", None), "args", ())
    return args[0] if args and isinstance(args[0], int) else None


_SCRATCH_QUALIFIER = re.compile(r"[`\"]?_mig_scratch_\w+[`\"]?\.")


def message(exc: BaseException) -> str:
    """The driver's error text on one line, without the scratch schema's name (a message about the
    models or a proof names the table, not the throwaway copy it was created in)."""
    return one_line(str(getattr(exc, "orig", None) or exc))


def one_line(text: str) -> str:
    return _SCRATCH_QUALIFIER.sub("", " ".join(text.split()))


