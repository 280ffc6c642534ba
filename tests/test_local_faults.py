"""What production does to a SQLite database and its folder, for real: another connection holding the
file locked, zeroed pages, a backup killed half way, a read-only folder, a models file that exits."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from migration_core import MigrationSettings, execute_startup_migration
from migration_core.errors import LockTimeout, MigrationError

from helpers_core import CLI, ROOT, file_sha256, make_big_table, query, run_cli, system_for, write_models

T1 = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("a", String(40)), Index("ix_t_a", "a"))\n'
T2 = T1.replace('Column("a", String(40))', 'Column("a", String(40)), Column("b", Integer)')


def _db(tmp: Path, rows: int = 0) -> tuple[Path, str, str]:
    db = tmp / "app.db"
    v1, v2 = write_models(tmp, T1), write_models(tmp, T2)
    system_for(db, v1, tmp / "backups").execute_auto_migration(create_backup=False)
    if rows:
        conn = sqlite3.connect(db)
        conn.executemany("INSERT INTO t (a) VALUES (?)", [(f"row {i:08d} padding padding",) for i in range(rows)])
        conn.commit()
        conn.close()
    return db, v1, v2


HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute(sys.argv[2])
    if sys.argv[2] != "BEGIN EXCLUSIVE":
        conn.execute("INSERT INTO t (a) VALUES ('uncommitted')")
    print("locked", flush=True)
    time.sleep(60)
""")


