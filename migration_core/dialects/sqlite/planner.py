"""SQLite DDL planning: plain ALTER TABLE where SQLite can do it, the 12-step rebuild elsewhere.

Every step is executed, as it is planned, on a schema-only in-memory copy of the live
database (the shadow). That proves each statement valid before the real file is touched,
lets later steps see the state earlier ones leave (e.g. trigger text SQLite rewrote after
a rename), and ends with a check that the shadow now matches the target exactly.
"""

from __future__ import annotations

import sqlite3

from ... import changes as ch
from ...diff import Diff, diff_snapshots
from ...errors import PlanningError
from ...plan import Plan, Step
from ...snapshot import SchemaSnapshot, Table
from .catalog import read_snapshot
from .sqltext import quote_ident as q
from .sqltext import rename_in_create, tokenize

TMP_PREFIX = "_migration_new_"
_ALTERABLE = (ch.RenameTable, ch.RenameColumn, ch.AddColumn, ch.DropColumn, ch.AddIndex, ch.DropIndex)
_CONSTANT_DEFAULT_KINDS = {"string", "number", "blob"}


def _words(sql: str) -> set[str]:
    return {t.name.lower() for t in tokenize(sql) if t.kind in ("ident", "qident", "string")}


def open_shadow(live_conn: sqlite3.Connection) -> sqlite3.Connection:
    shadow = sqlite3.connect(":memory:", isolation_level=None)
    shadow.execute("PRAGMA foreign_keys = OFF")
    rows = live_conn.execute(
        "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
    ).fetchall()
    for typ, name, sql in rows:
        try:
            shadow.execute(sql)
        except sqlite3.Error as exc:  # pragma: no cover - the live DB accepted it
            raise PlanningError(f"cannot copy the schema of {typ} {name!r} for planning: {exc}") from None
    return shadow


