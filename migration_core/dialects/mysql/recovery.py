"""Putting a MariaDB/MySQL run back when it did not end normally.

DDL commits statement by statement here, so a run that stops part way leaves the tables it touched
half-migrated. Three ways a run stops, one remedy (the dump of the touched tables taken before the
first statement, `run-<migration id>.affected.jsonl` in the backup folder):

- its connection is lost (the server kills it, a network blip): the run restores on a fresh
  connection, since the lost one cannot be used again;
- SIGINT or SIGTERM: turned into an exception while the run executes (main thread only), so the same
  restore runs; further signals wait until it has finished;
- kill -9, or a power cut: the server may even finish the running `ALTER` after the client died.
  The next command that takes the lock (`recover_runs`) finds the run's history row and dump, stops
  any statement of the run still executing, and undoes the run, or marks the run succeeded when
  every statement had committed.

Undoing reverses the committed steps in place first (`undo.py`), so rows the application wrote
during the run or after the crash stay; only a table that cannot be put back so is reloaded from
the dump, and the note names it. Every restore is verified (the run's tables, `SHOW CREATE TABLE`,
`CHECKSUM TABLE` of reloaded tables) before the dump is removed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import BackupError, MigrationError, RecoveryError
from ...history import progress_of
from .catalog import quote_ident
from .dump import AUTO_INCREMENT, Dump, list_tables, read_dump, restore_dump, run_created, unchanged_tables
from .undo import RestoreReport, undo_in_place
from .scratch import remove_orphan_scratch_databases

STOP_TIMEOUT_S = 120  # how long a killed ALTER may take to roll back before the restore gives up


def dump_path(directory: Path, run_id: str) -> Path:
    return Path(directory) / f"run-{run_id}.affected.jsonl"


def fsync_file(path: Path) -> None:
    """The dump must be on disk before the first statement: recovery trusts a complete dump."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Interrupted(BaseException):
    """SIGINT or SIGTERM during a run; a BaseException, like KeyboardInterrupt, so nothing swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _handlers(handler) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (a server's worker thread: kill -9 recovery covers it)
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` inside the block (SIGTERM would otherwise end the process
    on the spot, leaving a half-migrated database for the next run)."""
    def handler(signum, frame):
        raise Interrupted(signum)

    with _handlers(handler):
        yield


@contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Signals arriving inside the block are only recorded (in the yielded list): a restore must finish."""
    got: list[int] = []
    with _handlers(lambda signum, frame: got.append(signum)):
        yield got


def stop_run_statements(conn, schema: str, statements: list[str]) -> None:
    """KILL the sessions still executing one of the run's statements (a lost client's `ALTER` goes on on
    the server), and wait until they are gone, so that the restore does not race with them."""
    wanted = set(statements)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while True:
        rows = conn.execute("SELECT id, info FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID() "
                            "AND info IS NOT NULL", (schema,)).fetchall()
        running = [cid for cid, info in rows if info in wanted]
        if not running:
            return
        if time.monotonic() > deadline:
            raise MigrationError(f"the run's statement is still executing in connection(s) {running} after "
                                 f"{STOP_TIMEOUT_S} s of KILL; try again once it has ended")
        for cid in running:
            try:
                conn.execute(f"KILL CONNECTION {int(cid)}")
            except Exception:  # noqa: BLE001 - it ended meanwhile (unknown thread id)
                pass
        time.sleep(0.1)


def _created(conn, schema: str, dump: Dump) -> list[str]:
    """The tables the run made (named by its statements); with a dump from before steps were kept,
    every table that is new since it."""
    if dump.steps:
        return run_created(conn, schema, dump)
    then = {t.lower() for t in dump.all_tables}
    return [t for t in list_tables(conn, schema) if t.lower() not in then and not t.startswith("_migration_history")]


def differences(conn, schema: str, dump: Dump) -> list[str]:
    """How the run's tables differ from the dump's picture (tables the run created, and `SHOW CREATE
    TABLE` of each dumped table, AUTO_INCREMENT aside); empty when they match. Tables other sessions
    made meanwhile are theirs, not a difference."""
    live = {t.lower(): t for t in list_tables(conn, schema) if not t.startswith("_migration_history")}
    out = [f"table {t} is new" for t in _created(conn, schema, dump)]
    out += [f"table {t.name} is missing" for t in dump.tables if t.name.lower() not in live]
    for t in dump.tables:
        if t.name.lower() in live:
            now = conn.execute(f"SHOW CREATE TABLE {quote_ident(live[t.name.lower()])}").fetchone()[1]
            if AUTO_INCREMENT.sub("", now) != AUTO_INCREMENT.sub("", t.create):
                out.append(f"table {t.name} has another definition")
    return out


def restore_run(connect, schema: str, dump: Dump, statements: list[str], done: int, *,
                in_flight_maybe: bool, save_state=None) -> RestoreReport:
    """On a fresh connection (the run's own may be lost): stop the run's statements still executing,
    undo the `done` committed statements' steps in place by their reverses (`undo.py`: rows other
    sessions wrote meanwhile stay), reload from the dump only the tables that could not be put back so,
    drop the tables the run created (never those other sessions made), and verify (checksums of the
    reloaded tables, then definitions). `save_state()`, called only when a table must be reloaded, backs
    up the state found first and returns the backup's id. Returns what was done, for a truthful message."""
    conn = connect()
    try:
        stop_run_statements(conn, schema, statements)
        if dump.steps:
            report, need = undo_in_place(conn, dump, done, in_flight_maybe=in_flight_maybe)
        else:  # an older version's dump: it holds no reverses
            report, need = RestoreReport(legacy=True), {t.name.lower() for t in dump.tables}
        report.dropped = _created(conn, schema, dump)
        forced = {n.lower() for n in need}
        if save_state is not None and any(t.name not in unchanged_tables(conn, schema, dump) or t.name.lower() in forced
                                          for t in dump.tables):
            try:
                report.saved_as = save_state()  # rows other sessions wrote to the tables about to be reloaded stay in it
            except Exception as exc:  # noqa: BLE001 - the undo matters more; the message says the rows are not saved
                report.save_failed = str(exc)
        report.reloaded = restore_dump(conn, schema, dump, drop=report.dropped, keep_unchanged=True, force=need)
        report.remade = [key for key, _stmts in dump.objects]
        reloaded = {t.lower() for t in report.reloaded}
        report.undone = [u for u in report.undone if u.split(" (", 1)[0].lower() not in reloaded]
        report.took_added = [u for u in report.took_added if u in report.undone]
        for t in report.reloaded:
            report.why_reloaded.setdefault(t, "its definition still differed after the reverses" if dump.steps
                                           else "a dump from before reverses were kept")
        left = differences(conn, schema, dump)
        if left:
            raise BackupError("after the restore " + "; ".join(left))
        return report
    finally:
        conn.close()


def recover_runs(dialect, conn, history) -> list[str]:
    """What killed processes left, put right under the lock: runs with a dump in the backup folder,
    and scratch databases whose owner is gone. Returns notes of what was done; raises RecoveryError
    when a half-migrated run cannot be restored."""
    notes = [f"dropped the scratch database {name}, left by a process that was killed"
             for name in remove_orphan_scratch_databases(conn)]
    directory = dialect.settings.resolved_backup_dir()
    for path in sorted(Path(directory).glob("run-mig-*.affected.jsonl")):
        run_id = path.name[len("run-"):-len(".affected.jsonl")]
        entry = history.get_entry(conn, run_id)
        if entry is None:
            continue  # no row names it (a history lost with an old restore): keep it for a human to look at
        if entry.status in ("succeeded", "rolled_back"):
            path.unlink(missing_ok=True)
            notes.append(f"removed {path.name}: its run {run_id} had {entry.status}")
            continue
        notes.append(_recover_one(dialect, conn, history, entry, path))
    return notes


