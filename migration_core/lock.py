"""Cross-process migration lock for SQLite databases: one migration at a time per database file.

The OS lock (`filelock.FileLock`, i.e. `flock` on Unix) is released by the kernel when its holder
dies, so a crashed migration never wedges the database. A JSON info file beside it says who holds
the lock, so a waiter that gives up can name the holder instead of just saying "locked".
"""

from __future__ import annotations

import errno
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .errors import ConfigurationError, LockTimeout

# flock already excludes two file descriptors of one process, but the in-process lock makes that
# explicit and portable, and lets a nested acquire in the same thread fail at once instead of
# waiting out its own timeout.
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_OWNERS: dict[str, int] = {}
_REGISTRY_GUARD = threading.Lock()


def _process_lock(key: str) -> threading.Lock:
    with _REGISTRY_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


@dataclass(frozen=True)
class LockHolder:
    """What a holder wrote into the info file when it acquired the lock."""

    pid: int | None
    hostname: str | None
    purpose: str | None
    acquired_at: str | None
    thread: str | None = None

    def describe(self) -> str:
        return (
            f"pid {self.pid if self.pid is not None else '?'} on host {self.hostname or '?'}, "
            f"purpose {self.purpose or '?'!r}, held since {self.acquired_at or '?'}"
        )


@dataclass(frozen=True)
class LockStatus:
    """Snapshot of the lock; `stale_info` means a holder died without removing its info file."""

    lock_path: str
    held: bool
    holder: LockHolder | None
    stale_info: bool
    stale_holder: LockHolder | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "lock_path": self.lock_path,
            "held": self.held,
            "holder": self.holder.__dict__ if self.holder else None,
            "stale_info": self.stale_info,
            "stale_holder": self.stale_holder.__dict__ if self.stale_holder else None,
        }


class FileMigrationLock:
    """Exclusive migration lock on `<db path>.migration.lock`, across processes and threads."""

    def __init__(self, db_path: str | os.PathLike[str], timeout_ms: int = 10000):
        if timeout_ms < 0:
            raise ValueError("timeout_ms must be >= 0")
        self.db_path = Path(db_path).expanduser().resolve()
        self.lock_path = Path(f"{self.db_path}.migration.lock")
        self.info_path = Path(f"{self.db_path}.migration.lock.json")
        self.timeout_ms = timeout_ms
        self._key = os.path.normcase(str(self.lock_path))

    def _file_lock(self) -> FileLock:
        # A fresh, non-singleton, non-reentrant-across-instances object each time: its own descriptor,
        # so it contends with every other holder, including other instances in this process.
        return FileLock(str(self.lock_path), thread_local=False, is_singleton=False)

    @contextmanager
    def acquire(self, purpose: str) -> Iterator[LockHolder]:
        """Hold the lock for the duration of the block; raise LockTimeout after `timeout_ms`."""
        start = time.monotonic()
        timeout_s = self.timeout_ms / 1000
        plock = _process_lock(self._key)
        me = threading.get_ident()
        if _PROCESS_OWNERS.get(self._key) == me:
            raise LockTimeout(
                f"migration lock for {self.db_path} is already held by this thread "
                f"(nested acquire for {purpose!r}); a migration cannot wait for itself"
            )
        got = plock.acquire(timeout=timeout_s) if timeout_s > 0 else plock.acquire(blocking=False)
        if not got:
            raise self._timeout_error(purpose, start)
        try:
            _PROCESS_OWNERS[self._key] = me
            flock = self._file_lock()
            remaining = max(timeout_s - (time.monotonic() - start), 0.0)
            try:
                flock.acquire(timeout=remaining, poll_interval=0.02)
            except Timeout:
                raise self._timeout_error(purpose, start) from None
            except OSError as exc:
                raise self._unwritable_error(exc) from None
            try:
                holder = LockHolder(
                    pid=os.getpid(),
                    hostname=socket.gethostname(),
                    purpose=purpose,
                    acquired_at=datetime.now(UTC).isoformat(),
                    thread=threading.current_thread().name,
                )
                self._write_info(holder)
                try:
                    yield holder
                finally:
                    # Info goes before the OS lock, so a free lock with an info file always means a dead holder.
                    self.info_path.unlink(missing_ok=True)
            finally:
                flock.release()
        finally:
            _PROCESS_OWNERS.pop(self._key, None)
            plock.release()

    def status(self) -> LockStatus:
        """Probe without waiting. The probe briefly takes the lock when it is free."""
        plock = _process_lock(self._key)
        if plock.locked():
            return LockStatus(str(self.lock_path), held=True, holder=self._read_info(), stale_info=False)
        if not self.lock_path.exists() and os.access(self.lock_path.parent, os.W_OK):
            # Nobody has ever taken it (a holder creates the file): free, and a probe must not create it.
            # (In a folder that cannot be written the probe below fails to create it, and says why.)
            leftover = self._read_info() if self.info_path.exists() else None
            return LockStatus(str(self.lock_path), held=False, holder=None, stale_info=leftover is not None or self.info_path.exists(),
                              stale_holder=leftover)
        flock = self._file_lock()
        try:
            flock.acquire(timeout=0, blocking=False)
        except Timeout:
            return LockStatus(str(self.lock_path), held=True, holder=self._read_info(), stale_info=False)
        except OSError as exc:
            raise self._unwritable_error(exc) from None
        try:
            # We hold the OS lock, so no live holder can be writing the info file right now.
            leftover = self._read_info() if self.info_path.exists() else None
            return LockStatus(
                str(self.lock_path),
                held=False,
                holder=None,
                stale_info=self.info_path.exists(),
                stale_holder=leftover,
            )
        finally:
            flock.release()

    def _unwritable_error(self, exc: OSError) -> ConfigurationError:
        """The lock file cannot be created: a read-only folder (EACCES, EPERM for an immutable one,
        EROFS for a read-only mount) or a missing one."""
        folder = self.lock_path.parent
        why = exc.strerror or str(exc)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            why = f"the folder {folder} is read-only ({why})"
        return ConfigurationError(
            f"cannot create the migration lock file {self.lock_path}: {why}; migrate and rollback need write access to "
            "the database's folder, for this lock file and SQLite's journal; status, diff and health only read")

    def _timeout_error(self, purpose: str, start: float) -> LockTimeout:
        waited_ms = (time.monotonic() - start) * 1000
        holder = self._read_info()
        who = holder.describe() if holder else "an unknown holder (it has not written its info file yet)"
        return LockTimeout(
            f"could not acquire the migration lock for {self.db_path} (for {purpose!r}) after waiting "
            f"{waited_ms:.0f} ms (timeout {self.timeout_ms} ms): it is held by {who}; "
            f"lock file {self.lock_path}"
        )

    def _write_info(self, holder: LockHolder) -> None:
        data = json.dumps(holder.__dict__, indent=2)
        fd, tmp = tempfile.mkstemp(prefix=".migration-lock-", suffix=".tmp", dir=self.info_path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
            os.replace(tmp, self.info_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read_info(self) -> LockHolder | None:
        try:
            raw = json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict):
            return None
        pid = raw.get("pid")
        return LockHolder(
            pid=pid if isinstance(pid, int) else None,
            hostname=_str_or_none(raw.get("hostname")),
            purpose=_str_or_none(raw.get("purpose")),
            acquired_at=_str_or_none(raw.get("acquired_at")),
            thread=_str_or_none(raw.get("thread")),
        )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
