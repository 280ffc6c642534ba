"""Plan of Steps: dialect SQL per step, its reverse where one exists, and what it costs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field


Resource = tuple  # ("table", t), ("column", t, c), ("key", t, cols), ("type", name), ...: names lower-cased


@dataclass(frozen=True)
class Step:
    """One change's SQL. `provides` and `removes` name the schema objects the step makes (or brings to
    their final form) and takes away; `requires` the objects it needs in their final form, `releases`
    those it needs as they were (a foreign key dropped while the key it references still exists).
    `ordering.order_steps` orders a plan by them."""

    description: str
    statements: tuple[str, ...]
    reverse: tuple[str, ...] | None = None  # None: no reverse (data would be gone); restore a backup instead
    table: str | None = None
    rewrites_table: str | None = None  # live table whose rows this step copies (rebuild / drop column)
    builds_index_on: str | None = None  # live table an index is built over
    provides: frozenset[Resource] = frozenset()
    requires: frozenset[Resource] = frozenset()
    releases: frozenset[Resource] = frozenset()
    removes: frozenset[Resource] = frozenset()


@dataclass(frozen=True)
class Plan:
    dialect: str
    steps: tuple[Step, ...]
    preamble: tuple[str, ...] = ()  # run outside the transaction first (e.g. PRAGMA foreign_keys=OFF)
    begin: tuple[str, ...] = ("BEGIN",)
    checks: tuple[str, ...] = ()  # run before commit; must return no rows (e.g. PRAGMA foreign_key_check)
    commit: tuple[str, ...] = ("COMMIT",)
    postamble: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    tables: tuple[str, ...] = ()  # live tables the plan touches (MySQL: dumped first, restored if a statement fails)
    proof: str | None = None  # how the plan was proven before it runs (None: not proven)
    kept: tuple[str, ...] = ()  # views and triggers the plan sets aside and makes again, as "kind name"
    change_notes: tuple = ()  # (Change, warning) pairs: what a change does to objects beside the models

    @property
    def empty(self) -> bool:
        return not self.steps and not self.postamble

    @property
    def statements(self) -> list[str]:
        return [s for step in self.steps for s in step.statements]

    def full_sql(self) -> list[str]:
        """Everything the executor will run, in order, for preview."""
        if self.empty:
            return []
        return [*self.preamble, *self.begin, *self.statements, *self.checks, *self.commit, *self.postamble]

    def reverse_sql(self) -> list[str]:
        """Statements undoing the plan, or [] when any step has no reverse (then: restore a backup)."""
        if any(step.reverse is None for step in self.steps):
            return []
        return [s for step in reversed(self.steps) for s in step.reverse]

    def checksum(self) -> str:
        return hashlib.sha256(json.dumps(self.full_sql()).encode()).hexdigest()
