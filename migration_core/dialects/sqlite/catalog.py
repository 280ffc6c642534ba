"""Read a SQLite schema into a SchemaSnapshot in four catalog queries, whatever the table count.

Pragma table-valued functions joined to `sqlite_schema` return every table's columns,
foreign keys and index columns at once; the stored CREATE text supplies what pragmas do
not report (constraint names, CHECK expressions, AUTOINCREMENT, collations, options).
"""

from __future__ import annotations

import fnmatch
import re
import sqlite3
from dataclasses import replace
from collections import defaultdict
from functools import lru_cache

from ...snapshot import CheckConstraint, Column, ForeignKey, Index, PrimaryKey, SchemaSnapshot, Table, Trigger, UniqueConstraint, View
from .sqltext import index_definition, normalize_expr, normalize_type, parse_create_table, tokenize

HISTORY_TABLE = "_migration_history"

_Q_SCHEMA = "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
_Q_COLUMNS = (
    "SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk, p.hidden "
    "FROM sqlite_schema m JOIN pragma_table_xinfo(m.name) p "
    "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY m.name, p.cid"
)
_Q_FKS = (
    "SELECT m.name, f.id, f.seq, f.\"table\", f.\"from\", f.\"to\", f.on_update, f.on_delete "
    "FROM sqlite_schema m JOIN pragma_foreign_key_list(m.name) f "
    "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY m.name, f.id, f.seq"
)
_Q_INDEX_COLUMNS = (
    "SELECT il.name, ii.seqno, ii.name "
    "FROM sqlite_schema m JOIN pragma_index_list(m.name) il JOIN pragma_index_xinfo(il.name) ii "
    "WHERE m.type = 'table' AND il.origin = 'c' AND ii.key = 1 ORDER BY il.name, ii.seqno"
)

CATALOG_QUERIES = 4


def affinity(declared: str) -> str:
    """SQLite's type affinity rules (datatype3.html section 3.1), in their order."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "TEXT"
    if "BLOB" in t or not t:
        return "BLOB"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "REAL"
    return "NUMERIC"


_INT = re.compile(r"[+-]?\d+")
_NUM = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@lru_cache(maxsize=8192)
def normalize_default(raw: str | None, declared_type: str) -> str | None:
    """Defaults that SQLite stores identically compare equal: `'0'` on an INTEGER column is `0`."""
    text = normalize_expr(raw)
    if text is None:
        return None
    toks = tokenize(text)
    if len(toks) == 1 and toks[0].kind == "string" and affinity(declared_type) in ("INTEGER", "REAL", "NUMERIC"):
        inner = toks[0].name
        if _INT.fullmatch(inner):
            return str(int(inner))
        if _NUM.fullmatch(inner):
            return repr(float(inner))
    if text.lower() == "null":
        return None
    return text


def is_ignored(name: str, ignore: tuple[str, ...]) -> bool:
    return name == HISTORY_TABLE or any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in ignore)


def schema_rows(conn: sqlite3.Connection) -> list[tuple]:
    """Every schema object's stored text: everything the snapshot is derived from."""
    return conn.execute(_Q_SCHEMA).fetchall()


