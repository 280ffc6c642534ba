"""SchemaSnapshot: a dialect-neutral, immutable picture of a schema, as read from a catalog.

Both the live database and the target (after its round trip through a scratch database)
become snapshots, so the diff compares like with like.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # normalized declared type, e.g. "VARCHAR(50)"
    nullable: bool
    default: str | None  # normalized SQL expression text
    collation: str | None = None
    generated: str | None = None  # normalized generation expression
    definition: str = ""  # the column's DDL text as stored (used to re-create it); not compared
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class PrimaryKey:
    name: str | None
    columns: tuple[str, ...]
    autoincrement: bool = False


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str | None
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str | None = None  # normalized: None means NO ACTION
    on_update: str | None = None
    deferrable: str | None = None  # e.g. "DEFERRABLE INITIALLY DEFERRED"
    sql: str = ""  # the constraint as stored (servers: to copy the table for a proof); not compared

    def key(self) -> tuple:
        return (self.columns, self.ref_table.lower(), self.ref_columns, self.on_delete, self.on_update, self.deferrable)


@dataclass(frozen=True, slots=True)
class UniqueConstraint:
    name: str | None
    columns: tuple[str, ...]
    sql: str = ""  # the constraint as stored; not compared


@dataclass(frozen=True, slots=True)
class CheckConstraint:
    name: str | None
    expression: str  # normalized
    sql: str = ""  # the constraint as the database deparses it (PostgreSQL: re-added as such); not compared


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    columns: tuple[str | None, ...]  # None stands for an expression part
    unique: bool
    definition: str  # normalized CREATE INDEX text without the index name, used for comparison
    sql: str  # the statement as stored, used to re-create it
    where: str | None = None
    auto: bool = False  # named by the server, not the models (MariaDB: an unnamed key, a foreign key's own index): compared by definition


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: PrimaryKey | None
    foreign_keys: tuple[ForeignKey, ...] = ()
    unique_constraints: tuple[UniqueConstraint, ...] = ()
    check_constraints: tuple[CheckConstraint, ...] = ()
    indexes: tuple[Index, ...] = ()
    options: tuple[str, ...] = ()  # e.g. ("WITHOUT ROWID", "STRICT")
    comment: str | None = None
    sql: str = ""  # CREATE TABLE as stored (SQLite; PostgreSQL: without its foreign keys and indexes); not compared

    def column(self, name: str) -> Column | None:
        lname = name.lower()
        return next((c for c in self.columns if c.name.lower() == lname), None)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


Dependency = tuple[str, "str | None"]  # (relation, column); column None: the relation as a whole
KINDS = ("materialized view", "view", "trigger", "function", "procedure", "event")


def split_key(key: str) -> tuple[str, str]:
    """A kept object's key ("view user names", "materialized view m", "function f(integer)") as (kind,
    name): the kind is one of KINDS, the name whatever follows it, spaces included."""
    for kind in KINDS:
        if key.startswith(kind + " "):
            return kind, key[len(kind) + 1:]
    raise ValueError(f"not a kept object's key: {key!r}")


@dataclass(frozen=True, slots=True)
class View:
    """A view the tool keeps but the models do not own: never a difference, never dropped for good.

    `sql` is the definition as the catalog gives it (SQLite: the CREATE VIEW text; PostgreSQL:
    `pg_get_viewdef`; MariaDB: the defining query without the database's own qualifier), `create`
    the statements that make it again exactly (with its options, indexes, comment and grants)."""

    name: str
    sql: str
    materialized: bool = False
    depends: tuple[Dependency, ...] = ()
    create: tuple[str, ...] = ()
    populated: bool = True


@dataclass(frozen=True, slots=True)
class Trigger:
    """A trigger the tool keeps; `function` is the PostgreSQL function it calls."""

    name: str
    table: str
    sql: str
    function: str | None = None
    depends: tuple[Dependency, ...] = ()
    create: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Routine:
    """A function or procedure the tool keeps (PostgreSQL: those that triggers call)."""

    name: str
    sql: str
    kind: str = "function"


@dataclass(frozen=True)
class Names:
    """How a database tells names apart. PostgreSQL: exactly ("Users" and users are two tables; docs,
    "Identifiers and Key Words"); SQLite: without regard to case; MariaDB/MySQL: column names without
    regard to case, table names per `lower_case_table_names` (0, the Linux default: exactly)."""

    tables_case_sensitive: bool = False
    columns_case_sensitive: bool = False

    def table(self, name: str) -> str:
        """The key that identifies table `name`."""
        return name if self.tables_case_sensitive else name.lower()

    def column(self, name: str) -> str:
        """The key that identifies column `name` within its table."""
        return name if self.columns_case_sensitive else name.lower()


@dataclass(frozen=True)
class SchemaSnapshot:
    dialect: str
    tables: dict[str, Table] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    routines: dict[str, Routine] = field(default_factory=dict)
    # Objects that depend on the schema but that the tool does not keep (PostgreSQL: a view in another
    # schema, a rule on a table, a row-level security policy, a function taking a view's row type or an
    # enum): (what, relation or type, column or None). A change under one is refused up front.
    outside: tuple[tuple[str, str, "str | None"], ...] = ()
    names: Names = field(default_factory=Names)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)  # PostgreSQL enum types of the schema: name -> values
    sequences: tuple[str, ...] = ()
    # Code that names tables only as text, checked, not kept: PostgreSQL functions and procedures no
    # trigger calls, MariaDB routines and events, views of other MariaDB databases: ("kind name", text).
    code: tuple[tuple[str, str], ...] = ()  # PostgreSQL sequences of the schema that no column owns (SERIAL/IDENTITY ones are markers)

    def kept_objects(self) -> dict[str, str]:
        """`kind name` -> definition of every object beside the tables: what a restore must give back."""
        out = {f"{'materialized view' if v.materialized else 'view'} {n}": v.sql for n, v in self.views.items()}
        out.update({f"trigger {n}": t.sql for n, t in self.triggers.items()})
        out.update({f"{r.kind} {n}": r.sql for n, r in self.routines.items()})
        return out

    def table(self, name: str) -> Table | None:
        found = self.tables.get(name)
        if found is not None or self.names.tables_case_sensitive:
            return found
        key = self.names.table(name)
        return next((t for n, t in self.tables.items() if self.names.table(n) == key), None)

    def column(self, table: Table, name: str) -> Column | None:
        """`table`'s column `name`, told apart as this database does."""
        key = self.names.column(name)
        return next((c for c in table.columns if self.names.column(c.name) == key), None)

    def fingerprint(self) -> str:
        """SHA-256 over the compared parts of the schema (DDL text and order excluded). Kept on the
        snapshot once computed (snapshots are not changed after they are made): plan ids and backups
        ask for it again for the same snapshot."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            cached = self._compute_fingerprint()
            object.__setattr__(self, "_fingerprint", cached)
        return cached

    def _compute_fingerprint(self) -> str:
        payload = []
        for name in sorted(self.tables):
            t = asdict(self.tables[name])
            t.pop("sql", None)
            for c in t["columns"]:
                c.pop("definition", None)
                if c.get("comment") is None:
                    c.pop("comment", None)  # fingerprints of schemas without column comments stay as they were
            t["columns"] = sorted(t["columns"], key=lambda c: c["name"])
            for key in ("foreign_keys", "unique_constraints", "check_constraints", "indexes"):
                for item in t[key]:
                    item.pop("sql", None)
                t[key] = sorted(t[key], key=lambda x: json.dumps(x, sort_keys=True, default=str))
            payload.append(t)
        if self.enums or self.sequences:
            payload.append({"enums": {k: list(v) for k, v in sorted(self.enums.items())}, "sequences": sorted(self.sequences)})
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# PostgreSQL enum columns' types read `ENUM name('a','b')`; the name may hold spaces or parentheses:
# the value list, quoted literals, ends the text.
_ENUM = re.compile(r"^ENUM (?P<name>.+?)\((?P<values>(?:'(?:[^']|'')*'(?:,'(?:[^']|'')*')*)?)\)$", re.S)


def parse_enum(type_: str) -> tuple[str, tuple[str, ...]] | None:
    """(type name, values) of a PostgreSQL enum column's type text, None for any other type."""
    m = _ENUM.match(type_)
    if not m:
        return None
    values = tuple(v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", m["values"]))
    return m["name"], values

