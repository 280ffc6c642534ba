"""Views and triggers beside the models' tables on MariaDB/MySQL, which the tool keeps: read in two
catalog queries, with their dependencies, and rewritten when a plan renames what they use.

MariaDB stores a view's query in a canonical form: every identifier backquoted, tables qualified
with their database, columns with their table or its alias (`select `u`.`name` AS `name` from
`db`.`users` `u``). That form is parsed here for dependencies (MariaDB 10.11 has no
VIEW_TABLE_USAGE) and rewritten token by token when a table or column is renamed, because
MariaDB does not follow renames: a renamed column leaves the view invalid (error 1356) and a
trigger that names it failing on every write (error 1054, "Unknown column in 'NEW'").
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ... import changes as ch
from ...diff import Diff
from ...snapshot import Dependency, SchemaSnapshot, Trigger, View, split_key
from ..server.kept import KeptRules

_Q_VIEWS = ("SELECT table_name, view_definition, check_option, definer, security_type, algorithm "
            "FROM information_schema.views WHERE table_schema = %s ORDER BY table_name")
_Q_TRIGGERS = ("SELECT trigger_name, event_object_table, action_timing, event_manipulation, action_statement, action_order, "
               "sql_mode, definer FROM information_schema.triggers WHERE trigger_schema = %s "
               "ORDER BY event_object_table, action_timing, event_manipulation, action_order")
# Code that names this database's tables only as text: its routines and events, and other databases'
# views that name it (canonical view text qualifies every table: `db`.`t`).
_Q_CODE = ("SELECT CONCAT(LOWER(routine_type), ' ', routine_name), routine_definition FROM information_schema.routines "
           "WHERE routine_schema = %s "
           "UNION ALL SELECT CONCAT('event ', event_name), event_definition FROM information_schema.events WHERE event_schema = %s "
           "UNION ALL SELECT CONCAT('view ', table_schema, '.', table_name), view_definition FROM information_schema.views "
           "WHERE table_schema <> %s AND view_definition LIKE CONCAT('%%`', %s, '`.%%') ORDER BY 1")
OBJECT_QUERIES = 3

_TOKEN = re.compile(r"`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|\w+|\s+|.", re.S)


class Tok(NamedTuple):
    text: str
    kind: str  # "ident" (backquoted), "word", "string", "space", "punct"

    @property
    def name(self) -> str:
        return self.text[1:-1].replace("``", "`") if self.kind == "ident" else self.text


def tokenize(sql: str) -> list[Tok]:
    out = []
    for m in _TOKEN.finditer(sql):
        t = m[0]
        kind = ("ident" if t[0] == "`" else "string" if t[0] in "'\"" else "space" if t.isspace()
                else "word" if re.match(r"\w", t) else "punct")
        out.append(Tok(t, kind))
    return out


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _is_name(t: Tok) -> bool:
    return t.kind == "ident" or t.kind == "word"


def _parts(tokens: list[Tok]) -> list[tuple[int, list[int]]]:
    """Dotted identifier chains as (start, [token index of each part]), spaces skipped."""
    chains, i, n = [], 0, len(tokens)
    while i < n:
        if _is_name(tokens[i]) and not (i > 0 and tokens[i - 1].text == "."):
            parts = [i]
            j = i
            while j + 2 < n and tokens[j + 1].text == "." and _is_name(tokens[j + 2]):
                parts.append(j + 2)
                j += 2
            chains.append((i, parts))
            i = j + 1
        else:
            i += 1
    return chains


def strip_database(sql: str, database: str) -> str:
    """The view text without its own database's qualifier (as SHOW CREATE VIEW prints it), so it
    works in whichever database it is created: the live one or a proof's scratch copy."""
    toks = tokenize(sql)
    out, i = [], 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "ident" and t.name.lower() == database.lower() and i + 2 < len(toks) and toks[i + 1].text == "." \
                and toks[i + 2].kind == "ident" and not (i > 0 and toks[i - 1].text == "."):
            i += 2
            continue
        out.append(t.text)
        i += 1
    return "".join(out)


def _aliases(toks: list[Tok], relations: set[str]) -> dict[str, str]:
    """alias (lower) -> relation, from `relation` `alias` pairs in FROM and JOIN clauses."""
    out = {r: r for r in relations}
    sig = [i for i, t in enumerate(toks) if t.kind != "space"]
    for a, b in zip(sig, sig[1:]):
        ta, tb = toks[a], toks[b]
        if ta.kind == "ident" and tb.kind == "ident" and ta.name.lower() in relations and not (a > 0 and toks[a - 1].text == "."):
            out[tb.name.lower()] = ta.name.lower()
    return out


