"""What each step of a server plan provides, requires, releases and removes (`ordering`'s resources):
tables, columns, keys, indexes and named constraints, by the models' names, lower-cased. A mixin of
`ServerPlanner`, which holds the diff and both snapshots it reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import changes as ch

if TYPE_CHECKING:
    from ...diff import Diff
    from ...snapshot import SchemaSnapshot


class StepResources:
    diff: Diff | None
    live: SchemaSnapshot
    target: SchemaSnapshot

    def tname(self, live_table: str) -> str:
        """The models' name of a live table (rename hints applied)."""
        return self.diff.table_renames.get(live_table, live_table) if self.diff else live_table

    def tcol(self, table: str, live_column: str) -> str:
        """The models' name of a live column of `table` (the models' table name)."""
        for (t, old), new in (self.diff.column_renames.items() if self.diff else ()):
            if t.lower() == table.lower() and old.lower() == live_column.lower():
                return new
        return live_column

    @staticmethod
    def r_table(t: str) -> tuple:
        return ("table", t.lower())

    @staticmethod
    def r_col(t: str, c: str) -> tuple:
        return ("column", t.lower(), c.lower())

    @staticmethod
    def r_key(t: str, cols) -> tuple:
        return ("key", t.lower(), tuple(c.lower() for c in cols))

    def _words(self, table: str, expression: str | None, live: bool) -> set[str]:
        """Columns of `table` named in an expression (CHECK text is space-separated normalized SQL)."""
        t = (self.live.table(self.diff.live_table(table)) if live else self.target.table(table))
        names = {c.name.lower() for c in t.columns} if t else set()
        words = {w.strip('"`()').lower() for w in (expression or "").replace("(", " ").replace(")", " ").split()}
        return {self.tcol(table, w).lower() if live else w for w in words & names}

    def change_resources(self, c: ch.Change) -> dict:
        """What a change's step provides, requires, releases and removes (see `ordering`)."""
        t = c.table
        col = self.r_col
        if isinstance(c, ch.RenameTable):
            return dict(provides={self.r_table(t)}, removes={self.r_table(c.old_name)})
        if isinstance(c, ch.RenameColumn):
            return dict(provides={col(t, c.new_name)}, removes={col(t, c.old_name)})
        if isinstance(c, ch.AddColumn):
            return dict(provides={col(t, c.column.name)})
        if isinstance(c, ch.DropColumn):
            return dict(removes={col(t, c.column.name)})
        if isinstance(c, ch._AlterColumn):
            return dict(provides={col(t, c.column)})
        named = {("constraint", t.lower(), item.name.lower())} if (item := getattr(c, "constraint", None) or getattr(c, "fk", None)) \
            is not None and getattr(item, "name", None) else set()
        if isinstance(c, (ch.AddUniqueConstraint, ch.AddCheckConstraint, ch.AddForeignKey)):
            res = self._added(c)
            res["provides"] = res.get("provides", set()) | named  # a constraint replaced under its own name: dropped first
            return res
        if isinstance(c, (ch.DropUniqueConstraint, ch.DropCheckConstraint, ch.DropForeignKey)):
            res = self._dropped(c)
            res["removes"] = res.get("removes", set()) | named
            return res
        return self._other(c)

    def _added(self, c: ch.Change) -> dict:
        t, col, key = c.table, self.r_col, self.r_key
        if isinstance(c, ch.AddForeignKey):
            fk = c.fk
            return dict(requires={*(col(t, x) for x in fk.columns), self.r_table(fk.ref_table), key(fk.ref_table, fk.ref_columns),
                                  *(col(fk.ref_table, x) for x in fk.ref_columns)})
        if isinstance(c, ch.AddUniqueConstraint):
            return dict(provides={key(t, c.constraint.columns)}, requires={col(t, x) for x in c.constraint.columns})
        return dict(requires={col(t, x) for x in self._words(t, c.constraint.expression, live=False)})

    def _dropped(self, c: ch.Change) -> dict:
        t, col, key = c.table, self.r_col, self.r_key
        if isinstance(c, ch.DropForeignKey):
            fk = c.fk
            ref = self.tname(fk.ref_table)
            return dict(releases={key(ref, [self.tcol(ref, x) for x in fk.ref_columns]), *(col(t, self.tcol(t, x)) for x in fk.columns)},
                        provides={("no_fk", t.lower(), tuple(x.lower() for x in fk.columns))})
        if isinstance(c, ch.DropUniqueConstraint):
            cols = [self.tcol(t, x) for x in c.constraint.columns]
            return dict(removes={key(t, cols)}, releases={col(t, x) for x in cols})
        return dict(releases={col(t, x) for x in self._words(t, c.constraint.expression, live=True)})

    def _other(self, c: ch.Change) -> dict:
        t, col, key = c.table, self.r_col, self.r_key
        if isinstance(c, ch.AddIndex):
            cols = [x for x in c.index.columns if x is not None]
            return dict(provides={("index", t.lower(), c.index.name.lower()), *([key(t, cols)] if c.index.unique else [])},
                        requires={col(t, x) for x in cols})
        if isinstance(c, ch.DropIndex):
            cols = [self.tcol(t, x) for x in c.index.columns if x is not None]
            return dict(removes={("index", t.lower(), c.index.name.lower()), *([key(t, cols)] if c.index.unique else [])},
                        releases={col(t, x) for x in cols})
        if isinstance(c, ch.DropTable):
            live = c.definition
            keys = [live.primary_key.columns] if live.primary_key else []
            keys += [u.columns for u in live.unique_constraints] + [i.columns for i in live.indexes if i.unique and None not in i.columns]
            fks = live.foreign_keys  # gone with the table: a type change of the columns they join can follow
            return dict(removes={self.r_table(t), *(key(t, k) for k in keys)},
                        provides={("no_fk", t.lower(), tuple(x.lower() for x in fk.columns)) for fk in fks},
                        releases={key(self.tname(fk.ref_table), [self.tcol(self.tname(fk.ref_table), x) for x in fk.ref_columns])
                                  for fk in fks})
        return {}
