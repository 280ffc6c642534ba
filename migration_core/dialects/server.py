"""What PostgreSQL and MariaDB/MySQL share: a sqlite3-like connection face over SQLAlchemy,
metadata lookups for DDL compilation, the data probes (plain SQL with a quoting function), the
polled migration lock, the backup engines' common part and `ServerDialect`, the Dialect both
subclass.

Dialect specifics stay in `postgresql/` and `mysql/`, as class attributes and hook methods of
their subclasses; nothing here asks which dialect it serves.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import MetaData, create_engine
from sqlalchemy import Table as SaTable
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..diff import Diff
from ..errors import BackupError, ConfigurationError, LockTimeout
from ..lock import LockHolder, LockStatus
from ..plan import Plan
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


def message(exc: BaseException) -> str:
    """The driver's error text on one line."""
    orig = getattr(exc, "orig", None) or exc
    return " ".join(str(orig).split())


def squeeze_expr(text: str) -> str:
    """Collapse white space and drop redundant outer parentheses: the last step of both
    catalogs' expression normalization, after each has removed its own decorations."""
    out = re.sub(r"\s+", " ", text)
    while out.startswith("(") and out.endswith(")") and _balanced(out[1:-1]):
        out = out[1:-1].strip()
    return out


def _balanced(s: str) -> bool:
    depth, quoted = 0, False
    for ch in s:
        if ch == "'":
            quoted = not quoted
        elif not quoted:
            depth += ch == "("
            depth -= ch == ")"
            if depth < 0:
                return False
    return depth == 0


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


def _base(type_: str) -> str:
    return type_.split("(", 1)[0].split(" ", 1)[0].upper()


def _fraction_digits(d, type_: str) -> int:
    m = re.search(r"\((\d+)\)", type_)
    return int(m[1]) if m else d.default_time_precision


def _int_narrower(d, new_type: str, old_type: str) -> bool:
    new, old = d._int_range(new_type), d._int_range(old_type)
    return new is not None and (old is None or new[0] > old[0] or new[1] < old[1])


_PRECISION_SCALE = re.compile(r"^(?:NUMERIC|DECIMAL)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", re.I)
_LITERAL = re.compile(r"'(?:[^']|'')*'|[+-]?\d+(?:\.\d+)?")


