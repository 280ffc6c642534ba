"""Property tests: random schema pairs (old -> new) over real SQLite files.

1. Migrating a database that holds random rows (valid under the old constraints, and under the
   new ones where the edits tighten them) to a random edit of its schema, with
   allow_destructive=True, (a) leaves no difference behind, (b) keeps every surviving value of
   every surviving row, keyed by primary key (exactly, storage class included; a type change is
   expected to convert as SQLite's affinity does), (c) keeps row counts, and fills added columns
   of old rows with their server default (or NULL).
   Edits: add/drop table, add/drop column, widen String, NULL <-> NOT NULL, add/drop index
   (unique or not), add/drop unique, change default, add FK (new column or existing one, self
   references included), drop FK, add/drop CHECK, safe type changes, table and column renames
   (with rename hints).
2. A database created by `metadata.create_all()` from random models shows no changes
   (no false differences from type spellings, default quoting, implicit indexes, ...).
"""

from __future__ import annotations

import copy
import json
import os
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from helpers_core import MODELS_HEADER, query, system_for, write_models

# MIGRATION_PROPERTY_EXAMPLES raises the example count for a longer bug hunt.
PROPERTY_SETTINGS = settings(max_examples=int(os.environ.get("MIGRATION_PROPERTY_EXAMPLES", "40")), deadline=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                    HealthCheck.data_too_large])

# ---------------------------------------------------------------------------------------------
# schema model
# ---------------------------------------------------------------------------------------------

KINDS = ("int", "str", "text", "float", "bool", "dt", "num", "json")
UNIQUE_OK = ("int", "str", "text", "float", "dt", "num")  # kinds that can hold many distinct values
INDEX_OK = ("int", "str", "text", "float", "bool", "dt", "num")

# Names include SQL keywords, upper case and a space: all must be quoted correctly everywhere.
TABLE_NAMES = ("users", "order", "Group", "items", "line item", "audit_log", "select")
COLUMN_NAMES = ("name", "value", "key", "from", "Amount", "x1", "desc", "created at", "flag", "score", "data",
                "label", "price", "ts", "note", "weight", "code", "level")

# server defaults: SQL text given to text(...) per kind (constant literals only)
DEFAULTS = {
    "int": ("0", "42", "-5", "'7'"),
    "str": ("'abc'", "''", "'it''s'", "'x y'"),
    "text": ("'hello'", "''", "'multi word text'"),
    "float": ("1.5", "0", "-2.25"),
    "bool": ("0", "1"),
    "dt": ("'2020-01-01 00:00:00'", "'1999-12-31 23:59:59'"),
    "num": ("0", "12.5", "'3.25'"),
    "json": ("'{}'", "'[]'", "'{\"a\": 1}'"),
}

SQL_TYPE = {"int": "INTEGER", "text": "TEXT", "float": "FLOAT", "bool": "BOOLEAN", "dt": "DATETIME",
            "num": "NUMERIC(10, 2)", "json": "JSON"}
SA_TYPE = {"int": "Integer", "text": "Text", "float": "Float", "bool": "Boolean", "dt": "DateTime",
           "num": "Numeric(10, 2)", "json": "JSON"}


@dataclass
class Col:
    name: str
    kind: str
    length: int | None = None
    nullable: bool = True
    default: str | None = None  # SQL literal text
    check: str | None = None  # name of CHECK (col >= 0), integers only
    unique: bool = False  # column-level UNIQUE
    fk: str | None = None  # parent table (references parent.id)
    origin: str | None = None  # the column's name in the old schema (None: added by the edits)

    def sa_type(self) -> str:
        return f"String({self.length})" if self.kind == "str" else SA_TYPE[self.kind]

    def sql_type(self) -> str:
        return f"VARCHAR({self.length})" if self.kind == "str" else SQL_TYPE[self.kind]


@dataclass
class Tab:
    name: str
    cols: list[Col]
    uniques: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # named multi-column
    indexes: list[tuple[str, tuple[str, ...], bool]] = field(default_factory=list)  # (name, cols, unique)
    origin: str | None = None  # the table's name in the old schema

    def col(self, name: str) -> Col | None:
        return next((c for c in self.cols if c.name == name), None)

    def col_from(self, origin: str) -> Col | None:
        return next((c for c in self.cols if c.origin == origin), None)


@dataclass
class Schema:
    tables: list[Tab]  # creation order: FKs only point at earlier tables

    def tab(self, name: str) -> Tab | None:
        return next((t for t in self.tables if t.name == name), None)

    def tab_from(self, origin: str) -> Tab | None:
        return next((t for t in self.tables if t.origin == origin), None)


