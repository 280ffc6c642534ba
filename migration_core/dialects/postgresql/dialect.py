"""Everything PostgreSQL-specific: connections, catalog, scratch-schema normalization, planning,
probes, the advisory lock, pg_dump backups and transactional execution.

The managed schema is the connection's `current_schema()` (normally `public`).
"""

from __future__ import annotations

import re
import time
from typing import Callable

from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError

from ...errors import ConfigurationError, ExecutionTimeout, MigrationError
from ...history import HistoryFlavor
from ...plan import Plan
from ...snapshot import SchemaSnapshot
from ..base import Progress
from ..server.connection import ServerConnection, message
from ..server.dialect import ServerDialect
from .backup import PgDumpBackupEngine
from .catalog import quote_ident, read_snapshot
from .lock import PgAdvisoryLock, lock_key
from .logical import PgLogicalBackupEngine
from .objects import PgKeptRules, function_columns
from .planner import PostgresPlanner, parse_enum
from .proof import PgShadow
from .scratch import create_in_scratch
from .trial import trial

HISTORY_FLAVOR = HistoryFlavor(
    param="%s",
    ddl="""CREATE TABLE IF NOT EXISTS _migration_history (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
    duration_ms DOUBLE PRECISION, plan_checksum TEXT, backup_id TEXT, error TEXT,
    statements TEXT NOT NULL DEFAULT '[]', changes TEXT NOT NULL DEFAULT '[]')""",
    exists_sql="SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?",
    begin="BEGIN",
    upsert="INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, "
           "status = EXCLUDED.status, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, "
           "duration_ms = EXCLUDED.duration_ms, plan_checksum = EXCLUDED.plan_checksum, backup_id = EXCLUDED.backup_id, "
           "error = EXCLUDED.error, statements = EXCLUDED.statements, changes = EXCLUDED.changes",
)


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None)