def view_depends(sql: str, relations: set[str]) -> tuple[Dependency, ...]:
    """(relation, column) pairs a db-relative MariaDB view text reads; `relations` are the lower-cased
    table and view names of the database."""
    toks = tokenize(sql)
    alias = _aliases(toks, relations)
    deps: set[Dependency] = set()
    for start, parts in _parts(toks):
        names = [toks[p].name for p in parts]
        prev = next((toks[k] for k in range(start - 1, -1, -1) if toks[k].kind != "space"), None)
        if len(names) == 1 and names[0].lower() in relations and not (prev and prev.text.upper() == "AS"):
            deps.add((names[0].lower(), None))
        elif len(names) == 2 and names[0].lower() in alias:
            deps.add((alias[names[0].lower()], names[1].lower()))
    return tuple(sorted(deps, key=lambda d: (d[0], d[1] or "")))


def rename_in_view(sql: str, relations: set[str], tables: dict[str, str], columns: dict[tuple[str, str], str]) -> str:
    """Follow renames in a db-relative view text: `tables` old -> new, `columns` (table, old) -> new,
    keys lower-cased and tables named as before the renames. Output column names (`AS`) stay, so the
    view's own columns keep their names."""
    toks = tokenize(sql)
    alias = _aliases(toks, relations)
    text = [t.text for t in toks]
    for start, parts in _parts(toks):
        names = [toks[p].name for p in parts]
        prev = next((toks[k] for k in range(start - 1, -1, -1) if toks[k].kind != "space"), None)
        if len(names) == 1 and names[0].lower() in tables and not (prev and prev.text.upper() == "AS"):
            text[parts[0]] = quote_ident(tables[names[0].lower()])
        elif len(names) == 2 and names[0].lower() in alias:
            rel = alias[names[0].lower()]
            if (rel, names[1].lower()) in columns:
                text[parts[1]] = quote_ident(columns[(rel, names[1].lower())])
            if names[0].lower() in tables and names[0].lower() == rel:
                text[parts[0]] = quote_ident(tables[rel])
    return "".join(text)


def trigger_depends(table: str, body: str, relations: set[str]) -> tuple[Dependency, ...]:
    """The trigger's own table, each `NEW.col` / `OLD.col` (MariaDB checks those when the trigger is
    created), and every other relation its body names."""
    toks = tokenize(body)
    deps: set[Dependency] = {(table.lower(), None)}
    for _start, parts in _parts(toks):
        names = [toks[p].name for p in parts]
        if len(names) == 2 and names[0].upper() in ("NEW", "OLD") and toks[parts[0]].kind == "word":
            deps.add((table.lower(), names[1].lower()))
        elif names[0].lower() in relations:
            deps.add((names[0].lower(), None))
    return tuple(sorted(deps, key=lambda d: (d[0], d[1] or "")))


_TABLE_CONTEXT = {"FROM", "JOIN", "INTO", "UPDATE", "TABLE"}


def rename_in_trigger(table: str, body: str, tables: dict[str, str], columns: dict[tuple[str, str], str]) -> tuple[str, list[str]]:
    """Follow renames in a trigger body where what a name means is certain: `NEW.col` / `OLD.col` (its
    own table's columns), a table after FROM / JOIN / INTO / UPDATE, `table.col`, and the column list of
    `INSERT INTO table (..)`. A renamed column's old name used bare anywhere else could belong to any
    table the body names: returned as a problem (the plan is refused), never guessed."""
    toks = tokenize(body)
    text = [t.text for t in toks]
    own = table.lower()
    sig = [i for i, t in enumerate(toks) if t.kind != "space"]
    prev_of = {b: toks[a] for a, b in zip(sig, sig[1:])}
    named = {own} | {toks[b].name.lower() for b in sig if b in prev_of and prev_of[b].text.upper() in _TABLE_CONTEXT
                     and _is_name(toks[b])}
    insert_cols: set[int] = set()  # token positions of `INSERT INTO t (a, b)` column names, with their table
    insert_of: dict[int, str] = {}
    for n, b in enumerate(sig):
        if prev_of.get(b) is not None and prev_of[b].text.upper() == "INTO" and _is_name(toks[b]) and n + 1 < len(sig) \
                and toks[sig[n + 1]].text == "(":
            for k in sig[n + 2:]:
                if toks[k].text == ")":
                    break
                if _is_name(toks[k]):
                    insert_cols.add(k)
                    insert_of[k] = toks[b].name.lower()
    problems: list[str] = []
    for start, parts in _parts(toks):
        names = [toks[p].name for p in parts]
        if len(names) == 2 and names[0].upper() in ("NEW", "OLD") and toks[parts[0]].kind == "word":
            new = columns.get((own, names[1].lower()))
            if new:
                text[parts[1]] = quote_ident(new)
            continue
        if len(names) == 2:
            qualifier, col = names[0].lower(), names[1].lower()
            if (qualifier, col) in columns:
                text[parts[1]] = quote_ident(columns[(qualifier, col)])
            if qualifier in tables:
                text[parts[0]] = quote_ident(tables[qualifier])
            continue
        if len(names) != 1:
            continue
        low = names[0].lower()
        prev = prev_of.get(start)
        if prev is not None and prev.text.upper() in _TABLE_CONTEXT and low in tables:
            text[start] = quote_ident(tables[low])
        elif start in insert_cols:
            if (insert_of[start], low) in columns:
                text[start] = quote_ident(columns[(insert_of[start], low)])
        elif any((t, low) in columns for t in named):
            owner = next(t for t in sorted(named) if (t, low) in columns)
            problems.append(f"'{names[0]}' is renamed in {owner}, but is named bare, so which table it means is not certain")
    return "".join(text), problems


