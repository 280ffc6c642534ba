"""Data fills: the value existing rows get where a change needs one, so a refusal has a way forward.

Peers leave this to hand-written SQL: Prisma refuses "a required column without a default on a
non-empty table", migra (issue 101) emits an ADD COLUMN .. NOT NULL that fails on data, EF Core users
ask for "a value for existing rows only, future rows must set it" (efcore issue 27084), and Atlas'
reviewed plans show the same `UPDATE .. SET .. WHERE col IS NULL` written by hand.

`--fill table.column=EXPR` (MCP `fills`) gives existing rows a value for a new NOT NULL column without
a default, or for the NULL rows of a column made NOT NULL (only those rows are updated).
`--using table.column=EXPR` gives the conversion of a type change (PostgreSQL `ALTER COLUMN .. TYPE ..
USING`, section "ALTER TABLE" of the PostgreSQL docs; SQLite in the copy of its table rebuild; MariaDB an
UPDATE before the `MODIFY COLUMN`).

EXPR is a SQL expression over the row's own columns (the models' names). It is parsed with sqlglot and
checked before anything runs: one expression, no second statement, no comment, no subquery or other
table, and only the dialect's allowlisted built-in functions (dialects/<name>/fillfuncs.py): read-only
commands evaluate fills, so a user-defined function is never called. Every data check that evaluates a
fill also runs in a read-only transaction that is rolled back (`_count`), so a function the allowlist
missed still cannot write. The plan runs it inside the migration's transaction (MariaDB:
with the touched tables dumped first), so it is part of the plan id and of the history's statements;
the probes re-check the data with it applied.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from contextlib import contextmanager
from functools import lru_cache

from . import changes as ch
from .errors import ConfigurationError

_SQLGLOT_DIALECT = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql"}
FILL_KINDS = ("fill", "using")
_MAX_LENGTH = 10_000  # characters of one expression
_MAX_DEPTH = 32  # nesting of brackets: deeper is refused before sqlglot's recursive parser (~20 frames a level) sees it
# Forms whose sqlglot node is not named like the function (a cast, CASE, EXTRACT ... FROM): parsed with
# the allowlisted names so their node kinds are allowed too.
_SPECIAL_FORMS = ("CAST(a AS TEXT)", "CASE WHEN a THEN 1 ELSE 2 END", "EXTRACT(YEAR FROM a)", "POSITION('x' IN a)",
                  "TRIM(BOTH 'x' FROM a)", "SUBSTRING(a FROM 1 FOR 2)", "CURRENT_DATE", "CURRENT_TIMESTAMP", "CURRENT_TIME", "ARRAY[a]",
                  "DATE_ADD(a, INTERVAL 1 DAY)", "DATE_SUB(a, INTERVAL 1 DAY)")
_TARGET = re.compile(r"^\s*(?P<table>[^.=\s]+)\.(?P<column>[^.=\s]+)\s*=(?P<expr>.*)$", re.S)


@dataclass(frozen=True)
class Fill:
    kind: str  # "fill" or "using"
    table: str  # the models' names
    column: str
    expression: str  # as given, stripped; checked by `check_expression`
    spec: str  # "table.column=EXPR", as in the plan id and the history

    @property
    def flag(self) -> str:
        """How a message names it, in words both the CLI's and the MCP tools' users read alike."""
        return f"{self.kind} {self.spec}"


def parse_specs(kind: str, specs: list[str] | tuple[str, ...] | None) -> list[Fill]:
    """`table.column=EXPR` items; ConfigurationError (exit 2) on a malformed one or a column given twice."""
    out: list[Fill] = []
    seen: set[tuple[str, str]] = set()
    for raw in specs or ():
        text = str(raw)
        m = _TARGET.match(text)
        if not m or not m["expr"].strip():
            raise ConfigurationError(f"{kind} {text[:200]!r}: expected table.column=EXPR, e.g. users.email=lower(name) || '@example.com'")
        key = (m["table"].lower(), m["column"].lower())
        if key in seen:
            raise ConfigurationError(f"{kind} for {m['table']}.{m['column']} is given twice; give one expression per column")
        seen.add(key)
        expr = m["expr"].strip()
        out.append(Fill(kind, m["table"], m["column"], expr, f"{m['table']}.{m['column']}={expr}"))
    return out


def check_expression(fill: Fill, dialect: str, columns: set[str]) -> None:
    """Parse EXPR as one expression of `dialect` over `columns` (lower-cased names) of its own table;
    ConfigurationError with the reason otherwise. Nothing is executed."""
    try:
        _check_expression(fill, dialect, columns)
    except RecursionError:  # nesting without brackets (`NOT NOT ..`, `- - ..`) deeper than the parser goes
        raise ConfigurationError(f"{fill.flag[:200]}: the expression is nested too deeply to check; "
                                 "write it with fewer nested operators") from None


def _check_expression(fill: Fill, dialect: str, columns: set[str]) -> None:
    try:
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ParseError, TokenError
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ConfigurationError("fills need the sqlglot package to check their expressions (pip install sqlglot)") from None
    where = f"{fill.flag if len(fill.flag) <= 200 else fill.flag[:200] + '...'}: "
    read = _SQLGLOT_DIALECT.get(dialect)
    if len(fill.expression) > _MAX_LENGTH:
        raise ConfigurationError(where + f"the expression is longer than {_MAX_LENGTH} characters")
    if _nesting(fill.expression) > _MAX_DEPTH:
        raise ConfigurationError(where + f"the expression is nested more than {_MAX_DEPTH} brackets deep")
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its fallbacks are our refusals, not warnings on stderr
    try:
        tokens = sqlglot.tokenize(fill.expression, read=read)
    except (ParseError, TokenError) as exc:
        raise ConfigurationError(where + f"not a SQL expression: {str(exc).splitlines()[0]}") from None
    if any(t.comments for t in tokens) or "--" in fill.expression or "/*" in fill.expression:
        raise ConfigurationError(where + "comments are not allowed in a fill expression")
    if any(t.token_type.name == "SEMICOLON" for t in tokens):
        raise ConfigurationError(where + "must be one expression, not several statements")
    try:
        # Parsed where the plan puts it, as a value: `REPLACE(..)` is then the function, not MySQL's statement.
        parsed = sqlglot.parse(f"SELECT ({fill.expression})", read=read)
    except (ParseError, TokenError) as exc:
        raise ConfigurationError(where + f"not a SQL expression: {str(exc).splitlines()[0]}") from None
    if len(parsed) != 1 or not isinstance(parsed[0], exp.Select) or len(parsed[0].expressions) != 1:
        raise ConfigurationError(where + "must be one expression, not several statements")
    root = parsed[0]
    tree = root.expressions[0]
    forbidden = (exp.Query, exp.Subquery, exp.Exists, exp.Table, exp.From, exp.Join, exp.DDL, exp.DML, exp.Command,
                 exp.Into, exp.Star)
    extra = [k for k, v in root.args.items() if k != "expressions" and v]
    bad = next((node for node in tree.walk() if isinstance(node, forbidden)), None)
    if bad is not None or extra:
        raise ConfigurationError(where + "must be an expression over the row's own columns: no query, subquery, "
                                         "other table or statement")
    for node in tree.walk():
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.USERDEFINED:
            raise ConfigurationError(where + f"casts to the type {node.sql()} (not a built-in type); a user-defined "
                                             "type's conversion may run user code")
        refused = _refused_call(node, dialect)
        if refused:
            raise ConfigurationError(where + f"function {refused}() is not one a fill may call: a fill may use only the "
                                             "built-in functions that compute a value from their arguments (string, "
                                             "math, date/time, casts, COALESCE/NULLIF/CASE); user-defined functions and "
                                             "functions that read or write anything else are refused")
        if isinstance(node, exp.Column):
            if node.table:
                raise ConfigurationError(where + f"refers to {node.table}.{node.name}: a fill may use only the columns "
                                                 f"of {fill.table} itself, by their names alone ({node.name})")
            if node.name.lower() not in columns:
                known = ", ".join(sorted(columns)) or "none"
                raise ConfigurationError(where + f"{fill.table} has no column {node.name!r} to compute it from "
                                                 f"(its columns now: {known})")


def _nesting(text: str) -> int:
    """The deepest bracket nesting of `text` (brackets inside quotes count too: an over-estimate is safe)."""
    depth = deepest = 0
    for ch_ in text:
        if ch_ in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch_ in ")]}":
            depth = max(depth - 1, 0)
    return deepest


def _call_name(node, exp) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.key).lower()


@lru_cache(maxsize=None)
def _allowed(dialect: str) -> frozenset[str]:
    """The dialect's allowlisted function names (dialects/<name>/fillfuncs.py) with the sqlglot node kinds
    they parse into, so a typed node (`LOWER(x)` is exp.Lower) is checked by the same list."""
    import sqlglot
    from sqlglot import exp

    names = importlib.import_module(f"migration_core.dialects.{dialect}.fillfuncs").NAMES
    read = _SQLGLOT_DIALECT.get(dialect)
    out = set(names)
    forms = [f"{n}({', '.join('abc'[:k])})" for n in sorted(names) for k in (0, 1, 2, 3)]
    for form in [*forms, *_SPECIAL_FORMS]:
        try:
            tree = sqlglot.parse_one(f"SELECT {form}", read=read)
        except Exception:  # noqa: BLE001 - a form of the wrong arity: the others give its kind
            continue
        for node in tree.walk():
            if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous):
                out.add(node.key.lower())
    return frozenset(out)


def _refused_call(node, dialect: str) -> str | None:
    """The name of the call `node` makes when the dialect's allowlist has no room for it, else None.
    Operators are not calls; a qualified call (`public.f(x)`) and a window are refused outright."""
    from sqlglot import exp

    if isinstance(node, exp.Dot):
        return node.sql()[:80]
    if isinstance(node, exp.Window):
        return node.this.sql(dialect=_SQLGLOT_DIALECT.get(dialect)).split("(", 1)[0].strip().lower()[:60] or "over"
    if not isinstance(node, exp.Func) or isinstance(node, (exp.Binary, exp.Unary, exp.Predicate)):
        return None
    name = _call_name(node, exp)
    if name in _allowed(dialect):
        return None
    if isinstance(node, exp.Anonymous):
        return name
    written = node.sql(dialect=_SQLGLOT_DIALECT.get(dialect))  # the typed node's name in the dialect's spelling
    return written.split("(", 1)[0].strip().lower()[:60] or name


def resolve(fills: list[Fill], diff, live, target, dialect: str) -> dict[tuple[str, str], dict[str, Fill]]:
    """Match each fill with the pending change it serves and check its expression; ConfigurationError
    (exit 2) when no pending change needs it. Returns {(table, column) lower-cased: {kind: Fill}}."""
    out: dict[tuple[str, str], dict[str, Fill]] = {}
    renamed = {c.table.lower() for c in diff.changes if isinstance(c, (ch.RenameColumn, ch.RenameTable))}
    for f in fills:
        key = (f.table.lower(), f.column.lower())
        same = [c for c in diff.changes if c.table.lower() == key[0] and getattr(c, "column", None) is not None
                and _column_name(c).lower() == key[1]]
        if f.kind == "fill":
            ok = any(_needs_fill(c) for c in same)
            need = ("a new NOT NULL column without a default, or a column made NOT NULL")
        else:
            ok = any(isinstance(c, ch.AlterColumnType) for c in same)
            need = "a change of the column's type"
        if not ok:
            raise ConfigurationError(f"{f.flag}: no pending change of {f.table}.{f.column} needs it ({f.kind} is for {need}); "
                                     "nothing was changed")
        if key[0] in renamed:
            raise ConfigurationError(f"{f.flag}: {f.table} is also renamed (or has a renamed column) in this plan; "
                                     "migrate the rename first, then the fill")
        live_table = live.table(f.table)
        columns = {c.name.lower() for c in live_table.columns} if live_table else set()
        check_expression(f, dialect, columns)
        out.setdefault(key, {})[f.kind] = f
    return out


def _column_name(c) -> str:
    col = c.column
    return col.name if hasattr(col, "name") else str(col)


def _needs_fill(c) -> bool:
    if isinstance(c, ch.AddColumn):
        col = c.column
        return not col.nullable and col.default is None and col.generated is None
    return isinstance(c, ch.AlterColumnNullable) and not c.new.nullable


def fill_hint(table: str, column: str) -> str:
    """The way forward a refusal names, in both the CLI's and the MCP server's terms."""
    spec = f"{table}.{column}=EXPR"
    return f"give existing rows a value with --fill {spec} (MCP: fills=[\"{spec}\"]), EXPR an SQL expression over the row's columns"


def using_hint(table: str, column: str) -> str:
    spec = f"{table}.{column}=EXPR"
    return f"give the conversion with --using {spec} (MCP: using=[\"{spec}\"]), EXPR an SQL expression over the row's columns"


def _count(probe, table: str, where: str) -> tuple[int | None, str | None]:
    """(rows of `table` matching `where` over the live data, with target names), or (None, the error).
    `where` holds a user's expression: it runs read-only and rolled back (`_read_only`)."""
    try:
        with _read_only(probe):
            return probe._count(table, where), None
    except Exception as exc:  # noqa: BLE001 - the database's own word on an expression it cannot evaluate
        return None, " ".join(str(getattr(exc, "orig", exc)).split())[:300]


