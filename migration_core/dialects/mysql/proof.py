"""The MariaDB/MySQL proof's scratch place: a database of its own with the live database's character
set and collation, dropped afterwards (DDL cannot be rolled back here); `scratch.py` names and
leases it, so a copy left by a killed process is recognised and removed later.

Tables are copied with SHOW CREATE TABLE (foreign keys to tables outside the copy left out), views
and triggers from their saved definitions, which are relative to the database they live in; the
plan's statements name tables without a database, so run after `USE` they reach only the copies.
"""

from __future__ import annotations

import re
from contextlib import ExitStack, closing

from sqlalchemy.exc import DBAPIError

from ...diff import Diff
from ...plan import Step
from ...snapshot import SchemaSnapshot, split_key
from ...errors import PlanningError
from ..server.connection import errno, message
from ..server.kept import KeptStep
from ..server.proof import Scope, Shadow
from .catalog import read_snapshot
from .objects import quote_ident as q
from .objects import remade
from .scratch import scratch_database

_FK_LINE = re.compile(r"^\s*CONSTRAINT `(?:[^`]|``)*` FOREIGN KEY .*? REFERENCES `((?:[^`]|``)*)`", re.S)


# A view whose names no longer resolve (ER_VIEW_INVALID, ER_BAD_FIELD_ERROR, ER_NO_SUCH_TABLE) is broken
# already: not copied, and said so. Any other failure (a DEFINER the user may not set) would fail the real run.
_BROKEN_VIEW = {1356, 1054, 1146}


def without_foreign_keys_to(create: str, keep: set[str]) -> str:
    """A SHOW CREATE TABLE text without the foreign keys whose parent is not in `keep` (lower-cased)."""
    lines = create.split("\n")
    body = [ln.rstrip(",") for ln in lines[1:-1]]
    kept = [ln for ln in body if not ((m := _FK_LINE.match(ln)) and m[1].replace("``", "`").lower() not in keep)]
    return "\n".join([lines[0], ",\n".join(kept), lines[-1]])


def _drop(key: str, live: SchemaSnapshot) -> str:
    kind, name = split_key(key)
    return f"DROP {'TRIGGER' if kind == 'trigger' else 'VIEW'} {q(name)}"


class MysqlShadow(Shadow):
    place = "scratch database, dropped afterwards"

    def __init__(self, connect, schema: str):
        self._connect = connect
        self.live_schema = schema
        self.conn = None
        self.name = ""
        self.failing_before: set[str] = set()  # copied views that failed before the plan ran: not the plan's doing
        self._stack = ExitStack()

    def __enter__(self) -> MysqlShadow:
        self.conn = self._stack.enter_context(closing(self._connect()))
        try:
            self.name = self._stack.enter_context(scratch_database(self.conn, charset_of=self.live_schema))
            self.conn.execute(f"USE {q(self.name)}")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.conn = None
        self._stack.close()

    def run(self, sql: str) -> None:
        self.conn.execute(sql)

    def copy(self, live: SchemaSnapshot, scope: Scope) -> list[str]:
        keep = {t.lower() for t in scope.tables}
        self.conn.execute("SET SESSION foreign_key_checks = 0")
        for t in scope.tables:
            create = self.conn.execute(f"SHOW CREATE TABLE {q(self.live_schema)}.{q(t)}").fetchone()[1]
            self.conn.execute(without_foreign_keys_to(create, keep))
        skipped: list[str] = []
        for v in scope.views:
            try:
                for sql in live.views[v].create:
                    self.conn.execute(sql)
            except DBAPIError as exc:
                if errno(exc) not in _BROKEN_VIEW and f"view {v}" in scope.kept:  # the real run makes it again: it would fail
                    raise PlanningError(f"view {v} cannot be made on this database by this user: {message(exc)}") from None
                skipped.append(f"view {v} ({message(exc)})")
        for name in scope.triggers:
            try:
                for sql in live.triggers[name].create:
                    self.conn.execute(sql)
            except DBAPIError as exc:
                skipped.append(f"trigger {name} ({message(exc)})")
        self.conn.execute("SET SESSION foreign_key_checks = 1")
        self.failing_before = {v for v in scope.views if self._view_error(v) is not None}  # e.g. a DEFINER that does not exist
        return skipped

    def _view_error(self, view: str) -> str | None:
        try:
            self.conn.execute(f"SELECT * FROM {q(view)} LIMIT 0").fetchall()
            return None
        except DBAPIError as exc:  # said of the live database, not of the scratch copy
            return message(exc).replace(f"`{self.name}`.", "").replace(f"{self.name}.", "")

    def fill(self, step: KeptStep, live: SchemaSnapshot, diff: Diff) -> Step:
        if step.action == "set_aside":
            statements = tuple(_drop(key, live) for key in step.objects)
        else:
            statements = tuple(s for key in step.objects for s in remade(key, live, diff))
        return Step(step.description, statements, None, None)

    def read(self) -> SchemaSnapshot:
        return read_snapshot(self.conn, self.name)

    def problems(self, after: SchemaSnapshot, expected: list[str]) -> list[str]:
        have = set(after.kept_objects())
        out = []
        for key in expected:
            if key not in have:
                out.append(f"{key} is missing after the plan")
            elif key.startswith("view ") and split_key(key)[1] not in self.failing_before:
                error = self._view_error(split_key(key)[1])
                if error is not None:
                    out.append(f"{key} no longer works after the plan: {error}")
        return out