class SqlitePlanner:
    def __init__(self, shadow: sqlite3.Connection, live: SchemaSnapshot, target: SchemaSnapshot, ignore: tuple[str, ...] = (),
                 fills: dict | None = None):
        self.fills = fills or {}  # (table, column) lower-cased -> {"fill" | "using": fills.Fill}
        self.shadow = shadow
        self.live = live
        self.target = target
        self.ignore = ignore
        self.steps: list[Step] = []
        self.notes: list[str] = []
        self.working_views = {v for v in self._views() if self._view_error(v) is None}

    # -- helpers -------------------------------------------------------------------------
    def _emit(self, step: Step) -> None:
        for stmt in step.statements:
            try:
                self.shadow.execute(stmt)
            except sqlite3.Error as exc:
                raise PlanningError(f"step '{step.description}' would fail on this database: {exc} (statement: {stmt})") from None
        self.steps.append(step)

    def _current(self, table: str) -> Table:
        snap = read_snapshot(self.shadow, self.ignore, only=table)
        found = snap.table(table)
        assert found is not None, table
        return found

    def _dependents(self, tables: set[str]) -> list[tuple[str, str, str]]:
        """Views and triggers (type, name, sql) that depend on `tables`, directly or through
        other views, in creation order (so re-creating them in this order works)."""
        rows = self.shadow.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE type IN ('view', 'trigger') ORDER BY rowid"
        ).fetchall()
        names = set(tables)
        picked: set[str] = set()
        changed = True
        while changed:
            changed = False
            for typ, name, tbl, sql in rows:
                if name not in picked and (tbl.lower() in names or _words(sql) & names):
                    picked.add(name)
                    if typ == "view":
                        names.add(name.lower())
                    changed = True
        return [(typ, name, sql) for typ, name, _, sql in rows if name in picked]

    # -- main ----------------------------------------------------------------------------
    def _refuse_broken_dependents(self, diff: Diff) -> None:
        """A view or trigger that uses what the plan drops would fail whenever it is used or fires
        (SQLite checks their names only then): refused up front, naming it, as on the servers."""
        rows = self.shadow.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE type IN ('view', 'trigger')").fetchall()
        broken = []
        for c in diff.changes:
            if isinstance(c, ch.DropTable):
                table = c.table.lower()
                broken += [f"{typ} {name} names table {c.table}, which this plan drops" for typ, name, tbl, sql in rows
                           if tbl.lower() != table and table in _words(sql)]
            elif isinstance(c, ch.DropColumn):
                table, col = diff.live_table(c.table).lower(), c.column.name.lower()
                broken += [f"{typ} {name} uses {c.table}.{c.column.name}, which this plan drops" for typ, name, tbl, sql in rows
                           if col in _words(sql) and (tbl.lower() == table or table in _words(sql))]
        if broken:
            raise PlanningError("the plan would break objects beside the models, which the tool keeps: " + "; ".join(broken)
                                + "; change or drop them first")

    def plan(self, diff: Diff) -> Plan:
        self._refuse_broken_dependents(diff)
        by_table: dict[str, list[ch.Change]] = {}
        for c in diff.changes:
            by_table.setdefault(c.table.lower(), []).append(c)

        for c in diff.changes:
            if isinstance(c, ch.RenameTable):
                self._emit(Step(c.detail, (f"ALTER TABLE {q(c.old_name)} RENAME TO {q(c.table)}",),
                                (f"ALTER TABLE {q(c.table)} RENAME TO {q(c.old_name)}",), c.table))
        for c in diff.changes:
            if isinstance(c, ch.RenameColumn):
                self._emit(Step(c.detail, (f"ALTER TABLE {q(c.table)} RENAME COLUMN {q(c.old_name)} TO {q(c.new_name)}",),
                                (f"ALTER TABLE {q(c.table)} RENAME COLUMN {q(c.new_name)} TO {q(c.old_name)}",), c.table))

        added = {c.table.lower() for c in diff.changes if isinstance(c, ch.AddTable)}
        dropped = {c.table.lower() for c in diff.changes if isinstance(c, ch.DropTable)}
        rebuild = {
            t for t, cs in by_table.items()
            if t not in added and t not in dropped and any(not self._alterable(c) for c in cs)
        }

        for t, cs in by_table.items():
            if t in rebuild or t in dropped:
                continue
            for c in cs:
                if isinstance(c, ch.DropIndex):
                    self._emit(Step(c.detail, (f"DROP INDEX {q(c.index.name)}",), (c.index.sql,), c.table))

        dependents = self._dependents(rebuild) if rebuild else []
        if dependents:
            self._emit(Step(
                "set aside views and triggers that depend on rebuilt tables",
                tuple(f"DROP {typ.upper()} {q(name)}" for typ, name, _ in reversed(dependents)),
                tuple(sql for _, _, sql in dependents),
            ))

        for c in self._ordered_new_tables([c for c in diff.changes if isinstance(c, ch.AddTable)]):
            t = c.definition
            self._emit(Step(c.detail, (t.sql, *(i.sql for i in t.indexes)), (f"DROP TABLE {q(t.name)}",), t.name))

        for t in self.target.tables.values():
            key = t.name.lower()
            if key in added or key not in by_table:
                continue
            if key in rebuild:
                self._emit(self._rebuild(t, by_table[key]))
                continue
            for c in by_table[key]:
                if isinstance(c, ch.AddColumn):
                    self._emit(Step(c.detail, (f"ALTER TABLE {q(t.name)} ADD COLUMN {c.column.definition}",),
                                    (f"ALTER TABLE {q(t.name)} DROP COLUMN {q(c.column.name)}",), t.name))
                elif isinstance(c, ch.DropColumn):
                    self._emit(Step(c.detail, (f"ALTER TABLE {q(t.name)} DROP COLUMN {q(c.column.name)}",), None, t.name,
                                    rewrites_table=t.name))
            for c in by_table[key]:
                if isinstance(c, ch.AddIndex):
                    self._emit(Step(c.detail, (c.index.sql,), (f"DROP INDEX {q(c.index.name)}",), t.name,
                                    builds_index_on=t.name))

        if dependents:
            self._emit(Step(
                "restore the views and triggers set aside",
                tuple(sql for _, _, sql in dependents),
                tuple(f"DROP {typ.upper()} {q(name)}" for typ, name, _ in reversed(dependents)),
            ))

        for c in diff.changes:
            if isinstance(c, ch.DropTable):
                self._emit(Step(c.detail, (f"DROP TABLE {q(c.table)}",), None, c.table))

        self._verify()
        return Plan(
            dialect="sqlite",
            steps=tuple(self.steps),
            preamble=("PRAGMA foreign_keys = OFF",),
            begin=("BEGIN IMMEDIATE",),
            checks=("PRAGMA foreign_key_check",),
            commit=("COMMIT",),
            postamble=("-- PRAGMA foreign_keys is set back to its value before the migration",),
            notes=tuple(self.notes),
            proof=f"proven: {sum(len(s.statements) for s in self.steps)} statement(s) ran on a schema-only in-memory copy of the "
                  "database; the copy then matched the models and every view that worked still worked",
        )

    def _views(self) -> list[str]:
        return [r[0] for r in self.shadow.execute("SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY rowid")]

    def _view_error(self, name: str) -> str | None:
        """SQLite resolves a view's columns only when it is used; compile it to find out."""
        try:
            self.shadow.execute(f"SELECT * FROM {q(name)} LIMIT 0").fetchall()
            return None
        except sqlite3.Error as exc:
            return str(exc)

    def _verify(self) -> None:
        try:
            self.shadow.execute("PRAGMA foreign_key_check").fetchall()
        except sqlite3.Error as exc:  # "foreign key mismatch": the parent's columns are not a key
            raise PlanningError(f"a foreign key would reference columns that are neither the primary key nor unique in "
                                f"their table ({exc}); SQLite would refuse every write to it; nothing was executed") from None
        broken = [(v, err) for v in self._views() if v in self.working_views and (err := self._view_error(v))]
        if broken:
            raise PlanningError("the plan would break view(s) that work today: "
                                + "; ".join(f"{v} ({err})" for v, err in broken) + "; change or drop them first")
        after = read_snapshot(self.shadow, self.ignore)
        rest = diff_snapshots(after, self.target)
        if not rest.empty:
            details = "; ".join(c.detail for c in rest.changes[:5])
            raise PlanningError(f"internal planning error: after the plan the schema would still differ ({details}); nothing was executed")

    # -- decisions -----------------------------------------------------------------------
    def _alterable(self, c: ch.Change) -> bool:
        if not isinstance(c, _ALTERABLE):
            return False
        if isinstance(c, ch.AddColumn):
            return self._can_add_column(c)
        if isinstance(c, ch.DropColumn):
            return self._can_drop_column(c)
        return True

    def _can_add_column(self, c: ch.AddColumn) -> bool:
        col = c.column
        t = self.target.table(c.table)
        if col.generated is not None or (t.primary_key and col.name.lower() in (x.lower() for x in t.primary_key.columns)):
            return False
        def_tokens = tokenize(col.definition)
        if {tok.word for tok in def_tokens} & {"unique", "primary", "references", "check", "generated", "as"}:
            return False
        if col.default is not None:
            toks = tokenize(col.default)
            literal = (len(toks) == 1 and toks[0].kind in _CONSTANT_DEFAULT_KINDS) or (
                len(toks) == 2 and toks[0].text in "+-" and toks[1].kind == "number"
            ) or col.default.lower() in ("true", "false")
            parenthesized = any(t.word == "default" and i + 1 < len(def_tokens) and def_tokens[i + 1].text == "("
                                for i, t in enumerate(def_tokens))
            if not literal or parenthesized:
                return False  # SQLite refuses ADD COLUMN with CURRENT_* or expression defaults
        elif not col.nullable:
            return False  # NOT NULL needs a default in ADD COLUMN; a rebuild handles an empty table
        return True

    def _can_drop_column(self, c: ch.DropColumn) -> bool:
        name = c.column.name.lower()
        t = self._current(c.table)
        used = set()
        if t.primary_key:
            used |= {x.lower() for x in t.primary_key.columns}
        for u in t.unique_constraints:
            used |= {x.lower() for x in u.columns}
        for fk in t.foreign_keys:
            used |= {x.lower() for x in fk.columns}
        for k in t.check_constraints:
            used |= set(k.expression.split(" "))
        for i in t.indexes:
            used |= _words(i.sql)
        for col in t.columns:
            if col.generated:
                used |= set(col.generated.split(" "))
        for _, _, sql in self._dependents({c.table.lower()}):
            used |= _words(sql)
        return name not in used

    def _filled(self, table: str, column: str) -> dict:
        return self.fills.get((table.lower(), column.lower()), {})

    def _copied_value(self, table: str, column: str, present: bool) -> str:
        """What the copy writes into `column`: the old value, its conversion (--using), with NULLs (or,
        for a new column, every row) given the fill's value (--fill)."""
        given = self._filled(table, column)
        value = f"({given['using'].expression})" if "using" in given else q(column)
        if "fill" in given:
            value = f"COALESCE({value}, ({given['fill'].expression}))" if present else f"({given['fill'].expression})"
        return value

    def _ordered_new_tables(self, adds: list[ch.AddTable]) -> list[ch.AddTable]:
        """Parents before children, so the DDL reads naturally (cycles keep their order)."""
        pending = {c.table.lower(): c for c in adds}
        out: list[ch.AddTable] = []
        while pending:
            ready = [k for k, c in pending.items() if not any(
                fk.ref_table.lower() in pending and fk.ref_table.lower() != k for fk in c.definition.foreign_keys)]
            for k in ready or [next(iter(pending))]:
                out.append(pending.pop(k))
        return out

    def _rebuild(self, t: Table, changes: list[ch.Change]) -> Step:
        """sqlite.org lang_altertable.html section 7: create new, copy, drop, rename, re-index."""
        current = self._current(t.name)
        tmp = TMP_PREFIX + t.name
        current_cols = {c.name.lower() for c in current.columns if not c.generated}
        copy = [c.name for c in t.columns if not c.generated and (c.name.lower() in current_cols or self._filled(t.name, c.name))]
        cols = ", ".join(q(c) for c in copy)
        values = ", ".join(self._copied_value(t.name, c, c.lower() in current_cols) for c in copy)
        stmts = [
            rename_in_create(t.sql, tmp),
            f"INSERT INTO {q(tmp)} ({cols}) SELECT {values} FROM {q(t.name)}",
        ]
        if t.primary_key and t.primary_key.autoincrement:
            # Keep AUTOINCREMENT's high-water mark: ids of deleted rows are never reused.
            stmts.append(f"DELETE FROM sqlite_sequence WHERE name = '{tmp}'")
            stmts.append(
                f"INSERT INTO sqlite_sequence (name, seq) SELECT '{tmp}', max(seq) FROM ("
                f"SELECT seq FROM sqlite_sequence WHERE name = '{t.name.replace(chr(39), chr(39) * 2)}' "
                f"UNION ALL SELECT max({q(t.primary_key.columns[0])}) FROM {q(tmp)}) HAVING max(seq) IS NOT NULL"
            )
        stmts += [f"DROP TABLE {q(t.name)}", f"ALTER TABLE {q(tmp)} RENAME TO {q(t.name)}"]
        stmts += [i.sql for i in t.indexes]
        kinds = sorted({c.kind for c in changes})
        return Step(f"rebuild table {t.name} ({', '.join(kinds)})", tuple(stmts), None, t.name, rewrites_table=current.name)