@contextmanager
def _read_only(probe):
    """Defence in depth behind the allowlist: the checks that evaluate a fill run in a read-only transaction
    that is always rolled back (the dialect's `read_only_begin`; inside an open transaction, a savepoint
    made read-only with `read_only_nested` and rolled back to), so even a function the allowlist missed
    cannot write. SQLite needs none: a database file holds no functions, only SQLite's built-ins."""
    conn = getattr(probe, "conn", None)
    dialect = getattr(probe, "dialect", None)
    begin = getattr(dialect, "read_only_begin", None)
    if conn is None or not begin:
        yield
        return
    if not getattr(probe, "_ready", True):  # session settings outside the transaction the rollback ends
        for stmt in dialect.probe_setup:
            conn.execute(stmt)
        probe._ready = True
    if conn.in_transaction:
        conn.execute("SAVEPOINT mig_fill_check")
        try:
            for stmt in getattr(dialect, "read_only_nested", ()):
                conn.execute(stmt)
            yield
        finally:
            conn.execute("ROLLBACK TO SAVEPOINT mig_fill_check")
            conn.execute("RELEASE SAVEPOINT mig_fill_check")
        return
    conn.execute(begin)
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _quote(probe):
    q = getattr(probe, "q", None)
    return q if callable(q) else (lambda name: '"' + name.replace('"', '""') + '"')


