"""Prove a server plan before it runs, as SQLite's planner does on its in-memory shadow: build a
schema-only copy of the tables the plan touches (with the tables their foreign keys join, and the
views and triggers on them) in a scratch schema or database, run every statement there, and check
that the copy ends up as the models say, with every view and trigger that worked before still there
and working. A plan that fails is refused before anything runs (exit 3), with the failing step and
statement; `status` reports the plan as proven or not, with the reason.

The cost is bounded by the tables the plan touches, not by the schema's size. What differs per
server (how the scratch place is made and thrown away, how a table is copied, how kept objects are
set aside and made again) is the dialect's `Shadow`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ... import changes as ch
from ...diff import Diff, diff_snapshots
from ...errors import PlanningError
from ...plan import Plan, Step
from ...snapshot import SchemaSnapshot, Trigger, View, split_key
from .connection import message
from .kept import KeptStep


@dataclass
class Scope:
    """What the proof copies, by live names: `tables` (the plan touches `touched`), `views` and
    `triggers`, each in catalog order."""

    tables: list[str]
    touched: set[str]
    views: list[str]
    triggers: list[str]
    kept: tuple[str, ...] = ()  # the kept objects the plan itself sets aside and makes again


def proof_scope(diff: Diff, live: SchemaSnapshot, *, views_need_tables: bool, kept: tuple[str, ...] = ()) -> Scope:
    """Touched tables, the tables their foreign keys join (both ways), and the kept objects on them,
    including those the plan sets aside (`kept`, "kind name") and the tables under them.
    `views_need_tables`: a copied view's other tables are copied too (MariaDB resolves a view's names
    in the database it is created in; PostgreSQL finds the live ones on the search path)."""
    touched: set[str] = set()
    for c in diff.changes:
        if isinstance(c, ch.AddTable):
            refs = [diff.live_table(fk.ref_table) for fk in c.definition.foreign_keys]
        elif isinstance(c, ch.AddForeignKey):
            refs = [diff.live_table(c.table), diff.live_table(c.fk.ref_table)]
        else:
            refs = [c.table if isinstance(c, ch.DropTable) else diff.live_table(c.table)]
        for r in refs:
            t = live.table(r)
            if t is not None:
                touched.add(t.name)
    copy = set(touched)
    for key in kept:
        kind, name = split_key(key)
        obj = live.triggers[name] if kind == "trigger" else live.views[name]
        deps = [(obj.table, None)] if kind == "trigger" else obj.depends
        copy |= {live.table(d).name for d, _c in deps if live.table(d) is not None}
    for name in set(touched):
        copy |= {live.table(fk.ref_table).name for fk in live.table(name).foreign_keys if live.table(fk.ref_table)}
    lowered = {t.lower() for t in touched}
    copy |= {t.name for t in live.tables.values() if any(fk.ref_table.lower() in lowered for fk in t.foreign_keys)}
    views: list[str] = []
    while True:
        rels = {t.lower() for t in copy} | {v.lower() for v in views}
        more = [v.name for v in live.views.values() if v.name not in views and any(d[0].lower() in rels for d in v.depends)]
        if not more:
            break
        views += more
        if views_need_tables:
            for v in more:
                for dep, _col in live.views[v].depends:
                    t = live.table(dep)
                    if t is not None:
                        copy.add(t.name)
    relations = {t.lower() for t in copy} | {v.lower() for v in views}
    triggers = [t.name for t in live.triggers.values() if t.table.lower() in relations]
    order = {n: i for i, n in enumerate(live.views)}
    return Scope(sorted(copy), touched, sorted(views, key=order.get), triggers, tuple(kept))


class Shadow:
    """A dialect's scratch place for a proof (a context manager): `copy` the scope, `run` statements,
    `fill` kept-object steps, `read` the result, `problems` with kept objects afterwards."""

    place = "scratch"

    def __enter__(self) -> Shadow:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def copy(self, live: SchemaSnapshot, scope: Scope) -> list[str]:
        """Create the copies; return the kept objects that could not be copied, as "view v (why)"."""
        raise NotImplementedError

    def run(self, sql: str) -> None:
        raise NotImplementedError

    def fill(self, step: KeptStep, live: SchemaSnapshot, diff: Diff) -> Step:
        raise NotImplementedError

    def read(self) -> SchemaSnapshot:
        raise NotImplementedError

    def problems(self, after: SchemaSnapshot, expected: list[str]) -> list[str]:
        """Kept objects (`expected`, "kind name") missing or not working after the plan."""
        raise NotImplementedError

    def postamble_sql(self, sql: str) -> str | None:
        """The form of a statement that runs after the transaction (PostgreSQL: CONCURRENTLY) that can be proven here."""
        return sql


def _kept_keys(live: SchemaSnapshot, scope: Scope, diff: Diff, skipped: list[str]) -> list[str]:
    out = []
    for v in scope.views:
        view: View = live.views[v]
        out.append(f"{'materialized view' if view.materialized else 'view'} {v}")
    for t in scope.triggers:
        trig: Trigger = live.triggers[t]
        if not any(isinstance(c, ch.DropTable) and c.table.lower() == trig.table.lower() for c in diff.changes):
            out.append(f"trigger {t}")
    return [k for k in out if k not in skipped]


def prove(shadow: Shadow, plan: Plan, diff: Diff, live: SchemaSnapshot, target: SchemaSnapshot, scope: Scope) -> Plan:
    """Run `plan` in `shadow`; return it with its kept-object steps filled in and `proof` set.
    Raises PlanningError (with the unproven plan as `.plan`) when a statement fails or the copy does
    not end up as the models say."""
    started = time.monotonic()
    steps: list[Step] = []
    statements = 0
    with shadow:
        skipped = shadow.copy(live, scope)
        for step in plan.steps:
            if isinstance(step, KeptStep):
                step = shadow.fill(step, live, diff)
            for sql in step.statements:
                try:
                    shadow.run(sql)
                except Exception as exc:  # noqa: BLE001 - any failure of the plan's own SQL disproves it
                    err = PlanningError(f"the plan fails on this database, so nothing was run: step '{step.description}' "
                                        f"failed on a schema-only copy in a {shadow.place}: {message(exc)} [{sql}]")
                    err.plan = replace(plan, steps=tuple(steps) + tuple(plan.steps[len(steps):]))
                    raise err from None
                statements += 1
            steps.append(step)
        for sql in plan.postamble:
            proven = shadow.postamble_sql(sql)
            if proven:
                try:
                    shadow.run(proven)
                except Exception as exc:  # noqa: BLE001
                    raise PlanningError(f"the plan fails on this database, so nothing was run: {message(exc)} [{sql}]") from None
        after = shadow.read()
        kept = _kept_keys(live, scope, diff, [s.split(" (", 1)[0] for s in skipped])
        broken = shadow.problems(after, kept)
    done = replace(plan, steps=tuple(steps))
    key = live.names.table
    names = {key(diff.table_renames.get(t, t)) for t in scope.touched
             if not any(isinstance(c, ch.DropTable) and key(c.table) == key(t) for c in diff.changes)}
    names |= {key(c.table) for c in diff.changes if isinstance(c, ch.AddTable)}
    expected = SchemaSnapshot(target.dialect, {t.name: t for t in target.tables.values() if key(t.name) in names}, names=live.names)
    got = SchemaSnapshot(target.dialect, {t.name: t for t in after.tables.values() if key(t.name) in names}, names=live.names)
    rest = diff_snapshots(got, expected)
    if not rest.empty or broken:
        problems = [c.detail for c in rest.changes[:5]] + broken
        err = PlanningError("the plan does not reach the models on a schema-only copy, so nothing was run: "
                            + "; ".join(problems))
        err.plan = done
        raise err
    ms = (time.monotonic() - started) * 1000
    proof = (f"proven: {statements} statement(s) ran on a schema-only copy of {len(scope.tables)} table(s)"
             + (f", {len(kept)} view(s)/trigger(s)" if kept else "") + f" in a {shadow.place} ({ms:.0f} ms); "
             "the copy then matched the models" + (" and every kept view and trigger worked" if kept else ""))
    if skipped:
        proof += "; not checked, as they cannot be made in the copy (broken already, or not by this user): " + ", ".join(skipped)
    return replace(done, proof=proof)
