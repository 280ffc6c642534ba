"""Classify each change (safe / data_dependent / destructive), check data-dependent ones
against the live data before anything changes, and estimate complexity and downtime.

Downtime formula (documented in README): every table a step rewrites costs
rows x (1 + indexes) x ROW_COST, every index build costs rows x INDEX_COST, and every
statement STATEMENT_COST. Constants were measured on a 2-core machine with SQLite
(1M-row rebuild, bench/rebuild_throughput.py) and are deliberately rounded up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from . import changes as ch
from .dialects.base import Probe, Trial
from .errors import ProbeFailed
from .plan import Plan
from .results import ChangeModel

ROW_COST_S = 2.0e-6
INDEX_COST_S = 1.5e-6
STATEMENT_COST_S = 2.0e-4
LARGE_TABLE_ROWS = 1_000_000
MANY_CHANGES = 25

# Lengths of character and binary strings; TIMESTAMP(6) or FLOAT(24) are not lengths.
_LEN = re.compile(r"^(?P<base>(?:N?VAR)?CHAR|CHARACTER(?: VARYING)?|NATIONAL (?:VAR)?CHAR|(?:VAR)?BINARY|VARBIT|BIT VARYING)"
                  r"\((?P<n>\d+)\)(?P<array>(?:\[\d*\])*)$")  # VARCHAR(10)[]: each element's length

# How a refused destructive change says it can be permitted, in the Python API's terms; the command
# line and the MCP server put their own (`--allow-destructive`, `allow_destructive=true`) in its place.
PERMIT_HINT = "pass allow_destructive=True to permit"


@dataclass(frozen=True)
class ChangeAssessment:
    change: ch.Change
    risk: str
    reason: str
    blocked: bool = False  # the data makes this change impossible (data_dependent) or it needs permission (destructive)
    warnings: tuple[str, ...] = ()

    def model(self) -> ChangeModel:
        return ChangeModel(kind=self.change.kind, table=self.change.table, detail=self.change.detail,
                           risk=self.risk, reason=self.reason, blocked=self.blocked, warnings=list(self.warnings))


@dataclass
class Assessment:
    items: list[ChangeAssessment]
    complexity: str
    estimated_downtime_seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def data_problems(self) -> list[ChangeAssessment]:
        return [a for a in self.items if a.risk == "data_dependent" and a.blocked]

    @property
    def destructive(self) -> list[ChangeAssessment]:
        return [a for a in self.items if a.risk == "destructive"]

    def refusals(self, allow_destructive: bool) -> list[str]:
        out = [f"{a.change.detail}: {a.reason}" for a in self.data_problems]
        if not allow_destructive:
            out += [f"{a.change.detail}: {a.reason} (destructive; {PERMIT_HINT})" for a in self.destructive]
        return out

    def models(self, allow_destructive: bool) -> list[ChangeModel]:
        out = []
        for a in self.items:
            m = a.model()
            m.blocked = a.blocked or (a.risk == "destructive" and not allow_destructive)
            out.append(m)
        return out


def _length(type_: str) -> tuple[str, int] | None:
    m = _LEN.match(type_)
    return (m["base"].strip() + m["array"], int(m["n"])) if m else None


def _verb(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _shown(value: str | None, limit: int = 60) -> str:
    return "NULL" if value is None else "'" + (value if len(value) <= limit else value[: limit - 3] + "...") + "'"


def _failed(c: ch.Change, column: str, target: str, t: Trial) -> ChangeAssessment:
    """Values the server would refuse to convert: the plan's statement would fail on them."""
    count = _plural(t.failed, "value") if t.exact else f"at least {_plural(t.failed, 'value')}"
    example = f"{_shown(t.failed_example)}: " if t.failed_example is not None else ""
    return ChangeAssessment(c, "data_dependent", f"{count} in {c.table}.{column} {_verb(t.failed, 'does', 'do')} not convert "
                                                 f"to {target} (e.g. {example}{t.why})", blocked=True)


def _changed(c: ch.Change, column: str, t: Trial) -> ChangeAssessment:
    """Values the server would convert without a word but store differently: a silent loss."""
    before, after = t.changed_example or (None, None)
    return ChangeAssessment(c, "destructive", f"{_plural(t.changed, 'value')} in {c.table}.{column} would change "
                                              f"(e.g. {_shown(before)} would become {_shown(after)})")


