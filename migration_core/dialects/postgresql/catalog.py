"""Read one PostgreSQL schema into a SchemaSnapshot with a fixed number of catalog queries, whatever
the table count: columns, constraints, indexes, enum types, then views and triggers (`objects.py`).

Normalization makes the live schema and the target (created in a scratch schema and read by
this same code) compare equal when they mean the same: `character varying` is `VARCHAR`,
casts PostgreSQL adds to defaults and CHECK text (`'x'::text`, `::regclass`) are dropped,
`now()` and `CURRENT_TIMESTAMP` are one spelling, an owned sequence's `nextval(..)` default
(SERIAL) and IDENTITY columns are markers, and enum columns carry their value list.
"""

from __future__ import annotations

import re
from collections import defaultdict

from ...snapshot import CheckConstraint, Column, ForeignKey, Index, Names, PrimaryKey, SchemaSnapshot, Table, UniqueConstraint
from ..server.catalog import squeeze_expr
from ..server.connection import runnable
from ..sqlite.catalog import is_ignored
from .objects import OBJECT_QUERIES, read_code, read_objects, read_outside

SERIAL = "serial"  # default marker: nextval() of a sequence owned by the column
IDENTITY = {"a": "identity always", "d": "identity by default"}

_Q_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END,
       t.typtype, t.typname, col_description(c.oid, a.attnum), ds.description, owned.seq
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped  -- a table may have no column
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_description ds ON ds.objoid = c.oid AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0
LEFT JOIN (SELECT dep.refobjid, dep.refobjsubid, min(s.relname) AS seq
           FROM pg_depend dep JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
           WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
           GROUP BY dep.refobjid, dep.refobjsubid) owned ON owned.refobjid = c.oid AND owned.refobjsubid = a.attnum
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""

_Q_CONSTRAINTS = """
SELECT c.relname, con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
       r.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i),
       con.confupdtype, con.confdeltype, con.condeferrable, con.condeferred,
       pg_get_constraintdef(con.oid), con.convalidated
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class r ON r.oid = con.confrelid
WHERE n.nspname = %s AND con.contype IN ('p', 'f', 'u', 'c')
ORDER BY c.relname, con.conname
"""

_Q_INDEXES = """
SELECT t.relname, i.relname, ix.indisunique, pg_get_indexdef(ix.indexrelid),
       ARRAY(SELECT a.attname FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(n, o)
             LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.n
             WHERE k.o <= ix.indnkeyatts ORDER BY k.o),
       pg_get_expr(ix.indpred, ix.indrelid)
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = %s AND t.relkind IN ('r', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY t.relname, i.relname
"""

