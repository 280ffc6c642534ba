"""What a fill's values must satisfy besides not being NULL, checked before `status` may promise the plan
(tester3 F2/F5/F11): the column's type as the migration stores it (the dialect's `fillcheck.failures`:
MariaDB's strict mode, PostgreSQL's assignment), and the target's keys over the filled values: a UNIQUE key
or primary key the column is in (duplicates), a FOREIGN KEY (values with no parent row), a CHECK that names
the column. Without fills the same constraints are checked against the data (assess.py); with one, the
column's values are the fill's, so they are checked over `(SELECT .., <filled value> AS col FROM ..)`.

A check that cannot run (its SQL refused, a parent table the plan itself makes) is said, with the advice to
rehearse, rather than passed for one that found nothing."""

from __future__ import annotations

import importlib
import re

from . import changes as ch


def filled_value(c, column: str, expression: str, q) -> str:
    """The column's value after the fill: every row's for a new column or a conversion, only the NULL rows'
    for a column made NOT NULL."""
    if isinstance(c, ch.AlterColumnNullable):
        return f"CASE WHEN {q(column)} IS NULL THEN ({expression}) ELSE {q(column)} END"
    return f"({expression})"


def scope(c, column: str, q) -> str:
    """The rows the fill's UPDATE touches."""
    return f"{q(column)} IS NULL" if isinstance(c, ch.AlterColumnNullable) else "1 = 1"


def _scalar(probe, sql: str) -> int:
    run = getattr(probe, "_scalar", None)
    if run is not None:
        return run(sql)
    return int(probe.conn.execute(sql).fetchone()[0] or 0)


def _filled(probe, table: str, values: dict[str, str], q) -> str | None:
    """The table's rows as the plan leaves them: `values` (column lower-cased -> SQL) for the filled columns."""
    src = probe._source(table)
    target = probe.target.table(table)
    if src is None or target is None:
        return None
    if not src.rstrip().endswith(" AS src"):
        src += " AS src"
    cols = [f"{values[c.name.lower()]} AS {q(c.name)}" if c.name.lower() in values else q(c.name) for c in target.columns
            if not c.generated]
    return f"(SELECT {', '.join(cols)} FROM {src}) AS filled"


def _all_values(probe, table: str, fills: dict, q) -> dict[str, str]:
    """Every column of `table` a fill or conversion of this plan gives values: a key or CHECK over two new
    columns is checked with both filled."""
    from .fills import _column_name, _needs_fill

    out: dict[str, str] = {}
    diff = getattr(probe, "diff", None)
    for x in diff.changes if diff is not None else ():
        col = _column_name(x) if x.table.lower() == table.lower() and getattr(x, "column", None) is not None else None
        given = fills.get((table.lower(), col.lower()), {}) if col else {}
        f = given.get("fill") if _needs_fill(x) else given.get("using") if isinstance(x, ch.AlterColumnType) else None
        if f is not None:
            out[col.lower()] = filled_value(x, col, f.expression, q)
    return out


def _unique_keys(t, column: str) -> list[tuple[str, tuple[str, ...]]]:
    keys = []
    if t.primary_key and any(c.lower() == column.lower() for c in t.primary_key.columns):
        keys.append(("primary key", t.primary_key.columns))
    for u in t.unique_constraints:
        if any(c.lower() == column.lower() for c in u.columns):
            keys.append((f"unique key {u.name or ', '.join(u.columns)}", u.columns))
    for i in t.indexes:
        if i.unique and i.where is None and None not in i.columns and any(c.lower() == column.lower() for c in i.columns):
            keys.append((f"unique index {i.name}", tuple(i.columns)))
    return keys


