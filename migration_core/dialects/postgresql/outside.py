"""What a restore of one schema must not take from the others: objects of other schemas that depend on
the schema's tables, types, sequences or functions (a view reading a table, a foreign key to it, a
function with an argument of its row type or a SQL-standard body reading it, a trigger calling one
of its functions, a default drawing from one of its sequences, an index calling one of its functions).

A restore empties the schema with DROP .. CASCADE, which would drop each of them silently (PostgreSQL
docs, "Dependency Tracking"). So the restore sets them aside first (drops them, dependents before
what they depend on) and makes them again from their catalog definitions once the backup is back,
in the same transaction: if one cannot be made again (the backup lacks a column it reads, a row a
foreign key needs), the whole restore is rolled back and says which. What cannot be set aside and
made again without losing data (a column of another schema's table whose type is this schema's
enum or domain) refuses the restore before anything is touched (`RestoreRefused`). The set-aside
is followed by a check inside the transaction, so an object made between the reading and the
restore stops it instead of being dropped.

Definitions are read with `search_path` set to `pg_catalog` alone, so every name in them is qualified.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import RestoreRefused

# Direct dependents outside the schema of the given objects (class, oid), with what each one is: its
# own (class, oid) to follow further, the schema it lives in, and a description.
_Q_DEPENDENTS = """
WITH refs(refclassid, refobjid) AS (SELECT * FROM unnest(%(classes)s::oid[], %(oids)s::oid[])),
deps AS (
  SELECT DISTINCT d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid FROM pg_depend d JOIN refs r USING (refclassid, refobjid)
  WHERE d.deptype IN ('n', 'a')  -- 'a': a statistics object, a sequence owned by a column, a publication entry
  ),
resolved AS (
  SELECT CASE WHEN d.classid = 'pg_rewrite'::regclass THEN 'pg_class'::regclass::oid ELSE d.classid END AS classid,
         CASE WHEN d.classid = 'pg_rewrite'::regclass THEN (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = d.objid)
              ELSE d.objid END AS objid,
         CASE WHEN d.classid = 'pg_rewrite'::regclass THEN 0 ELSE d.objsubid END AS objsubid,
         d.classid AS rawclass, d.objid AS rawobj, d.refclassid, d.refobjid
  FROM deps d)
SELECT r.classid, r.objid, r.objsubid,
       CASE WHEN r.classid = 'pg_class'::regclass AND r.objsubid > 0 THEN 'column'
            WHEN r.classid = 'pg_class'::regclass THEN (SELECT CASE WHEN c.relkind = 'v' AND w.rulename = '_RETURN' THEN 'view'
                                                                   WHEN c.relkind = 'm' AND w.rulename = '_RETURN' THEN 'materialized view'
                                                                   WHEN w.oid IS NOT NULL THEN 'rule'
                                                                   WHEN c.relkind = 'i' THEN 'index' ELSE 'relation' END
                                                         FROM pg_class c LEFT JOIN pg_rewrite w ON w.oid = r.rawobj
                                                              AND r.rawclass = 'pg_rewrite'::regclass
                                                         WHERE c.oid = r.objid)
            WHEN r.classid = 'pg_proc'::regclass THEN 'function'
            WHEN r.classid = 'pg_trigger'::regclass THEN 'trigger'
            WHEN r.classid = 'pg_attrdef'::regclass THEN 'default'
            WHEN r.classid = 'pg_constraint'::regclass THEN (SELECT CASE WHEN c.conrelid <> 0 THEN 'constraint' ELSE 'domain constraint' END
                                                            FROM pg_constraint c WHERE c.oid = r.objid)
            ELSE 'other' END AS kind,
       CASE WHEN r.classid = 'pg_class'::regclass THEN (SELECT c.relnamespace FROM pg_class c WHERE c.oid = r.objid)
            WHEN r.classid = 'pg_proc'::regclass THEN (SELECT p.pronamespace FROM pg_proc p WHERE p.oid = r.objid)
            WHEN r.classid = 'pg_type'::regclass THEN (SELECT t.typnamespace FROM pg_type t WHERE t.oid = r.objid)
            WHEN r.classid = 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                                                         WHERE t.oid = r.objid)
            WHEN r.classid = 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid
                                                         WHERE a.oid = r.objid)
            WHEN r.classid = 'pg_constraint'::regclass THEN (SELECT COALESCE(c.connamespace, 0) FROM pg_constraint c WHERE c.oid = r.objid)
            WHEN r.classid = 'pg_policy'::regclass THEN (SELECT c.relnamespace FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
                                                        WHERE p.oid = r.objid)
            WHEN r.rawclass = 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class
                                                          WHERE w.oid = r.rawobj)
            ELSE 0 END AS nsp,
       CASE WHEN r.rawclass = 'pg_rewrite'::regclass AND (SELECT w.rulename FROM pg_rewrite w WHERE w.oid = r.rawobj) = '_RETURN'
            THEN pg_describe_object(r.classid, r.objid, 0) ELSE pg_describe_object(r.rawclass, r.rawobj, r.objsubid) END
