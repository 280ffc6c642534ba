"""A migrating process killed with SIGKILL, two processes migrating at once, and the time limit.

All on a real 300k-row SQLite file whose migration needs the 12-step rebuild (INTEGER -> BIGINT),
so the migration transaction is long enough (~0.5 s) to be interrupted from outside.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from migration_core.errors import ExecutionTimeout

from helpers_core import (BIG_NEW, BIG_OLD, CLI, MODELS_HEADER, ROOT, history_rows, integrity, make_big_table, query,
                          system_for, user_dump, user_schema, write_models)

ROWS = 300_000
JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")  # first bytes of a valid (hot) rollback journal
CHECKSUM_SQL = "SELECT count(*), sum(amount), sum(length(name)), sum(length(note)), max(id) FROM big"


@dataclass
class Big:
    template: Path
    old_models: str
    new_models: str
    old_schema: dict[str, str]
    new_schema: dict[str, str]
    checksum: tuple
    migrate_ms: float


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Big:
    tmp = tmp_path_factory.mktemp("big")
    template = tmp / "template.db"
    namespace: dict = {}
    exec(compile(MODELS_HEADER + textwrap.dedent(BIG_OLD), "<big>", "exec"), namespace)
    engine = create_engine(f"sqlite:///{template}")
    namespace["metadata"].create_all(engine)  # no history table yet: every history row is a test's own
    engine.dispose()
    make_big_table(template, ROWS)
    old_models, new_models = write_models(tmp, BIG_OLD), write_models(tmp, BIG_NEW)
    assert system_for(template, old_models, tmp / "b").check_migration_status().migration_needed is False

    # The state a completed migration leaves, for comparison.
    scratch = tmp / "scratch.db"
    shutil.copy(template, scratch)
    result = system_for(scratch, new_models, tmp / "b").execute_auto_migration(create_backup=False)
    assert result.success and result.operations_executed > 0
    assert any("_migration_new_big" in s for s in result.sql), "the fixture must exercise a table rebuild"
    big = Big(template, old_models, new_models, user_schema(template), user_schema(scratch),
              query(template, CHECKSUM_SQL)[0], result.execution_time_ms)
    assert big.old_schema != big.new_schema and "BIGINT" in big.new_schema["big"]
    assert query(scratch, CHECKSUM_SQL)[0] == big.checksum
    return big


def _copy(big: Big, path: Path) -> Path:
    shutil.copy(big.template, path)
    return path


def _cli_args(db: Path, models: str, backups: Path, *rest: str) -> list[str]:
    return ["--database-url", f"sqlite:///{db}", "--models", models, "--backup-dir", str(backups), "migrate", *rest]


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_")}
    env.update(extra)
    return env


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> bool:
    """Poll until `path` exists; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            return path.exists()
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.001)
    return True


# ---------------------------------------------------------------------------------------------
# (a) kill -9
# ---------------------------------------------------------------------------------------------