def _definer(definer: str) -> str:
    user, _, host = definer.rpartition("@")
    return f"{quote_ident(user)}@{quote_ident(host)}" if user else definer


def view_statement(name: str, definition: str, check_option: str, definer: str, security: str, algorithm: str) -> str:
    check = f" WITH {check_option} CHECK OPTION" if check_option and check_option.upper() != "NONE" else ""
    return (f"CREATE ALGORITHM={algorithm or 'UNDEFINED'} DEFINER={_definer(definer)} SQL SECURITY {security or 'DEFINER'} "
            f"VIEW {quote_ident(name)} AS {definition}{check}")


def trigger_statements(name: str, table: str, timing: str, event: str, body: str, sql_mode: str, definer: str) -> tuple[str, ...]:
    """The trigger again, under the sql_mode it was created with (MariaDB stores it per trigger)."""
    mode = sql_mode.replace("'", "''")
    return ("SET @mig_sql_mode = @@SESSION.sql_mode", f"SET SESSION sql_mode = '{mode}'",
            f"CREATE DEFINER={_definer(definer)} TRIGGER {quote_ident(name)} {timing} {event} ON {quote_ident(table)} "
            f"FOR EACH ROW {body}",
            "SET SESSION sql_mode = @mig_sql_mode")


def read_objects(conn, schema: str, tables: set[str]) -> tuple[dict[str, View], dict[str, Trigger]]:
    """`tables`: the database's table names, lower-cased."""
    rows = conn.execute(_Q_VIEWS, (schema,)).fetchall()
    relations = tables | {r[0].lower() for r in rows}
    views: dict[str, View] = {}
    for name, definition, check, definer, security, algorithm in rows:
        sql = strip_database(definition or "", schema)
        views[name] = View(name, sql, False, view_depends(sql, relations),
                           (view_statement(name, sql, check, definer, security, algorithm),))
    triggers: dict[str, Trigger] = {}
    for name, table, timing, event, body, _order, sql_mode, definer in conn.execute(_Q_TRIGGERS, (schema,)).fetchall():
        stmts = trigger_statements(name, table, timing, event, body, sql_mode, definer)
        triggers[name] = Trigger(name, table, stmts[2], None, trigger_depends(table, body, relations), stmts)
    return views, triggers


class MysqlKeptRules(KeptRules):
    """MariaDB does not follow renames in views or triggers: a renamed column or table sets aside
    what names it, to be made again with the definition rewritten (`rename_in_view`,
    `rename_in_trigger`). A type change needs nothing: MariaDB resolves a view's columns when used."""

    set_aside_before_renames = True

    def disturbs(self, c: ch.Change, diff: Diff, live: SchemaSnapshot) -> set:
        if isinstance(c, ch.RenameColumn):
            return {(diff.live_table(c.table), c.old_name)}
        if isinstance(c, ch.RenameTable):
            return {(c.old_name, None)}
        return set()

    def touches(self, obj, dep, hit) -> bool:
        """A trigger body that names a table may name its columns bare (`INSERT INTO audit (msg)`): a change
        to a column of another table it names touches it when the column's name is in its text."""
        if not (isinstance(obj, Trigger) and dep[1] is None and dep[0].lower() == hit[0].lower()):
            return False
        return hit[1] is None or hit[1].lower() in {t.name.lower() for t in tokenize(obj.sql) if _is_name(t)}

    def rewrite_problems(self, key: str, obj, diff: Diff, live: SchemaSnapshot) -> list[str]:
        if not isinstance(obj, Trigger):
            return []
        tables, columns = renames_of(diff)
        _text, problems = rename_in_trigger(obj.table, obj.sql.partition(" FOR EACH ROW ")[2], tables, columns)
        return [f"{key}: {p}; rewrite the trigger yourself (or drop it) first" for p in problems]


