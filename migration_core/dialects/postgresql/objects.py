"""The objects beside the models' tables that PostgreSQL keeps for the user: views, materialized
views, triggers and the functions those triggers call, each with what it depends on.

Two catalog queries, whatever the schema size. Dependencies come from `pg_depend`: a view's rule
depends on each column it reads (PostgreSQL docs, "Dependency Tracking", and the `pg_rewrite`
catalog); a trigger depends on the columns of its `UPDATE OF` list and `WHEN` condition. A
trigger function's body is not tracked by PostgreSQL, so its `NEW.col` / `OLD.col` references are
read from the text when a plan needs them (`function_columns`).
"""

from __future__ import annotations

import re

from ... import changes as ch
from ...diff import Diff
from ...errors import PlanningError
from ...plan import Step
from ...snapshot import Routine, SchemaSnapshot, Trigger, View
from ..server.kept import KeptRules

_KIND = "CASE c.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END"
_GRANT_ON = "CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END"  # GRANT names views and tables alike
_GRANTEE = "CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.rolname) END"
_GRANT_OPTION = "CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END"
# GRANT statements for a relation `c` (table-wide and per column), its owner's own rights left out.
_GRANTS = f"""
SELECT format('GRANT %%s ON %%s %%I TO %%s%%s', x.privilege_type, {_GRANT_ON}, c.relname, {_GRANTEE}, {_GRANT_OPTION})
FROM aclexplode(c.relacl) x LEFT JOIN pg_roles g ON g.oid = x.grantee WHERE x.grantee <> c.relowner
UNION ALL
SELECT format('GRANT %%s (%%I) ON %%s %%I TO %%s%%s', x.privilege_type, a.attname, {_GRANT_ON}, c.relname, {_GRANTEE},
              {_GRANT_OPTION})
FROM pg_attribute a CROSS JOIN LATERAL aclexplode(a.attacl) x LEFT JOIN pg_roles g ON g.oid = x.grantee
WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL AND x.grantee <> c.relowner"""

_Q_VIEWS = f"""
SELECT c.relname, c.relkind = 'm', pg_get_viewdef(c.oid), c.relispopulated,
       ARRAY(SELECT DISTINCT ARRAY[t.relname::text, a.attname::text]
             FROM pg_rewrite r
             JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
             JOIN pg_class t ON t.oid = d.refobjid AND t.relnamespace = c.relnamespace
             LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
             WHERE r.ev_class = c.oid AND t.oid <> c.oid),
       ARRAY(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = c.oid ORDER BY i.indexrelid),
       array_to_string(c.reloptions, ', '),
       ARRAY(SELECT s FROM (
           SELECT 1 AS k, format('COMMENT ON %%s %%I IS %%L', {_KIND}, c.relname, d.description) AS s
           FROM pg_description d WHERE d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
           UNION ALL
           SELECT 2, format('COMMENT ON COLUMN %%I.%%I IS %%L', c.relname, a.attname, d.description)
           FROM pg_description d JOIN pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
           WHERE d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid > 0
           UNION ALL
           SELECT 3, rtrim(pg_get_ruledef(r.oid), '; ')
           FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN'
           UNION ALL
           SELECT 4, format('ALTER %%s %%I ALTER COLUMN %%I SET DEFAULT %%s', {_KIND}, c.relname, a.attname,
                            pg_get_expr(ad.adbin, ad.adrelid))
           FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum WHERE ad.adrelid = c.oid
           UNION ALL
           SELECT 5, format('ALTER %%s %%I CLUSTER ON %%I', {_KIND}, c.relname, i.relname)
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid AND x.indisclustered
           UNION ALL
           SELECT 6, format('ALTER %%s %%I OWNER TO %%I', {_KIND}, c.relname, pg_get_userbyid(c.relowner))
           WHERE pg_get_userbyid(c.relowner) <> current_user
           UNION ALL
           SELECT 7, s FROM ({_GRANTS}) grants(s)
       ) extra ORDER BY k, s)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('v', 'm')
ORDER BY c.oid
"""

