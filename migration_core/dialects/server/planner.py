"""Server plans, shared by PostgreSQL and MariaDB/MySQL: one Step per change (or per part of one),
each naming the schema objects it provides, requires, releases and removes, ordered by
`ordering.order_steps` from those dependencies. Each dialect's planner subclass supplies the DDL
(SQLAlchemy constructs compiled for the dialect where SQLAlchemy has them, alembic-style ALTER text
where it has not).

Steps are emitted in a natural order (renames; drops of foreign keys, then of other constraints and
indexes; new types; column changes; new tables; keys, checks and indexes; foreign keys; dropped
tables; comments), which the dependency graph keeps wherever the engine allows it. New tables that
reference each other in a cycle (or through `use_alter=True`) are created first and get those
foreign keys afterwards with ALTER TABLE.
"""

from __future__ import annotations

from sqlalchemy import MetaData, Sequence
from sqlalchemy import Table as SaTable
from sqlalchemy.engine import Dialect as SaDialect
from sqlalchemy.schema import (AddConstraint, CreateColumn, CreateIndex, CreateSequence, CreateTable, SetColumnComment,
                               SetTableComment)

from ... import changes as ch
from ...diff import Diff
from ...errors import PlanningError
from ...ordering import order_steps, strongly_connected
from .fillsql import with_fills
from .resources import StepResources
from ...plan import Plan, Step
from ...snapshot import SchemaSnapshot
from ..ddl import ddl_applies
from .connection import runnable


def sa_table(metadata: MetaData, name: str) -> SaTable | None:
    t = metadata.tables.get(name)
    if t is not None:
        return t
    return next((t for t in metadata.tables.values() if t.name.lower() == name.lower()), None)


def sa_column(metadata: MetaData, table: str, column: str):
    t = sa_table(metadata, table)
    if t is None:
        return None
    exact = next((c for c in t.columns if c.name == column), None)
    return exact if exact is not None else next((c for c in t.columns if c.name.lower() == column.lower()), None)


def sa_index(metadata: MetaData, table: str, name: str):
    t = sa_table(metadata, table)
    if t is None:
        return None
    return next((i for i in t.indexes if i.name and i.name.lower() == name.lower()), None)


_COLUMN_KINDS = (ch.AddColumn, ch.DropColumn, ch.AlterColumnType, ch.AlterColumnNullable, ch.AlterColumnDefault,
                 ch.AlterColumnCollation, ch.AlterColumnGenerated, ch.AlterColumnComment)
_HANDLED = (ch.RenameTable, ch.RenameColumn, ch.AddTable, ch.DropTable, ch.AlterPrimaryKey, ch.AddForeignKey,
            ch.DropForeignKey, ch.AddUniqueConstraint, ch.DropUniqueConstraint, ch.AddCheckConstraint,
            ch.DropCheckConstraint, ch.AddIndex, ch.DropIndex, ch.AlterTableComment, ch.AlterTableOptions, ch.AddEnumType,
            ch.AlterEnumType, ch.DropEnumType, ch.AddSequence, *_COLUMN_KINDS)


