"""Shared fixtures: real SQLite files in tmp dirs (`project`), and `anydb`, which yields the same project
interface (projects.py) on SQLite, PostgreSQL and MariaDB in turn."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from projects import BaseProject
from servers import KINDS, server_project


class Project(BaseProject):
    """One SQLite file plus a sequence of model versions."""

    kind = "sqlite"
    param = "?"

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.db = tmp_path / "app.db"
        self.backups = tmp_path / "backups"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def sql(self, statement: str, params=()) -> list[tuple]:
        conn = sqlite3.connect(self.db)
        try:
            with conn:
                return conn.execute(statement, params or ()).fetchall()
        finally:
            conn.close()

    def script(self, script: str) -> None:
        conn = sqlite3.connect(self.db)
        try:
            conn.executescript(script)
            conn.commit()
        finally:
            conn.close()

    def enforced(self, statement: str) -> None:
        self.script(f"PRAGMA foreign_keys=ON; {statement};")

    def schema_sql(self) -> dict[str, str]:
        return {n: s for n, s in self.sql("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE '\\_migration%' ESCAPE '\\'")}

    def file_bytes(self) -> bytes:
        return self.db.read_bytes()

    def tables(self) -> list[str]:
        rows = self.sql("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                        "AND name NOT LIKE '\\_migration%' ESCAPE '\\' ORDER BY 1")
        return [r[0] for r in rows]

    def state(self) -> tuple:
        rows = {t: sorted(map(repr, self.sql(f'SELECT * FROM "{t}"'))) for t in self.tables()}
        return self.schema_sql(), rows

    def snapshot(self) -> bytes:
        return self.file_bytes()

    def nullable(self, table: str, column: str) -> bool:
        [(notnull,)] = self.sql("SELECT \"notnull\" FROM pragma_table_info(?) WHERE name = ?", (table, column))
        return notnull == 0

    def indexes(self, table: str) -> set[str]:
        return {r[0] for r in self.sql("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?", (table,))}

    def fk_targets(self, table: str) -> list[str]:
        return [r[2] for r in self.sql("SELECT * FROM pragma_foreign_key_list(?) ORDER BY id", (table,))]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture(params=["sqlite", *KINDS])
def anydb(request, tmp_path: Path):
    """The same test on a SQLite file, a fresh PostgreSQL database and a fresh MariaDB database."""
    if request.param == "sqlite":
        yield Project(tmp_path)
    else:
        with server_project(request.param, tmp_path) as p:
            yield p
