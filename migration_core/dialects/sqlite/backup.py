"""SQLite copy/restore for BackupManager, through the online backup API in both directions.

The backup API copies a consistent snapshot while other connections stay open, and a restore
through it goes through SQLite's own locking and page cache invalidation, so connections that are
open on the live database see the restored contents instead of a file swapped under them.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

from ...errors import BackupError

SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_DONE = 101


class _Deadline(Exception):
    """Raised from the backup progress callback to stop Python's endless retry on SQLITE_BUSY."""


class SqliteBackupEngine:
    """Backup engine for one SQLite database file."""

    name = "sqlite-online-backup"
    suffix = ".sqlite3"
    atomic_restore = True  # the backup API writes the live file in one transaction

    def __init__(self, db_path: str | Path, timeout_ms: int = 10000):
        self.db_path = Path(db_path).expanduser().resolve()
        self.timeout_ms = timeout_ms

    def write_backup(self, dest: Path) -> None:
        """Copy the live database into `dest` (a new file) in one backup step."""
        if not self.db_path.is_file():
            raise BackupError(f"cannot back up {self.db_path}: the database file does not exist")
        # mode=rw: fail rather than create an empty database if the file vanished since the check.
        src = self._connect(self.db_path.as_uri() + "?mode=rw")
        try:
            dst = sqlite3.connect(dest)
            try:
                self._copy(src, dst, f"back up {self.db_path}")
                # A copy of a WAL database is flagged WAL; make the backup one self-contained file.
                dst.execute("PRAGMA journal_mode=DELETE").fetchall()
            finally:
                dst.close()
        finally:
            src.close()

    def restore_backup(self, src: Path) -> None:
        """Copy `src` into the live database through the backup API (never a file overwrite)."""
        source = sqlite3.connect(_readonly_uri(src), uri=True)
        try:
            live = self._connect(str(self.db_path))
            try:
                self._copy(source, live, f"restore {self.db_path}")
            finally:
                live.close()
        finally:
            source.close()

    def check_backup_file(self, path: Path) -> str | None:
        """Why `path` is not a usable SQLite backup, or None when it is."""
        try:
            with open(path, "rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            return f"cannot read backup file {path}: {exc.strerror or exc}"
        if header != SQLITE_HEADER:
            return f"backup file {path} is not an SQLite database (bad header)"
        try:
            conn = sqlite3.connect(_readonly_uri(path), uri=True)
            try:
                rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            return f"backup file {path} cannot be read by SQLite: {exc}"
        if rows != ["ok"]:
            return f"backup file {path} failed PRAGMA quick_check: " + "; ".join(map(str, rows[:5]))
        return None

    def schema_fingerprint(self, path: Path | None = None) -> str | None:
        """SHA-256 of the sorted schema rows of the live database (or of `path`); None if absent."""
        target = Path(path) if path is not None else self.db_path
        if not target.is_file():
            return None
        uri = _readonly_uri(target) if path is not None else target.as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.timeout_ms / 1000)
            try:
                rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return None
        digest = hashlib.sha256()
        for row in sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r)):
            digest.update(repr(row).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def kept_objects(self) -> dict[str, str]:
        """Views and triggers of the live database ("view v" -> CREATE text). A backup is the whole
        file, so a restore brings them back as they were."""
        if not self.db_path.is_file():
            return {}
        try:
            conn = sqlite3.connect(self.db_path.as_uri() + "?mode=ro", uri=True, timeout=self.timeout_ms / 1000)
            try:
                rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'trigger')").fetchall()
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return {}
        return {f"{kind} {name}": sql for kind, name, sql in rows}

    def drop_kept_objects(self, keys: list[str]) -> None:  # pragma: no cover - a whole-file restore leaves none
        raise BackupError(f"the restored database has objects the backup does not: {', '.join(keys)}")

    def _connect(self, target: str) -> sqlite3.Connection:
        # The busy timeout bounds each backup step; the deadline below bounds the whole copy.
        return sqlite3.connect(target, uri=target.startswith("file:"), timeout=min(self.timeout_ms, 1000) / 1000)

    def _copy(self, src: sqlite3.Connection, dst: sqlite3.Connection, what: str) -> None:
        deadline = time.monotonic() + self.timeout_ms / 1000

        def check(status: int, remaining: int, total: int) -> None:
            if status != _SQLITE_DONE and time.monotonic() > deadline:
                raise _Deadline

        try:
            src.backup(dst, pages=-1, progress=check, sleep=0.05)
        except _Deadline:
            raise BackupError(
                f"could not {what}: the database stayed locked by another connection for {self.timeout_ms} ms"
            ) from None
        except sqlite3.Error as exc:
            raise BackupError(f"could not {what}: {exc}") from exc


def _readonly_uri(path: Path) -> str:
    # immutable=1: a backup file is never written, so no locks, no -wal/-shm files beside it.
    return Path(path).resolve().as_uri() + "?mode=ro&immutable=1"
