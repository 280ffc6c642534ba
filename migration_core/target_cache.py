"""The normalized-target cache: the snapshot normalization produced, kept on disk between processes.

Every process's first status normalizes the models: compile the DDL, create it in a scratch place
(an in-memory SQLite database, a PostgreSQL schema, a MariaDB database), read it back. On a server
that is the larger part of a cold call (1,019 statements at 500 tables). The result depends only on
the models' DDL, the server (version and the settings that shape what it stores: character set,
collation, sql_mode, search path, extensions) and this tool's code, so it is stored under a key
made of all three: `fingerprint.metadata_fingerprint`, the dialect's `normalization_key(conn)`, and
the size and modification time of every source file of `migration_core` (which a release or a local
edit changes). A hit skips compile, scratch creation and read-back.

Files live in the user data directory, one folder per database beside the backups
(`<data dir>/targets/<database>-<hash>/`). A file holds its key and the SHA-256 of its body; one
that cannot be read, whose hash or key does not match, or whose body is not a snapshot (or names any
class but the snapshot's own) is ignored and rewritten, never trusted. Read-only mode reads the cache but writes nothing.
Models the fingerprint cannot see (DDL listeners, `@compiles` overrides) bypass the cache, and so
does every call when the environment has `MIGRATION_TARGET_CACHE=off`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from . import snapshot as _snap
from .snapshot import SchemaSnapshot

log = logging.getLogger("migration_core")

KEEP = 8  # stored targets per database (models of several branches); the oldest go first
_CLASSES = {c.__name__: c for c in (_snap.Column, _snap.PrimaryKey, _snap.ForeignKey, _snap.UniqueConstraint,
                                    _snap.CheckConstraint, _snap.Index, _snap.Table, _snap.View, _snap.Trigger,
                                    _snap.Routine, _snap.Names, SchemaSnapshot)}
_code_key: str | None = None


def cache_dir(settings) -> Path:
    """`<data dir>/targets/<database>-<hash>`: one folder per database, named as its backup folder."""
    from .settings import user_data_dir

    return user_data_dir() / "targets" / settings.database_folder_name()


def code_key() -> str:
    """Size and mtime of each `.py` file of migration_core: a new release or a local edit misses."""
    global _code_key
    if _code_key is None:
        root = Path(__file__).resolve().parent
        h = hashlib.sha256()
        stack = [root]
        while stack:
            folder = stack.pop()
            with os.scandir(folder) as entries:
                for e in sorted(entries, key=lambda e: e.name):
                    if e.is_dir() and e.name != "__pycache__":
                        stack.append(Path(e.path))
                    elif e.name.endswith(".py"):
                        st = e.stat()
                        h.update(f"{Path(e.path).relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        _code_key = h.hexdigest()
    return _code_key


class _SnapshotUnpickler(pickle.Unpickler):
    """Builds nothing but the snapshot's own dataclasses (and pickle's built-in tuples, dicts, strings)
    and calls nothing but `sys.intern`: a file that names any other class or function is refused, so
    a stored file can never run code."""

    def __init__(self, file, shared: SchemaSnapshot | None = None):
        super().__init__(file)
        self._shared = shared

    def persistent_load(self, pid):
        if self._shared is not None and type(pid) is tuple and len(pid) == 2 and pid[0] == "table" and pid[1] in self._shared.tables:
            return self._shared.tables[pid[1]]
        raise pickle.UnpicklingError(f"it refers to {pid!r:.80}, which the shared snapshot does not hold")

    def find_class(self, module: str, name: str):
        if module == _snap.__name__ and name in _CLASSES:
            return _CLASSES[name]
        if (module, name) == ("sys", "intern"):
            return sys.intern
        raise pickle.UnpicklingError(f"it names {module}.{name}")


class _Interned:
    """A string stored as `sys.intern(text)`, once per file (pickle's memo keeps one object per text)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __reduce__(self):
        return sys.intern, (self.text,)


class _SnapshotPickler(pickle.Pickler):
    """The snapshot's dataclasses stored as their class called with their fields, every text among them
    read back interned: names, types and definitions repeat across tables, and a status holds two
    snapshots (the target and SQLite's stored live schema) whose texts are mostly the same, which then
    share one object each. At 2,000 tables this is about a third of the memory both take."""

    def __init__(self, file, shared: SchemaSnapshot | None = None):
        super().__init__(file, protocol=5)
        self._texts: dict[str, _Interned] = {}
        self._shared = shared

    def persistent_id(self, obj):
        """A table equal to the shared snapshot's table of that name is stored as a reference to it."""
        if self._shared is not None and type(obj) is _snap.Table:
            same = self._shared.tables.get(obj.name)
            if same is not None and (same is obj or same == obj):
                return ("table", obj.name)
        return None

    def _text(self, value):
        if type(value) is str:
            found = self._texts.get(value)
            if found is None:
                found = self._texts[value] = _Interned(value)
            return found
        if type(value) is tuple:
            return tuple(self._text(v) for v in value)
        return value

    def reducer_override(self, obj):
        cls = type(obj)
        if _CLASSES.get(cls.__name__) is cls and cls is not SchemaSnapshot:
            return cls, tuple(self._text(getattr(obj, f.name)) for f in fields(cls))
        return NotImplemented


class TargetCache:
    """Load and store snapshots of one database (normalized targets; SQLite's live schema). A file is one JSON line (the key and the
    SHA-256 of the body) and the body: the snapshot pickled, read back by `_SnapshotUnpickler`
    (seven times faster than decoding JSON into the dataclasses: 19 ms against 130 ms at 500 tables)."""

    def __init__(self, folder: Path, *, writable: bool, prefix: str = "target", keep: int = KEEP):
        self.folder = folder
        self.writable = writable
        self.prefix = prefix
        self.keep = keep

    def path(self, key: str) -> Path:
        return self.folder / f"{self.prefix}-{key[:40]}.bin"

    def load(self, key: str, shared: SchemaSnapshot | None = None) -> SchemaSnapshot | None:
        """The stored snapshot for `key`; None when missing, unreadable, corrupt or for another key.
        `shared`: the snapshot it was stored against (`store`), whose tables it refers to."""
        p = self.path(key)
        try:
            f = open(p, "rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("normalized-target cache %s unreadable (%s); normalizing again", p, exc)
            return None
        try:
            with f:
                # Hashed, then read from the same open file (a store renames a new file over the name; it
                # never rewrites this one), a block at a time: no copy of a body of several MB is held.
                meta = json.loads(f.readline(1 << 16) or b"null")
                start = f.tell()
                digest = hashlib.sha256()
                while block := f.read(1 << 20):
                    digest.update(block)
                if not isinstance(meta, dict) or meta.get("key") != key or meta.get("sha256") != digest.hexdigest():
                    raise ValueError("its key or checksum does not match")
                f.seek(start)
                snap = _SnapshotUnpickler(f, shared).load()
            if not isinstance(snap, SchemaSnapshot):
                raise ValueError("it holds no snapshot")
            return snap
        except (OSError, ValueError, TypeError, KeyError, AttributeError, EOFError, IndexError, RecursionError,
                pickle.UnpicklingError) as exc:
            log.warning("normalized-target cache %s ignored (%s); normalizing again", p, exc)
            return None

    def store(self, key: str, snap: SchemaSnapshot, shared: SchemaSnapshot | None = None) -> None:
        """Write atomically (a temp file renamed over), then keep the newest KEEP files; a failure is logged, never raised.
        Tables equal to `shared`'s are stored as references to them: `key` must then determine `shared`."""
        if not self.writable:
            return
        out = io.BytesIO()
        _SnapshotPickler(out, shared).dump(snap)
        body = out.getvalue()
        head = json.dumps({"key": key, "sha256": hashlib.sha256(body).hexdigest()}).encode()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{self.prefix}-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(head + b"\n" + body)
                os.replace(tmp, self.path(key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("normalized-target cache not written to %s: %s", self.folder, exc)
            return
        # Keep the newest files; another process may be removing the same old ones (not an error).
        dated = []
        for q in self.folder.glob(f"{self.prefix}-*.bin"):
            try:
                dated.append((q.stat().st_mtime_ns, q))
            except OSError:
                continue
        for _, old in sorted(dated, reverse=True)[self.keep:]:
            try:
                old.unlink(missing_ok=True)
            except OSError as exc:
                log.debug("old normalized-target cache file %s not removed: %s", old, exc)


# The last target this process normalized or loaded through the cache, with its key: SQLite's stored live
# schema refers to its equal tables instead of holding copies (`stored_sqlite_live`).
_target: tuple[str, SchemaSnapshot] | None = None


def normalized_target(dialect, metadata, settings, conn=None, meanwhile=None) -> SchemaSnapshot:
    """`dialect.normalize_target(metadata)`, through the cache when the models allow it.

    `meanwhile()`, when given, is called exactly once in this thread; on a server dialect that has to
    normalize (a cache miss, or the cache bypassed) it runs while the server creates the models on a
    connection of their own, which hides the live read behind the scratch DDL (about a tenth of a cold
    status at 500 tables). An error of either is raised once both have ended."""
    from .fingerprint import fingerprint_or_reason

    def normalize() -> SchemaSnapshot:
        if meanwhile is None:
            return dialect.normalize_target(metadata)
        if not getattr(dialect, "normalizes_on_server", False):
            snap = dialect.normalize_target(metadata)
            meanwhile()
            return snap
        from concurrent.futures import ThreadPoolExecutor, wait

        dialect.clear_interrupt()  # a long-lived process (the MCP server) normalizes again after an interrupted call
        with ThreadPoolExecutor(1, thread_name_prefix="migration-normalize") as pool:
            future = pool.submit(dialect.normalize_target, metadata)
            try:
                meanwhile()
                return future.result()
            except BaseException:
                # Ctrl-C, a signal's exception, or either side's error: the normalization is not waited
                # for (thousands of statements on a large schema); its connection is cut so its thread
                # ends at once, and no thread outlives the call.
                if not future.done():
                    dialect.interrupt_normalization()
                wait([future])
                raise

    def found(snap: SchemaSnapshot) -> SchemaSnapshot:
        if meanwhile is not None:
            meanwhile()
        return snap

    if os.environ.get("MIGRATION_TARGET_CACHE", "").lower() in ("0", "off", "false", "no"):
        return normalize()
    try:
        server = dialect.normalization_key(conn)  # first: a server dialect is initialized by its first connection
    except Exception as exc:  # noqa: BLE001 - a server without one of the settings asked: normalize as before
        if type(exc).__name__ == "ConfigurationError":
            raise
        log.debug("normalized-target cache bypassed: the server's key query failed (%s)", exc)
        return normalize()
    fp, why = fingerprint_or_reason(metadata, dialect.sa_dialect)
    if fp is None:
        log.debug("normalized-target cache bypassed: %s", why)
        return normalize()
    key = hashlib.sha256("\n".join([fp, dialect.name, server, code_key()]).encode()).hexdigest()
    cache = TargetCache(cache_dir(settings), writable=not settings.read_only)
    global _target
    snap = cache.load(key)
    if snap is not None:
        _target = (key, snap)
        return found(snap)
    snap = normalize()
    cache.store(key, snap)
    _target = (key, snap)
    return snap


def stored_sqlite_live(settings, rows: list[tuple], build) -> SchemaSnapshot:
    """SQLite's live snapshot through the same store (`live-*.bin`, the newest two kept): SQLite derives
    every catalog fact the snapshot is read from out of the stored CREATE text in `sqlite_schema`
    (https://sqlite.org/fileformat2.html#storage_of_the_sql_database_schema), so that text (`rows`), the
    ignore patterns, the SQLite library's version and this tool's source decide the snapshot. A hit
    skips the three other catalog queries and the parsing of every CREATE statement (about half a
    warm status at 500 tables). `build()` reads it when there is no stored one.

    When this process has a target from the cache (a status reads the target first), the tables equal
    to the target's are stored as references to them and the target's key joins the key: an
    up-to-date database's live schema then costs next to no memory beside the target (a third of a
    warm status's peak at 2,000 tables), and a models change reads the live schema again once."""
    import sqlite3

    if os.environ.get("MIGRATION_TARGET_CACHE", "").lower() in ("0", "off", "false", "no"):
        return build()
    shared_key, shared = _target if _target is not None else ("", None)
    h = hashlib.sha256(f"{code_key()}\n{sqlite3.sqlite_version}\n{json.dumps(list(settings.ignore_tables))}\n{shared_key}\n".encode())
    for row in rows:
        h.update(json.dumps(row).encode())
        h.update(b"\n")
    key = h.hexdigest()
    cache = TargetCache(cache_dir(settings), writable=not settings.read_only, prefix="live", keep=2)
    snap = cache.load(key, shared)
    if snap is None:
        snap = build()
        cache.store(key, snap, shared)
    return snap
