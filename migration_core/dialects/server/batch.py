"""The models' CREATE statements sent to a server in one round trip instead of one per object.

`create_all` on a connection runs each statement on its own: at 500 tables that is 1,019 round trips
through SQLAlchemy's execution machinery, most of a cache miss's time on PostgreSQL. Compiled ahead
with the connection's own (initialized) dialect and sent as one script, the server does the same work
in one exchange. Models with DDL listeners (which may run any SQL, and whose Python side effects
should run once) are created by `create_all` as before; so is anything that fails in the script, so
the error names the statement as it always did.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable

from sqlalchemy import MetaData

from ...fingerprint import ddl_listener
from ..ddl import compiled_create_all
from .connection import runnable


def compiled_ddl(metadata: MetaData, dialect, sink: Callable[[str], None] | None = None) -> list[str] | None:
    """`create_all`'s statements as `dialect` compiles them (`dialects/ddl.py`; runnable text: `%` not
    doubled), or None when the models have a DDL listener or something only a live connection compiles.
    `sink(text)` also receives each statement as it is compiled (`ScriptSender.add`)."""
    if ddl_listener(metadata) is not None:
        return None
    statements = compiled_create_all(metadata, dialect, None if sink is None else (lambda s: sink(runnable(s).strip())))
    return None if statements is None else [runnable(s).strip() for s in statements]


class ScriptSender:
    """Statements sent in chunks, in order, by a thread of its own while the caller compiles the next
    ones: at 500 tables the compile (~0.4 s of Python) then overlaps the server's work on what came
    before it, instead of preceding it. `send(chunk)` runs each chunk as one script on a connection
    the caller does not touch until `finish()`; after the first error nothing more is sent, and
    `finish()` returns that error (None: all ran)."""

    CHUNK = 100

    def __init__(self, send: Callable[[list[str]], None]):
        self._send = send
        self._pending: list[str] = []
        self._queue: queue.Queue[list[str] | None] = queue.Queue()
        self.error: BaseException | None = None
        self.stopped = False
        self._thread = threading.Thread(target=self._run, name="migration-ddl", daemon=True)
        self._thread.start()

    def add(self, statement: str) -> None:
        if self.stopped or self.error is not None:
            return
        self._pending.append(statement)
        if len(self._pending) >= self.CHUNK:
            self._queue.put(self._pending)
            self._pending = []

    def stop(self) -> None:
        """Send nothing more (the chunk being sent ends): the caller found a statement this route cannot take."""
        self.stopped = True
        self._pending = []

    def finish(self) -> BaseException | None:
        if self._pending:
            self._queue.put(self._pending)
            self._pending = []
        self._queue.put(None)
        try:
            self._thread.join()
        except BaseException:  # a signal's exception in this thread: the chunk being sent ends, no other starts
            self.stopped = True
            self._thread.join()
            raise
        return self.error

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is None and not self.stopped:
                try:
                    self._send(chunk)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread by finish()
                    self.error = exc


def script(statements: list[str]) -> str:
    return ";\n".join(statements)
