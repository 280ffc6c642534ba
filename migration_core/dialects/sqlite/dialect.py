"""Everything SQLite-specific in one place: connections, catalog, planning, probes, execution."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Callable

from sqlalchemy import MetaData
from sqlalchemy.exc import SQLAlchemyError

from ...diff import Diff
from ...errors import ConfigurationError, ExecutionTimeout, LockTimeout, MigrationError
from ...history import HistoryFlavor
from ...plan import Plan
from ...snapshot import SchemaSnapshot
from ...urls import parse_url, sqlite_path
from ..base import Progress
from .catalog import affinity, read_snapshot, schema_rows
from .sqltext import quote_ident as q


class SqliteDialect:
    name = "sqlite"
    history_flavor = HistoryFlavor()

    def __init__(self, settings):
        self.settings = settings
        self.path: Path = sqlite_path(parse_url(settings.database_url))
        self.ignore = tuple(settings.ignore_tables)
        self._live: tuple[list[tuple], SchemaSnapshot] | None = None

    # -- connections ---------------------------------------------------------------------
    def database_exists(self) -> bool:
        return self.path.exists()

    def connect(self, *, write: bool) -> sqlite3.Connection | None:
        """A read-only connection never creates the file (returns None when it is missing)."""
        p = self.path
        if p.exists() and p.is_dir():
            raise ConfigurationError(f"{p} is a directory, not a SQLite database file")
        if not write:
            if not p.exists():
                return None
            # A hot journal left by a crashed writer can only be rolled back by a writable
            # connection; reading through one performs SQLite's own recovery, nothing more.
            mode = "rw" if Path(f"{p}-journal").exists() and os.access(p, os.W_OK) else "ro"
            conn = sqlite3.connect(f"file:{p.as_posix()}?mode={mode}", uri=True, isolation_level=None, timeout=5)
        else:
            if not p.parent.exists():
                raise ConfigurationError(f"directory {p.parent} does not exist; create it or fix the database URL")
            if p.exists() and not os.access(p, os.W_OK):
                raise ConfigurationError(f"database file {p} is read-only; the migration needs write access")
            if not os.access(p.parent, os.W_OK):
                raise ConfigurationError(f"directory {p.parent} is not writable; SQLite needs it for its journal")
            conn = sqlite3.connect(str(p), isolation_level=None, timeout=self.settings.lock_timeout_ms / 1000)
        waited = time.monotonic()
        try:
            conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            if write:
                # Wait here, before any backup, for another connection's write transaction to end: a lock
                # found later would fail the run after its backup was taken.
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                raise _locked_error(p, write, time.monotonic() - waited) from None
            raise ConfigurationError(f"{p} is not a usable SQLite database: {exc}") from None
        return conn

    # -- normalized-target cache key (target_cache.py) -----------------------------------
    @property
    def sa_dialect(self):
        """The SQLAlchemy dialect `_compiled_ddl` compiles with."""
        from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

        return SQLiteDialect_pysqlite()

    def normalization_key(self, conn=None) -> str:
        """The in-memory scratch database is this process's SQLite library: its version is the key."""
        return f"sqlite {sqlite3.sqlite_version}"

    # -- schema --------------------------------------------------------------------------
    def read_live(self, conn: sqlite3.Connection | None) -> SchemaSnapshot:
        """Reused while `sqlite_schema` is unchanged: SQLite derives every pragma from that text,
        so a repeated status costs one catalog query instead of four plus parsing; kept between
        processes too (`target_cache.stored_sqlite_live`)."""
        if conn is None:
            return SchemaSnapshot("sqlite")
        rows = schema_rows(conn)
        if self._live is not None and self._live[0] == rows:
            return self._live[1]
        from ...target_cache import stored_sqlite_live

        snapshot = stored_sqlite_live(self.settings, rows, lambda: read_snapshot(conn, self.ignore, rows=rows))
        self._live = (rows, snapshot)
        return snapshot

    def normalize_target(self, metadata: MetaData) -> SchemaSnapshot:
        """Create the models in an in-memory database and read them back like the live one."""
        schemas = sorted({t.schema for t in metadata.tables.values() if t.schema})
        if schemas:
            raise ConfigurationError(f"tables with a schema ({', '.join(schemas)}) cannot live in a SQLite database")
        statements = _compiled_ddl(metadata)
        if statements is None:
            return self._normalize_through_engine(metadata)
        mem = sqlite3.connect(":memory:", isolation_level=None)
        try:
            mem.execute("BEGIN")
            for stmt in statements:
                mem.execute(stmt)
            mem.execute("COMMIT")
            return read_snapshot(mem, ())
        except sqlite3.Error as exc:
            raise ConfigurationError(f"the models cannot be created on SQLite: {exc.__class__.__name__}: {exc}") from None
        finally:
            mem.close()

    @staticmethod
    def _normalize_through_engine(metadata: MetaData) -> SchemaSnapshot:
        """For models whose DDL event listeners need a real connection."""
        from sqlalchemy import create_engine
        from sqlalchemy.pool import StaticPool

        engine = create_engine("sqlite://", poolclass=StaticPool)
        try:
            metadata.create_all(engine)
            raw = engine.raw_connection()
            try:
                return read_snapshot(raw.driver_connection, ())
            finally:
                raw.close()
        except SQLAlchemyError as exc:
            raise ConfigurationError(f"the models cannot be created on SQLite: {exc.__class__.__name__}: {exc}") from None
        finally:
            engine.dispose()

    def make_plan(self, conn, live: SchemaSnapshot, target: SchemaSnapshot, diff: Diff, metadata=None, fills=None) -> Plan:
        """`fills`: data fills and conversions (fills.resolve), written into the copy of a rebuilt table."""
        from .planner import SqlitePlanner, open_shadow  # only when something differs

        shadow = open_shadow(conn) if conn is not None else sqlite3.connect(":memory:", isolation_level=None)
        try:
            return SqlitePlanner(shadow, live, target, self.ignore, fills).plan(diff)
        finally:
            shadow.close()

    def probe(self, conn, diff: Diff, live: SchemaSnapshot, target: SchemaSnapshot) -> "SqliteProbe":
        return SqliteProbe(conn, diff, live, target)

    # -- infrastructure ------------------------------------------------------------------
    def lock(self, timeout_ms: int):
        from ...lock import FileMigrationLock

        if not self.path.parent.is_dir():  # the lock file must not conjure up a mistyped directory
            raise ConfigurationError(f"directory {self.path.parent} does not exist; create it or fix the database URL")
        return FileMigrationLock(self.path, timeout_ms=timeout_ms)

    def backup_engine(self):
        from .backup import SqliteBackupEngine

        return SqliteBackupEngine(self.path)

    def kept_object_problems(self, conn: sqlite3.Connection) -> list[str]:
        """Views that fail when used (SQLite checks a view's names only then)."""
        out = []
        for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY name").fetchall():
            try:
                conn.execute(f"SELECT * FROM {q(name)} LIMIT 0").fetchall()
            except sqlite3.Error as exc:
                out.append(f"view {name} does not work: {exc}")
        return out

    rehearsal_writes = False  # a rehearsal only reads the live file

    def rehearse(self, comparison, timeout_ms: int):
        """Run the plan on a copy of the data (sqlite/rehearsal.py); the live file is only read."""
        from .rehearsal import rehearse_sqlite

        return rehearse_sqlite(self, comparison, timeout_ms)

    def integrity_check(self, conn: sqlite3.Connection) -> str | None:
        """What `PRAGMA quick_check` finds wrong (https://sqlite.org/pragma.html#pragma_quick_check),
        or None; a file too damaged to check says so instead of raising."""
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            return f"PRAGMA quick_check cannot read the file: {exc}"
        return None if rows == ["ok"] else "; ".join(rows[:5])

    def storage_check(self, conn: sqlite3.Connection) -> str | None:
        """Damage that makes writing unsafe: backing up a corrupt file and writing history into it
        would spread the damage, so migrate refuses (quick_check, O(N) in the file's size)."""
        problem = self.integrity_check(conn)
        if problem is None:
            return None
        problem = problem if problem.startswith("PRAGMA") else f"PRAGMA quick_check: {problem}"
        return (f"the database file {self.path} is corrupt ({problem}); restore a backup with "
                "`migration-mcp rollback --backup-id ID` (see `migration-mcp backups`) or salvage what is left with the "
                "sqlite3 shell's .recover command")

    def recover(self, conn, history) -> list[str]:
        """Nothing to undo: a killed run's transaction is rolled back by SQLite (the hot journal)."""
        return []

    def pending_undo(self, conn, history) -> list[str]:
        """None: see `recover`."""
        return []

    def run_plan(self, conn: sqlite3.Connection, plan: Plan, *, deadline: float, verify: Callable,
                 before_commit: Callable, progress: Progress | None, checkpoint: Callable | None = None,
                 run_id: str | None = None) -> int:
        """Preamble outside the transaction (foreign_keys cannot change inside one), then all or nothing.
        `checkpoint` and `run_id` are unused: one transaction has no intermediate state worth recording."""
        fk_before = conn.execute("PRAGMA foreign_keys").fetchone()[0]
        statements = plan.statements
        done = 0
        timed_out = False

        def check_deadline() -> int:
            nonlocal timed_out
            if time.monotonic() > deadline:
                timed_out = True
                return 1
            return 0

        for stmt in plan.preamble:
            conn.execute(stmt)
        conn.set_progress_handler(check_deadline, 2000)
        try:
            conn.execute(plan.begin[0])
            try:
                baseline = _fk_violations(conn)
                for stmt in statements:
                    if check_deadline():
                        raise sqlite3.OperationalError("interrupted")
                    conn.execute(stmt)
                    done += 1
                    if progress:
                        progress(done, len(statements), f"executed {done}/{len(statements)} statements")
                new = {k: n - baseline.get(k, 0) for k, n in _fk_violations(conn).items() if n > baseline.get(k, 0)}
                if new:
                    sample = ", ".join(f"{n} in {t} -> {p}" for (t, p), n in list(new.items())[:5])
                    raise MigrationError(
                        f"the migrated schema would add {sum(new.values())} foreign key violation(s) ({sample}); rolled back, nothing changed"
                    )
                verify(conn)
                before_commit(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if timed_out:
                    raise ExecutionTimeout(
                        f"migration exceeded the time limit after {done} of {len(statements)} statements; rolled back, nothing changed"
                    ) from None
                if isinstance(exc, sqlite3.Error):
                    if done < len(statements):
                        raise MigrationError(f"statement {done + 1} of {len(statements)} failed: {exc} [{statements[done]}]; "
                                             "rolled back, nothing changed") from None
                    raise MigrationError(f"all {len(statements)} statements ran, then the final checks failed: {exc}; "
                                         "rolled back, nothing changed") from None
                raise
        finally:
            conn.set_progress_handler(None, 0)
            conn.execute(f"PRAGMA foreign_keys = {'ON' if fk_before else 'OFF'}")
        return done


def _locked_error(path: Path, write: bool, waited_s: float) -> LockTimeout:
    """SQLITE_BUSY after the busy timeout: another connection holds the file's lock
    (https://sqlite.org/lockingv3.html): a write transaction blocks writers, an EXCLUSIVE one readers too."""
    blocked = "a write transaction (BEGIN IMMEDIATE or EXCLUSIVE, or a long write)" if write else "an exclusive lock (BEGIN EXCLUSIVE, or a write that is committing)"
    return LockTimeout(f"the database file {path} is locked by another connection that holds {blocked}; waited "
                       f"{waited_s * 1000:.0f} ms for it to end; nothing was changed; retry once that "
                       "transaction has committed or rolled back")


def _fk_violations(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """Violations per (table, parent). Rows that already violated before the plan are not the
    plan's doing, so they do not block it (rowids may change in a rebuild; counts do not)."""
    out: dict[tuple[str, str], int] = {}
    for table, _rowid, parent, _fkid in conn.execute("PRAGMA foreign_key_check"):
        out[(table, parent)] = out.get((table, parent), 0) + 1
    return out


class SqliteProbe:
    """Data checks run against the live rows as the plan will leave them:
    `(SELECT old AS new, <default> AS added ... FROM live)`, so target names work before
    renames, and a column the plan adds reads as the value every row will get."""

    def __init__(self, conn: sqlite3.Connection | None, diff: Diff, live: SchemaSnapshot, target: SchemaSnapshot):
        self.conn = conn
        self.diff = diff
        self.live = live
        self.target = target

    def _source(self, table: str) -> str | None:
        live_name = self.diff.live_table(table)
        t = self.live.table(live_name)
        if t is None or self.conn is None:
            return None
        exprs = [f"{q(c.name)} AS {q(self._target_col(table, c.name))}" for c in t.columns]
        present = {self._target_col(table, c.name).lower() for c in t.columns}
        target_t = self.target.table(table)
        for c in target_t.columns if target_t else ():
            if c.name.lower() not in present and not c.generated:
                exprs.append(f"{c.default if c.default is not None else 'NULL'} AS {q(c.name)}")
        return f"(SELECT {', '.join(exprs)} FROM {q(t.name)})"

    def _target_col(self, table: str, live_col: str) -> str:
        for (t, old), new in self.diff.column_renames.items():
            if t.lower() == table.lower() and old.lower() == live_col.lower():
                return new
        return live_col

    def _count(self, table: str, where: str, select: str = "count(*)", group: str = "") -> int:
        src = self._source(table)
        if src is None:
            return 0
        return int(self.conn.execute(f"SELECT {select} FROM {src} AS src WHERE {where} {group}").fetchone()[0] or 0)

    def row_count(self, table: str) -> int:
        return self._count(table, "1")

    def null_count(self, table: str, column: str) -> int:
        return self._count(table, f"{q(column)} IS NULL")

    def duplicate_count(self, table: str, columns: tuple[str, ...]) -> int:
        src = self._source(table)
        if src is None:
            return 0
        cols = ", ".join(q(c) for c in columns)
        not_null = " AND ".join(f"{q(c)} IS NOT NULL" for c in columns)
        sql = f"SELECT count(*) FROM (SELECT 1 FROM {src} AS src WHERE {not_null} GROUP BY {cols} HAVING count(*) > 1)"
        return int(self.conn.execute(sql).fetchone()[0])

    def unconvertible_count(self, table: str, column: str, old_type: str, new_type: str) -> int | None:
        """Values that SQLite's new column affinity would not store as the new type's class.
        Under an unchanged affinity the copy stores every value exactly as it is: no scan needed."""
        new_aff = affinity(new_type)
        c = q(column)
        as_int = f"(CAST({c} AS INTEGER) || '' = {c})"
        as_real = f"(CAST({c} AS REAL) || '' = {c})"
        if new_aff in ("TEXT", "BLOB") or affinity(old_type) == new_aff:
            return 0
        if new_aff == "INTEGER":
            bad = f"typeof({c}) = 'blob' OR (typeof({c}) = 'real' AND {c} <> CAST({c} AS INTEGER)) OR (typeof({c}) = 'text' AND NOT {as_int})"
        else:
            bad = f"typeof({c}) = 'blob' OR (typeof({c}) = 'text' AND NOT ({as_int} OR {as_real}))"
            if new_aff == "REAL":  # REAL affinity turns integers into floats: beyond 2**53 digits are lost
                bad += f" OR (typeof({c}) = 'integer' AND CAST(CAST({c} AS REAL) AS INTEGER) <> {c})"
        return self._count(table, f"{c} IS NOT NULL AND ({bad})")

    def lossy_count(self, table: str, column: str, old_type: str, new_type: str) -> tuple[int, str] | None:
        """None: SQLite converts a value to a column's affinity only when the conversion is
        lossless, and keeps it as it is otherwise; the one exception, REAL affinity turning large
        integers into floats, is counted by `unconvertible_count`."""
        return None

    def conversion_trial(self, table: str, column: str, old_type: str, new_type: str) -> None:
        """None: the two counts above are the whole story under SQLite's type affinity."""
        return None

    def collation_change(self, table: str, collation: str | None) -> tuple[list, None]:
        """Nothing: SQLite tables have no default collation of their own."""
        return [], None

    def key_duplicates_after(self, table: str, column: str, new_type: str | None, collation: str | None) -> tuple[int, tuple] | None:
        """None: the rebuild's copy enforces the unique key, and a collision rolls the whole plan back."""
        return None

    def too_long_count(self, table: str, column: str, max_length: int) -> int:
        return self._count(table, f"length({q(column)}) > {int(max_length)}")

    def orphan_count(self, table, columns, ref_table, ref_columns) -> int:
        ref_src = self._source(ref_table)
        if ref_src is None:
            ref_src = q(ref_table)  # a table created by this same plan: it is empty
            exists = False
        else:
            exists = True
        not_null = " AND ".join(f"src.{q(c)} IS NOT NULL" for c in columns)
        if not exists:
            return self._count(table, not_null)
        match = " AND ".join(f"ref.{q(r)} = src.{q(c)}" for c, r in zip(columns, ref_columns))
        return self._count(table, f"{not_null} AND NOT EXISTS (SELECT 1 FROM {ref_src} AS ref WHERE {match})")

    def check_violation_count(self, table: str, expression: str) -> int | None:
        try:
            return self._count(table, f"NOT ({expression})")
        except sqlite3.Error:
            return None  # not evaluable outside the table (e.g. a subquery); the copy enforces it


def _compiled_ddl(metadata: MetaData) -> list[str] | None:
    """The models' CREATE statements, compiled without a connection (a third of the cost of
    create_all on an engine; `dialects/ddl.py`); None when that fails, e.g. a DDL listener needs a
    real connection. A listener's Python side effects may then run twice: once here, once on the engine."""
    from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

    from ..ddl import compiled_create_all

    return compiled_create_all(metadata, SQLiteDialect_pysqlite())
