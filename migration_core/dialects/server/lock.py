"""The cross-process migration lock on a server, held by a dedicated session and polled."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from ...errors import LockTimeout
from ...lock import LockHolder, LockStatus
from ...urls import mask_url
from .connection import ServerConnection, connect_server


class ServerLock:
    """Cross-process migration lock held by a dedicated session. Acquiring is polled with a
    non-blocking call, so a waiter never blocks inside the server and can name the holder when
    it gives up; the server frees the lock when the holder's session ends, so a crashed migration
    never wedges the database. Subclasses give the SQL (`%s` is the lock id) and the labels."""

    acquire_sql: str  # true when the lock was taken
    release_sql: str
    timeout_label: str  # ends the timeout message; `{id}` is the lock id
    status_label: str
    POLL_S = 0.05

    def __init__(self, engine: Engine, lock_id, timeout_ms: int):
        self.engine = engine
        self.lock_id = lock_id
        self.timeout_ms = timeout_ms

    def _tag(self, conn: ServerConnection, purpose: str) -> None:
        """Mark the session so that other waiters can tell who holds the lock."""

    def _holder(self, conn: ServerConnection) -> LockHolder | None:
        raise NotImplementedError

    @contextmanager
    def acquire(self, purpose: str) -> Iterator[LockHolder]:
        start = time.monotonic()
        conn = connect_server(self.engine, lambda d: False)
        try:
            self._tag(conn, purpose)
            while not conn.execute(self.acquire_sql, (self.lock_id,)).scalar():
                if time.monotonic() - start >= self.timeout_ms / 1000:
                    holder = self._holder(conn)
                    who = holder.describe() if holder else "a session that has just released it"
                    raise LockTimeout(
                        f"could not acquire the migration lock for {mask_url(self.engine.url)} (for {purpose!r}) after waiting "
                        f"{(time.monotonic() - start) * 1000:.0f} ms (timeout {self.timeout_ms} ms): it is held by {who} "
                        f"({self.timeout_label.format(id=self.lock_id)})")
                time.sleep(self.POLL_S)
            try:
                yield LockHolder(os.getpid(), socket.gethostname(), purpose, datetime.now(UTC).isoformat())
            finally:
                conn.execute(self.release_sql, (self.lock_id,))
        finally:
            conn.close()

    def status(self) -> LockStatus:
        conn = connect_server(self.engine, lambda d: False)
        try:
            holder = self._holder(conn)
        finally:
            conn.close()
        return LockStatus(self.status_label.format(id=self.lock_id), held=holder is not None, holder=holder, stale_info=False)