class ServerPlanner(StepResources):
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
        self.diff: Diff | None = None
        self.fills: dict = {}  # (table, column) lower-cased -> {"fill" | "using": fills.Fill}; set by the dialect

    # -- helpers -------------------------------------------------------------------------
    def q(self, name: str) -> str:
        return self.sa_dialect.identifier_preparer.quote(name)

    def compile(self, ddl) -> str:
        return runnable(str(ddl.compile(dialect=self.sa_dialect)).strip())

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
        text = self.sa_dialect.ddl_compiler(self.sa_dialect, None).get_column_default_string(col)
        return runnable(text) if text is not None else None

    def create_table(self, name: str, foreign_keys=None) -> list[str]:
        """CREATE TABLE with `foreign_keys` inline (None: all but `use_alter` ones), its indexes and comment."""
        t = self.sa_table(name)
        # create_all (the models' normalization) marks a cycle's keys "added by ALTER" on the models
        # themselves; which keys go inline is decided here, whatever ran before.
        rules = {fkc: fkc._create_rule for fkc in foreign_keys or ()}
        try:
            for fkc in rules:
                fkc._create_rule = None
            create = self.compile(CreateTable(t, include_foreign_key_constraints=foreign_keys))
        finally:
            for fkc, rule in rules.items():
                fkc._create_rule = rule
        # An index declared twice with one name and one definition is created once, as the normalization
        # does (dialects/ddl.py: Prefect 3's `artifact.key`).
        indexes = list(dict.fromkeys(self.compile(CreateIndex(i)) for i in sorted(t.indexes, key=lambda i: i.name or "")
                                     if ddl_applies(i, self.sa_dialect)))
        out = [*self.sequences(name, [c.name for c in t.columns]), create, *indexes]
        if not self.sa_dialect.inline_comments:  # what create_all adds after CREATE TABLE
            out += [self.compile(SetTableComment(t))] if t.comment else []
            out += [self.compile(SetColumnComment(c)) for c in t.columns if c.comment]
        return out

    def sequences(self, table: str, columns: list[str]) -> list[str]:
        """CREATE SEQUENCE IF NOT EXISTS for the `Sequence`s these columns of the models take values from
        (what `create_all` makes before the table); a sequence already there is kept as it is."""
        if not self.sa_dialect.supports_sequences:
            return []
        out = []
        for name in columns:
            seq = self.sa_column(table, name).default
            if isinstance(seq, Sequence) and not seq.optional:
                out.append(self.compile(CreateSequence(seq, if_not_exists=True)))
        return out

    def create_index(self, table: str, name: str) -> str:
        ix = sa_index(self.metadata, table, name)
        if ix is None:
            raise PlanningError(f"index {name} on {table} is not declared in the models (implicit indexes cannot be re-created)")
        return self.compile(CreateIndex(ix))

    def emit(self, description: str, statements, reverse=None, table: str | None = None, *, change: ch.Change | None = None,
             provides=(), requires=(), releases=(), removes=(), **kw) -> None:
        """Add a step; its resources are the change's (`change_resources`) plus those given."""
        if not statements:
            return
        if change is not None and self.fills:
            statements = with_fills(self, change, description, list(statements))
            if len(statements) > 1 and any(x.startswith("UPDATE ") for x in statements):
                kw["rewrites_table"] = kw.get("rewrites_table") or table
        res = self.change_resources(change) if change is not None else {}
        self.steps.append(Step(description, tuple(statements), tuple(reverse) if reverse is not None else None, table,
                               provides=frozenset(res.get("provides", set()) | set(provides)),
                               requires=frozenset(res.get("requires", set()) | set(requires)),
                               releases=frozenset(res.get("releases", set()) | set(releases)),
                               removes=frozenset(res.get("removes", set()) | set(removes)), **kw))

    def not_null_after_fill(self, table: str, column: str, spec: str) -> str:
        """The statement that makes a column added nullable and filled NOT NULL (`spec`: its full definition)."""
        return f"ALTER TABLE {self.q(table)} ALTER COLUMN {self.q(column)} SET NOT NULL"

    def using_conversion(self, table: str, column: str, statements: list[str], expression: str) -> list[str]:
        """A type change's statements converting with `expression` (--using); here an UPDATE first."""
        return [f"UPDATE {self.q(table)} SET {self.q(column)} = ({expression})", *statements]

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
        """Steps for objects tables need (PostgreSQL: enum types); they provide ("type", name)."""

    def column_requires(self, table: str, column: str) -> set[tuple]:
        """Objects a column of the models needs before it can be created (PostgreSQL: its enum type)."""
        return set()

    def extra_steps(self, diff: Diff) -> None:
        """Steps the engine needs beyond the changes themselves (MariaDB: foreign keys dropped and
        added again around a change of the columns they join)."""

    def finish(self, steps: list[Step]) -> list[Step]:
        """The ordered steps as they will run (MariaDB: one ALTER TABLE per table)."""
        return steps

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
                  c.table, change=c, builds_index_on=c.table)

    def table_comment(self, c: ch.AlterTableComment) -> list[str]:
        raise NotImplementedError

    def table_options(self, c: ch.AlterTableOptions) -> None:
        raise PlanningError(f"cannot plan on {self.dialect_name}: {c.detail}")

    def plan_extras(self) -> dict:
        return {}

    # -- main ----------------------------------------------------------------------------
    def plan(self, diff: Diff) -> Plan:
        unsupported = [c for c in diff.changes if not isinstance(c, _HANDLED)]
        if unsupported:
            raise PlanningError("cannot plan on " + self.dialect_name + ": " + "; ".join(c.detail for c in unsupported[:5]))
        self.diff = diff
        cs = diff.changes
        N = diff.names
        gone_or_new = {N.table(c.table) for c in cs if isinstance(c, (ch.AddTable, ch.DropTable))}
        kept = [c for c in cs if N.table(c.table) not in gone_or_new]

        for c in cs:
            if isinstance(c, ch.RenameTable):
                self.emit(c.detail, self.rename_table(c), [f"ALTER TABLE {self.q(c.table)} RENAME TO {self.q(c.old_name)}"], c.table,
                          change=c)
        for c in cs:
            if isinstance(c, ch.RenameColumn):
                self.emit(c.detail, self.rename_column(c), None, c.table, change=c)

        def drop(c, kind: str, item) -> None:
            name = self.constraint_name(c.table, kind, item)
            if name is None:
                raise PlanningError(f"{c.detail}: cannot find the constraint's name in the database")
            self.emit(c.detail if kind != "p" else f"drop primary key of {c.table}", self.drop_constraint(c.table, name, kind), None,
                      c.table, change=c if kind != "p" else None,
                      removes={self.r_key(c.table, [self.tcol(c.table, x) for x in item.columns])} if kind == "p" else (),
                      releases={self.r_col(c.table, self.tcol(c.table, x)) for x in item.columns} if kind == "p" else ())

        for c in cs:  # from every table, also those about to be dropped
            if isinstance(c, ch.DropForeignKey):
                drop(c, "f", c.fk)
        for c in kept:
            if isinstance(c, ch.DropIndex):
                self.emit(c.detail, self.drop_index(c), None, c.table, change=c)
            elif isinstance(c, ch.DropUniqueConstraint):
                drop(c, "u", c.constraint)
            elif isinstance(c, ch.DropCheckConstraint):
                drop(c, "c", c.constraint)
            elif isinstance(c, ch.AlterPrimaryKey) and c.old is not None:
                drop(c, "p", c.old)
        self.pre_tables(diff)
        by_table: dict[str, list[ch.Change]] = {}
        for c in kept:
            if isinstance(c, _COLUMN_KINDS):
                by_table.setdefault(c.table, []).append(c)
        for table, changes in by_table.items():
            self.column_changes(table, changes)
        self.extra_steps(diff)
        self._new_tables([c for c in cs if isinstance(c, ch.AddTable)])
        for c in kept:
            if isinstance(c, ch.AlterPrimaryKey) and c.new is not None:
                self.emit(c.detail, self.add_primary_key(c), None, c.table, builds_index_on=c.table,
                          provides={self.r_key(c.table, c.new.columns)}, requires={self.r_col(c.table, x) for x in c.new.columns})
        for c in kept:
            if isinstance(c, ch.AddUniqueConstraint):
                self.emit(c.detail, self.add_unique(c), None, c.table, change=c, builds_index_on=c.table)
            elif isinstance(c, ch.AddCheckConstraint):
                self.emit(c.detail, self.add_check(c), None, c.table, change=c)
            elif isinstance(c, ch.AddIndex):
                self.add_index(c)
        for c in kept:
            if isinstance(c, ch.AddForeignKey):
                self.emit(c.detail, self.add_foreign_key(c), None, c.table, change=c)
        for c in cs:
            if isinstance(c, ch.DropTable):
                self.emit(c.detail, self.drop_table(c), None, c.table, change=c)
        for c in kept:
            if isinstance(c, ch.AlterTableComment):
                self.emit(c.detail, self.table_comment(c), None, c.table, change=c)
            elif isinstance(c, ch.AlterTableOptions):
                self.table_options(c)
        steps = self.finish(order_steps(self.steps))
        extras = self.plan_extras()
        return Plan(dialect=self.dialect_name, steps=tuple(steps), notes=tuple(self.notes), **extras)

    def _new_tables(self, adds: list[ch.AddTable]) -> None:
        """CREATE TABLE for each new table with the foreign keys that can go inline; those that close a
        cycle between new tables (or are declared `use_alter=True`) follow as ALTER TABLE once every
        table exists, which is what `create_all` does too."""
        names = {c.table.lower() for c in adds}
        edges = {c.table.lower(): {fk.ref_table.lower() for fk in c.definition.foreign_keys
                                  if fk.ref_table.lower() in names and fk.ref_table.lower() != c.table.lower()} for c in adds}
        cyclic = {n for comp in strongly_connected(sorted(names), edges) if len(comp) > 1 for n in comp}
        later: list[tuple[ch.AddTable, object]] = []
        for c in adds:
            t = self.sa_table(c.table)
            inline: list = []
            requires: set[tuple] = set()
            for fkc in sorted(t.foreign_key_constraints, key=lambda f: f.name or ""):
                ref = fkc.referred_table.name
                if fkc.use_alter or (c.table.lower() in cyclic and ref.lower() in cyclic and ref.lower() != c.table.lower()):
                    later.append((c, fkc))
                    continue
                inline.append(fkc)
                refcols = [e.column.name for e in fkc.elements]
                if ref.lower() != c.table.lower():
                    requires |= {self.r_table(ref), self.r_key(ref, refcols), *(self.r_col(ref, x) for x in refcols)}
            for col in t.columns:
                requires |= self.column_requires(c.table, col.name)
            d = c.definition
            keys = ([d.primary_key.columns] if d.primary_key else []) + [u.columns for u in d.unique_constraints] + \
                [i.columns for i in d.indexes if i.unique and None not in i.columns]
            self.emit(c.detail, self.create_table(c.table, inline), [f"DROP TABLE {self.q(c.table)}"], c.table,
                      provides={self.r_table(c.table), *(self.r_col(c.table, x.name) for x in d.columns),
                                *(self.r_key(c.table, k) for k in keys)}, requires=requires)
        for c, fkc in later:
            fk = next((f for f in c.definition.foreign_keys
                       if [x.lower() for x in f.columns] == [e.parent.name.lower() for e in fkc.elements]
                       and f.ref_table.lower() == fkc.referred_table.name.lower()), None)
            if fk is None:
                raise PlanningError(f"internal planning error: foreign key of new table {c.table} on "
                                    f"({', '.join(e.parent.name for e in fkc.elements)}) not found in the models' snapshot")
            self.emit(f"add foreign key of new table {c.table} -> {fk.ref_table} (after both tables exist)",
                      [self.compile(AddConstraint(fkc))], None, c.table, change=ch.AddForeignKey(c.table, fk))