def test_sigkill_at_random_moments_leaves_old_or_new_schema_and_is_recorded(big, tmp_path):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    # Stratified over 0-300 ms after the lock is taken: compare, history start, copy, commit.
    # A last trial waits for the rollback journal instead (so at least one kill lands inside the
    # transaction even on a slow, loaded machine).
    trials = [("lock", min(0.3, base + rng.uniform(0, 0.03))) for base in (0.0, 0.06, 0.12, 0.18, 0.24, 0.3)]
    trials.append(("journal", rng.uniform(0, 0.1)))
    delays = [d for _, d in trials]
    outcomes = []
    for k, (wait_for, delay) in enumerate(trials):
        db = _copy(big, tmp_path / f"kill{k}.db")
        info = Path(f"{db}.migration.lock.json")
        extra = [] if k % 3 == 2 else ["--no-backup"]  # some attempts die while backing up
        proc = subprocess.Popen([CLI, *_cli_args(db, big.new_models, tmp_path / f"backups{k}", *extra)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), cwd=ROOT)
        _wait_for(info, proc)
        if wait_for == "journal":
            _wait_for_big_journal(db, proc)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        where = f"seed={seed} trial={k} {wait_for}+{delay * 1000:.0f} ms exit={proc.returncode}"

        # The next process to open the file sees exactly the old or exactly the new schema.
        schema = user_schema(db)
        assert schema in (big.old_schema, big.new_schema), f"half-migrated schema {schema} ({where})"
        assert integrity(db) == ["ok"], where
        assert query(db, CHECKSUM_SQL)[0] == big.checksum, where
        attempts = history_rows(db)
        assert len(attempts) <= 1, where
        if schema == big.old_schema:
            state = attempts[0]["status"] if attempts else "not started"
            assert state in ("running", "not started"), where
        else:
            assert [a["status"] for a in attempts] == ["succeeded"], where
            state = "committed"
        outcomes.append(state)

        # A later migrate finishes the job and records the interrupted attempt as failed.
        system = system_for(db, big.new_models, tmp_path / f"backups{k}")
        for backup in system.list_backups().backups:  # a backup cut short by the kill is never listed
            assert system.backups.verify_backup(backup.id).verified is not False, where
        result = system.execute_auto_migration(create_backup=False)
        assert result.success, where
        assert user_schema(db) == big.new_schema, where
        assert query(db, CHECKSUM_SQL)[0] == big.checksum, where
        assert integrity(db) == ["ok"], where
        assert system.check_migration_status().migration_needed is False, where
        history = system.get_migration_history()
        statuses = sorted(h.status for h in history)
        if state == "running":
            assert statuses == ["failed", "succeeded"], where
            failed = next(h for h in history if h.status == "failed")
            assert failed.error and failed.error.startswith("interrupted"), (failed.error, where)
            assert failed.finished_at is not None
        elif state == "not started":
            assert statuses == ["succeeded"], where
        else:  # committed before the kill: nothing left to do
            assert statuses == ["succeeded"] and result.operations_executed == 0, where
        leftovers = query(db, "SELECT name FROM sqlite_schema WHERE name LIKE '\\_migration\\_new%' ESCAPE '\\'")
        assert leftovers == [], where
    print(f"kill outcomes (seed {seed}): {list(zip((round(d * 1000) for d in delays), outcomes))}")
    assert "running" in outcomes, f"no kill landed inside the migration transaction: {outcomes} (seed={seed})"


