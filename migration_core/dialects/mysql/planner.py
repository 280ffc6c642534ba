"""MariaDB/MySQL DDL. Every statement commits by itself on these servers, so the executor (not
the plan) provides all-or-nothing: it dumps the tables this plan touches first and restores them
if any statement fails.

All the changes to one existing table go into one `ALTER TABLE` (as Atlas does): InnoDB checks a
statement's end state, so an index that covers a foreign key can be replaced by another in the same
statement (separately, `DROP INDEX` fails with error 1553 "needed in a foreign key constraint"),
a primary key changes without a moment with no key, and the table is copied once instead of once
per change. Foreign keys are dropped before and added after those statements, because they join
two tables; a key whose columns change type is dropped and added again around the change (InnoDB
refuses the change with error 1832/1833 while the key exists).
"""

from __future__ import annotations

import re
from functools import cached_property

from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex

from ... import changes as ch
from ...diff import Diff
from ...plan import Step
from ...errors import PlanningError
from ..server.planner import ServerPlanner, sa_index

def _kind(generated: str | None) -> str | None:
    """None (a plain column), "VIRTUAL" or "STORED", from the catalog's normalized generation text."""
    return None if generated is None else "VIRTUAL" if generated.endswith(" VIRTUAL") else "STORED"


_CREATE_INDEX = re.compile(r"^CREATE (?P<kind>(?:UNIQUE |FULLTEXT |SPATIAL )?)INDEX (?P<name>\S+) ON \S+ (?P<rest>.*)$", re.S)
_ALTER = re.compile(r"^ALTER TABLE (?P<table>`(?:[^`]|``)*`|\S+) (?P<clause>.*)$", re.S)


