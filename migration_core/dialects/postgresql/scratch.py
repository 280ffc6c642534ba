"""The models created where nothing outlives the call, and read back as the live schema is read.

Everything happens in a transaction that is always rolled back, so nothing is left behind even if the
process dies. Two places, tried in this order:

- Temporary tables (`CREATE TEMPORARY TABLE`, in the session's own `pg_temp_N` schema), when the
  models compile to nothing but tables, indexes, comments and `ALTER TABLE` constraints. The server
  writes no WAL for their files and keeps their pages in session memory (PostgreSQL docs, "CREATE
  TABLE", TEMPORARY; "Temporary tables" under 'search_path'): at 500 tables x 20 columns creating them
  takes about half the time of the same tables in a schema (`bench/status_cold.py`). What the catalog
  stores for a column, default, constraint or index does not depend on the table being temporary.
- A scratch schema, for everything else (enum and domain types, sequences, functions, `UNLOGGED` or
  other table prefixes, DDL listeners) and whenever the temporary route fails, so that an error in the
  models is reported by the statement that caused it.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import MetaData
from sqlalchemy.exc import SQLAlchemyError

from ...snapshot import SchemaSnapshot
from ..server.batch import ScriptSender, compiled_ddl, script
from ..server.connection import ServerConnection
from .catalog import model_check_texts, quote_ident, read_snapshot

# Statements that a temporary table takes as a permanent one does: anything else (CREATE TYPE, CREATE
# SEQUENCE, CREATE UNLOGGED TABLE, ...) goes to a scratch schema.
_TEMP_OK = re.compile(r"(?:CREATE TABLE|CREATE (?:UNIQUE )?INDEX|COMMENT ON (?:TABLE|COLUMN)|ALTER TABLE) ", re.I)
# What only a temporary table takes (`postgresql_on_commit`): models with it must fail as they would live.
_TEMP_ONLY = re.compile(r"\bON\s+COMMIT\b", re.I)


def create_in_scratch(conn: ServerConnection, metadata: MetaData, *, temporary: bool = True) -> SchemaSnapshot:
    """The models as this server stores them (tables, columns, keys, indexes, comments; no views or
    routines: the models have none). `temporary=False` skips the temporary route (tests compare the two).
    Raises SQLAlchemyError when the models cannot be created."""
    conn.execute("BEGIN")
    try:
        # The scratch place first, then the session's own path: the models see the types, functions and
        # extension objects the managed schema sees (citext, pg_trgm's operator classes, PostGIS).
        paths = conn.execute("SELECT current_schemas(false)").scalar() or []
        if temporary:
            schema, statements = _create_temporary(conn, metadata, paths)
            if schema is not None:
                return _read(conn, schema, metadata)
        else:
            statements = compiled_ddl(metadata, conn.sa.dialect)
        schema = f"_migration_scratch_{secrets.token_hex(4)}"
        conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
        conn.execute("SET LOCAL search_path TO " + ", ".join(quote_ident(p) for p in [schema, *paths]))
        create_models(conn, metadata, statements)
        return _read(conn, schema, metadata)
    finally:
        conn.execute("ROLLBACK")


def _read(conn: ServerConnection, schema: str, metadata: MetaData) -> SchemaSnapshot:
    return read_snapshot(conn, schema, (), objects=False, check_texts=model_check_texts(conn, schema, metadata, conn.sa.dialect))


def _create_temporary(conn: ServerConnection, metadata: MetaData, paths: list[str]) -> tuple[str | None, list[str] | None]:
    """The tables as temporary ones, sent while they compile (`ScriptSender`). Returns the session's
    temporary schema (None: all undone to a savepoint, when a statement needs the scratch schema or the
    server refuses one, for the scratch schema to try and report) and the compiled statements."""
    conn.execute("SET LOCAL search_path TO " + ", ".join(["pg_temp", *(quote_ident(p) for p in paths)]))
    conn.execute("SAVEPOINT _migration_temp")
    sender = ScriptSender(lambda chunk: conn.execute(script(chunk)))

    def take(statement: str) -> None:
        if _TEMP_OK.match(statement) and not _TEMP_ONLY.search(statement):
            sender.add(re.sub(r"^CREATE TABLE ", "CREATE TEMPORARY TABLE ", statement, flags=re.I))
        else:
            sender.stop()

    try:
        statements = compiled_ddl(metadata, conn.sa.dialect, sink=take)
    finally:
        error = sender.finish()  # the connection is the sender's until it has sent everything
    schema = None
    if statements and not sender.stopped and error is None:
        schema = conn.execute("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()").scalar()
    elif error is not None and not isinstance(error, SQLAlchemyError):
        raise error
    if schema is None:
        conn.execute("ROLLBACK TO SAVEPOINT _migration_temp")
        return None, statements
    conn.execute("RELEASE SAVEPOINT _migration_temp")
    return schema, statements


def create_models(conn: ServerConnection, metadata: MetaData, statements: list[str] | None) -> None:
    """The models in one script (`server/batch.py`; psycopg sends a statement without parameters by
    the simple query protocol, which takes several). A script that fails is undone to its savepoint
    and the models are created one statement at a time, so the error is the statement's own."""
    if statements:
        conn.execute("SAVEPOINT _migration_models")
        try:
            conn.execute(script(statements))
            conn.execute("RELEASE SAVEPOINT _migration_models")
            return
        except SQLAlchemyError:
            conn.execute("ROLLBACK TO SAVEPOINT _migration_models")
    metadata.create_all(conn.sa, checkfirst=False)