def _collation(options: tuple[str, ...]) -> str | None:
    return next((o.split(" ", 1)[1] for o in options if o.startswith("COLLATE ")), None)


def assess_or_refuse(c: ch.Change, probe: Probe, rows: dict[str, int]) -> ChangeAssessment:
    """`assess_change`, with a check the server could not run turned into a refusal that says why:
    a change is never promised on a check that did not happen."""
    try:
        return assess_change(c, probe, rows)
    except ProbeFailed as exc:
        return ChangeAssessment(c, "data_dependent", f"the live data could not be checked for this change: {exc}", blocked=True)


def assess_change(c: ch.Change, probe: Probe, rows: dict[str, int]) -> ChangeAssessment:
    def n_rows(table: str) -> int:
        if table not in rows:
            rows[table] = probe.row_count(table)
        return rows[table]

    if isinstance(c, ch.AddTable):
        return ChangeAssessment(c, "safe", "creates a new, empty table")
    if isinstance(c, ch.AlterColumnComment):
        return ChangeAssessment(c, "safe", "a comment; nothing stored changes")
    if isinstance(c, ch.AddSequence):
        return ChangeAssessment(c, "safe", "a new sequence; nothing stored changes")
    if isinstance(c, (ch.AddEnumType, ch.AlterEnumType, ch.DropEnumType)):
        return ChangeAssessment(c, "safe", "a type's definition; the columns that use it are checked on their own")
    if isinstance(c, ch.AlterColumnGenerated) and c.old.generated is None:
        n = n_rows(c.table)
        return ChangeAssessment(c, "destructive", f"the values stored in {c.table}.{c.column} ({_plural(n, 'row')}) are replaced "
                                                  "by computed ones")
    if isinstance(c, ch.AlterColumnGenerated) and c.new.generated is None:
        return ChangeAssessment(c, "safe", "the column keeps its current values and is no longer computed")
    if isinstance(c, ch.AlterColumnGenerated):
        return ChangeAssessment(c, "safe", "every row's value is computed again from the new expression")
    if isinstance(c, (ch.RenameTable, ch.RenameColumn, ch.AlterColumnDefault, ch.AlterTableComment,
                      ch.AlterColumnComment, ch.DropForeignKey, ch.DropUniqueConstraint, ch.DropCheckConstraint)):
        return ChangeAssessment(c, "safe", "schema-only change; no stored value is altered or removed")
    if isinstance(c, ch.DropIndex):
        return ChangeAssessment(c, "safe", "removes an index, not data (queries using it may slow down)")
    if isinstance(c, ch.AddIndex) and not c.index.unique:
        return ChangeAssessment(c, "safe", f"builds an index over {_plural(n_rows(c.table), 'row')}")
    if isinstance(c, ch.DropTable):
        n = n_rows(c.table)
        return ChangeAssessment(c, "destructive", f"drops the table and its {_plural(n, 'row')}", blocked=False)
    if isinstance(c, ch.DropColumn):
        n = n_rows(c.table)
        return ChangeAssessment(c, "destructive", f"drops the column's values in {_plural(n, 'row')}")
    if isinstance(c, ch.AddColumn):
        col = c.column
        if col.nullable or col.default is not None or col.generated is not None:
            return ChangeAssessment(c, "safe", "new column is nullable or has a default")
        n = n_rows(c.table)
        if n:
            return ChangeAssessment(c, "data_dependent",
                                    f"NOT NULL without a default, but the table has {_plural(n, 'row')} that would have no value; "
                                    "add a server default or make it nullable", blocked=True)
        return ChangeAssessment(c, "data_dependent", "NOT NULL without a default: checked, the table is empty")
    if isinstance(c, ch.AlterColumnNullable):
        if c.new.nullable:
            return ChangeAssessment(c, "safe", "relaxes NOT NULL")
        n = probe.null_count(c.table, c.column)
        if n:
            return ChangeAssessment(c, "data_dependent", f"{_plural(n, 'row')} {_verb(n, 'holds', 'hold')} NULL in {c.table}.{c.column}",
                                    blocked=True)
        return ChangeAssessment(c, "data_dependent", "checked: no NULL values")
    if isinstance(c, ch.AlterColumnType):
        old_len, new_len = _length(c.old.type), _length(c.new.type)
        if old_len and new_len and old_len[0] == new_len[0]:
            if new_len[1] >= old_len[1]:
                return ChangeAssessment(c, "safe", "widens the column")
            n = probe.too_long_count(c.table, c.column, new_len[1])
            if n:
                return ChangeAssessment(c, "data_dependent", f"{_plural(n, 'value')} in {c.table}.{c.column} {_verb(n, 'is', 'are')} longer "
                                                             f"than {new_len[1]} characters", blocked=True)
            return ChangeAssessment(c, "data_dependent", f"narrows the column; checked: every value fits {new_len[1]} characters")
        n = probe.unconvertible_count(c.table, c.column, c.old.type, c.new.type)
        if n:
            return ChangeAssessment(c, "data_dependent", f"{_plural(n, 'value')} in {c.table}.{c.column} {_verb(n, 'does', 'do')} not convert to {c.new.type}", blocked=True)
        if new_len:
            m = probe.too_long_count(c.table, c.column, new_len[1])
            if m:
                return ChangeAssessment(c, "data_dependent", f"{_plural(m, 'value')} in {c.table}.{c.column} {_verb(m, 'is', 'are')} longer "
                                                             f"than {new_len[1]} characters", blocked=True)
        trial = probe.conversion_trial(c.table, c.column, c.old.type, c.new.type)
        if trial and trial.failed:
            return _failed(c, c.column, c.new.type, trial)
        lossy = probe.lossy_count(c.table, c.column, c.old.type, c.new.type)
        if lossy and lossy[0]:
            return ChangeAssessment(c, "destructive", f"{_plural(lossy[0], 'value')} in {c.table}.{c.column} would be {lossy[1]}")
        if trial and trial.changed:  # what the counts above do not look for (an ENUM's label, a CHAR's spaces)
            return _changed(c, c.column, trial)
        clash = probe.key_duplicates_after(c.table, c.column, c.new.type, None)
        if clash:
            return ChangeAssessment(c, "data_dependent", f"{_plural(clash[0], 'value')} of unique key ({', '.join(clash[1])}) in "
                                                         f"{c.table} would collide once converted to {c.new.type}", blocked=True)
        return ChangeAssessment(c, "data_dependent", f"checked: every value converts to {c.new.type}")
    if isinstance(c, ch.AlterColumnCollation):
        clash = probe.key_duplicates_after(c.table, c.column, None, c.new.collation)
        if clash:
            return ChangeAssessment(c, "data_dependent", f"{_plural(clash[0], 'value')} of unique key ({', '.join(clash[1])}) in "
                                                         f"{c.table} would collide under "
                                                         f"{'collation ' + c.new.collation if c.new.collation else 'the default collation'}",
                                    blocked=True)
        return ChangeAssessment(c, "safe", "changes how values compare and sort, not the values")
    if isinstance(c, (ch.AddUniqueConstraint, ch.AddIndex)):
        cols = c.constraint.columns if isinstance(c, ch.AddUniqueConstraint) else c.index.columns
        if any(x is None for x in cols):
            return ChangeAssessment(c, "data_dependent", "unique over an expression: checked when the index is built")
        n = probe.duplicate_count(c.table, tuple(cols))
        if n:
            return ChangeAssessment(c, "data_dependent", f"{_plural(n, 'value')} of ({', '.join(cols)}) {_verb(n, 'appears', 'appear')} more than once in {c.table}", blocked=True)
        return ChangeAssessment(c, "data_dependent", "checked: no duplicates")
    if isinstance(c, ch.AddCheckConstraint):
        n = probe.check_violation_count(c.table, c.constraint.expression)
        if n is None:
            return ChangeAssessment(c, "data_dependent", "cannot be checked in advance; enforced as rows are copied (a violation rolls back)")
        if n:
            return ChangeAssessment(c, "data_dependent", f"{_plural(n, 'row')} in {c.table} {_verb(n, 'violates', 'violate')} CHECK ({c.constraint.expression})", blocked=True)
        return ChangeAssessment(c, "data_dependent", "checked: every row satisfies the constraint")
    if isinstance(c, ch.AddForeignKey):
        fk = c.fk
        n = probe.orphan_count(c.table, fk.columns, fk.ref_table, fk.ref_columns)
        if n:
            return ChangeAssessment(c, "data_dependent", f"{_plural(n, 'row')} in {c.table} {_verb(n, 'references', 'reference')} missing {fk.ref_table} rows", blocked=True)
        return ChangeAssessment(c, "data_dependent", "checked: every row's reference exists")
    if isinstance(c, ch.AlterPrimaryKey):
        if c.new is None:
            return ChangeAssessment(c, "safe", "removes the primary key constraint, not data")
        cols = c.new.columns
        nulls = sum(probe.null_count(c.table, col) for col in cols if not (c.old and col in c.old.columns))
        dups = probe.duplicate_count(c.table, cols)
        if nulls or dups:
            return ChangeAssessment(c, "data_dependent", f"new primary key ({', '.join(cols)}) has {_plural(dups, 'duplicate value')} and {_plural(nulls, 'NULL')}", blocked=True)
        return ChangeAssessment(c, "data_dependent", "checked: new key values are unique and not NULL")
    if isinstance(c, ch.AlterTableOptions) and _collation(c.old) != _collation(c.new):
        problems, clash = probe.collation_change(c.table, _collation(c.new))
        under = f"collation {_collation(c.new)}" if _collation(c.new) else "the database's default collation"
        for column, t in problems:
            if t.failed:
                return _failed(c, column, under, t)
        if clash:
            return ChangeAssessment(c, "data_dependent", f"{_plural(clash[0], 'value')} of unique key ({', '.join(clash[1])}) in {c.table} "
                                                         f"would collide under {under}", blocked=True)
        changed = [(column, t) for column, t in problems if t.changed]
        if changed:
            return _changed(c, changed[0][0], changed[0][1])
        return ChangeAssessment(c, "data_dependent", f"checked: every text value converts and no unique key collides under {under}")
    if isinstance(c, ch.AlterTableOptions):
        return ChangeAssessment(c, "data_dependent", "stricter storage rules are enforced as rows are copied; a violation rolls back")
    return ChangeAssessment(c, "data_dependent", "unclassified change; verified during execution")