def pending_runs(dialect, conn, history) -> list[str]:
    """Ids of the runs `recover_runs` would undo (a dump in the backup folder, a history row neither
    finished nor recorded as fully committed), oldest first; reads only. A run still executing (its
    process holds the lock) is among them: call under the lock, or check the lock first."""
    out = []
    for path in sorted(Path(dialect.settings.resolved_backup_dir()).glob("run-mig-*.affected.jsonl")):
        entry = history.get_entry(conn, path.name[len("run-"):-len(".affected.jsonl")])
        if entry is None or entry.status in ("succeeded", "rolled_back"):
            continue
        progress = progress_of(entry.error)
        if entry.status == "running" and progress and progress[0] == progress[1]:
            continue  # every statement committed: recovery records it as succeeded, nothing is undone
        out.append(entry.id)
    return out


def _recover_one(dialect, conn, history, entry, path: Path) -> str:
    progress = progress_of(entry.error)
    where = f" after {progress[0]} of {progress[1]} statements" if progress else ""
    prefix = (entry.error + "; later: ") if entry.status == "failed" and entry.error else ""
    try:
        dump = read_dump(path)
    except BackupError:
        # Statements start only once the dump is complete and on disk: none of them ran.
        path.unlink(missing_ok=True)
        note = "interrupted while dumping the tables it would touch, before its first statement; nothing had changed"
        history.close_run(conn, entry.id, "failed", prefix + note)
        return f"migration {entry.id} {note}"
    if entry.status == "running" and progress and progress[0] == progress[1]:
        note = f"every one of its {progress[1]} statements had committed before its process ended; recorded as succeeded"
        history.close_run(conn, entry.id, "succeeded", note)
        path.unlink(missing_ok=True)
        return f"migration {entry.id}: {note}"
    schema = dialect.schema()
    stop_run_statements(conn, schema, entry.statements)
    changed = differences(conn, schema, dump)
    done = progress[0] if progress else 0
    statements = [s for st in dump.steps for s in st.statements] or entry.statements
    data_in_flight = done < len(statements) and statements[done].lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))
    if not changed and not done and not data_in_flight:
        # Definitions as dumped and nothing committed: no statement took effect (rows differing are other sessions').
        note = f"interrupted{where}; no statement had taken effect (definitions as dumped), so nothing needed undoing"
    else:
        try:
            safety = save_found_state(dialect, entry.id, "pre-recovery")
            # The statement after the last recorded one may have committed too: the server may finish a dead client's ALTER.
            report = restore_run(lambda: dialect.connect(write=True), schema, dump, entry.statements, done, in_flight_maybe=True)
        except MigrationError as exc:
            msg = (f"migration {entry.id} was interrupted{where} and left {', '.join(changed) or 'its tables'} half-migrated; "
                   f"undoing it (dump {path}) failed: {exc}; the dump is kept. "
                   + (f"Run `migration-mcp rollback` to restore its pre-migration backup {entry.backup_id}, or remove the "
                      "cause and run the command again" if entry.backup_id else "Remove the cause and run the command again"))
            history.close_run(conn, entry.id, "failed", prefix + msg)
            raise RecoveryError(msg, entry.id, entry.backup_id) from None
        note = (f"interrupted{where}; recovered: {report.sentence(saved_as=safety)}; verified (definitions"
                f"{', and CHECKSUM TABLE of the reloaded tables' if report.reloaded else ''}): the tables the run touched are "
                f"as they were before the migration"
                + ("" if report.reloaded else f"; the state found was saved as backup {safety}"))
    history.close_run(conn, entry.id, "failed", prefix + note)
    path.unlink(missing_ok=True)
    return f"migration {entry.id} {note}"


def save_found_state(dialect, run_id: str | None, reason: str = "pre-restore") -> str:
    """Back up the half-migrated state before replacing it: rows written since the run began live in it."""
    from ...backup import BackupManager

    return BackupManager(dialect.settings, dialect.backup_engine()).create_backup(reason, migration_id=run_id).id
