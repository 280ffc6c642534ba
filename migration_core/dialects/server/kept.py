"""Views and triggers beside the models' tables: what a plan does to them, so that none is lost.

A change that the engine refuses while a view or trigger depends on what it changes (PostgreSQL:
a column's type under a view, or in a trigger's `WHEN`/`UPDATE OF`; MariaDB: any rename, which it
does not follow) sets those objects aside before it and makes them again after it, with views on
those views, in dependency order. A change that removes what an object uses (a dropped column or
table) cannot be followed: the plan is refused with the object named. Which changes disturb what
is each dialect's `KeptRules`; this module applies them the same way on both servers.

The set-aside and restore steps are `KeptStep`s: their SQL is completed by the dialect's proof,
which runs the plan on a schema-only copy first (PostgreSQL reads the definitions there after the
renames it followed; MariaDB rewrites the saved definitions for the renames).
"""

from __future__ import annotations

import re

from dataclasses import dataclass, replace

from ... import changes as ch
from ...diff import Diff
from ...errors import PlanningError
from ...plan import Plan, Step
from ...snapshot import Dependency, SchemaSnapshot, Trigger, View


@dataclass(frozen=True)
class KeptStep(Step):
    """Sets kept objects aside (`action` "set_aside": drops, dependants first) or makes them again
    ("restore": in dependency order); `objects` are "view name" / "materialized view name" /
    "trigger name" in that order. The proof fills in `statements`."""

    action: str = "set_aside"
    objects: tuple[str, ...] = ()


class KeptRules:
    """Per dialect: which (relation, column) dependencies a change disturbs (the object must be set
    aside and made again) and which it removes (the object cannot survive). Names are live ones."""

    set_aside_before_renames = True  # MariaDB: renames break what names them; PostgreSQL follows them

    def disturbs(self, c: ch.Change, diff: Diff, live: SchemaSnapshot) -> set[Dependency]:
        return set()

    def rewrites(self, diff: Diff, live: SchemaSnapshot) -> list[Step]:
        """Steps that make kept routines follow the plan's renames (PostgreSQL trigger functions)."""
        return []

    def removed_by_routines(self, c: ch.Change, diff: Diff, live: SchemaSnapshot) -> list[str]:
        """Routines whose bodies use what `c` removes, as "function f uses ..." (PostgreSQL)."""
        return []

    def touches(self, obj: View | Trigger, dep: Dependency, hit: Dependency) -> bool:
        """Beyond an exact match: does changing or removing `hit` reach `obj` through its dependency `dep`?"""
        return False

    def rewrite_problems(self, key: str, obj: View | Trigger, diff: Diff, live: SchemaSnapshot) -> list[str]:
        """Why `obj`, set aside by this plan, cannot be made again to follow its renames with certainty."""
        return []


def _matches(dep: Dependency, hit: Dependency) -> bool:
    """`hit` (relation, column or None for the whole relation) touches dependency `dep`."""
    return dep[0].lower() == hit[0].lower() and (hit[1] is None or (dep[1] or "").lower() == hit[1].lower())


_STRING = re.compile(r"'(?:[^'\\]|\\.|'')*'")
_DOLLAR = re.compile(r"\$[A-Za-z_]*\$")  # PostgreSQL's dollar quotes around a body
_WORD = re.compile(r'"(?:[^"]|"")+"|`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_$]*')


def code_words(text: str) -> set[str]:
    """Lower-cased names a body of code uses, outside string literals, quotes taken off."""
    text = _DOLLAR.sub(" ", _STRING.sub(" ", text))
    return {w[1:-1].replace(w[0] * 2, w[0]).lower() if w[0] in "\"`" else w.lower() for w in _WORD.findall(text)}


