"""Tester finding F13: what a rollback says is what it did. Its result and its text name each table's
rows before and after (counted after the restore, not predicted), what it kept (the history; objects of
other schemas set aside and made again) and what it took away (rows, tables and objects made after the
backup), on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json

from cli_process import run_cli
from test_rollback_confirm import _two_migrations


def test_rollback_says_what_it_restored_kept_and_lost(anydb):
    b, env = _two_migrations(anydb)  # users: 3 rows in the backup, 5 now
    anydb.sql("CREATE TABLE scratchpad (id integer PRIMARY KEY)")
    anydb.sql("INSERT INTO scratchpad VALUES (1)")
    anydb.sql("CREATE VIEW late_view AS SELECT id FROM users")
    done = run_cli("rollback", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"rolled back to backup {b['backup_id']}" in out
    assert "rows:     " in out and "users 5 -> 3" in out and "scratchpad 1 -> dropped" in out, out
    assert "kept:     the migration history (2 entries)" in out, out
    lost = next(line for line in out.splitlines() if line.startswith("lost:"))
    assert "2 row(s) of users" in lost and "1 row(s) of scratchpad (the table is not in the backup: dropped)" in lost, lost
    assert "view late_view (made after the backup)" in lost, lost

    as_json = run_cli("--json", "rollback", "--yes", "--backup-id", b["backup_id"], env=env)
    assert as_json.returncode == 0, as_json.stderr


    doc = json.loads(as_json.stdout)
    assert doc["success"] and doc["lost"] == [] and doc["kept"][0].startswith("the migration history"), doc
    assert all(t["change"] == 0 for t in doc["tables"]), doc["tables"]