def assess(changes: list[ch.Change], probe: Probe, plan: Plan | None, fills: dict | None = None, live=None) -> Assessment:
    """`fills`: the resolved data fills and conversions (fills.resolve); each change is re-checked with them,
    and warns of the triggers its UPDATE fires (`live`: the live snapshot)."""
    from .fillcheck import trigger_warnings
    from .fills import reassess

    rows: dict[str, int] = {}
    items = [reassess(assess_or_refuse(c, probe, rows), probe, fills or {}, rows) for c in changes]
    if plan is not None and plan.change_notes:
        items = [replace(a, warnings=tuple(note for c, note in plan.change_notes if c is a.change or c == a.change)) for a in items]
    fired: list[str] = []  # also among the plan's warnings, which every output shows
    if fills:
        items = [replace(a, warnings=(*a.warnings, *trigger_warnings(a, plan, live, fills))) for a in items]
        fired = [w for a in items for w in trigger_warnings(a, plan, live, fills)]
    downtime = 0.0
    rewritten_rows = 0
    if plan is not None:
        for step in plan.steps:
            downtime += STATEMENT_COST_S * len(step.statements)
            if step.rewrites_table:
                n = rows.setdefault(step.rewrites_table, probe.row_count(step.rewrites_table))
                n_idx = sum(1 for s in step.statements if s.lstrip().upper().startswith(("CREATE INDEX", "CREATE UNIQUE INDEX")))
                downtime += n * ROW_COST_S + n * n_idx * INDEX_COST_S
                rewritten_rows += n
            if step.builds_index_on:
                n = rows.setdefault(step.builds_index_on, probe.row_count(step.builds_index_on))
                downtime += n * INDEX_COST_S
    if not changes:
        complexity = "NONE"
    elif any(a.risk == "destructive" for a in items) or rewritten_rows >= LARGE_TABLE_ROWS or len(changes) > MANY_CHANGES:
        complexity = "COMPLEX"
    elif rewritten_rows or any(a.risk == "data_dependent" for a in items):
        complexity = "MODERATE"
    else:
        complexity = "SIMPLE"
    warnings = [*(plan.notes if plan else ()), *fired]
    return Assessment(items, complexity, round(downtime, 3), warnings)
