"""Cross-process migration lock on PostgreSQL: a session advisory lock on a dedicated connection.

`pg_try_advisory_lock` is polled until the timeout, so a waiter never blocks inside the server and
can say who holds the lock: the holder's `application_name` carries purpose, pid and host, and
`pg_locks` joined to `pg_stat_activity` finds it. The server releases the lock when the holder's
session ends, so a crashed migration never wedges the database.
"""

from __future__ import annotations

import hashlib
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
from ..server import connect_server

_POLL_S = 0.05


def lock_key(database: str, schema: str) -> int:
    """A signed 64-bit key per (database, schema): one migration at a time per managed schema."""
    digest = hashlib.sha256(f"migration-mcp:{database}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_HOLDER_SQL = """
SELECT a.pid, a.application_name, a.client_hostname, host(a.client_addr), a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %s AND l.objid = %s AND l.objsubid = 1
"""


class PgAdvisoryLock:
    def __init__(self, engine: Engine, key: int, timeout_ms: int):
        self.engine = engine
        self.key = key
        self.timeout_ms = timeout_ms

    def _parts(self) -> tuple[int, int]:
        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        return unsigned >> 32, unsigned & 0xFFFFFFFF

    @contextmanager
    def acquire(self, purpose: str) -> Iterator[LockHolder]:
        start = time.monotonic()
        conn = connect_server(self.engine, lambda d: False)
        try:
            tag = f"migration-mcp {purpose} pid {os.getpid()}@{socket.gethostname()}"[:63]
            conn.execute("SELECT set_config('application_name', %s, false)", (tag,))
            while not conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).scalar():
                if time.monotonic() - start >= self.timeout_ms / 1000:
                    holder = self._holder(conn)
                    who = holder.describe() if holder else "a session that has just released it"
                    raise LockTimeout(
                        f"could not acquire the migration lock for {mask_url(self.engine.url)} (for {purpose!r}) after waiting "
                        f"{(time.monotonic() - start) * 1000:.0f} ms (timeout {self.timeout_ms} ms): it is held by {who} "
                        f"(pg_try_advisory_lock key {self.key})")
                time.sleep(_POLL_S)
            holder = LockHolder(os.getpid(), socket.gethostname(), purpose, datetime.now(UTC).isoformat())
            try:
                yield holder
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        finally:
            conn.close()

    def _holder(self, conn) -> LockHolder | None:
        row = conn.execute(_HOLDER_SQL, self._parts()).fetchone()
        if row is None:
            return None
        pid, app, hostname, addr, since = row
        return LockHolder(pid=pid, hostname=hostname or addr or "local socket", purpose=app or None,
                          acquired_at=since.astimezone(UTC).isoformat() if since else None)

    def status(self) -> LockStatus:
        conn = connect_server(self.engine, lambda d: False)
        try:
            holder = self._holder(conn)
        finally:
            conn.close()
        return LockStatus(f"pg_advisory_lock({self.key})", held=holder is not None, holder=holder, stale_info=False)