@dataclass
class SqlProbe:
    """Data checks against `(SELECT old AS new ...)`, so target names work before renames run.

    The SQL is standard; the dialect supplies quoting, casts, the regex operator and its type
    families (`ServerDialect` attributes). Counts are exact: they decide refusals."""

    INT_RE = r"^\s*[+-]?[0-9]+\s*$"
    NUM_RE = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"

    conn: ServerConnection | None
    diff: Diff
    live: SchemaSnapshot
    target: SchemaSnapshot
    dialect: ServerDialect
    _ready: bool = field(default=False, init=False)  # probe_setup has run

    def q(self, name: str) -> str:
        return self.dialect.quote_ident(name)

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
        if not self._ready:
            for stmt in self.dialect.probe_setup:
                self.conn.execute(stmt)
            self._ready = True
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

    def _exact(self, col: str, old_kind: str | None) -> str:
        """The column's exact decimal value; text that is not a number gives NULL (those values
        are counted by the pattern check), floats go by their shortest round-trip text."""
        d = self.dialect
        if old_kind is not None:
            return d.numeric_cast.format(col)
        text = d.text_cast.format(col)
        return f"CASE WHEN {text} {d.regex_op} '{self.NUM_RE}' THEN {d.numeric_cast.format(text)} END"

    def unconvertible_count(self, table: str, column: str, old_type: str, new_type: str) -> int | None:
        """Values a numeric target cannot hold at all: text that is not a number, and numbers out
        of its range (which MySQL without strict mode would clamp: 100000 -> SMALLINT stores
        32767). Other failures (text to date) make the server fail the statement, and so the plan."""
        d = self.dialect
        kind = d._numeric_kind(new_type)
        if kind is None:
            return 0
        old_kind = d._numeric_kind(old_type)
        col = self.q(column)
        bad = []
        if old_kind is None:
            pattern = self.INT_RE if kind == "int" else self.NUM_RE
            bad.append(f"NOT ({d.text_cast.format(col)} {d.regex_op} '{pattern}')")
        exact = self._exact(col, old_kind)
        if kind == "int":
            bounds = d._int_range(new_type)
            if bounds is not None and (old_kind != "int" or _int_narrower(d, new_type, old_type)):
                bad.append(f"{exact} < {bounds[0]} OR {exact} > {bounds[1]}")
        else:
            size = _PRECISION_SCALE.search(new_type)
            if size is not None:
                precision, scale = int(size[1]), int(size[2] or 0)
                bad.append(f"ABS(ROUND({exact}, {scale})) >= {10 ** (precision - scale)}")
        return self._count(table, f"{col} IS NOT NULL AND ({' OR '.join(bad)})") if bad else 0

    def lossy_count(self, table: str, column: str, old_type: str, new_type: str) -> tuple[int, str] | None:
        """Values the new type keeps only approximately, which the server converts without a word:
        fractions rounded (2.5 -> INTEGER stores 3; 1.756 -> NUMERIC(10,2) stores 1.76), digits a
        float cannot hold (2**53 + 1 -> DOUBLE; double -> single precision), a timestamp's time of
        day or fractional seconds, numbers other than 0 and 1 made booleans."""
        d = self.dialect
        col = self.q(column)
        kind, old_kind = d._numeric_kind(new_type), d._numeric_kind(old_type)
        float_kind = d.float_types.get(_base(new_type))
        if kind is not None and (old_kind is not None or d.temporal_types.get(_base(old_type)) is None):
            exact = self._exact(col, old_kind)
            if float_kind is not None and d.float_types.get(_base(old_type)) != float_kind:
                as_float = d.numeric_cast.format(d.float_casts[float_kind].format(exact if old_kind is None else col))
                return (self._count(table, f"{as_float} <> {exact}"),
                        f"stored with {'single' if float_kind == 'single' else 'double'} precision")
            if kind == "int" and old_kind != "int":
                return self._count(table, f"{exact} <> FLOOR({exact})"), "rounded to whole numbers"
            size = _PRECISION_SCALE.search(new_type)
            if kind == "num" and size is not None and old_kind != "int":
                scale = int(size[2] or 0)
                # A value too small for the exact cast reads as 0: count it as rounded too.
                tiny = f" OR ({exact} = 0 AND {col} <> 0)" if old_kind is not None else ""
                return (self._count(table, f"ROUND({exact}, {scale}) <> {exact}{tiny}"),
                        f"rounded to {scale} decimal places")
            return None
        if kind is None and old_kind is not None and _base(new_type) in ("BOOLEAN", "BOOL"):
            return self._count(table, f"{col} NOT IN (0, 1)"), "collapsed to true/false"
        old_t, new_t = d.temporal_types.get(_base(old_type)), d.temporal_types.get(_base(new_type))
        if old_t == "datetime" and new_t == "date":
            return self._count(table, f"CAST({col} AS DATE) <> {col}"), "cut to the date (the time of day is lost)"
        if old_t == new_t == "datetime" and (digits := _fraction_digits(d, new_type)) < _fraction_digits(d, old_type):
            cast = d.time_cast.format(type=new_type, digits=digits)
            return self._count(table, f"CAST({col} AS {cast}) <> {col}"), f"rounded to {digits} fractional second digits"
        return None

    def too_long_count(self, table: str, column: str, max_length: int) -> int:
        return self._count(table, f"char_length({self.dialect.text_cast.format(self.q(column))}) > {int(max_length)}")

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


class ServerLock:
    """Cross-process migration lock held by a dedicated session. Acquiring is polled with a
    non-blocking call, so a waiter never blocks inside the server and can name the holder when
    it gives up; the server frees the lock when the holder's session ends, so a crashed migration
    never wedges the database. Subclasses give the SQL (`%s` is the lock id) and the labels."""

    acquire_sql: str  # true when the lock was taken
    release_sql: str
    timeout_label: str  # ends the timeout message; `{id}` is the lock id
    status_label: str
    POLL_S = 0.05

    def __init__(self, engine: Engine, lock_id, timeout_ms: int):
        self.engine = engine
        self.lock_id = lock_id
        self.timeout_ms = timeout_ms

    def _tag(self, conn: ServerConnection, purpose: str) -> None:
        """Mark the session so that other waiters can tell who holds the lock."""

    def _holder(self, conn: ServerConnection) -> LockHolder | None:
        raise NotImplementedError

    @contextmanager
    def acquire(self, purpose: str) -> Iterator[LockHolder]:
        start = time.monotonic()
        conn = connect_server(self.engine, lambda d: False)
        try:
            self._tag(conn, purpose)
            while not conn.execute(self.acquire_sql, (self.lock_id,)).scalar():
                if time.monotonic() - start >= self.timeout_ms / 1000:
                    holder = self._holder(conn)
                    who = holder.describe() if holder else "a session that has just released it"
                    raise LockTimeout(
                        f"could not acquire the migration lock for {mask_url(self.engine.url)} (for {purpose!r}) after waiting "
                        f"{(time.monotonic() - start) * 1000:.0f} ms (timeout {self.timeout_ms} ms): it is held by {who} "
                        f"({self.timeout_label.format(id=self.lock_id)})")
                time.sleep(self.POLL_S)
            try:
                yield LockHolder(os.getpid(), socket.gethostname(), purpose, datetime.now(UTC).isoformat())
            finally:
                conn.execute(self.release_sql, (self.lock_id,))
        finally:
            conn.close()

    def status(self) -> LockStatus:
        conn = connect_server(self.engine, lambda d: False)
        try:
            holder = self._holder(conn)
        finally:
            conn.close()
        return LockStatus(self.status_label.format(id=self.lock_id), held=holder is not None, holder=holder, stale_info=False)