def _q(s: str) -> str:
    return repr(s)


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def render(schema: Schema) -> str:
    out = []
    for t in schema.tables:
        parts = ['Column("id", Integer, primary_key=True)']
        for c in t.cols:
            args = [_q(c.name), c.sa_type()]
            if c.fk:
                args.append(f"ForeignKey({_q(c.fk + '.id')})")
            args.append(f"nullable={c.nullable}")
            if c.unique:
                args.append("unique=True")
            if c.default is not None:
                args.append(f"server_default=text({_q(c.default)})")
            parts.append(f"Column({', '.join(args)})")
        for c in t.cols:
            if c.check:
                parts.append(f"CheckConstraint({_q(_qi(c.name) + ' >= 0')}, name={_q(c.check)})")
        for name, cols in t.uniques:
            parts.append(f"UniqueConstraint({', '.join(map(_q, cols))}, name={_q(name)})")
        for name, cols, unique in t.indexes:
            parts.append(f"Index({_q(name)}, {', '.join(map(_q, cols))}, unique={unique})")
        out.append(f"Table({_q(t.name)}, metadata,\n    " + ",\n    ".join(parts) + ")\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------

_name_counter = [0]


def _fresh(prefix: str, t_name: str) -> str:
    _name_counter[0] += 1
    return f"{prefix}_{t_name}_{_name_counter[0]}"


@st.composite
def columns(draw, names: list[str], parents: list[str], table: str) -> list[Col]:
    out = []
    for name in names:
        kind = draw(st.sampled_from(KINDS))
        c = Col(name, kind)
        if kind == "str":
            c.length = draw(st.sampled_from((10, 20, 50, 255)))
        c.nullable = draw(st.booleans())
        if draw(st.booleans()):
            c.default = draw(st.sampled_from(DEFAULTS[kind]))
        if kind == "int":
            if draw(st.booleans()):
                c.check = _fresh("ck", table)
            if parents and draw(st.integers(0, 3)) == 0:
                c.fk = draw(st.sampled_from(parents))
                c.nullable, c.check = True, None
        if kind in UNIQUE_OK and not c.fk and draw(st.integers(0, 4)) == 0:
            c.unique = True
        out.append(c)
    return out


@st.composite
def schemas(draw, min_tables: int = 1, max_tables: int = 3) -> Schema:
    names = draw(st.lists(st.sampled_from(TABLE_NAMES), min_size=min_tables, max_size=max_tables, unique_by=str.lower))
    tables: list[Tab] = []
    for tname in names:
        cnames = draw(st.lists(st.sampled_from(COLUMN_NAMES), min_size=1, max_size=6, unique_by=str.lower))
        cols = draw(columns(cnames, [t.name for t in tables] + [tname], tname))  # self references too
        for c in cols:
            c.origin = c.name
        t = Tab(tname, cols, origin=tname)
        _draw_keys(draw, t, n_unique=draw(st.integers(0, 1)), n_index=draw(st.integers(0, 2)))
        tables.append(t)
    return Schema(tables)


def _unique_ok(t: Tab, c: Col) -> bool:
    """May c be part of a new unique key? In a table that holds rows, a column added with a default
    gives every row the same value (a duplicate, refused by design); added all-NULL is fine."""
    return c.kind in UNIQUE_OK and (t.origin is None or c.origin is not None or (c.nullable and c.default is None))


def _in_unique(t: Tab, c: Col) -> bool:
    return c.unique or any(c.name in cols for _, cols in t.uniques) or any(u and c.name in cols for _, cols, u in t.indexes)


def _draw_keys(draw, t: Tab, n_unique: int, n_index: int) -> None:
    uniq_cols = [c.name for c in t.cols if _unique_ok(t, c)]
    idx_cols = [c.name for c in t.cols if c.kind in INDEX_OK]
    for _ in range(n_unique):
        if uniq_cols:
            cols = tuple(draw(st.lists(st.sampled_from(uniq_cols), min_size=1, max_size=2, unique=True)))
            if not any(u[1] == cols for u in t.uniques):
                t.uniques.append((_fresh("uq", t.name), cols))
    for _ in range(n_index):
        if idx_cols:
            cols = tuple(draw(st.lists(st.sampled_from(idx_cols), min_size=1, max_size=2, unique=True)))
            unique = all(x in uniq_cols for x in cols) and draw(st.booleans())
            t.indexes.append((_fresh("ix", t.name), cols, unique))


def _drop_column_refs(t: Tab, col: str) -> None:
    t.uniques = [u for u in t.uniques if col not in u[1]]
    t.indexes = [i for i in t.indexes if col not in i[1]]


def _rename_column_refs(t: Tab, old: str, new: str) -> None:
    t.uniques = [(n, tuple(new if c == old else c for c in cols)) for n, cols in t.uniques]
    t.indexes = [(n, tuple(new if c == old else c for c in cols), u) for n, cols, u in t.indexes]


# Type changes whose values SQLite converts without loss of meaning (storage class may change).
SAFE_TYPE_CHANGES = {"int": ("float", "num", "text", "str"), "bool": ("int", "num"), "str": ("text", "str"),
                     "text": ("str",), "float": ("text", "num"), "dt": ("text", "str"), "json": ("text",),
                     "num": ("float", "text")}

EDITS = ("add_table", "drop_table", "add_column", "drop_column", "widen_string", "make_nullable", "add_index",
         "drop_index", "add_unique", "drop_unique", "change_default", "add_fk",
         # beyond the basic list: edits whose data requirements the generated rows also satisfy
         "make_not_null", "add_check", "drop_check", "drop_fk", "change_type", "rename_table", "rename_column",
         "add_fk_existing")



def _hintable(name: str) -> bool:
    """Rename hints are `old:new` / `table.old:new`, so names with spaces, dots or colons cannot be hinted."""
    return not any(ch in name for ch in " .:")


@st.composite
def schema_pairs(draw, edits: tuple[str, ...] = EDITS, first: str | None = None, min_tables: int = 1):
    """(old, new, applied edits, rename hints); `first` forces that edit to be tried first."""
    old = draw(schemas(min_tables=min_tables))
    new = copy.deepcopy(old)
    applied: list[str] = []
    hints: list[str] = []
    col_renames: list[tuple[Tab, str, str]] = []  # hinted with the table's final name, see below
    used_tables = {t.name.lower() for t in old.tables}
    renamed_tables: set[str] = set()
    n_edits = draw(st.integers(1, 5))

    def free_col_names(t: Tab) -> list[str]:
        taken = {c.name.lower() for c in t.cols}
        ot = old.tab(t.origin) if t.origin else None
        taken |= {c.name.lower() for c in ot.cols} if ot else set()
        return [n for n in COLUMN_NAMES if n.lower() not in taken]

    for k in range(n_edits):
        edit = first if (k == 0 and first) else draw(st.sampled_from(edits))
        tables = new.tables
        if edit == "add_table":
            free = [n for n in TABLE_NAMES if n.lower() not in used_tables]
            if not free:
                continue
            name = draw(st.sampled_from(free))
            used_tables.add(name.lower())
            cnames = draw(st.lists(st.sampled_from(COLUMN_NAMES), min_size=1, max_size=4, unique_by=str.lower))
            t = Tab(name, draw(columns(cnames, [x.name for x in tables], name)))
            _draw_keys(draw, t, draw(st.integers(0, 1)), draw(st.integers(0, 1)))
            tables.append(t)
            edit += f" {name}"
        elif edit == "drop_table" and tables:
            t = draw(st.sampled_from(tables))
            if t.origin in renamed_tables or any(rt is t for rt, _, _ in col_renames):
                continue  # a hint must not name a table that is gone
            tables.remove(t)
            for other in tables:  # children keep their column but lose the FK
                for c in other.cols:
                    if c.fk == t.name:
                        c.fk = None
            edit += f" {t.name}"
        elif edit == "add_column" and tables:
            t = draw(st.sampled_from(tables))
            free = free_col_names(t)
            if not free:
                continue
            [c] = draw(columns([draw(st.sampled_from(free))], [], t.name))
            if not _unique_ok(t, c):
                c.unique = False
            if not c.nullable and c.default is None:
                c.default = DEFAULTS[c.kind][0]  # NOT NULL without default on a non-empty table is refused by design
            if c.check and c.default is not None and c.default.lstrip("'").startswith("-"):
                c.default = "0"  # the default must satisfy the new column's CHECK (col >= 0)
            t.cols.append(c)
            edit += f" {t.name}.{c.name}"
        elif edit == "drop_column" and tables:
            t = draw(st.sampled_from(tables))
            if len(t.cols) <= 1:
                continue
            c = draw(st.sampled_from(t.cols))
            if any(rt is t and new_name == c.name for rt, _, new_name in col_renames):
                continue
            t.cols.remove(c)
            _drop_column_refs(t, c.name)
            edit += f" {t.name}.{c.name}"
        elif edit == "widen_string":
            cands = [(t, c) for t in tables for c in t.cols if c.kind == "str" and c.length < 1000]
            if not cands:
                continue
            t, c = draw(st.sampled_from(cands))
            c.length = draw(st.sampled_from((c.length + 1, c.length * 2, 1000)))
            edit += f" {t.name}.{c.name}"
        elif edit == "make_nullable":
            cands = [(t, c) for t in tables for c in t.cols if not c.nullable]
            if not cands:
                continue
            t, c = draw(st.sampled_from(cands))
            c.nullable = True
            edit += f" {t.name}.{c.name}"
        elif edit == "make_not_null":
            # existing columns (rows are generated without NULLs there) or columns of new, empty tables
            cands = [(t, c) for t in tables for c in t.cols if c.nullable and not c.fk
                     and (t.origin is None or c.origin is not None or (c.default is not None and not _in_unique(t, c)))]
            if not cands:
                continue
            t, c = draw(st.sampled_from(cands))
            c.nullable = False  # the rows are generated without NULLs in this column
            edit += f" {t.name}.{c.name}"
        elif edit == "add_index" and tables:
            t = draw(st.sampled_from(tables))
            _draw_keys(draw, t, 0, 1)
        elif edit == "drop_index":
            cands = [(t, i) for t in tables for i in t.indexes]
            if not cands:
                continue
            t, i = draw(st.sampled_from(cands))
            t.indexes.remove(i)
        elif edit == "add_unique" and tables:
            t = draw(st.sampled_from(tables))
            if draw(st.booleans()):
                _draw_keys(draw, t, 1, 0)
            else:
                cands = [c for c in t.cols if _unique_ok(t, c) and not c.unique]
                if not cands:
                    continue
                draw(st.sampled_from(cands)).unique = True
        elif edit == "drop_unique":
            cands = [(t, u) for t in tables for u in t.uniques] + [(t, c) for t in tables for c in t.cols if c.unique]
            if not cands:
                continue
            t, u = draw(st.sampled_from(cands))
            if isinstance(u, Col):
                u.unique = False
            else:
                t.uniques.remove(u)
        elif edit == "add_check":
            cands = [(t, c) for t in tables for c in t.cols if c.kind == "int" and not c.check and not c.fk]
            if not cands:
                continue
            t, c = draw(st.sampled_from(cands))
            c.check = _fresh("ck", t.name)  # the rows are generated non-negative in this column
            if c.default is not None and c.default.lstrip("'").startswith("-"):
                c.default = "0"  # an added column gets its default: it must pass the CHECK too
            edit += f" {t.name}.{c.name}"
        elif edit == "drop_check":
            cands = [c for t in tables for c in t.cols if c.check]
            if not cands:
                continue
            draw(st.sampled_from(cands)).check = None
        elif edit == "add_fk_existing":
            # an existing nullable integer column starts referencing an older table (or its own table);
            # the rows are generated so that every value exists in the parent
            cands = [(i, t, c) for i, t in enumerate(tables) for c in t.cols
                     if t.origin and c.origin and c.kind == "int" and c.nullable and not c.fk
                     and old.tab(t.origin).col(c.origin).fk is None]  # old rows reference nothing yet
            if not cands:
                continue
            i, t, c = draw(st.sampled_from(cands))
            parents = [p for p in tables[: i + 1] if p.origin]
            c.fk = draw(st.sampled_from(parents)).name
            edit += f" {t.name}.{c.name}->{c.fk}"
        elif edit == "drop_fk":
            cands = [c for t in tables for c in t.cols if c.fk]
            if not cands:
                continue
            draw(st.sampled_from(cands)).fk = None
        elif edit == "change_default":
            cands = [c for t in tables for c in t.cols
                     if t.origin is None or c.origin is not None or not _in_unique(t, c)]
            if not cands:
                continue
            c = draw(st.sampled_from(cands))
            options = [None, *DEFAULTS[c.kind]] if c.nullable else list(DEFAULTS[c.kind])
            if c.check:
                options = [o for o in options if o is None or not o.lstrip("'").startswith("-")]
            c.default = draw(st.sampled_from(options))
        elif edit == "change_type":
            cands = [(t, c) for t in tables for c in t.cols
                     if c.origin and c.kind in SAFE_TYPE_CHANGES and not c.check and not c.fk]
            if not cands:
                continue
            t, c = draw(st.sampled_from(cands))
            to = draw(st.sampled_from(SAFE_TYPE_CHANGES[c.kind]))
            if to == "str":
                c.length = 255 if c.kind != "str" else draw(st.sampled_from((c.length * 2, 1000)))
            else:
                c.length = None
            edit += f" {t.name}.{c.name} {c.kind}->{to}"
            c.kind = to
            if c.default is not None and c.default not in DEFAULTS[to]:
                c.default = None if c.nullable else DEFAULTS[to][0]
            if to not in UNIQUE_OK:
                c.unique = False
                t.uniques = [u for u in t.uniques if c.name not in u[1]]
                t.indexes = [i for i in t.indexes if not (i[2] and c.name in i[1])]
        elif edit == "rename_table":
            cands = [t for t in tables if t.origin and t.origin not in renamed_tables and t.name == t.origin
                     and _hintable(t.name)]
            free = [n for n in TABLE_NAMES if n.lower() not in used_tables and _hintable(n)]
            if not cands or not free:
                continue
            t, name = draw(st.sampled_from(cands)), draw(st.sampled_from(free))
            used_tables.add(name.lower())
            renamed_tables.add(t.origin)
            hints.append(f"{t.name}:{name}")
            for other in tables:
                for c in other.cols:
                    if c.fk == t.name:
                        c.fk = name
            edit += f" {t.name}->{name}"
            t.name = name
        elif edit == "rename_column":
            cands = [(t, c) for t in tables for c in t.cols
                     if t.origin and c.origin and c.name == c.origin and _hintable(t.origin) and _hintable(c.name)]
            if not cands:
                continue
            t, c = draw(st.sampled_from(cands))
            free = [n for n in free_col_names(t) if _hintable(n)]
            if not free:
                continue
            name = draw(st.sampled_from(free))
            col_renames.append((t, c.name, name))
            _rename_column_refs(t, c.name, name)
            edit += f" {t.name}.{c.name}->{name}"
            c.name = name
        else:
            continue
        applied.append(edit)
    # Column hints name the table by its old or its new name, at random (both must work, before and
    # after the rename is applied; see test_column_rename_hint_with_old_table_name_stays_valid).
    hints += [f"{draw(st.sampled_from(sorted({t.name, t.origin})))}.{o}:{n}" for t, o, n in col_renames]
    return old, new, applied, hints


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

def _distinct_columns(t: Tab | None) -> set[str]:
    """Columns whose values must be distinct under t's constraints."""
    out: set[str] = set()
    if t is None:
        return out
    out |= {c.name for c in t.cols if c.unique}
    for _, cols in t.uniques:
        out |= set(cols)
    for _, cols, unique in t.indexes:
        if unique:
            out |= set(cols)
    return out


_TEXT_POOL = "abcxyz ÄéΩ漢字'\"%_\\\n\t😀-;()"


@dataclass
class Needs:
    """What a column's values must satisfy under the old AND the new schema."""
    distinct: bool
    nonneg: bool
    notnull: bool
    max_len: int | None
    parent: str | None = None  # old name of the table whose ids the values must come from


def _needs(old_t: Tab, new: Schema, new_t: Tab | None, c: Col) -> Needs:
    nc = new_t.col_from(c.origin) if new_t else None
    distinct = c.name in _distinct_columns(old_t) or (nc is not None and nc.name in _distinct_columns(new_t))
    lengths = [x.length for x in (c, nc) if x is not None and x.kind == "str"]
    parent = c.fk
    if nc is not None and nc.fk and not c.fk:  # an FK the edits add to an existing column
        parent = new.tab(nc.fk).origin
    return Needs(distinct, bool(c.check or (nc and nc.check)), not c.nullable or (nc is not None and not nc.nullable),
                 min(lengths) if lengths else None, parent)


def _value(rng: random.Random, c: Col, i: int, need: Needs, parent_ids: dict[str, list[int]], used: set):
    """A value for row number i of column c."""
    if need.parent:
        ids = [x for x in parent_ids.get(need.parent) or [] if not (need.distinct and x in used)]
        if ids and (need.notnull or rng.random() < 0.7):
            used.add(v := rng.choice(ids))
            return v
        assert not need.notnull, "fill() sizes the table so that a NOT NULL reference always finds a parent"
        return None
    if not need.notnull and rng.random() < (0.1 if need.distinct else 0.2):
        return None  # NULLs never collide in a UNIQUE
    k = c.kind
    if k == "int":
        if need.distinct:
            return i * 3 + 1
        return rng.randint(0, 10**6) if need.nonneg else rng.randint(-10**6, 10**6)
    if k in ("str", "text"):
        limit = need.max_len or 40
        body = "".join(rng.choice(_TEXT_POOL) for _ in range(rng.randint(0, min(limit, 30))))
        if need.distinct:
            body = f"u{i}#" + body
        return body[:limit]
    if k == "float":
        return i + 0.25 if need.distinct else rng.choice([0.5, -1.75, 3.0e10, 1e-7, 12345.125])
    if k == "bool":
        return rng.randint(0, 1)
    if k == "dt":
        return f"2021-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{i:06d}" if need.distinct \
            else f"20{rng.randint(10, 30)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 12:00:00.000000"
    if k == "num":
        return i + 0.5 if need.distinct else rng.choice([0, 12.5, -3.25, 99999999.99])
    if k == "json":
        return json.dumps({"i": i, "v": rng.choice([None, True, "x", [1, 2]])})
    raise AssertionError(k)


def fill(db: Path, old: Schema, new: Schema, seed: int) -> dict[str, dict[int, dict[str, object]]]:
    """Insert random rows valid under the old and the new constraints; return them as stored."""
    rng = random.Random(seed)
    conn = sqlite3.connect(db)  # foreign keys unchecked while inserting (self references), verified below
    parent_ids: dict[str, list[int]] = {}
    counts = {}
    try:
        for t in old.tables:
            new_t = new.tab_from(t.origin)
            needs = {c.name: _needs(t, new, new_t, c) for c in t.cols}
            n = rng.choice((0, 1, 3, 10, 25))
            for c in t.cols:  # a NOT NULL reference needs a parent row (a distinct one: one parent per row)
                nd = needs[c.name]
                if nd.parent and nd.notnull and nd.parent != t.name:
                    available = len(parent_ids.get(nd.parent) or [])
                    n = min(n, available) if nd.distinct else (n if available else 0)
            ids = rng.sample(range(1, 100_000), n)
            parent_ids[t.name] = ids  # before the rows: a table may reference itself
            used: dict[str, set] = {c.name: set() for c in t.cols}
            rows = [(pk, *(_value(rng, c, i, needs[c.name], parent_ids, used[c.name]) for c in t.cols))
                    for i, pk in enumerate(ids)]
            cols = ["id", *(c.name for c in t.cols)]
            conn.executemany(f"INSERT INTO {_qi(t.name)} ({', '.join(map(_qi, cols))}) "
                             f"VALUES ({', '.join('?' * len(cols))})", rows)
            parent_ids[t.name] = ids
            counts[t.name] = n
        conn.commit()
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    # Read back what SQLite stored (affinity may turn '7' into 7 etc.): that is the baseline.
    stored = {}
    for t in old.tables:
        cols = ["id", *(c.name for c in t.cols)]
        rows = query(db, f"SELECT {', '.join(map(_qi, cols))} FROM {_qi(t.name)}")
        stored[t.name] = {r[0]: dict(zip(cols[1:], r[1:])) for r in rows}
        assert len(stored[t.name]) == counts[t.name]
    return stored


def _scratch_value(sql_type: str, default: str | None, value=None, *, insert_value: bool):
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(f"CREATE TABLE x (id INTEGER PRIMARY KEY, c {sql_type}{f' DEFAULT {default}' if default else ''})")
        if insert_value:
            conn.execute("INSERT INTO x (id, c) VALUES (1, ?)", (value,))
        else:
            conn.execute("INSERT INTO x (id) VALUES (1)")
        return conn.execute("SELECT c FROM x").fetchone()[0]
    finally:
        conn.close()


def expected_default(c: Col):
    """What SQLite stores for an omitted column with this type and default (or NULL)."""
    return None if c.default is None else _scratch_value(c.sql_type(), c.default, insert_value=False)


def stored_as(value, sql_type: str):
    """What a column of `sql_type` stores when given `value` (SQLite's affinity conversion)."""
    return _scratch_value(sql_type, None, value, insert_value=True)


def create_all(db: Path, source: str) -> None:
    namespace: dict = {}
    exec(compile(MODELS_HEADER + source, "<models>", "exec"), namespace)
    engine = create_engine(f"sqlite:///{db}")
    try:
        namespace["metadata"].create_all(engine)
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(pair=schema_pairs(EDITS), seed=st.integers(0, 2**32 - 1))
def test_random_edit_migrates_to_zero_diff_and_keeps_every_value(tmp_path_factory, pair, seed):
    check_migration_keeps_data(tmp_path_factory, pair, seed)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(pair=schema_pairs(EDITS, first="add_fk", min_tables=2), seed=st.integers(0, 2**32 - 1))
def test_random_edit_with_new_fk_column_keeps_every_value(tmp_path_factory, pair, seed):
    """Always starts with adding an FK column (once crashed the orphan probe: 'no such column')."""
    assume(any(e.startswith("add_fk") for e in pair[2]))
    check_migration_keeps_data(tmp_path_factory, pair, seed)


def check_migration_keeps_data(tmp_path_factory, pair, seed) -> None:
    old, new, applied, hints = pair
    tmp = tmp_path_factory.mktemp("prop")
    db = tmp / "app.db"
    old_src, new_src = render(old), render(new)
    create_all(db, old_src)
    before = fill(db, old, new, seed)

    system = system_for(db, write_models(tmp, new_src), tmp / "backups")
    context = f"edits={applied} hints={hints}\n--- old ---\n{old_src}\n--- new ---\n{new_src}"
    result = system.execute_auto_migration(allow_destructive=True, create_backup=False, renames=hints or None)
    assert result.success, context

    # (a) zero diff afterwards
    status = system.check_migration_status(renames=hints or None)
    assert status.migration_needed is False, f"{[c.detail for c in status.changes]}\n{context}"
    assert query(db, "PRAGMA integrity_check") == [("ok",)], context
    assert query(db, "PRAGMA foreign_key_check") == [], context

    live_tables = {r[0] for r in query(db, "SELECT name FROM sqlite_schema WHERE type = 'table'")}
    for t in new.tables:
        assert t.name in live_tables, context
        old_t = old.tab(t.origin) if t.origin else None
        if old_t is None:
            assert query(db, f"SELECT count(*) FROM {_qi(t.name)}") == [(0,)], context
            continue
        kept = [(c, old_t.col(c.origin)) for c in t.cols if c.origin and old_t.col(c.origin) is not None]
        added = [c for c in t.cols if not (c.origin and old_t.col(c.origin) is not None)]
        cols = ["id", *(c.name for c, _ in kept), *(c.name for c in added)]
        rows = query(db, f"SELECT {', '.join(map(_qi, cols))} FROM {_qi(t.name)}")
        after = {r[0]: dict(zip(cols[1:], r[1:])) for r in rows}
        # (c) row counts equal, same primary keys
        assert sorted(after) == sorted(before[old_t.name]), f"table {t.name}\n{context}"
        # (b) every surviving value, exactly (value and storage class; a type change converts as SQLite does)
        for pk, old_row in before[old_t.name].items():
            for c, oc in kept:
                a, b = old_row[oc.name], after[pk][c.name]
                if c.kind != oc.kind:
                    a = stored_as(a, c.sql_type())
                assert (type(a), a) == (type(b), b), f"{t.name}.{c.name} id={pk}: {a!r} -> {b!r}\n{context}"
            # added columns: old rows get the server default, or NULL
            for c in added:
                exp = expected_default(c)
                got = after[pk][c.name]
                assert (type(got), got) == (type(exp), exp), f"added {t.name}.{c.name} id={pk}: {got!r} != {exp!r}\n{context}"
    new_origins = {t.origin for t in new.tables if t.origin}
    for t in old.tables:
        if t.name not in new_origins and new.tab(t.name) is None:
            assert t.name not in live_tables, context


@PROPERTY_SETTINGS
@given(schema=schemas(min_tables=1, max_tables=4))
def test_create_all_database_shows_no_changes(tmp_path_factory, schema):
    tmp = tmp_path_factory.mktemp("noop")
    db = tmp / "app.db"
    src = render(schema)
    create_all(db, src)
    system = system_for(db, write_models(tmp, src), tmp / "backups")
    status = system.check_migration_status()
    assert status.migration_needed is False, f"false differences: {[c.detail for c in status.changes]}\n{src}"
    assert status.changes == []
    # and migrate is a no-op that does not touch the file
    before = db.read_bytes()
    result = system.execute_auto_migration()
    assert result.migration_needed is False and result.operations_executed == 0
    assert db.read_bytes() == before, "a no-op migrate changed the database file"


# Extra column kinds that only the no-false-diff property uses (no data needed).
EXOTIC_COLUMNS = (
    'Column("c_bigint", BigInteger, server_default=text("0"))',
    'Column("c_small", SmallInteger)',
    'Column("c_str_nolen", String)',
    'Column("c_unicode", Unicode(30), server_default="x")',
    'Column("c_date", Date)',
    'Column("c_time", Time)',
    'Column("c_blob", LargeBinary)',
    'Column("c_enum", Enum("a", "b", name="e_kind"))',
    'Column("c_enum_ck", Enum("a", "b", name="e_kind2", create_constraint=True))',
    'Column("c_bool_ck", Boolean(create_constraint=True))',
    'Column("c_now", DateTime, server_default=func.now())',
    'Column("c_ts", DateTime, server_default=text("CURRENT_TIMESTAMP"))',
    'Column("c_expr", Integer, server_default=text("(1 + 2)"))',
    'Column("c_neg", Float, server_default=text("-1.5"))',
    'Column("c_quote", String(20), server_default="o\'brien")',
    'Column("c_upper", String(20), server_default=text("\'ABC\'"))',
    'Column("c_float_p", Float(precision=10))',
    'Column("c_num", Numeric)',
    'Column("c_collate", String(20, collation="NOCASE"))',
)
EXOTIC_EXTRAS = (
    'Index("ix_ex_lower", text("lower(c_upper)"))',
    'Index("ix_ex_partial", "c_small", sqlite_where=text("c_small > 0"))',
    'Index("ix_ex_desc", text("c_bigint DESC"))',
    'CheckConstraint("c_small BETWEEN -5 AND 5", name="ck_ex_small")',
    'UniqueConstraint("c_small", "c_bigint")',
)


@PROPERTY_SETTINGS
@given(cols=st.lists(st.sampled_from(EXOTIC_COLUMNS), min_size=1, max_size=8, unique=True),
       extras=st.lists(st.sampled_from(EXOTIC_EXTRAS), max_size=3, unique=True),
       autoinc=st.booleans())
def test_exotic_column_kinds_show_no_changes(tmp_path_factory, cols, extras, autoinc):
    needed = {"ix_ex_lower": "c_upper", "ix_ex_partial": "c_small", "ix_ex_desc": "c_bigint",
              "ck_ex_small": "c_small", '"c_small", "c_bigint"': "c_small"}
    for e in extras:
        for key, col in needed.items():
            if key in e:
                assume(any(f'"{col}"' in c for c in cols))
                if "c_bigint" in e:
                    assume(any('"c_bigint"' in c for c in cols))
    tmp = tmp_path_factory.mktemp("exotic")
    db = tmp / "app.db"
    pk = 'Column("id", Integer, primary_key=True)'
    kw = ", sqlite_autoincrement=True" if autoinc else ""
    src = (f'Table("ex", metadata, {pk}, ' + ", ".join(cols) + (", " + ", ".join(extras) if extras else "") + f"{kw})\n"
           'Table("child", metadata, Column("id", Integer, primary_key=True), '
           'Column("ex_id", Integer, ForeignKey("ex.id", ondelete="CASCADE")))\n')
    create_all(db, src)
    system = system_for(db, write_models(tmp, src), tmp / "backups")
    status = system.check_migration_status()
    assert status.migration_needed is False, f"false differences: {[c.detail for c in status.changes]}\n{src}"


def test_renderer_produces_the_schema_it_describes(tmp_path):
    """Guard for the generator itself: a rendered schema creates the constraints it claims."""
    s = Schema([
        Tab("order", [Col("created at", "int", check="ck_order_created at", nullable=False, default="0"), Col("key", "str", length=20, unique=True)],
            uniques=[("uq_o", ("created at", "key"))], indexes=[("ix_o", ("key",), True)]),
        Tab("line item", [Col("from", "int", fk="order"), Col("desc", "json", default="'{}'")]),
    ])
    db = tmp_path / "g.db"
    create_all(db, render(s))
    schema = dict(query(db, "SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL"))
    assert "CONSTRAINT ck_order_created at CHECK" in schema["order"] or 'CONSTRAINT "ck_order_created at" CHECK' in schema["order"]
    assert "UNIQUE (\"created at\", \"key\")" in schema["order"] or 'UNIQUE ("created at", "key")' in schema["order"]
    assert 'REFERENCES "order" (id)' in schema["line item"]
    assert "ix_o" in schema
    with pytest.raises(sqlite3.IntegrityError):
        conn = sqlite3.connect(db)
        try:
            conn.execute('INSERT INTO "order" (id, "created at", key) VALUES (1, -1, \'k\')')
        finally:
            conn.close()


def test_add_fk_column_to_existing_table_is_planned(tmp_path):
    """Regression: status/migrate crashed with sqlite3.OperationalError 'no such column: src.parent_id'
    (SqliteProbe.orphan_count queried the new column in the live table)."""
    db = tmp_path / "app.db"
    base = 'Table("parent", metadata, Column("id", Integer, primary_key=True))\n'
    system_for(db, write_models(tmp_path, base + 'Table("child", metadata, Column("id", Integer, primary_key=True))\n'),
               tmp_path / "b").execute_auto_migration()
    query_db = sqlite3.connect(db)
    query_db.executescript("INSERT INTO parent (id) VALUES (1), (2); INSERT INTO child (id) VALUES (10), (11);")
    query_db.close()
    new = base + ('Table("child", metadata, Column("id", Integer, primary_key=True), '
                  'Column("parent_id", Integer, ForeignKey("parent.id")))\n')
    system = system_for(db, write_models(tmp_path, new), tmp_path / "b")
    try:
        status = system.check_migration_status()
        result = system.execute_auto_migration()
    except sqlite3.Error as exc:  # a raw driver error escaping the library is the bug
        raise AssertionError(f"raw sqlite3 error escaped: {exc!r}") from exc
    assert [c.kind for c in status.changes if c.blocked] == []
    assert result.success and system.check_migration_status().migration_needed is False
    assert query(db, "SELECT id, parent_id FROM child ORDER BY id") == [(10, None), (11, None)]


@pytest.mark.parametrize("column", [
    'Column("code", String(20), unique=True)',
    'Column("code", String(20)), Index("ix_t_code", "code", unique=True)',
])
def test_add_nullable_unique_column_to_table_with_rows(tmp_path, column):
    """Adding a nullable UNIQUE column to a table with rows is always valid: every row gets NULL.
    Regression: SqliteProbe.duplicate_count ran against the live table, where "code" fell back to the
    string literal 'code', so every row counted as a duplicate and the change was refused."""
    db = tmp_path / "app.db"
    system_for(db, write_models(tmp_path, 'Table("t", metadata, Column("id", Integer, primary_key=True))\n'),
               tmp_path / "b").execute_auto_migration()
    conn = sqlite3.connect(db)
    conn.executescript("INSERT INTO t (id) VALUES (1), (2), (3);")
    conn.close()
    system = system_for(db, write_models(tmp_path, f'Table("t", metadata, Column("id", Integer, primary_key=True), {column})\n'),
                        tmp_path / "b")
    status = system.check_migration_status()
    blocked = [f"{c.detail}: {c.reason}" for c in status.changes if c.blocked]
    assert blocked == [], blocked
    assert system.execute_auto_migration().success
    assert query(db, "SELECT id, code FROM t ORDER BY id") == [(1, None), (2, None), (3, None)]
