"""Property test on real PostgreSQL and MariaDB servers: random schema pairs built around foreign keys
(cycles between tables, self references, composite keys onto a new unique key over a new column,
indexes replaced under a key, both sides of a key changing type) migrate in an order the engine
accepts. Each pair: the old schema is created and filled, `status` must say the plan is proven, the
migration must leave no difference, and every row must keep its values."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers import server_project

EXAMPLES = int(os.environ.get("MIGRATION_PROPERTY_EXAMPLES_SERVERS", "8"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])


@dataclass
class T:
    name: str
    cols: dict[str, str] = field(default_factory=dict)  # name -> "Integer" | "BigInteger"
    uniques: list[tuple[str, ...]] = field(default_factory=list)
    fks: list[tuple[tuple[str, ...], str, tuple[str, ...]]] = field(default_factory=list)  # (cols, parent, parent cols)
    indexes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    id_type: str = "Integer"

    def render(self) -> str:
        parts = [f'Column("id", {self.id_type}, primary_key=True, autoincrement=False)']
        parts += [f'Column("{c}", {t})' for c, t in self.cols.items()]
        parts += [f'UniqueConstraint({", ".join(repr(c) for c in u)}, name="uq_{self.name}_{"_".join(u)}")' for u in self.uniques]
        parts += [f'ForeignKeyConstraint({list(cols)!r}, {[f"{p}.{c}" for c in pcols]!r})' for cols, p, pcols in self.fks]
        parts += [f'Index("{n}", {", ".join(repr(c) for c in cs)})' for n, cs in self.indexes.items()]
        return f'Table("{self.name}", metadata, ' + ", ".join(parts) + ")\n"


def render(tables: list[T]) -> str:
    return "".join(t.render() for t in tables)


@st.composite
def schema_pairs(draw):
    n = draw(st.integers(2, 4))
    old = [T(f"t{i}", {f"c{j}": "Integer" for j in range(draw(st.integers(1, 3)))}) for i in range(n)]
    for t in old:  # single-column keys onto ids, cycles and self references allowed
        for col in list(t.cols)[: draw(st.integers(0, len(t.cols)))]:
            parent = draw(st.sampled_from(old))
            t.fks.append(((col,), parent.name, ("id",)))
            if draw(st.booleans()):
                t.indexes[f"ix_{t.name}_{col}"] = (col,)
    new = [T(t.name, dict(t.cols), list(t.uniques), list(t.fks), dict(t.indexes), t.id_type) for t in old]
    edits = draw(st.lists(st.sampled_from(["new_tables_cycle", "key_on_new_column", "replace_index", "widen_joined",
                                           "drop_fk", "new_self_ref"]), min_size=1, max_size=3, unique=True))
    for edit in edits:
        if edit == "new_tables_cycle":  # two new tables referencing each other and an old one
            other = draw(st.sampled_from(new[:n]))  # its key column has the type the parent's id has now
            a, b = T(f"n{len(new)}a", {"b_id": "Integer", "o_id": other.id_type}), T(f"n{len(new)}b", {"a_id": "Integer"})
            a.fks += [(("b_id",), b.name, ("id",)), (("o_id",), other.name, ("id",))]
            b.fks.append((("a_id",), a.name, ("id",)))
            new += [a, b]
        elif edit == "key_on_new_column":  # parent gains a column and a unique key over it; a new table references both
            parent = draw(st.sampled_from(new[:n]))
            parent.cols["ws"] = "Integer"
            parent.uniques.append(("id", "ws"))
            child = T(f"k{len(new)}", {"pid": parent.id_type, "pws": "Integer"})
            child.fks.append((("pid", "pws"), parent.name, ("id", "ws")))
            new.append(child)
        elif edit == "replace_index":  # the index under a key replaced by a composite one starting with its column
            t = draw(st.sampled_from(new[:n]))
            if t.fks and len(t.cols) > 1:
                col = t.fks[0][0][0]
                t.indexes = {k: v for k, v in t.indexes.items() if v != (col,)}
                t.indexes[f"ix_{t.name}_{col}_wide"] = (col, next(c for c in t.cols if c != col))
        elif edit == "widen_joined":  # a parent's id and every column referencing it become BIGINT
            parent = draw(st.sampled_from(new[:n]))
            parent.id_type = "BigInteger"
            for t in new:
                for cols, p, pcols in t.fks:
                    if p == parent.name:
                        t.cols[cols[pcols.index("id")]] = "BigInteger"
        elif edit == "drop_fk":
            t = draw(st.sampled_from(new[:n]))
            if t.fks:
                t.fks.pop(0)
        elif edit == "new_self_ref":
            t = draw(st.sampled_from(new[:n]))
            t.cols["parent_id"] = "Integer" if t.id_type == "Integer" else "BigInteger"
            t.fks.append((("parent_id",), t.name, ("id",)))
    return old, new, draw(st.sampled_from(["postgresql", "mysql"]))


def _rows(p, tables: list[T]) -> dict[str, list[tuple]]:
    return {t.name: p.sql(f"SELECT id FROM {t.name} ORDER BY id") for t in tables}


@SETTINGS
@given(pair=schema_pairs())
def test_random_foreign_key_schemas_migrate_in_an_order_the_engine_accepts(tmp_path_factory, pair):
    old, new, kind = pair
    with server_project(kind, tmp_path_factory.mktemp("fk")) as p:
        p.migrate(render(old))
        for t in old:  # rows with NULL keys: valid under any key the edits add
            p.insert(t.name, [(i, *([None] * len(t.cols))) for i in (1, 2, 3)])
        before = _rows(p, old)
        status = p.system(render(new)).preview_diff()
        if not status.migration_needed:  # the edits cancelled out
            return
        assert status.plan_proven and status.safe_to_apply, (status.proof, status.sql, render(old), render(new))
        p.migrate(render(new), allow_destructive=True)
        assert {t: r for t, r in _rows(p, new).items() if t in before} == before