def _wait_for_big_journal(db: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until the table copy has spilled pages to the rollback journal: the process is then inside
    the migration transaction (the history table's own short transactions journal only a page or two)
    and the journal header is synced, so a kill leaves a hot journal."""
    journal = Path(f"{db}-journal")
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if journal.stat().st_size > 256 * 1024:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.001)


def _kill_with_hot_journal(big: Big, tmp_path: Path, name: str) -> Path:
    """Kill a migrating CLI process while its rollback journal exists (inside the transaction)."""
    for attempt in range(5):
        db = _copy(big, tmp_path / f"{name}{attempt}.db")
        journal = Path(f"{db}-journal")
        proc = subprocess.Popen([CLI, *_cli_args(db, big.new_models, tmp_path / "b", "--no-backup")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), cwd=ROOT)
        _wait_for(Path(f"{db}.migration.lock.json"), proc)
        _wait_for_big_journal(db, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        try:
            head = journal.read_bytes()[:8]
        except FileNotFoundError:
            continue
        if head == JOURNAL_MAGIC:
            return db
    pytest.fail("could not kill the migration inside its transaction")


def test_status_right_after_a_crash_reads_the_old_schema(big, tmp_path):
    """Regression: with a hot journal, connect(write=False) opened mode=ro, which cannot roll it back, so
    status/diff failed ('attempt to write a readonly database') and health said unhealthy."""
    db = _kill_with_hot_journal(big, tmp_path, "hot")
    system = system_for(db, big.new_models, tmp_path / "b")
    health = system.get_system_health()
    status = system.check_migration_status()  # read-only, the first thing an operator runs after a crash
    assert status.migration_needed is True
    assert [c.kind for c in status.changes] == ["alter_column_type"]
    assert health.status != "unhealthy", [c.detail for c in health.checks]


def test_migrate_right_after_a_crash_recovers_the_hot_journal(big, tmp_path):
    db = _kill_with_hot_journal(big, tmp_path, "hotmig")
    system = system_for(db, big.new_models, tmp_path / "b")
    result = system.execute_auto_migration(create_backup=True)  # the backup must copy the recovered state
    assert result.success and result.backup_id
    assert user_schema(db) == big.new_schema and query(db, CHECKSUM_SQL)[0] == big.checksum
    history = system.get_migration_history()
    assert sorted(h.status for h in history) == ["failed", "succeeded"]
    assert next(h for h in history if h.status == "failed").error.startswith("interrupted")
    # the backup taken after recovery holds the old schema and every row
    backup = Path(system.list_backups().backups[0].path)
    assert user_schema(backup) == big.old_schema and query(backup, CHECKSUM_SQL)[0] == big.checksum
    assert system.rollback_last_migration().success
    assert user_schema(db) == big.old_schema and query(db, CHECKSUM_SQL)[0] == big.checksum


# ---------------------------------------------------------------------------------------------
# (b) two processes at once
# ---------------------------------------------------------------------------------------------

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from server.cli import main          # heavy imports before the barrier
    import migration_core.dialects.sqlite.dialect
    Path(sys.argv[2]).touch()
    go = Path(sys.argv[1])
    while not go.exists():
        time.sleep(0.0005)
    sys.exit(main(sys.argv[3:]))
""")


SLOW_MIGRATOR = textwrap.dedent("""
    import sys, time
    from migration_core import AutoMigrationSystem, MigrationSettings
    db, models, backups = sys.argv[1:4]
    system = AutoMigrationSystem(MigrationSettings(database_url=f"sqlite:///{db}", models=models, backup_dir=backups))
    result = system.execute_auto_migration(create_backup=False, progress=lambda *a: time.sleep(0.3))
    print(f"migrated: {result.operations_executed}")
""")


def _start_workers(big: Big, tmp_path: Path, db: Path, lock_timeout_ms: int, n: int = 2) -> tuple[Path, list]:
    go = tmp_path / "go"
    procs = []
    for i in range(n):
        ready = tmp_path / f"ready{i}"
        p = subprocess.Popen([sys.executable, "-c", WORKER, str(go), str(ready),
                              *_cli_args(db, big.new_models, tmp_path / "backups", "--no-backup")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                             env=_env(MIGRATION_LOCK_TIMEOUT_MS=str(lock_timeout_ms)))
        procs.append((p, ready))
    for p, ready in procs:
        _wait_for(ready, p)
    return go, [p for p, _ in procs]


def _finish(procs) -> list[tuple[int, int, str, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append((p.pid, p.returncode, stdout, stderr))
    return out


def _one_succeeded_migrate(db: Path) -> None:
    rows = history_rows(db)
    assert [(r["kind"], r["status"]) for r in rows] == [("migrate", "succeeded")], rows


def test_two_processes_one_migrates_the_other_waits_and_finds_nothing_to_do(big, tmp_path):
    db = _copy(big, tmp_path / "app.db")
    go, procs = _start_workers(big, tmp_path, db, lock_timeout_ms=60_000)
    go.touch()
    results = _finish(procs)
    codes = sorted(r[1] for r in results)
    assert codes == [0, 0], results
    outputs = sorted(r[2].strip().splitlines()[0] for r in results)
    assert outputs[0].startswith("migrated: ") and outputs[1] == "up to date: nothing to migrate", results
    _one_succeeded_migrate(db)
    assert user_schema(db) == big.new_schema and query(db, CHECKSUM_SQL)[0] == big.checksum
    assert integrity(db) == ["ok"]


def test_two_processes_with_a_short_lock_timeout(big, tmp_path):
    """Released together: one migrates; the other times out on the lock naming the holder's pid
    (or, if it only got there after the first had finished, finds nothing to do)."""
    db = _copy(big, tmp_path / "app.db")
    go, procs = _start_workers(big, tmp_path, db, lock_timeout_ms=50)
    go.touch()
    results = _finish(procs)
    winners = [r for r in results if r[1] == 0 and r[2].startswith("migrated: ")]
    assert len(winners) == 1, results
    (loser,) = [r for r in results if r is not winners[0]]
    if loser[1] == 1:
        assert "could not acquire the migration lock" in loser[3], loser
        assert f"pid {winners[0][0]}" in loser[3], (winners[0][0], loser[3])
        assert "purpose 'migrate'" in loser[3]
    else:
        assert loser[1] == 0 and loser[2].startswith("up to date"), loser
    _one_succeeded_migrate(db)
    assert user_schema(db) == big.new_schema and query(db, CHECKSUM_SQL)[0] == big.checksum


def test_second_process_during_a_migration_gets_lock_timeout_naming_the_holder(big, tmp_path):
    """Deterministic variant: the second process starts only once the first holds the lock."""
    db = _copy(big, tmp_path / "app.db")
    go, (second,) = _start_workers(big, tmp_path, db, lock_timeout_ms=100, n=1)  # imported and waiting
    # The first is slowed down by its progress callback (0.3 s per statement) so that it surely
    # still holds the lock when the second asks for it, however loaded the machine is.
    first = subprocess.Popen([sys.executable, "-c", SLOW_MIGRATOR, str(db), big.new_models, str(tmp_path / "backups")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    try:
        _wait_for(Path(f"{db}.migration.lock.json"), first)
        assert first.poll() is None, "the first migration ended before the second could start"
        started = time.monotonic()
        go.touch()
        (_, code, stdout, stderr), = _finish([second])
        assert time.monotonic() - started < 30
    finally:
        first_out = _finish([first])[0]
    assert first_out[1] == 0 and first_out[2].startswith("migrated: "), first_out
    assert first_out[0] == first.pid
    assert code == 1, (code, stdout, stderr)
    assert "could not acquire the migration lock" in stderr
    assert f"pid {first.pid}" in stderr and "timeout 100 ms" in stderr and "purpose 'migrate'" in stderr
    assert "Traceback" not in stderr
    _one_succeeded_migrate(db)


# ---------------------------------------------------------------------------------------------
# (c) time limit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["1ms", "third"])
def test_time_limit_rolls_back_everything_and_records_the_failure(big, tmp_path, limit):
    db = _copy(big, tmp_path / "app.db")
    timeout_ms = 1 if limit == "1ms" else max(20, int(big.migrate_ms / 3))
    dump_before = user_dump(db)
    hash_before = query(db, CHECKSUM_SQL)[0]
    system = system_for(db, big.new_models, tmp_path / "backups")
    started = time.monotonic()
    with pytest.raises(ExecutionTimeout) as excinfo:
        system.execute_auto_migration(timeout_ms=timeout_ms, create_backup=False)
    elapsed_ms = (time.monotonic() - started) * 1000
    message = str(excinfo.value)
    assert "exceeded the time limit" in message and "rolled back, nothing changed" in message
    assert getattr(excinfo.value, "migration_id", None)
    # The history row is the only difference: the user tables are logically identical.
    # (The file cannot stay byte-identical: the failure is recorded in _migration_history in the same file.)
    assert user_schema(db) == big.old_schema
    assert user_dump(db) == dump_before
    assert query(db, CHECKSUM_SQL)[0] == hash_before
    assert integrity(db) == ["ok"]
    assert not Path(f"{db}-journal").exists()
    [row] = history_rows(db)
    assert row["status"] == "failed" and "time limit" in row["error"] and row["id"] == excinfo.value.migration_id
    if limit == "third":
        assert elapsed_ms < big.migrate_ms * 3 + 2000, "the limit did not interrupt the running statement"
    # without the limit it goes through
    assert system.execute_auto_migration(create_backup=False).success
    assert user_schema(db) == big.new_schema


def test_time_limit_via_cli_exit_code_and_untouched_user_data(big, tmp_path):
    db = _copy(big, tmp_path / "app.db")
    dump_before = user_dump(db)
    r = subprocess.run([CLI, *_cli_args(db, big.new_models, tmp_path / "backups", "--no-backup", "--timeout-ms", "1")],
                       capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120)
    assert r.returncode == 1, r
    assert "exceeded the time limit" in r.stderr and "Traceback" not in r.stderr
    assert user_dump(db) == dump_before
    assert [row["status"] for row in history_rows(db)] == ["failed"]
