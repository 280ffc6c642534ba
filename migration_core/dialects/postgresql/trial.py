"""A column's type change tried on the live values in queries, as `ALTER .. TYPE .. USING col::new`
will convert them (an explicit cast: PostgreSQL docs, "ALTER TABLE", SET DATA TYPE; an array casts
element by element), so that `status` counts what the statement would refuse or silently alter.

PostgreSQL 15 has no `pg_input_is_valid` (16+): the first query casts every value and fails at the
first one that does not convert; only then a temporary PL/pgSQL function catches each cast's error
to count them all, inside a transaction (or savepoint) that is rolled back, so nothing stays.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError

from ..base import Trial
from ..server.connection import message
from ..server.probes import _base
from .planner import parse_enum

# Base types whose text is the value itself: between two of them (TIMESTAMP -> TIME, TIME(6) ->
# TIME(0), BIT(3) -> BIT(2)) a changed text is a changed value, also where no cast leads back.
TEXT_EXACT = frozenset({"TIMESTAMP", "TIMESTAMPTZ", "DATE", "TIME", "TIMETZ", "INTERVAL", "BIT", "VARBIT",
                        "VARCHAR", "CHAR", "TEXT", "BPCHAR", "CITEXT", "MONEY"})
_FAILS = "_migration_probe_fails"


def _state(exc: BaseException) -> str:
    """The SQLSTATE: class 22 is a value the type refuses, 23 one a domain's CHECK refuses."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) or ""


def _cast(expr: str, type_: str) -> str:
    enum = parse_enum(type_)
    target = '"' + enum[0].replace('"', '""') + '"' if enum else type_
    return f"CAST({expr} AS {target})"


@contextmanager
def _undone(conn):
    """Everything inside is rolled back: its own transaction, or a savepoint in the caller's."""
    nested = conn.in_transaction
    conn.execute("SAVEPOINT _migration_probe" if nested else "BEGIN")
    try:
        yield
    finally:
        conn.execute("ROLLBACK TO SAVEPOINT _migration_probe" if nested else "ROLLBACK")


def _rows(conn, sql: str) -> list[tuple] | DBAPIError:
    """The query's rows, or the error the server answered with (which undoes nothing else)."""
    try:
        with _undone(conn):
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    except DBAPIError as exc:
        return exc


def trial(probe, table: str, column: str, old_type: str, new_type: str, compare: str) -> Trial | None:
    conn, src, col = probe.conn, probe._source(table), probe.q(column)
    arg = f"CAST({col} AS text)" if parse_enum(old_type) else col  # the planner's `USING col::text::new`
    conv = _cast(arg, new_type)
    first = _rows(conn, f"SELECT count(*) FROM {src} WHERE {col} IS NOT NULL AND {conv} IS NULL")
    if isinstance(first, DBAPIError):
        if not _state(first).startswith(("22", "23")):  # not a value's fault (no such cast): the plan's proof says why
            return None
        return _failures(conn, src, col, arg, new_type, message(first))
    if compare == "none":
        return Trial()
    old_base, new_base = _base(old_type), _base(new_type)
    text_differs = f"CAST({conv} AS text) IS DISTINCT FROM CAST({col} AS text)"
    if compare == "labels" or (old_base == new_base and old_base in TEXT_EXACT):
        conditions = [text_differs]
    else:  # the value brought back to the old type, compared as that type: 1.234 -> MONEY -> 1.23
        conditions = [f"{_cast(conv, old_type)} IS DISTINCT FROM {col}"]
        if old_base in TEXT_EXACT and new_base in TEXT_EXACT:
            conditions.append(text_differs)  # TIMESTAMP -> TIME has no way back
    for cond in conditions:
        found = _rows(conn, f"SELECT count(*) OVER (), CAST({col} AS text), CAST({conv} AS text) FROM {src} "
                            f"WHERE {col} IS NOT NULL AND {cond} LIMIT 1")
        if not isinstance(found, DBAPIError):
            return Trial(changed=found[0][0], changed_example=(found[0][1], found[0][2])) if found else Trial()
    return Trial()


def _failures(conn, src: str, col: str, arg: str, new_type: str, first_error: str) -> Trial:
    """Every value whose cast fails, counted by a temporary function that catches each error."""
    body = f"BEGIN PERFORM {_cast('v', new_type)}; RETURN NULL; EXCEPTION WHEN others THEN RETURN SQLERRM; END"
    try:
        with _undone(conn):
            conn.execute(f"CREATE FUNCTION pg_temp.{_FAILS}(v anyelement) RETURNS text LANGUAGE plpgsql AS $_probe_${body}$_probe_$")
            row = conn.execute(f"SELECT count(*) OVER (), v, e FROM (SELECT CAST({col} AS text) AS v, pg_temp.{_FAILS}({arg}) AS e "
                               f"FROM {src} WHERE {col} IS NOT NULL) AS x WHERE e IS NOT NULL LIMIT 1").fetchone()
    except DBAPIError:  # no temporary objects allowed here (a read-only session): the first failure is known
        return Trial(failed=1, why=first_error, exact=False)
    if row is None:
        return Trial(failed=1, why=first_error, exact=False)
    return Trial(failed=row[0], failed_example=row[1], why=row[2])
