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

from .errors import MigrationError
from .results import InterruptedRun

# History rows read to find `running` ones: a killed run is among the newest.
_RECENT = 50


def interrupted_runs(dialect, history, conn, *, locked: bool) -> list[InterruptedRun]:
    """What a rollback taking the lock now would find, oldest first; reads only. Without the lock
    (`locked` False), a run executing right now is no interrupted one: none is reported then."""
    if conn is None:
        return []
    if not locked:
        try:
            if dialect.lock(0).status().held:
                return []  # a migration is running now; the rollback will wait for it
        except MigrationError:
            pass
    undo = dialect.pending_undo(conn, history)
    entries = {e.id: e for e in (history.get_entry(conn, i) for i in undo) if e is not None}
    running = [e for e in history.get_migration_history(conn, _RECENT) if e.status == "running" and e.id not in entries]
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