def renames_of(diff: Diff) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """The plan's renames by live names, lower-cased: tables old -> new, columns (table, old) -> new."""
    tables = {old.lower(): new for old, new in diff.table_renames.items()}
    columns = {(diff.live_table(t).lower(), old.lower()): new for (t, old), new in diff.column_renames.items()}
    return tables, columns


def remade(key: str, live: SchemaSnapshot, diff: Diff) -> tuple[str, ...]:
    """The statements that make kept object `key` again after the plan's renames."""
    tables, columns = renames_of(diff)
    kind, name = split_key(key)
    relations = {t.lower() for t in live.tables} | {v.lower() for v in live.views}
    if kind == "view":
        return tuple(rename_in_view(s, relations, tables, columns) for s in live.views[name].create)
    trig = live.triggers[name]
    head, sep, body = trig.create[2].partition(" FOR EACH ROW ")
    new_body, _notes = rename_in_trigger(trig.table, body, tables, columns)
    table = tables.get(trig.table.lower(), trig.table)
    head = head.rsplit(" ON ", 1)[0] + f" ON {quote_ident(table)}"
    return (*trig.create[:2], head + sep + new_body, *trig.create[3:])


def read_code(conn, schema: str) -> tuple[tuple[str, str], ...]:
    """`SchemaSnapshot.code` on MariaDB/MySQL: routine and event bodies are text the server does not
    track, and another database's view breaks when a table it names is renamed or dropped."""
    return tuple((name, body or "") for name, body in conn.execute(_Q_CODE, (schema, schema, schema, schema)).fetchall())


_Q_ROUTINES = ("SELECT routine_type, routine_name FROM information_schema.routines WHERE routine_schema = %s "
               "ORDER BY routine_type, routine_name")
_Q_EVENTS = "SELECT event_name FROM information_schema.events WHERE event_schema = %s ORDER BY event_name"
# A view whose tables or columns are gone has no columns in information_schema (error 1356 when used).
_Q_BROKEN_VIEWS = ("SELECT v.table_name FROM information_schema.views v WHERE v.table_schema = %s AND NOT EXISTS "
                   "(SELECT 1 FROM information_schema.columns c WHERE c.table_schema = v.table_schema AND c.table_name = v.table_name)")


def _with_mode(sql_mode: str, create: str) -> tuple[str, ...]:
    mode = (sql_mode or "").replace("'", "''")
    return ("SET @mig_sql_mode = @@SESSION.sql_mode", f"SET SESSION sql_mode = '{mode}'", create,
            "SET SESSION sql_mode = @mig_sql_mode")


def routines_and_events(conn, schema: str) -> dict[str, tuple[str, ...]]:
    """"procedure p" / "function f" / "event e" -> the statements that make it again (SHOW CREATE, under
    its own sql_mode), in catalog order; one SHOW per object, so only for backups."""
    out: dict[str, tuple[str, ...]] = {}
    for kind, name in conn.execute(_Q_ROUTINES, (schema,)).fetchall():
        row = conn.execute(f"SHOW CREATE {kind} {quote_ident(schema)}.{quote_ident(name)}").fetchone()
        if row and row[2]:
            out[f"{kind.lower()} {name}"] = _with_mode(row[1], row[2])
    for (name,) in conn.execute(_Q_EVENTS, (schema,)).fetchall():
        row = conn.execute(f"SHOW CREATE EVENT {quote_ident(schema)}.{quote_ident(name)}").fetchone()
        if row and row[3]:
            out[f"event {name}"] = _with_mode(row[1], row[3])
    return out


def broken_views(conn, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(_Q_BROKEN_VIEWS, (schema,)).fetchall()]


def all_kept(conn, schema: str) -> dict[str, str]:
    """Every view, trigger, routine and event of the database, "kind name" -> definition: what a backup
    keeps and a restore must give back. Definitions are compared after a restore, so they are the
    catalog's own text, not statements."""
    tables = {r[0].lower() for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'", (schema,))}
    views, triggers = read_objects(conn, schema, tables)
    out = {f"view {n}": v.sql for n, v in views.items()}
    out.update({f"trigger {n}": t.sql for n, t in triggers.items()})
    for kind, name, body in conn.execute("SELECT routine_type, routine_name, routine_definition FROM information_schema.routines "
                                         "WHERE routine_schema = %s", (schema,)).fetchall():
        out[f"{kind.lower()} {name}"] = body or ""
    for name, body in conn.execute("SELECT event_name, event_definition FROM information_schema.events WHERE event_schema = %s",
                                   (schema,)).fetchall():
        out[f"event {name}"] = body or ""
    return out


def drop_statement(key: str, table: str | None = None) -> str:
    """DROP for a kept object of `all_kept`."""
    kind, name = split_key(key)
    return f"DROP {kind.upper()} IF EXISTS {quote_ident(name)}"
