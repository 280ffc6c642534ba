"""Built-in logical dump of MariaDB/MySQL tables to a file: `SHOW CREATE TABLE`, triggers, views,
routines and events, and every row, restorable by this tool alone, with `CHECKSUM TABLE` values to prove a restore brought back
the same data.

Used twice: as the safety net of every MariaDB run (DDL commits statement by statement there, so
the affected tables are dumped to disk first and restored automatically if a statement fails), and
as the backup format when `mysqldump` is not installed. Rows are streamed (server-side cursor out,
line by line in), so memory stays flat whatever the table size. Values are typed in JSON (bytes,
decimals, dates), so a round trip is exact.

File format (JSON lines): a header `{"format", "all_tables", "tables": [...], "objects": [...], "steps": [...]}`
(objects: views, triggers, routines and events beside the tables, each with the statements that make
it, in creation order; steps: a run's steps with their reverse SQL, so that a restore, even after a
kill -9, can undo the committed ones in place), then one
`[table_index, [values...]]` line per row, grouped by table, then `{"end": <row count>}`, so a
truncated file is detected.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ...errors import BackupError
from .catalog import quote_ident as q
from .objects import drop_statement, read_objects

FORMAT = "migration-mcp-mysql-logical-dump-v2"
AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=[0-9]+")
_BATCH = 1000


@dataclass(frozen=True)
class TableDump:
    name: str
    create: str
    columns: tuple[str, ...]
    checksum: int | None
    triggers: tuple[str, ...] = ()  # statements that make its triggers again: DROP TABLE drops a table's triggers


@dataclass(frozen=True)
class RunStep:
    """One step of the run the dump was taken for: what it runs, its reverse (None: none exists) and its table."""
    description: str
    statements: tuple[str, ...]
    reverse: tuple[str, ...] | None
    table: str | None


@dataclass(frozen=True)
class Dump:
    path: Path
    tables: tuple[TableDump, ...]
    all_tables: tuple[str, ...]  # every table that existed when the dump was taken
    objects: tuple[tuple[str, tuple[str, ...]], ...] = ()  # ("view v", statements) beside the tables, creation order
    steps: tuple[RunStep, ...] = ()  # the run's steps (a run's dump; empty in a backup)

    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]


def list_tables(conn, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE' "
        "ORDER BY table_name", (schema,)).fetchall()]


def checksum(conn, table: str) -> int | None:
    return conn.execute(f"CHECKSUM TABLE {q(table)} EXTENDED").fetchone()[1]


def take_dump(conn, schema: str, tables: list[str], dest: Path,
              objects: list[tuple[str, tuple[str, ...]]] | tuple = (), steps: tuple[RunStep, ...] = ()) -> Dump:
    """Schema, triggers and rows of `tables` (those that exist), and `objects` (("view v", statements)
    beside them, in creation order), into `dest`. Call inside `START TRANSACTION WITH CONSISTENT
    SNAPSHOT` for one consistent picture."""
    existing = list_tables(conn, schema)
    _views, kept_triggers = read_objects(conn, schema, {t.lower() for t in existing})
    lower = {t.lower(): t for t in existing}
    metas: list[TableDump] = []
    for name in tables:
        real = lower.get(name.lower())
        if real is None or any(m.name == real for m in metas):
            continue
        create = conn.execute(f"SHOW CREATE TABLE {q(real)}").fetchone()[1]
        cols = tuple(r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "AND extra NOT LIKE '%%GENERATED%%' ORDER BY ordinal_position", (schema, real)).fetchall())
        # in their firing order, each under the sql_mode it was created with
        triggers = tuple(s for t in kept_triggers.values() if t.table == real for s in t.create)
        metas.append(TableDump(real, create, cols, checksum(conn, real), triggers))
    header = {"format": FORMAT, "all_tables": existing, "tables": [
        {"name": m.name, "create": m.create, "columns": list(m.columns), "checksum": m.checksum, "triggers": list(m.triggers)}
        for m in metas], "objects": [[key, list(stmts)] for key, stmts in objects],
        "steps": [{"description": st.description, "statements": list(st.statements),
                   "reverse": None if st.reverse is None else list(st.reverse), "table": st.table} for st in steps]}
    rows = 0
    with open(dest, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(header) + "\n")
        for i, m in enumerate(metas):
            result = conn.sa.execution_options(stream_results=True).exec_driver_sql(
                f"SELECT {', '.join(q(c) for c in m.columns)} FROM {q(m.name)}")
            try:
                while batch := result.fetchmany(_BATCH):
                    for r in batch:
                        fh.write(json.dumps([i, [_enc(v) for v in r]]) + "\n")
                    rows += len(batch)
            finally:
                result.close()
        fh.write(json.dumps({"end": rows}) + "\n")
    return Dump(Path(dest), tuple(metas), tuple(existing), tuple((k, tuple(v)) for k, v in objects), tuple(steps))


def read_dump(path: Path) -> Dump:
    """The header of a dump file, after checking that the file is complete."""
    try:
        with open(path, encoding="utf-8") as fh:
            header = json.loads(fh.readline())
            count, last = 0, None
            for line in fh:
                last = line
                count += 1
    except (OSError, ValueError) as exc:
        raise BackupError(f"backup file {path} is not a readable logical dump: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError(f"backup file {path} is not a {FORMAT} file")
    try:
        end = json.loads(last) if last else None
    except ValueError:
        end = None
    if not isinstance(end, dict) or end.get("end") != count - 1:
        raise BackupError(f"backup file {path} is truncated (its end marker is missing or does not match its rows)")
    tables = tuple(TableDump(t["name"], t["create"], tuple(t["columns"]), t.get("checksum"), tuple(t.get("triggers", ())))
                   for t in header["tables"])
    objects = tuple((k, tuple(v)) for k, v in header.get("objects", ()))
    steps = tuple(RunStep(st["description"], tuple(st["statements"]), None if st["reverse"] is None else tuple(st["reverse"]),
                          st["table"]) for st in header.get("steps", ()))
    return Dump(Path(path), tables, tuple(header["all_tables"]), objects, steps)


def unchanged_tables(conn, schema: str, dump: Dump) -> set[str]:
    """Dumped tables whose definition is still the dump's (AUTO_INCREMENT aside): a failed run never
    changed them (an ALTER that fails changes nothing, MariaDB 10.6+ atomic DDL), so rows other sessions
    wrote to them meanwhile are theirs, not the run's."""
    live = {t.lower() for t in list_tables(conn, schema)}
    out = set()
    for t in dump.tables:
        if t.name.lower() in live:
            now = conn.execute(f"SHOW CREATE TABLE {q(t.name)}").fetchone()[1]
            if AUTO_INCREMENT.sub("", now) == AUTO_INCREMENT.sub("", t.create):
                out.add(t.name)
    return out