class PostgresDialect(ServerDialect):
    name = "postgresql"
    title = "PostgreSQL"
    history_flavor = HISTORY_FLAVOR
    integrity_check_name = "no invalid indexes"
    drivers = ("psycopg", "psycopg_async")
    bare_names = ("postgresql",)
    driver_hint = "psycopg 3 (postgresql+psycopg://...)"
    explicit_schema_hint = "; the managed schema is the connection's current_schema()"
    # The scratch schema sees the search path's types and extensions; text is stored per the database's encoding.
    key_query = ("SELECT version(), current_setting('server_version_num'), current_schemas(false)::text, "
                 "(SELECT string_agg(extname || ' ' || extversion, ',' ORDER BY extname) FROM pg_extension), "
                 "pg_encoding_to_char(d.encoding), d.datcollate, d.datctype FROM pg_database d WHERE d.datname = current_database()")
    numeric_types = {"SMALLINT": "int", "INTEGER": "int", "BIGINT": "int", "NUMERIC": "num", "FLOAT4": "num", "FLOAT8": "num",
                     "REAL": "num"}
    int_ranges = {"SMALLINT": (-2**15, 2**15 - 1), "INTEGER": (-2**31, 2**31 - 1), "BIGINT": (-2**63, 2**63 - 1)}
    float_types = {"FLOAT4": "single", "REAL": "single", "FLOAT8": "double", "DOUBLE": "double"}
    float_casts = {"single": "({})::float4", "double": "({})::float8"}
    temporal_types = {"TIMESTAMP": "datetime", "TIMESTAMPTZ": "datetime", "DATE": "date"}
    default_time_precision = 6
    # PostgreSQL docs "SET TRANSACTION": a read-only transaction refuses every write (INSERT .. DELETE, DDL,
    # nextval, NOTIFY, large objects); a transaction may turn read-only at any point.
    read_only_begin = "BEGIN READ ONLY"
    read_only_nested = ("SET LOCAL transaction_read_only = on",)
    probe_setup = ("SET extra_float_digits = 1",)  # float text is the shortest exact round trip (PG 12+ default)
    text_cast = "{}::text"
    numeric_cast = "(({})::text)::numeric"  # through the text: float8 -> numeric directly keeps 15 digits
    regex_op = "~"
    text_types = frozenset({"VARCHAR", "CHAR", "TEXT", "BPCHAR", "CITEXT", "NAME"})
    roomy_text_types = frozenset({"TEXT"})
    trial = staticmethod(trial)
    client_tools = (("pg_dump",), ("pg_restore",), ("psql",))
    lock_class = PgAdvisoryLock
    tool_backup_class = PgDumpBackupEngine
    logical_backup_class = PgLogicalBackupEngine
    planner_class = PostgresPlanner
    kept_rules = PgKeptRules()
    shadow_class = PgShadow
    views_need_tables = False
    read_snapshot = staticmethod(read_snapshot)
    quote_ident = staticmethod(quote_ident)

    def __init__(self, settings):
        super().__init__(settings)
        self._schema: str | None = None

    @staticmethod
    def _in_tx(driver) -> bool:
        from psycopg.pq import TransactionStatus

        return driver.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR, TransactionStatus.ACTIVE)

    # -- connections ---------------------------------------------------------------------
    def connect(self, *, write: bool) -> ServerConnection:
        conn = super().connect(write=write)
        if self._schema is None:
            self._schema = conn.execute("SELECT current_schema()").scalar()
            if self._schema is None:
                conn.close()
                raise ConfigurationError("the connection has no current schema (search_path names no existing schema)")
        return conn

    def schema(self) -> str:
        if self._schema is None:
            self.connect(write=False).close()
        return self._schema

    # -- schema --------------------------------------------------------------------------
    def _create_in_scratch(self, conn: ServerConnection, metadata: MetaData) -> SchemaSnapshot:
        """Temporary tables or a scratch schema, in a transaction that is always rolled back (scratch.py)."""
        return create_in_scratch(conn, metadata)

    # -- infrastructure ------------------------------------------------------------------
    def typed_value(self, literal: str, type_: str) -> str:
        """PostgreSQL types a bare NULL or string in a subquery as text, and then refuses `integer = text`
        in a probe's join: the stand-in is cast to the column's own type."""
        enum = parse_enum(type_)
        return f"CAST({literal} AS {quote_ident(enum[0]) if enum else type_})"

    def key_cast(self, expr: str, type_: str) -> str | None:
        return self.typed_value(expr, type_)

    def collate(self, expr: str, collation: str | None) -> str | None:
        return f"{expr} COLLATE {quote_ident(collation)}" if collation else None

    def _lock_id(self) -> int:
        return lock_key(self.url.database or "", self.schema())

    def kept_object_problems(self, conn: ServerConnection) -> list[str]:
        """PostgreSQL keeps views valid itself; a trigger function's body is text it does not check, so
        a `NEW.col` / `OLD.col` naming a column its trigger's table lacks is found here."""
        live = self.read_live(conn)
        out = []
        for t in live.triggers.values():
            routine = live.routines.get(t.function or "")
            table = live.table(t.table)
            if routine is None or table is None:
                continue
            missing = sorted(c for c in function_columns(routine.sql) if table.column(c) is None)
            if missing:
                out.append(f"function {routine.name} (trigger {t.name} on {t.table}) uses "
                           + ", ".join(f"NEW.{c}" for c in missing) + f", which {t.table} does not have")
        return out

    rehearsal_writes = True  # a rolled-back transaction, holding the plan's locks while it runs

    def rehearse(self, comparison, timeout_ms: int):
        """Run the plan in a transaction that is always rolled back (postgresql/rehearsal.py)."""
        from .rehearsal import rehearse_postgresql

        return rehearse_postgresql(self, comparison, timeout_ms)

    def integrity_check(self, conn: ServerConnection) -> str | None:
        """Invalid indexes (left by a failed CREATE INDEX CONCURRENTLY) are the one inconsistency
        PostgreSQL itself tolerates in a schema."""
        rows = conn.execute(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace "
            "WHERE n.nspname = %s AND NOT x.indisvalid", (self.schema(),)).fetchall()
        return f"invalid indexes (drop and rebuild them): {', '.join(r[0] for r in rows)}" if rows else None

    def run_plan(self, conn: ServerConnection, plan: Plan, *, deadline: float, verify: Callable, before_commit: Callable,
                 progress: Progress | None, checkpoint: Callable | None = None, run_id: str | None = None) -> int:
        """One transaction: lock_timeout for every DDL lock, statement_timeout for what is left of
        the time limit; verify and record success inside it, then COMMIT. Opt-in concurrent index
        builds run after the commit, each on its own (PostgreSQL forbids them in a transaction)."""
        statements = plan.statements
        done = 0
        lock_ms = self.settings.ddl_lock_timeout_ms

        def remaining_ms() -> int:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                raise ExecutionTimeout(f"migration exceeded the time limit after {done} of {len(statements)} statements; "
                                       "rolled back, nothing changed")
            return left

        conn.execute("BEGIN")
        try:
            conn.execute(f"SET LOCAL lock_timeout = {int(lock_ms)}")
            for stmt in statements:
                conn.execute(f"SET LOCAL statement_timeout = {remaining_ms()}")
                conn.execute(stmt)
                done += 1
                if progress:
                    progress(done, len(statements), f"executed {done}/{len(statements)} statements")
            conn.execute(f"SET LOCAL statement_timeout = {remaining_ms()}")
            if not plan.postamble:
                verify(conn)
                before_commit(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._error(exc, done, statements) from None
        if plan.postamble:
            self._run_concurrent(conn, plan.postamble, verify, before_commit)
            done += len(plan.postamble)
        return done

    def _error(self, exc: BaseException, done: int, statements: list[str]) -> BaseException:
        if isinstance(exc, MigrationError):
            return exc
        if not isinstance(exc, DBAPIError):
            return exc
        state = _sqlstate(exc)
        where = statements[done] if done < len(statements) else "(final checks)"
        if state == "55P03":
            return MigrationError(
                f"statement {done + 1} of {len(statements)} could not get its lock within lock_timeout "
                f"({self.settings.ddl_lock_timeout_ms} ms): another session holds a lock on a table it needs [{where}]; "
                "rolled back, nothing changed; retry when the long transaction ends or raise ddl_lock_timeout_ms")
        if state == "57014":
            return ExecutionTimeout(f"migration exceeded the time limit during statement {done + 1} of {len(statements)} "
                                    f"[{where}]; rolled back, nothing changed")
        return MigrationError(f"statement {done + 1} of {len(statements)} failed: {message(exc)} [{where}]; "
                              "rolled back, nothing changed")

    def _run_concurrent(self, conn: ServerConnection, statements: tuple[str, ...], verify: Callable, before_commit: Callable) -> None:
        """The main transaction has committed; a failed build leaves an invalid index, dropped here."""
        for i, stmt in enumerate(statements):
            try:
                conn.execute(f"SET lock_timeout = {int(self.settings.ddl_lock_timeout_ms)}")
                conn.execute(stmt)
            except DBAPIError as exc:
                m = re.search(r"CONCURRENTLY (\S+)|USING INDEX (\S+)$", stmt)
                try:
                    if m:
                        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {m[1] or m[2]}")
                except DBAPIError:
                    pass
                raise MigrationError(
                    f"the plan's transaction committed, but concurrent index build {i + 1} of {len(statements)} failed: "
                    f"{message(exc)} [{stmt}]; its index was dropped; run migrate again to retry") from None
            finally:
                conn.execute("RESET lock_timeout")
        conn.execute("BEGIN")
        try:
            verify(conn)
            before_commit(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
