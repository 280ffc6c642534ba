"""Audit trail in the managed database (`_migration_history`), never reported as drift.

A migration's success row is written inside the migration's own transaction, so the
schema and its record commit together: a crash leaves either the old schema with a
`running` row (later marked failed as interrupted) or the new schema marked succeeded.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timezone

from dataclasses import dataclass

from .dialects.sqlite.catalog import HISTORY_TABLE
from .results import HistoryEntry, HistoryStatistics

_COLUMNS = ("id", "kind", "status", "started_at", "finished_at", "duration_ms", "plan_checksum",
            "backup_id", "error", "statements", "changes")
_DDL = f"""CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms REAL,
    plan_checksum TEXT,
    backup_id TEXT,
    error TEXT,
    statements TEXT NOT NULL DEFAULT '[]',
    changes TEXT NOT NULL DEFAULT '[]'
)"""


@dataclass(frozen=True)
class HistoryFlavor:
    """The few SQL spellings that differ between databases; each dialect provides one as its
    `history_flavor` (the defaults are SQLite's)."""

    param: str = "?"  # DB-API placeholder
    ddl: str = _DDL
    exists_sql: str = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?"
    begin: str = "BEGIN IMMEDIATE"
    upsert: str = "INSERT OR REPLACE INTO {table} ({columns}) VALUES ({values})"
    interrupted: str = "interrupted: the process ended before the migration finished; the transaction was rolled back"
    # For status and health, about a row still `running` while nobody holds the lock ({id}, {progress}).
    unrecovered: str = ("migration {id} was interrupted (its process ended){progress}; its transaction was rolled back, "
                        "so the database is as it was before it; the next migrate records it as failed")
    unrecovered_is_failure: bool = False  # True where the database may be half-migrated until recovered


_PROGRESS = "in progress: {done} of {total} statements executed and committed"
_PROGRESS_RE = re.compile(r"in progress: ([0-9]+) of ([0-9]+) statements executed and committed")


def progress_of(error: str | None) -> tuple[int, int] | None:
    """(statements committed, statements planned) as `record_progress` last wrote them, or None."""
    m = _PROGRESS_RE.search(error or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def new_migration_id() -> str:
    return datetime.now(timezone.utc).strftime("mig-%Y%m%dT%H%M%S%fZ-") + secrets.token_hex(3)


class MigrationHistoryManager:
    """Works on a connection in autocommit mode (explicit BEGIN/COMMIT) with a sqlite3-like
    `execute`/`executemany`/`in_transaction`; `flavor` supplies the dialect's SQL spellings."""

    def __init__(self, flavor: HistoryFlavor):
        self.flavor = flavor

    def _sql(self, sql: str) -> str:
        return sql if self.flavor.param == "?" else sql.replace("?", self.flavor.param)

    def _exists(self, conn) -> bool:
        if conn is None:
            return False
        return conn.execute(self._sql(self.flavor.exists_sql), (HISTORY_TABLE,)).fetchone() is not None

    def ensure_table(self, conn) -> None:
        if not self._exists(conn):
            conn.execute(self.flavor.ddl)

    def _write(self, conn, sql: str, params: tuple, *, create_table: bool = False) -> None:
        """One statement in its own transaction, or inside the caller's if one is open.
        `create_table`: create the history table in that same transaction (one commit, one fsync)."""
        sql = self._sql(sql)
        own = not conn.in_transaction
        if own:
            conn.execute(self.flavor.begin)
        try:
            if create_table:
                self.ensure_table(conn)
            conn.execute(sql, params)
            if own:
                conn.execute("COMMIT")
        except BaseException:
            if own and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def record_migration_start(self, conn, migration_id: str, *, kind: str = "migrate", plan_checksum: str | None = None,
                               statements: list[str] | None = None, changes: list[str] | None = None,
                               backup_id: str | None = None, started_at: str | None = None) -> None:
        self._write(conn, f"INSERT INTO {HISTORY_TABLE} (id, kind, status, started_at, plan_checksum, backup_id, statements, changes) "
                          "VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                    (migration_id, kind, started_at or now_iso(), plan_checksum, backup_id,
                     json.dumps(statements or []), json.dumps(changes or [])), create_table=True)

    def record_migration_success(self, conn, migration_id: str, duration_ms: float, status: str = "succeeded") -> None:
        self._write(conn, f"UPDATE {HISTORY_TABLE} SET status = ?, finished_at = ?, duration_ms = ?, error = NULL WHERE id = ?",
                    (status, now_iso(), round(duration_ms, 3), migration_id))

    def record_progress(self, conn, migration_id: str, done: int, total: int) -> None:
        """Where a non-transactional run has got to (each statement committed on its own), so a
        failure or a crash says exactly which statements ran."""
        self._write(conn, f"UPDATE {HISTORY_TABLE} SET error = ? WHERE id = ?",
                    (_PROGRESS.format(done=done, total=total), migration_id))

    def close_run(self, conn, migration_id: str, status: str, error: str | None) -> None:
        """Finish a row that its own process could not finish (it died): status and what became of it."""
        self._write(conn, f"UPDATE {HISTORY_TABLE} SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                    (status, now_iso(), error, migration_id))

    def get_entry(self, conn, migration_id: str) -> HistoryEntry | None:
        if not self._exists(conn):
            return None
        row = conn.execute(self._sql(f"SELECT {', '.join(_COLUMNS)} FROM {HISTORY_TABLE} WHERE id = ?"), (migration_id,)).fetchone()
        return self._entry(row) if row else None

    def record_migration_failure(self, conn, migration_id: str, error: str, duration_ms: float) -> None:
        self._write(conn, f"UPDATE {HISTORY_TABLE} SET status = 'failed', finished_at = ?, duration_ms = ?, error = ? WHERE id = ?",
                    (now_iso(), round(duration_ms, 3), error, migration_id))

    def mark_interrupted(self, conn) -> int:
        """Rows left `running` by a process that died; call only while holding the migration lock."""
        if not self._exists(conn):
            return 0
        running = conn.execute(f"SELECT id, error FROM {HISTORY_TABLE} WHERE status = 'running'").fetchall()
        for migration_id, progress in running:
            self.close_run(conn, migration_id, "failed", self.flavor.interrupted + (f" (last recorded: {progress})" if progress else ""))
        return len(running)

    def mark_rolled_back(self, conn, migration_id: str) -> None:
        self._write(conn, f"UPDATE {HISTORY_TABLE} SET status = 'rolled_back' WHERE id = ?", (migration_id,))

    def export_rows(self, conn) -> list[tuple]:
        if not self._exists(conn):
            return []
        return conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM {HISTORY_TABLE}").fetchall()

    def import_rows(self, conn, rows: list[tuple]) -> None:
        """Put back rows a restore removed: the audit trail survives rollbacks."""
        self.ensure_table(conn)
        if not rows:
            return
        conn.execute(self.flavor.begin)
        try:
            upsert = self.flavor.upsert.format(table=HISTORY_TABLE, columns=", ".join(_COLUMNS),
                                               values=", ".join([self.flavor.param] * len(_COLUMNS)))
            conn.executemany(upsert, [tuple(r) for r in rows])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- queries ---------------------------------------------------------------------------
    def get_migration_history(self, conn, limit: int = 20) -> list[HistoryEntry]:
        if not self._exists(conn):
            return []
        rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM {HISTORY_TABLE} ORDER BY started_at DESC, id DESC LIMIT {int(limit)}").fetchall()
        return [self._entry(r) for r in rows]

    def last_rollbackable(self, conn) -> HistoryEntry | None:
        if not self._exists(conn):
            return None
        row = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM {HISTORY_TABLE} WHERE kind = 'migrate' AND status = 'succeeded' "
                           "ORDER BY started_at DESC, id DESC LIMIT 1").fetchone()
        return self._entry(row) if row else None

    def find_by_backup(self, conn, backup_id: str) -> HistoryEntry | None:
        if not self._exists(conn):
            return None
        row = conn.execute(self._sql(f"SELECT {', '.join(_COLUMNS)} FROM {HISTORY_TABLE} WHERE kind = 'migrate' AND backup_id = ? "
                                     "ORDER BY started_at DESC LIMIT 1"), (backup_id,)).fetchone()
        return self._entry(row) if row else None

    def get_migration_statistics(self, conn) -> HistoryStatistics:
        counts = {"succeeded": 0, "failed": 0, "rolled_back": 0, "running": 0}
        mean = None
        last = None
        if self._exists(conn):
            for status, n in conn.execute(f"SELECT status, count(*) FROM {HISTORY_TABLE} WHERE kind = 'migrate' GROUP BY status"):
                counts[status] = n
            mean, last = conn.execute(
                f"SELECT avg(duration_ms), max(CASE WHEN status IN ('succeeded', 'rolled_back') THEN finished_at END) "
                f"FROM {HISTORY_TABLE} WHERE kind = 'migrate' AND status IN ('succeeded', 'rolled_back')").fetchone()
        finished = counts["succeeded"] + counts["failed"] + counts["rolled_back"]
        return HistoryStatistics(
            total=sum(counts.values()), succeeded=counts["succeeded"], failed=counts["failed"],
            rolled_back=counts["rolled_back"], running=counts["running"],
            success_rate=round((counts["succeeded"] + counts["rolled_back"]) / finished, 4) if finished else None,
            mean_duration_ms=round(mean, 3) if mean is not None else None,
            last_success_at=datetime.fromisoformat(last) if last else None,
        )

    @staticmethod
    def _entry(r: tuple) -> HistoryEntry:
        d = dict(zip(_COLUMNS, r))
        return HistoryEntry(
            id=d["id"], kind=d["kind"], status=d["status"],
            started_at=datetime.fromisoformat(d["started_at"]),
            finished_at=datetime.fromisoformat(d["finished_at"]) if d["finished_at"] else None,
            duration_ms=d["duration_ms"], plan_checksum=d["plan_checksum"], plan_id=d["plan_checksum"], backup_id=d["backup_id"],
            error=d["error"], statements=json.loads(d["statements"] or "[]"),
        )
