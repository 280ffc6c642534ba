"""AutoMigrationSystem: the facade that the CLI, the MCP server and applications call."""

from __future__ import annotations

import logging

from .backup import BackupManager
from .comparator import Comparison, SchemaComparator
from .dialects.base import Progress
from .dialects.factory import get_dialect
from .errors import ConfigurationError, SafetyRefusal
from .history import MigrationHistoryManager
from .manager import MigrationManager
from .results import (BackupListResult, HealthResult, HistoryEntry, MigrateResult, PreviewResult, RollbackPreview, RollbackResult,
                      StatusResult)
from .rowcount import backup_row_counter, live_row_counts, row_changes, sqlite_file_row_counts
from .settings import MigrationSettings

log = logging.getLogger("migration_core")


class AutoMigrationSystem:
    def __init__(self, settings: MigrationSettings | None = None, **overrides):
        self.startup_result: MigrateResult | None = None
        if settings is None:
            settings = MigrationSettings(**overrides)
        elif overrides:
            settings = MigrationSettings(**{**settings.model_dump(), **overrides})
        self._build(settings)

    def _build(self, settings: MigrationSettings) -> None:
        self.settings = settings
        self.dialect = get_dialect(settings)
        self.comparator = SchemaComparator(settings, self.dialect)
        self.history = MigrationHistoryManager(self.dialect.history_flavor)
        self.backups = BackupManager(settings, self.dialect.backup_engine(), row_counter=backup_row_counter(self.dialect))
        self.manager = MigrationManager(settings, self.dialect, self.comparator, self.history, self.backups)

    def configure(self, **options) -> MigrationSettings:
        """Change settings (validated); the target is re-read only if `models` changed."""
        merged = self.settings.model_dump()
        merged.update(options)
        new = MigrationSettings(**merged)
        comparator = self.comparator
        self._build(new)
        if new.models == comparator.settings.models:
            self.comparator._metadata, self.comparator._target = comparator._metadata, comparator._target
        return new

    # -- read-only -----------------------------------------------------------------------
    def _compare(self, renames: list[str] | None) -> tuple[Comparison, list[HistoryEntry]]:
        """The comparison and the last history row on one read connection: a second connect would cost
        more than the queries (20-40 ms on MariaDB, whose server resolves each client's host)."""
        conn = self.dialect.connect(write=False)
        try:
            comparison = self.comparator.compare_schemas(conn, renames=renames)
            return comparison, self.history.get_migration_history(conn, 1) if conn is not None else []
        finally:
            if conn is not None:
                conn.close()

    def _status_fields(self, comparison: Comparison, history: list[HistoryEntry] | None = None) -> dict:
        s = self.settings
        warnings = list(comparison.assessment.warnings)
        if not comparison.database_exists:
            warnings.insert(0, "the database file does not exist yet; migrate will create it")
        if comparison.planning_error:
            warnings.append(comparison.planning_error)
        history = self.manager.get_migration_history(1) if history is None else history
        pending = self.manager.unfinished_note(history[0]) if history else None
        if pending:
            warnings.insert(0, pending)
        damage = self.manager.storage_problem() if comparison.migration_needed else None
        if damage:
            warnings.insert(0, damage + "; migrate refuses to write to it")
        return dict(
            database=s.masked_url,
            migration_needed=comparison.migration_needed,
            changes=comparison.assessment.models(s.allow_destructive),
            complexity=comparison.assessment.complexity,
            estimated_downtime_seconds=comparison.assessment.estimated_downtime_seconds,
            warnings=warnings,
            safe_to_apply=not comparison.refusals(s.allow_destructive) and not damage,
            plan_proven=None if not comparison.migration_needed else bool(
                comparison.plan is not None and comparison.plan.proof and not comparison.planning_error),
            proof=None if not comparison.migration_needed else (comparison.planning_error or (comparison.plan.proof if comparison.plan else None)),
            last_migration=history[0] if history else None,
            startup_migration=self.startup_result,
        )

    def _reported_status(self, comparison: Comparison, history: list[HistoryEntry] | None = None) -> dict:
        """The status fields; in read-only mode nothing pending can be applied, and the status says so."""
        fields = self._status_fields(comparison, history)
        if self.settings.read_only and comparison.migration_needed:
            fields["safe_to_apply"] = False
            fields["warnings"].append("read-only mode: the pending changes are reported, not applied (migrate is refused)")
        return fields

    def check_migration_status(self, *, renames: list[str] | None = None) -> StatusResult:
        return StatusResult(**self._reported_status(*self._compare(renames)))

    def preview_diff(self, *, renames: list[str] | None = None) -> PreviewResult:
        comparison, history = self._compare(renames)
        plan = comparison.plan
        return PreviewResult(**self._reported_status(comparison, history), sql=plan.full_sql() if plan else [],
                             reverse_sql=plan.reverse_sql() if plan else [])

    def list_backups(self) -> BackupListResult:
        return BackupListResult(backup_dir=str(self.settings.resolved_backup_dir()), backups=self.backups.list_backups())

    def get_system_health(self) -> HealthResult:
        from .health import run_health_checks  # not on the status path

        return run_health_checks(self)

    def get_migration_history(self, limit: int = 20) -> list[HistoryEntry]:
        return self.manager.get_migration_history(limit)

    def get_migration_statistics(self):
        conn = self.dialect.connect(write=False)
        try:
            return self.history.get_migration_statistics(conn)
        finally:
            if conn is not None:
                conn.close()

    def rollback_preview(self, backup_id: str | None = None) -> RollbackPreview:
        """What `rollback_last_migration(backup_id)` would restore and how each table's row count
        would change; changes nothing. Raises MigrationError when there is nothing to roll back,
        InvalidBackupId / BackupError for a malformed or unknown backup id."""
        backup, entry = self.rollback_target(backup_id)
        warnings = []
        in_backup = backup.table_rows
        if in_backup is None and self.dialect.name == "sqlite":
            in_backup = sqlite_file_row_counts(backup.path)  # a backup from before counts were kept
        if in_backup is None:
            warnings.append(f"backup {backup.id} does not record its row counts (it predates them): "
                            "rows after the restore are unknown")
        tables = row_changes(live_row_counts(self.dialect), in_backup)
        known = [t.change for t in tables if t.change is not None]
        lost = -sum(c for c in known if c < 0) if in_backup is not None else None
        gained = sum(c for c in known if c > 0) if in_backup is not None else None
        return RollbackPreview(database=self.settings.masked_url, backup=backup, undoes_migration=entry, tables=tables,
                               rows_lost=lost, rows_gained=gained, warnings=warnings)

    # -- changing ------------------------------------------------------------------------
    def _refuse_if_read_only(self, what: str) -> None:
        if self.settings.read_only:
            raise SafetyRefusal(f"{what} refused: read-only mode is on (setting read_only, MIGRATION_READ_ONLY); nothing was changed")

    def execute_auto_migration(self, *, dry_run: bool | None = None, allow_destructive: bool | None = None,
                               create_backup: bool | None = None, timeout_ms: int | None = None,
                               renames: list[str] | None = None, progress: Progress | None = None) -> MigrateResult:
        s = self.settings
        if not (s.dry_run if dry_run is None else dry_run):
            self._refuse_if_read_only("migrate")
        if timeout_ms is not None and (isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms <= 0):
            raise ConfigurationError(f"timeout_ms must be a positive number of milliseconds, got {timeout_ms!r}")
        return self.manager.execute_migrations(
            dry_run=s.dry_run if dry_run is None else dry_run,
            allow_destructive=s.allow_destructive if allow_destructive is None else allow_destructive,
            create_backup=s.auto_backup if create_backup is None else create_backup,
            timeout_ms=s.max_execution_time_ms if timeout_ms is None else timeout_ms,
            renames=renames, progress=progress,
        )

    def rollback_target(self, backup_id: str | None = None):
        """(BackupInfo, HistoryEntry | None) that `rollback_last_migration(backup_id)` would restore;
        raises MigrationError when there is nothing to roll back. Changes nothing."""
        return self.manager.rollback_target(backup_id)

    def rollback_last_migration(self, backup_id: str | None = None, *, progress: Progress | None = None) -> RollbackResult:
        self._refuse_if_read_only("rollback")
        return self.manager.rollback(backup_id, progress)
