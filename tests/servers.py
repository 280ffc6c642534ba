"""Real PostgreSQL / MariaDB servers for tests: a fresh database per test, dropped afterwards.

URLs come from MIGRATION_TEST_POSTGRES_URL / MIGRATION_TEST_MYSQL_URL. A server that does not
answer skips its tests with the reason, unless MIGRATION_TEST_REQUIRE_SERVERS=1 (CI): then they fail.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from migration_core import AutoMigrationSystem
from migration_core.urls import mask_url
from projects import BaseProject

URLS = {
    "postgresql": os.environ.get("MIGRATION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("MIGRATION_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
KINDS = list(URLS)
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


class ServerProject(BaseProject):
    """A fresh database on a real server plus a sequence of model versions."""

    param = "%s"

    def __init__(self, kind: str, tmp: Path):
        require_server(kind)
        self.kind = kind
        self.tmp = tmp
        self.backups = tmp / "backups"
        self.dbname = f"mt_{secrets.token_hex(5)}"
        with _admin_engine(kind).connect() as c:
            c.exec_driver_sql(f"CREATE DATABASE {self.dbname}")
        self._url = make_url(URLS[kind]).set(database=self.dbname).render_as_string(hide_password=False)
        self.engine = create_engine(self._url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    @property
    def url(self) -> str:
        return self._url

    def drop(self) -> None:
        self.engine.dispose()
        with _admin_engine(self.kind).connect() as c:
            if self.kind == "postgresql":
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
            else:
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.dbname}")

    def sql(self, statement: str, params=None) -> list[tuple]:
        with self.engine.connect() as c:
            res = c.exec_driver_sql(statement, params) if params else \
                c.exec_driver_sql(statement, execution_options={"no_parameters": True})  # a `%` is a `%`
            return [tuple(r) for r in res.fetchall()] if res.returns_rows else []

    def _schema(self) -> str:
        return "public" if self.kind == "postgresql" else self.dbname

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

    def builtin_backup(self, system):
        """The server's own logical backup engine (what backups fall back to without pg_dump / mysqldump)
        for `system`, and a BackupManager that uses it."""
        from migration_core.backup import BackupManager

        if self.kind == "postgresql":
            from migration_core.dialects.postgresql.logical import PgLogicalBackupEngine as engine_class
        else:
            from migration_core.dialects.mysql.backup import LogicalBackupEngine as engine_class
        engine = engine_class(lambda: system.dialect.connect(write=True), system.dialect.schema, system.dialect._fingerprint)
        return engine, BackupManager(system.settings, engine)

    def nullable(self, table: str, column: str) -> bool:
        [(flag,)] = self.sql("SELECT is_nullable FROM information_schema.columns "
                             "WHERE table_schema = %s AND table_name = %s AND column_name = %s", (self._schema(), table, column))
        return flag == "YES"

    def indexes(self, table: str) -> set[str]:
        if self.kind == "postgresql":
            return {r[0] for r in self.sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s", (table,))}
        return {r[0] for r in self.sql("SELECT DISTINCT index_name FROM information_schema.statistics "
                                       "WHERE table_schema = %s AND table_name = %s", (self.dbname, table))}

    def fk_targets(self, table: str) -> list[str]:
        if self.kind == "postgresql":
            q = ("SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
                 "AND conrelid = (SELECT oid FROM pg_class WHERE relname = %s AND relnamespace = 'public'::regnamespace) ORDER BY conname")
            return [r[0] for r in self.sql(q, (table,))]
        return [r[0] for r in self.sql("SELECT referenced_table_name FROM information_schema.referential_constraints "
                                       "WHERE constraint_schema = %s AND table_name = %s ORDER BY constraint_name", (self.dbname, table))]


@contextlib.contextmanager
def server_project(kind: str, tmp_path: Path):
    project = ServerProject(kind, tmp_path)
    try:
        yield project
    finally:
        project.drop()


@pytest.fixture(params=KINDS)
def server(request, tmp_path):
    with server_project(request.param, tmp_path) as p:
        yield p


@pytest.fixture
def pg(tmp_path):
    with server_project("postgresql", tmp_path) as p:
        yield p


@pytest.fixture
def my(tmp_path):
    with server_project("mysql", tmp_path) as p:
        yield p