def code_uses(c: ch.Change, diff: Diff, live: SchemaSnapshot) -> list[str]:
    """Routines, events and other databases' views (`SchemaSnapshot.code`) whose text names what `c`
    drops or renames: the server keeps such a body as text and only fails when it runs, so the plan is
    refused up front with the object named. A table counts when its name is a word of the body; a
    column when the body names both it and its table (a name in a string, or another table's column
    of the same name, may make a refusal that was not needed: never a silent break)."""
    if isinstance(c, ch.DropTable):
        what, table, column = "drops", c.table, None
    elif isinstance(c, ch.RenameTable):
        what, table, column = "renames", c.old_name, None
    elif isinstance(c, ch.DropColumn):
        what, table, column = "drops", diff.live_table(c.table), c.column.name
    elif isinstance(c, ch.RenameColumn):
        what, table, column = "renames", diff.live_table(c.table), c.old_name
    else:
        return []
    out = []
    for key, text in live.code:
        words = code_words(text)
        if table.lower() in words and (column is None or column.lower() in words):
            out.append(f"{key} names {table}{'.' + column if column else ''}, which this plan {what} ({c.detail}); "
                       "its body is text the database does not follow")
    return out


def removed(c: ch.Change, diff: Diff) -> set[Dependency]:
    """What a change takes away for good, by live names."""
    if isinstance(c, ch.DropColumn):
        return {(diff.live_table(c.table), c.column.name)}
    if isinstance(c, ch.DropTable):
        return {(c.table, None)}
    return set()


def _objects(live: SchemaSnapshot) -> dict[str, View | Trigger]:
    out: dict[str, View | Trigger] = {}
    for v in live.views.values():
        out[f"{'materialized view' if v.materialized else 'view'} {v.name}"] = v
    for t in live.triggers.values():
        out[f"trigger {t.name}"] = t
    return out


def _closure(seed: set[str], objects: dict[str, View | Trigger]) -> set[str]:
    """`seed` plus the views (and triggers on views) that depend on any of them, transitively."""
    picked = set(seed)
    while True:
        names = {objects[k].name.lower() for k in picked if isinstance(objects[k], View)}
        more = {k for k, o in objects.items() if k not in picked and (
            any(d[0].lower() in names for d in o.depends) if isinstance(o, View) else o.table.lower() in names)}
        if not more:
            return picked
        picked |= more


def dependency_order(keys: set[str], objects: dict[str, View | Trigger]) -> list[str]:
    """Creation order: a view after the views it reads; triggers after every view; ties by catalog order."""
    order = list(objects)
    views = [k for k in order if k in keys and isinstance(objects[k], View)]
    by_name = {objects[k].name.lower(): k for k in views}
    out: list[str] = []
    seen: set[str] = set()

    def visit(k: str, stack: tuple = ()) -> None:
        if k in seen or k in stack:
            return
        for dep, _col in objects[k].depends:
            if dep.lower() in by_name:
                visit(by_name[dep.lower()], stack + (k,))
        seen.add(k)
        out.append(k)

    for k in views:
        visit(k)
    out += [k for k in order if k in keys and isinstance(objects[k], Trigger)]
    return out