def constraint_checks(probe, c, column: str, fill, q, read_only, fills: dict | None = None) -> tuple[list[str], list[str], list[str]]:
    """(problems, what was checked, what could not be), each a phrase for the change's reason. `fills`: all of
    the plan's (fills.resolve), so the table's other filled columns read as filled too."""
    problems: list[str] = []
    checked: list[str] = []
    unchecked: list[str] = []
    table = c.table
    target = probe.target.table(table)
    new_col = target.column(column) if target else None
    if target is None or new_col is None or getattr(probe, "conn", None) is None:
        return problems, checked, ["the column's type and keys over the filled values"]
    dialect = getattr(getattr(probe, "dialect", None), "name", None) or probe.target.dialect
    try:
        mod = importlib.import_module(f"migration_core.dialects.{dialect}.fillcheck")
    except ModuleNotFoundError:
        mod = None  # SQLite: a column's affinity stores any value
    if mod is not None:
        old_type = c.old.type if isinstance(c, ch.AlterColumnType) else None
        try:
            found = mod.failures(probe, table, column, scope(c, column, q), fill.expression, old_type, new_col.type, read_only)
        except Exception as exc:  # noqa: BLE001 - a check that cannot run is said, not passed
            found, why = None, " ".join(str(getattr(exc, "orig", exc)).split())[:200]
            unchecked.append(f"whether every value fits {new_col.type} ({why})")
        if found is not None:
            n, why = found
            if n:
                problems.append(f"{'at least ' if n == 1 else ''}{n} row{'s' if n != 1 else ''} would not store into "
                                f"{table}.{column} {new_col.type}: {why}")
            else:
                checked.append(f"every value fits {new_col.type}")
    value = filled_value(c, column, fill.expression, q)
    filled = _filled(probe, table, {**_all_values(probe, table, fills or {}, q), column.lower(): value}, q)
    if filled is None:
        return problems, checked, [*unchecked, "the keys over the filled values"]

    def count(sql: str, what: str) -> int | None:
        try:
            with read_only(probe):
                return _scalar(probe, sql)
        except Exception as exc:  # noqa: BLE001
            unchecked.append(f"{what} ({' '.join(str(getattr(exc, 'orig', exc)).split())[:160]})")
            return None

    for label, cols in _unique_keys(target, column):
        names = ", ".join(q(x) for x in cols)
        not_null = " AND ".join(f"{q(x)} IS NOT NULL" for x in cols)
        n = count(f"SELECT count(*) FROM (SELECT 1 AS x FROM {filled} WHERE {not_null} GROUP BY {names} "
                  f"HAVING count(*) > 1) AS d", f"duplicates in {label}")
        if n:
            problems.append(f"{n} value{'s' if n != 1 else ''} would repeat in {label} ({', '.join(cols)})")
        elif n == 0:
            checked.append(f"no duplicate in {label}")
    for fk in target.foreign_keys:
        if not any(x.lower() == column.lower() for x in fk.columns):
            continue
        parent = probe.live.table(fk.ref_table)
        label = f"foreign key {fk.name or ', '.join(fk.columns)} -> {fk.ref_table}"
        if parent is None or any(parent.column(r) is None for r in fk.ref_columns):
            unchecked.append(f"{label} (the plan makes its parent)")
            continue
        match = " AND ".join(f"p.{q(r)} = filled.{q(x)}" for x, r in zip(fk.columns, fk.ref_columns))
        not_null = " AND ".join(f"filled.{q(x)} IS NOT NULL" for x in fk.columns)
        n = count(f"SELECT count(*) FROM {filled} WHERE {not_null} AND NOT EXISTS "
                  f"(SELECT 1 FROM {q(parent.name)} AS p WHERE {match})", label)
        if n:
            problems.append(f"{n} row{'s' if n != 1 else ''} would have no {fk.ref_table} row for {label}")
        elif n == 0:
            checked.append(f"every value has its {fk.ref_table} row")
    word = re.compile(rf"(?<![\w$]){re.escape(column)}(?![\w$])", re.I)
    for ck in target.check_constraints:
        if not word.search(ck.expression):
            continue
        label = f"CHECK {ck.name or ck.expression}"
        n = count(f"SELECT count(*) FROM {filled} WHERE NOT ({ck.expression})", label)
        if n:
            problems.append(f"{n} row{'s' if n != 1 else ''} would break {label}")
        elif n == 0:
            checked.append(f"{label} holds")
    return problems, checked, unchecked


_TRIGGER_EVENTS = re.compile(r"\bTRIGGER\s+.+?\s+(?:BEFORE|AFTER|INSTEAD\s+OF)\s+(?P<events>.+?)\s+ON\s", re.I | re.S)
_UPDATE_OF = re.compile(r"\bUPDATE(?:\s+OF\s+(?P<cols>.+?))?(?=\s+OR\s|$)", re.I | re.S)


def trigger_warnings(a, plan, live, fills: dict) -> tuple[str, ...]:
    """What a fill's UPDATE sets off: the plan writes a fill (and a MariaDB conversion) as an `UPDATE` of the
    table, which fires the table's enabled UPDATE triggers (PostgreSQL `UPDATE OF cols` only when the column
    is one of them), so an `updated_at`/version/audit trigger changes other columns or writes elsewhere.
    SQLite copies the table in a rebuild with its triggers set aside, and PostgreSQL `USING` is no UPDATE:
    the plan has no such statement there and nothing is said."""
    from .fills import _column_name

    c = a.change
    column = _column_name(c) if getattr(c, "column", None) is not None else None
    given = fills.get((c.table.lower(), column.lower()), {}) if column else {}
    if not given or plan is None or live is None:
        return ()
    exprs = [f"= ({f.expression})" for f in given.values()]
    statements = [s for step in plan.steps for s in step.statements]
    if not any(s.lstrip().upper().startswith("UPDATE ") and any(e in s for e in exprs) for s in statements):
        return ()
    names = live.names
    fired = []
    for name, t in sorted(live.triggers.items()):
        if names.table(t.table) != names.table(c.table) or any("DISABLE TRIGGER" in s.upper() for s in t.create):
            continue
        m = _TRIGGER_EVENTS.search(t.sql)
        update = _UPDATE_OF.search(m["events"]) if m else None
        if update is None:
            continue
        listed = update["cols"]
        if listed and column.lower() not in {x.strip().strip('"`').lower() for x in listed.split(",")}:
            continue
        fired.append(name)
    if not fired:
        return ()
    kind = " and ".join(sorted({f.kind for f in given.values()}))
    return (f"the {kind} runs as an UPDATE of {c.table}: its trigger{'s' if len(fired) > 1 else ''} "
            f"{', '.join(fired)} fire{'' if len(fired) > 1 else 's'} for the updated rows and may change other "
            "columns or write elsewhere; set them aside by hand around the migration if they must not",)
