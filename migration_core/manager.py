"""MigrationManager: runs a plan safely (lock, backup, one transaction, time limit, verify, record)."""

from __future__ import annotations

import logging
import time

from .backup import BackupManager
from .comparator import Comparison, SchemaComparator
from .diff import diff_snapshots
from .dialects.base import Progress
from .errors import MigrationError, RecoveryError, RestoreRefused, SafetyRefusal
from .history import MigrationHistoryManager, new_migration_id, now_iso, progress_of
from .plan import Plan
from .planid import PlanIdentity, PlanOptions, stale_refusal
from .interrupted import interrupted_runs, recovery_result
from .results import BackupInfo, HistoryEntry, InterruptedRun, MigrateResult, RollbackResult
from .rowcount import live_row_counts, row_changes
from .settings import MigrationSettings

log = logging.getLogger("migration_core")


class MigrationManager:
    def __init__(self, settings: MigrationSettings, dialect, comparator: SchemaComparator,
                 history: MigrationHistoryManager, backups: BackupManager):
        self.settings = settings
        self.dialect = dialect
        self.comparator = comparator
        self.history = history
        self.backups = backups

    def detect_schema_differences(self, renames: list[str] | None = None):
        return self.comparator.compare_schemas(renames=renames).diff.changes

    def generate_migration_operations(self, renames: list[str] | None = None) -> Plan | None:
        comparison = self.comparator.compare_schemas(renames=renames)
        if comparison.planning_error:
            raise MigrationError(comparison.planning_error)
        return comparison.plan

    def get_migration_history(self, limit: int = 20) -> list[HistoryEntry]:
        conn = self.dialect.connect(write=False)
        try:
            return self.history.get_migration_history(conn, limit)
        finally:
            if conn is not None:
                conn.close()

    def unfinished_note(self, entry: HistoryEntry) -> str | None:
        """What status and health say about a run that did not end normally and is not being run now:
        a `running` row while nobody holds the lock, or a run whose automatic restore failed (its dump kept)."""
        flavor = self.history.flavor
        if entry.status == "failed" and flavor.unrecovered_is_failure and entry.error and "dump" in entry.error and "kept" in entry.error:
            return (f"migration {entry.id} failed and left the database half-migrated: {entry.error}")
        if entry.status != "running":
            return None
        try:
            if self.dialect.lock(0).status().held:
                return None  # it is running now
        except MigrationError:
            pass
        progress = progress_of(entry.error)
        return flavor.unrecovered.format(id=entry.id, progress=f" after {progress[0]} of {progress[1]} statements" if progress else "")

    def storage_problem(self) -> str | None:
        """Damage that would make migrate refuse (a corrupt SQLite file), checked on a read-only connection."""
        conn = self.dialect.connect(write=False)
        if conn is None:
            return None
        try:
            return self.dialect.storage_check(conn)
        finally:
            conn.close()

    # -- migrate -------------------------------------------------------------------------
    def execute_migrations(self, *, dry_run: bool, allow_destructive: bool, create_backup: bool, timeout_ms: int,
                           renames: list[str] | None = None, progress: Progress | None = None,
                           options: PlanOptions | None = None, plan_id: str | None = None,
                           previewed: PlanIdentity | None = None, rehearse: bool = False) -> MigrateResult:
        """`plan_id`: run only the plan with that id (see planid.py), checked under the lock against the plan
        computed there; `previewed` is that plan's identity when known, to say what differs (StalePlan)."""
        started = time.monotonic()
        options = options or PlanOptions.make(renames, allow_destructive=allow_destructive)
        if dry_run:
            comparison = self.comparator.compare_schemas(renames=renames, fills=list(options.fills), using=list(options.using))
            identity = self._check_plan_id(comparison, options, plan_id, previewed)
            self._refuse_if_needed(comparison, allow_destructive)
            result = self._result(comparison, started, allow_destructive, dry_run=True, executed=0, identity=identity)
            if rehearse and comparison.migration_needed:
                result.rehearsal = self._rehearse(comparison, timeout_ms, refuse=False)
            return result

        self.comparator.target_snapshot()  # a models error must not create the database file or take the lock
        with self.dialect.lock(self.settings.lock_timeout_ms).acquire("migrate"):
            conn = self.dialect.connect(write=True)
            try:
                self.recover(conn, "migrate")
                comparison = self.comparator.compare_schemas(conn, renames, fills=list(options.fills), using=list(options.using))
                identity = self._check_plan_id(comparison, options, plan_id, previewed)
                if not comparison.migration_needed:
                    return self._result(comparison, started, allow_destructive, dry_run=False, executed=0, identity=identity)
                problem = self.dialect.storage_check(conn)
                if problem:
                    raise MigrationError(f"migration refused, nothing was changed: {problem}")
                self._refuse_if_needed(comparison, allow_destructive)
                rehearsal = self._rehearse(comparison, timeout_ms, refuse=True) if rehearse else None
                result = self._apply(conn, comparison, started, allow_destructive, create_backup, timeout_ms, progress, identity)
                result.rehearsal = rehearsal
                return result
            finally:
                conn.close()

    def recover(self, conn, purpose: str) -> list[str]:
        """What a process that died under the lock left behind, put right before anything else
        (call only while holding the lock): runs the dialect restores (MariaDB: tables a killed run
        had half-migrated), history rows still `running`, partial backup files. Returns the dialect's
        notes. Raises RecoveryError when an interrupted run cannot be undone."""
        notes = self.dialect.recover(conn, self.history)
        for note in notes:
            log.warning("%s: %s", purpose, note)
        interrupted = self.history.mark_interrupted(conn)
        if interrupted:
            log.warning("%s: marked %d interrupted migration(s) as failed", purpose, interrupted)
        for name in self.backups.remove_leftovers():
            log.info("%s: removed %s, left by an interrupted backup", purpose, name)
        return notes

    def _rehearse(self, comparison: Comparison, timeout_ms: int, *, refuse: bool):
        """The plan on a copy of the data (rehearse.py); with `refuse`, a failed rehearsal stops the migration."""
        from .rehearse import rehearse

        result = rehearse(self.dialect, comparison, timeout_ms, read_only=self.settings.read_only)
        if refuse and not result.ran:
            why = result.error or "; ".join(c for c in result.checks if ": no" in c or "failed" in c)
            raise SafetyRefusal(f"migration refused, nothing was changed: the rehearsal on a copy of the data failed: {why}",
                                [f"rehearsal: {why}"])
        return result

    @staticmethod
    def _check_plan_id(comparison: Comparison, options: PlanOptions, plan_id: str | None,
                       previewed: PlanIdentity | None) -> PlanIdentity:
        identity = comparison.identity(options)
        if plan_id is not None and identity.plan_id != plan_id:
            raise stale_refusal(plan_id, identity, previewed,
                                "Preview again, show the user the new plan, and migrate with its plan id.")
        return identity

    def _refuse_if_needed(self, comparison: Comparison, allow_destructive: bool) -> None:
        problems = comparison.refusals(allow_destructive)
        if problems:
            raise SafetyRefusal(
                "migration refused, nothing was changed:\n- " + "\n- ".join(problems), problems
            )

    def _apply(self, conn, comparison: Comparison, started: float, allow_destructive: bool, create_backup: bool,
               timeout_ms: int, progress: Progress | None, identity: PlanIdentity) -> MigrateResult:
        plan = comparison.plan
        migration_id = new_migration_id()
        backup_id = None
        if create_backup and self.dialect.database_exists():
            if progress:
                progress(0, None, "creating backup")
            backup_id = self.backups.create_backup("pre-migration", migration_id=migration_id, progress=progress).id
        started_at = now_iso()
        try:
            self.history.record_migration_start(
                conn, migration_id, plan_checksum=identity.plan_id, statements=plan.full_sql(),
                changes=[c.detail for c in comparison.diff.changes] + [f"fill {f}" for f in identity.options.fills]
                + [f"using {f}" for f in identity.options.using], backup_id=backup_id, started_at=started_at)
        except Exception as exc:
            if backup_id:  # no history row will ever name it
                self.backups.delete_backup(backup_id)
            if isinstance(exc, MigrationError):
                raise
            raise MigrationError(f"could not record the migration's start in the history: {exc}; nothing was changed") from None
        target = comparison.target

        def verify(c) -> None:
            rest = diff_snapshots(self.dialect.read_live(c), target)
            if not rest.empty:
                raise MigrationError("post-check failed, the schema still differs after the plan: "
                                     + "; ".join(x.detail for x in rest.changes[:5]) + "; rolled back, nothing changed")

        run_started = time.monotonic()
        deadline = run_started + timeout_ms / 1000
        recorded: list[float] = []  # the duration the history keeps, reported as is so the two agree

        def record_success(c) -> None:
            recorded[:] = [round((time.monotonic() - run_started) * 1000, 3)]
            self.history.record_migration_success(c, migration_id, recorded[0])

        try:
            executed = self.dialect.run_plan(
                conn, plan, deadline=deadline, verify=verify,
                before_commit=record_success,
                progress=progress,
                checkpoint=lambda c, done: self.history.record_progress(c, migration_id, done, len(plan.statements)),
                run_id=migration_id)
        except BaseException as exc:
            msg = str(exc) if isinstance(exc, MigrationError) else f"unexpected {exc.__class__.__name__}: {exc}"
            self._record_failure(conn, migration_id, msg, (time.monotonic() - run_started) * 1000)
            if isinstance(exc, MigrationError):
                exc.migration_id = migration_id
                exc.backup_id = backup_id
            raise
        if backup_id:
            try:
                self.backups.cleanup_old_backups()
            except Exception:  # cleanup failure must not turn a good migration into a failed one
                log.exception("backup retention cleanup failed")
        log.info("migration %s applied %d statements in %.1f ms", migration_id, executed, recorded[0] if recorded else 0.0)
        return self._result(comparison, started, allow_destructive, dry_run=False, executed=executed,
                            migration_id=migration_id, backup_id=backup_id, duration_ms=recorded[0] if recorded else None,
                            identity=identity)

    def _record_failure(self, conn, migration_id: str, message: str, duration_ms: float) -> None:
        """On the migration's connection or, when that one was lost (killed by the server, a network
        blip, an interrupt in the middle of a statement), on a fresh one: the row must not stay `running`."""
        try:
            self.history.record_migration_failure(conn, migration_id, message, duration_ms)
            return
        except Exception:  # noqa: BLE001 - a lost connection, in whatever form the driver reports it
            log.info("the migration's connection is unusable; recording the failure on a fresh one")
        try:
            fresh = self.dialect.connect(write=True)
            try:
                self.history.record_migration_failure(fresh, migration_id, message, duration_ms)
            finally:
                fresh.close()
        except Exception:  # the original error matters more; the next run marks the row interrupted
            log.exception("could not record the failure of %s", migration_id)

    def _result(self, comparison: Comparison, started: float, allow_destructive: bool, *, dry_run: bool, executed: int,
                migration_id: str | None = None, backup_id: str | None = None, duration_ms: float | None = None,
                identity: PlanIdentity | None = None) -> MigrateResult:
        plan = comparison.plan
        return MigrateResult(
            success=True,
            migration_needed=comparison.migration_needed,
            operations_executed=executed,
            execution_time_ms=duration_ms if duration_ms is not None else round((time.monotonic() - started) * 1000, 3),
            # As the executors count: the steps, plus PostgreSQL's concurrent builds after the transaction
            # (SQLite's postamble restores a PRAGMA: housekeeping, like the preamble).
            planned_statements=len(plan.statements) + sum(not s.upper().startswith(("PRAGMA", "--")) for s in plan.postamble) if plan else 0,
            backup_id=backup_id,
            migration_id=migration_id,
            dry_run=dry_run,
            changes=comparison.assessment.models(allow_destructive),
            sql=plan.full_sql() if plan else [],
            warnings=list(comparison.assessment.warnings),
            plan_id=identity.plan_id if identity else None,
        )

    # -- rollback ------------------------------------------------------------------------
    def _resolve_rollback(self, conn, backup_id: str | None) -> tuple[str, HistoryEntry | None]:
        if backup_id is None:
            entry = self.history.last_rollbackable(conn)
            if entry is None:
                raise MigrationError("nothing to roll back: the history has no successful migration that is not already rolled back")
            if not entry.backup_id:
                raise MigrationError(
                    f"the last migration {entry.id} ran without a backup; pass a backup id (see list_backups) to restore an older one")
            return entry.backup_id, entry
        return backup_id, self.history.find_by_backup(conn, backup_id)

    def rollback_target(self, backup_id: str | None = None) -> tuple[BackupInfo | None, HistoryEntry | None, list[InterruptedRun]]:
        """What a rollback would do (read-only), so a caller can name it before asking for consent: the
        backup it restores (None when it only undoes an interrupted run, see interrupted.py), the
        migration it undoes, and the interrupted runs it finds."""
        from .backup import validate_backup_id

        if backup_id is not None:
            validate_backup_id(backup_id)
        conn = self.dialect.connect(write=False)
        try:
            interrupted = interrupted_runs(self.dialect, self.history, conn, locked=False)
            undo = [r for r in interrupted if r.undo]
            if undo and backup_id is None:
                return None, undo[-1].migration, interrupted
            backup_id, entry = self._resolve_rollback(conn, backup_id)
        finally:
            if conn is not None:
                conn.close()
        return self.backups.get_backup(backup_id), entry, interrupted

    def rollback(self, backup_id: str | None = None, progress: Progress | None = None,
                 interrupted_id: str | None = None) -> RollbackResult:
        """Restore `backup_id`, or undo the last migration. Without a backup id, a migration killed
        mid-run that left changes to undo (MariaDB/MySQL) is the one undone, and nothing else
        (interrupted.py). `interrupted_id`: the interrupted run the caller showed the user; refused
        (SafetyRefusal, nothing changed) when it is no longer the one to undo."""
        from .backup import validate_backup_id

        if backup_id is not None:
            validate_backup_id(backup_id)
        with self.dialect.lock(self.settings.lock_timeout_ms).acquire("rollback"):
            conn = self.dialect.connect(write=True)
            try:
                try:
                    undo = [r.migration for r in interrupted_runs(self.dialect, self.history, conn, locked=True) if r.undo]
                    if interrupted_id is not None and (backup_id is not None or interrupted_id not in [e.id for e in undo]):
                        raise SafetyRefusal(
                            f"rollback refused, nothing was changed: the interrupted migration {interrupted_id} shown before is "
                            "no longer waiting to be undone (another command put it right meanwhile); run rollback again to see "
                            "what it would do now")
                    rows_before = live_row_counts(self.dialect) if undo and backup_id is None else None
                    notes = self.recover(conn, "rollback")
                    if undo and backup_id is None:
                        return recovery_result(self, conn, undo, notes, rows_before, progress)
                    backup_id, entry = self._resolve_rollback(conn, backup_id)
                except RecoveryError as exc:
                    if backup_id is not None or not exc.backup_id:
                        raise
                    # The way out of a run that could not be undone: its own pre-migration backup.
                    log.warning("rollback: %s; restoring its pre-migration backup %s instead", exc, exc.backup_id)
                    backup_id, entry = exc.backup_id, self.history.find_by_backup(conn, exc.backup_id)
                    notes = [str(exc)]
                recovered = notes
                self.backups.verify_backup(backup_id)
                if progress:
                    progress(0, 3, "backing up the current state first")
                safety = self.backups.create_backup("pre-rollback", migration_id=entry.id if entry else None, progress=progress)
                rows = self.history.export_rows(conn)
                if progress:
                    progress(1, 3, f"restoring backup {backup_id}")
                rollback_id = new_migration_id()
                rows_before = live_row_counts(self.dialect)
                try:
                    self._restore_or_undo(backup_id, safety.id)
                except MigrationError as exc:
                    failure = str(exc)
                    self._with_history(conn, lambda c: self._record_rollback(c, rows, rollback_id, backup_id, None, failure))
                    raise
                self._with_history(conn, lambda c: self._record_rollback(c, rows, rollback_id, backup_id, entry, None))
                if progress:
                    progress(3, 3, "rollback complete")
                log.info("rolled back to backup %s (safety backup %s)", backup_id, safety.id)
                tables = row_changes(rows_before, live_row_counts(self.dialect))
                notes = self.backups.last_restore
                lost = [f"{-t.change} row(s) of {t.table}" + (" (the table is not in the backup: dropped)" if t.note.startswith("not in")
                                                             else " (net)") for t in tables if t.change and t.change < 0]
                return RollbackResult(success=True, backup_id=backup_id, migration_id=entry.id if entry else None,
                                      safety_backup_id=safety.id, tables=tables,
                                      kept=[f"the migration history ({len(rows)} entries)", *notes["kept"]],
                                      lost=[*lost, *notes["lost"]], recovered=recovered)
            finally:
                conn.close()

    def _restore_or_undo(self, backup_id: str, safety_id: str) -> None:
        """Restore `backup_id`; if that fails part way (MariaDB cannot make a restore atomic), put the
        state before the rollback back from its safety backup, or say exactly what is left."""
        try:
            self.backups.restore_backup(backup_id)
            return
        except RestoreRefused:
            raise  # refused before it touched anything
        except BaseException as exc:  # noqa: BLE001 - an interrupt too must not leave a third state unexplained
            cause = str(exc) if isinstance(exc, MigrationError) else f"{exc.__class__.__name__}: {exc}"
            if getattr(self.backups.engine, "atomic_restore", False) and not getattr(exc, "restored", False):
                # one transaction: a failure changed nothing
                raise MigrationError(f"rollback to backup {backup_id} failed: {cause}; the restore ran in one transaction, "
                                     "so nothing changed") from None
        try:
            self.backups.restore_backup(safety_id)
        except BaseException as undo_exc:  # noqa: BLE001
            undo = str(undo_exc) if isinstance(undo_exc, MigrationError) else f"{undo_exc.__class__.__name__}: {undo_exc}"
            raise MigrationError(
                f"rollback to backup {backup_id} failed part way: {cause}; putting back the state before the rollback from "
                f"its safety backup {safety_id} failed too: {undo}; the database is now partly restored (neither state); "
                f"the history is kept. To recover, remove the cause and run `migration-mcp rollback --backup-id {safety_id}` "
                f"(the state before this rollback) or `--backup-id {backup_id}`") from None
        raise MigrationError(f"rollback to backup {backup_id} failed: {cause}; the state before the rollback was put back from "
                             f"its safety backup {safety_id} and verified; nothing changed") from None

    def _record_rollback(self, conn, rows: list[tuple], rollback_id: str, backup_id: str, entry: HistoryEntry | None,
                         error: str | None) -> None:
        """Put back the history rows a restore replaced (the audit trail survives every restore), then
        record this rollback."""
        self.history.import_rows(conn, rows)
        if entry and error is None:
            self.history.mark_rolled_back(conn, entry.id)
        self.history.record_migration_start(conn, rollback_id, kind="rollback", backup_id=backup_id,
                                            changes=[f"restored backup {backup_id}"])
        if error is None:
            self.history.record_migration_success(conn, rollback_id, 0.0, status="rolled_back")
        else:
            self.history.record_migration_failure(conn, rollback_id, error, 0.0)

    def _with_history(self, conn, write) -> None:
        """`write(conn)`, or on a fresh connection when a restore has cut this one off."""
        try:
            write(conn)
            return
        except Exception:  # noqa: BLE001 - a lost connection, in whatever form the driver reports it
            log.info("the connection is unusable after the restore; writing the history on a fresh one")
        fresh = self.dialect.connect(write=True)
        try:
            write(fresh)
        finally:
            fresh.close()
