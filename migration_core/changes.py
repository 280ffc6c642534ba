"""One small immutable class per kind of schema change (cf. Alembic ops, Atlas schema.Change).

`table` is always the target-side table name; renames are applied first by the planner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .snapshot import CheckConstraint, Column, ForeignKey, Index, PrimaryKey, Table, UniqueConstraint


def _cols(cols) -> str:
    return ", ".join(str(c) if c is not None else "<expr>" for c in cols)


@dataclass(frozen=True)
class Change:
    kind: ClassVar[str] = "change"
    table: str

    @property
    def detail(self) -> str:  # pragma: no cover - every subclass overrides
        return self.kind


@dataclass(frozen=True)
class AddTable(Change):
    kind: ClassVar[str] = "add_table"
    definition: Table

    @property
    def detail(self) -> str:
        return f"create table {self.table} ({len(self.definition.columns)} columns)"


@dataclass(frozen=True)
class DropTable(Change):
    kind: ClassVar[str] = "drop_table"
    definition: Table

    @property
    def detail(self) -> str:
        return f"drop table {self.table}"


@dataclass(frozen=True)
class RenameTable(Change):
    kind: ClassVar[str] = "rename_table"
    old_name: str

    @property
    def detail(self) -> str:
        return f"rename table {self.old_name} to {self.table}"


@dataclass(frozen=True)
class AddColumn(Change):
    kind: ClassVar[str] = "add_column"
    column: Column

    @property
    def detail(self) -> str:
        c = self.column
        extra = (" NOT NULL" if not c.nullable else "") + (f" DEFAULT {c.default}" if c.default is not None else "")
        return f"add column {self.table}.{c.name} {c.type}{extra}"


@dataclass(frozen=True)
class DropColumn(Change):
    kind: ClassVar[str] = "drop_column"
    column: Column

    @property
    def detail(self) -> str:
        return f"drop column {self.table}.{self.column.name}"


@dataclass(frozen=True)
class RenameColumn(Change):
    kind: ClassVar[str] = "rename_column"
    old_name: str
    new_name: str

    @property
    def detail(self) -> str:
        return f"rename column {self.table}.{self.old_name} to {self.new_name}"


@dataclass(frozen=True)
class _AlterColumn(Change):
    column: str
    old: Column
    new: Column


@dataclass(frozen=True)
class AlterColumnType(_AlterColumn):
    kind: ClassVar[str] = "alter_column_type"

    @property
    def detail(self) -> str:
        return f"change type of {self.table}.{self.column} from {self.old.type or '(none)'} to {self.new.type or '(none)'}"


@dataclass(frozen=True)
class AlterColumnNullable(_AlterColumn):
    kind: ClassVar[str] = "alter_column_nullable"

    @property
    def detail(self) -> str:
        return f"make {self.table}.{self.column} {'NULL' if self.new.nullable else 'NOT NULL'}"


@dataclass(frozen=True)
class AlterColumnDefault(_AlterColumn):
    kind: ClassVar[str] = "alter_column_default"

    @property
    def detail(self) -> str:
        o, n = self.old.default, self.new.default
        if {o, n} & NUMBERED:
            return f"change how {self.table}.{self.column} is numbered from {_numbering(o)} to {_numbering(n)}"
        return f"change default of {self.table}.{self.column} from {o if o is not None else 'no default'} to " \
               f"{n if n is not None else 'no default'}"


# The catalogs' markers for a column the server numbers itself (PostgreSQL SERIAL and IDENTITY, MariaDB AUTO_INCREMENT).
NUMBERED = frozenset({"serial", "identity always", "identity by default", "auto_increment"})


def _numbering(default: str | None) -> str:
    if default in NUMBERED:
        return default.upper()
    return "no numbering" + (f" (default {default})" if default is not None else "")


@dataclass(frozen=True)
class AlterColumnComment(_AlterColumn):
    kind: ClassVar[str] = "alter_column_comment"

    @property
    def detail(self) -> str:
        o, n = self.old.comment, self.new.comment
        return f"change comment of {self.table}.{self.column} from {repr(o) if o else 'none'} to {repr(n) if n else 'none'}"


@dataclass(frozen=True)
class AlterColumnCollation(_AlterColumn):
    kind: ClassVar[str] = "alter_column_collation"

    @property
    def detail(self) -> str:
        return (f"change collation of {self.table}.{self.column} from {self.old.collation or 'the default'} "
                f"to {self.new.collation or 'the default'}")


@dataclass(frozen=True)
class AlterColumnGenerated(_AlterColumn):
    kind: ClassVar[str] = "alter_column_generated"

    @property
    def detail(self) -> str:
        o, n = self.old.generated, self.new.generated
        if o is None:
            return f"make {self.table}.{self.column} a generated column ({n})"
        if n is None:
            return f"make {self.table}.{self.column} a plain column, values kept (was generated as {o})"
        return f"change generation expression of {self.table}.{self.column} from {o} to {n}"


@dataclass(frozen=True)
class AlterPrimaryKey(Change):
    kind: ClassVar[str] = "alter_primary_key"
    old: PrimaryKey | None
    new: PrimaryKey | None

    @property
    def detail(self) -> str:
        o = f"({_cols(self.old.columns)}){' AUTOINCREMENT' if self.old.autoincrement else ''}" if self.old else "none"
        n = f"({_cols(self.new.columns)}){' AUTOINCREMENT' if self.new.autoincrement else ''}" if self.new else "none"
        return f"change primary key of {self.table} from {o} to {n}"


@dataclass(frozen=True)
class AddForeignKey(Change):
    kind: ClassVar[str] = "add_foreign_key"
    fk: ForeignKey

    @property
    def detail(self) -> str:
        f = self.fk
        return f"add foreign key {f.name or ''} {self.table}({_cols(f.columns)}) -> {f.ref_table}({_cols(f.ref_columns)})".replace("  ", " ")


@dataclass(frozen=True)
class DropForeignKey(Change):
    kind: ClassVar[str] = "drop_foreign_key"
    fk: ForeignKey

    @property
    def detail(self) -> str:
        f = self.fk
        return f"drop foreign key {f.name or ''} {self.table}({_cols(f.columns)}) -> {f.ref_table}".replace("  ", " ")


@dataclass(frozen=True)
class AddUniqueConstraint(Change):
    kind: ClassVar[str] = "add_unique_constraint"
    constraint: UniqueConstraint

    @property
    def detail(self) -> str:
        return f"add unique constraint {self.constraint.name or ''} on {self.table}({_cols(self.constraint.columns)})".replace("  ", " ")


@dataclass(frozen=True)
class DropUniqueConstraint(Change):
    kind: ClassVar[str] = "drop_unique_constraint"
    constraint: UniqueConstraint

    @property
    def detail(self) -> str:
        return f"drop unique constraint {self.constraint.name or ''} on {self.table}({_cols(self.constraint.columns)})".replace("  ", " ")


@dataclass(frozen=True)
class AddCheckConstraint(Change):
    kind: ClassVar[str] = "add_check_constraint"
    constraint: CheckConstraint

    @property
    def detail(self) -> str:
        return f"add check constraint {self.constraint.name or ''} on {self.table}: {self.constraint.expression}".replace("  ", " ")


@dataclass(frozen=True)
class DropCheckConstraint(Change):
    kind: ClassVar[str] = "drop_check_constraint"
    constraint: CheckConstraint

    @property
    def detail(self) -> str:
        return f"drop check constraint {self.constraint.name or ''} on {self.table}: {self.constraint.expression}".replace("  ", " ")


@dataclass(frozen=True)
class AddIndex(Change):
    kind: ClassVar[str] = "add_index"
    index: Index

    @property
    def detail(self) -> str:
        return f"create {'unique ' if self.index.unique else ''}index {self.index.name} on {self.table}({_cols(self.index.columns)})"


@dataclass(frozen=True)
class DropIndex(Change):
    kind: ClassVar[str] = "drop_index"
    index: Index

    @property
    def detail(self) -> str:
        return f"drop index {self.index.name} on {self.table}"


@dataclass(frozen=True)
class AlterTableOptions(Change):
    kind: ClassVar[str] = "alter_table_options"
    old: tuple[str, ...]
    new: tuple[str, ...]

    @property
    def detail(self) -> str:
        return (f"change table options of {self.table} from {', '.join(self.old) or 'the defaults'} "
                f"to {', '.join(self.new) or 'the defaults'}")


@dataclass(frozen=True)
class AddSequence(Change):
    """A sequence the models declare (`Sequence(..)`) that the database lacks; `table` is its name.
    SQLAlchemy calls `nextval` on it for a column without a server default, so a missing one fails
    every insert. Sequences are never dropped by the tool: one may still count for someone else."""

    kind: ClassVar[str] = "add_sequence"

    @property
    def detail(self) -> str:
        return f"create sequence {self.table}"


@dataclass(frozen=True)
class AddEnumType(Change):
    """An enum type the models declare that the database lacks (PostgreSQL); `table` is the type's name."""

    kind: ClassVar[str] = "add_enum_type"
    values: tuple[str, ...]

    @property
    def detail(self) -> str:
        return f"create enum type {self.table} ({', '.join(self.values)})"


@dataclass(frozen=True)
class AlterEnumType(Change):
    kind: ClassVar[str] = "alter_enum_type"
    old: tuple[str, ...]
    new: tuple[str, ...]

    @property
    def detail(self) -> str:
        return f"change enum type {self.table} from ({', '.join(self.old)}) to ({', '.join(self.new)})"


@dataclass(frozen=True)
class DropEnumType(Change):
    """An enum type the models' columns used and no longer do, that nothing else uses."""

    kind: ClassVar[str] = "drop_enum_type"
    values: tuple[str, ...]

    @property
    def detail(self) -> str:
        return f"drop enum type {self.table}, which no column uses any more"


@dataclass(frozen=True)
class AlterTableComment(Change):
    kind: ClassVar[str] = "alter_table_comment"
    old: str | None
    new: str | None

    @property
    def detail(self) -> str:
        return f"change comment of table {self.table}"