FROM resolved r
WHERE NOT (r.classid = r.refclassid AND r.objid = r.refobjid)  -- a view's rule reads the view's own columns
"""

# What emptying the schema drops: everything in it that no extension owns (as `clear_schema_sql`).
_Q_INSIDE = """
SELECT * FROM (
  SELECT 'pg_class'::regclass::oid AS cls, c.oid FROM pg_class c WHERE c.relnamespace = %(ns)s
  UNION ALL SELECT 'pg_type'::regclass::oid, t.oid FROM pg_type t WHERE t.typnamespace = %(ns)s
  UNION ALL SELECT 'pg_proc'::regclass::oid, p.oid FROM pg_proc p WHERE p.pronamespace = %(ns)s) o
WHERE NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = o.cls AND e.objid = o.oid AND e.deptype = 'e')
  AND NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_depend e ON e.classid = 'pg_type'::regclass AND e.objid = t.typelem
                  AND e.deptype = 'e' WHERE o.cls = 'pg_type'::regclass AND t.oid = o.oid)
"""

_RELATION_GRANTS = """
SELECT format('GRANT %%s ON %%s TO %%s%%s', x.privilege_type, c.oid::regclass,
              CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
              CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) x WHERE c.oid = %(oid)s AND x.grantee <> c.relowner
"""

_FUNCTION_GRANTS = """
SELECT format('GRANT EXECUTE ON FUNCTION %%s TO %%s', p.oid::regprocedure,
              CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END)
FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) x WHERE p.oid = %(oid)s AND x.grantee <> p.proowner
"""

_SETTABLE = {"view", "materialized view", "function", "trigger", "default", "constraint", "index"}
_ENABLED = {"D": "DISABLE TRIGGER", "R": "ENABLE REPLICA TRIGGER", "A": "ENABLE ALWAYS TRIGGER"}


@dataclass(frozen=True)
class SetAside:
    """One object of another schema that a restore drops and makes again."""
    description: str  # pg_describe_object's words, e.g. "view other.v"
    drop: str
    create: tuple[str, ...]


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _one(conn, sql: str, params: dict):
    return conn.execute(sql, params).fetchone()


def _definition(conn, kind: str, oid: int, description: str) -> SetAside:
    p = {"oid": oid}
    if kind in ("view", "materialized view"):
        name, body, owner, populated, options = _one(conn, (
            "SELECT c.oid::regclass::text, pg_get_viewdef(c.oid), pg_get_userbyid(c.relowner), c.relispopulated, "
            "array_to_string(c.reloptions, ', ') FROM pg_class c WHERE c.oid = %(oid)s"), p)
        with_ = f" WITH ({options})" if options else ""
        if kind == "view":
            create = [f"CREATE VIEW {name}{with_} AS {body.strip().rstrip(';')}"]
        else:
            create = [f"CREATE MATERIALIZED VIEW {name}{with_} AS {body.strip().rstrip(';')} WITH{'' if populated else ' NO'} DATA"]
            create += [r[0] for r in conn.execute("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %(oid)s", p)]
        create.append(f"ALTER {kind.upper()} {name} OWNER TO {_quote(owner)}")
        create += [r[0] for r in conn.execute(_RELATION_GRANTS, p)]
        comment = _one(conn, "SELECT obj_description(%(oid)s, 'pg_class')", p)[0]
        if comment is not None:
            create.append(f"COMMENT ON {kind.upper()} {name} IS {_lit(comment)}")
        return SetAside(description, f"DROP {kind.upper()} {name}", tuple(create))
    if kind == "function":
        sig, kind_, body, owner = _one(conn, "SELECT p.oid::regprocedure::text, p.prokind, pg_get_functiondef(p.oid), "
                                             "pg_get_userbyid(p.proowner) FROM pg_proc p WHERE p.oid = %(oid)s", p)
        what = "PROCEDURE" if kind_ == "p" else "FUNCTION"
        create = [body, f"ALTER {what} {sig} OWNER TO {_quote(owner)}", *[r[0] for r in conn.execute(_FUNCTION_GRANTS, p)]]
        return SetAside(description, f"DROP {what} {sig}", tuple(create))
    if kind == "trigger":
        name, table, body, enabled = _one(conn, "SELECT t.tgname, t.tgrelid::regclass::text, pg_get_triggerdef(t.oid), t.tgenabled "
                                                "FROM pg_trigger t WHERE t.oid = %(oid)s", p)
        create = [body] + ([f"ALTER TABLE {table} {_ENABLED[enabled]} {_quote(name)}"] if enabled in _ENABLED else [])
        return SetAside(description, f"DROP TRIGGER {_quote(name)} ON {table}", tuple(create))
    if kind == "default":
        table, column, expr = _one(conn, "SELECT a.adrelid::regclass::text, quote_ident(t.attname), pg_get_expr(a.adbin, a.adrelid) "
                                         "FROM pg_attrdef a JOIN pg_attribute t ON t.attrelid = a.adrelid AND t.attnum = a.adnum "
                                         "WHERE a.oid = %(oid)s", p)
        return SetAside(description, f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT",
                        (f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {expr}",))
    if kind == "constraint":
        name, table, body = _one(conn, "SELECT quote_ident(c.conname), c.conrelid::regclass::text, pg_get_constraintdef(c.oid) "
                                       "FROM pg_constraint c WHERE c.oid = %(oid)s", p)
        return SetAside(description, f"ALTER TABLE {table} DROP CONSTRAINT {name}", (f"ALTER TABLE {table} ADD CONSTRAINT {name} {body}",))
    name, body = _one(conn, "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                            "WHERE i.indexrelid = %(oid)s", p)
    return SetAside(description, f"DROP INDEX {name}", (body,))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_outside(conn, schema: str) -> list[SetAside]:
    """The objects of other schemas that depend on `schema`, dependents first (the order to drop them;
    reversed, the order to make them again). RestoreRefused, naming each, for what cannot be set aside:
    a column of this schema's type, a rule, a policy, a domain or anything else. Call inside a
    transaction: it sets `search_path` for the rest of it."""
    conn.execute("SET LOCAL search_path TO pg_catalog")
    ns = conn.execute("SELECT oid FROM pg_namespace WHERE nspname = %(s)s", {"s": schema}).fetchone()[0]
    frontier = [tuple(r) for r in conn.execute(_Q_INSIDE, {"ns": ns}).fetchall()]
    depth: dict[tuple[int, int, int], int] = {}
    info: dict[tuple[int, int, int], tuple[str, str]] = {}
    refused: list[str] = []
    level = 0
    seen_refs = set(frontier)
    while frontier and level < 100:
        level += 1
        rows = conn.execute(_Q_DEPENDENTS, {"classes": [c for c, _ in frontier], "oids": [o for _, o in frontier]}).fetchall()
        nxt = []
        for classid, objid, objsubid, kind, nsp, description in rows:
            if nsp == ns or objid is None:
                continue  # the schema's own: dumped and restored with it
            if kind not in _SETTABLE:
                refused.append(description)
                continue
            key = (classid, objid, 0)
            depth[key] = level  # the longest path: dropped before anything it depends on
            info[key] = (kind, description)
            if (classid, objid) not in seen_refs or kind in ("view", "materialized view", "function"):
                seen_refs.add((classid, objid))
                nxt.append((classid, objid))
        frontier = list(dict.fromkeys(nxt))
    if refused:
        raise RestoreRefused(
            f"restore refused, nothing was changed: {len(set(refused))} object(s) of other schemas depend on schema {schema} and "
            f"that a restore cannot set aside and make again: {'; '.join(sorted(set(refused)))}. The restore replaces "
            f"everything in {schema}, which would drop them; change or drop them first")
    order = sorted(depth, key=lambda k: (-depth[k], k))
    return [_definition(conn, info[k][0], k[1], info[k][1]) for k in order]


def guard_sql(schema: str) -> str:
    """A statement that fails when anything of another schema still depends on `schema` (made after
    `read_outside` looked), so the CASCADE that empties the schema can reach nothing outside it."""
    lit = f"(SELECT oid FROM pg_namespace WHERE nspname = {_lit(schema)})"
    return f"""DO $mig$
