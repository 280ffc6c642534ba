"""Cross-process migration lock on PostgreSQL: a session advisory lock, `pg_try_advisory_lock`
polled by `ServerLock`. The holder's `application_name` carries purpose, pid and host, and
`pg_locks` joined to `pg_stat_activity` finds it.
"""

from __future__ import annotations

import hashlib
import os
import socket
from datetime import UTC

from ...lock import LockHolder
from ..server.lock import ServerLock


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


class PgAdvisoryLock(ServerLock):
    acquire_sql = "SELECT pg_try_advisory_lock(%s)"
    release_sql = "SELECT pg_advisory_unlock(%s)"
    timeout_label = "pg_try_advisory_lock key {id}"
    status_label = "pg_advisory_lock({id})"

    def _parts(self) -> tuple[int, int]:
        unsigned = self.lock_id & 0xFFFFFFFFFFFFFFFF
        return unsigned >> 32, unsigned & 0xFFFFFFFF

    def _tag(self, conn, purpose: str) -> None:
        tag = f"migration-mcp {purpose} pid {os.getpid()}@{socket.gethostname()}"[:63]
        conn.execute("SELECT set_config('application_name', %s, false)", (tag,))

    def _holder(self, conn) -> LockHolder | None:
        row = conn.execute(_HOLDER_SQL, self._parts()).fetchone()
        if row is None:
            return None
        pid, app, hostname, addr, since = row
        return LockHolder(pid=pid, hostname=hostname or addr or "local socket", purpose=app or None,
                          acquired_at=since.astimezone(UTC).isoformat() if since else None)