def run_tool(args: list[str], env: dict[str, str], timeout_s: float, what: str, *, rolled_back: bool = False,
             **kw) -> subprocess.CompletedProcess:
    """Run a client tool (pg_dump, mysqldump, ...); its last stderr lines become the BackupError.
    `rolled_back`: the tool ran in one transaction, so a failure changed nothing (and says so)."""
    undone = "; rolled back" if rolled_back else ""
    try:
        proc = subprocess.run(args, env=env, timeout=timeout_s, **kw)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} took longer than {timeout_s:.0f} s{undone}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        failed = "failed and was rolled back" if rolled_back else "failed"
        raise BackupError(f"{what} {failed}: {'; '.join(err[-3:]) or f'exit code {proc.returncode}'}")
    return proc


class ServerBackupEngine:
    """What every server backup engine keeps: how to connect, the managed schema (asked when
    needed: PostgreSQL learns it on the first connection) and the live schema's fingerprint."""

    def __init__(self, connect: Callable[[], ServerConnection], schema: Callable[[], str],
                 fingerprint: Callable[[], str | None]):
        self._connect = connect
        self._schema = schema
        self._fingerprint = fingerprint

    def _read(self, path: Path) -> Any:
        """Parse a backup file, raising BackupError when it is not a complete one."""
        raise NotImplementedError

    def check_backup_file(self, path: Path) -> str | None:
        try:
            self._read(path)
        except BackupError as exc:
            return str(exc)
        return None

    def schema_fingerprint(self) -> str | None:
        return self._fingerprint()


class ToolBackupEngine(ServerBackupEngine):
    """A backup made and restored by the server's client tools, which connect from the URL
    themselves (the password through the environment, never on a command line)."""

    def __init__(self, url: URL, connect: Callable[[], ServerConnection], schema: Callable[[], str],
                 fingerprint: Callable[[], str | None], timeout_ms: int = 600000):
        super().__init__(connect, schema, fingerprint)
        self.url = url
        self.timeout_s = timeout_ms / 1000


