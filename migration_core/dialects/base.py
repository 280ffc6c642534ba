"""What the pipeline needs from a database dialect; one implementation per dialect."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from sqlalchemy import MetaData

from ..diff import Diff
from ..plan import Plan
from ..snapshot import SchemaSnapshot

Progress = Callable[[float, float | None, str], None]


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
                 checkpoint: Callable[[Any, int], None] | None = None) -> int:
        """Run the plan; `checkpoint(conn, n)` is called after the n-th statement when statements
        commit one by one (MySQL), so the history says exactly where a failure stopped."""
        ...
    def integrity_check(self, conn: Any) -> str | None: ...


def get_dialect(settings) -> Dialect:
    from ..errors import ConfigurationError
    from ..urls import parse_url

    url = parse_url(settings.database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        from .sqlite.dialect import SqliteDialect

        return SqliteDialect(settings)
    if backend == "postgresql":
        from .postgresql.dialect import PostgresDialect

        return PostgresDialect(settings)
    if backend in ("mysql", "mariadb"):
        from .mysql.dialect import MysqlDialect

        return MysqlDialect(settings)
    raise ConfigurationError(
        f"database backend {backend!r} is not supported; supported: sqlite, postgresql, mysql/mariadb"
    )