def _unchecked(what: list[str]) -> str:
    return (f"; NOT checked: {'; '.join(what)} (try it on a copy with diff --rehearse, MCP preview_diff(rehearse=true))"
            if what else "")


def _recheck(a, probe, q, c, column: str, f, noun: str, where: str, fills: dict, left_text):
    """The data re-checked with a fill or conversion `f` applied: (the assessment refused, (), ()) when
    `f` fails on the data, leaves rows `where` counts (worded by `left_text(n)`), or breaks a key, a
    foreign key or a CHECK; else (None, what was checked, what could not be)."""
    from dataclasses import replace

    from .fillcheck import constraint_checks

    def refused(why: str):
        return replace(a, risk="data_dependent", blocked=True, reason=f"the {noun} {f.spec}{why}"), (), ()

    left, error = _count(probe, c.table, where)
    if error:
        return refused(f" fails on the data: {error}")
    if left:
        return refused(f" {left_text(left)}")
    problems, checked, unchecked = constraint_checks(probe, c, column, f, q, _read_only, fills)
    if problems:
        return refused(f": {'; '.join(problems)}")
    return None, checked, unchecked


def reassess(a, probe, fills: dict, rows: dict[str, int]):
    """An assessment (assess.ChangeAssessment) seen with the fills applied: the probe re-checks the data as the
    fill leaves it; a refusal a fill would resolve names the flag to add."""
    from dataclasses import replace

    c = a.change
    column = _column_name(c) if getattr(c, "column", None) is not None else None
    if column is None:
        return a
    given = fills.get((c.table.lower(), column.lower()), {})
    q = _quote(probe)
    if _needs_fill(c):
        f = given.get("fill")
        if f is None:
            if a.blocked:
                return replace(a, reason=f"{a.reason}; or {fill_hint(c.table, column)}")
            return a
        new_column = isinstance(c, ch.AddColumn)
        where = f"({f.expression}) IS NULL" if new_column else f"{q(column)} IS NULL AND ({f.expression}) IS NULL"
        what = "existing row" if new_column else "NULL row"
        refused, checked, unchecked = _recheck(
            a, probe, q, c, column, f, "fill", where, fills,
            lambda n: f"still leaves {n} row{'s' if n != 1 else ''} NULL in {c.table}.{column}")
        if refused:
            return refused
        n = rows.setdefault(c.table, probe.row_count(c.table))
        return replace(a, risk="data_dependent", blocked=False,
                       reason=f"each {what} of {c.table} ({n} row{'s' if n != 1 else ''} in the table) gets {f.expression} "
                              f"(fill); checked: {', '.join(['none is left NULL', *checked])}{_unchecked(unchecked)}")
    if isinstance(c, ch.AlterColumnType):
        f = given.get("using")
        if f is None:
            if a.blocked and "convert" in a.reason:
                return replace(a, reason=f"{a.reason}; {using_hint(c.table, column)}")
            return a
        refused, checked, unchecked = _recheck(
            a, probe, q, c, column, f, "conversion", f"{q(column)} IS NOT NULL AND ({f.expression}) IS NULL", fills,
            lambda n: f"turns {n} value{'s' if n != 1 else ''} of {c.table}.{column} into NULL")
        if refused:
            return refused
        return replace(a, risk="data_dependent", blocked=False,
                       reason=f"converted with {f.expression} (using); checked: {', '.join(['no value becomes NULL', *checked])}"
                              f"{_unchecked(unchecked)}; a value that does not convert to {c.new.type} stops the migration, "
                              "which then changes nothing")
    return a