class ServerDialect:
    """The Dialect protocol's common part for PostgreSQL and MariaDB/MySQL. Each subclass names
    its catalog reader, planner, lock, backup engines and driver details, and keeps what really
    differs (scratch normalization, plan execution, integrity checks) in its own package."""

    name: str
    title: str  # in messages
    drivers: tuple[str, ...]  # accepted SQLAlchemy drivers; the first is added to a bare URL
    bare_names: tuple[str, ...]  # drivernames without a driver, completed with drivers[0]
    driver_hint: str
    explicit_schema_hint = ""
    numeric_types: dict[str, str]  # base type name -> "int" | "num", for the conversion probe
    int_ranges: dict[str, tuple[int, int]]  # base integer type name -> (min, max), signed
    float_types: dict[str, str]  # base type name -> "single" | "double"
    float_casts: dict[str, str]  # "single" | "double" -> cast of `{}` to that float
    temporal_types: dict[str, str]  # base type name -> "datetime" | "date"
    default_time_precision: int  # fractional second digits of a DATETIME/TIMESTAMP without (n)
    time_cast = "{type}"  # the CAST target for a datetime type (`type`) with `digits` fractional digits
    write_session_setup: tuple[str, ...] = ()  # run on every connection that may change the database
    probe_setup: tuple[str, ...] = ()  # run once before a probe's first data check
    text_cast: str  # `{}` is the expression
    numeric_cast: str  # `{}` is a number column, or numeric text; gives its exact decimal value
    regex_op: str
    client_tools: tuple[tuple[str, ...], ...]  # each entry: alternative names of one tool the dump needs
    lock_class: type[ServerLock]
    tool_backup_class: type[ToolBackupEngine]
    logical_backup_class: type[ServerBackupEngine]
    planner_class: type

    def __init__(self, settings):
        self.settings = settings
        self.url = parse_url(settings.database_url)
        if self.url.drivername in self.bare_names:
            self.url = self.url.set(drivername=f"{self.url.drivername}+{self.drivers[0]}")
        elif self.url.get_driver_name() not in self.drivers:
            raise ConfigurationError(f"{self.title} URLs must use {self.driver_hint}, not {self.url.drivername}")
        self.url = self._check_url(self.url)
        self.engine = make_engine(self.url)
        self.ignore = tuple(settings.ignore_tables)

    def _check_url(self, url: URL) -> URL:
        return url

    # Hooks: the catalog reader and quoting, the transaction test on the driver connection, the error text.
    @staticmethod
    def read_snapshot(conn, schema: str, ignore: tuple[str, ...] = ()) -> SchemaSnapshot:
        raise NotImplementedError

    @staticmethod
    def quote_ident(name: str) -> str:
        raise NotImplementedError

    @staticmethod
    def _in_tx(driver) -> bool:
        raise NotImplementedError

    _message = staticmethod(message)

    def schema(self) -> str:
        raise NotImplementedError

    def _lock_id(self):
        raise NotImplementedError

    def _create_in_scratch(self, conn: ServerConnection, metadata: MetaData) -> SchemaSnapshot:
        """Create the models in a scratch schema, read it like the live one, leave nothing behind."""
        raise NotImplementedError

    # -- connections ---------------------------------------------------------------------
    def database_exists(self) -> bool:
        return True  # a server database must exist before we can connect; connect() says so clearly

    def connect(self, *, write: bool) -> ServerConnection:
        conn = connect_server(self.engine, self._in_tx)
        try:
            for stmt in self.write_session_setup if write else ():
                conn.execute(stmt)
        except BaseException:
            conn.close()
            raise
        return conn

    # -- schema --------------------------------------------------------------------------
    def read_live(self, conn: ServerConnection | None) -> SchemaSnapshot:
        return self.read_snapshot(conn, self.schema(), self.ignore)

    def normalize_target(self, metadata: MetaData) -> SchemaSnapshot:
        """The models as this server stores them: created in a scratch schema and read back with
        the live reader, so both sides of the diff are normalized alike."""
        schemas = sorted({t.schema for t in metadata.tables.values() if t.schema})
        if schemas:
            raise ConfigurationError(f"tables with an explicit schema ({', '.join(schemas)}) are not supported"
                                     + self.explicit_schema_hint)
        conn = self.connect(write=False)
        try:
            return self._create_in_scratch(conn, metadata)
        except SQLAlchemyError as exc:
            raise ConfigurationError(f"the models cannot be created on {self.title}: {self._message(exc)}") from None
        finally:
            conn.close()

    def make_plan(self, conn, live: SchemaSnapshot, target: SchemaSnapshot, diff: Diff, metadata: MetaData) -> Plan:
        return self.planner_class(metadata, self.engine.dialect, live, target, self.settings, conn).plan(diff)

    def probe(self, conn, diff: Diff, live: SchemaSnapshot, target: SchemaSnapshot) -> SqlProbe:
        return SqlProbe(conn, diff, live, target, self)

    def _numeric_kind(self, type_: str) -> str | None:
        return self.numeric_types.get(_base(type_))

    def _int_range(self, type_: str) -> tuple[int, int] | None:
        bounds = self.int_ranges.get(_base(type_))
        if bounds is None:
            return None
        return (0, 2 * bounds[1] + 1) if "UNSIGNED" in type_.upper() else bounds

    # -- infrastructure ------------------------------------------------------------------
    def lock(self, timeout_ms: int) -> ServerLock:
        return self.lock_class(self.engine, self._lock_id(), timeout_ms)

    def backup_engine(self) -> ServerBackupEngine:
        """The client tools' dump when they are installed; otherwise the built-in logical dump."""
        connect = lambda: self.connect(write=True)  # noqa: E731
        if all(any(shutil.which(tool) for tool in names) for names in self.client_tools):
            return self.tool_backup_class(self.url, connect, self.schema, self._fingerprint)
        return self.logical_backup_class(connect, self.schema, self._fingerprint)

    def _fingerprint(self) -> str | None:
        conn = self.connect(write=False)
        try:
            return self.read_live(conn).fingerprint()
        finally:
            conn.close()