_Q_TRIGGERS = """
SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid), p.proname, pn.nspname, pg_get_functiondef(p.oid),
       ARRAY(SELECT a.attname::text FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_trigger'::regclass AND d.objid = t.oid AND d.refobjsubid > 0 ORDER BY 1),
       t.tgenabled
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE n.nspname = %s AND NOT t.tgisinternal
ORDER BY c.relname, t.tgname
"""

# What depends on the schema's tables, columns and types that the tool does not keep: rules other than
# those of its own views, policies, functions (SQL-standard bodies, arguments and results of its types),
# constraints and views of other schemas, and columns of other schemas' or ignored tables of its types.
_Q_OUTSIDE = """
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = %s)
SELECT pg_describe_object(d.classid, d.objid, d.objsubid), t.relname, a.attname, NULL::text
FROM pg_depend d
JOIN pg_class t ON t.oid = d.refobjid AND t.relnamespace = (SELECT oid FROM ns)
LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
WHERE d.refclassid = 'pg_class'::regclass AND d.deptype = 'n' AND (
      (d.classid = 'pg_rewrite'::regclass AND NOT EXISTS (
           SELECT 1 FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class
           WHERE r.oid = d.objid AND v.relnamespace = (SELECT oid FROM ns) AND v.relkind IN ('v', 'm')))
   OR d.classid IN ('pg_policy'::regclass, 'pg_proc'::regclass)
   OR (d.classid = 'pg_constraint'::regclass AND EXISTS (
           SELECT 1 FROM pg_constraint c JOIN pg_class ct ON ct.oid = c.conrelid
           WHERE c.oid = d.objid AND ct.relnamespace <> (SELECT oid FROM ns))))
UNION ALL
SELECT pg_describe_object(d.classid, d.objid, d.objsubid), ty.typname, NULL,
       CASE WHEN d.classid = 'pg_class'::regclass THEN (SELECT c.relname FROM pg_class c
            WHERE c.oid = d.objid AND c.relnamespace = (SELECT oid FROM ns)) END
FROM pg_depend d JOIN pg_type ty ON ty.oid = d.refobjid AND ty.typnamespace = (SELECT oid FROM ns)
WHERE d.refclassid = 'pg_type'::regclass AND d.deptype = 'n' AND d.classid IN ('pg_proc'::regclass, 'pg_class'::regclass)
"""
_Q_CODE = """
SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END || p.proname
       || '(' || pg_get_function_identity_arguments(p.oid) || ')', pg_get_functiondef(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %s AND p.prokind IN ('f', 'p') AND p.prorettype <> 'trigger'::regtype
  AND p.prosqlbody IS NULL  -- a SQL-standard body is tracked by pg_depend: read_outside has it
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1
"""
OBJECT_QUERIES = 4
_ENABLED = {"D": "DISABLE TRIGGER", "R": "ENABLE REPLICA TRIGGER", "A": "ENABLE ALWAYS TRIGGER"}


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def unqualify_index(indexdef: str, relation: str) -> str:
    """`pg_get_indexdef` always names the table with its schema; the copy must land beside its table."""
    return re.sub(r" ON (ONLY )?(\"(?:[^\"]|\"\")*\"|[^\s.]+)\.", r" ON \1", indexdef, count=1)


def view_statements(name: str, materialized: bool, definition: str, populated: bool, options: str | None, indexes,
                    extra) -> tuple[str, ...]:
    """What makes the view again as it is: the view with its options (a materialized view with or
    without rows: made again, it is refreshed), its indexes, then `extra` from the catalog in this
    order: comments (the view's and its columns'), rules, column defaults, the cluster mark, the
    owner, the grants (per column too, with grant options)."""
    q = quote_ident(name)
    body = definition.strip().rstrip(";")
    with_ = f" WITH ({options})" if options else ""
    if materialized:
        out = [f"CREATE MATERIALIZED VIEW {q}{with_} AS {body} WITH{'' if populated else ' NO'} DATA"]
    else:
        out = [f"CREATE VIEW {q}{with_} AS {body}"]
    out += [unqualify_index(i, name) for i in indexes or ()]
    # `pg_get_ruledef` names the view with its schema: unqualified, a rule follows the view it belongs to.
    extra = [re.sub(r" TO (\"(?:[^\"]|\"\")*\"|[^\s.]+)\.", " TO ", s, count=1) if s.startswith("CREATE RULE") else s
             for s in extra or ()]
    return (*out, *extra)


