"""The project interface shared by the SQLite `Project` (conftest.py) and the server `ServerProject`
(servers.py): one database plus a sequence of model versions, so that a test written against it runs
unchanged on SQLite, PostgreSQL and MariaDB (the `anydb` fixture in conftest.py yields either).

Besides `models / settings / system / migrate`, every project offers:
  kind           "sqlite", "postgresql" or "mysql"
  param          the DB-API placeholder for `sql(statement, params)`
  sql(...)       run one statement, return its rows as tuples
  enforced(...)  run one statement with foreign keys enforced (SQLite enforces them per connection only)
  tables()       user tables, sorted (no `_migration*` tables)
  state()        a fingerprint of the user schema and every row of every user table
  snapshot()     the strictest "nothing changed" check available (SQLite: the file's bytes; servers: state())
  nullable(t, c), indexes(t), fk_targets(t)   catalog facts, read straight from the database
"""

from __future__ import annotations

from pathlib import Path

from helpers_core import write_models
from migration_core import AutoMigrationSystem, MigrationSettings

HEADER = """\
from sqlalchemy import (MetaData, Table, Column, Integer, BigInteger, String, Text, Float, Boolean, DateTime, Numeric, JSON,
                        Enum, ForeignKey, ForeignKeyConstraint, Index, UniqueConstraint, CheckConstraint, PrimaryKeyConstraint,
                        Sequence, Identity, text, func)
metadata = MetaData()
"""

MIGRATE_OPTIONS = ("allow_destructive", "renames", "create_backup", "dry_run", "timeout_ms")


class BaseProject:
    kind: str
    param: str
    tmp: Path
    backups: Path

    @property
    def url(self) -> str:
        raise NotImplementedError

    def models(self, body: str) -> str:
        """Write a models file with a fresh name (each path is imported once per process)."""
        return write_models(self.tmp, body, header=HEADER)

    def settings(self, models: str, **kw) -> MigrationSettings:
        return MigrationSettings(database_url=self.url, models=models, backup_dir=self.backups, **kw)

    def system(self, body: str, **kw) -> AutoMigrationSystem:
        return AutoMigrationSystem(self.settings(self.models(body), **kw))

    def migrate(self, body: str, **kw):
        """Apply `body` and check that nothing is left to do afterwards."""
        opts = {k: kw.pop(k) for k in list(kw) if k in MIGRATE_OPTIONS}
        system = self.system(body, **kw)
        result = system.execute_auto_migration(**opts)
        status = system.check_migration_status(renames=opts.get("renames"))
        assert status.migration_needed is False, [c.detail for c in status.changes]
        return result

    def insert(self, table: str, rows) -> None:
        values = ", ".join("(" + ", ".join([self.param] * len(r)) + ")" for r in rows)
        self.sql(f"INSERT INTO {table} VALUES {values}", tuple(v for r in rows for v in r))

    # Implemented per kind.
    def sql(self, statement: str, params=None) -> list[tuple]:
        raise NotImplementedError

    def enforced(self, statement: str) -> None:
        self.sql(statement)

    def tables(self) -> list[str]:
        raise NotImplementedError

    def state(self) -> tuple:
        raise NotImplementedError

    def snapshot(self):
        return self.state()

    def nullable(self, table: str, column: str) -> bool:
        raise NotImplementedError

    def indexes(self, table: str) -> set[str]:
        raise NotImplementedError

    def fk_targets(self, table: str) -> list[str]:
        raise NotImplementedError
