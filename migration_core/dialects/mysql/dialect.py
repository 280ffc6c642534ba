"""Everything MariaDB/MySQL-specific: connections, catalog, scratch-database normalization,
planning, probes, GET_LOCK, backups and execution with automatic restore.

DDL commits implicitly here, so a multi-statement plan cannot roll back by itself. `run_plan`
dumps the tables the plan touches first, runs statement by statement (each one recorded in the
history as it commits), and on any failure restores those tables from the dump, drops tables the
plan created, and checks the result against the dump's checksums and the starting schema.
"""

from __future__ import annotations

import secrets
import struct
import time
from contextlib import suppress
from typing import Callable

from dataclasses import replace

from pymysql.constants import COMMAND
from pymysql.err import MySQLError as PyMySQLError
from sqlalchemy import MetaData
from sqlalchemy import UniqueConstraint as SaUnique
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from ...errors import ConfigurationError, ExecutionTimeout, MigrationError, MigrationInterrupted
from ...history import HistoryFlavor
from ...plan import Plan
from ...snapshot import SchemaSnapshot, split_key
from ..base import Progress
from ..server.batch import ScriptSender, compiled_ddl, script
from ..server.connection import ServerConnection, errno, message, one_line
from ..server.dialect import ServerDialect
from .backup import LogicalBackupEngine, MysqldumpBackupEngine
from .catalog import quote_ident, read_snapshot
from .definers import check_definers, definers
from .dump import RunStep, take_dump
from .lock import MysqlNamedLock, lock_name
from .objects import MysqlKeptRules, broken_views
from .planner import MysqlPlanner
from .proof import MysqlShadow
from .recovery import (Interrupted, dump_path, fsync_file, pending_runs, recover_runs, restore_run, save_found_state, signals_deferred,
                       signals_interrupt)
from .scratch import scratch_database
from .trial import trial

