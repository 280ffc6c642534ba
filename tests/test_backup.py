"""Backups on real SQLite files: round trips, refusal of damaged files, id validation, retention."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from datetime import datetime
from pathlib import Path

import pytest

from migration_core.backup import BackupManager, new_backup_id, validate_backup_id
from migration_core.dialects.sqlite.backup import SqliteBackupEngine
from migration_core.errors import BackupError, ConfigurationError, InvalidBackupId
from migration_core.settings import MigrationSettings


def _settings(tmp_path: Path, **extra) -> MigrationSettings:
    return MigrationSettings(database_url=f"sqlite:///{tmp_path / 'app.db'}", backup_dir=tmp_path / "backups", **extra)


def _rows(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    conn.execute("CREATE INDEX ix_items_name ON items (name)")
    conn.executemany("INSERT INTO items (name) VALUES (?)", [(f"item-{i}",) for i in range(500)])
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def manager(tmp_path, db) -> BackupManager:
    return BackupManager(_settings(tmp_path))


def test_create_list_verify_round_trip(manager, db, tmp_path):
    calls: list[tuple] = []
    info = manager.create_backup("before migration", migration_id="m-1", progress=lambda *a: calls.append(a))
    validate_backup_id(info.id)
    path = Path(info.path)
    assert path == tmp_path / "backups" / f"{info.id}.sqlite3"
    assert info.size_bytes == path.stat().st_size
    assert info.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.schema_fingerprint == SqliteBackupEngine(db).schema_fingerprint()
    assert (info.reason, info.migration_id, info.verified) == ("before migration", "m-1", None)
    assert 2 <= len(calls) <= 6 and calls[-1][0] == calls[-1][1] == info.size_bytes
    assert all(isinstance(c[2], str) and c[2] for c in calls)

    # The copy is a complete, standalone database with the data.
    assert _rows(path) == _rows(db) and len(_rows(path)) == 500
    assert not any(p.name.endswith((".partial", "-wal", "-shm", "-journal")) for p in path.parent.iterdir())
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700

    meta = json.loads((tmp_path / "backups" / f"{info.id}.json").read_text())
    assert meta["id"] == info.id and meta["checksum"] == info.checksum and meta["format"] == "sqlite-online-backup"
    assert datetime.fromisoformat(meta["created_at"]).utcoffset().total_seconds() == 0

    assert [b.id for b in manager.list_backups()] == [info.id]
    assert manager.get_backup(info.id).checksum == info.checksum
    assert manager.verify_backup(info.id).verified is True


def test_backup_of_a_wal_database_is_self_contained(manager, db):
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("INSERT INTO items (name) VALUES ('only-in-wal')")
    conn.commit()
    info = manager.create_backup("wal")
    conn.close()
    assert Path(info.path).read_bytes()[18:20] == b"\x01\x01"  # rollback-journal format, no WAL needed
    assert ("only-in-wal",) in [(r[1],) for r in _rows(Path(info.path))]
    manager.verify_backup(info.id)


def test_restore_brings_back_rows_while_another_connection_is_open(manager, db):
    before = _rows(db)
    info = manager.create_backup("snapshot")
    other = sqlite3.connect(db)
    other.execute("DELETE FROM items WHERE id > 10")
    other.execute("UPDATE items SET name = 'changed' WHERE id = 1")
    other.execute("CREATE TABLE extra (x)")
    other.commit()
    assert _rows(db) != before

    restored = manager.restore_backup(info.id)
    assert restored.verified is True
    assert _rows(db) == before
    # The connection that stayed open sees the restored database, not a stale cache.
    assert other.execute("SELECT count(*) FROM items").fetchone() == (500,)
    assert other.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchone() is None
    assert SqliteBackupEngine(db).schema_fingerprint() == info.schema_fingerprint
    other.close()


def test_tampered_backup_is_refused_and_live_db_unchanged(manager, db):
    info = manager.create_backup("snapshot")
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM items")
    conn.commit()
    conn.close()
    live_before = db.read_bytes()

    data = bytearray(Path(info.path).read_bytes())
    data[len(data) // 2] ^= 0x01
    Path(info.path).write_bytes(bytes(data))
    assert Path(info.path).stat().st_size == info.size_bytes

    with pytest.raises(BackupError, match="checksum") as excinfo:
        manager.restore_backup(info.id)
    assert "tampered" in str(excinfo.value) and info.id in str(excinfo.value)
    assert db.read_bytes() == live_before


def test_truncated_backup_is_refused_with_its_own_message(manager, db):
    info = manager.create_backup("snapshot")
    live_before = db.read_bytes()
    with open(info.path, "r+b") as fh:
        fh.truncate(info.size_bytes - 100)
    with pytest.raises(BackupError, match="truncated") as excinfo:
        manager.restore_backup(info.id)
    assert "checksum" not in str(excinfo.value)
    with pytest.raises(BackupError, match="truncated"):
        manager.verify_backup(info.id)
    assert db.read_bytes() == live_before


def test_missing_backup_file_and_unknown_id(manager):
    info = manager.create_backup("snapshot")
    os.unlink(info.path)
    with pytest.raises(BackupError, match="missing"):
        manager.verify_backup(info.id)
    assert manager.list_backups() == []
    with pytest.raises(BackupError, match="no backup with id"):
        manager.get_backup(new_backup_id())


def test_corrupt_but_consistent_metadata_fails_quick_check(manager, tmp_path):
    """A file whose metadata matches but is not an SQLite database is refused by the engine check."""
    info = manager.create_backup("snapshot")
    junk = b"not a database".ljust(info.size_bytes, b"\0")
    Path(info.path).write_bytes(junk)
    meta_path = tmp_path / "backups" / f"{info.id}.json"
    meta = json.loads(meta_path.read_text())
    meta["checksum"] = hashlib.sha256(junk).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BackupError, match="not an SQLite database"):
        manager.verify_backup(info.id)


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "",
        "20240101T000000000000Z-deadbeef/../x",
        "20240101T000000000000Z-deadbeef\n",
        "20240101T000000000000Z-deadbee\0",
        "20240101T000000000000Z-DEADBEEF",
        "20240101T000000000000Z-deadbeef0",
        "２0240101T000000000000Z-deadbeef",  # fullwidth digit
        "2024010١T000000000000Z-deadbeef",  # Arabic-Indic digit
        "x" * 10_000,
        None,
    ],
)
def test_invalid_ids_are_rejected_before_touching_files(manager, bad, monkeypatch):
    def no_fs(*a, **k):
        raise AssertionError("filesystem touched for an invalid id")

    # Every file access of the manager goes through these; none may run for a bad id.
    for name in ("_load", "_meta_path", "_data_path", "_ensure_dir"):
        monkeypatch.setattr(manager, name, no_fs)
    for call in (validate_backup_id, manager.get_backup, manager.verify_backup, manager.restore_backup):
        with pytest.raises(InvalidBackupId, match="invalid backup id"):
            call(bad)


def test_invalid_backup_id_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        validate_backup_id("../x")
    assert validate_backup_id("20240101T000000000000Z-deadbeef") == "20240101T000000000000Z-deadbeef"


def test_retention_keeps_newest_and_statistics(tmp_path, db):
    manager = BackupManager(_settings(tmp_path, backup_retention=3))
    ids = [manager.create_backup(f"b{i}").id for i in range(5)]
    assert ids == sorted(ids)
    assert [b.id for b in manager.list_backups()] == ids[::-1]

    removed = manager.cleanup_old_backups()
    assert sorted(removed) == ids[:2]
    remaining = manager.list_backups()
    assert [b.id for b in remaining] == ids[:1:-1]
    assert not (tmp_path / "backups" / f"{ids[0]}.json").exists()
    assert not (tmp_path / "backups" / f"{ids[0]}.sqlite3").exists()

    assert manager.cleanup_old_backups(keep=1) == [ids[3], ids[2]]
    stats = manager.get_backup_statistics()
    assert stats["count"] == 1
    assert stats["total_bytes"] == remaining[0].size_bytes
    assert stats["oldest_created_at"] == stats["newest_created_at"] == remaining[0].created_at.isoformat()
    assert stats["backup_dir"] == str(tmp_path / "backups")
    with pytest.raises(ConfigurationError):
        manager.cleanup_old_backups(keep=-1)


def test_statistics_with_no_backup_dir(manager):
    stats = manager.get_backup_statistics()
    assert (stats["count"], stats["total_bytes"], stats["newest_created_at"]) == (0, 0, None)
    assert manager.list_backups() == []


def test_junk_in_backup_dir_is_ignored(manager, tmp_path):
    info = manager.create_backup("real")
    folder = tmp_path / "backups"
    (folder / "notes.txt").write_text("hello")
    (folder / "random.json").write_text("{}")
    (folder / "20240101T000000000000Z-0000000a.json").write_text("{not json")
    (folder / "20240101T000000000000Z-0000000b.json").write_text(json.dumps({"id": "someone-else"}))
    (folder / "20240101T000000000000Z-0000000c.json").write_text(json.dumps([1, 2]))
    (folder / "20240101T000000000000Z-0000000d.json").write_text(
        json.dumps({"id": "20240101T000000000000Z-0000000d", "size_bytes": "many"})
    )
    (folder / "20240101T000000000000Z-0000000e.sqlite3").write_bytes(b"orphan data without metadata")
    (folder / f".{new_backup_id()}.sqlite3.partial").write_bytes(b"crashed write")
    (folder / "subdir.json").mkdir()
    assert [b.id for b in manager.list_backups()] == [info.id]
    assert manager.get_backup_statistics()["count"] == 1
    assert manager.cleanup_old_backups(keep=0) == [info.id]
    assert (folder / "notes.txt").exists()


def test_failed_backup_leaves_nothing_behind(tmp_path):
    manager = BackupManager(_settings(tmp_path))  # no database file was created
    with pytest.raises(BackupError, match="does not exist"):
        manager.create_backup("nothing to copy")
    assert list((tmp_path / "backups").iterdir()) == []
    assert not (tmp_path / "app.db").exists()


def test_password_is_masked_in_metadata(tmp_path, db):
    settings = MigrationSettings(
        database_url="postgresql+psycopg://app:s3cr3t-pw@db.example/app", backup_dir=tmp_path / "backups"
    )
    manager = BackupManager(settings, engine=SqliteBackupEngine(db))
    info = manager.create_backup("masking")
    meta_text = (tmp_path / "backups" / f"{info.id}.json").read_text()
    assert "s3cr3t-pw" not in meta_text and "s3cr3t-pw" not in info.model_dump_json()
    assert "app:***@db.example" in info.database


def test_unsupported_url_without_engine_is_a_configuration_error(tmp_path):
    settings = MigrationSettings(database_url="mssql+pyodbc://app:pw@db.example/app", backup_dir=tmp_path / "b")
    with pytest.raises(ConfigurationError, match="not supported"):
        BackupManager(settings)


def test_server_urls_pick_their_dialects_backup_engine_without_connecting(tmp_path):
    settings = MigrationSettings(database_url="postgresql+psycopg://app:pw@db.example/app", backup_dir=tmp_path / "b")
    assert BackupManager(settings).engine.name == "pg_dump-custom"


def test_restore_gives_up_when_the_live_db_stays_locked(tmp_path, db):
    engine = SqliteBackupEngine(db, timeout_ms=200)
    manager = BackupManager(_settings(tmp_path), engine=engine)
    info = manager.create_backup("snapshot")
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN")
    writer.execute("DELETE FROM items WHERE id > 250")  # an open write transaction blocks the restore
    with pytest.raises(BackupError, match="stayed locked by another connection for 200 ms"):
        manager.restore_backup(info.id)
    writer.execute("ROLLBACK")
    writer.close()
    manager.restore_backup(info.id)
    assert len(_rows(db)) == 500
