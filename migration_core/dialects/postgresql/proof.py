"""The PostgreSQL proof's scratch place: a schema inside a transaction that is always rolled back,
so nothing is left behind even if the process dies, and nothing outside it is changed.

The search path is the scratch schema first, then the session's own schemas, so the copy sees
the types, functions and extension objects the managed schema sees, while every table the plan
names resolves to its copy. As a safety net, the proof fails if it took any lock stronger than a
read on a live table. Kept objects are set aside from the copy as it stands after the plan's
renames, which PostgreSQL has followed in the copy's view and trigger definitions (PostgreSQL docs,
"ALTER TABLE": renaming keeps dependent views working).
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy.exc import DBAPIError

from ...diff import Diff
from ...errors import ConfigurationError
from ...plan import Step
from ...snapshot import SchemaSnapshot, split_key
from ..server.connection import message
from ..server.kept import KeptStep
from ..server.proof import Scope, Shadow
from .catalog import read_snapshot
from .objects import quote_ident as q
from .objects import read_objects, unqualify_index
from .planner import _lit, parse_enum



def _drop(key: str, live: SchemaSnapshot) -> str:
    kind, name = split_key(key)
    if kind == "trigger":
        return f"DROP TRIGGER {q(name)} ON {q(live.triggers[name].table)}"
    return f"DROP {kind.upper()} {q(name)}"


class PgShadow(Shadow):
    place = "scratch schema inside a transaction that is rolled back"

    def __init__(self, connect, schema: str):
        self._connect = connect
        self.live_schema = schema
        self.name = f"_migration_proof_{secrets.token_hex(4)}"
        self.conn = None
        self.saved: dict[str, tuple[str, ...]] = {}

    def __enter__(self) -> PgShadow:
        self.conn = self._connect()
        try:
            self.conn.execute("BEGIN")
            paths = self.conn.execute("SELECT current_schemas(false)").scalar() or []
            try:
                self.conn.execute(f"CREATE SCHEMA {q(self.name)}")
            except DBAPIError as exc:  # no CREATE on the database: normalizing in temporary tables needed none
                raise ConfigurationError(f"PostgreSQL: a plan is proven in a scratch schema before it runs, and creating "
                                         f"one failed: {message(exc)}; the user needs CREATE on the database") from None
            self.conn.execute("SET LOCAL search_path TO " + ", ".join(q(p) for p in [self.name, *paths]))
            self.conn.execute("SET LOCAL lock_timeout = 1000")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            try:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            finally:
                self.conn.close()
                self.conn = None

    def run(self, sql: str) -> None:
        # A kept function made again names the live schema; its proof goes to the copy's schema.
        sql = re.sub(rf"^(CREATE OR REPLACE (?:FUNCTION|PROCEDURE) )(?:{re.escape(q(self.live_schema))}|{re.escape(self.live_schema)})\.",
                     rf"\1{q(self.name)}.", sql)
        self.conn.execute(sql)

    def copy(self, live: SchemaSnapshot, scope: Scope) -> list[str]:
        tables = [live.tables[t] for t in scope.tables]
        names = {t.name.lower() for t in tables}
        enums: dict[str, tuple[str, ...]] = dict(live.enums)  # every enum type: new tables and the plan may use them
        for t in live.tables.values():
            for c in t.columns:
                enum = parse_enum(c.type)
                if enum:
                    enums[enum[0]] = enum[1]
        out = [f"CREATE TYPE {q(name)} AS ENUM ({', '.join(_lit(v) for v in values)})" for name, values in enums.items()]
        for t in tables:
            out.append(t.sql)
            out += [unqualify_index(i.sql, t.name) for i in t.indexes]
            if t.comment is not None:
                out.append(f"COMMENT ON TABLE {q(t.name)} IS {_lit(t.comment)}")
            out += [f"COMMENT ON COLUMN {q(t.name)}.{q(c.name)} IS {_lit(c.comment)}" for c in t.columns if c.comment]
        for t in tables:
            out += [f"ALTER TABLE {q(t.name)} ADD {fk.sql}" for fk in t.foreign_keys if fk.ref_table.lower() in names]
        for v in scope.views:
            out += [s for s in live.views[v].create if s.startswith(("CREATE", "COMMENT"))]
        for name in scope.triggers:
            out += list(live.triggers[name].create)
        self.conn.execute(";\n".join(out))  # one round trip
        return []

    def fill(self, step: KeptStep, live: SchemaSnapshot, diff: Diff) -> Step:
        if step.action == "set_aside":
            views, triggers, _ = read_objects(self.conn, self.name)
            for key in step.objects:
                kind, name = split_key(key)
                if kind == "trigger":
                    self.saved[key] = triggers[name].create
                else:
                    own = [s for s in views[name].create if s.startswith(("CREATE", "COMMENT"))]
                    self.saved[key] = (*own, *(s for s in live.views[name].create if s.startswith(("ALTER", "GRANT"))))
            statements = tuple(_drop(key, live) for key in step.objects)
        else:
            statements = tuple(s for key in step.objects for s in self.saved[key])
        return Step(step.description, statements, None, None)

    def read(self) -> SchemaSnapshot:
        locked = self.conn.execute(
            "SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE l.pid = pg_backend_pid() AND n.nspname = %s AND l.mode <> 'AccessShareLock'",
            (self.live_schema,)).fetchall()
        if locked:
            from ...errors import PlanningError

            raise PlanningError("internal planning error: the proof reached live table(s) "
                                + ", ".join(r[0] for r in locked) + " instead of their copies; nothing was run")
        return read_snapshot(self.conn, self.name)

    def problems(self, after: SchemaSnapshot, expected: list[str]) -> list[str]:
        have = set(after.kept_objects())
        return [f"{key} is missing after the plan" for key in expected if key not in have]

    def postamble_sql(self, sql: str) -> str | None:
        return sql.replace(" CONCURRENTLY", "", 1)
