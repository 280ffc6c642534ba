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
from .planid import PlanIdentity, PlanOptions, load_preview, save_preview, validate_plan_id
from .results import (BackupListResult, PlanCheckResult, HealthResult, HistoryEntry, MigrateResult, PreviewResult, RollbackPreview, RollbackResult,
                      StatusResult)
from .rowcount import backup_row_counter, live_row_counts, row_changes, sqlite_file_row_counts
from .settings import MigrationSettings

log = logging.getLogger("migration_core")


class AutoMigrationSystem:
    def __init__(self, settings: MigrationSettings | None = None, **overrides):
        self.startup_result: MigrateResult | None = None
        self._previews: dict[str, PlanIdentity] = {}  # plan id -> what it was computed from, to say what changed
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
    def _status_fields(self, comparison: Comparison, allow_destructive: bool | None = None,
                       history: list[HistoryEntry] | None = None) -> dict:
        s = self.settings
        allow = s.allow_destructive if allow_destructive is None else allow_destructive
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
            changes=comparison.assessment.models(allow),
            complexity=comparison.assessment.complexity,
            estimated_downtime_seconds=comparison.assessment.estimated_downtime_seconds,
            warnings=warnings,
            safe_to_apply=not comparison.refusals(allow) and not damage,
            plan_proven=None if not comparison.migration_needed else bool(
                comparison.plan is not None and comparison.plan.proof and not comparison.planning_error),
            proof=None if not comparison.migration_needed else (comparison.planning_error or (comparison.plan.proof if comparison.plan else None)),
            last_migration=history[0] if history else None,
            startup_migration=self.startup_result,
        )

    def _reported_status(self, comparison: Comparison, allow_destructive: bool | None = None,
                         history: list[HistoryEntry] | None = None) -> dict:
        """The status fields; in read-only mode nothing pending can be applied, and the status says so."""
        fields = self._status_fields(comparison, allow_destructive, history)
        if self.settings.read_only and comparison.migration_needed:
            fields["safe_to_apply"] = False
            fields["warnings"].append("read-only mode: the pending changes are reported, not applied (migrate is refused)")
        return fields

    def check_migration_status(self, *, renames: list[str] | None = None, fills: list[str] | None = None,
                               using: list[str] | None = None) -> StatusResult:
        conn = self.dialect.connect(write=False)
        try:  # one read connection for the comparison and the last history row: a connect costs 20-40 ms on MariaDB
            comparison = self.comparator.compare_schemas(conn, renames=renames, fills=fills, using=using)
            history = self.history.get_migration_history(conn, 1) if conn is not None else []
        finally:
            if conn is not None:
                conn.close()
        return StatusResult(**self._reported_status(comparison, history=history))

    def plan_options(self, *, renames: list[str] | None = None, allow_destructive: bool | None = None,
                     fills: list[str] | None = None, using: list[str] | None = None) -> PlanOptions:
        """The options a plan id covers: the configured rename hints with the call's, the data fills and
        conversions, and allow_destructive."""
        allow = self.settings.allow_destructive if allow_destructive is None else allow_destructive
        return PlanOptions.make([*self.settings.renames, *(renames or [])], fills, using, allow_destructive=allow)

    def preview_diff(self, *, renames: list[str] | None = None, allow_destructive: bool | None = None,
                     fills: list[str] | None = None, using: list[str] | None = None, rehearse: bool = False) -> PreviewResult:
        """The status plus the SQL and its plan id; `allow_destructive`, `fills` and `using` are part of the
        id (a plan approved without them is not the plan that drops or fills data). `fills` / `using`:
        `table.column=EXPR` items (fills.py); a malformed or unneeded one is a ConfigurationError.
        `rehearse`: also run the plan on a copy of the data (rehearse.py) and report it."""
        comparison = self.comparator.compare_schemas(renames=renames, fills=fills, using=using)
        plan = comparison.plan
        identity = comparison.identity(self.plan_options(renames=renames, allow_destructive=allow_destructive,
                                                         fills=fills, using=using))
        self._remember(identity)
        if not self.settings.read_only and comparison.migration_needed:
            save_preview(identity)
        fields = self._reported_status(comparison, identity.options.allow_destructive)
        rehearsal = None
        if rehearse and comparison.migration_needed:
            from .rehearse import rehearse as run_rehearsal

            rehearsal = run_rehearsal(self.dialect, comparison, self.settings.max_execution_time_ms, read_only=self.settings.read_only)
        return PreviewResult(**fields, rehearsal=rehearsal, sql=plan.full_sql() if plan and comparison.migration_needed else [],
                             reverse_sql=plan.reverse_sql() if plan else [], plan_id=identity.plan_id,
                             database_fingerprint=identity.live_fingerprint, models_fingerprint=identity.target_fingerprint,
                             options=identity.options.as_dict())

    def plan_text(self, *, renames: list[str] | None = None, allow_destructive: bool | None = None,
                  fills: list[str] | None = None, using: list[str] | None = None) -> tuple[PreviewResult, str]:
        """(preview, plan file text): the plan as a SQL script that runs as printed, with its review header."""
        from .planfile import render

        preview = self.preview_diff(renames=renames, allow_destructive=allow_destructive, fills=fills, using=using)
        return preview, render(preview, self.dialect.name)

    def check_plan(self, reviewed: PlanIdentity) -> PlanCheckResult:
        """Whether the plan migrate would run now, with the reviewed plan's options, is that plan (CI's
        `check --plan FILE`); changes nothing."""
        comparison = self.comparator.compare_schemas(renames=list(reviewed.options.renames), fills=list(reviewed.options.fills),
                                                     using=list(reviewed.options.using))
        options = PlanOptions.make([*self.settings.renames, *reviewed.options.renames], reviewed.options.fills,
                                   reviewed.options.using, reviewed.options.allow_destructive)
        now = comparison.identity(options)
        same = now.plan_id == reviewed.plan_id
        return PlanCheckResult(database=self.settings.masked_url, matches=same, plan_id=reviewed.plan_id, plan_id_now=now.plan_id,
                               differences=[] if same else reviewed.differences(now),
                               safe_to_apply=same and not comparison.refusals(options.allow_destructive))

    def _remember(self, identity: PlanIdentity) -> None:
        self._previews.pop(identity.plan_id, None)
        self._previews[identity.plan_id] = identity
        while len(self._previews) > 50:
            self._previews.pop(next(iter(self._previews)))

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
        backup, entry, interrupted = self.manager.rollback_target(backup_id)
        if backup is None:  # it only undoes an interrupted run: from its dump, no backup restored
            return RollbackPreview(database=self.settings.masked_url, backup=None, undoes_migration=entry, tables=[],
                                   rows_lost=None, rows_gained=None, interrupted=interrupted)
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
                               rows_lost=lost, rows_gained=gained, warnings=warnings, interrupted=interrupted,
                               refused=self.backups.restore_problems(backup.id))

    # -- changing ------------------------------------------------------------------------
    def _refuse_if_read_only(self, what: str) -> None:
        if self.settings.read_only:
            raise SafetyRefusal(f"{what} refused: read-only mode is on (setting read_only, MIGRATION_READ_ONLY); nothing was changed")

    def execute_auto_migration(self, *, dry_run: bool | None = None, allow_destructive: bool | None = None,
                               create_backup: bool | None = None, timeout_ms: int | None = None,
                               renames: list[str] | None = None, progress: Progress | None = None,
                               plan_id: str | None = None, reviewed: PlanIdentity | None = None,
                               fills: list[str] | None = None, using: list[str] | None = None,
                               rehearse: bool = False) -> MigrateResult:
        """Apply the pending changes. `plan_id` (from preview_diff): apply only that exact plan; a StalePlan
        refusal (exit 3) says what changed when the database, the models or the options differ.
        `reviewed` (a plan file's identity): its options are used and its plan id is required."""
        s = self.settings
        if plan_id is not None:
            plan_id = validate_plan_id(plan_id)
        if reviewed is not None:
            if renames or fills or using or allow_destructive is not None or (plan_id and plan_id != reviewed.plan_id):
                raise ConfigurationError("a plan file carries its own options and plan id; do not combine it with renames, "
                                         "fills, using, allow_destructive or another plan id")
            plan_id, renames, allow_destructive = reviewed.plan_id, list(reviewed.options.renames), reviewed.options.allow_destructive
            fills, using = list(reviewed.options.fills), list(reviewed.options.using)
            self._remember(reviewed)
        if not (s.dry_run if dry_run is None else dry_run):
            self._refuse_if_read_only("migrate")
        if timeout_ms is not None and (isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms <= 0):
            raise ConfigurationError(f"timeout_ms must be a positive number of milliseconds, got {timeout_ms!r}")
        allow = s.allow_destructive if allow_destructive is None else allow_destructive
        return self.manager.execute_migrations(
            dry_run=s.dry_run if dry_run is None else dry_run,
            allow_destructive=allow,
            create_backup=s.auto_backup if create_backup is None else create_backup,
            timeout_ms=s.max_execution_time_ms if timeout_ms is None else timeout_ms,
            renames=renames, progress=progress,
            options=self.plan_options(renames=renames, allow_destructive=allow, fills=fills, using=using),
            rehearse=rehearse, plan_id=plan_id, previewed=(self._previews.get(plan_id) or load_preview(plan_id)) if plan_id else None,
        )

    def rollback_target(self, backup_id: str | None = None):
        """(BackupInfo | None, HistoryEntry | None) that `rollback_last_migration(backup_id)` would restore
        (no backup: it undoes an interrupted run from its dump, see interrupted.py) and the migration it
        undoes; raises MigrationError when there is nothing to roll back. Changes nothing."""
        return self.manager.rollback_target(backup_id)[:2]

    def rollback_last_migration(self, backup_id: str | None = None, *, progress: Progress | None = None,
                                interrupted_id: str | None = None) -> RollbackResult:
        """`interrupted_id`: the interrupted run a preview showed would be undone; refused if that changed."""
        self._refuse_if_read_only("rollback")
        return self.manager.rollback(backup_id, progress, interrupted_id)