HISTORY_FLAVOR = HistoryFlavor(
    param="%s",
    ddl="""CREATE TABLE IF NOT EXISTS _migration_history (
    id VARCHAR(64) NOT NULL PRIMARY KEY, kind VARCHAR(16) NOT NULL, status VARCHAR(16) NOT NULL,
    started_at VARCHAR(40) NOT NULL, finished_at VARCHAR(40), duration_ms DOUBLE, plan_checksum VARCHAR(64),
    backup_id VARCHAR(64), error LONGTEXT, statements LONGTEXT NOT NULL, changes LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    exists_sql="SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
    begin="BEGIN",
    upsert="REPLACE INTO {table} ({columns}) VALUES ({values})",
    interrupted="interrupted: the process ended and left no dump of the tables to restore from, which happens only when it "
                "ended before its first statement or after its automatic restore had put them back; nothing to undo",
    unrecovered=("migration {id} was interrupted (its process ended){progress}; MariaDB/MySQL DDL commits statement by "
                 "statement, so the tables it touched may be half-migrated; the next migrate, rollback or server start "
                 "restores them from the dump taken before its first statement (run-{id}.affected.jsonl in the backup "
                 "folder), records that, and only then goes on"),
    unrecovered_is_failure=True,
)


def _run_steps(plan: Plan) -> tuple[RunStep, ...]:
    """The plan's steps with their reverses, kept in the run's dump so that a restore (after a kill -9
    too) undoes the committed ones in place (undo.py)."""
    return tuple(RunStep(st.description, tuple(st.statements), None if st.reverse is None else tuple(st.reverse), st.table)
                 for st in plan.steps)


_LOST = {2006, 2013, 2055}  # CR_SERVER_GONE_ERROR, CR_SERVER_LOST, CR_SERVER_LOST_EXTENDED: the server may have run it


_STATEMENT_TIMEOUT = 1969  # ER_STATEMENT_TIMEOUT: "Query execution was interrupted (max_statement_time exceeded)"


def _message(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    if len(args) == 2 and isinstance(args[1], str):
        return one_line(f"({args[0]}) {args[1]}")
    return message(exc)


class MysqlDialect(ServerDialect):
    name = "mysql"
    title = "MariaDB/MySQL"
    history_flavor = HISTORY_FLAVOR
    integrity_check_name = "foreign keys hold"
    drivers = ("pymysql",)
    bare_names = ("mysql", "mariadb")
    driver_hint = "PyMySQL (mysql+pymysql://...)"
    # MariaDB KB "START TRANSACTION": READ ONLY refuses writes to any non-temporary table (error 1792).
    read_only_begin = "START TRANSACTION READ ONLY"
    # The scratch database takes the live one's character set and collation; sql_mode, the storage engine,
    # row format and timestamp defaults change what CREATE TABLE stores.
    key_query = ("SELECT VERSION(), @@lower_case_table_names, @@sql_mode, @@default_storage_engine, @@innodb_default_row_format, "
                 "@@explicit_defaults_for_timestamp, s.DEFAULT_CHARACTER_SET_NAME, s.DEFAULT_COLLATION_NAME "
                 "FROM information_schema.SCHEMATA s WHERE s.SCHEMA_NAME = DATABASE()")
    numeric_types = {"TINYINT": "int", "SMALLINT": "int", "MEDIUMINT": "int", "INT": "int", "BIGINT": "int", "BOOLEAN": "int",
                     "DECIMAL": "num", "FLOAT": "num", "DOUBLE": "num"}
    int_ranges = {"TINYINT": (-2**7, 2**7 - 1), "BOOLEAN": (-2**7, 2**7 - 1), "SMALLINT": (-2**15, 2**15 - 1),
                  "MEDIUMINT": (-2**23, 2**23 - 1), "INT": (-2**31, 2**31 - 1), "BIGINT": (-2**63, 2**63 - 1)}
    # Without strict mode MySQL clamps or truncates what does not fit instead of failing the statement.
    write_session_setup = ("SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')",)
    float_types = {"FLOAT": "single", "DOUBLE": "double", "REAL": "double"}
    float_casts = {"single": "CAST({} AS FLOAT)", "double": "CAST({} AS DOUBLE)"}
    temporal_types = {"DATETIME": "datetime", "TIMESTAMP": "datetime", "DATE": "date"}
    default_time_precision = 0
    time_cast = "DATETIME({digits})"  # CAST has no TIMESTAMP target
    text_cast = "CAST({} AS CHAR)"
    numeric_cast = "CAST(CAST({} AS CHAR) AS DECIMAL(65,30))"  # through the text: FLOAT 1.1 is 1.1, not 1.10000002
    regex_op = "REGEXP"
    bit_types = frozenset({"BIT"})
    bit_value = "({} + 0)"
    text_types = frozenset({"CHAR", "VARCHAR", "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT"})
    label_types = frozenset({"ENUM", "SET"})
    reread_types = frozenset({"YEAR"})  # MariaDB KB "YEAR Data Type": '69' is 2069, '0' and '00' are 2000
    roomy_text_types = frozenset({"MEDIUMTEXT", "LONGTEXT"})  # 16 MiB and more: beyond any VARCHAR or TEXT
    trial = staticmethod(trial)
    client_tools = (("mysqldump", "mariadb-dump"), ("mysql", "mariadb"))
    lock_class = MysqlNamedLock
    tool_backup_class = MysqldumpBackupEngine
    logical_backup_class = LogicalBackupEngine
    planner_class = MysqlPlanner
    kept_rules = MysqlKeptRules()
    shadow_class = MysqlShadow
    views_need_tables = True
    read_snapshot = staticmethod(read_snapshot)
    quote_ident = staticmethod(quote_ident)
    _message = staticmethod(_message)

    def _check_url(self, url: URL) -> URL:
        if not url.database:
            raise ConfigurationError("the MariaDB/MySQL URL must name a database (mysql+pymysql://user@host/dbname)")
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        return url

    @staticmethod
    def _in_tx(driver) -> bool:
        return bool(driver.server_status & 1)  # SERVER_STATUS_IN_TRANS

    def schema(self) -> str:
        return self.url.database

    def _create_in_scratch(self, conn: ServerConnection, metadata: MetaData) -> SchemaSnapshot:
        """In a scratch database with the live database's character set and collation, dropped
        afterwards (DDL cannot be rolled back here)."""
        with scratch_database(conn, charset_of=self.schema()) as scratch:
            conn.execute(f"USE {quote_ident(scratch)}")
            create_models(conn, metadata, scratch)
            return read_snapshot(conn, scratch, (), objects=False)

    def normalize_target(self, metadata: MetaData) -> SchemaSnapshot:
        """The models as MariaDB stores them; an index or key the models leave unnamed has a name the
        server chose, so it is compared by definition only."""
        target = super().normalize_target(metadata)
        declared = {n.lower() for t in metadata.tables.values()
                    for n in [*(i.name for i in t.indexes), *(c.name for c in t.constraints if isinstance(c, SaUnique))] if n}
        tables = {name: replace(t, indexes=tuple(i if i.auto or i.name.lower() in declared else replace(i, auto=True)
                                                 for i in t.indexes)) for name, t in target.tables.items()}
        return replace(target, tables=tables)

    def key_cast(self, expr: str, type_: str) -> str | None:
        """MySQL's CAST has targets of its own (SIGNED, DECIMAL, DOUBLE, DATE, DATETIME, CHAR): the nearest."""
        base = type_.split("(", 1)[0].split(" ", 1)[0].upper()
        size = type_[len(base):].split(")", 1)[0] + ")" if type_[len(base):].startswith("(") else ""
        if base in self.int_ranges:
            return f"CAST({expr} AS {'UNSIGNED' if 'UNSIGNED' in type_.upper() else 'SIGNED'})"
        target = {"DECIMAL": f"DECIMAL{size}", "FLOAT": "DOUBLE", "DOUBLE": "DOUBLE", "DATE": "DATE", "DATETIME": f"DATETIME{size}",
                  "TIMESTAMP": f"DATETIME{size}", "TIME": f"TIME{size}"}.get(base)
        return f"CAST({expr} AS {target})" if target else None

    def table_collation(self, conn, table: str) -> str | None:
        return conn.execute("SELECT table_collation FROM information_schema.tables WHERE table_schema = DATABASE() "
                            "AND table_name = %s", (table,)).scalar()

    def database_collation(self, conn) -> str | None:
        return conn.execute("SELECT @@collation_database").scalar()

    def collate(self, expr: str, collation: str | None) -> str | None:
        """Converted to the collation's character set first (its name's first part, as `CONVERT TO
        CHARACTER SET` in the planner), so a change of character set compares too."""
        return f"CONVERT({expr} USING {collation.split('_', 1)[0]}) COLLATE {collation}" if collation else None

    def _lock_id(self) -> str:
        return lock_name(f"{self.url.host}:{self.url.port}/{self.schema()}")

    def kept_object_problems(self, conn: ServerConnection) -> list[str]:
        """Views that fail when used (error 1356: their tables or columns are gone), with the server's reason."""
        out = []
        for name in broken_views(conn, self.schema()):
            try:
                conn.execute(f"SELECT * FROM {quote_ident(name)} LIMIT 0").fetchall()
            except DBAPIError as exc:
                out.append(f"view {name} does not work: {_message(exc)}")
        return out

    rehearsal_writes = True  # a scratch database with copies of the touched tables

    def rehearse(self, comparison, timeout_ms: int):
        """Run the plan on copies of the touched tables in a scratch database (mysql/rehearsal.py)."""
        from .rehearsal import rehearse_mysql

        return rehearse_mysql(self, comparison, timeout_ms)

    def integrity_check(self, conn: ServerConnection) -> str | None:
        """Foreign keys that the data violates (possible here: checks can be switched off per session)."""
        problems = []
        for t in self.read_live(conn).tables.values():
            for fk in t.foreign_keys:
                cols = " AND ".join(f"c.{quote_ident(a)} IS NOT NULL" for a in fk.columns)
                match = " AND ".join(f"p.{quote_ident(b)} = c.{quote_ident(a)}" for a, b in zip(fk.columns, fk.ref_columns))
                n = conn.execute(f"SELECT count(*) FROM {quote_ident(t.name)} c WHERE {cols} AND NOT EXISTS "
                                 f"(SELECT 1 FROM {quote_ident(fk.ref_table)} p WHERE {match})").scalar()
                if n:
                    problems.append(f"{n} row(s) of {t.name} violate a foreign key to {fk.ref_table}")
        return "; ".join(problems[:5]) or None

    def _kept_statements(self, conn: ServerConnection, keys: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
        """The views and triggers a plan sets aside, as they are now: the run's dump makes them again if it fails."""
        if not keys:
            return []
        live = self.read_live(conn)
        out = []
        for key in keys:
            kind, name = split_key(key)
            out.append((key, live.triggers[name].create if kind == "trigger" else live.views[name].create))
        return out

    @staticmethod
    def _statement_time_limit(conn: ServerConnection) -> Callable[[float | None], None]:
        """MariaDB's `max_statement_time` (seconds; it aborts any statement, an ALTER too, and InnoDB rolls
        the ALTER back; https://mariadb.com/kb/en/aborting-statements/), set before each statement to what
        is left of the time limit; None lifts it. MySQL has no such variable for DDL: there the limit is
        checked between statements only."""
        try:
            conn.execute("SET SESSION max_statement_time = 0")
        except DBAPIError:
            return lambda seconds: None
        return lambda seconds: conn.execute(f"SET SESSION max_statement_time = {max(seconds, 0.001):.3f}" if seconds is not None
                                            else "SET SESSION max_statement_time = 0")

    def recover(self, conn: ServerConnection, history) -> list[str]:
        """Runs that a killed process left half-done, restored from their dumps (recovery.py)."""
        return recover_runs(self, conn, history)

    def pending_undo(self, conn: ServerConnection, history) -> list[str]:
        """The killed runs `recover` would undo from their dumps (recovery.py); read-only."""
        return pending_runs(self, conn, history)

    def run_plan(self, conn: ServerConnection, plan: Plan, *, deadline: float, verify: Callable, before_commit: Callable,
                 progress: Progress | None, checkpoint: Callable | None = None, run_id: str | None = None) -> int:
        """Dump the touched tables, then run statement by statement. On any failure, a lost connection
        or SIGINT/SIGTERM (recovery.py), restore them on a fresh connection and say so; a kill -9 is
        put right by the next command that takes the lock, from the dump named after `run_id`."""
        statements = plan.statements
        schema = self.schema()
        if progress:
            progress(0, len(statements), f"dumping {len(plan.tables)} affected table(s) before the first statement")
        directory = self.settings.resolved_backup_dir()
        directory.mkdir(parents=True, mode=0o700, exist_ok=True)
        path = dump_path(directory, run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}")
        with signals_interrupt():
            try:
                conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                try:
                    dump = take_dump(conn, schema, list(plan.tables), path, self._kept_statements(conn, plan.kept),
                                     _run_steps(plan))
                finally:
                    conn.execute("COMMIT")
                path.chmod(0o600)
                fsync_file(path)
                # A restore would recreate these triggers: refuse now, not after the first statement, if it could not.
                check_definers(conn, definers([*(t for table in dump.tables for t in table.triggers),
                                               *(s for _key, stmts in dump.objects for s in stmts)]), "the plan's tables")
            except BaseException as exc:
                path.unlink(missing_ok=True)
                if isinstance(exc, Interrupted):
                    raise MigrationInterrupted(f"interrupted by {exc} while dumping the tables the plan touches, before its "
                                               "first statement; nothing changed", exc.signum) from None
                raise
            done, recorded = 0, False
            limit = self._statement_time_limit(conn)
            try:
                for stmt in statements:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise ExecutionTimeout(f"migration exceeded the time limit after {done} of {len(statements)} statements")
                    limit(left)
                    if progress:
                        progress(done, len(statements), f"running statement {done + 1} of {len(statements)}")
                    conn.execute(stmt)
                    done += 1
                    if checkpoint:
                        checkpoint(conn, done)
                    if progress:
                        progress(done, len(statements), f"executed {done}/{len(statements)} statements")
                limit(None)
                verify(conn)
                before_commit(conn)
                recorded = True
                path.unlink(missing_ok=True)
                return done
            except BaseException as exc:  # noqa: BLE001 - every failure must restore
                if recorded:  # succeeded and recorded: a signal now must not undo it
                    raise
                with suppress(Exception):
                    conn.sa.invalidate()  # it may be lost or mid-statement: nothing may use it again
                where = statements[done] if done < len(statements) else "(final checks)"
                if isinstance(exc, Interrupted):
                    cause = f"interrupted by {exc} during statement {done + 1} of {len(statements)} [{where}]"
                elif isinstance(exc, DBAPIError) and errno(exc) == _STATEMENT_TIMEOUT:
                    cause = f"migration exceeded the time limit during statement {done + 1} of {len(statements)} [{where}]"
                    exc = ExecutionTimeout(cause)
                elif isinstance(exc, DBAPIError):
                    cause = f"statement {done + 1} of {len(statements)} failed: {_message(exc)} [{where}]"
                elif isinstance(exc, MigrationError):
                    cause = str(exc).removesuffix("; rolled back, nothing changed")
                else:
                    cause = f"unexpected {exc.__class__.__name__}: {exc}"
                # Did the statement in flight take effect? Not when the server refused it; perhaps when the client gave up.
                maybe = isinstance(exc, Interrupted) or (isinstance(exc, DBAPIError) and errno(exc) in _LOST)
                with signals_deferred() as later:
                    try:
                        report = restore_run(lambda: self.connect(write=True), schema, dump, statements, done,
                                             in_flight_maybe=maybe, save_state=lambda: save_found_state(self, run_id))
                    except BaseException as restore_exc:  # noqa: BLE001
                        raise MigrationError(
                            f"{cause}; statements 1-{done} had committed (MariaDB/MySQL DDL is not transactional) and the "
                            f"automatic undo of the run on {', '.join(dump.table_names()) or 'its new tables'} FAILED: {restore_exc}; "
                            f"the dump of those tables is kept at {path}; the next migrate, rollback or server start tries "
                            "the restore again, and `migration-mcp rollback` restores the pre-migration backup") from None
                path.unlink(missing_ok=True)
                verified = "definitions" + (", and CHECKSUM TABLE of the reloaded tables," if report.reloaded else "")
                undone = (f"{cause}; " + (f"{done} statement(s) had committed and were undone on a fresh connection: "
                                          if done or report.changed_anything else "no statement had committed: ")
                          + f"{report.sentence()}; verified ({verified} as before the run); "
                          + ("rolled back: the run's changes are undone, the reloaded tables' later rows as said"
                             if report.reloaded else "rolled back, nothing changed"))
                signum = exc.signum if isinstance(exc, Interrupted) else (later[0] if later else None)
                if signum is not None:
                    raise MigrationInterrupted(undone, signum) from None
                kind = ExecutionTimeout if isinstance(exc, ExecutionTimeout) else MigrationError
                raise kind(undone) from None


def create_models(conn: ServerConnection, metadata: MetaData, scratch: str) -> None:
    """The models as scripts sent while they compile (`server/batch.py`'s ScriptSender): PyMySQL
    connects without multi-statement support, so it is switched on for these scripts alone with
    COM_SET_OPTION (https://mariadb.com/kb/en/com_set_option/) and every result is read before it is
    switched off. A script that fails leaves what it created (DDL commits here): that is dropped and
    the models are created one statement at a time, so the error is the statement's own."""
    driver = conn.driver

    def send(chunk: list[str]) -> None:
        with driver.cursor() as cur:
            cur.execute(script(chunk))
            while cur.nextset():
                pass

    _multi_statements(driver, True)
    try:
        sender = ScriptSender(send)
        try:
            statements = compiled_ddl(metadata, conn.sa.dialect, sink=sender.add)
        finally:
            error = sender.finish()  # the connection is the sender's until it has sent everything
    finally:
        _multi_statements(driver, False)
    if statements and error is None:
        return
    if error is not None and not isinstance(error, PyMySQLError):
        raise error
    tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                          (scratch,)).fetchall()]
    if tables:
        conn.execute("SET SESSION foreign_key_checks = 0")
        try:
            conn.execute("DROP TABLE IF EXISTS " + ", ".join(quote_ident(t) for t in tables))
        finally:
            conn.execute("SET SESSION foreign_key_checks = 1")
    metadata.create_all(conn.sa, checkfirst=False)


def _multi_statements(driver, on: bool) -> None:
    """MYSQL_OPTION_MULTI_STATEMENTS_ON (0) / _OFF (1); the server answers with an EOF packet, or an error."""
    driver._execute_command(COMMAND.COM_SET_OPTION, struct.pack("<H", 0 if on else 1))
    driver._read_packet()
