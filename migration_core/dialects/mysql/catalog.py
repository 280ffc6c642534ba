"""Read one MariaDB/MySQL database into a SchemaSnapshot with a fixed number of information_schema
queries, whatever the table count: collation, tables, columns, index columns, constraints, check
clauses, then views and triggers (`objects.py`).

Normalization (the target is created in a scratch database and read by this same code):
display widths go (`int(11)` is `INT`), `tinyint(1)` is `BOOLEAN`, ENUM/SET are compared as value
lists in their order (MySQL sorts by it), `current_timestamp()` is `CURRENT_TIMESTAMP`, backquotes
leave expressions, and names the server chose itself (`PRIMARY`, `<table>_ibfk_<n>`,
`CONSTRAINT_<n>`, an unnamed key's or a foreign key's own index) are not compared; a table's
collation is an option, and a column's collation is compared with its table's. MariaDB's JSON is
LONGTEXT plus a `json_valid()` CHECK on both sides alike. Unique constraints are unique indexes in
MySQL, so they appear as indexes only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace

from ...snapshot import CheckConstraint, Column, ForeignKey, Index, Names, PrimaryKey, SchemaSnapshot, Table
from ..server.catalog import squeeze_expr
from ..sqlite.catalog import is_ignored
from .objects import OBJECT_QUERIES, read_code, read_objects

AUTO_INCREMENT = "auto_increment"

_Q_TABLES = ("SELECT table_name, table_comment, table_collation, engine FROM information_schema.tables "
             "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name")  # plans come out the same each time
_Q_COLUMNS = ("SELECT table_name, column_name, column_type, is_nullable, column_default, extra, collation_name, "
              "generation_expression, column_comment FROM information_schema.columns WHERE table_schema = %s "
              "ORDER BY table_name, ordinal_position")
_Q_INDEXES = ("SELECT table_name, index_name, non_unique, seq_in_index, column_name, sub_part "
              "FROM information_schema.statistics WHERE table_schema = %s ORDER BY table_name, index_name, seq_in_index")
_Q_FKS = ("SELECT k.table_name, k.constraint_name, k.column_name, k.referenced_table_name, k.referenced_column_name, "
          "r.update_rule, r.delete_rule FROM information_schema.key_column_usage k "
          "JOIN information_schema.referential_constraints r ON r.constraint_schema = k.constraint_schema "
          "AND r.constraint_name = k.constraint_name AND r.table_name = k.table_name "
          "WHERE k.table_schema = %s AND k.referenced_table_name IS NOT NULL "
          "ORDER BY k.table_name, k.constraint_name, k.ordinal_position")
_Q_CHECKS = ("SELECT table_name, constraint_name, check_clause FROM information_schema.check_constraints "
             "WHERE constraint_schema = %s ORDER BY table_name, constraint_name")
_Q_DEFAULT_COLLATION = ("SELECT default_collation_name, @@lower_case_table_names, @@default_storage_engine "
                        "FROM information_schema.schemata "
                        "WHERE schema_name = %s")

CATALOG_QUERIES = 6 + OBJECT_QUERIES

_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)")
_ENUM = re.compile(r"^(enum|set)\((.*)\)$", re.S)
_NOW = re.compile(r"\bcurrent_timestamp(\(\))?|\bnow\(\)", re.I)


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def normalize_type(column_type: str) -> str:
    t = column_type.strip()
    if t.lower() == "tinyint(1)":
        return "BOOLEAN"
    m = _ENUM.match(t)
    if m:  # in their order: MySQL sorts and compares ENUM values by their position in the list
        values = re.findall(r"'((?:[^']|'')*)'", m[2])
        return f"{m[1].upper()}(" + ",".join(f"'{v}'" for v in values) + ")"
    t = _WIDTH.sub(lambda m: m[1], t)
    return t.upper()


def normalize_expr(text: str | None) -> str | None:
    if text is None:
        return None
    out = text.replace("`", "").strip()
    out = _NOW.sub("CURRENT_TIMESTAMP", out)
    return squeeze_expr(out)


def server_named(ix: Index, fk_names: dict[tuple[str, ...], str]) -> bool:
    """Did MariaDB name this index itself? An unnamed key or index takes its first column's name
    (`code`, then `code_2`, ...), and the index InnoDB adds for a foreign key takes the key's name
    (https://mariadb.com/kb/en/foreign-keys/). Such names are compared by definition only."""
    first = (ix.columns[0] or "").lower() if ix.columns else ""
    name = ix.name.lower()
    if first and re.fullmatch(re.escape(first) + r"(_\d+)?", name):
        return True
    cols = tuple((c or "").lower() for c in ix.columns)
    return fk_names.get(cols) == name


def _action(rule: str | None) -> str | None:
    r = (rule or "").upper()
    return None if r in ("", "NO ACTION", "RESTRICT") else r


def read_snapshot(conn, schema: str, ignore: tuple[str, ...] = (), *, objects: bool = True) -> SchemaSnapshot:
    """`objects`: also read views and triggers (the models' scratch copy has none)."""
    default_collation, lower_case, default_engine = conn.execute(_Q_DEFAULT_COLLATION, (schema,)).fetchone() or (None, 0, None)
    names = Names(tables_case_sensitive=not int(lower_case or 0), columns_case_sensitive=False)
    rows = conn.execute(_Q_TABLES, (schema,)).fetchall()
    all_tables = {name: (comment or None) for name, comment, _coll, _engine in rows}
    tables_meta = {name: comment for name, comment in all_tables.items() if not is_ignored(name, ignore)}
    table_collation = {name: coll or default_collation for name, _comment, coll, _engine in rows}
    # options that differ from the server's defaults, sorted: "COLLATE x", "ENGINE=y"
    options = {name: tuple(sorted([*([f"COLLATE {table_collation[name]}"] if table_collation[name] != default_collation else []),
                                   *([f"ENGINE={engine}"] if engine and default_engine and engine.lower() != default_engine.lower()
                                     else [])]))
               for name, _comment, _coll, engine in rows}
    columns: dict[str, list[Column]] = defaultdict(list)
    auto: dict[str, set[str]] = defaultdict(set)
    for tbl, name, ctype, nullable, default, extra, collation, generation, comment in conn.execute(_Q_COLUMNS, (schema,)).fetchall():
        if tbl not in tables_meta:
            continue
        extra = (extra or "").lower()
        gen = None
        if "generated" in extra:  # VIRTUAL or STORED (PERSISTENT): a change between them recomputes nothing but storage
            gen, default = normalize_expr(generation) + (" VIRTUAL" if "virtual" in extra else ""), None
        elif AUTO_INCREMENT in extra:
            default = AUTO_INCREMENT
            auto[tbl].add(name)
        else:
            default = normalize_expr(default)
            if default is not None and default.upper() == "NULL":
                default = None
            if "on update" in extra:
                default = f"{default} ON UPDATE {normalize_expr(extra.split('on update', 1)[1])}"
        columns[tbl].append(Column(
            name=name, type=normalize_type(ctype), nullable=nullable == "YES", default=default,
            collation=collation if collation and collation != table_collation[tbl] else None,
            generated=gen, comment=comment or None,
        ))

    index_parts: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for tbl, iname, non_unique, _seq, col, sub_part in conn.execute(_Q_INDEXES, (schema,)).fetchall():
        if tbl in tables_meta:
            index_parts[(tbl, iname)].append((non_unique, col, sub_part))
    pks: dict[str, PrimaryKey] = {}
    indexes: dict[str, list[Index]] = defaultdict(list)
    for (tbl, iname), parts in index_parts.items():
        cols = tuple(p[1] for p in parts)
        if iname == "PRIMARY":
            pks[tbl] = PrimaryKey(None, cols, autoincrement=len(cols) == 1 and cols[0] in auto[tbl])
            continue
        unique = not int(parts[0][0])
        spec = ", ".join(c + (f"({s})" if s else "") for _, c, s in parts)
        definition = f"{'unique ' if unique else ''}({spec})"
        indexes[tbl].append(Index(iname, cols, unique, definition, "", None))

    fk_parts: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    fk_names: dict[str, dict[tuple[str, ...], str]] = defaultdict(dict)
    for tbl, cname, col, ref, ref_col, upd, dele in conn.execute(_Q_FKS, (schema,)).fetchall():
        if tbl in tables_meta:
            fk_parts[(tbl, cname)].append((col, ref, ref_col, upd, dele))
    fks: dict[str, list[ForeignKey]] = defaultdict(list)
    for (tbl, cname), parts in fk_parts.items():
        name = None if re.fullmatch(re.escape(tbl) + r"_ibfk_\d+", cname) else cname
        fks[tbl].append(ForeignKey(name, tuple(p[0] for p in parts), parts[0][1], tuple(p[2] for p in parts),
                                   _action(parts[0][4]), _action(parts[0][3])))
        fk_names[tbl][tuple(p[0].lower() for p in parts)] = cname.lower()
    for tbl, items in indexes.items():
        indexes[tbl] = [replace(i, auto=server_named(i, fk_names[tbl])) for i in items]

    checks: dict[str, list[CheckConstraint]] = defaultdict(list)
    for tbl, cname, clause in conn.execute(_Q_CHECKS, (schema,)).fetchall():
        if tbl in tables_meta:
            name = None if re.fullmatch(r"CONSTRAINT_\d+", cname) else cname
            checks[tbl].append(CheckConstraint(name, normalize_expr(clause)))

    tables = {
        name: Table(name=name, columns=tuple(columns[name]), primary_key=pks.get(name), foreign_keys=tuple(fks[name]),
                    check_constraints=tuple(checks[name]), indexes=tuple(sorted(indexes[name], key=lambda i: i.name)),
                    comment=tables_meta[name],
                    options=options[name])
        for name in tables_meta
    }
    if not objects:
        return SchemaSnapshot("mysql", tables, names=names)
    views, triggers = read_objects(conn, schema, {t.lower() for t in all_tables})
    return SchemaSnapshot("mysql", tables, views, triggers, names=names, code=read_code(conn, schema))
