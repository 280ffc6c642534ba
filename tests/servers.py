"""Real PostgreSQL / MariaDB servers for tests: a fresh database per test, dropped afterwards.

URLs come from MIGRATION_TEST_POSTGRES_URL / MIGRATION_TEST_MYSQL_URL. A server that does not
answer skips its tests with the reason, unless MIGRATION_TEST_REQUIRE_SERVERS=1 (CI): then they fail.
"""

from __future__ import annotations

import os
import secrets
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from migration_core import AutoMigrationSystem, MigrationSettings
from migration_core.urls import mask_url

URLS = {
    "postgresql": os.environ.get("MIGRATION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("MIGRATION_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}

HEADER = """\
from sqlalchemy import (MetaData, Table, Column, Integer, BigInteger, String, Text, Float, Boolean, DateTime, Numeric, JSON,
                        Enum, ForeignKey, Index, UniqueConstraint, CheckConstraint, PrimaryKeyConstraint, text, func)
metadata = MetaData()
"""
_counter = iter(range(10**9))
_unavailable: dict[str, str | None] = {}


def _admin_engine(kind: str):
    return create_engine(URLS[kind], poolclass=NullPool, isolation_level="AUTOCOMMIT")


def require_server(kind: str) -> None:
    if kind not in _unavailable:
        try:
            with _admin_engine(kind).connect() as c:
                c.exec_driver_sql("SELECT 1")
            _unavailable[kind] = None
        except Exception as exc:  # noqa: BLE001 - any failure means "no server"
            _unavailable[kind] = f"{kind} server at {mask_url(URLS[kind])} does not answer: {str(exc).splitlines()[0]}"
    reason = _unavailable[kind]
    if reason:
        if os.environ.get("MIGRATION_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(reason + " (MIGRATION_TEST_REQUIRE_SERVERS=1)")
        pytest.skip(reason)


class ServerProject:
    """A fresh database on a real server plus a sequence of model versions."""

    def __init__(self, kind: str, tmp: Path):
        require_server(kind)
        self.kind = kind
        self.tmp = tmp
        self.backups = tmp / "backups"
        self.dbname = f"mt_{secrets.token_hex(5)}"
        with _admin_engine(kind).connect() as c:
            c.exec_driver_sql(f"CREATE DATABASE {self.dbname}")
        self.url = make_url(URLS[kind]).set(database=self.dbname).render_as_string(hide_password=False)
        self.engine = create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    def drop(self) -> None:
        self.engine.dispose()
        with _admin_engine(self.kind).connect() as c:
            if self.kind == "postgresql":
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
            else:
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.dbname}")

    def models(self, body: str) -> str:
        path = self.tmp / f"models_{next(_counter)}.py"
        path.write_text(HEADER + textwrap.dedent(body))
        return f"{path}:metadata"

    def settings(self, models: str, **kw) -> MigrationSettings:
        return MigrationSettings(database_url=self.url, models=models, backup_dir=self.backups, **kw)

    def system(self, body: str, **kw) -> AutoMigrationSystem:
        return AutoMigrationSystem(self.settings(self.models(body), **kw))

    def migrate(self, body: str, **kw):
        opts = {k: kw.pop(k) for k in list(kw) if k in ("allow_destructive", "renames", "create_backup", "dry_run", "timeout_ms")}
        system = self.system(body, **kw)
        result = system.execute_auto_migration(**opts)
        status = system.check_migration_status(renames=opts.get("renames"))
        assert status.migration_needed is False, [c.detail for c in status.changes]
        return result

    def sql(self, statement: str, params=None) -> list[tuple]:
        with self.engine.connect() as c:
            res = c.exec_driver_sql(statement, params) if params else c.exec_driver_sql(statement)
            return [tuple(r) for r in res.fetchall()] if res.returns_rows else []

    def tables(self) -> list[str]:
        if self.kind == "postgresql":
            q = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        else:
            q = f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{self.dbname}' ORDER BY 1"
        return [r[0] for r in self.sql(q) if not r[0].startswith("_migration")]

    def state(self) -> tuple:
        """Schema fingerprint (read by the tool's own catalog reader) and every row of every table."""
        system = AutoMigrationSystem(self.settings("migration_core.examples.orchestrator:Base"))
        conn = system.dialect.connect(write=False)
        try:
            fp = system.dialect.read_live(conn).fingerprint()
        finally:
            conn.close()
        q = '"' if self.kind == "postgresql" else "`"
        rows = {t: sorted(map(repr, self.sql(f"SELECT * FROM {q}{t}{q}"))) for t in self.tables()}
        return fp, rows


@pytest.fixture(params=["postgresql", "mysql"])
def server(request, tmp_path):
    project = ServerProject(request.param, tmp_path)
    try:
        yield project
    finally:
        project.drop()


@pytest.fixture
def pg(tmp_path):
    project = ServerProject("postgresql", tmp_path)
    try:
        yield project
    finally:
        project.drop()


@pytest.fixture
def my(tmp_path):
    project = ServerProject("mysql", tmp_path)
    try:
        yield project
    finally:
        project.drop()
