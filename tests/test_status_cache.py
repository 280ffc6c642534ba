"""A reused system (the MCP server's) must see every change made behind its back."""

from __future__ import annotations

import gc

import pytest

from migration_core.errors import ConfigurationError

BODY = """
t = Table("t", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))
"""


def test_reused_system_sees_changes_made_behind_its_back(project):
    project.migrate(BODY)
    system = project.system(BODY)
    assert not system.check_migration_status().migration_needed
    project.script("ALTER TABLE t ADD COLUMN extra INTEGER")
    assert [c.kind for c in system.check_migration_status().changes] == ["drop_column"]
    project.script("ALTER TABLE t DROP COLUMN extra; CREATE INDEX ix_name ON t (name)")
    assert [c.kind for c in system.check_migration_status().changes] == ["drop_index"]
    project.script("DROP INDEX ix_name")
    assert not system.check_migration_status().migration_needed


@pytest.mark.parametrize("enabled", [True, False])
def test_status_restores_the_garbage_collector_state(project, enabled):
    project.migrate(BODY)
    system = project.system(BODY)
    (gc.enable if enabled else gc.disable)()
    try:
        system.check_migration_status()
        assert gc.isenabled() is enabled
        broken = project.system(BODY + 'u = Table("u", metadata, Column("x", Integer, server_default=text("f(")))\n')
        with pytest.raises(ConfigurationError, match="cannot be created"):
            broken.check_migration_status()  # fails while the collector is paused
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


@pytest.mark.parametrize("enabled", [True, False])
def test_startup_migration_restores_the_garbage_collector_state(project, enabled):
    from migration_core import execute_startup_migration

    (gc.enable if enabled else gc.disable)()
    try:
        result = execute_startup_migration(project.settings(project.models(BODY)))
        assert result.success and result.operations_executed
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_a_reread_rebuilds_only_the_tables_that_changed(project):
    import sqlite3

    from migration_core.dialects.sqlite.catalog import read_snapshot

    project.migrate(BODY + 'u = Table("u", metadata, Column("id", Integer, primary_key=True))\n')
    conn = sqlite3.connect(project.db)
    try:
        first = read_snapshot(conn)
        conn.execute("ALTER TABLE u ADD COLUMN extra TEXT")
        second = read_snapshot(conn)
    finally:
        conn.close()
    assert second.tables["t"] is first.tables["t"]
    assert second.tables["u"] is not first.tables["u"]
    assert [c.name for c in second.tables["u"].columns] == ["id", "extra"]
