"""Columns the server numbers itself: SERIAL (a `nextval` default on a sequence the column owns) and
IDENTITY (SQL-standard, PostgreSQL 10+). A change between them, to or from a plain column, or a
serial column widened keeps every value and carries the sequence's position over, so the next row
gets the number it would have got (docs: CREATE TABLE, "GENERATED .. AS IDENTITY"; "Serial Types";
ALTER SEQUENCE; `pg_get_serial_sequence`, "Sequence Manipulation Functions")."""

from __future__ import annotations

from .catalog import IDENTITY, SERIAL

MARKERS = (SERIAL, *IDENTITY.values())
_INT_TYPES = {"SMALLINT", "INTEGER", "BIGINT"}
_IDENTITY_SQL = {IDENTITY["a"]: "ALWAYS", IDENTITY["d"]: "BY DEFAULT"}


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sequence_type(type_sql: str) -> str:
    return f" AS {type_sql}" if type_sql.upper() in _INT_TYPES else ""


def widened(q, conn, table: str, column: str, type_sql: str) -> list[str]:
    """A SERIAL column's type changed: its sequence takes the new type, so it counts as far as the
    column can (a serial's sequence is `AS integer`; an identity's follows the column by itself)."""
    seq = _sequence(q, conn, table, column)
    if type_sql.upper() not in _INT_TYPES or seq is None:
        return []
    return [f"ALTER SEQUENCE {seq[0]}{q(seq[1])} AS {type_sql}"]


def _sequence(q, conn, table: str, column: str) -> tuple[str, str] | None:
    """(schema prefix, name) of the sequence `table.column` owns, as the catalog has it now. The prefix
    is empty in the current schema, so a proof on a scratch copy touches the copy's own sequence."""
    if conn is None:
        return None
    row = conn.execute(
        "SELECT CASE WHEN n.nspname = current_schema() THEN '' ELSE quote_ident(n.nspname) || '.' END, c.relname "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.oid = pg_get_serial_sequence({_lit(q(table))}, {_lit(column)})::regclass").fetchone()
    return (row[0], row[1]) if row else None


def switched(q, conn, table: str, column: str, old: str | None, new: str | None, type_sql: str,
             new_default_sql: str | None) -> list[str]:
    """Statements that change how `table.column` is numbered from `old` to `new` (each a marker of
    `MARKERS`, another default's text, or None). They run after the column's type and NOT NULL changes,
    as IDENTITY needs NOT NULL. The new numbering goes on where the old stopped (the old sequence's
    `last_value` and `is_called`) or after the largest value, whichever is later: an old sequence left
    behind by rows inserted with their own ids would otherwise hand out ids that exist."""
    t, col = q(table), q(column)
    if old in _IDENTITY_SQL and new in _IDENTITY_SQL:
        return [f"ALTER TABLE {t} ALTER COLUMN {col} SET GENERATED {_IDENTITY_SQL[new]}"]
    out: list[str] = []
    aside = None  # the old sequence, renamed so that the new one can take the usual name
    seq = _sequence(q, conn, table, column) if old in MARKERS else None
    if seq is not None:
        aside = seq[0] + q(f"{seq[1]}__mig"[:63])
        out.append(f"ALTER SEQUENCE {seq[0]}{q(seq[1])} RENAME TO {q(f'{seq[1]}__mig'[:63])}")
    if old is not None and old not in _IDENTITY_SQL:  # an identity's sequence goes with DROP IDENTITY, after it is read
        out.append(f"ALTER TABLE {t} ALTER COLUMN {col} DROP DEFAULT")
    if old == SERIAL and aside is not None:  # else pg_get_serial_sequence still finds it, not the new one
        out.append(f"ALTER SEQUENCE {aside} OWNED BY NONE")

    def start(seq_sql: str) -> str:
        after_max = f"(SELECT COALESCE(MAX({col}), 0) + 1 FROM {t})"
        if aside is None:
            return f"SELECT pg_catalog.setval({seq_sql}, {after_max}, false)"
        # where the old one stopped, or past the largest value if it was behind (rows inserted with ids)
        return (f"SELECT pg_catalog.setval({seq_sql}, GREATEST(CASE WHEN is_called THEN last_value + 1 ELSE last_value END, "
                f"{after_max}), false) FROM {aside}")

    drop_identity = [f"ALTER TABLE {t} ALTER COLUMN {col} DROP IDENTITY"] if old in _IDENTITY_SQL else []
    if new == SERIAL:
        name = q(f"{table}_{column}_seq"[:63])
        out += [f"CREATE SEQUENCE {name}{_sequence_type(type_sql)} OWNED BY {t}.{col}", start(_lit(name)), *drop_identity,
                f"ALTER TABLE {t} ALTER COLUMN {col} SET DEFAULT nextval({_lit(name)}::regclass)"]
    elif new in _IDENTITY_SQL:
        out += [f"ALTER TABLE {t} ALTER COLUMN {col} ADD GENERATED {_IDENTITY_SQL[new]} AS IDENTITY",
                start(f"pg_get_serial_sequence({_lit(t)}, {_lit(column)})")]
    else:
        out += drop_identity
        if new_default_sql is not None:
            out.append(f"ALTER TABLE {t} ALTER COLUMN {col} SET DEFAULT {new_default_sql}")
    if aside is not None and old == SERIAL:
        out.append(f"DROP SEQUENCE {aside}")
    return out
