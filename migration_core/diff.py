"""Compare two snapshots and return typed changes. Renames are never guessed: only hints make them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import changes as ch
from .errors import ConfigurationError
from .snapshot import Column, Names, SchemaSnapshot, Table, parse_enum

_HINT = re.compile(r"^\s*(?:(?P<table>[^.:\s]+)\.)?(?P<old>[^.:\s]+)\s*:\s*(?P<new>[^.:\s]+)\s*$")


@dataclass(frozen=True)
class RenameHints:
    """Names as the user wrote them; matched to tables and columns the way the database tells names
    apart (`snapshot.Names`)."""

    tables: dict[str, str] = field(default_factory=dict)  # old -> new
    columns: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, old) -> new

    @classmethod
    def parse(cls, hints: list[str] | tuple[str, ...] | None) -> "RenameHints":
        tables: dict[str, str] = {}
        columns: dict[tuple[str, str], str] = {}
        for raw in hints or ():
            m = _HINT.match(raw)
            if not m:
                raise ConfigurationError(
                    f"invalid rename hint {raw!r}: use old_table:new_table or table.old_column:new_column"
                )
            if m["table"]:
                columns[(m["table"], m["old"])] = m["new"]
            else:
                tables[m["old"]] = m["new"]
        return cls(tables, columns)


@dataclass(frozen=True)
class Diff:
    changes: list[ch.Change]
    table_renames: dict[str, str]  # live name -> target name
    column_renames: dict[tuple[str, str], str]  # (target table, live column) -> target column
    names: Names = field(default_factory=Names)

    @property
    def empty(self) -> bool:
        return not self.changes

    def live_table(self, target_table: str) -> str:
        key = self.names.table(target_table)
        for old, new in self.table_renames.items():
            if self.names.table(new) == key:
                return old
        return target_table

    def live_column(self, target_table: str, target_column: str) -> str:
        tkey, ckey = self.names.table(target_table), self.names.column(target_column)
        for (t, old), new in self.column_renames.items():
            if self.names.table(t) == tkey and self.names.column(new) == ckey:
                return old
        return target_column


def _map_words(text: str | None, mapping: dict[str, str]) -> str | None:
    """Rename identifiers inside normalized expression text (tokens are space separated)."""
    if not text or not mapping:
        return text
    return " ".join(mapping.get(tok, tok) for tok in text.split(" "))


def diff_snapshots(live: SchemaSnapshot, target: SchemaSnapshot, hints: RenameHints | None = None) -> Diff:
    hints = hints or RenameHints()
    N = live.names
    tk = N.table
    live_by = {tk(n): t for n, t in live.tables.items()}
    target_by = {tk(n): t for n, t in target.tables.items()}

    table_renames: dict[str, str] = {}
    for old, new in hints.tables.items():
        if tk(old) in live_by and tk(old) not in target_by and tk(new) in target_by and tk(new) not in live_by:
            table_renames[live_by[tk(old)].name] = target_by[tk(new)].name
        elif tk(new) in live_by and tk(old) not in live_by:
            continue  # already applied: hints stay valid across repeated startups
        else:
            raise ConfigurationError(
                f"rename hint {old}:{new} does not apply: it needs table {old!r} in the database but not in the models, "
                f"and table {new!r} in the models but not in the database"
            )

    changes: list[ch.Change] = []
    column_renames: dict[tuple[str, str], str] = {}
    renamed_live = {tk(old): new for old, new in table_renames.items()}
    for old, new in table_renames.items():
        changes.append(ch.RenameTable(new, old))

    pairs: list[tuple[Table | None, Table]] = []
    for key, t in target_by.items():
        live_t = next((live_by[tk(o)] for o, n in table_renames.items() if tk(n) == key), None) or (
            live_by.get(key) if key not in renamed_live else None
        )
        pairs.append((live_t, t))
    col_maps = {tk(t.name): _column_renames(lt, t, hints, N) for lt, t in pairs if lt is not None}
    # Referenced columns renamed in a parent: SQLite/servers rewrite the child's FK with it.
    ref_renames = {(tk(renamed_live.get(tk(lt.name), lt.name)), N.column(old)): N.column(new)
                   for lt, t in pairs if lt is not None for old, new in col_maps[tk(t.name)].items()}
    for live_t, t in pairs:
        if live_t is None:
            changes.append(ch.AddTable(t.name, t))
            continue
        col_map = col_maps[tk(t.name)]
        for old, new in col_map.items():
            column_renames[(t.name, old)] = new
            changes.append(ch.RenameColumn(t.name, old, new))
        changes.extend(_diff_table(live_t, t, col_map, renamed_live, ref_renames, N))

    for key, t in live_by.items():
        if key not in target_by and key not in renamed_live:
            changes.append(ch.DropTable(t.name, t))
    changes.extend(_diff_enum_types(live, target))

    # Hints naming tables/columns that exist nowhere are mistakes worth reporting.
    renamed_from = {tk(o) for o in hints.tables}
    for (tname, old), new in hints.columns.items():
        if tk(tname) not in target_by and tk(tname) not in live_by and tk(tname) not in renamed_from:
            raise ConfigurationError(f"rename hint {tname}.{old}:{new} names table {tname!r}, which exists neither in the database nor in the models")
    return Diff(changes, table_renames, column_renames, N)


def _diff_enum_types(live: SchemaSnapshot, target: SchemaSnapshot) -> list[ch.Change]:
    """Enum types are the models' when they declare them (PostgreSQL: the types the models' scratch copy
    has), or when the models' tables used them: those the models no longer use are dropped, unless
    something the tool does not keep still uses them."""
    out: list[ch.Change] = []
    for name, values in target.enums.items():
        old = live.enums.get(name)
        if old is None:
            out.append(ch.AddEnumType(name, values))
        elif old != values:
            out.append(ch.AlterEnumType(name, old, values))
    out += [ch.AddSequence(name) for name in target.sequences if name not in live.sequences]
    used_by_models = {e[0] for tbl in live.tables.values() for c in tbl.columns if (e := parse_enum(c.type))}
    outside = {ref for _what, ref, _col in live.outside}
    for name, values in live.enums.items():
        if name not in target.enums and name in used_by_models and name not in outside:
            out.append(ch.DropEnumType(name, values))
    return out


def _column_renames(live_t: Table, t: Table, hints: RenameHints, N: Names) -> dict[str, str]:
    out: dict[str, str] = {}
    names = {N.table(t.name), N.table(live_t.name)} | {N.table(old) for old, new in hints.tables.items()
                                                        if N.table(new) == N.table(t.name)}

    def col(table: Table, name: str) -> Column | None:
        return next((c for c in table.columns if N.column(c.name) == N.column(name)), None)

    for (tname, old), new in hints.columns.items():
        if N.table(tname) not in names:
            continue
        live_has_old, target_has_old = col(live_t, old) is not None, col(t, old) is not None
        live_has_new, target_has_new = col(live_t, new) is not None, col(t, new) is not None
        if N.column(old) == N.column(new) and live_has_old and target_has_new:
            # only the case differs, on a database that ignores it in column names (MariaDB, SQLite):
            # a rename that changes how the name is stored and shown
            if col(live_t, old).name != col(t, new).name:
                out[col(live_t, old).name] = col(t, new).name
            continue
        if live_has_old and not target_has_old and target_has_new and not live_has_new:
            out[col(live_t, old).name] = col(t, new).name
        elif live_has_new and not live_has_old:
            continue  # already applied
        else:
            raise ConfigurationError(
                f"rename hint {tname}.{old}:{new} does not apply: it needs column {old!r} in the database table but not in the models, "
                f"and column {new!r} in the models but not in the database table"
            )
    return out


def _diff_table(live: Table, target: Table, col_map: dict[str, str], renamed_tables: dict[str, str],
                ref_renames: dict[tuple[str, str], str] | None = None, N: Names = Names()) -> list[ch.Change]:
    name = target.name
    out: list[ch.Change] = []
    ck, tk = N.column, N.table
    lmap = {ck(k): ck(v) for k, v in col_map.items()}

    def cname(c: str | None) -> str | None:
        return lmap.get(ck(c), ck(c)) if c is not None else None

    live_cols = {cname(c.name): c for c in live.columns}
    target_cols = {ck(c.name): c for c in target.columns}
    for key, c in target_cols.items():
        lc = live_cols.get(key)
        if lc is None:
            out.append(ch.AddColumn(name, c))
            continue
        out.extend(_diff_column(name, lc, c, lmap))
    for key, lc in live_cols.items():
        if key not in target_cols:
            out.append(ch.DropColumn(name, lc))

    lpk = live.primary_key
    tpk = target.primary_key
    lpk_key = (tuple(cname(c) for c in lpk.columns), lpk.autoincrement) if lpk else None
    tpk_key = (tuple(ck(c) for c in tpk.columns), tpk.autoincrement) if tpk else None
    if lpk_key != tpk_key or (lpk and tpk and lpk.name and tpk.name and lpk.name.lower() != tpk.name.lower()):
        out.append(ch.AlterPrimaryKey(name, lpk, tpk))

    def fk_key(fk, mapped: bool):
        cols = tuple(cname(c) for c in fk.columns) if mapped else tuple(ck(c) for c in fk.columns)
        ref = tk(renamed_tables.get(tk(fk.ref_table), fk.ref_table)) if mapped else tk(fk.ref_table)
        refcols = tuple(ck(c) for c in fk.ref_columns)
        if mapped and ref_renames:
            refcols = tuple(ref_renames.get((ref, c), c) for c in refcols)
        return (cols, ref, refcols, fk.on_delete, fk.on_update, fk.deferrable)

    out.extend(
        _match(
            _dedupe(live.foreign_keys, lambda fk: fk_key(fk, True)), _dedupe(target.foreign_keys, lambda fk: fk_key(fk, False)),
            lambda fk: fk_key(fk, True), lambda fk: fk_key(fk, False),
            lambda fk: ch.AddForeignKey(name, fk), lambda fk: ch.DropForeignKey(name, fk),
        )
    )
    out.extend(
        _match(
            _dedupe(live.unique_constraints, lambda u: tuple(cname(c) for c in u.columns)),
            _dedupe(target.unique_constraints, lambda u: tuple(ck(c) for c in u.columns)),
            lambda u: tuple(cname(c) for c in u.columns), lambda u: tuple(ck(c) for c in u.columns),
            lambda u: ch.AddUniqueConstraint(name, u), lambda u: ch.DropUniqueConstraint(name, u),
        )
    )
    out.extend(
        _match(
            _dedupe(live.check_constraints, lambda k: _map_words(k.expression, lmap)),
            _dedupe(target.check_constraints, lambda k: k.expression),
            lambda k: _map_words(k.expression, lmap), lambda k: k.expression,
            lambda k: ch.AddCheckConstraint(name, k), lambda k: ch.DropCheckConstraint(name, k),
        )
    )
    out.extend(_diff_indexes(name, live, target, lmap, ck))
    if tuple(live.options) != tuple(target.options):
        out.append(ch.AlterTableOptions(name, live.options, target.options))
    if (live.comment or None) != (target.comment or None):
        out.append(ch.AlterTableComment(name, live.comment, target.comment))
    return out


def _diff_indexes(name: str, live: Table, target: Table, lmap: dict[str, str], ck=str.lower) -> list[ch.Change]:
    """Indexes pair by name; one whose name the server chose (`auto`) pairs with any index of the same
    definition. A live index the server made for a foreign key is no difference while another index
    of the models covers that key (InnoDB then needs it no more, and would not have made it)."""
    out: list[ch.Change] = []
    live_ix = {i.name.lower(): i for i in live.indexes}
    target_ix = {i.name.lower(): i for i in target.indexes}
    unmatched_live = dict(live_ix)
    pending: list = []
    for key, ix in target_ix.items():
        lix = live_ix.get(key)
        if lix is not None and _map_words(lix.definition, lmap) == ix.definition:
            unmatched_live.pop(key)
        elif lix is not None and not (lix.auto or ix.auto):
            unmatched_live.pop(key)
            out += [ch.DropIndex(name, lix), ch.AddIndex(name, ix)]
        else:
            pending.append(ix)
    for ix in pending:
        hit = next((lix for lix in unmatched_live.values() if (lix.auto or ix.auto)
                    and _map_words(lix.definition, lmap) == ix.definition), None)
        if hit is not None:
            unmatched_live.pop(hit.name.lower())
        else:
            out.append(ch.AddIndex(name, ix))
    fk_cols = [tuple(ck(c) for c in fk.columns) for fk in target.foreign_keys]
    for lix in unmatched_live.values():
        cols = tuple((lmap.get(ck(c), ck(c)) if c else "") for c in lix.columns)
        if lix.auto and cols in fk_cols and any(
                tuple(ck(c or "") for c in ix.columns[:len(cols)]) == cols for ix in target.indexes):
            continue
        out.append(ch.DropIndex(name, lix))
    return out


def _dedupe(items, key):
    """One of each definition, a named one first: the same key declared twice (on the column and as
    a table constraint) is one key as far as the diff goes."""
    seen: dict = {}
    for item in sorted(items, key=lambda i: i.name is None):
        seen.setdefault(key(item), item)
    return [i for i in items if any(i is v for v in seen.values())]


def _diff_column(table: str, lc: Column, c: Column, lmap: dict[str, str]) -> list[ch.Change]:
    out: list[ch.Change] = []
    if lc.type != c.type:
        out.append(ch.AlterColumnType(table, c.name, lc, c))
    if lc.nullable != c.nullable:
        out.append(ch.AlterColumnNullable(table, c.name, lc, c))
    if lc.default != c.default:
        out.append(ch.AlterColumnDefault(table, c.name, lc, c))
    if (lc.collation or None) != (c.collation or None):
        out.append(ch.AlterColumnCollation(table, c.name, lc, c))
    if _map_words(lc.generated, lmap) != c.generated:
        out.append(ch.AlterColumnGenerated(table, c.name, lc, c))
    if (lc.comment or None) != (c.comment or None):
        out.append(ch.AlterColumnComment(table, c.name, lc, c))
    return out


def _match(live_items, target_items, live_key, target_key, add, drop):
    """Pair constraints by definition; a name counts only when both sides have one."""
    out = []
    remaining = list(live_items)
    for t in target_items:
        tk = target_key(t)
        hit = next((l for l in remaining if live_key(l) == tk and _names_agree(l.name, t.name)), None)
        if hit is not None:
            remaining.remove(hit)
        else:
            out.append(add(t))
    out.extend(drop(l) for l in remaining)
    return out


def _names_agree(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a.lower() == b.lower()
