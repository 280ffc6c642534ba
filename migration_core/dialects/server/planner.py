"""The order in which a server plan runs, shared by PostgreSQL and MariaDB/MySQL; each dialect's
planner subclass supplies the DDL for every kind of change (SQLAlchemy constructs compiled for
the dialect where SQLAlchemy has them, alembic-style ALTER text where it has not).

Order: renames; drops of constraints and indexes (so columns they cover can change); new types;
new tables (parents first); column changes per table; primary keys; unique, check, index; foreign
keys (every referenced table exists by then); dropped tables (children first); comments.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy import Table as SaTable
from sqlalchemy.engine import Dialect as SaDialect
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable, SetTableComment

from ... import changes as ch
from ...diff import Diff
from ...errors import MigrationError
from ...plan import Plan, Step
from ...snapshot import SchemaSnapshot


def sa_table(metadata: MetaData, name: str) -> SaTable | None:
    t = metadata.tables.get(name)
    if t is not None:
        return t
    return next((t for t in metadata.tables.values() if t.name.lower() == name.lower()), None)


def sa_column(metadata: MetaData, table: str, column: str):
    t = sa_table(metadata, table)
    if t is None:
        return None
    return next((c for c in t.columns if c.name.lower() == column.lower()), None)


def sa_index(metadata: MetaData, table: str, name: str):
    t = sa_table(metadata, table)
    if t is None:
        return None
    return next((i for i in t.indexes if i.name and i.name.lower() == name.lower()), None)


class PlanningError(MigrationError):
    """The change cannot be planned safely on this database; nothing was executed."""


_COLUMN_KINDS = (ch.AddColumn, ch.DropColumn, ch.AlterColumnType, ch.AlterColumnNullable, ch.AlterColumnDefault,
                 ch.AlterColumnCollation)
_HANDLED = (ch.RenameTable, ch.RenameColumn, ch.AddTable, ch.DropTable, ch.AlterPrimaryKey, ch.AddForeignKey,
            ch.DropForeignKey, ch.AddUniqueConstraint, ch.DropUniqueConstraint, ch.AddCheckConstraint,
            ch.DropCheckConstraint, ch.AddIndex, ch.DropIndex, ch.AlterTableComment, *_COLUMN_KINDS)


class ServerPlanner:
    dialect_name = "server"

    def __init__(self, metadata: MetaData, sa_dialect: SaDialect, live: SchemaSnapshot, target: SchemaSnapshot, settings,
                 conn=None):
        self.conn = conn
        self.metadata = metadata
        self.sa_dialect = sa_dialect
        self.live = live
        self.target = target
        self.settings = settings
        self.steps: list[Step] = []
        self.notes: list[str] = []

    # -- helpers -------------------------------------------------------------------------
    def q(self, name: str) -> str:
        return self.sa_dialect.identifier_preparer.quote(name)

    def compile(self, ddl) -> str:
        return str(ddl.compile(dialect=self.sa_dialect)).strip()

    def sa_table(self, name: str):
        t = sa_table(self.metadata, name)
        if t is None:
            raise PlanningError(f"internal planning error: table {name} is not in the models")
        return t

    def sa_column(self, table: str, column: str):
        c = sa_column(self.metadata, table, column)
        if c is None:
            raise PlanningError(f"internal planning error: column {table}.{column} is not in the models")
        return c

    def column_spec(self, table: str, column: str) -> str:
        return self.compile(CreateColumn(self.sa_column(table, column)))

    def type_sql(self, table: str, column: str) -> str:
        return self.sa_column(table, column).type.compile(dialect=self.sa_dialect)

    def default_sql(self, table: str, column: str) -> str | None:
        col = self.sa_column(table, column)
        return self.sa_dialect.ddl_compiler(self.sa_dialect, None).get_column_default_string(col)

    def create_table(self, name: str) -> list[str]:
        t = self.sa_table(name)
        out = [self.compile(CreateTable(t)), *(self.compile(CreateIndex(i)) for i in sorted(t.indexes, key=lambda i: i.name or ""))]
        if t.comment and not self.sa_dialect.inline_comments:
            out.append(self.compile(SetTableComment(t)))  # what create_all adds after CREATE TABLE
        return out

    def create_index(self, table: str, name: str) -> str:
        ix = sa_index(self.metadata, table, name)
        if ix is None:
            raise PlanningError(f"index {name} on {table} is not declared in the models (implicit indexes cannot be re-created)")
        return self.compile(CreateIndex(ix))

    def emit(self, description: str, statements, reverse=None, table: str | None = None, **kw) -> None:
        if statements:
            self.steps.append(Step(description, tuple(statements), tuple(reverse) if reverse is not None else None, table, **kw))

    # -- hooks (each returns statements) -----------------------------------------------------
    def rename_table(self, c: ch.RenameTable) -> list[str]:
        return [f"ALTER TABLE {self.q(c.old_name)} RENAME TO {self.q(c.table)}"]

    def rename_column(self, c: ch.RenameColumn) -> list[str]:
        return [f"ALTER TABLE {self.q(c.table)} RENAME COLUMN {self.q(c.old_name)} TO {self.q(c.new_name)}"]

    def drop_table(self, c: ch.DropTable) -> list[str]:
        return [f"DROP TABLE {self.q(c.table)}"]

    def drop_index(self, c: ch.DropIndex) -> list[str]:
        raise NotImplementedError

    def drop_constraint(self, table: str, name: str, kind: str) -> list[str]:
        raise NotImplementedError

    def constraint_name(self, table: str, kind: str, item) -> str | None:
        """The constraint's live name: its own, else (the database chose it) looked up on the server."""
        name = getattr(item, "name", None)
        if name or self.conn is None:
            return name
        return self.find_constraint_name(table, kind, item)

    def find_constraint_name(self, table: str, kind: str, item) -> str | None:
        return None

    def pre_tables(self, diff: Diff) -> None:
        """Steps before new tables exist (PostgreSQL: enum types)."""

    def column_changes(self, table: str, changes: list[ch.Change]) -> None:
        raise NotImplementedError

    def add_primary_key(self, c: ch.AlterPrimaryKey) -> list[str]:
        cols = ", ".join(self.q(x) for x in c.new.columns)
        name = f"CONSTRAINT {self.q(c.new.name)} " if c.new.name else ""
        return [f"ALTER TABLE {self.q(c.table)} ADD {name}PRIMARY KEY ({cols})"]

    def add_unique(self, c: ch.AddUniqueConstraint) -> list[str]:
        cols = ", ".join(self.q(x) for x in c.constraint.columns)
        name = f"CONSTRAINT {self.q(c.constraint.name)} " if c.constraint.name else ""
        return [f"ALTER TABLE {self.q(c.table)} ADD {name}UNIQUE ({cols})"]

    def add_check(self, c: ch.AddCheckConstraint) -> list[str]:
        raise NotImplementedError

    def add_foreign_key(self, c: ch.AddForeignKey) -> list[str]:
        raise NotImplementedError

    def fk_clause(self, fk) -> str:
        q = self.q
        out = (f"FOREIGN KEY ({', '.join(q(x) for x in fk.columns)}) REFERENCES {q(fk.ref_table)} "
               f"({', '.join(q(x) for x in fk.ref_columns)})")
        if fk.on_delete:
            out += f" ON DELETE {fk.on_delete}"
        if fk.on_update:
            out += f" ON UPDATE {fk.on_update}"
        if fk.deferrable:
            out += f" {fk.deferrable}"
        return out

    def add_index(self, c: ch.AddIndex) -> None:
        self.emit(c.detail, [self.create_index(c.table, c.index.name)], self.drop_index(ch.DropIndex(c.table, c.index)),
                  c.table, builds_index_on=c.table)

    def table_comment(self, c: ch.AlterTableComment) -> list[str]:
        raise NotImplementedError

    def plan_extras(self) -> dict:
        return {}

    # -- main ----------------------------------------------------------------------------
    def plan(self, diff: Diff) -> Plan:
        unsupported = [c for c in diff.changes if not isinstance(c, _HANDLED)]
        if unsupported:
            raise PlanningError("cannot plan on " + self.dialect_name + ": " + "; ".join(c.detail for c in unsupported[:5]))
        cs = diff.changes
        added = {c.table.lower() for c in cs if isinstance(c, ch.AddTable)}
        dropped = {c.table.lower() for c in cs if isinstance(c, ch.DropTable)}
        kept = [c for c in cs if c.table.lower() not in added | dropped]

        for c in cs:
            if isinstance(c, ch.RenameTable):
                self.emit(c.detail, self.rename_table(c), [f"ALTER TABLE {self.q(c.table)} RENAME TO {self.q(c.old_name)}"], c.table)
        for c in cs:
            if isinstance(c, ch.RenameColumn):
                self.emit(c.detail, self.rename_column(c), None, c.table)
        # Foreign keys first, from every table (also those about to be dropped), so drops never collide with them.
        def drop(c, kind: str, item) -> None:
            name = self.constraint_name(c.table, kind, item)
            if name is None:
                raise PlanningError(f"{c.detail}: cannot find the constraint's name in the database")
            self.emit(c.detail if kind != "p" else f"drop primary key of {c.table}", self.drop_constraint(c.table, name, kind), None, c.table)

        for c in cs:
            if isinstance(c, ch.DropForeignKey):
                drop(c, "f", c.fk)
        for c in kept:
            if isinstance(c, ch.DropIndex):
                self.emit(c.detail, self.drop_index(c), None, c.table)
            elif isinstance(c, ch.DropUniqueConstraint):
                drop(c, "u", c.constraint)
            elif isinstance(c, ch.DropCheckConstraint):
                drop(c, "c", c.constraint)
            elif isinstance(c, ch.AlterPrimaryKey) and c.old is not None:
                drop(c, "p", c.old)
        self.pre_tables(diff)
        for c in self._parents_first([c for c in cs if isinstance(c, ch.AddTable)]):
            self.emit(c.detail, self.create_table(c.table), [f"DROP TABLE {self.q(c.table)}"], c.table)
        by_table: dict[str, list[ch.Change]] = {}
        for c in kept:
            if isinstance(c, _COLUMN_KINDS):
                by_table.setdefault(c.table, []).append(c)
        for table, changes in by_table.items():
            self.column_changes(table, changes)
        for c in kept:
            if isinstance(c, ch.AlterPrimaryKey) and c.new is not None:
                self.emit(c.detail, self.add_primary_key(c), None, c.table, builds_index_on=c.table)
        for c in kept:
            if isinstance(c, ch.AddUniqueConstraint):
                self.emit(c.detail, self.add_unique(c), None, c.table, builds_index_on=c.table)
            elif isinstance(c, ch.AddCheckConstraint):
                self.emit(c.detail, self.add_check(c), None, c.table)
            elif isinstance(c, ch.AddIndex):
                self.add_index(c)
        for c in kept:
            if isinstance(c, ch.AddForeignKey):
                self.emit(c.detail, self.add_foreign_key(c), None, c.table)
        for c in reversed(self._parents_first([c for c in cs if isinstance(c, ch.DropTable)])):
            self.emit(c.detail, self.drop_table(c), None, c.table)
        for c in kept:
            if isinstance(c, ch.AlterTableComment):
                self.emit(c.detail, self.table_comment(c), None, c.table)
        extras = self.plan_extras()
        return Plan(dialect=self.dialect_name, steps=tuple(self.steps), notes=tuple(self.notes), **extras)

    @staticmethod
    def _parents_first(items: list) -> list:
        pending = {c.table.lower(): c for c in items}
        out = []
        while pending:
            ready = [k for k, c in pending.items() if not any(
                fk.ref_table.lower() in pending and fk.ref_table.lower() != k for fk in c.definition.foreign_keys)]
            for k in ready or [next(iter(pending))]:
                out.append(pending.pop(k))
        return out
