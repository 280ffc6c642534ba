"""`create_all`'s statements compiled without a connection, shared by the SQLite normalization (run
in an in-memory database) and the server ones (sent as one script, `server/batch.py`).

An index declared twice with the same name and the same definition is created once. Models reach
that easily: `mapped_column(index=True)` under a naming convention such as `ix_%(table_name)s__%(column_0_name)s`
plus an explicit `Index` of the same name on the same column (Prefect 3's `artifact.key`), and
`create_all` then fails with "index ... already exists" although the database would hold one index.
Alembic, which keys the models' indexes by name, sees one as well. Two different definitions under one
name stay two statements, and the database's own error names the clash.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import MetaData
from sqlalchemy.engine.mock import MockConnection
from sqlalchemy.sql.ddl import CreateIndex, ExecutableDDLElement


class NeedsConnection(Exception):
    """A DDL listener ran something other than DDL (rows to insert, say): only a real connection
    runs that faithfully."""


def compiled_create_all(metadata: MetaData, dialect, sink: Callable[[str], None] | None = None) -> list[str] | None:
    """The statements `metadata.create_all` would run on `dialect`, identical repeated indexes once;
    None when that fails (a listener needs a real connection, or a construct only one compiles).
    `sink(text)`, if given, also receives each statement as soon as it is compiled, in order."""
    statements: list[str] = []
    indexes: dict[tuple, str] = {}

    def executor(sql, parameters=None, *_):
        if not isinstance(sql, ExecutableDDLElement) or parameters:
            raise NeedsConnection
        text = str(sql.compile(dialect=dialect))
        if isinstance(sql, CreateIndex) and sql.element.name is not None:
            table = sql.element.table
            key = (None if table is None else table.key, str(sql.element.name))
            if indexes.get(key) == text:
                return
            indexes.setdefault(key, text)
        statements.append(text)
        if sink is not None:
            sink(text)

    try:
        metadata.create_all(MockConnection(dialect, executor), checkfirst=False)
    except Exception:  # noqa: BLE001 - NeedsConnection, or a listener using what a mock lacks (inspect(),
        return None   # exec_driver_sql); the connection path reports genuine model errors
    return statements


def ddl_applies(index, dialect) -> bool:
    """Whether `create_all` creates this index on `dialect`: False for `Index(...).ddl_if(dialect="sqlite")`
    elsewhere (Prefect 3's SQLite-only indexes), as SQLAlchemy's own schema generator decides."""
    rule = getattr(index, "_ddl_if", None)
    if rule is None:
        return True
    return rule._should_execute(CreateIndex(index), index, None, compiler=dialect.ddl_compiler(dialect, None))