def trigger_statements(definition: str, table: str, name: str, enabled: str) -> tuple[str, ...]:
    """`pg_get_triggerdef` names the table with its schema; unqualified, the trigger follows the
    search path to the table it belongs to (the live one, or its copy in a proof)."""
    sql = re.sub(r" ON (\"(?:[^\"]|\"\")*\"|[^\s.]+)\.", " ON ", definition, count=1)
    out = [sql]
    if enabled in _ENABLED:
        out.append(f"ALTER TABLE {quote_ident(table)} {_ENABLED[enabled]} {quote_ident(name)}")
    return tuple(out)


_NEW_OLD = re.compile(r'\b(NEW|OLD)(\s*\.\s*)("(?:[^"]|"")+"|\w+)', re.I)


def _ident(token: str) -> str:
    return token[1:-1].replace('""', '"') if token.startswith('"') else token


def function_columns(body: str) -> set[str]:
    """Lower-cased column names a trigger function reads or writes as `NEW.col` / `OLD.col` (quoted too)."""
    return {_ident(m[3]).lower() for m in _NEW_OLD.finditer(body)}


def function_words(definition: str) -> set[str]:
    """Lower-cased identifiers a function's body names outside string literals and `NEW.` / `OLD.`
    references: what it may use of tables, which PostgreSQL does not track for a PL/pgSQL body."""
    m = re.search(r"\bAS (\$\w*\$)(.*)\1", definition, re.S)
    code = _NEW_OLD.sub(" ", re.sub(r"'(?:[^']|'')*'", " ", m[2] if m else definition))
    return {_ident(w).lower() for w in re.findall(r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*', code)}


def read_code(conn, schema: str) -> tuple[tuple[str, str], ...]:
    """`SchemaSnapshot.code` on PostgreSQL: functions and procedures that no trigger calls, whose
    PL/pgSQL or string bodies PostgreSQL does not track (docs, "CREATE FUNCTION": the body is text
    until it runs)."""
    return tuple((name, body) for name, body in conn.execute(_Q_CODE, (schema,)).fetchall())


def read_outside(conn, schema: str, tables: set[str]) -> tuple[tuple[str, str, str | None], ...]:
    """`SchemaSnapshot.outside`: (what, relation or type, column); `tables` (lower-cased) are the
    tables and views the snapshot has, whose own columns of an enum type are no outsiders (a view is
    set aside and made again around a change under it)."""
    out = []
    for what, ref, column, own_table in conn.execute(_Q_OUTSIDE, (schema,)).fetchall():
        if own_table is not None and own_table.lower() in tables:
            continue
        what = re.sub(r"^rule _RETURN on ((?:materialized )?view) ", r"\1 ", what)  # a view's own rule is the view
        out.append((what, ref, column))
    return tuple(sorted(set(out), key=lambda x: (x[1], x[2] or "", x[0])))


def read_objects(conn, schema: str) -> tuple[dict[str, View], dict[str, Trigger], dict[str, Routine]]:
    views: dict[str, View] = {}
    for name, materialized, definition, populated, deps, indexes, options, extra in conn.execute(_Q_VIEWS, (schema,)).fetchall():
        depends = tuple(sorted((t, c) for t, c in deps))
        views[name] = View(name, definition.strip(), bool(materialized), depends,
                           view_statements(name, materialized, definition, populated, options, indexes, extra), bool(populated))
    triggers: dict[str, Trigger] = {}
    routines: dict[str, Routine] = {}
    for name, table, definition, fname, fschema, fdef, cols, enabled in conn.execute(_Q_TRIGGERS, (schema,)).fetchall():
        function = fname if fschema == schema else f"{fschema}.{fname}"
        depends = ((table, None), *((table, c) for c in cols))  # what PostgreSQL tracks; the body is the routine's
        triggers[name] = Trigger(name, table, definition, function, depends,
                                 trigger_statements(definition, table, name, enabled))
        if fschema == schema:
            routines.setdefault(fname, Routine(fname, fdef))
    return views, triggers, routines


class PgKeptRules(KeptRules):
    """PostgreSQL refuses to change a column's type while a view reads it or a trigger's `WHEN` /
    `UPDATE OF` names it ("cannot alter type of a column used by a view or rule"), and follows
    renames in both by itself. Trigger function bodies are text: a renamed column is followed there
    by rewriting `NEW.col` / `OLD.col`, and a dropped one refuses the plan."""

    set_aside_before_renames = False

    def disturbs(self, c: ch.Change, diff: Diff, live: SchemaSnapshot) -> set:
        if isinstance(c, (ch.AlterColumnType, ch.AlterColumnCollation, ch.AlterColumnGenerated)):
            return {(diff.live_table(c.table), diff.live_column(c.table, c.column))}
        return set()

    @staticmethod
    def _functions_on(table: str, live: SchemaSnapshot) -> list[tuple[Trigger, Routine]]:
        return [(t, live.routines[t.function]) for t in live.triggers.values()
                if t.table.lower() == table.lower() and t.function in live.routines]

    def removed_by_routines(self, c: ch.Change, diff: Diff, live: SchemaSnapshot) -> list[str]:
        """Trigger functions whose text uses what `c` drops: `NEW.col` of their own table, or another
        table's name with the column's name (`INSERT INTO audit (note)`), or a dropped table's name."""
        if isinstance(c, ch.DropTable):
            return [f"function {r.name} (trigger {t.name} on {t.table}) names table {c.table}, which this plan drops"
                    for t, r in self._all_functions(live)
                    if t.table.lower() != c.table.lower() and c.table.lower() in function_words(r.sql)]
        if not isinstance(c, ch.DropColumn):
            return []
        table, col = diff.live_table(c.table), c.column.name.lower()
        out = []
        for t, r in self._all_functions(live):
            own = t.table.lower() == table.lower() and col in function_columns(r.sql)
            other = {table.lower(), col} <= function_words(r.sql)
            if own or other:
                out.append(f"function {r.name} (trigger {t.name} on {t.table}) uses {table}.{c.column.name}, which this plan drops")
        return out

    @staticmethod
    def _all_functions(live: SchemaSnapshot) -> list[tuple[Trigger, Routine]]:
        return [(t, live.routines[t.function]) for t in live.triggers.values() if t.function in live.routines]

    def rewrites(self, diff: Diff, live: SchemaSnapshot) -> list[Step]:
        out: list[Step] = []
        renames: dict[str, dict[str, str]] = {}
        for (table, old), new in diff.column_renames.items():
            renames.setdefault(diff.live_table(table).lower(), {})[old.lower()] = new
        for (table, old), new in diff.column_renames.items():  # a column named other than as NEW.col / OLD.col
            table = diff.live_table(table)
            for trig, routine in self._all_functions(live):
                if {table.lower(), old.lower()} <= function_words(routine.sql):
                    raise PlanningError(f"function {routine.name} (trigger {trig.name} on {trig.table}) names {table} and "
                                        f"'{old}', which this plan renames to {new}; it cannot be rewritten with certainty: "
                                        "change the function first")
        for old, new in diff.table_renames.items():
            for trig, routine in self._all_functions(live):
                if old.lower() in function_words(routine.sql):
                    raise PlanningError(f"function {routine.name} (trigger {trig.name} on {trig.table}) names table {old}, which "
                                        f"this plan renames to {new}; change the function first")
        done: set[str] = set()
        for table, cols in renames.items():
            for trig, routine in self._functions_on(table, live):
                used = function_columns(routine.sql) & set(cols)
                if not used or routine.name in done:
                    continue
                others = sorted({t.table for t in live.triggers.values() if t.function == routine.name and t.table.lower() != table})
                if others:
                    raise PlanningError(f"function {routine.name} is called by triggers on {table} and on {', '.join(others)}; "
                                        f"renaming {table}.{', '.join(sorted(used))} cannot be followed in its body for one table "
                                        "only; change the function first")
                done.add(routine.name)
                sql = _NEW_OLD.sub(lambda m: m[1] + m[2] + (quote_ident(cols[_ident(m[3]).lower()])
                                                           if _ident(m[3]).lower() in cols else m[3]), routine.sql)
                out.append(Step(f"make function {routine.name} (trigger {trig.name}) follow the rename of "
                                + ", ".join(f"{table}.{o} to {cols[o]}" for o in sorted(used)), (sql,), None, None))
        return out


_Q_FUNCTIONS = """
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.prokind, pg_get_functiondef(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %s AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY p.oid
"""


def functions(conn, schema: str) -> dict[str, str]:
    """Every function and procedure of the schema that no extension owns: "function f(int)" ->
    `pg_get_functiondef`, in creation order."""
    return {f"{'procedure' if kind == 'p' else 'function'} {sig}": body
            for sig, kind, body in conn.execute(_Q_FUNCTIONS, (schema,)).fetchall()}


def all_kept(conn, schema: str) -> dict[str, str]:
    """Every view, materialized view, trigger and function of the schema, "kind name" -> definition:
    what a backup keeps and a restore must give back."""
    views, triggers, _ = read_objects(conn, schema)
    out = {f"{'materialized view' if v.materialized else 'view'} {n}": v.sql for n, v in views.items()}
    out.update({f"trigger {n}": t.sql for n, t in triggers.items()})
    out.update(functions(conn, schema))
    return out


def drop_statement(key: str) -> str:
    """DROP for a kept object of `all_kept` ("view v", "materialized view m", "function f(int)")."""
    for kind in ("materialized view", "view", "function", "procedure"):
        if key.startswith(kind + " "):
            name = key[len(kind) + 1:]
            target = quote_ident(name) if "view" in kind else name
            return f"DROP {kind.upper()} IF EXISTS {target}"
    raise PlanningError(f"cannot drop {key} on its own: it belongs to its table")


def clear_schema_sql(schema: str) -> str:
    """One statement that drops everything in `schema` but the schema itself and what extensions own:
    a restore then makes the backup's objects again in it, and the schema keeps its owner, its
    privileges and its default privileges (`DROP SCHEMA .. CASCADE` would lose them, and with them
    every other role's access to the tables)."""
    lit = _lit(schema)
    not_extension = ("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{cls}'::regclass AND d.objid = {oid} "
                     "AND d.deptype = 'e')")
    not_internal = not_extension.replace("'e'", "'i'")
    return f"""DO $mig$
DECLARE r record;
BEGIN
  FOR r IN SELECT format('DROP %s IF EXISTS %I.%I CASCADE', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                  WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, c.relname) AS sql
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = {lit} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition
             AND {not_extension.format(cls='pg_class', oid='c.oid')}
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))  -- a column's own sequence
           ORDER BY c.relkind IN ('v', 'm') DESC
  LOOP EXECUTE r.sql; END LOOP;
  FOR r IN SELECT format('DROP %s IF EXISTS %s CASCADE', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
                  ELSE 'FUNCTION' END, p.oid::regprocedure) AS sql
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = {lit} AND {not_extension.format(cls='pg_proc', oid='p.oid')}
             AND {not_internal.format(cls='pg_proc', oid='p.oid')}  -- a range type's constructors go with it
  LOOP EXECUTE r.sql; END LOOP;
  FOR r IN SELECT format('DROP TYPE IF EXISTS %s CASCADE', t.oid::regtype) AS sql
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = {lit} AND t.typtype IN ('e', 'd', 'r', 'm', 'c')
             AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
             AND {not_extension.format(cls='pg_type', oid='t.oid')}
             AND {not_internal.format(cls='pg_type', oid='t.oid')}  -- a multirange goes with its range
  LOOP EXECUTE r.sql; END LOOP;
END $mig$"""


def table_grants(conn, schema: str) -> list[str]:
    """GRANT statements for the schema's tables and sequences (per column too), owners' own rights left out."""
    return [r[0] for r in conn.execute(
        f"SELECT g.s FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL ({_GRANTS}) g(s) "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'S') ORDER BY c.oid, 1", (schema,)).fetchall()]