def plan_kept_objects(plan: Plan, diff: Diff, live: SchemaSnapshot, rules: KeptRules) -> tuple[Plan, list[tuple[ch.Change, str]]]:
    """The plan with set-aside / restore steps around what it disturbs, and a warning per change that
    touches a kept object. Raises PlanningError when a change removes what an object uses."""
    objects = _objects(live)
    if not objects and not live.routines and not live.outside and not live.code:
        return plan, []
    notes: list[tuple[ch.Change, str]] = []
    broken: list[str] = []
    disturbed: set[str] = set()
    for c in diff.changes:
        gone = removed(c, diff)
        for key, obj in objects.items():
            if isinstance(obj, Trigger) and isinstance(c, ch.DropTable) and obj.table.lower() == c.table.lower():
                continue  # a table's own triggers go with it
            used = [d for d in obj.depends if any(_matches(d, g) or rules.touches(obj, d, g) for g in gone)]
            if used:
                what = ", ".join(f"{d[0]}.{d[1]}" if d[1] else d[0] for d in used)
                broken.append(f"{key} uses {what}, which this plan drops ({c.detail})")
        broken += rules.removed_by_routines(c, diff, live)
        broken += code_uses(c, diff, live)
        hits = rules.disturbs(c, diff, live)
        mine = {key for key, obj in objects.items()
                if any(_matches(d, h) or rules.touches(obj, d, h) for d in obj.depends for h in hits)}
        if mine:
            mine = _closure(mine, objects)
            disturbed |= mine
            notes.append((c, "sets aside and makes again " + ", ".join(dependency_order(mine, objects))))
        if isinstance(c, ch.AlterColumnType):
            readers = _closure({k for k, o in objects.items() if isinstance(o, View)
                                and (diff.live_table(c.table).lower(), diff.live_column(c.table, c.column).lower())
                                in {(d[0].lower(), (d[1] or "").lower()) for d in o.depends}}, objects)
            for key in sorted(k for k in readers if isinstance(objects[k], View)):
                notes.append((c, f"{key} reads {c.table}.{c.column}: what it returns changes type ({c.old.type} -> {c.new.type})"))
    broken += [p for key in sorted(disturbed) for p in rules.rewrite_problems(key, objects[key], diff, live)]
    outside = _outside_problems(plan, diff, live, rules, disturbed, objects)
    if broken or outside:
        parts = (["the plan would break objects beside the models: " + "; ".join(broken)] if broken else []) + \
                (["the plan changes what objects the tool does not keep (it cannot set them aside and make them again) "
                  "depend on: " + "; ".join(outside)] if outside else [])
        raise PlanningError("; ".join(parts) + "; change or drop them first")
    extra = rules.rewrites(diff, live)
    if not disturbed and not extra:
        return replace(plan), notes
    disturbed = _group_triggers(disturbed, objects)
    order = dependency_order(disturbed, objects)
    aside = KeptStep("set aside " + ", ".join(order) + " (made again after the changes)", (), None, None,
                     action="set_aside", objects=tuple(reversed(order)))
    back = KeptStep("make again " + ", ".join(order), (), None, None, action="restore", objects=tuple(order))
    steps = list(plan.steps)
    renames = 0
    while renames < len(steps) and steps[renames].description.startswith(("rename table", "rename column")):
        renames += 1
    head, tail = steps[:renames], steps[renames:]
    if order:
        head = [aside, *head] if rules.set_aside_before_renames else [*head, aside]
        tail = [*tail, back]
    steps = [*head, *extra, *tail]
    return replace(plan, steps=tuple(steps), kept=tuple(order)), notes


def _outside_problems(plan: Plan, diff: Diff, live: SchemaSnapshot, rules: KeptRules, disturbed: set[str],
                      objects: dict[str, View | Trigger]) -> list[str]:
    """Objects the tool does not keep (`SchemaSnapshot.outside`) cannot be set aside: a change under
    one, or a view it reads that the plan sets aside, refuses the plan with the object named."""
    out = []
    aside = {objects[k].name.lower() for k in disturbed if isinstance(objects[k], View)}
    for what, ref, column in live.outside:
        dep = (ref, column)
        for c in diff.changes:
            hits = rules.disturbs(c, diff, live) | removed(c, diff)
            if any(_matches(dep, h) for h in hits):
                out.append(f"{what} depends on {ref}{'.' + column if column else ''} ({c.detail})")
                break
        else:
            if ref.lower() in aside:
                out.append(f"{what} depends on view {ref}, which the plan must set aside and make again")
    return out


def _group_triggers(keys: set[str], objects: dict[str, View | Trigger]) -> set[str]:
    """A set-aside trigger takes the others of its table, timing and event along, so that made again
    they fire in their old order (a new trigger fires after the existing ones)."""
    out = set(keys)
    for key in keys:
        obj = objects[key]
        if isinstance(obj, Trigger):
            head = _timing(obj)
            out |= {k for k, o in objects.items() if isinstance(o, Trigger) and o.table.lower() == obj.table.lower()
                    and _timing(o) == head}
    return out


def _timing(t: Trigger) -> str:
    words = t.sql.upper().split(" ON ", 1)[0].split()
    return " ".join(w for w in words if w in ("BEFORE", "AFTER", "INSTEAD", "INSERT", "UPDATE", "DELETE", "OR"))
