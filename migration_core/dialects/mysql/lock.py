"""Cross-process migration lock on MariaDB/MySQL: `GET_LOCK` on a dedicated connection, polled
with a zero wait so the waiter can name the holder (`IS_USED_LOCK` gives its connection id, the
process list its user, host and age). The server frees the lock when the holder's session ends.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from ...errors import LockTimeout
from ...lock import LockHolder, LockStatus
from ...urls import mask_url
from ..server import connect_server

_POLL_S = 0.05


def lock_name(database: str) -> str:
    """At most 64 characters, as GET_LOCK requires."""
    return "migration-mcp:" + hashlib.sha256(database.encode()).hexdigest()[:40]


class MysqlNamedLock:
    def __init__(self, engine: Engine, name: str, timeout_ms: int):
        self.engine = engine
        self.name = name
        self.timeout_ms = timeout_ms

    @contextmanager
    def acquire(self, purpose: str) -> Iterator[LockHolder]:
        start = time.monotonic()
        conn = connect_server(self.engine, lambda d: False)
        try:
            while conn.execute("SELECT GET_LOCK(%s, 0)", (self.name,)).scalar() != 1:
                if time.monotonic() - start >= self.timeout_ms / 1000:
                    holder = self._holder(conn)
                    who = holder.describe() if holder else "a session that has just released it"
                    raise LockTimeout(
                        f"could not acquire the migration lock for {mask_url(self.engine.url)} (for {purpose!r}) after waiting "
                        f"{(time.monotonic() - start) * 1000:.0f} ms (timeout {self.timeout_ms} ms): it is held by {who} "
                        f"(GET_LOCK {self.name!r})")
                time.sleep(_POLL_S)
            try:
                yield LockHolder(os.getpid(), socket.gethostname(), purpose, datetime.now(UTC).isoformat())
            finally:
                conn.execute("SELECT RELEASE_LOCK(%s)", (self.name,))
        finally:
            conn.close()

    def _holder(self, conn) -> LockHolder | None:
        cid = conn.execute("SELECT IS_USED_LOCK(%s)", (self.name,)).scalar()
        if cid is None:
            return None
        row = conn.execute("SELECT user, host, time FROM information_schema.processlist WHERE id = %s", (cid,)).fetchone()
        if row is None:
            return LockHolder(None, None, f"connection {cid}", None)
        user, host, seconds = row
        since = (datetime.now(UTC) - timedelta(seconds=int(seconds or 0))).isoformat()
        return LockHolder(None, host, f"connection {cid} of {user}", since)

    def status(self) -> LockStatus:
        conn = connect_server(self.engine, lambda d: False)
        try:
            holder = self._holder(conn)
        finally:
            conn.close()
        return LockStatus(f"GET_LOCK({self.name})", held=holder is not None, holder=holder, stale_info=False)
