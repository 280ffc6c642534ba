"""Built-in logical backup of the managed PostgreSQL schema, for machines without pg_dump.

Write: in one REPEATABLE READ transaction, reflect the tables with SQLAlchemy and keep their DDL
(enum types and sequences first, CREATE TABLE / CREATE INDEX / comments, then sequence ownership
and positions) plus every row, as typed JSON, then the functions, views, materialized views and
triggers beside the tables (`objects.py`). Restore: one transaction that drops the schema, re-creates
it from that DDL, inserts the rows and makes the other objects again, so a failed restore changes
nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import MetaData
from sqlalchemy.schema import CreateIndex, CreateTable, SetTableComment

from ...errors import BackupError
from ..mysql.dump import _dec, _enc
from ..server.backup import ServerBackupEngine
from ..server.connection import message, runnable
from .catalog import quote_ident as q
from .objects import all_kept, clear_schema_sql, drop_statement, functions, read_objects, table_grants

FORMAT = "migration-mcp-postgresql-logical-dump"
_BATCH = 500


def _enc_pg(v):
    if isinstance(v, (dict, list)):
        return {"json": v}
    return _enc(v)


def _dec_pg(v):
    if isinstance(v, dict) and "json" in v:
        from psycopg.types.json import Jsonb

        return Jsonb(v["json"])
    return _dec(v)


class PgLogicalBackupEngine(ServerBackupEngine):
    name = "postgresql-logical-json"
    suffix = ".logical.json"  # not ".json": that is the metadata file beside it
    read_kept = staticmethod(all_kept)
    atomic_restore = True  # one transaction: a failed restore changes nothing
    drop_sql = staticmethod(drop_statement)

    def write_backup(self, dest: Path) -> None:
        schema = self._schema()
        conn = self._connect()
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            payload = self._dump(conn, schema)
            conn.execute("COMMIT")
        finally:
            conn.close()
        with open(dest, "w", encoding="utf-8") as fh:
            json.dump(payload, fh)

    def _dump(self, conn, schema: str) -> dict:
        dialect = conn.sa.dialect
        md = MetaData()
        md.reflect(bind=conn.sa)
        pre: list[str] = []
        for name, labels in conn.execute(
                "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t JOIN pg_enum e "
                "ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = %s GROUP BY t.typname",
                (schema,)).fetchall():
            pre.append(f"CREATE TYPE {q(name)} AS ENUM ({', '.join(_lit(v) for v in labels)})")
        seqs = conn.execute(
            "SELECT s.sequencename, s.data_type::text, s.start_value, s.increment_by, s.last_value, "
            "(SELECT d.deptype FROM pg_depend d JOIN pg_class c ON c.oid = d.objid WHERE c.relname = s.sequencename "
            " AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = s.schemaname) AND d.deptype IN ('a', 'i') LIMIT 1), "
            "(SELECT t.relname || '.' || a.attname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid JOIN pg_class t ON t.oid = d.refobjid "
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid WHERE c.relname = s.sequencename "
            " AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = s.schemaname) AND d.deptype IN ('a', 'i') LIMIT 1) "
            "FROM pg_sequences s WHERE s.schemaname = %s", (schema,)).fetchall()
        post: list[str] = []
        for name, dtype, start, inc, last, deptype, owner in seqs:
            if deptype != "i":  # identity sequences come with their column
                pre.append(f"CREATE SEQUENCE {q(name)} AS {dtype} INCREMENT BY {inc} START WITH {start}")
                if owner:
                    table, column = owner.split(".", 1)
                    post.append(f"ALTER SEQUENCE {q(name)} OWNED BY {q(table)}.{q(column)}")
            if last is not None:
                post.append(f"SELECT setval({_lit(q(name))}, {int(last)}, true)")
        tables = []
        ddl: list[str] = []
        for t in md.sorted_tables:
            for c in t.columns:
                if c.server_default is not None and "nextval(" in str(getattr(c.server_default, "arg", "")):
                    c.autoincrement = False  # keep DEFAULT nextval(<the dumped sequence>), not a new SERIAL
            ddl.append(runnable(str(CreateTable(t).compile(dialect=dialect))))
            ddl += [runnable(str(CreateIndex(i).compile(dialect=dialect))) for i in t.indexes]
            if t.comment:
                ddl.append(runnable(str(SetTableComment(t).compile(dialect=dialect))))
            cols = [c.name for c in t.columns if c.computed is None]
            rows = conn.execute(f"SELECT {', '.join(q(c) for c in cols)} FROM {q(t.name)}").fetchall()
            tables.append({"name": t.name, "columns": cols, "rows": [[_enc_pg(v) for v in r] for r in rows]})
        views, triggers, _ = read_objects(conn, schema)
        post += table_grants(conn, schema)  # other roles' access to the tables and sequences
        objects = list(functions(conn, schema).values())  # before the views and triggers that call them
        objects += [s for v in views.values() for s in v.create]  # in creation order: a view after those it reads
        objects += [s for t in triggers.values() for s in t.create]
        return {"format": FORMAT, "schema": schema, "pre": pre, "ddl": ddl, "post": post, "tables": tables, "objects": objects}

    def _read(self, path: Path) -> dict:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackupError(f"backup file {path} is not a readable logical dump: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise BackupError(f"backup file {path} is not a {FORMAT} file")
        return raw

    def restore_backup(self, src: Path) -> None:
        raw = self._read(src)
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            try:
                conn.execute(clear_schema_sql(self._schema()))  # the schema, its owner and privileges stay
                for stmt in (*raw["pre"], *raw["ddl"]):
                    conn.execute(stmt)
                for t in raw["tables"]:
                    if t["rows"]:
                        cols = t["columns"]
                        sql = (f"INSERT INTO {q(t['name'])} ({', '.join(q(c) for c in cols)}) OVERRIDING SYSTEM VALUE "
                               f"VALUES ({', '.join(['%s'] * len(cols))})")
                        rows = [tuple(_dec_pg(v) for v in r) for r in t["rows"]]
                        for i in range(0, len(rows), _BATCH):
                            conn.executemany(sql, rows[i:i + _BATCH])
                for stmt in raw["post"]:
                    conn.execute(stmt)
                conn.execute("SET LOCAL check_function_bodies = off")  # as pg_dump's scripts do: bodies may name later objects
                for stmt in raw.get("objects", ()):  # after the rows: materialized views fill, triggers fire for none of them
                    conn.execute(stmt)
                conn.execute("COMMIT")
            except BaseException as exc:
                conn.execute("ROLLBACK")
                raise BackupError(f"restore failed and was rolled back: {message(exc)}") from None
        finally:
            conn.close()


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
