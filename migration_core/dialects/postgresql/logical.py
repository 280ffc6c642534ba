"""Built-in logical backup of the managed PostgreSQL schema, for machines without pg_dump.

Write: in one REPEATABLE READ transaction, the schema's DDL read from the catalog (`tabledef.py`:
types, sequences, tables with their exact column types, constraints, indexes, policies), every
table's rows in PostgreSQL's own COPY text form (PostgreSQL docs, "COPY", File Formats: each value
as its type's output function writes it, so infinity, BC dates, NaN, -0, JSON scalars, arrays with
NULL elements and every extension type come back exactly), then the functions, views, materialized
views and triggers beside the tables (`objects.py`). Both sides fix the settings that change a
value's text (DateStyle, IntervalStyle, TimeZone, extra_float_digits, bytea_output, client
encoding). Restore: one transaction that empties the schema (objects of other schemas that depend
on it set aside and made again, `outside.py`), re-creates it from that DDL, copies the rows in and
makes the other objects again, so a failed restore changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import BackupError, RestoreRefused
from ..server.backup import ServerBackupEngine
from ..server.connection import message
from .catalog import quote_ident as q
from .objects import all_kept, clear_schema_sql, drop_statement, functions, read_objects, table_grants
from .outside import guard_sql, make_again_sql, read_outside, set_aside_sql
from .restorecheck import restore_problems, shape_from_logical
from .tabledef import read_schema

FORMAT = "migration-mcp-postgresql-logical-dump"
VERSION = 2  # 1: rows as JSON values and DDL from SQLAlchemy's reflection (lost domains, infinity, JSON scalars)
# The settings under which a value's text is written and read back (PostgreSQL docs, "Client Connection Defaults").
SETTINGS = (("DateStyle", "ISO, YMD"), ("IntervalStyle", "postgres"), ("TimeZone", "UTC"), ("extra_float_digits", "3"),
            ("bytea_output", "hex"), ("client_encoding", "UTF8"), ("standard_conforming_strings", "on"))


def _session(conn, schema: str) -> None:
    for name, value in SETTINGS:
        conn.execute(f"SET LOCAL {name} TO '{value}'")
    conn.execute(f"SET LOCAL search_path TO {q(schema)}")  # names of other schemas' objects come qualified


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
        _session(conn, schema)
        definition = read_schema(conn, schema)
        cursor = conn.driver.cursor()
        tables = []
        for t in definition.tables:
            with cursor.copy(f"COPY {q(t.name)} ({', '.join(t.copy_columns)}) TO STDOUT") as copy:
                data = b"".join(bytes(block) for block in copy)
            tables.append({"name": t.name, "create": t.create, "columns": list(t.copy_columns), "copy": data.decode("utf-8")})
        views, triggers, _ = read_objects(conn, schema)
        post = list(definition.sequences) + table_grants(conn, schema)  # other roles' access to the tables and sequences
        objects = list(functions(conn, schema).values())  # before the views and triggers that call them
        objects += [s for v in views.values() for s in v.create]  # in creation order: a view after those it reads
        objects += [s for t in triggers.values() for s in t.create]
        return {"format": FORMAT, "version": VERSION, "schema": schema, "settings": dict(SETTINGS),
                "types": list(definition.types), "tables": tables, "keys": list(definition.keys), "post": post,
                "objects": objects}

    def _read(self, path: Path) -> dict:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackupError(f"backup file {path} is not a readable logical dump: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise BackupError(f"backup file {path} is not a {FORMAT} file")
        if raw.get("version") != VERSION:
            raise BackupError(f"backup file {path} is a version {raw.get('version', 1)} logical dump, which did not keep every "
                              f"value exactly (domains, infinity, JSON scalars); this version restores only version {VERSION}")
        return raw
    def restore_problems(self, src: Path) -> list[str]:
        """Why restoring `src` will be refused (restorecheck.py), for a rollback preview; reads only."""
        raw = self._read(src)
        conn = self._connect()
        try:
            return restore_problems(conn, self._schema(), shape_from_logical(raw))
        finally:
            conn.close()

    def restore_backup(self, src: Path) -> None:
        raw = self._read(src)
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            try:
                schema = self._schema()
                aside = read_outside(conn, schema)  # other schemas' objects that the emptying would drop
                self.restore_notes = [f"{o.description}: of another schema, set aside and made again" for o in aside]
                for stmt in (*set_aside_sql(aside), guard_sql(schema)):
                    conn.execute(stmt)
                _session(conn, schema)
                conn.execute(clear_schema_sql(schema))  # the schema, its owner and privileges stay
                for stmt in raw["types"]:
                    conn.execute(stmt)
                cursor = conn.driver.cursor()
                for t in raw["tables"]:
                    conn.execute(t["create"])
                    if t["copy"]:
                        with cursor.copy(f"COPY {q(t['name'])} ({', '.join(t['columns'])}) FROM STDIN") as copy:
                            copy.write(t["copy"].encode("utf-8"))
                conn.execute("SET LOCAL check_function_bodies = off")  # as pg_dump's scripts do: bodies may name later objects
                objects = raw.get("objects", ())
                funcs = [s for s in objects if s.lstrip().upper().startswith("CREATE OR REPLACE FUNCTION")
                         or s.lstrip().upper().startswith("CREATE OR REPLACE PROCEDURE")]
                for stmt in funcs:  # before the keys: a check or default may call one
                    conn.execute(stmt)
                for stmt in (*raw["keys"], *raw["post"]):
                    conn.execute(stmt)
                for stmt in objects:  # after the rows: materialized views fill, triggers fire for none of them
                    if stmt not in funcs:
                        conn.execute(stmt)
                conn.execute("SET LOCAL search_path TO pg_catalog")  # as they were read: every name qualified
                for stmt in make_again_sql(aside):
                    conn.execute(stmt)
                conn.execute("COMMIT")
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if isinstance(exc, RestoreRefused):
                    raise
                raise BackupError(f"restore failed and was rolled back: {message(exc)}") from None
        finally:
            conn.close()

