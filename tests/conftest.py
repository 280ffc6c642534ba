"""Shared fixtures: real SQLite files in tmp dirs and models files written per schema version."""

from __future__ import annotations

import itertools
import sqlite3
import textwrap
from pathlib import Path

import pytest

from migration_core import AutoMigrationSystem, MigrationSettings

_counter = itertools.count()

HEADER = """\
from sqlalchemy import (MetaData, Table, Column, Integer, String, Text, Float, Boolean, DateTime, Numeric, JSON,
                        ForeignKey, Index, UniqueConstraint, CheckConstraint, PrimaryKeyConstraint, text)
metadata = MetaData()
"""


class Project:
    """One database plus a sequence of model versions."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.db = tmp_path / "app.db"
        self.backups = tmp_path / "backups"

    def models(self, body: str) -> str:
        """Write a models file with a fresh name (each path is imported once per process)."""
        path = self.tmp / f"models_{next(_counter)}.py"
        path.write_text(HEADER + textwrap.dedent(body))
        return f"{path}:metadata"

    def settings(self, models: str, **kw) -> MigrationSettings:
        return MigrationSettings(database_url=f"sqlite:///{self.db}", models=models, backup_dir=self.backups, **kw)

    def system(self, body: str, **kw) -> AutoMigrationSystem:
        return AutoMigrationSystem(self.settings(self.models(body), **kw))

    def migrate(self, body: str, **kw):
        opts = {k: kw.pop(k) for k in list(kw) if k in ("allow_destructive", "renames", "create_backup", "dry_run", "timeout_ms")}
        system = self.system(body, **kw)
        result = system.execute_auto_migration(**opts)
        assert system.check_migration_status(renames=opts.get("renames")).migration_needed is False
        return result

    def sql(self, statement: str, params=()) -> list[tuple]:
        conn = sqlite3.connect(self.db)
        try:
            with conn:
                return conn.execute(statement, params).fetchall()
        finally:
            conn.close()

    def script(self, script: str) -> None:
        conn = sqlite3.connect(self.db)
        try:
            conn.executescript(script)
            conn.commit()
        finally:
            conn.close()

    def schema_sql(self) -> dict[str, str]:
        return {n: s for n, s in self.sql("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE '\\_migration%' ESCAPE '\\'")}

    def file_bytes(self) -> bytes:
        return self.db.read_bytes()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