def read_snapshot(conn: sqlite3.Connection, ignore: tuple[str, ...] = (), only: str | None = None,
                  rows: list[tuple] | None = None) -> SchemaSnapshot:
    """The whole schema, or with `only` a single table (the planner asks per table).
    `rows`: the result of `schema_rows(conn)` when the caller already has it."""
    if only is None:
        schema_rows = rows if rows is not None else conn.execute(_Q_SCHEMA).fetchall()
        col_rows = conn.execute(_Q_COLUMNS).fetchall()
        fk_rows = conn.execute(_Q_FKS).fetchall()
        idx_rows = conn.execute(_Q_INDEX_COLUMNS).fetchall()
    else:
        one = " AND m.name = ? COLLATE NOCASE "
        schema_rows = conn.execute(_Q_SCHEMA + " AND tbl_name = ? COLLATE NOCASE", (only,)).fetchall()
        col_rows = conn.execute(_Q_COLUMNS.replace(" ORDER BY", one + "ORDER BY"), (only,)).fetchall()
        fk_rows = conn.execute(_Q_FKS.replace(" ORDER BY", one + "ORDER BY"), (only,)).fetchall()
        idx_rows = conn.execute(_Q_INDEX_COLUMNS.replace(" ORDER BY", one + "ORDER BY"), (only,)).fetchall()

    table_sql: dict[str, str] = {}
    index_rows: list[tuple[str, str, str]] = []
    views: dict[str, View] = {}
    triggers: dict[str, Trigger] = {}
    for typ, name, tbl, sql in schema_rows:
        if typ == "table":
            if not is_ignored(name, ignore):
                table_sql[name] = sql
        elif typ == "index" and sql and not is_ignored(tbl, ignore):
            index_rows.append((name, tbl, sql))
        elif typ == "view":
            views[name] = View(name, sql)
        elif typ == "trigger":
            triggers[name] = Trigger(name, tbl, sql)

    columns: dict[str, list[tuple]] = defaultdict(list)
    for row in col_rows:
        if row[0] in table_sql:
            columns[row[0]].append(row[1:])
    fks: dict[str, dict[int, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    for tbl, fid, _seq, ref, frm, to, on_upd, on_del in fk_rows:
        if tbl in table_sql:
            fks[tbl][fid].append((ref, frm, to, on_upd, on_del))
    index_cols: dict[str, list[str | None]] = defaultdict(list)
    for iname, _seq, cname in idx_rows:
        index_cols[iname].append(cname)
    index_items: dict[str, list[tuple]] = defaultdict(list)
    for iname, tbl, sql in index_rows:
        index_items[tbl].append((iname, sql, tuple(index_cols.get(iname, ()))))

    pk_of: dict[str, tuple[str, ...]] = {}
    tables: dict[str, Table] = {}
    for name, sql in table_sql.items():
        fk_groups = tuple((fid, tuple(parts)) for fid, parts in sorted(fks[name].items()))
        t = _build_table(name, sql, tuple(columns[name]), fk_groups, tuple(sorted(index_items[name])))
        tables[name] = t
        pk_of[name.lower()] = t.primary_key.columns if t.primary_key else ()
    # FKs written as `REFERENCES parent` point at the parent's primary key.
    for name, t in tables.items():
        if any(not fk.ref_columns for fk in t.foreign_keys):
            fixed = tuple(
                fk if fk.ref_columns else ForeignKey(fk.name, fk.columns, fk.ref_table, pk_of.get(fk.ref_table.lower(), ()), fk.on_delete, fk.on_update, fk.deferrable)
                for fk in t.foreign_keys
            )
            tables[name] = replace(t, foreign_keys=fixed)
    return SchemaSnapshot("sqlite", tables, views, triggers)


@lru_cache(maxsize=16384)
def _build_table(name: str, sql: str, col_rows: tuple, fk_groups: tuple, index_items: tuple) -> Table:
    """One table from its catalog rows. Memoized on exactly those rows (all it depends on), so a
    re-read after a change rebuilds only the tables that changed, and a live table stored with
    the same text as the target's is not built twice."""
    p = parse_create_table(sql)
    pcols = {c.name.lower(): c for c in p.columns}
    without_rowid = "WITHOUT ROWID" in p.options
    pk_cols = tuple(r[1] for r in sorted((r for r in col_rows if r[5]), key=lambda r: r[5]))
    rowid_alias = len(pk_cols) == 1 and not without_rowid
    cols = []
    for cid, cname, ctype, notnull, dflt, pk, hidden in col_rows:
        pc = pcols.get(cname.lower())
        declared = normalize_type(ctype)
        nullable = not notnull
        if rowid_alias and pk and declared == "INTEGER":
            nullable = False  # a rowid alias can never hold NULL, whatever its DDL says
        cols.append(
            Column(
                name=cname,
                type=declared,
                nullable=nullable,
                default=normalize_default(dflt, declared),
                collation=(pc.collation.upper() if pc and pc.collation else None),
                generated=(pc.generated if pc else None) if hidden in (2, 3) else None,
                definition=pc.definition if pc else f'"{cname}" {ctype}',
            )
        )
    autoinc = any(c.autoincrement for c in p.columns)
    primary_key = PrimaryKey(p.pk_name, pk_cols, autoinc) if pk_cols else None

    uniques = [UniqueConstraint(n, tuple(cols_)) for n, cols_ in p.uniques]
    checks = [CheckConstraint(n, e) for n, e in p.checks]
    parsed_fks = list(p.fks)
    for c in p.columns:
        uniques += [UniqueConstraint(n, (c.name,)) for n in c.unique]
        checks += [CheckConstraint(n, e) for n, e in c.checks]
        parsed_fks += c.fks
    fk_list = []
    for _fid, parts in fk_groups:
        cols_ = tuple(x[1] for x in parts)
        match = next((f for f in parsed_fks if tuple(c.lower() for c in f.columns) == tuple(c.lower() for c in cols_)), None)
        fk_list.append(
            ForeignKey(
                name=match.name if match else None,
                columns=cols_,
                ref_table=parts[0][0],
                ref_columns=tuple(x[2] for x in parts) if all(x[2] for x in parts) else (),
                on_delete=_action(parts[0][4]),
                on_update=_action(parts[0][3]),
                deferrable=match.deferrable if match else None,
            )
        )
    indexes = []
    for iname, isql, icols in index_items:
        definition, where = index_definition(isql)
        unique = definition.startswith("unique ")
        # The table name is part of the stored text; compare definitions without it.
        definition = re.sub(r"^(unique )?on \S+ ", r"\1on ", definition)
        indexes.append(Index(iname, icols, unique, definition, isql, where))
    return Table(
        name=name,
        columns=tuple(cols),
        primary_key=primary_key,
        foreign_keys=tuple(fk_list),
        unique_constraints=tuple(uniques),
        check_constraints=tuple(checks),
        indexes=tuple(sorted(indexes, key=lambda i: i.name)),
        options=p.options,
        sql=sql,
    )


def _action(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.upper()
    return None if v in ("NO ACTION", "") else v
