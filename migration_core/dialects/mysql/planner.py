"""MariaDB/MySQL DDL. Every statement commits by itself on these servers, so the executor (not
the plan) provides all-or-nothing: it dumps the tables this plan touches first and restores them
if any statement fails. Column changes are one `MODIFY COLUMN` with the models' full column spec.
"""

from __future__ import annotations

from sqlalchemy.schema import CreateIndex

from ... import changes as ch
from ...diff import Diff
from ..server.planner import ServerPlanner, sa_index


class MysqlPlanner(ServerPlanner):
    dialect_name = "mysql"

    def plan(self, diff: Diff):
        self.diff = diff
        return super().plan(diff)

    def drop_index(self, c: ch.DropIndex) -> list[str]:
        return [f"DROP INDEX {self.q(c.index.name)} ON {self.q(c.table)}"]

    def drop_constraint(self, table: str, name: str, kind: str) -> list[str]:
        t = self.q(table)
        if kind == "p":
            return [f"ALTER TABLE {t} DROP PRIMARY KEY"]
        if kind == "f":
            return [f"ALTER TABLE {t} DROP FOREIGN KEY {self.q(name)}"]
        if kind == "u":
            return [f"DROP INDEX {self.q(name)} ON {t}"]
        return [f"ALTER TABLE {t} DROP CONSTRAINT {self.q(name)}"]

    def constraint_name(self, table: str, kind: str, item) -> str | None:
        return "PRIMARY" if kind == "p" else super().constraint_name(table, kind, item)

    def find_constraint_name(self, table: str, kind: str, item) -> str | None:
        if kind == "f":
            rows = self.conn.execute(
                "SELECT constraint_name, GROUP_CONCAT(column_name ORDER BY ordinal_position) FROM information_schema.key_column_usage "
                "WHERE table_schema = DATABASE() AND table_name = %s AND referenced_table_name IS NOT NULL GROUP BY constraint_name",
                (table,)).fetchall()
            return next((n for n, cols in rows if tuple(cols.split(",")) == tuple(item.columns)), None)
        if kind == "c":
            from .catalog import normalize_expr

            rows = self.conn.execute("SELECT constraint_name, check_clause FROM information_schema.check_constraints "
                                     "WHERE constraint_schema = DATABASE() AND table_name = %s", (table,)).fetchall()
            return next((n for n, clause in rows if normalize_expr(clause) == item.expression), None)
        return None

    def column_changes(self, table: str, changes: list[ch.Change]) -> None:
        t = self.q(table)
        modified: set[str] = set()
        for c in changes:
            if isinstance(c, ch.AddColumn):
                self.emit(c.detail, [f"ALTER TABLE {t} ADD COLUMN {self.column_spec(table, c.column.name)}"],
                          [f"ALTER TABLE {t} DROP COLUMN {self.q(c.column.name)}"], table)
            elif isinstance(c, ch.DropColumn):
                self.emit(c.detail, [f"ALTER TABLE {t} DROP COLUMN {self.q(c.column.name)}"], None, table, rewrites_table=table)
            elif c.column.lower() not in modified:
                modified.add(c.column.lower())
                same = [x for x in changes if isinstance(x, ch._AlterColumn) and x.column.lower() == c.column.lower()]
                rewrite = any(isinstance(x, (ch.AlterColumnType, ch.AlterColumnNullable, ch.AlterColumnCollation)) for x in same)
                same = [x.detail for x in same]
                if rewrite:
                    self.notes.append(f"MODIFY COLUMN {table}.{c.column} copies {table} (the table is locked for writes meanwhile)")
                self.emit("; ".join(same), [f"ALTER TABLE {t} MODIFY COLUMN {self.column_spec(table, c.column)}"], None, table,
                          rewrites_table=table if rewrite else None)

    def add_check(self, c: ch.AddCheckConstraint) -> list[str]:
        name = f"CONSTRAINT {self.q(c.constraint.name)} " if c.constraint.name else ""
        return [f"ALTER TABLE {self.q(c.table)} ADD {name}CHECK ({c.constraint.expression})"]

    def add_foreign_key(self, c: ch.AddForeignKey) -> list[str]:
        name = f"CONSTRAINT {self.q(c.fk.name)} " if c.fk.name else ""
        return [f"ALTER TABLE {self.q(c.table)} ADD {name}{self.fk_clause(c.fk)}"]

    def add_index(self, c: ch.AddIndex) -> None:
        ix = sa_index(self.metadata, c.table, c.index.name)
        if ix is not None:
            sql = self.compile(CreateIndex(ix))
        else:  # a UniqueConstraint in the models, or an FK's implicit index: both are plain indexes here
            cols = ", ".join(self.q(x) for x in c.index.columns)
            sql = f"CREATE {'UNIQUE ' if c.index.unique else ''}INDEX {self.q(c.index.name)} ON {self.q(c.table)} ({cols})"
        self.emit(c.detail, [sql], self.drop_index(ch.DropIndex(c.table, c.index)), c.table, builds_index_on=c.table)

    def table_comment(self, c: ch.AlterTableComment) -> list[str]:
        text = (c.new or "").replace("\\", "\\\\").replace("'", "''")
        return [f"ALTER TABLE {self.q(c.table)} COMMENT = '{text}'"]

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
