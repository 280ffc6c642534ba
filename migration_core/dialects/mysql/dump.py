"""Built-in logical dump of MariaDB/MySQL tables: `SHOW CREATE TABLE` plus every row, restorable
by this tool alone, with `CHECKSUM TABLE` values to prove a restore brought back the same data.

Used twice: as the safety net of every MariaDB run (DDL commits statement by statement there, so
the affected tables are dumped first and restored automatically if a statement fails), and as the
backup format when `mysqldump` is not installed. Values are typed in JSON (bytes, decimals,
dates) so a file round trip is exact.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ...errors import BackupError
from .catalog import quote_ident as q

FORMAT = "migration-mcp-mysql-logical-dump"
_BATCH = 500


@dataclass(frozen=True)
class TableDump:
    name: str
    create: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    checksum: int | None
    triggers: tuple[str, ...] = ()  # CREATE TRIGGER statements: DROP TABLE drops a table's triggers


@dataclass(frozen=True)
class Dump:
    tables: tuple[TableDump, ...]
    all_tables: tuple[str, ...]  # every table that existed when the dump was taken

    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]


def list_tables(conn, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE' "
        "ORDER BY table_name", (schema,)).fetchall()]


def checksum(conn, table: str) -> int | None:
    return conn.execute(f"CHECKSUM TABLE {q(table)} EXTENDED").fetchone()[1]


def take_dump(conn, schema: str, tables: list[str]) -> Dump:
    """Schema and rows of `tables` (those that exist); a consistent read per table."""
    existing = list_tables(conn, schema)
    lower = {t.lower(): t for t in existing}
    out = []
    for name in tables:
        real = lower.get(name.lower())
        if real is None:
            continue
        create = conn.execute(f"SHOW CREATE TABLE {q(real)}").fetchone()[1]
        cols = tuple(r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "AND extra NOT LIKE '%%GENERATED%%' ORDER BY ordinal_position", (schema, real)).fetchall())
        rows = tuple(tuple(r) for r in conn.execute(f"SELECT {', '.join(q(c) for c in cols)} FROM {q(real)}").fetchall())
        triggers = tuple(conn.execute(f"SHOW CREATE TRIGGER {q(name)}").fetchone()[2] for (name,) in conn.execute(
            "SELECT trigger_name FROM information_schema.triggers WHERE event_object_schema = %s AND event_object_table = %s "
            "ORDER BY action_order", (schema, real)).fetchall())
        out.append(TableDump(real, create, cols, rows, checksum(conn, real), triggers))
    return Dump(tuple(out), tuple(existing))


def restore_dump(conn, schema: str, dump: Dump, *, drop_new: bool = True) -> None:
    """Put the dumped tables back exactly; with `drop_new`, drop tables that did not exist when the
    dump was taken (a failed plan's new or renamed tables). Foreign key checks are off meanwhile,
    so order does not matter; every restored table's checksum is compared with the dump's."""
    conn.execute("SET SESSION foreign_key_checks = 0")
    try:
        before = {t.lower() for t in dump.all_tables}
        if drop_new:
            for name in list_tables(conn, schema):
                if name.lower() not in before and not name.startswith("_migration_history"):
                    conn.execute(f"DROP TABLE {q(name)}")
        for t in dump.tables:
            conn.execute(f"DROP TABLE IF EXISTS {q(t.name)}")
            conn.execute(t.create)
            if t.rows:
                sql = f"INSERT INTO {q(t.name)} ({', '.join(q(c) for c in t.columns)}) VALUES ({', '.join(['%s'] * len(t.columns))})"
                for i in range(0, len(t.rows), _BATCH):
                    conn.executemany(sql, list(t.rows[i:i + _BATCH]))
        for t in dump.tables:  # after the rows, so restoring fires none of them
            for trigger in t.triggers:
                conn.execute(trigger)
    finally:
        conn.execute("SET SESSION foreign_key_checks = 1")
    bad = [t.name for t in dump.tables if t.checksum is not None and checksum(conn, t.name) != t.checksum]
    if bad:
        raise BackupError(f"restored tables do not match the dump's checksums: {', '.join(bad)}")


# -- file form (BackupEngine fallback) --------------------------------------------------------
def _enc(v):
    if isinstance(v, (bytes, bytearray)):
        return {"b64": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, Decimal):
        return {"dec": str(v)}
    if isinstance(v, dt.datetime):
        return {"dt": v.isoformat()}
    if isinstance(v, dt.date):
        return {"d": v.isoformat()}
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
        if "td" in v:
            return dt.timedelta(seconds=v["td"])
    return v


def write_dump(dump: Dump, dest: Path) -> None:
    payload = {"format": FORMAT, "all_tables": list(dump.all_tables), "tables": [
        {"name": t.name, "create": t.create, "columns": list(t.columns), "checksum": t.checksum, "triggers": list(t.triggers),
         "rows": [[_enc(v) for v in r] for r in t.rows]} for t in dump.tables]}
    with open(dest, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)


def read_dump(path: Path) -> Dump:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"backup file {path} is not a readable logical dump: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise BackupError(f"backup file {path} is not a {FORMAT} file")
    tables = tuple(TableDump(t["name"], t["create"], tuple(t["columns"]), tuple(tuple(_dec(v) for v in r) for r in t["rows"]),
                             t.get("checksum"), tuple(t.get("triggers", ()))) for t in raw["tables"])
    return Dump(tables, tuple(raw["all_tables"]))
