"""Cross-process migration lock on MariaDB/MySQL: `GET_LOCK` with a zero wait, polled by
`ServerLock`. `IS_USED_LOCK` gives the holder's connection id, the process list its user, host
and age.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from ...lock import LockHolder
from ..server.lock import ServerLock


def lock_name(database: str) -> str:
    """At most 64 characters, as GET_LOCK requires."""
    return "migration-mcp:" + hashlib.sha256(database.encode()).hexdigest()[:40]


class MysqlNamedLock(ServerLock):
    acquire_sql = "SELECT GET_LOCK(%s, 0)"  # 1 when taken, 0 or NULL otherwise
    release_sql = "SELECT RELEASE_LOCK(%s)"
    timeout_label = "GET_LOCK {id!r}"
    status_label = "GET_LOCK({id})"

    def _holder(self, conn) -> LockHolder | None:
        cid = conn.execute("SELECT IS_USED_LOCK(%s)", (self.lock_id,)).scalar()
        if cid is None:
            return None
        row = conn.execute("SELECT user, host, time FROM information_schema.processlist WHERE id = %s", (cid,)).fetchone()
        if row is None:
            return LockHolder(None, None, f"connection {cid}", None)
        user, host, seconds = row
        since = (datetime.now(UTC) - timedelta(seconds=int(seconds or 0))).isoformat()
        return LockHolder(None, host, f"connection {cid} of {user}", since)
