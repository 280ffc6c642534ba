"""The DDL of a schema's types, sequences and tables read from the catalog, as pg_dump writes it, for
the built-in logical backup (`logical.py`): every column keeps its exact type (`format_type` of
`pg_attribute.atttypid`/`atttypmod`: domains, enums, ranges, arrays with their element types,
extension types), collation, identity, generated expression and default, and every constraint and
index its catalog definition (`pg_get_constraintdef`, `pg_get_indexdef`). SQLAlchemy's reflection
would turn a domain into its base type and cannot render a type it does not know.

Run on a connection whose `search_path` is the schema's: names are then written unqualified for the
schema's own objects and qualified for any other (PostgreSQL docs, "System Information Functions").
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import BackupError
from .objects import unqualify_index
from .catalog import quote_ident as q

_Q_TYPES = """
SELECT t.oid, t.typtype, quote_ident(t.typname),
       CASE t.typtype
         WHEN 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e
                        WHERE e.enumtypid = t.oid)
         WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)
           || CASE WHEN t.typcollation <> 0 AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)
                   THEN ' COLLATE ' || t.typcollation::regcollation::text ELSE '' END
           || COALESCE(' DEFAULT ' || t.typdefault, '') || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
         WHEN 'c' THEN (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                                          || CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation
                                                  THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END,
                                          ', ' ORDER BY a.attnum)
                        FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
                        WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
         WHEN 'r' THEN (SELECT 'SUBTYPE = ' || format_type(r.rngsubtype, NULL)
                          || CASE WHEN r.rngsubdiff <> 0 THEN ', SUBTYPE_DIFF = ' || r.rngsubdiff::regproc::text ELSE '' END
                          || CASE WHEN r.rngcollation <> 0 THEN ', COLLATION = ' || r.rngcollation::regcollation::text ELSE '' END
                          || ', MULTIRANGE_TYPE_NAME = ' || quote_ident((SELECT m.typname FROM pg_type m WHERE m.oid = r.rngmultitypid))
                        FROM pg_range r WHERE r.rngtypid = t.oid)
       END,
       ARRAY(SELECT format('ALTER DOMAIN %%s ADD CONSTRAINT %%I %%s', quote_ident(t.typname), c.conname, pg_get_constraintdef(c.oid))
             FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c' ORDER BY c.oid),
       obj_description(t.oid, 'pg_type')
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = %s AND t.typtype IN ('e', 'd', 'c', 'r')
  AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
ORDER BY t.typtype <> 'e', t.oid
"""

_Q_SEQUENCES = """
SELECT c.oid, quote_ident(c.relname), format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache,
       s.seqcycle, pg_sequence_last_value(c.oid), d.deptype, t.relname, a.attname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
     AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE n.nspname = %s AND c.relkind = 'S'
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
ORDER BY c.oid
"""

_Q_TABLES = """
SELECT c.oid, c.relname, c.relkind, c.relpersistence = 'u', array_to_string(c.reloptions, ', '), c.relrowsecurity,
       c.relforcerowsecurity, c.relispartition OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
ORDER BY c.oid
"""

_Q_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod),
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END,
       a.attnotnull, a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Constraints (foreign keys last: they need the keys they reference), indexes of no constraint, comments,
# row security policies, clustering: each (table oid, order, statement).
_Q_AFTER = """
SELECT c.conrelid, CASE c.contype WHEN 'f' THEN 3 ELSE 1 END,
       format('ALTER TABLE %%I ADD CONSTRAINT %%I %%s', t.relname, c.conname, pg_get_constraintdef(c.oid))
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = %(s)s AND c.contype IN ('p', 'u', 'c', 'x', 'f') AND c.conislocal AND c.conparentid = 0
UNION ALL
SELECT i.indrelid, 2, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = %(s)s AND t.relkind IN ('r', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT i.indrelid, 4, format('ALTER TABLE %%I CLUSTER ON %%I', t.relname, x.relname)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %(s)s AND i.indisclustered
UNION ALL
SELECT d.objoid, 5, CASE WHEN d.objsubid = 0 THEN format('COMMENT ON TABLE %%I IS %%L', t.relname, d.description)
                         ELSE format('COMMENT ON COLUMN %%I.%%I IS %%L', t.relname,
                                     (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum = d.objsubid),
                                     d.description) END
FROM pg_description d JOIN pg_class t ON t.oid = d.objoid AND d.classoid = 'pg_class'::regclass
JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %(s)s AND t.relkind IN ('r', 'p', 'S')
UNION ALL
SELECT c.conrelid, 5, format('COMMENT ON CONSTRAINT %%I ON %%I IS %%L', c.conname, t.relname, d.description)
FROM pg_description d JOIN pg_constraint c ON c.oid = d.objoid AND d.classoid = 'pg_constraint'::regclass
JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %(s)s
UNION ALL
SELECT i.indrelid, 5, format('COMMENT ON INDEX %%I IS %%L', x.relname, d.description)
FROM pg_description d JOIN pg_index i ON i.indexrelid = d.objoid AND d.classoid = 'pg_class'::regclass
JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %(s)s
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT p.polrelid, 6, format('CREATE POLICY %%I ON %%I AS %%s FOR %%s TO %%s%%s%%s', p.polname, t.relname,
              CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
              CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
              CASE WHEN p.polroles = '{0}' THEN 'PUBLIC'
                   ELSE (SELECT string_agg(quote_ident(r.rolname), ', ') FROM pg_roles r WHERE r.oid = ANY (p.polroles)) END,
              ' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')',
              ' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')')
FROM pg_policy p JOIN pg_class t ON t.oid = p.polrelid JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %(s)s
UNION ALL
SELECT c.oid, 7, format('ALTER %%s %%I OWNER TO %%I', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.relname,
                        pg_get_userbyid(c.relowner))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(s)s AND c.relkind IN ('r', 'p', 'S') AND pg_get_userbyid(c.relowner) <> current_user
"""


@dataclass(frozen=True)
class TableDef:
    name: str
    create: str
    copy_columns: tuple[str, ...]  # quoted; generated columns are computed, not copied


@dataclass(frozen=True)
class SchemaDef:
    types: tuple[str, ...]      # before the tables: enums, domains, composite and range types, sequences
    tables: tuple[TableDef, ...]
    keys: tuple[str, ...]       # after the rows and functions: defaults, constraints, indexes, comments, policies, owners
    sequences: tuple[str, ...]  # after the rows: ownership and positions


def _identity(kind: str, seq) -> str:
    how = "ALWAYS" if kind == "a" else "BY DEFAULT"
    if seq is None:
        return f" GENERATED {how} AS IDENTITY"
    _, name, dtype, inc, lo, hi, start, cache, cycle = seq[:9]
    return (f" GENERATED {how} AS IDENTITY (SEQUENCE NAME {name} INCREMENT BY {inc} MINVALUE {lo} MAXVALUE {hi} "
            f"START WITH {start} CACHE {cache}{'' if cycle else ' NO'} CYCLE)")


def read_schema(conn, schema: str) -> SchemaDef:
    """The schema's types, sequences and tables, in an order that recreates them (see the module doc).
    BackupError for what this copy cannot make again exactly: partitions and inheritance children."""
    types: list[str] = []
    for _oid, kind, name, body, checks, comment in conn.execute(_Q_TYPES, (schema,)).fetchall():
        if kind == "e":
            types.append(f"CREATE TYPE {name} AS ENUM ({body or ''})")
        elif kind == "d":
            types.append(f"CREATE DOMAIN {name} AS {body}")
            types += checks
        elif kind == "c":
            types.append(f"CREATE TYPE {name} AS ({body or ''})")
        else:
            types.append(f"CREATE TYPE {name} AS RANGE ({body})")
        if comment is not None:
            types.append(f"COMMENT ON TYPE {name} IS {_lit(comment)}")
    seqs = conn.execute(_Q_SEQUENCES, (schema,)).fetchall()
    identity = {}
    positions: list[str] = []
    for row in seqs:
        _, name, dtype, inc, lo, hi, start, cache, cycle, last, deptype, table, column = row
        if deptype == "i":
            identity[(table, column)] = row
        else:
            types.append(f"CREATE SEQUENCE {name} AS {dtype} INCREMENT BY {inc} MINVALUE {lo} MAXVALUE {hi} START WITH {start} "
                         f"CACHE {cache}{'' if cycle else ' NO'} CYCLE")
            if deptype == "a":
                positions.append(f"ALTER SEQUENCE {name} OWNED BY {q(table)}.{q(column)}")
        if last is not None:
            positions.append(f"SELECT setval({_lit(name)}, {int(last)}, true)")
    columns: dict[int, list] = {}
    for row in conn.execute(_Q_COLUMNS, (schema,)).fetchall():
        columns.setdefault(row[0], []).append(row[1:])
    tables = []
    defaults: list[str] = []  # set after the functions a default may call, which come after the rows
    for oid, name, kind, unlogged, options, rls, force_rls, child in conn.execute(_Q_TABLES, (schema,)).fetchall():
        if child or kind == "p":
            raise BackupError(f"the built-in backup cannot copy table {name}: it is partitioned or inherits from another; "
                              "install the PostgreSQL client tools (pg_dump) or run with --no-backup")
        lines, copied = [], []
        for col, ctype, collation, notnull, ident, generated, expr in columns.get(oid, ()):
            line = f"{q(col)} {ctype}" + (f" COLLATE {collation}" if collation else "")
            if generated == "s":
                line += f" GENERATED ALWAYS AS ({expr}) STORED"
            else:
                copied.append(q(col))
                if ident:
                    line += _identity(ident, identity.get((name, col)))
                elif expr is not None:
                    defaults.append(f"ALTER TABLE {q(name)} ALTER COLUMN {q(col)} SET DEFAULT {expr}")
            lines.append(line + (" NOT NULL" if notnull else ""))
        create = (f"CREATE {'UNLOGGED ' if unlogged else ''}TABLE {q(name)} ({', '.join(lines)})"
                  + (f" WITH ({options})" if options else ""))
        extra = [f"ALTER TABLE {q(name)} ENABLE ROW LEVEL SECURITY"] if rls else []
        extra += [f"ALTER TABLE {q(name)} FORCE ROW LEVEL SECURITY"] if force_rls else []
        tables.append((TableDef(name, create, tuple(copied)), extra))
    after = conn.execute(_Q_AFTER, {"s": schema}).fetchall()
    keys = defaults + [s for _, extra in tables for s in extra]
    keys += [unqualify_index(stmt, "") if order == 2 else stmt for _, order, stmt in sorted(after, key=lambda r: (r[1], r[0]))]
    return SchemaDef(tuple(types), tuple(t for t, _ in tables), tuple(keys), tuple(positions))


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
