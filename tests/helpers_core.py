"""Helpers for the property, crash/concurrency and bad-input tests (real SQLite files, no mocks)."""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from migration_core import AutoMigrationSystem, MigrationSettings

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("migration-mcp"))

MODELS_HEADER = """\
from sqlalchemy import (MetaData, Table, Column, Integer, BigInteger, SmallInteger, String, Text, Float, Boolean,
                        DateTime, Date, Time, Numeric, JSON, LargeBinary, Unicode, Enum, ForeignKey, Index,
                        UniqueConstraint, CheckConstraint, text, func)
metadata = MetaData()
"""

_counter = itertools.count()


def write_models(directory: Path, body: str, *, header: str = MODELS_HEADER, prefix: str = "models") -> str:
    """Write a models file under a name never used before in this process; return `path:metadata`."""
    path = Path(directory) / f"{prefix}_{os.getpid()}_{next(_counter)}.py"
    path.write_text(header + textwrap.dedent(body))
    return f"{path}:metadata"


def settings_for(db: Path, models: str, backup_dir: Path, **kw) -> MigrationSettings:
    return MigrationSettings(database_url=f"sqlite:///{db}", models=models, backup_dir=backup_dir, **kw)


def system_for(db: Path, models: str, backup_dir: Path, **kw) -> AutoMigrationSystem:
    return AutoMigrationSystem(settings_for(db, models, backup_dir, **kw))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def user_schema(db: Path) -> dict[str, str]:
    """name -> CREATE text of every user object (the history table and SQLite's own excluded)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_migration%' ESCAPE '\\'"
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


def user_dump(db: Path) -> list[str]:
    """A logical dump (schema + rows) of everything except the migration history table."""
    conn = sqlite3.connect(db)
    try:
        return [line for line in conn.iterdump() if "_migration_history" not in line]
    finally:
        conn.close()


def query(db: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def integrity(db: Path) -> list[str]:
    return [r[0] for r in query(db, "PRAGMA integrity_check")]


def history_rows(db: Path) -> list[dict]:
    """Raw rows of the history table (empty when it does not exist yet)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        exists = conn.execute("SELECT 1 FROM sqlite_schema WHERE name = '_migration_history'").fetchone()
        if not exists:
            return []
        return [dict(r) for r in conn.execute("SELECT * FROM _migration_history ORDER BY started_at")]
    finally:
        conn.close()


def run_cli(*args: str, env: dict | None = None, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    for key in ("MIGRATION_DATABASE_URL", "MIGRATION_MODELS", "MIGRATION_BACKUP_DIR"):
        if env is None or key not in env:
            full_env.pop(key, None)
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=str(cwd or ROOT))


def make_big_table(db: Path, rows: int) -> None:
    """Fill table `big` (created beforehand) with `rows` deterministic rows, fast (one INSERT .. SELECT)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute(
            "INSERT INTO big (id, name, amount, note) "
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?) "
            "SELECT n, 'name-' || n, n * 3, printf('note %08d padding padding padding', n) FROM seq",
            (rows,),
        )
        conn.commit()
    finally:
        conn.close()


BIG_OLD = """
Table("big", metadata,
      Column("id", Integer, primary_key=True),
      Column("name", String(50), nullable=False),
      Column("amount", Integer, nullable=False),
      Column("note", Text),
      Index("ix_big_name", "name"),
      Index("ix_big_amount", "amount"))
"""

# `amount` INTEGER -> BIGINT: a type change, so SQLite needs the 12-step rebuild; every value converts.
BIG_NEW = BIG_OLD.replace('Column("amount", Integer', 'Column("amount", BigInteger')
