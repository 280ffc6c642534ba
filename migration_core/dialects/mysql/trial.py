"""A column's type change tried on a copy of its live values, with the very `ALTER TABLE .. MODIFY`
conversion the plan runs, so that `status` counts what the statement would refuse or silently alter.

The column is copied into a temporary table (visible to this session only, dropped at the end) and
converted there without strict mode: a value strict mode refuses then leaves a Warning naming its
row (MariaDB KB, "SQL_MODE": strict mode turns those warnings into errors), one it only trims
leaves a Note, and one converted without a word (ENUM to a number by its position, TIME(6) to TIME,
a CHAR's trailing spaces) shows when compared with the original, by label or brought back to the
old type. The session's sql_mode and max_error_count are restored afterwards.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy.exc import DBAPIError

from ..base import Trial
from ..server.probes import _base

_TEXT_LIKE = frozenset({"CHAR", "VARCHAR", "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT", "ENUM", "SET"})
_AT_ROW = re.compile(r" at row (\d+)$")
_QUOTED = re.compile(r"'((?:[^'\\]|\\.|'')*)'")
_MAX_ERRORS = 65535  # the most warnings a statement keeps (max_error_count)
_ENGINE = "Aria TRANSACTIONAL=0"  # a scratch copy needs no redo log (MariaDB's own engine for internal temporary tables)


def _new_spec(probe, table: str, column: str, new_type: str) -> str:
    """The column's new type with the collation the plan's MODIFY gives it: its own, else its table's."""
    if _base(new_type) not in _TEXT_LIKE:
        return new_type
    t = probe.target.table(table)
    c = t.column(column) if t else None
    coll = (c.collation if c else None) or next((o.split(" ", 1)[1] for o in (t.options if t else ()) if o.startswith("COLLATE ")),
                                                None)
    if coll is None:
        coll = probe.dialect.database_collation(probe.conn)
    return f"{new_type} COLLATE {coll}"


_BINARY = frozenset({"BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB"})


def _shown(base: str, expr: str) -> str:
    """A value as text for a message: bits as 0s and 1s, bytes in hexadecimal."""
    if base == "BIT":
        return f"BIN({expr})"
    return f"CONCAT('0x', HEX({expr}))" if base in _BINARY else f"CAST({expr} AS CHAR)"


def trial(probe, table: str, column: str, old_type: str, new_type: str, compare: str) -> Trial | None:
    conn, q = probe.conn, probe.q
    col, name = q(column), q(f"_migration_probe_{secrets.token_hex(4)}")
    mode, max_errors = conn.execute("SELECT @@SESSION.sql_mode, @@SESSION.max_error_count").fetchone()
    lax = ",".join(m for m in (mode or "").split(",") if m and not m.startswith("STRICT_"))
    created = False
    try:
        conn.execute(f"SET SESSION sql_mode = '{lax}', max_error_count = {_MAX_ERRORS}")
        back = compare == "round"  # a second copy, converted there and back again
        # `k` numbers the rows in the order they are copied, which is the order a warning's "at row N"
        # counts them in (a user variable, not a key: an index would cost more than the copy itself).
        conn.execute("SET @_migration_probe_row = 0")
        conn.execute(f"CREATE TEMPORARY TABLE {name} ENGINE={_ENGINE} SELECT (@_migration_probe_row := @_migration_probe_row + 1) AS k, "
                     f"{col} AS o, {col} AS n{f', {col} AS r' if back else ''} FROM {probe._source(table)} WHERE {col} IS NOT NULL")
        created = True
        spec = _new_spec(probe, table, column, new_type)
        conn.execute(f"ALTER TABLE {name} MODIFY n {spec}" + (f", MODIFY r {spec}" if back else ""))
        warnings = conn.execute("SHOW WARNINGS").fetchall()
        total = conn.execute("SELECT @@warning_count").scalar() or 0
        failed, why = _rows(conn, name, [w for w in warnings if w[0] == "Warning"])
        old_base, new_base = _base(old_type), _base(new_type)
        shown = f"{_shown(old_base, 'o')}, {_shown(new_base, 'n')}"
        if failed:
            example = conn.execute(f"SELECT {shown} FROM {name} WHERE k = {min(failed)}").fetchone()
            return Trial(failed=len(failed), failed_example=example[0] if example else None, why=why, exact=total < _MAX_ERRORS)
        trimmed, _ = _rows(conn, name, [w for w in warnings if w[0] == "Note"])
        cond = None
        if compare == "labels":
            cond = "NOT (CAST(CAST(n AS CHAR) AS BINARY) <=> CAST(CAST(o AS CHAR) AS BINARY))"
        elif back:
            _f, old_sql, coll = conn.execute(f"SHOW FULL COLUMNS FROM {name} LIKE 'o'").fetchone()[:3]
            conn.execute(f"ALTER TABLE {name} MODIFY r {old_sql}" + (f" COLLATE {coll}" if coll else ""))
            cond = "NOT (o <=> r) OR NOT (CAST(o AS BINARY) <=> CAST(r AS BINARY))"
        count = conn.execute(f"SELECT count(*) FROM {name} WHERE {cond}").scalar() if cond else 0
        if count:  # the example: the first such row
            row = conn.execute(f"SELECT {shown} FROM {name} WHERE {cond} ORDER BY k LIMIT 1").fetchone()
            return Trial(changed=max(count, len(trimmed)), changed_example=(row[0], row[1]))
        if trimmed:  # trimmed with a Note, the same when brought back (text read as a date without its time)
            example = conn.execute(f"SELECT {shown} FROM {name} WHERE k = {min(trimmed)}").fetchone()
            return Trial(changed=len(trimmed), changed_example=(example[0], example[1]) if example else None)
        return Trial()
    except DBAPIError:
        return None  # the conversion itself cannot be tried (no such type here): the plan's proof says why
    finally:
        if created:
            conn.execute(f"DROP TEMPORARY TABLE IF EXISTS {name}")
        conn.execute("SET SESSION sql_mode = %s, max_error_count = %s", (mode, max_errors))


def _rows(conn, name: str, warnings: list) -> tuple[set[int], str | None]:
    """The rows (`k`) the warnings name, by row number or else by the value they
    quote, and the first one's words without the scratch copy's name."""
    rows: set[int] = set()
    quoted: set[str] = set()
    for _level, _code, text in warnings:
        m = _AT_ROW.search(text)
        if m:
            rows.add(int(m[1]))
        else:
            quoted.update(v.replace("''", "'") for v in _QUOTED.findall(text)[:1])
    if quoted:
        marks = ", ".join(["%s"] * len(quoted))
        found = conn.execute(f"SELECT k FROM {name} WHERE CAST(o AS BINARY) IN ({marks})", tuple(quoted)).fetchall()
        rows.update(r[0] for r in found)
        if not found:
            rows.add(1)  # quoted as MariaDB shortens it: at least one value, which one unknown
    why = None
    if warnings:
        why = re.sub(r" for column [`'][^ ]*[`'](?: at row \d+)?$", "", warnings[0][2])
        why = _AT_ROW.sub("", why)
    return rows, why
