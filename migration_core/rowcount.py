"""Rows per table, so a rollback can say what it would take away or bring back before it runs.

A backup records its counts when it is taken (`BackupInfo.table_rows`); a rollback preview
compares them with the live database's counts. Every user table is counted, ignored ones
included (a restore brings them back too); the history table is not (a rollback keeps it).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from .dialects.sqlite.catalog import HISTORY_TABLE
from .results import TableRows

log = logging.getLogger("migration_core")


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")]
    return {n: conn.execute(f'SELECT count(*) FROM "{n.replace(chr(34), chr(34) * 2)}"').fetchone()[0]
            for n in names if n != HISTORY_TABLE}


def sqlite_file_row_counts(path: Path) -> dict[str, int]:
    """Rows per table of a SQLite file (a backup), opened read-only."""
    conn = sqlite3.connect(f"file:{Path(path).as_posix()}?mode=ro", uri=True)
    try:
        return _sqlite_counts(conn)
    finally:
        conn.close()


def live_row_counts(dialect) -> dict[str, int] | None:
    """Rows per table of the live database now; None when the database does not exist yet
    (SQLite file missing). Opens a read-only connection of its own."""
    conn = dialect.connect(write=False)
    if conn is None:
        return None
    try:
        if dialect.name == "sqlite":
            return _sqlite_counts(conn)
        from sqlalchemy import inspect

        schema = dialect.schema()
        quote = conn.sa.dialect.identifier_preparer.quote
        names = sorted(inspect(conn.sa).get_table_names(schema=schema))
        return {n: conn.execute(f"SELECT count(*) FROM {quote(schema)}.{quote(n)}").fetchone()[0]
                for n in names if n != HISTORY_TABLE}
    finally:
        conn.close()


def backup_row_counter(dialect):
    """What BackupManager calls with a freshly written backup file: SQLite counts the file itself
    (exactly what a restore brings back); a server is counted live, just after its dump, under
    the migration lock. A failure to count never fails the backup: the counts are then unknown."""

    def count(backup_file: Path) -> dict[str, int] | None:
        try:
            return sqlite_file_row_counts(backup_file) if dialect.name == "sqlite" else live_row_counts(dialect)
        except Exception:
            log.warning("could not count the rows of the backup; a rollback preview will not show them", exc_info=True)
            return None

    return count


def row_changes(now: dict[str, int] | None, in_backup: dict[str, int] | None) -> list[TableRows]:
    """Per table, what restoring the backup does to its rows (negative: rows lost), largest loss first."""
    now = now or {}
    names = sorted(set(now) | set(in_backup or {}))
    out = []
    for name in names:
        current = now.get(name)
        restored = None if in_backup is None else in_backup.get(name)
        if in_backup is not None and restored is None:
            restored_rows, note = 0, "not in the backup: dropped"
        elif current is None:
            restored_rows, note = restored, "not in the database now: recreated"
        else:
            restored_rows, note = restored, ""
        change = None if restored_rows is None else restored_rows - (current or 0)
        out.append(TableRows(table=name, rows_now=current, rows_after=restored_rows, change=change, note=note))
    out.sort(key=lambda t: (t.change if t.change is not None else 0, t.table))
    return out