DECLARE found text;
BEGIN
  SELECT string_agg(DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid), ', ') INTO found
  FROM pg_depend d
  WHERE d.deptype IN ('n', 'a') AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.refclassid AND e.objid = d.refobjid
                                          AND e.deptype = 'e')
    AND NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_depend e ON e.classid = 'pg_type'::regclass AND e.objid = t.typelem
                    AND e.deptype = 'e' WHERE d.refclassid = 'pg_type'::regclass AND t.oid = d.refobjid) AND (
        (d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT oid FROM pg_class WHERE relnamespace = {lit}))
     OR (d.refclassid = 'pg_type'::regclass AND d.refobjid IN (SELECT oid FROM pg_type WHERE typnamespace = {lit}))
     OR (d.refclassid = 'pg_proc'::regclass AND d.refobjid IN (SELECT oid FROM pg_proc WHERE pronamespace = {lit})))
    AND COALESCE(CASE d.classid
          WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.objid)
          WHEN 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE r.oid = d.objid)
          WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.objid)
          WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = d.objid)
          WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.oid = d.objid)
          WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
          WHEN 'pg_constraint'::regclass THEN (SELECT connamespace FROM pg_constraint WHERE oid = d.objid)
          WHEN 'pg_policy'::regclass THEN (SELECT c.relnamespace FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE p.oid = d.objid)
          END, 0) <> {lit};
  IF found IS NOT NULL THEN
    RAISE EXCEPTION 'restore refused, nothing was changed: % of another schema depend(s) on schema %, made after the restore '
                    'looked; run it again', found, {_lit(schema)};
  END IF;
END $mig$"""


def set_aside_sql(objects: list[SetAside]) -> list[str]:
    """The drops, dependents first."""
    return [o.drop for o in objects]


def make_again_sql(objects: list[SetAside]) -> list[str]:
    """The objects made again after the restore, each in a block that names it when it fails."""
    out = []
    for o in reversed(objects):
        for stmt in o.create:
            out.append(f"DO $mig$ BEGIN EXECUTE {_lit(stmt)}; EXCEPTION WHEN OTHERS THEN RAISE EXCEPTION "
                       f"'the restore cannot make % of another schema again, so it was rolled back and nothing changed: %; "
                       f"change or drop it first', {_lit(o.description)}, SQLERRM; END $mig$")
    return out
