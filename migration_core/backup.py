"""Backups beside each migration: checksummed files with JSON metadata, verified before any restore.

Dialect-independent; a `BackupEngine` does the actual copy (SQLite: `dialects/sqlite/backup.py`).
Each backup is `<id><suffix>` plus `<id>.json`. The data file is written under a temporary name
and renamed only once its checksum is known, and the metadata is written last, so a crash never
leaves metadata that points at a partial file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from .errors import BackupError, ConfigurationError, InvalidBackupId
from .results import BackupInfo
from .settings import MigrationSettings
from .urls import parse_url, sqlite_path

Progress = Callable[[float, float | None, str], None]

METADATA_VERSION = 1
_CHUNK = 1024 * 1024
# [0-9], not \d: \d also matches non-ASCII digits. \Z, not $: $ accepts a trailing newline.
_BACKUP_ID_RE = re.compile(r"[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}\Z")
_BACKUP_ID_LEN = 31


class BackupEngine(Protocol):
    """What BackupManager needs from a dialect: copy out, copy in, check a copy, fingerprint the schema,
    and list the objects beside the tables (views, triggers, routines) that a restore must give back."""

    suffix: str

    def write_backup(self, dest: Path) -> list[str] | None:
        """Write the backup; return what could not be saved ("view v (why)"), e.g. a view broken already."""
        ...

    def restore_backup(self, src: Path) -> None: ...

    def check_backup_file(self, path: Path) -> str | None: ...

    def schema_fingerprint(self) -> str | None: ...

    def kept_objects(self) -> dict[str, str]:
        """"kind name" -> definition of every view, trigger and routine now in the database."""
        ...

    def drop_kept_objects(self, keys: list[str]) -> None:
        """Drop objects a restore left that the backup does not have (made after it was taken)."""
        ...


def validate_backup_id(backup_id: object) -> str:
    """Return `backup_id` if well formed; raise InvalidBackupId otherwise, before any file is touched."""
    if not isinstance(backup_id, str) or len(backup_id) != _BACKUP_ID_LEN or not _BACKUP_ID_RE.match(backup_id):
        shown = repr(backup_id if not isinstance(backup_id, str) or len(backup_id) <= 60 else backup_id[:60] + "...")
        raise InvalidBackupId(
            f"invalid backup id {shown}: expected the form YYYYMMDDTHHMMSSffffffZ-xxxxxxxx "
            "(UTC timestamp and 8 lowercase hex digits, as shown by list_backups)"
        )
    return backup_id


def new_backup_id(now: datetime | None = None) -> str:
    """A sortable, unique id: UTC timestamp to the microsecond plus 32 random bits."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 of a file read in 1 MiB chunks, so large backups never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def backup_engine_for(settings: MigrationSettings) -> BackupEngine:
    """The backup engine for the settings' database URL."""
    url = parse_url(settings.database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        from .dialects.sqlite.backup import SqliteBackupEngine

        return SqliteBackupEngine(sqlite_path(url), timeout_ms=max(settings.lock_timeout_ms, 1000))
    from .dialects.factory import get_dialect

    return get_dialect(settings).backup_engine()


# `.<id><suffix>.<pid>@<host>.partial`, plus SQLite's journal files beside a partial copy; older versions wrote no owner.
_PARTIAL_RE = re.compile(r"\.[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}.*?(?:\.(?P<pid>[0-9]+)@(?P<host>[^/]+))?\.partial(?:-journal|-wal|-shm)?\Z")
_LEGACY_PARTIAL_AGE_S = 86400


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (and directories on some OSes) refuse fsync; durability is best effort
    finally:
        os.close(fd)


class BackupManager:
    """Create, list, verify, restore and prune the backups of one database."""

    def __init__(self, settings: MigrationSettings, engine: BackupEngine | None = None,
                 row_counter: Callable[[Path], dict[str, int] | None] | None = None):
        """`row_counter(backup_file)` gives the rows per table kept in the metadata (see rowcount.py)."""
        self.settings = settings
        self.engine = engine if engine is not None else backup_engine_for(settings)
        self.row_counter = row_counter
        self.last_restore: dict[str, list[str]] = {"kept": [], "lost": []}

    @property
    def backup_dir(self) -> Path:
        return self.settings.resolved_backup_dir()

    @property
    def _format(self) -> str:
        return getattr(self.engine, "name", type(self.engine).__name__)

    def _data_path(self, backup_id: str) -> Path:
        return self.backup_dir / f"{backup_id}{self.engine.suffix}"

    def _meta_path(self, backup_id: str) -> Path:
        return self.backup_dir / f"{backup_id}.json"

    def _ensure_dir(self) -> Path:
        directory = self.backup_dir
        if not directory.is_dir():
            directory.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
        return directory

    def create_backup(self, reason: str, migration_id: str | None = None, progress: Progress | None = None) -> BackupInfo:
        """Copy the database into a new backup and return its metadata."""
        report = progress or (lambda done, total, message: None)
        try:
            directory = self._ensure_dir()
        except OSError as exc:
            raise BackupError(f"cannot create backup directory {self.backup_dir}: {exc.strerror or exc}") from exc
        created = datetime.now(UTC)
        backup_id = new_backup_id(created)
        while self._meta_path(backup_id).exists() or self._data_path(backup_id).exists():
            backup_id = new_backup_id(created)
        final = self._data_path(backup_id)
        owner = f"{os.getpid()}@{socket.gethostname()}"  # so a later run can tell a dead writer's file from a live one's
        tmp = directory / f".{backup_id}{self.engine.suffix}.{owner}.partial"
        meta_tmp = directory / f".{backup_id}.json.{owner}.partial"
        try:
            fingerprint = self.engine.schema_fingerprint()
            kept = self.engine.kept_objects()
            report(0, None, f"copying {self.settings.masked_url} to backup {backup_id}")
            unsaved = self.engine.write_backup(tmp) or []
            os.chmod(tmp, 0o600)
            table_rows = self.row_counter(tmp) if self.row_counter else None
            size = tmp.stat().st_size
            report(0, size, f"computing SHA-256 of {size} bytes")
            checksum = sha256_file(tmp)
            _fsync_path(tmp)
            os.replace(tmp, final)
            info = BackupInfo(
                id=backup_id,
                created_at=created,
                size_bytes=size,
                table_rows=table_rows,
                checksum=checksum,
                path=str(final),
                database=self.settings.masked_url,
                reason=reason,
                migration_id=migration_id,
                schema_fingerprint=fingerprint,
                unsaved_objects=unsaved,
            )
            lost = {u.split(" (", 1)[0] for u in unsaved}
            meta = {
                "metadata_version": METADATA_VERSION,
                "format": self._format,
                **info.model_dump(mode="json", exclude={"path", "verified"}),
                "kept_objects": {k: _digest(v) for k, v in kept.items() if k not in lost},
            }
            fd = os.open(meta_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(meta, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(meta_tmp, self._meta_path(backup_id))
            _fsync_path(directory)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            meta_tmp.unlink(missing_ok=True)
            if not self._meta_path(backup_id).exists():
                final.unlink(missing_ok=True)
            if isinstance(exc, BackupError) or not isinstance(exc, Exception):
                raise
            raise BackupError(f"backup of {self.settings.masked_url} failed: {exc}") from exc
        report(size, size, f"backup {backup_id} written ({size} bytes, sha256 {checksum[:12]})")
        return info

    def _load(self, backup_id: str) -> BackupInfo:
        """Parse one metadata file; BackupError with the reason when it is unusable."""
        meta = self._meta_path(backup_id)
        try:
            raw = json.loads(meta.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BackupError(f"unknown backup id {backup_id}: no backup with id {backup_id} in {self.backup_dir}; "
                              "list the available ones with list_backups (CLI: migration-mcp backups)") from None
        except (OSError, ValueError) as exc:
            raise BackupError(f"metadata of backup {backup_id} ({meta}) is unreadable: {exc}") from None
        if not isinstance(raw, dict) or raw.get("id") != backup_id:
            raise BackupError(f"metadata of backup {backup_id} ({meta}) does not describe that backup")
        fmt = raw.get("format")
        if fmt is not None and fmt != self._format:
            raise BackupError(f"backup {backup_id} was made by {fmt!r}, not {self._format!r}; it cannot be used here")
        try:
            # The path is derived, never trusted from the file: metadata cannot point outside the folder.
            return BackupInfo.model_validate({**raw, "path": str(self._data_path(backup_id)), "verified": None})
        except ValidationError as exc:
            raise BackupError(f"metadata of backup {backup_id} ({meta}) is invalid: {exc.error_count()} bad field(s)") from None

    def get_backup(self, backup_id: str) -> BackupInfo:
        """Metadata of one backup; BackupError if it does not exist or is unusable."""
        validate_backup_id(backup_id)
        return self._load(backup_id)

    def list_backups(self) -> list[BackupInfo]:
        """Usable backups, newest first; anything else in the folder is ignored."""
        try:
            entries = list(os.scandir(self.backup_dir))
        except OSError:
            return []
        backups: list[BackupInfo] = []
        for entry in entries:
            name = entry.name
            if not name.endswith(".json"):
                continue
            backup_id = name[: -len(".json")]
            if len(backup_id) != _BACKUP_ID_LEN or not _BACKUP_ID_RE.match(backup_id):
                continue
            try:
                info = self._load(backup_id)
            except BackupError:
                continue
            if Path(info.path).is_file():
                backups.append(info)
        backups.sort(key=lambda b: (b.created_at, b.id), reverse=True)
        return backups

    def verify_backup(self, backup_id: str) -> BackupInfo:
        """Check presence, size, checksum and readability; return the info with verified=True."""
        info = self.get_backup(backup_id)
        path = Path(info.path)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise BackupError(f"backup {backup_id} is unusable: its file {path} is missing") from None
        if size < info.size_bytes:
            raise BackupError(
                f"backup {backup_id} is truncated: {path} has {size} bytes, {info.size_bytes} were written; refusing to use it"
            )
        if size > info.size_bytes:
            raise BackupError(
                f"backup {backup_id} has grown: {path} has {size} bytes, {info.size_bytes} were written; refusing to use it"
            )
        checksum = sha256_file(path)
        if checksum != info.checksum:
            raise BackupError(
                f"backup {backup_id} failed its checksum: {path} was modified after it was written (tampered or corrupted); "
                f"expected sha256 {info.checksum}, found {checksum}; refusing to use it"
            )
        problem = self.engine.check_backup_file(path)
        if problem:
            raise BackupError(f"backup {backup_id} is not restorable: {problem}")
        return info.model_copy(update={"verified": True})

    def restore_backup(self, backup_id: str) -> BackupInfo:
        """Verify, then copy the backup into the live database; a bad backup changes nothing. Afterwards
        the views, triggers and routines must be exactly the backup's (objects made since are dropped,
        those the backup could not save are left as they are): BackupError otherwise."""
        info = self.verify_backup(backup_id)
        before = self.engine.kept_objects()
        self.engine.restore_backup(Path(info.path))
        expected = self._raw(backup_id).get("kept_objects")
        unsaved = {u.split(" (", 1)[0] for u in info.unsaved_objects}
        kept = list(getattr(self.engine, "restore_notes", None) or [])
        kept += [f"{u} (the backup could not save it; left as it was)" for u in sorted(unsaved) if u in before]
        lost = [f"{k} (made after the backup)" for k in sorted(before) if expected is not None and k not in expected and k not in unsaved]
        self.last_restore = {"kept": kept, "lost": lost}  # what the restore kept and took away, for its result
        if expected is not None:
            self._check_kept(backup_id, expected, unsaved)
        return info

    def restore_problems(self, backup_id: str) -> list[str]:
        """Why a restore of `backup_id` will be refused, found without changing anything (the engine's
        `restore_problems`, where it has one: PostgreSQL's objects of other schemas); empty when none is
        foreseen or the engine cannot tell."""
        check = getattr(self.engine, "restore_problems", None)
        if check is None:
            return []
        return check(Path(self.get_backup(backup_id).path))

    def _raw(self, backup_id: str) -> dict:
        try:
            return json.loads(self._meta_path(backup_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _check_kept(self, backup_id: str, expected: dict[str, str], unsaved: set[str]) -> None:
        now = self.engine.kept_objects()
        extra = sorted(k for k in now if k not in expected and k not in unsaved)
        if extra:
            self.engine.drop_kept_objects(extra)
            now = self.engine.kept_objects()
        missing = sorted(k for k in expected if k not in now)
        changed = sorted(k for k in expected if k in now and _digest(now[k]) != expected[k])
        extra = sorted(k for k in now if k not in expected and k not in unsaved)
        if missing or changed or extra:
            parts = [f"{label}: {', '.join(keys)}" for label, keys in (("missing", missing), ("different", changed),
                                                                       ("not in the backup", extra)) if keys]
            err = BackupError(f"backup {backup_id} was restored, but the views, triggers and routines beside the tables are "
                              f"not the backup's ({'; '.join(parts)})")
            err.restored = True  # the restore itself went through: the database holds the backup's tables
            raise err

    def delete_backup(self, backup_id: str) -> None:
        """Remove one backup (data first, as in cleanup)."""
        validate_backup_id(backup_id)
        self._data_path(backup_id).unlink(missing_ok=True)
        self._meta_path(backup_id).unlink(missing_ok=True)

    def remove_leftovers(self) -> list[str]:
        """Delete the partial files of backups whose writer died (killed during a backup): those whose
        owner process, named in the file name, no longer runs on this host; files from before owners were
        named, once a day old. Returns the names removed. Call while holding the migration lock."""
        try:
            entries = list(os.scandir(self.backup_dir))
        except OSError:
            return []
        removed = []
        for entry in entries:
            m = _PARTIAL_RE.match(entry.name)
            if not m or not entry.is_file(follow_symlinks=False):
                continue
            pid, host = m.group("pid"), m.group("host")
            if pid is None:
                gone = time.time() - entry.stat().st_mtime > _LEGACY_PARTIAL_AGE_S
            else:
                gone = host == socket.gethostname() and not _process_alive(int(pid))
            if gone:
                Path(entry.path).unlink(missing_ok=True)
                removed.append(entry.name)
        return sorted(removed)

    def cleanup_old_backups(self, keep: int | None = None) -> list[str]:
        """Delete all but the newest `keep` backups (default: settings.backup_retention); return removed ids."""
        keep = self.settings.backup_retention if keep is None else keep
        if keep < 0:
            raise ConfigurationError(f"keep must be >= 0, got {keep}")
        removed: list[str] = []
        for info in self.list_backups()[keep:]:
            # Data first: a crash in between leaves orphan metadata, which list_backups skips.
            Path(info.path).unlink(missing_ok=True)
            self._meta_path(info.id).unlink(missing_ok=True)
            removed.append(info.id)
        return removed

    def get_backup_statistics(self) -> dict[str, Any]:
        backups = self.list_backups()
        return {
            "backup_dir": str(self.backup_dir),
            "count": len(backups),
            "total_bytes": sum(b.size_bytes for b in backups),
            "oldest_created_at": backups[-1].created_at.isoformat() if backups else None,
            "newest_created_at": backups[0].created_at.isoformat() if backups else None,
            "retention": self.settings.backup_retention,
        }