_Q_ENUMS = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = %s GROUP BY t.typname
UNION ALL  -- sequences no column owns (NULL values tell them apart)
SELECT c.relname, NULL FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind = 'S' AND NOT EXISTS (
      SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
"""

CATALOG_QUERIES = 4 + OBJECT_QUERIES
NAMES = Names(tables_case_sensitive=True, columns_case_sensitive=True)  # quoted names are exact

_TYPE_NAMES = {
    "character varying": "VARCHAR",
    "character": "CHAR",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMPTZ",
    "time without time zone": "TIME",
    "time with time zone": "TIMETZ",
    "double precision": "FLOAT8",
    "real": "FLOAT4",
}
_CAST = re.compile(r"::(?:\"[^\"]+\"|[a-z_][a-z0-9_]*)(?: (?:varying|precision|without time zone|with time zone))?(?:\(\d+(?:,\d+)?\))?(?:\[\])?", re.I)
_NEXTVAL = re.compile(r"^nextval\('(?:[^']+\.)?\"?([^'\"]+)\"?'(?:::regclass)?\)$")
_NOW = re.compile(r"\b(now\(\)|current_timestamp|transaction_timestamp\(\)|localtimestamp)", re.I)
_QUOTED_NUMBER = re.compile(r"^'[+-]?[0-9]+(\.[0-9]+)?'$")
_NUMERIC_TYPES = {"SMALLINT", "INTEGER", "BIGINT", "NUMERIC", "FLOAT4", "FLOAT8"}
_IDX_HEAD = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ ", re.I)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def normalize_type(formatted: str, typtype: str, typname: str, enums: dict[str, tuple[str, ...]]) -> str:
    if typtype == "e":
        values = enums.get(typname, ())
        return f"ENUM {typname}(" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + ")"
    dims = re.search(r"(\[\])*$", formatted)[0]  # an array: `character varying(10)[]` is VARCHAR(10)[]
    formatted = formatted[: len(formatted) - len(dims)]
    base, paren, rest = formatted.partition("(")
    if paren:  # e.g. character varying(50), numeric(10,2), timestamp(3) without time zone
        size, _, tail = rest.partition(")")
        base = (base + tail).strip()
        name = _TYPE_NAMES.get(base, base.upper())
        return f"{name}({size.replace(' ', '')}){dims}"
    return _TYPE_NAMES.get(formatted, formatted.upper()) + dims


_SERIAL_TYPES = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}


def column_ddl(name: str, formatted: str, notnull: bool, default: str | None, identity: str, generated: str,
               collation: str | None, serial: bool) -> str:
    """A column's definition as stored, for a table's schema-only copy (its own sequence for SERIAL)."""
    q = quote_ident(name)
    if generated == "s":
        return f"{q} {formatted} GENERATED ALWAYS AS ({default}) STORED" + (" NOT NULL" if notnull else "")
    if identity:
        return f"{q} {formatted} GENERATED {'ALWAYS' if identity == 'a' else 'BY DEFAULT'} AS IDENTITY"
    if serial and formatted in _SERIAL_TYPES:
        return f"{q} {_SERIAL_TYPES[formatted]}" + (" NOT NULL" if notnull else "")
    return (f"{q} {formatted}" + (f" COLLATE {quote_ident(collation)}" if collation else "")
            + (f" DEFAULT {default}" if default is not None else "") + (" NOT NULL" if notnull else ""))


def normalize_expr(text: str | None) -> str | None:
    """Drop casts and redundant outer parentheses; one spelling for the current time."""
    if text is None:
        return None
    out = _CAST.sub("", text.strip())
    out = _NOW.sub("CURRENT_TIMESTAMP", out)
    # PostgreSQL deparses `a IN (1, 2)` as `a = ANY (ARRAY[1, 2])`; both sides are read the same way.
    return squeeze_expr(out)


def check_expr(definition: str) -> str | None:
    """The normalized expression of a `pg_get_constraintdef` CHECK (a NOT VALID one compares the same)."""
    body = definition[len("CHECK "):] if definition.upper().startswith("CHECK ") else definition
    return normalize_expr(re.sub(r"\s+NOT VALID$", "", body))


def conventional_name(table: str, kind: str, columns: tuple[str, ...]) -> str:
    """The name PostgreSQL gives an unnamed constraint (before truncation/deduplication)."""
    suffix = {"p": "pkey", "u": "key", "f": "fkey", "c": "check"}[kind]
    if kind == "p":
        return f"{table}_pkey"
    return "_".join((table, *columns, suffix)) if kind != "c" or columns else f"{table}_check"


def _action(code: str) -> str | None:
    return {"a": None, "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}.get(code)


def read_snapshot(conn, schema: str, ignore: tuple[str, ...] = (), *, objects: bool = True,
                  check_texts: dict[tuple[str, str], str] | None = None) -> SchemaSnapshot:
    """`conn` has a sqlite3-like `execute` (ServerConnection); `objects`: also read views and triggers
    (the models' scratch copy has none); `check_texts`: (table, constraint) -> the CHECK text to re-add
    it with, when not PostgreSQL's own deparsed text (`model_check_texts`)."""
    rows = conn.execute(_Q_ENUMS, (schema, schema)).fetchall()
    enums = {name: tuple(values) for name, values in rows if values is not None}
    sequences = tuple(sorted(name for name, values in rows if values is None))
    columns: dict[str, list[Column]] = defaultdict(list)
    comments: dict[str, str | None] = {}
    serial_cols: dict[str, set[str]] = defaultdict(set)
    ddl: dict[str, list[str]] = defaultdict(list)  # the columns and constraints as stored: a table's copy for a proof
    for (tbl, name, formatted, notnull, default, identity, generated, collation, typtype, typname,
         col_comment, tbl_comment, owned_seq) in conn.execute(_Q_COLUMNS, (schema,)).fetchall():
        if is_ignored(tbl, ignore):
            continue
        comments[tbl] = tbl_comment
        if name is None:  # `CREATE TABLE t ()`
            columns.setdefault(tbl, [])
            ddl.setdefault(tbl, [])
            continue
        ddl[tbl].append(column_ddl(name, formatted, notnull, default, identity, generated, collation,
                                   bool(default and owned_seq and _NEXTVAL.match(default))))
        gen = None
        if generated == "s":
            gen, default = normalize_expr(default), None
        elif identity:
            default = IDENTITY[identity]
            serial_cols[tbl].add(name)
        elif default and owned_seq and _NEXTVAL.match(default):
            default = SERIAL
            serial_cols[tbl].add(name)
        else:
            default = normalize_expr(default)
            if default is not None and default.upper() == "NULL":
                default = None
        ctype = normalize_type(formatted, typtype, typname, enums)
        if default and _QUOTED_NUMBER.match(default) and ctype.split("(")[0] in _NUMERIC_TYPES:
            default = default[1:-1]  # '0'::numeric and 0 store the same default
        columns[tbl].append(Column(
            name=name, type=ctype, nullable=not notnull,
            default=default, collation=collation, generated=gen, comment=col_comment or None,
        ))

    pks: dict[str, PrimaryKey] = {}
    fks: dict[str, list[ForeignKey]] = defaultdict(list)
    uniques: dict[str, list[UniqueConstraint]] = defaultdict(list)
    checks: dict[str, list[CheckConstraint]] = defaultdict(list)
    for (tbl, name, kind, cols, ref, ref_cols, on_upd, on_del, deferrable, deferred, definition,
         _validated) in conn.execute(_Q_CONSTRAINTS, (schema,)).fetchall():
        if tbl not in columns:
            continue
        cols = tuple(cols)
        raw_name = name
        clause = f"CONSTRAINT {quote_ident(name)} {definition}"
        if kind != "f":
            ddl[tbl].append(clause)
        if name == conventional_name(tbl, kind, cols):
            name = None  # PostgreSQL's own name: compare by definition, so a renamed table has no false diff
        if kind == "p":
            pks[tbl] = PrimaryKey(name, cols, autoincrement=len(cols) == 1 and cols[0] in serial_cols[tbl])
        elif kind == "f":
            fks[tbl].append(ForeignKey(
                name, cols, ref, tuple(ref_cols), _action(on_del), _action(on_upd),
                ("DEFERRABLE INITIALLY DEFERRED" if deferred else "DEFERRABLE") if deferrable else None, clause))
        elif kind == "u":
            uniques[tbl].append(UniqueConstraint(name, cols, clause))
        elif kind == "c":
            text = (check_texts or {}).get((tbl, raw_name)) or re.sub(r"\s+NOT VALID$", "", definition)
            checks[tbl].append(CheckConstraint(name, check_expr(definition), text))

    indexes: dict[str, list[Index]] = defaultdict(list)
    for tbl, name, unique, indexdef, cols, where in conn.execute(_Q_INDEXES, (schema,)).fetchall():
        if tbl not in columns:
            continue
        m = _IDX_HEAD.match(indexdef)
        body = indexdef[m.end():] if m else indexdef
        definition = ("unique " if unique else "") + normalize_expr(body)
        indexes[tbl].append(Index(name, tuple(cols), unique, definition, indexdef, normalize_expr(where)))

    tables = {
        name: Table(
            name=name, columns=tuple(cols), primary_key=pks.get(name), foreign_keys=tuple(fks[name]),
            unique_constraints=tuple(uniques[name]), check_constraints=tuple(checks[name]),
            indexes=tuple(indexes[name]), comment=comments.get(name),
            sql=f"CREATE TABLE {quote_ident(name)} (" + ", ".join(ddl[name]) + ")",
        )
        for name, cols in columns.items()
    }
    if not objects:
        return SchemaSnapshot("postgresql", tables, names=NAMES, enums=enums, sequences=sequences)
    views, triggers, routines = read_objects(conn, schema)
    outside = read_outside(conn, schema, {t.lower() for t in tables} | {v.lower() for v in views})  # views are kept, not outside
    return SchemaSnapshot("postgresql", tables, views, triggers, routines, outside, NAMES, enums, sequences,
                          read_code(conn, schema))


def model_check_texts(conn, scratch: str, metadata, sa_dialect) -> dict[tuple[str, str], str]:
    """(table, constraint name in `scratch`) -> the models' own `CHECK (...)` text, for each CHECK the
    models declare. A plan adds a CHECK from this text: PostgreSQL's deparsed form does not read back
    the same once stored again (`(x)::text = ANY ((ARRAY[...])::text[])` gains parentheses and casts).
    Unnamed CHECKs pair with the names PostgreSQL gave them in creation order (column constraints, then
    table constraints, as CREATE TABLE lists them)."""
    from sqlalchemy import CheckConstraint as SaCheck

    stored: dict[str, list[str]] = defaultdict(list)
    for tbl, name in conn.execute(
            "SELECT c.relname, con.conname FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND con.contype = 'c' ORDER BY con.oid",
            (scratch,)).fetchall():
        stored[tbl].append(name)
    compiler = sa_dialect.ddl_compiler(sa_dialect, None)
    out: dict[tuple[str, str], str] = {}
    for t in metadata.tables.values():
        declared = [c for col in t.columns for c in col.constraints if isinstance(c, SaCheck)]
        declared += [c for c in t._sorted_constraints if isinstance(c, SaCheck) and c not in declared]
        names = stored.get(t.name, [])
        named = {str(c.name) for c in declared if c.name}
        unnamed = [n for n in names if n not in named]
        anonymous = [c for c in declared if not c.name]
        if len(unnamed) != len(anonymous):
            continue  # checks made by something else (a type, a listener): keep PostgreSQL's own text
        pairs = [(str(c.name), c) for c in declared if c.name] + list(zip(unnamed, anonymous))
        for name, c in pairs:
            text = runnable(compiler.visit_check_constraint(c))
            out[(t.name, name)] = text[text.index("CHECK"):]
    return out