class MysqlPlanner(ServerPlanner):
    dialect_name = "mysql"

    def drop_index(self, c: ch.DropIndex) -> list[str]:
        return [f"ALTER TABLE {self.q(c.table)} DROP INDEX {self.q(c.index.name)}"]

    def drop_constraint(self, table: str, name: str, kind: str) -> list[str]:
        t = self.q(table)
        if kind == "p":
            return [f"ALTER TABLE {t} DROP PRIMARY KEY"]
        if kind == "f":
            return [f"ALTER TABLE {t} DROP FOREIGN KEY {self.q(name)}"]
        if kind == "u":
            return [f"ALTER TABLE {t} DROP INDEX {self.q(name)}"]
        live_column = self._column_level_checks.get(((self.diff.live_table(table) if self.diff else table).lower(), name.lower()))
        if live_column is not None:
            column = self.tcol(table, live_column)  # part of the column's definition: DROP CONSTRAINT cannot reach it (error 1091)
            if self._redefined(table, column):
                return []  # the plan's own MODIFY (or DROP) of the column takes it away
            return [f"ALTER TABLE {t} MODIFY COLUMN {self.column_spec(table, column)}"]
        return [f"ALTER TABLE {t} DROP CONSTRAINT {self.q(name)}"]

    @cached_property
    def _column_level_checks(self) -> dict[tuple[str, str], str]:
        """(live table, check name) -> live column, for MariaDB's column-level CHECKs (a JSON column's own
        `json_valid`, or a check written in a column's definition): MariaDB names them after the column
        and keeps them in the column's definition, so a MODIFY COLUMN that does not repeat one drops it
        (MariaDB KB, "CONSTRAINT"). MySQL has no column-level checks: nothing."""
        try:
            rows = self.conn.execute("SELECT table_name, constraint_name FROM information_schema.check_constraints "
                                     "WHERE constraint_schema = DATABASE() AND level = 'Column'").fetchall() if self.conn else []
        except DBAPIError:  # MySQL: no LEVEL column
            rows = []
        return {(t.lower(), n.lower()): n for t, n in rows}

    def _redefined(self, table: str, column: str) -> bool:
        """Whether the plan adds, drops or MODIFYs `table.column` (a MODIFY restates the whole definition)."""
        col = column.lower()
        for x in self.diff.changes if self.diff else ():
            if x.table.lower() != table.lower():
                continue
            name = x.column.name if isinstance(x, (ch.AddColumn, ch.DropColumn)) else getattr(x, "column", None)
            if isinstance(name, str) and name.lower() == col:
                return True
        return False

    def constraint_name(self, table: str, kind: str, item) -> str | None:
        return "PRIMARY" if kind == "p" else super().constraint_name(table, kind, item)

    def find_constraint_name(self, table: str, kind: str, item) -> str | None:
        if kind == "f":
            rows = self.conn.execute(
                "SELECT constraint_name, GROUP_CONCAT(column_name ORDER BY ordinal_position) FROM information_schema.key_column_usage "
                "WHERE table_schema = DATABASE() AND table_name = %s AND referenced_table_name IS NOT NULL GROUP BY constraint_name",
                (self.diff.live_table(table) if self.diff else table,)).fetchall()
            return next((n for n, cols in rows if tuple(cols.split(",")) == tuple(item.columns)), None)
        if kind == "c":
            from .catalog import normalize_expr

            rows = self.conn.execute("SELECT constraint_name, check_clause FROM information_schema.check_constraints "
                                     "WHERE constraint_schema = DATABASE() AND table_name = %s",
                                     (self.diff.live_table(table) if self.diff else table,)).fetchall()
            return next((n for n, clause in rows if normalize_expr(clause) == item.expression), None)
        return None

    def column_changes(self, table: str, changes: list[ch.Change]) -> None:
        t = self.q(table)
        modified: set[str] = set()
        for c in changes:
            if isinstance(c, ch.AlterColumnGenerated) and _kind(c.old.generated) != _kind(c.new.generated) \
                    and not (_kind(c.old.generated) == "STORED" and c.new.generated is None):  # that one MODIFY does, values kept
                if _kind(c.old.generated) == "VIRTUAL" and c.new.generated is None:
                    self.unvirtual(table, c, [x for x in changes if isinstance(x, ch._AlterColumn) and x.column.lower() == c.column.lower()])
                else:
                    self.regenerate(table, c)
                modified.add(c.column.lower())
        for c in changes:
            if isinstance(c, ch.AddColumn):
                self.emit(c.detail, [f"ALTER TABLE {t} ADD COLUMN {self.column_spec(table, c.column.name)}"],
                          [f"ALTER TABLE {t} DROP COLUMN {self.q(c.column.name)}"], table, change=c)
            elif isinstance(c, ch.DropColumn):
                self.emit(c.detail, [f"ALTER TABLE {t} DROP COLUMN {self.q(c.column.name)}"], None, table, change=c,
                          rewrites_table=table)
            elif c.column.lower() not in modified:
                modified.add(c.column.lower())
                same = [x for x in changes if isinstance(x, ch._AlterColumn) and x.column.lower() == c.column.lower()]
                rewrite = any(isinstance(x, (ch.AlterColumnType, ch.AlterColumnNullable, ch.AlterColumnCollation)) for x in same)
                if rewrite:
                    self.notes.append(f"MODIFY COLUMN {table}.{c.column} copies {table} (the table is locked for writes meanwhile)")
                joined = {("no_fk", fk_table.lower(), cols) for fk_table, cols in self._fks_on(table, c.column)} \
                    if any(isinstance(x, (ch.AlterColumnType, ch.AlterColumnCollation)) for x in same) else set()
                self.emit("; ".join(x.detail for x in same), [f"ALTER TABLE {t} MODIFY COLUMN {self.column_spec(table, c.column)}"],
                          None, table, change=c, requires=joined, rewrites_table=table if rewrite else None)

    def not_null_after_fill(self, table: str, column: str, spec: str) -> str:
        """MariaDB states a column whole: `MODIFY COLUMN` with its full definition (KB "ALTER TABLE")."""
        return f"ALTER TABLE {self.q(table)} MODIFY COLUMN {spec}"

    def regenerate(self, table: str, c: ch.AlterColumnGenerated) -> None:
        """VIRTUAL <-> STORED, or a plain column made generated (or back): MariaDB refuses that in a MODIFY
        (error 1907, "not yet supported for generated columns"), so the column is dropped and added again,
        with its indexes, in the one ALTER TABLE of its table. A generated column made plain keeps no
        values here (a plain column made generated loses its stored values: the assessment says so)."""
        t = self.q(table)
        name = c.column.lower()
        on_it = [i for i in self.target.table(table).indexes if name in {(x or "").lower() for x in i.columns}]
        live = self.live.table(self.diff.live_table(table))
        dropped = [i for i in live.indexes if name in {(x or "").lower() for x in i.columns}] if live else []
        self.notes.append(f"changing how {table}.{c.column} is generated drops and adds it again, which copies {table}")
        for i in dropped:
            self.emit(f"drop index {i.name} on {table} with the column", self.drop_index(ch.DropIndex(table, i)), None, table)
        self.emit(c.detail, [f"ALTER TABLE {t} DROP COLUMN {self.q(c.column)}"], None, table, rewrites_table=table)
        self.emit(c.detail, [f"ALTER TABLE {t} ADD COLUMN {self.column_spec(table, c.column)}"], None, table,
                  provides={self.r_col(table, c.column)})
        for i in on_it:
            self.add_index(ch.AddIndex(table, i))

    def unvirtual(self, table: str, c: ch.AlterColumnGenerated, same: list[ch.Change]) -> None:
        """A VIRTUAL column made plain, values kept: MariaDB refuses it in a MODIFY (error 1907), and a
        column dropped and added again would be empty. The values are copied into a new plain column,
        which then takes the old one's name, place and indexes, in one ALTER TABLE."""
        t, col = self.q(table), self.q(c.column)
        spec = self.column_spec(table, c.column)
        if not spec.startswith(col):
            raise PlanningError(f"{c.detail}: cannot render the plain column")
        tmp = self.q(f"{c.column}__mig"[:64])
        name = c.column.lower()
        live = self.live.table(self.diff.live_table(table))
        wanted = {i.name.lower(): i for i in self.target.table(table).indexes if name in {(x or "").lower() for x in i.columns}}
        dropped = [i for i in (live.indexes if live else ()) if i.name.lower() in wanted]
        swap = [*(f"DROP INDEX {self.q(i.name)}" for i in dropped), f"DROP COLUMN {col}", f"CHANGE COLUMN {tmp} {spec}",
                *(self.index_clause(table, i) for i in wanted.values())]
        self.notes.append(f"{table}.{c.column} made plain: its values are copied into a new column that takes its place, "
                          f"which copies {table} twice")
        self.emit("; ".join(x.detail for x in same), [f"ALTER TABLE {t} ADD COLUMN {tmp}{spec[len(col):]} AFTER {col}",
                                                      f"UPDATE {t} SET {tmp} = {col}", f"ALTER TABLE {t} " + ", ".join(swap)],
                  None, table, change=c, rewrites_table=table)

    def _fks_on(self, table: str, column: str) -> list[tuple[str, tuple[str, ...]]]:
        """Live foreign keys (models' table name, its lower-cased columns) that join `table.column`
        (the models' names) from either side."""
        out = []
        for lt in self.live.tables.values():
            child = self.tname(lt.name)
            for fk in lt.foreign_keys:
                cols = tuple(self.tcol(child, x).lower() for x in fk.columns)
                parent = self.tname(fk.ref_table)
                refs = [self.tcol(parent, x).lower() for x in fk.ref_columns]
                if (child.lower() == table.lower() and column.lower() in cols) or \
                        (parent.lower() == table.lower() and column.lower() in refs):
                    out.append((child, cols))
        return out

    def extra_steps(self, diff: Diff) -> None:
        """Foreign keys that join a column whose type or collation changes: dropped before, added after."""
        changed = {(c.table.lower(), c.column.lower()) for c in diff.changes
                   if isinstance(c, (ch.AlterColumnType, ch.AlterColumnCollation))}
        dropped = {(c.table.lower(), tuple(x.lower() for x in c.fk.columns)) for c in diff.changes if isinstance(c, ch.DropForeignKey)}
        dropped_tables = {c.table.lower() for c in diff.changes if isinstance(c, ch.DropTable)}
        for table, column in sorted(changed):
            live = diff.live_table(table)
            outside = [f"{s}.{t} ({n})" for s, t, n in self.conn.execute(
                "SELECT table_schema, table_name, constraint_name FROM information_schema.key_column_usage "
                "WHERE referenced_table_schema = DATABASE() AND referenced_table_name = %s AND referenced_column_name = %s",
                (live, diff.live_column(table, column))).fetchall()
                if self.live.table(t) is None or s != self.conn.execute("SELECT DATABASE()").scalar()] if self.conn else []
            if outside:
                raise PlanningError(f"{table}.{column} changes type, but foreign keys of tables the tool does not manage reference "
                                    f"it: {', '.join(outside)}; MariaDB refuses the change while they exist (error 1833)")
        done: set[tuple] = set()
        for table, column in sorted(changed):
            for child, cols in self._fks_on(table, column):
                if (child.lower(), cols) in dropped | done or child.lower() in dropped_tables:
                    continue
                done.add((child.lower(), cols))
                live_child = self.live.table(diff.live_table(child))
                fk = next(f for f in live_child.foreign_keys if tuple(self.tcol(child, x).lower() for x in f.columns) == cols)
                target_fk = next((f for f in self.target.table(child).foreign_keys
                                  if tuple(x.lower() for x in f.columns) == cols), None)
                if target_fk is None:
                    continue  # the models drop it: the diff has it
                name = self.constraint_name(child, "f", fk)
                self.emit(f"drop foreign key {child}({', '.join(cols)}) while the columns it joins change type",
                          self.drop_constraint(child, name, "f"), None, child, change=ch.DropForeignKey(child, fk))
                self.emit(f"add foreign key {child}({', '.join(cols)}) -> {target_fk.ref_table} again",
                          self.add_foreign_key(ch.AddForeignKey(child, target_fk)), None, child,
                          change=ch.AddForeignKey(child, target_fk))

    def add_check(self, c: ch.AddCheckConstraint) -> list[str]:
        if self._json_check_of_redefined_column(c):
            return []  # MariaDB adds `json_valid(col)` itself with a JSON column it adds or MODIFYs (JSON is LONGTEXT plus that CHECK)
        name = f"CONSTRAINT {self.q(c.constraint.name)} " if c.constraint.name else ""
        return [f"ALTER TABLE {self.q(c.table)} ADD {name}CHECK ({c.constraint.expression})"]

    def _json_check_of_redefined_column(self, c: ch.AddCheckConstraint) -> bool:
        """A column-level CHECK of a column the plan adds or MODIFYs: the column's definition carries it
        (a JSON column's `json_valid`, named after the column, or a CheckConstraint in the column)."""
        from sqlalchemy import JSON, CheckConstraint

        name = (c.constraint.name or "").lower()
        column = next((x for x in self.sa_table(c.table).columns if x.name.lower() == name), None)
        if column is None or not self._redefined(c.table, column.name):
            return False
        return isinstance(column.type, JSON) or any(isinstance(k, CheckConstraint) for k in column.constraints)

    def add_foreign_key(self, c: ch.AddForeignKey) -> list[str]:
        name = f"CONSTRAINT {self.q(c.fk.name)} " if c.fk.name else ""
        return [f"ALTER TABLE {self.q(c.table)} ADD {name}{self.fk_clause(c.fk)}"]

    def index_clause(self, table: str, index) -> str:
        """`ADD [UNIQUE] INDEX name (..)` for one of the models' indexes of `table`."""
        ix = sa_index(self.metadata, table, index.name)
        if ix is not None:
            m = _CREATE_INDEX.match(self.compile(CreateIndex(ix)))
            return f"ADD {m['kind']}INDEX {m['name']} {m['rest']}"
        # a UniqueConstraint in the models, or an FK's implicit index: both are plain indexes here
        cols = ", ".join(self.q(x) for x in index.columns)
        return f"ADD {'UNIQUE ' if index.unique else ''}INDEX {self.q(index.name)} ({cols})"

    def add_index(self, c: ch.AddIndex) -> None:
        sql = f"ALTER TABLE {self.q(c.table)} {self.index_clause(c.table, c.index)}"
        self.emit(c.detail, [sql], self.drop_index(ch.DropIndex(c.table, c.index)), c.table, change=c, builds_index_on=c.table)

    def table_options(self, c: ch.AlterTableOptions) -> None:
        """A table's storage engine (`ENGINE=`, the table is copied); its default collation: `CONVERT TO
        CHARACTER SET .. COLLATE ..` (its columns that follow the table's collation follow it: the table
        is copied), then the columns whose own collation the models set are given it again."""
        def engine(options):
            return next((o.split("=", 1)[1] for o in options if o.startswith("ENGINE=")), None)

        if engine(c.old) != engine(c.new):
            new = engine(c.new) or self.conn.execute("SELECT @@default_storage_engine").scalar()
            self.notes.append(f"changing the storage engine of {c.table} to {new} copies it (the table is locked for writes meanwhile)")
            self.emit(f"change storage engine of {c.table} to {new}", [f"ALTER TABLE {self.q(c.table)} ENGINE={new}"], None, c.table,
                      rewrites_table=c.table)
        if [o for o in c.old if o.startswith("COLLATE ")] == [o for o in c.new if o.startswith("COLLATE ")]:
            return
        coll = next((o.split(" ", 1)[1] for o in c.new if o.startswith("COLLATE ")), None)
        if coll is None:
            coll = self.conn.execute("SELECT default_collation_name FROM information_schema.schemata "
                                     "WHERE schema_name = DATABASE()").scalar()
        t = self.q(c.table)
        own = [x.name for x in self.target.table(c.table).columns if x.collation]
        self.notes.append(f"changing the collation of {c.table} converts and copies it (the table is locked for writes meanwhile)")
        self.emit(c.detail, [f"ALTER TABLE {t} CONVERT TO CHARACTER SET {coll.split('_', 1)[0]} COLLATE {coll}"], None, c.table,
                  rewrites_table=c.table, provides={self.r_col(c.table, x.name) for x in self.target.table(c.table).columns})
        for name in own:
            self.emit(f"keep the collation of {c.table}.{name}", [f"ALTER TABLE {t} MODIFY COLUMN {self.column_spec(c.table, name)}"],
                      None, c.table, provides={self.r_col(c.table, name)})

    def table_comment(self, c: ch.AlterTableComment) -> list[str]:
        text = (c.new or "").replace("\\", "\\\\").replace("'", "''")
        return [f"ALTER TABLE {self.q(c.table)} COMMENT = '{text}'"]

    def finish(self, steps: list[Step]) -> list[Step]:
        """One ALTER TABLE per existing table: its steps' clauses joined, resources united (what the
        statement does inside itself no longer orders it); then the whole plan ordered again. Foreign
        keys and renames stay statements of their own."""
        from ...ordering import order_steps

        new = {c.table.lower() for c in self.diff.changes if isinstance(c, ch.AddTable)}
        groups: dict[str, list[Step]] = {}
        out: list[Step | str] = []
        for s in steps:
            m = _ALTER.match(s.statements[0]) if len(s.statements) == 1 else None
            clause = m["clause"] if m else ""
            joinable = (m is not None and s.table and s.table.lower() not in new and not clause.startswith(("RENAME ",))
                        and "FOREIGN KEY" not in clause)
            if not joinable:
                out.append(s)
                continue
            key = s.table.lower()
            if key not in groups:
                groups[key] = []
                out.append(key)
            groups[key].append(s)
        merged: list[Step] = []
        for item in out:
            if isinstance(item, Step):
                merged.append(item)
                continue
            group = groups[item]
            if len(group) == 1:
                merged.append(group[0])
                continue
            provides = frozenset().union(*(g.provides for g in group))
            removes = frozenset().union(*(g.removes for g in group))
            clauses = [_ALTER.match(g.statements[0])["clause"] for g in group]
            undo = [g.reverse for g in reversed(group)]
            reverse = None
            if all(r and len(r) == 1 and _ALTER.match(r[0]) for r in undo):
                reverse = (f"ALTER TABLE {self.q(group[0].table)} " + ", ".join(_ALTER.match(r[0])["clause"] for r in undo),)
            merged.append(Step(
                "; ".join(g.description for g in group),
                (f"ALTER TABLE {self.q(group[0].table)} " + ", ".join(clauses),), reverse, group[0].table,
                rewrites_table=next((g.rewrites_table for g in group if g.rewrites_table), None),
                builds_index_on=next((g.builds_index_on for g in group if g.builds_index_on), None),
                provides=provides, removes=removes - provides,
                requires=frozenset().union(*(g.requires for g in group)) - provides,
                releases=frozenset().union(*(g.releases for g in group)) - removes))
        return order_steps(merged)

    def plan_extras(self) -> dict:
        live_names = []
        for c in self.diff.changes:
            name = self.diff.live_table(c.table)
            if self.live.table(name) is not None and name not in live_names:
                live_names.append(name)
        if self.steps:
            self.notes.append("MariaDB/MySQL commit each DDL statement: the tables this plan touches ("
                              + (", ".join(live_names) or "none yet") + ") are dumped first and restored automatically "
                              "if a statement fails")
        return {"begin": (), "commit": (), "tables": tuple(live_names)}
