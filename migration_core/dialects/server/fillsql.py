"""Data fills in a server plan (see migration_core/fills.py): the statements of the step that needs
one, rewritten around it. The planner's `not_null_after_fill` and `using_conversion` hooks give the
dialect's spelling (PostgreSQL `SET NOT NULL` and `USING`; MariaDB `MODIFY COLUMN` and an UPDATE)."""

from __future__ import annotations

import re

from ... import changes as ch

_NOT_NULL = re.compile(r"\s+NOT NULL\b")


def _column(c: ch.Change) -> str | None:
    col = getattr(c, "column", None)
    if col is None:
        return None
    return col.name if hasattr(col, "name") else str(col)


def with_fills(planner, change: ch.Change, description: str, statements: list[str]) -> list[str]:
    """`statements` of the step for `change` (described as `description`), with the fills that serve it."""
    column = _column(change)
    if column is None:
        return statements
    table = change.table
    given = planner.fills.get((table.lower(), column.lower()))
    if not given:
        return statements
    t, c = planner.q(table), planner.q(column)
    parts = description.split("; ")
    same = [x for x in planner.diff.changes if x.table.lower() == table.lower() and (_column(x) or "").lower() == column.lower()]
    if isinstance(change, ch.AddColumn) and "fill" in given:
        expr = given["fill"].expression
        head = f"ALTER TABLE {t} ADD COLUMN "
        at = next((i for i, s in enumerate(statements) if s.startswith(head)), None)
        if at is None:
            return statements
        spec = statements[at][len(head):]
        nullable = _NOT_NULL.sub("", spec, count=1)
        return [*statements[:at], head + nullable, f"UPDATE {t} SET {c} = ({expr})",
                planner.not_null_after_fill(table, column, spec), *statements[at + 1:]]
    out = statements
    retype = next((x for x in same if isinstance(x, ch.AlterColumnType)), None)
    if "using" in given and retype is not None and retype.detail in parts:
        out = planner.using_conversion(table, column, out, given["using"].expression)
    not_null = next((x for x in same if isinstance(x, ch.AlterColumnNullable) and not x.new.nullable), None)
    if "fill" in given and not_null is not None and not_null.detail in parts:
        out = [f"UPDATE {t} SET {c} = ({given['fill'].expression}) WHERE {c} IS NULL", *out]
    return out
