"""What the pipeline needs from a database dialect; one implementation per dialect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from sqlalchemy import MetaData

from ..diff import Diff
from ..plan import Plan
from ..snapshot import SchemaSnapshot

Progress = Callable[[float, float | None, str], None]


@dataclass(frozen=True)
class Trial:
    """What converting a column's live values the way the plan will does to them, found by doing it
    on a copy (MariaDB) or in a query (PostgreSQL). `failed`: values the server refuses (the plan's
    statement would fail); `changed`: values it accepts but stores differently (a silent loss).
    Examples are the values' text, `why` the server's own words."""

    failed: int = 0
    failed_example: str | None = None
    why: str | None = None
    exact: bool = True  # False: `failed` is a lower bound (only the first failure could be seen)
    changed: int = 0
    changed_example: tuple[str, str] | None = None  # (value before, value after)


class Probe(Protocol):
    """Counts over live data, addressed by target names (renames already mapped)."""

    def row_count(self, table: str) -> int: ...
    def null_count(self, table: str, column: str) -> int: ...
    def duplicate_count(self, table: str, columns: tuple[str, ...]) -> int: ...
    def unconvertible_count(self, table: str, column: str, old_type: str, new_type: str) -> int | None: ...
    def lossy_count(self, table: str, column: str, old_type: str, new_type: str) -> tuple[int, str] | None:
        """(values the conversion would alter, how): rounding, lost precision, a dropped time."""
        ...
    def too_long_count(self, table: str, column: str, max_length: int) -> int: ...
    def orphan_count(self, table: str, columns: tuple[str, ...], ref_table: str, ref_columns: tuple[str, ...]) -> int: ...
    def check_violation_count(self, table: str, expression: str) -> int | None: ...  # None: cannot be checked ahead
    def conversion_trial(self, table: str, column: str, old_type: str, new_type: str) -> Trial | None:
        """The values the conversion refuses or alters (None: nothing more to check than the counts above)."""
        ...
    def collation_change(self, table: str, collation: str | None) -> tuple[list[tuple[str, Trial]], tuple[int, tuple] | None]:
        """(columns whose values a new table collation refuses or alters, a unique key that would collide)."""
        ...
    def key_duplicates_after(self, table: str, column: str, new_type: str | None, collation: str | None) -> tuple[int, tuple] | None:
        """(rows of a unique key of the models over `column` that would collide once it has `new_type` or
        compares by `collation` ('1' and '01' as INTEGER; 'a' and 'A' case-insensitively), that key);
        None when nothing collides or it cannot be checked ahead."""
        ...


class Dialect(Protocol):
    name: str
    history_flavor: Any  # history.HistoryFlavor: the audit table's SQL spellings

    def database_exists(self) -> bool: ...
    def connect(self, *, write: bool) -> Any: ...
    def read_live(self, conn: Any) -> SchemaSnapshot: ...
    def normalize_target(self, metadata: MetaData) -> SchemaSnapshot: ...
    def make_plan(self, conn: Any, live: SchemaSnapshot, target: SchemaSnapshot, diff: Diff,
                  metadata: MetaData) -> Plan:
        """`metadata` is the comparator's loaded models: server planners render DDL from it."""
        ...
    def probe(self, conn: Any, diff: Diff, live: SchemaSnapshot, target: SchemaSnapshot) -> Probe: ...
    def lock(self, timeout_ms: int) -> Any: ...
    def backup_engine(self) -> Any: ...
    def run_plan(self, conn: Any, plan: Plan, *, deadline: float, verify: Callable[[Any], None],
                 before_commit: Callable[[Any], None], progress: Progress | None,
                 checkpoint: Callable[[Any, int], None] | None = None, run_id: str | None = None) -> int:
        """Run the plan; `checkpoint(conn, n)` is called after the n-th statement when statements
        commit one by one (MySQL), so the history says exactly where a failure stopped; `run_id` (the
        history row's id) names what such a run leaves for `recover`."""
        ...
    def recover(self, conn: Any, history: Any) -> list[str]:
        """Undo what a run killed mid-plan left half-done (MySQL: restore from the run's dump), before
        anything else under the lock; returns notes of what was done, raises RecoveryError if it cannot."""
        ...
    def pending_undo(self, conn: Any, history: Any) -> list[str]:
        """Ids of the killed runs that `recover` would undo (read-only): those that may have left the
        database half-migrated. Empty where a killed run's transaction is rolled back by the database."""
        ...
    def integrity_check(self, conn: Any) -> str | None: ...
    def kept_object_problems(self, conn: Any) -> list[str]:
        """Views and triggers beside the models that no longer work, named with why (health)."""
        ...
    def storage_check(self, conn: Any) -> str | None:
        """Damage that makes any write unsafe (a corrupt SQLite file), as a message; checked before the
        first write of a migrate, and by status when changes are pending."""
        ...
