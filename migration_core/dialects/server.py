"""What PostgreSQL and MariaDB/MySQL share: a sqlite3-like connection face over SQLAlchemy,
metadata lookups for DDL compilation, and the data probes (plain SQL with a quoting function).

Dialect specifics stay in `postgresql/` and `mysql/`; this module only holds code both use
unchanged.
"""

from __future__ import annotations

import re

from typing import Any, Callable

from sqlalchemy import MetaData, create_engine
from sqlalchemy import Table as SaTable
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..diff import Diff
from ..errors import ConfigurationError
from ..snapshot import SchemaSnapshot
from ..urls import mask_url, parse_url


def make_engine(url: str) -> Engine:
    """NullPool: every connection is opened and closed by its user, so nothing lingers on the
    server (tests drop their databases; an idle pooled session would hold them)."""
    return create_engine(parse_url(url), poolclass=NullPool)


class ServerConnection:
    """sqlite3-like face (`execute`, `executemany`, `in_transaction`, `close`) over a SQLAlchemy
    connection in AUTOCOMMIT mode. Transactions are explicit `BEGIN`/`COMMIT` text, so the shared
    history code and the executors drive them the same way on every database, and every statement
    still goes through SQLAlchemy (a `before_cursor_execute` listener sees them all)."""

    def __init__(self, sa: Connection, in_tx: Callable[[Any], bool]):
        self.sa = sa
        self._in_tx = in_tx

    @property
    def driver(self) -> Any:
        return self.sa.connection.driver_connection

    def execute(self, sql: str, params: tuple | list | dict | None = None):
        if params:
            return self.sa.exec_driver_sql(sql, tuple(params) if isinstance(params, list) else params)
        return self.sa.exec_driver_sql(sql)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        if rows:
            self.sa.exec_driver_sql(sql, [tuple(r) for r in rows])

    @property
    def in_transaction(self) -> bool:
        return self._in_tx(self.driver)

    def close(self) -> None:
        self.sa.close()


def connect_server(engine: Engine, in_tx: Callable[[Any], bool]) -> ServerConnection:
    try:
        sa = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise ConfigurationError(f"cannot connect to {mask_url(engine.url)}: {_first_line(exc)}") from None
    return ServerConnection(sa, in_tx)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else exc.__class__.__name__


def sa_table(metadata: MetaData, name: str) -> SaTable | None:
    t = metadata.tables.get(name)
    if t is not None:
        return t
    return next((t for t in metadata.tables.values() if t.name.lower() == name.lower()), None)


def sa_column(metadata: MetaData, table: str, column: str):
    t = sa_table(metadata, table)
    if t is None:
        return None
    return next((c for c in t.columns if c.name.lower() == column.lower()), None)


def sa_index(metadata: MetaData, table: str, name: str):
    t = sa_table(metadata, table)
    if t is None:
        return None
    return next((i for i in t.indexes if i.name and i.name.lower() == name.lower()), None)


_LITERAL = re.compile(r"'(?:[^']|'')*'|[+-]?\d+(?:\.\d+)?")


class SqlProbe:
    """Data checks against `(SELECT old AS new ...)`, so target names work before renames run.

    The SQL is standard except for quoting and the number patterns (`regex_op`), which the
    dialect passes in. Counts are exact: they decide refusals."""

    INT_RE = r"^\s*[+-]?[0-9]+\s*$"
    NUM_RE = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"

    def __init__(self, conn: ServerConnection | None, diff: Diff, live: SchemaSnapshot, target: SchemaSnapshot,
                 quote: Callable[[str], str], as_text: Callable[[str], str], regex_op: str,
                 numeric_kinds: Callable[[str], str | None]):
        self.conn = conn
        self.diff = diff
        self.live = live
        self.target = target
        self.q = quote
        self.as_text = as_text
        self.regex_op = regex_op
        self.numeric_kinds = numeric_kinds

    def _target_col(self, table: str, live_col: str) -> str:
        for (t, old), new in self.diff.column_renames.items():
            if t.lower() == table.lower() and old.lower() == live_col.lower():
                return new
        return live_col

    def _source(self, table: str) -> str | None:
        t = self.live.table(self.diff.live_table(table))
        if t is None or self.conn is None:
            return None
        q = self.q
        exprs = [f"{q(c.name)} AS {q(self._target_col(table, c.name))}" for c in t.columns]
        # A column the plan adds reads as the value every existing row will get: its literal
        # default, else NULL (an expression default is left to the server when it runs).
        present = {self._target_col(table, c.name).lower() for c in t.columns}
        target_t = self.target.table(table)
        for c in target_t.columns if target_t else ():
            if c.name.lower() not in present:
                literal = c.default if c.default is not None and _LITERAL.fullmatch(c.default) else "NULL"
                exprs.append(f"{literal} AS {q(c.name)}")
        return f"(SELECT {', '.join(exprs)} FROM {q(t.name)}) AS src"

    def _scalar(self, sql: str) -> int:
        return int(self.conn.execute(sql).fetchone()[0] or 0)

    def _count(self, table: str, where: str) -> int:
        src = self._source(table)
        return 0 if src is None else self._scalar(f"SELECT count(*) FROM {src} WHERE {where}")

    def row_count(self, table: str) -> int:
        return self._count(table, "1 = 1")

    def null_count(self, table: str, column: str) -> int:
        return self._count(table, f"{self.q(column)} IS NULL")

    def duplicate_count(self, table: str, columns: tuple[str, ...]) -> int:
        src = self._source(table)
        if src is None:
            return 0
        cols = ", ".join(self.q(c) for c in columns)
        not_null = " AND ".join(f"{self.q(c)} IS NOT NULL" for c in columns)
        return self._scalar(f"SELECT count(*) FROM (SELECT 1 AS x FROM {src} WHERE {not_null} GROUP BY {cols} HAVING count(*) > 1) AS d")

    def unconvertible_count(self, table: str, column: str, old_type: str, new_type: str) -> int | None:
        """Values whose text is not a number when the new type is numeric; other targets are
        left to the server's own conversion, which fails the statement (and so the plan)."""
        kind = self.numeric_kinds(new_type)
        if kind is None or self.numeric_kinds(old_type) is not None:
            return 0
        pattern = self.INT_RE if kind == "int" else self.NUM_RE
        c = self.as_text(self.q(column))
        return self._count(table, f"{self.q(column)} IS NOT NULL AND NOT ({c} {self.regex_op} '{pattern}')")

    def too_long_count(self, table: str, column: str, max_length: int) -> int:
        return self._count(table, f"char_length({self.as_text(self.q(column))}) > {int(max_length)}")

    def orphan_count(self, table, columns, ref_table, ref_columns) -> int:
        q = self.q
        not_null = " AND ".join(f"src.{q(c)} IS NOT NULL" for c in columns)
        ref_src = self._source(ref_table)
        if ref_src is None:
            return self._count(table, not_null)  # the parent is created by this plan: it is empty
        ref_src = ref_src[: -len(" AS src")] + " AS ref"
        match = " AND ".join(f"ref.{q(r)} = src.{q(c)}" for c, r in zip(columns, ref_columns))
        return self._count(table, f"{not_null} AND NOT EXISTS (SELECT 1 FROM {ref_src} WHERE {match})")

    def check_violation_count(self, table: str, expression: str) -> int | None:
        try:
            return self._count(table, f"NOT ({expression})")
        except SQLAlchemyError:
            return None  # not evaluable outside the table; the server checks it when the constraint is added
