"""What a rollback preview can tell, without touching anything, about a restore that will be refused.

The restore itself (backup.py, logical.py) first reads what other schemas built on the managed one
(`outside.read_outside`, which refuses up front what cannot be set aside), and makes those objects
again at the end of its one transaction, which fails, rolling everything back, when an object reads
a column or relation the backup does not have (a view of another schema over a column the migration
added). `restore_problems` runs the same up-front read, and checks each such object's references in
the managed schema (pg_depend, PostgreSQL docs "pg_depend": a view depends on each column it reads)
against the backup's table definitions, so `rollback --dry-run` and the confirmation question say that
the restore will be refused instead of showing a normal one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import RestoreRefused
from .outside import read_outside

# Direct references of objects outside `ns` to tables, views, sequences and their columns inside it.
_Q_REFERENCES = """
SELECT DISTINCT w.who, c.relname, a.attname
FROM pg_depend d
JOIN pg_class c ON d.refclassid = 'pg_class'::regclass AND c.oid = d.refobjid AND c.relnamespace = %(ns)s
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')  -- an index (a key a foreign key uses) comes back with its table
LEFT JOIN pg_attribute a ON d.refobjsubid > 0 AND a.attrelid = c.oid AND a.attnum = d.refobjsubid
CROSS JOIN LATERAL (SELECT
  CASE WHEN d.classid = 'pg_rewrite'::regclass THEN (SELECT pg_describe_object('pg_class'::regclass, r.ev_class, 0)
                                                    FROM pg_rewrite r WHERE r.oid = d.objid)
       ELSE pg_describe_object(d.classid, d.objid, 0) END AS who,
  CASE WHEN d.classid = 'pg_rewrite'::regclass THEN (SELECT k.relnamespace FROM pg_rewrite r JOIN pg_class k ON k.oid = r.ev_class
                                                    WHERE r.oid = d.objid)
       WHEN d.classid = 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.objid)
       WHEN d.classid = 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.objid)
       WHEN d.classid = 'pg_trigger'::regclass THEN (SELECT k.relnamespace FROM pg_trigger t JOIN pg_class k ON k.oid = t.tgrelid
                                                    WHERE t.oid = d.objid)
       WHEN d.classid = 'pg_attrdef'::regclass THEN (SELECT k.relnamespace FROM pg_attrdef x JOIN pg_class k ON k.oid = x.adrelid
                                                    WHERE x.oid = d.objid)
       WHEN d.classid = 'pg_constraint'::regclass THEN (SELECT connamespace FROM pg_constraint WHERE oid = d.objid)
  END AS nsp) w
WHERE d.deptype IN ('n', 'a') AND w.nsp IS NOT NULL AND w.nsp <> %(ns)s
ORDER BY 1, 2, 3
"""


@dataclass(frozen=True)
class BackupShape:
    """The backup's tables and other relations of the schema: name -> its DDL text (a table's CREATE
    TABLE, where its columns are looked for), enough to tell whether a name is in it."""

    relations: dict[str, str]

    def has_column(self, relation: str, column: str) -> bool | None:
        """None when the relation is there but its columns are not known (a view)."""
        ddl = self.relations.get(relation)
        if not ddl:
            return None if relation in self.relations else False
        forms = {'"' + column.replace('"', '""') + '"'}
        if re.fullmatch(r"[a-z_][a-z0-9_$]*", column):
            forms.add(column)
        return any(re.search(r"(?:^|[(,\s])" + re.escape(f) + r"\s", ddl) for f in forms)


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


_NAME = r'(?:"(?:[^"]|"")*"|[^\s.(]+)'
_CREATE_TABLE = re.compile(rf"^CREATE (?:UNLOGGED )?TABLE (?:{_NAME}\.)?({_NAME}) \((.*?)^\);", re.M | re.S)
_TOC = re.compile(r"^\d+; \d+ \d+ (TABLE|VIEW|MATERIALIZED VIEW|SEQUENCE|FOREIGN TABLE) (\S+) (.+) \S+$", re.M)


def shape_from_pgdump(listing: str, pre_data: str, schema: str) -> BackupShape:
    """From `pg_restore --list` (the relations) and `pg_restore --section=pre-data` (table columns)."""
    relations = {m.group(3): "" for m in _TOC.finditer(listing) if m.group(2) == schema}
    for m in _CREATE_TABLE.finditer(pre_data):
        name = _unquote(m.group(1))
        if name in relations:
            relations[name] = "(" + m.group(2)
    return BackupShape(relations)


_CREATE_RELATION = re.compile(rf"^CREATE (?:OR REPLACE )?(?:MATERIALIZED )?VIEW (?:{_NAME}\.)?({_NAME})", re.I)


def shape_from_logical(raw: dict) -> BackupShape:
    relations = {t["name"]: t["create"][t["create"].index("("):] if "(" in t["create"] else "" for t in raw["tables"]}
    for stmt in raw.get("objects", ()):
        m = _CREATE_RELATION.match(stmt.lstrip())
        if m:
            relations.setdefault(_unquote(m.group(1)), "")
    for stmt in raw.get("types", ()):
        m = re.match(rf"CREATE SEQUENCE (?:{_NAME}\.)?({_NAME})", stmt.lstrip())
        if m:
            relations.setdefault(_unquote(m.group(1)), "")
    return BackupShape(relations)


def restore_problems(conn, schema: str, shape: BackupShape) -> list[str]:
    """Why a restore of a backup shaped `shape` will be refused, as the restore would say it; empty when
    none is foreseen. Reads only (a READ ONLY transaction, rolled back)."""
    conn.execute("BEGIN READ ONLY")
    try:
        try:
            read_outside(conn, schema)
        except RestoreRefused as exc:
            return [str(exc)]
        ns = conn.execute("SELECT oid FROM pg_namespace WHERE nspname = %(s)s", {"s": schema}).fetchone()[0]
        missing: dict[str, list[str]] = {}
        for who, relation, column in conn.execute(_Q_REFERENCES, {"ns": ns}).fetchall():
            if relation not in shape.relations:
                missing.setdefault(who, []).append(f"relation {schema}.{relation}")
            elif column is not None and shape.has_column(relation, column) is False:
                missing.setdefault(who, []).append(f"column {column} of {schema}.{relation}")
    finally:
        conn.execute("ROLLBACK")
    return [f"restore refused, nothing would be changed: the restore cannot make {who} of another schema again: it reads "
            f"{', '.join(dict.fromkeys(what))}, which the backup does not have; change or drop it first"
            for who, what in missing.items()]