def restore_dump(conn, schema: str, dump: Dump, *, drop: list[str] | None = None, keep_unchanged: bool = False,
                 force: set[str] = frozenset()) -> list[str]:
    """Put the dumped tables back exactly and return their names. `drop`: the tables to drop (a failed
    run's new tables, `run_created`); None: every table that did not exist when the dump was taken (a
    backup's restore). With `keep_unchanged`, leave the tables whose definition is still the dump's as
    they are, with what other sessions wrote to them (`unchanged_tables`), unless named in `force` (a
    step without a reverse changed their rows). Foreign key checks are off meanwhile, so order does not
    matter; every restored table's checksum is compared with the dump's."""
    forced = {f.lower() for f in force}
    keep = {t for t in unchanged_tables(conn, schema, dump) if t.lower() not in forced} if keep_unchanged else set()
    conn.execute("SET SESSION foreign_key_checks = 0")
    # The rows go back as they were, also one that breaks a CHECK (stored with MariaDB's
    # check_constraint_checks off); MySQL has no such switch, nor such rows.
    checks = conn.execute("SELECT @@version LIKE '%MariaDB%'").scalar()
    if checks:
        conn.execute("SET SESSION check_constraint_checks = 0")
    try:
        before = {t.lower() for t in dump.all_tables}
        if drop is None:
            drop = [name for name in list_tables(conn, schema)
                    if name.lower() not in before and not name.startswith("_migration_history")]
        for name in drop:
            conn.execute(f"DROP TABLE IF EXISTS {q(name)}")
        for t in dump.tables:
            if t.name not in keep:
                conn.execute(f"DROP TABLE IF EXISTS {q(t.name)}")
                conn.execute(t.create)
        pending: list[tuple] = []
        current = None

        def flush() -> None:
            if pending:
                m = dump.tables[current]
                conn.executemany(f"INSERT INTO {q(m.name)} ({', '.join(q(c) for c in m.columns)}) "
                                 f"VALUES ({', '.join(['%s'] * len(m.columns))})", pending)
                pending.clear()

        with open(dump.path, encoding="utf-8") as fh:
            fh.readline()
            for line in fh:
                item = json.loads(line)
                if isinstance(item, dict):
                    break
                index, values = item
                if dump.tables[index].name in keep:
                    continue
                if index != current or len(pending) >= _BATCH:
                    flush()
                    current = index
                pending.append(tuple(_dec(v) for v in values))
            flush()
        for t in dump.tables:  # after the rows, so restoring fires none of them
            for trigger in t.triggers if t.name not in keep else ():
                conn.execute(trigger)
        for key, statements in dump.objects:  # as they were, whatever the failed plan left of them
            conn.execute(drop_statement(key))
            for stmt in statements:
                conn.execute(stmt)
    finally:
        conn.execute("SET SESSION foreign_key_checks = 1")
        if checks:
            conn.execute("SET SESSION check_constraint_checks = 1")
    bad = [t.name for t in dump.tables if t.name not in keep and t.checksum is not None and checksum(conn, t.name) != t.checksum]
    if bad:
        raise BackupError(f"restored tables do not match the dump's checksums: {', '.join(bad)}")
    return [t.name for t in dump.tables if t.name not in keep]


def run_created(conn, schema: str, dump: Dump) -> list[str]:
    """Tables that exist now, did not when the run's dump was taken, and that the run's own statements
    name: the run made them. A table another session made meanwhile is none of them."""
    before = {t.lower() for t in dump.all_tables}
    text = "\n".join(s for st in dump.steps for s in st.statements).lower()
    return [name for name in list_tables(conn, schema) if name.lower() not in before and not name.startswith("_migration_history")
            and re.search(rf"(?<![\w$]){re.escape(name.lower())}(?![\w$])", text)]


def _enc(v):
    if isinstance(v, (bytes, bytearray)):
        return {"b64": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, Decimal):
        return {"dec": str(v)}
    if isinstance(v, dt.datetime):
        return {"dt": v.isoformat()}
    if isinstance(v, dt.date):
        return {"d": v.isoformat()}
    if isinstance(v, dt.time):
        return {"t": v.isoformat()}
    if isinstance(v, dt.timedelta):
        return {"td": v.total_seconds()}
    return v


def _dec(v):
    if isinstance(v, dict):
        if "b64" in v:
            return base64.b64decode(v["b64"])
        if "dec" in v:
            return Decimal(v["dec"])
        if "dt" in v:
            return dt.datetime.fromisoformat(v["dt"])
        if "d" in v:
            return dt.date.fromisoformat(v["d"])
        if "t" in v:
            return dt.time.fromisoformat(v["t"])
        if "td" in v:
            return dt.timedelta(seconds=v["td"])
    return v
