"""PostgreSQL DDL: the whole plan runs in one transaction (DDL is transactional), using the
cheaper forms where they exist and saying in the notes what still rewrites or locks a table.

- SET NOT NULL: `CHECK (c IS NOT NULL) NOT VALID`, `VALIDATE`, then `SET NOT NULL` (PostgreSQL 12+
  skips its own scan when a valid CHECK proves it), then the helper CHECK is dropped.
- CHECK and FOREIGN KEY: `ADD .. NOT VALID` then `VALIDATE CONSTRAINT`.
- Native enums: new values with `ALTER TYPE .. ADD VALUE` (positioned), new types with CREATE TYPE.
- Opt-in (`concurrent_indexes`): new plain indexes on existing tables as `CREATE INDEX CONCURRENTLY`
  after the transaction commits (PostgreSQL refuses it inside one).
"""

from __future__ import annotations

import re

from sqlalchemy.schema import CreateSequence, SetColumnComment

from ... import changes as ch
from ...diff import Diff
from ...snapshot import parse_enum
from ..server.connection import runnable
from ..server.planner import PlanningError, ServerPlanner
from .catalog import SERIAL, check_expr
from .numbering import MARKERS, switched, widened

_COLLATE = re.compile(r' COLLATE (?:"(?:[^"]|"")*"|\S+)$')
_VOLATILE_OK = re.compile(r"^(CURRENT_TIMESTAMP|CURRENT_DATE|CURRENT_TIME|'[^']*'|-?[0-9.]+|true|false|NULL)$", re.I)
# Type changes PostgreSQL does without rewriting the table (binary coercible or wider limit).
_CHEAP_TARGETS = ("TEXT",)


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _no_rewrite(old: str, new: str) -> bool:
    if new in _CHEAP_TARGETS and old.startswith(("VARCHAR", "TEXT")):
        return True
    o, n = re.match(r"^(VARCHAR|NUMERIC)\((\d+)", old), re.match(r"^(VARCHAR|NUMERIC)\((\d+)", new)
    return bool(o and n and o[1] == n[1] == "VARCHAR" and int(n[2]) >= int(o[2]))