@contextlib.contextmanager
def held(db: Path, begin: str):
    """Another process holding the file: `BEGIN IMMEDIATE` plus a write (writers wait), or `BEGIN EXCLUSIVE`."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), begin], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("begin", ["BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"])
def test_database_locked_by_another_connection(tmp_path, begin):
    db, _, v2 = _db(tmp_path, rows=10)
    with held(db, begin):
        before = file_sha256(db)
        settings = MigrationSettings(database_url=f"sqlite:///{db}", models=v2, backup_dir=tmp_path / "backups",
                                     lock_timeout_ms=800)
        started = time.monotonic()
        result = execute_startup_migration(settings)  # its contract: never raises
        waited = time.monotonic() - started
        assert result.success is False and "locked by another connection" in result.error, result.error
        assert 0.7 < waited < 8, waited  # it waited for the lock timeout, then gave up
        r = run_cli("--database-url", f"sqlite:///{db}", "--models", v2, "--backup-dir", str(tmp_path / "backups"), "migrate",
                    env={"MIGRATION_LOCK_TIMEOUT_MS": "800"})
        assert r.returncode == 1 and "locked by another connection" in r.stderr and "nothing was changed" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert file_sha256(db) == before
        assert not list((tmp_path / "backups").glob("*")), "an orphan backup was left"
    assert system_for(db, v2, tmp_path / "backups").execute_auto_migration().success  # once the lock is gone


def _zero_pages(db: Path, pages: list[int]) -> None:
    size = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * size)
            fh.write(b"\0" * size)


def test_corrupt_file_is_reported_and_never_written(tmp_path):
    db, _, v2 = _db(tmp_path, rows=20_000)
    pages = os.path.getsize(db) // 4096
    _zero_pages(db, [pages // 2, pages // 2 + 1, pages - 3])
    assert query(db, "PRAGMA quick_check") != [("ok",)] if _readable(db) else True
    before = file_sha256(db)
    args = ("--database-url", f"sqlite:///{db}", "--models", v2, "--backup-dir", str(tmp_path / "backups"))

    health = run_cli(*args, "--json", "health")
    assert "Traceback" not in health.stderr and health.returncode == 1, health.stderr
    report = json.loads(health.stdout)
    assert report["status"] == "unhealthy"
    assert {c["name"]: c["status"] for c in report["checks"]}["integrity"] == "fail"

    status = run_cli(*args, "--json", "status")
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["safe_to_apply"] is False and "is corrupt" in st["warnings"][0] and "migrate refuses" in st["warnings"][0]

    migrate = run_cli(*args, "migrate")
    assert migrate.returncode == 1 and "is corrupt" in migrate.stderr and "nothing was changed" in migrate.stderr
    assert "Traceback" not in migrate.stderr
    assert file_sha256(db) == before  # no history row written into it
    assert not (tmp_path / "backups").exists() or not list((tmp_path / "backups").iterdir())  # the corrupt file not backed up


def _readable(db: Path) -> bool:
    try:
        query(db, "PRAGMA quick_check")
        return True
    except sqlite3.DatabaseError:
        return False


def test_backup_killed_half_way_leaves_a_partial_file_that_the_next_run_removes(tmp_path):
    db = tmp_path / "big.db"
    models = write_models(tmp_path, 'Table("big", metadata, Column("id", Integer, primary_key=True), Column("name", String(50), '
                          'nullable=False), Column("amount", Integer, nullable=False), Column("note", Text))\n')
    system_for(db, models, tmp_path / "b").execute_auto_migration(create_backup=False)
    make_big_table(db, 400_000)
    new = write_models(tmp_path, 'Table("big", metadata, Column("id", Integer, primary_key=True), Column("name", String(50), '
                       'nullable=False), Column("amount", Integer, nullable=False), Column("note", Text), Column("x", Integer))\n')
    backups = tmp_path / "backups"
    proc = subprocess.Popen([CLI, "--database-url", f"sqlite:///{db}", "--models", new, "--backup-dir", str(backups), "migrate"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 60
    while not list(backups.glob(".*.partial")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = list(backups.glob(".*.partial*"))
    if not partial:
        pytest.skip("the backup finished before it could be killed")
    assert f".{proc.pid}@" in partial[0].name  # the owner is in the name
    live = backups / f".20250101T000000000000Z-0123abcd.sqlite3.{os.getpid()}@{os.uname().nodename}.partial"
    live.write_bytes(b"a backup another process is writing right now")
    system = system_for(db, new, backups)
    assert system.execute_auto_migration().success
    assert not any(p.exists() for p in partial) and live.exists()  # only the dead writer's file went
    assert [b.reason for b in system.list_backups().backups] == ["pre-migration"]


def _read_only_dir(path: Path):
    """A folder nobody can create files in, root included: chattr +i (root ignores permission bits)."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        return lambda: path.chmod(0o755)
    r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"running as root and cannot make a folder immutable: {r.stderr.strip()}")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_database_folder_says_what_is_read_only(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    db, _, v2 = _db(folder)
    for leftover in folder.glob("*.lock*"):
        leftover.unlink()
    before = file_sha256(db)
    undo = _read_only_dir(folder)
    try:
        args = ("--database-url", f"sqlite:///{db}", "--models", v2, "--backup-dir", str(tmp_path / "backups"))
        r = run_cli(*args, "migrate")
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert f"the folder {folder} is read-only" in r.stderr and "migration lock file" in r.stderr, r.stderr
        status = run_cli(*args, "status")
        assert status.returncode == 0 and "add column t.b" in status.stdout  # reading still works
        health = run_cli(*args, "--json", "health")
        lock = {c["name"]: c for c in json.loads(health.stdout)["checks"]}["lock"]
        assert "read-only" in lock["detail"] and "Traceback" not in health.stderr
        with pytest.raises(MigrationError, match="read-only"):
            system_for(db, v2, tmp_path / "backups").rollback_last_migration()
    finally:
        undo()
    assert file_sha256(db) == before


@pytest.mark.parametrize("how", ["sys.exit()", "sys.exit(0)", "raise SystemExit(3)"])
def test_models_file_that_exits_is_a_models_error(tmp_path, how):
    models = tmp_path / "exits.py"
    models.write_text(f"import sys\n{how}\n")
    db = tmp_path / "app.db"
    r = run_cli("--database-url", f"sqlite:///{db}", "--models", f"{models}:metadata", "migrate")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "importing models file" in r.stderr and "sys.exit" in r.stderr and "Traceback" not in r.stderr
    assert not db.exists()
    result = execute_startup_migration(MigrationSettings(database_url=f"sqlite:///{db}", models=f"{models}:metadata",
                                                         backup_dir=tmp_path / "b"))
    assert result.success is False and "sys.exit" in result.error


def test_lock_timeout_message_for_a_locked_file_is_a_lock_timeout(tmp_path):
    db, _, v2 = _db(tmp_path)
    with held(db, "BEGIN EXCLUSIVE"):
        system = system_for(db, v2, tmp_path / "backups", lock_timeout_ms=300)
        with pytest.raises(LockTimeout, match="BEGIN IMMEDIATE or EXCLUSIVE"):
            system.execute_auto_migration()
