"""Migrations whose process was killed mid-run, as `rollback` finds them.

On MariaDB/MySQL (DDL commits statement by statement) such a run may leave its tables half-migrated
until the next command that takes the lock undoes it (dialects/mysql/recovery.py). For `rollback`
without a backup id, that undo IS the rollback: it puts the database back to before the interrupted
run and stops there, rather than going on to restore the backup of the migration before it (whose
rows written since would be lost). A transactional database (PostgreSQL, SQLite) rolled the killed
run back itself: nothing to undo, the run is only recorded as failed, and the rollback undoes the
last successful migration as usual; the preview says so.
"""

from __future__ import annotations

import logging

from .errors import MigrationError
from .history import new_migration_id
from .results import HistoryEntry, InterruptedRun, RollbackResult
from .rowcount import live_row_counts, row_changes

log = logging.getLogger("migration_core")

# History rows read to find `running` ones: a killed run is among the newest.
_RECENT = 50


def interrupted_runs(dialect, history, conn, *, locked: bool) -> list[InterruptedRun]:
    """What a rollback taking the lock now would find, oldest first; reads only. Runs with changes to
    undo are reported even while the lock is held: after a kill -9 the server keeps the dead client's
    session (and its lock) until its statement ends; should the run in fact be alive and finish, a
    rollback told to undo it (`interrupted_id`) refuses. Without the lock (`locked` False), a
    transactional `running` row while the lock is held is a migration running now: not reported."""
    if conn is None:
        return []
    undo = dialect.pending_undo(conn, history)
    entries = {e.id: e for e in (history.get_entry(conn, i) for i in undo) if e is not None}
    running = [e for e in history.get_migration_history(conn, _RECENT) if e.status == "running" and e.id not in entries]
    if running and not locked:
        try:
            if dialect.lock(0).status().held:
                running = []  # a migration is running now, not interrupted; the rollback will wait for it
        except MigrationError:
            pass
    if not entries and not running:
        return []
    after = history.last_rollbackable(conn)
    out = [InterruptedRun(migration=e, undo=True, next_rollback=after.id if after else None) for e in entries.values()]
    why = history.flavor.interrupted.removeprefix("interrupted: ")
    out += [InterruptedRun(migration=e, undo=False, why=why) for e in running]
    return sorted(out, key=lambda r: (r.migration.started_at, r.migration.id))


def recovered_backup(backups, migration_id: str) -> str | None:
    """The backup the recovery of `migration_id` saved the state it found in (reason pre-recovery)."""
    found = [b for b in backups.list_backups() if b.reason == "pre-recovery" and b.migration_id == migration_id]
    return found[0].id if found else None


def recovery_result(manager, conn, undone: list[HistoryEntry], notes: list[str], rows_before: dict[str, int] | None,
                    progress=None) -> RollbackResult:
    """The rollback that was the undoing of interrupted runs (`manager.recover` has run, under the lock):
    recorded in the history as a rollback, and reported with the rows counted before and after and the
    migration a further rollback would undo."""
    rollback_id = new_migration_id()
    ids = [e.id for e in undone]
    manager.history.record_migration_start(conn, rollback_id, kind="rollback",
                                           changes=[f"undid the interrupted migration {i}" for i in ids])
    manager.history.record_migration_success(conn, rollback_id, 0.0, status="rolled_back")
    if progress:
        progress(1, 1, "rollback complete")
    tables = row_changes(rows_before, live_row_counts(manager.dialect))
    after = manager.history.last_rollbackable(conn)
    log.info("rollback: undid the interrupted migration(s) %s; nothing else was rolled back", ", ".join(ids))
    lost = [f"{-t.change} row(s) of {t.table} (net)" for t in tables if t.change and t.change < 0]
    return RollbackResult(success=True, backup_id=None, migration_id=ids[-1],
                          safety_backup_id=recovered_backup(manager.backups, ids[-1]), tables=tables,
                          kept=["the migration history"], lost=lost, recovered=notes, next_rollback=after.id if after else None)
