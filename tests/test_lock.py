"""The migration lock excludes other processes and other threads, and names its holder on timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from migration_core.errors import LockTimeout
from migration_core.lock import FileMigrationLock

ROOT = Path(__file__).resolve().parents[1]


def _hold_in_subprocess(db: Path, purpose: str) -> subprocess.Popen:
    """Start a process that takes the lock, prints READY, and holds it until killed."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from migration_core.lock import FileMigrationLock
        with FileMigrationLock({str(db)!r}, timeout_ms=5000).acquire({purpose!r}):
            print("READY", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "READY", f"holder did not start: {line!r}"
    return proc


@pytest.fixture
def db(tmp_path):
    return tmp_path / "app.db"


def test_other_process_holder_times_out_with_its_pid(db):
    proc = _hold_in_subprocess(db, "migrate from test")
    try:
        lock = FileMigrationLock(db, timeout_ms=200)
        start = time.monotonic()
        with pytest.raises(LockTimeout) as excinfo:
            with lock.acquire("second migration"):
                pytest.fail("acquired a lock held by another process")
        assert time.monotonic() - start >= 0.2
        message = str(excinfo.value)
        assert f"pid {proc.pid}" in message
        assert "migrate from test" in message
        assert str(db) in message
        assert "200 ms" in message

        status = lock.status()
        assert status.held and not status.stale_info
        assert status.holder is not None and status.holder.pid == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_sigkilled_holder_frees_the_lock_and_leaves_stale_info(db):
    proc = _hold_in_subprocess(db, "doomed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lock = FileMigrationLock(db, timeout_ms=1000)
    status = lock.status()
    assert not status.held
    assert status.stale_info
    assert status.stale_holder is not None and status.stale_holder.pid == proc.pid
    with lock.acquire("after crash") as holder:
        assert holder.pid == os.getpid()
        info = json.loads(Path(f"{db}.migration.lock.json").read_text())
        assert info["pid"] == os.getpid() and info["purpose"] == "after crash"
    status = lock.status()
    assert not status.held and not status.stale_info


def test_status_free_then_held_then_free(db):
    lock = FileMigrationLock(db, timeout_ms=100)
    assert (lock.status().held, lock.status().stale_info) == (False, False)
    with lock.acquire("check status"):
        status = FileMigrationLock(db).status()
        assert status.held
        assert status.holder is not None and status.holder.purpose == "check status"
        assert status.holder.pid == os.getpid()
        assert status.to_dict()["holder"]["purpose"] == "check status"
    assert not lock.status().held
    assert not Path(f"{db}.migration.lock.json").exists()


def test_two_instances_in_one_process_exclude_each_other(db):
    first = FileMigrationLock(db, timeout_ms=100)
    second = FileMigrationLock(db, timeout_ms=100)
    with first.acquire("first"):
        errors: list[BaseException] = []

        def other_thread():
            try:
                with second.acquire("second"):
                    pass
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
                errors.append(exc)

        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert len(errors) == 1 and isinstance(errors[0], LockTimeout)
        assert f"pid {os.getpid()}" in str(errors[0]) and "'first'" in str(errors[0])

        # Same thread, other instance: fails at once instead of waiting for itself.
        start = time.monotonic()
        with pytest.raises(LockTimeout, match="already held by this thread"):
            with second.acquire("nested"):
                pass
        assert time.monotonic() - start < 0.1
    with second.acquire("after release"):
        pass


def test_threads_are_serialized(db):
    inside = 0
    max_inside = 0
    guard = threading.Lock()

    def worker():
        nonlocal inside, max_inside
        with FileMigrationLock(db, timeout_ms=5000).acquire("worker"):
            with guard:
                inside += 1
                max_inside = max(max_inside, inside)
            time.sleep(0.02)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max_inside == 1


def test_zero_timeout_is_a_single_attempt(db):
    with FileMigrationLock(db, timeout_ms=0).acquire("holder"):
        t_errors: list[BaseException] = []

        def attempt():
            try:
                with FileMigrationLock(db, timeout_ms=0).acquire("try once"):
                    pass
            except LockTimeout as exc:
                t_errors.append(exc)

        t = threading.Thread(target=attempt)
        t.start()
        t.join(2)
        assert len(t_errors) == 1
    with FileMigrationLock(db, timeout_ms=0).acquire("now free"):
        pass


def test_lock_is_released_when_the_body_raises(db):
    lock = FileMigrationLock(db, timeout_ms=100)
    with pytest.raises(RuntimeError):
        with lock.acquire("failing migration"):
            raise RuntimeError("boom")
    assert not lock.status().held
    assert not lock.status().stale_info
