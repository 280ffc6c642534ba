"""A fill's values tried as the plan's strict UPDATE stores them (tester3 F2): MariaDB evaluates a SELECT
leniently (`'user' || id` is OR, 'user' read as 0; `10/0` is NULL; a long text is cut), while the migration's
UPDATE runs in strict mode (`write_session_setup`) and stops on each of those (MariaDB KB "SQL_MODE":
STRICT_ALL_TABLES, ERROR_FOR_DIVISION_BY_ZERO). So the values are inserted into a temporary column of the
target type with strict mode off and ERROR_FOR_DIVISION_BY_ZERO on: what strict mode would refuse leaves a
Warning instead (as in trial.py), and each is a row the migration would fail on."""

from __future__ import annotations

import re
import secrets

from .trial import _AT_ROW, _ENGINE, _MAX_ERRORS, _new_spec


def failures(probe, table: str, column: str, scope: str, expr: str, old_type: str | None, new_type: str,
             read_only) -> tuple[int, str | None] | None:
    """(rows the UPDATE would fail on, at least; the first warning), (0, None) when none, None when the source
    is unknown. `scope`: the rows the UPDATE touches; `old_type`: a conversion's column type before MODIFY
    (the UPDATE stores into it, then MODIFY converts); `read_only`: fills._read_only, around the evaluation."""
    conn, q = probe.conn, probe.q
    src = probe._source(table)
    if conn is None or src is None:
        return None
    name = q(f"_migration_fill_{secrets.token_hex(4)}")
    mode, max_errors = conn.execute("SELECT @@SESSION.sql_mode, @@SESSION.max_error_count").fetchone()
    lax = [m for m in (mode or "").split(",") if m and not m.startswith("STRICT_")]
    lax = ",".join([*lax, *([] if "ERROR_FOR_DIVISION_BY_ZERO" in lax else ["ERROR_FOR_DIVISION_BY_ZERO"])])
    first = _new_spec(probe, table, column, old_type or new_type)
    cols = f"k INT AUTO_INCREMENT PRIMARY KEY, v {first} NULL" + (f", w {_new_spec(probe, table, column, new_type)} NULL"
                                                                  if old_type else "")
    conn.execute(f"CREATE TEMPORARY TABLE {name} ({cols}) ENGINE={_ENGINE}")  # before the read-only transaction
    try:
        conn.execute(f"SET SESSION sql_mode = '{lax}', max_error_count = {_MAX_ERRORS}")
        warnings: list = []
        with read_only(probe):
            conn.execute(f"INSERT INTO {name} (v) SELECT ({expr}) FROM {src} WHERE {scope}")
            warnings += _kept(conn.execute("SHOW WARNINGS").fetchall())
            if old_type:
                conn.execute(f"UPDATE {name} SET w = v")
                warnings += _kept(conn.execute("SHOW WARNINGS").fetchall())
    finally:
        conn.execute(f"DROP TEMPORARY TABLE IF EXISTS {name}")
        conn.execute(f"SET SESSION sql_mode = '{mode}', max_error_count = {int(max_errors)}")
    if not warnings:
        return 0, None
    rows = {int(m[1]) for _l, _c, text in warnings if (m := _AT_ROW.search(text))}
    why = re.sub(r" for column [`'][^ ]*[`'](?: at row \d+)?$", "", warnings[0][2])
    return max(len(rows), 1), _AT_ROW.sub("", why)


def _kept(rows) -> list:
    """Warnings and errors; a Note (a trimmed space, a value already in range) is no failure in strict mode."""
    return [tuple(r) for r in rows if str(r[0]).lower() in ("warning", "error")]
