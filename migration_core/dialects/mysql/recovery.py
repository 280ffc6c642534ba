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
  any statement of the run still executing, and restores the tables, or marks the run succeeded
  when every statement had committed.

Every restore is verified (table set, `SHOW CREATE TABLE`, `CHECKSUM TABLE`) before the dump is removed.
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
from .dump import AUTO_INCREMENT, Dump, checksum, list_tables, read_dump, restore_dump
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


def differences(conn, schema: str, dump: Dump) -> list[str]:
    """How the live tables differ from the dump's picture (table set and `SHOW CREATE TABLE` of each
    dumped table, AUTO_INCREMENT aside); empty when they match."""
    live = {t.lower(): t for t in list_tables(conn, schema) if not t.startswith("_migration_history")}
    then = {t.lower() for t in dump.all_tables if not t.startswith("_migration_history")}
    out = [f"table {live[t]} is new" for t in sorted(set(live) - then)]
    out += [f"table {t} is missing" for t in sorted(then - set(live))]
    for t in dump.tables:
        if t.name.lower() in live:
            now = conn.execute(f"SHOW CREATE TABLE {quote_ident(live[t.name.lower()])}").fetchone()[1]
            if AUTO_INCREMENT.sub("", now) != AUTO_INCREMENT.sub("", t.create):
                out.append(f"table {t.name} has another definition")
    return out


def restore_run(connect, schema: str, dump: Dump, statements: list[str], reverses: list[str] | tuple = ()) -> None:
    """On a fresh connection (the run's own may be lost): stop the run's statements still executing,
    undo the committed steps that have a reverse (`reverses`, latest first: an added column dropped
    again, so rows other sessions wrote to that table meanwhile stay), restore from the dump the tables
    still changed, drop tables the run created, and verify (checksums, then definitions). A table the
    run left unchanged is not restored: what other sessions wrote to it is kept."""
    conn = connect()
    try:
        stop_run_statements(conn, schema, statements)
        for stmt in reverses:
            try:
                conn.execute(stmt)
            except Exception:  # noqa: BLE001 - the dump restores that table instead
                break
        restore_dump(conn, schema, dump, keep_unchanged=True)
        left = differences(conn, schema, dump)
        if left:
            raise BackupError("after the restore " + "; ".join(left))
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
    changed = differences(conn, schema, dump) or [f"rows of {t.name} differ" for t in dump.tables
                                                   if t.checksum is not None and checksum(conn, t.name) != t.checksum]
    if not changed:
        note = f"interrupted{where}; no statement had taken effect (tables and rows as dumped), so nothing needed restoring"
    else:
        try:
            safety = _save_current_state(dialect, entry.id)
            restore_run(lambda: dialect.connect(write=True), schema, dump, entry.statements)
        except MigrationError as exc:
            msg = (f"migration {entry.id} was interrupted{where} and left {', '.join(changed) or 'its tables'} half-migrated; "
                   f"restoring {', '.join(dump.table_names()) or 'them'} from {path} failed: {exc}; the dump is kept. "
                   + (f"Run `migration-mcp rollback` to restore its pre-migration backup {entry.backup_id}, or remove the "
                      "cause and run the command again" if entry.backup_id else "Remove the cause and run the command again"))
            history.close_run(conn, entry.id, "failed", prefix + msg)
            raise RecoveryError(msg, entry.id, entry.backup_id) from None
        note = (f"interrupted{where}; recovered: tables {', '.join(dump.table_names()) or '(none existed)'} restored from "
                f"{path.name} and verified (definitions and CHECKSUM TABLE), tables it created dropped; the state found "
                f"was saved as backup {safety}; the database is as it was before the migration")
    history.close_run(conn, entry.id, "failed", prefix + note)
    path.unlink(missing_ok=True)
    return f"migration {entry.id} {note}"


def _save_current_state(dialect, run_id: str) -> str:
    """Back up the half-migrated state before replacing it: rows written since the run died live in it."""
    from ...backup import BackupManager

    return BackupManager(dialect.settings, dialect.backup_engine()).create_backup("pre-recovery", migration_id=run_id).id