class PostgresPlanner(ServerPlanner):
    dialect_name = "postgresql"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.postamble: list[str] = []
        self.live_enums = {**self._enums(self.live), **self.live.enums}  # also types no column uses
        self.swapped: dict[str, str] = {}
        self._taken: set[str] | None = None  # constraint names of the schema, asked for once  # enum types rebuilt by this plan -> the name the old one is set aside under

    @staticmethod
    def _enums(snapshot) -> dict[str, tuple[str, ...]]:
        out = {}
        for t in snapshot.tables.values():
            for c in t.columns:
                parsed = parse_enum(c.type)
                if parsed:
                    out[parsed[0]] = parsed[1]
        return out

    # -- hooks ---------------------------------------------------------------------------
    def drop_index(self, c: ch.DropIndex) -> list[str]:
        return [f"DROP INDEX {self.q(c.index.name)}"]

    def drop_constraint(self, table: str, name: str, kind: str) -> list[str]:
        return [f"ALTER TABLE {self.q(table)} DROP CONSTRAINT {self.q(name)}"]

    def find_constraint_name(self, table: str, kind: str, item) -> str | None:
        rows = self.conn.execute(
            "SELECT con.conname, pg_get_constraintdef(con.oid), ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i) "
            "JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) "
            "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relname = %s AND con.contype = %s", (table, kind)).fetchall()
        for name, definition, cols in rows:
            if kind == "c":
                if check_expr(definition) == item.expression:
                    return name
            elif kind == "p" or tuple(cols) == tuple(item.columns):
                return name
        return None

    def pre_tables(self, diff: Diff) -> None:
        """CREATE TYPE for enums the live schema lacks. A grown enum gets its values with `ALTER TYPE ..
        ADD VALUE` in place, unless the plan uses a new value (a default, a CHECK, an index predicate):
        PostgreSQL refuses a value added in the same transaction ("unsafe use of new value", docs of
        ALTER TYPE), so then, as for removed or reordered values, the type is rebuilt and swapped
        inside the transaction: renamed aside, created anew, every column converted, the old one dropped."""
        for c in diff.changes:
            if isinstance(c, ch.AddSequence) and c.table in self.metadata._sequences:
                self.emit(c.detail, [self.compile(CreateSequence(self.metadata._sequences[c.table], if_not_exists=True))],
                          [f"DROP SEQUENCE {self.q(c.table)}"], change=c, provides={("sequence", c.table)})
        wanted = {**self._enums(self.target), **self.target.enums}  # also types the models declare for no column yet
        for name, values in wanted.items():
            old = self.live_enums.get(name)
            if old is None:
                self.emit(f"create enum type {name}", [f"CREATE TYPE {self.q(name)} AS ENUM ({', '.join(_lit(v) for v in values)})"],
                          [f"DROP TYPE {self.q(name)}"], provides={("type", name.lower())})
            elif old != values:
                added = [v for v in values if v not in old]
                if [v for v in values if v in old] == list(old) and not self._uses(diff, added):
                    stmts = []
                    for i, v in enumerate(values):
                        if v in old:
                            continue
                        after = next((values[j] for j in range(i - 1, -1, -1) if values[j] in old or values[j] in values[:i]), None)
                        pos = f" AFTER {_lit(after)}" if after is not None else f" BEFORE {_lit(old[0])}"
                        stmts.append(f"ALTER TYPE {self.q(name)} ADD VALUE {_lit(v)}{pos}")
                    self.emit(f"add values to enum type {name}", stmts, None, provides={("type", name.lower())})
                    continue
                users = [what for what, ref, _col in self.live.outside if ref.lower() == name.lower()]
                if users:
                    raise PlanningError(f"enum type {name} must be rebuilt ({list(old)} -> {list(values)}), but "
                                        + "; ".join(users) + " uses it, which the tool does not keep: change or drop that first")
                self.swapped[name.lower()] = f"{name}__old"[:63]
                self.notes.append(f"enum type {name} is rebuilt and swapped ({list(old)} -> {list(values)}): every column of that "
                                  "type is converted, which rewrites its table under ACCESS EXCLUSIVE")
                self.emit(f"rebuild enum type {name} with values {', '.join(values)}",
                          [f"ALTER TYPE {self.q(name)} RENAME TO {self.q(self.swapped[name.lower()])}",
                           f"CREATE TYPE {self.q(name)} AS ENUM ({', '.join(_lit(v) for v in values)})"], None,
                          provides={("type", name.lower())})
                users = {("column", t.name.lower(), c.name.lower()) for t in self.target.tables.values() for c in t.columns
                         if (parse_enum(c.type) or ("",))[0].lower() == name.lower()
                         and self.live.table(diff.live_table(t.name)) is not None}
                self.emit(f"drop the old enum type {name}", [f"DROP TYPE {self.q(self.swapped[name.lower()])}"], None,
                          requires=users, removes={("old type", name.lower())})

    @staticmethod
    def _uses(diff: Diff, values: list[str]) -> bool:
        """Does any change use one of `values` (a default, a CHECK, an index or its predicate)?"""
        texts: list[str] = []
        for c in diff.changes:
            if isinstance(c, (ch.AddColumn,)):
                texts.append(c.column.default or "")
            elif isinstance(c, ch.AlterColumnDefault):
                texts.append(c.new.default or "")
            elif isinstance(c, ch.AddCheckConstraint):
                texts.append(c.constraint.expression)
            elif isinstance(c, ch.AddIndex):
                texts += [c.index.definition, c.index.where or ""]
            elif isinstance(c, ch.AddTable):
                t = c.definition
                texts += [col.default or "" for col in t.columns] + [k.expression for k in t.check_constraints]
                texts += [i.definition for i in t.indexes]
        return any(_lit(v) in text for v in values for text in texts)

    def column_requires(self, table: str, column: str) -> set[tuple]:
        t = self.target.table(table)
        c = t.column(column) if t else None
        enum = parse_enum(c.type) if c else None
        return {("type", enum[0].lower())} if enum else set()

    def change_resources(self, c: ch.Change) -> dict:
        """Also: a column leaving an enum type, or dropped with its table, releases that type (the type
        is dropped after it)."""
        res = super().change_resources(c)
        types: list[str] = []
        if isinstance(c, ch.AlterColumnType):
            types = [parse_enum(c.old.type)]
        elif isinstance(c, ch.DropColumn):
            types = [parse_enum(c.column.type)]
        elif isinstance(c, ch.DropTable):
            types = [parse_enum(col.type) for col in c.definition.columns]
        released = {(kind, e[0].lower()) for e in types if e for kind in ("type", "old type")}
        if released:
            res = {**res, "releases": set(res.get("releases", set())) | released}
        return res

    def extra_steps(self, diff: Diff) -> None:
        """DROP TYPE for enum types the models' columns used and use no more (`DropEnumType`); a type
        that something the tool does not keep still uses is left, and said so."""
        for c in diff.changes:
            if isinstance(c, ch.DropEnumType):
                self.emit(c.detail, [f"DROP TYPE {self.q(c.table)}"], None, change=c, removes={("type", c.table.lower())})
        self._keys_replaced(diff)
        wanted = {n.lower() for n in {**self._enums(self.target), **self.target.enums}}
        for name in self._enums(self.live):
            users = [what for what, ref, _col in self.live.outside if ref.lower() == name.lower()]
            if name.lower() not in wanted and users:
                self.notes.append(f"enum type {name} is no longer used by the models but is kept: {'; '.join(users)} uses it")

    def _keys_replaced(self, diff: Diff) -> None:
        """A foreign key the models keep whose referenced primary key or unique constraint the plan drops
        (a primary key moved to another column, the old one left unique): PostgreSQL ties the foreign key
        to that index ("cannot drop constraint .. because other objects depend on it"), so the foreign
        key is dropped first and added again once the new key exists."""
        gone: set[tuple] = set()
        for c in diff.changes:
            if isinstance(c, ch.AlterPrimaryKey) and c.old is not None:
                gone.add(self.r_key(c.table, [self.tcol(c.table, x) for x in c.old.columns]))
            elif isinstance(c, ch.DropUniqueConstraint):
                gone.add(self.r_key(c.table, [self.tcol(c.table, x) for x in c.constraint.columns]))
            elif isinstance(c, ch.DropIndex) and c.index.unique and None not in c.index.columns:
                gone.add(self.r_key(c.table, [self.tcol(c.table, x) for x in c.index.columns]))
        skip = {(c.table.lower(), tuple(x.lower() for x in c.fk.columns)) for c in diff.changes if isinstance(c, ch.DropForeignKey)}
        skip |= {(c.table.lower(), None) for c in diff.changes if isinstance(c, ch.DropTable)}
        for lt in self.live.tables.values():
            child = self.tname(lt.name)
            target = self.target.table(child)
            if target is None or (child.lower(), None) in skip:
                continue
            for fk in lt.foreign_keys:
                parent = self.tname(fk.ref_table)
                cols = tuple(self.tcol(child, x).lower() for x in fk.columns)
                if self.r_key(parent, [self.tcol(parent, x) for x in fk.ref_columns]) not in gone or (child.lower(), cols) in skip:
                    continue
                again = next((f for f in target.foreign_keys if tuple(x.lower() for x in f.columns) == cols), None)
                if again is None:
                    continue
                name = self.constraint_name(child, "f", fk)
                self.emit(f"drop foreign key {child}({', '.join(cols)}) while the key it references is replaced",
                          self.drop_constraint(child, name, "f"), None, child, change=ch.DropForeignKey(child, fk))
                self.emit(f"add foreign key {child}({', '.join(cols)}) -> {again.ref_table} again",
                          self.add_foreign_key(ch.AddForeignKey(child, again)), None, child, change=ch.AddForeignKey(child, again))

    def column_changes(self, table: str, changes: list[ch.Change]) -> None:
        q, t = self.q, self.q(table)
        for c in changes:
            if isinstance(c, ch.AlterColumnGenerated):
                self.generated(table, c)
        changes = [c for c in changes if not isinstance(c, ch.AlterColumnGenerated)]
        for c in changes:
            if isinstance(c, ch.AddColumn):
                spec = self.column_spec(table, c.column.name)
                d = c.column.default
                if d is not None and d not in MARKERS and not _VOLATILE_OK.match(d):
                    self.notes.append(f"adding {table}.{c.column.name} with default {d}: a volatile default rewrites {table} "
                                      "under ACCESS EXCLUSIVE (constant and now() defaults do not)")
                if d in MARKERS:
                    self.notes.append(f"adding {table}.{c.column.name} ({d}) fills every row: rewrites {table} under ACCESS EXCLUSIVE")
                comment = [self.compile(SetColumnComment(self.sa_column(table, c.column.name)))] if c.column.comment else []
                self.emit(c.detail, [*self.sequences(table, [c.column.name]), f"ALTER TABLE {t} ADD COLUMN {spec}", *comment],
                          [f"ALTER TABLE {t} DROP COLUMN {q(c.column.name)}"],
                          table, change=c, requires=self.column_requires(table, c.column.name),
                          rewrites_table=table if d in MARKERS else None)
            elif isinstance(c, ch.DropColumn):
                self.emit(c.detail, [f"ALTER TABLE {t} DROP COLUMN {q(c.column.name)}"], None, table, change=c)
        # Defaults come off before a type change (the old one may not cast: text to an enum, text to a
        # number) and go on after it. A change of numbering (SERIAL, IDENTITY) is planned on its own.
        defaults = {c.column.lower(): c for c in changes if isinstance(c, ch.AlterColumnDefault)}
        for c in changes:
            if (isinstance(c, ch.AlterColumnType) and c.column.lower() not in defaults and c.old.default is not None
                    and c.old.default not in MARKERS):
                defaults[c.column.lower()] = ch.AlterColumnDefault(table, c.column, c.old, c.new)
        numbering = {k: c for k, c in defaults.items() if c.old.default in MARKERS or c.new.default in MARKERS}
        defaults = {k: c for k, c in defaults.items() if k not in numbering}
        for key, c in defaults.items():
            if c.old.default is not None:
                self.emit(f"drop default of {table}.{c.column}", [f"ALTER TABLE {t} ALTER COLUMN {q(c.column)} DROP DEFAULT"], None, table,
                          change=c)
        retyped: set[str] = set()
        for c in changes:
            if isinstance(c, (ch.AlterColumnType, ch.AlterColumnCollation)) and c.column.lower() not in retyped:
                retyped.add(c.column.lower())
                self.retype(table, c, [x for x in changes if isinstance(x, (ch.AlterColumnType, ch.AlterColumnCollation))
                                       and x.column.lower() == c.column.lower()])
        for c in changes:
            if isinstance(c, ch.AlterColumnNullable):
                col = q(c.column)
                if c.new.nullable:
                    self.emit(c.detail, [f"ALTER TABLE {t} ALTER COLUMN {col} DROP NOT NULL"],
                              [f"ALTER TABLE {t} ALTER COLUMN {col} SET NOT NULL"], table, change=c)
                    continue
                helper = q(f"_mig_nn_{c.column}"[:63])
                self.notes.append(f"SET NOT NULL on {table}.{c.column} is planned as CHECK NOT VALID + VALIDATE first, so the final "
                                  f"ALTER does not scan {table} again under ACCESS EXCLUSIVE")
                self.emit(c.detail, [
                    f"ALTER TABLE {t} ADD CONSTRAINT {helper} CHECK ({col} IS NOT NULL) NOT VALID",
                    f"ALTER TABLE {t} VALIDATE CONSTRAINT {helper}",
                    f"ALTER TABLE {t} ALTER COLUMN {col} SET NOT NULL",
                    f"ALTER TABLE {t} DROP CONSTRAINT {helper}",
                ], [f"ALTER TABLE {t} ALTER COLUMN {col} DROP NOT NULL"], table, change=c)
        for c in changes:
            if isinstance(c, ch.AlterColumnComment):
                self.emit(c.detail, [f"COMMENT ON COLUMN {t}.{q(c.column)} IS {_lit(c.new.comment) if c.new.comment else 'NULL'}"],
                          [f"COMMENT ON COLUMN {t}.{q(c.column)} IS {_lit(c.old.comment) if c.old.comment else 'NULL'}"], table,
                          change=c)
        for key, c in numbering.items():
            self.notes.append(f"{table}.{c.column}: values kept; " + (
                "the next number follows the last one given, or the largest value" if c.new.default in MARKERS
                else "new rows are no longer numbered by the database"))
            self.emit(c.detail, switched(q, self.conn, table, c.column, c.old.default, c.new.default, self.type_sql(table, c.column),
                                         self.default_sql(table, c.column) if c.new.default not in MARKERS else None),
                      None, table, change=c)
        for key, c in defaults.items():
            if c.new.default is not None:
                self.emit(f"set default of {table}.{c.column}",
                          [f"ALTER TABLE {t} ALTER COLUMN {q(c.column)} SET DEFAULT {self.default_sql(table, c.column)}"], None, table,
                          change=c)

    def retype(self, table: str, c: ch.Change, same: list[ch.Change]) -> None:
        """One `ALTER COLUMN .. TYPE .. COLLATE ..` for a column's type and collation changes. `USING`
        only where values convert (PostgreSQL refuses it on a generated column, whose values it
        computes again); a collation change alone keeps the values and rebuilds the column's indexes."""
        q, t, col = self.q, self.q(table), self.q(c.column)
        new_type = _COLLATE.sub("", self.type_sql(table, c.column))  # SQLAlchemy renders String(collation=..) with it
        old_enum, new_enum = parse_enum(c.old.type), parse_enum(c.new.type)
        if old_enum and new_enum and old_enum[0] == new_enum[0] and new_enum[0].lower() not in self.swapped:
            return  # same enum type, values added: done by ALTER TYPE .. ADD VALUE
        typed = c.old.type != c.new.type or (new_enum is not None and new_enum[0].lower() in self.swapped)
        using = ""
        if typed and c.new.generated is None:
            using = f" USING {col}::text::{new_type}" if (old_enum or new_enum) else f" USING {col}::{new_type}"
        collate = f" COLLATE {q(c.new.collation)}" if c.new.collation else ""
        rewrite = typed and not _no_rewrite(c.old.type, c.new.type)
        if rewrite:
            self.notes.append(f"changing {table}.{c.column} from {c.old.type} to {c.new.type} rewrites {table} "
                              "and its indexes under ACCESS EXCLUSIVE (reads and writes wait)")
        elif c.old.collation != c.new.collation:
            self.notes.append(f"changing the collation of {table}.{c.column} rebuilds the indexes on it under ACCESS EXCLUSIVE "
                              "(reads and writes wait)")
        grow = widened(q, self.conn, table, c.column, new_type) if c.old.default == c.new.default == SERIAL else []
        self.emit("; ".join(x.detail for x in same), [f"ALTER TABLE {t} ALTER COLUMN {col} TYPE {new_type}{collate}{using}", *grow],
                  None, table, change=c, requires=self.column_requires(table, c.column),
                  rewrites_table=table if rewrite or c.old.collation != c.new.collation else None)

    def generated(self, table: str, c: ch.AlterColumnGenerated) -> None:
        """A generated column's expression changes: `SET EXPRESSION` on PostgreSQL 17+, else the column
        dropped and added again (PostgreSQL computes every row's value either way), with the indexes and
        CHECKs on it made again; a generated column made plain keeps its values (`DROP EXPRESSION`)."""
        t, col = self.q(table), self.q(c.column)
        self.notes.append(f"changing how {table}.{c.column} is generated rewrites {table} under ACCESS EXCLUSIVE")
        if c.new.generated is None:
            self.emit(c.detail, [f"ALTER TABLE {t} ALTER COLUMN {col} DROP EXPRESSION"], None, table, change=c)
            return
        if c.old.generated is not None and self.server_version() >= 170000:
            expr = self.sa_column(table, c.column).computed.sqltext
            sql = runnable(self.sa_dialect.ddl_compiler(self.sa_dialect, None).sql_compiler.process(expr, include_table=False,
                                                                                                  literal_binds=True))
            self.emit(c.detail, [f"ALTER TABLE {t} ALTER COLUMN {col} SET EXPRESSION AS ({sql})"], None, table, change=c,
                      rewrites_table=table)
            return
        target = self.target.table(table)
        name = c.column.lower()
        again = [self.create_index(table, i.name) for i in target.indexes
                 if name in {(x or "").lower() for x in i.columns} or name in i.definition.lower().split(" ")]
        again += [s for k in target.check_constraints if name in self._words(table, k.expression, live=False)
                  for s in self.add_check(ch.AddCheckConstraint(table, k))]
        self.emit(c.detail, [f"ALTER TABLE {t} DROP COLUMN {col}", f"ALTER TABLE {t} ADD COLUMN {self.column_spec(table, c.column)}",
                             *again], None, table, change=c, rewrites_table=table)

    def server_version(self) -> int:
        return int(self.conn.execute("SHOW server_version_num").scalar()) if self.conn is not None else 0

    def add_unique(self, c: ch.AddUniqueConstraint) -> list[str]:
        if self.settings.concurrent_indexes:
            name = self.q(c.constraint.name or f"{c.table}_{'_'.join(c.constraint.columns)}_key")
            cols = ", ".join(self.q(x) for x in c.constraint.columns)
            self.postamble += [f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON {self.q(c.table)} ({cols})",
                               f"ALTER TABLE {self.q(c.table)} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}"]
            self.notes.append(f"UNIQUE on {c.table} is built as CREATE UNIQUE INDEX CONCURRENTLY, then attached with ADD CONSTRAINT "
                              ".. USING INDEX (a brief lock), after the transaction commits (concurrent_indexes)")
            return []
        self.notes.append(f"adding UNIQUE on {c.table} builds an index while holding ACCESS EXCLUSIVE on {c.table} "
                          "(set concurrent_indexes to build it concurrently first)")
        return super().add_unique(c)

    def add_check(self, c: ch.AddCheckConstraint) -> list[str]:
        """From the models' CHECK as PostgreSQL deparsed it when the models were built (`k.sql`), so it is
        stored exactly as the target was, not from the normalized text (whose parentheses and casts
        PostgreSQL would store differently)."""
        k = c.constraint
        cols = sorted(self._words(c.table, k.expression, live=False))
        name = self.q(k.name or self.free_name(c.table, "_".join((c.table, *cols[:1], "check"))))
        body = k.sql or f"CHECK ({k.expression})"
        return [f"ALTER TABLE {self.q(c.table)} ADD CONSTRAINT {name} {body} NOT VALID",
                f"ALTER TABLE {self.q(c.table)} VALIDATE CONSTRAINT {name}"]

    def free_name(self, table: str, base: str) -> str:
        """A constraint name as PostgreSQL would choose it (`<base>`, then `<base>1`, ...): not taken by
        any constraint of the schema nor by an earlier step of this plan (docs, "CREATE TABLE",
        constraint names; ChooseConstraintName)."""
        if self._taken is None:
            self._taken = {r[0] for r in self.conn.execute(
                "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                "WHERE n.nspname = current_schema()").fetchall()} if self.conn is not None else set()
        base = base[:63]
        name, n = base, 0
        while name in self._taken:
            n += 1
            name = f"{base[:63 - len(str(n))]}{n}"
        self._taken.add(name)
        return name

    def add_foreign_key(self, c: ch.AddForeignKey) -> list[str]:
        fk = c.fk
        name = self.q(fk.name or self.free_name(c.table, f"{c.table}_{'_'.join(fk.columns)}_fkey"))
        self.notes.append(f"adding the foreign key on {c.table} locks {c.table} and {fk.ref_table} against writes "
                          "(SHARE ROW EXCLUSIVE) until commit; planned as NOT VALID + VALIDATE")
        return [f"ALTER TABLE {self.q(c.table)} ADD CONSTRAINT {name} {self.fk_clause(fk)} NOT VALID",
                f"ALTER TABLE {self.q(c.table)} VALIDATE CONSTRAINT {name}"]

    def add_index(self, c: ch.AddIndex) -> None:
        sql = self.create_index(c.table, c.index.name)
        if self.settings.concurrent_indexes and not c.index.unique:
            self.postamble.append(sql.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1))
            self.notes.append(f"index {c.index.name} is built with CREATE INDEX CONCURRENTLY after the transaction commits "
                              "(concurrent_indexes): writes continue, but it is not part of the all-or-nothing transaction")
            return
        self.notes.append(f"building index {c.index.name} blocks writes to {c.table} until commit "
                          "(set concurrent_indexes to build it with CREATE INDEX CONCURRENTLY instead)")
        super().add_index(c)

    def table_comment(self, c: ch.AlterTableComment) -> list[str]:
        return [f"COMMENT ON TABLE {self.q(c.table)} IS {_lit(c.new) if c.new else 'NULL'}"]

    def using_conversion(self, table: str, column: str, statements: list[str], expression: str) -> list[str]:
        """PostgreSQL converts in the ALTER itself: `ALTER COLUMN .. TYPE .. USING (expression)` (docs, ALTER TABLE)."""
        head = f"ALTER TABLE {self.q(table)} ALTER COLUMN {self.q(column)} TYPE "
        out = []
        for s in statements:
            if s.startswith(head):
                s = re.sub(r" USING .*$", "", s, flags=re.S) + f" USING ({expression})"
            out.append(s)
        return out

    def plan_extras(self) -> dict:
        # Concrete values, so the printed plan runs as printed; migrate sets statement_timeout again
        # before each statement, to what is left of its time limit.
        return {"postamble": tuple(self.postamble),
                "begin": ("BEGIN", f"SET LOCAL lock_timeout = {int(self.settings.ddl_lock_timeout_ms)}",
                          f"SET LOCAL statement_timeout = {int(self.settings.max_execution_time_ms)}")}
