"""Issue 13, item 1: `serve --read-only` writes nothing: no startup migration (a dry run says what it
would do), no backup, no history row, no lock file, no directory, no bytecode cache. Checked by
checksumming the database and listing every folder involved before and after a session, over stdio
with the MCP SDK's client, that calls every tool the server offers and the two it must not."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from cli_process import clean_env, project_env, run_cli
from helpers_core import CLI

READ_ONLY_TOOLS = {"check_status", "preview_diff", "list_backups", "health"}
V1 = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n'
V2 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
      'Column("email", String(100)))\n')


def tree(*roots: Path) -> dict[str, tuple]:
    """Every file and folder under `roots`: path -> (kind, size, SHA-256); a missing root shows as missing."""
    out: dict[str, tuple] = {}
    for root in roots:
        if not root.exists():
            out[str(root)] = ("missing",)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            out[dirpath] = ("dir",)
            for name in filenames:
                p = Path(dirpath) / name
                out[str(p)] = ("file", p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


async def session(env: dict[str, str], *args: str) -> dict[str, dict]:
    """Call every tool of a read-only server once (and the two it must not have); return the results."""
    params = StdioServerParameters(command=CLI, args=["serve", "--read-only", *args], env=env, cwd="/")
    results = {}
    async with Client(params, read_timeout_seconds=60) as client:
        assert {t.name for t in (await client.list_tools()).tools} == READ_ONLY_TOOLS
        for name in sorted(READ_ONLY_TOOLS):
            result = await client.call_tool(name, {})
            assert not result.is_error, (name, result.content[0].text)
            results[name] = result.structured_content
        for name, arguments in (("migrate", {}), ("rollback", {})):
            refused = await client.call_tool(name, arguments)
            assert refused.is_error and "Unknown tool" in refused.content[0].text, refused.content[0].text
    return results


async def test_read_only_server_on_a_new_database_creates_nothing(tmp_path):
    """The default database in a data directory that does not exist yet, the example models: nothing appears."""
    data = tmp_path / "data"
    env = clean_env(MIGRATION_DATA_DIR=str(data))
    results = await session(env)
    assert not data.exists(), tree(data)
    status = results["check_status"]
    startup = status["startup_migration"]
    assert startup["dry_run"] is True and startup["success"] is True and startup["migration_needed"] is True
    assert startup["backup_id"] is None and startup["migration_id"] is None and startup["operations_executed"] == 0
    assert len(startup["changes"]) == len(status["changes"]) > 5 and startup["planned_statements"] > 5
    assert status["safe_to_apply"] is False  # status never promises what this server cannot do
    assert any("read-only mode" in w for w in status["warnings"])
    [check] = [c for c in results["health"]["checks"] if c["name"] == "startup_migration"]
    assert check["detail"].startswith("read-only: the startup migration did not run (would apply ")


async def test_read_only_server_changes_no_byte(project):
    """An existing database with a migration behind it, a backup, and pending changes."""
    project.migrate(V1)
    project.sql("INSERT INTO users (id, name) VALUES (1, 'ann')")
    models_v2 = project.models(V2)
    first = run_cli("migrate", env=project_env(project, project.models(V1)))
    assert first.returncode == 0, first.stderr
    env = project_env(project, models_v2)
    for lock in project.tmp.glob("app.db.migration.lock*"):
        lock.unlink()  # left by the migrations above; a read-only session must not make one (health probes the lock)
    before = tree(project.tmp)
    results = await session(env)
    assert tree(project.tmp) == before  # the database's bytes, its folder, the backups, the models' folder
    assert results["check_status"]["migration_needed"] is True
    [change] = results["check_status"]["startup_migration"]["changes"]
    assert change["detail"].startswith("add column users.email")
    assert results["list_backups"]["backups"]  # the existing backup is listed, and verified by health, read-only


async def test_read_only_server_refuses_nothing_it_reports(project):
    """A destructive pending change: the dry run says the startup migration would be refused."""
    project.migrate(V1 + 'Table("old", metadata, Column("id", Integer, primary_key=True))\n')
    env = project_env(project, project.models(V1))
    before = tree(project.tmp)
    results = await session(env)
    assert tree(project.tmp) == before
    startup = results["check_status"]["startup_migration"]
    assert startup["dry_run"] and startup["refused"] and "drop table old" in startup["error"]
    [check] = [c for c in results["health"]["checks"] if c["name"] == "startup_migration"]
    assert "would be refused" in check["detail"]


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
async def test_read_only_server_on_a_database_server(tmp_path, kind):
    from servers import server_project

    with server_project(kind, tmp_path) as project:
        project.migrate(V1)
        project.sql("INSERT INTO users (id, name) VALUES (1, 'ann')")

        def everything():
            if kind == "postgresql":
                names = project.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            else:
                names = project.sql(f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{project.dbname}' ORDER BY 1")
            return [r[0] for r in names], project.sql("SELECT count(*) FROM _migration_history"), project.state()

        env = project_env(project, project.models(V2))
        before, files = everything(), tree(tmp_path)
        results = await session(env)
        assert everything() == before  # no table, no history row, not a row changed
        assert tree(tmp_path) == files and not (tmp_path / "data").exists()  # no backup, no folder
        assert results["check_status"]["startup_migration"]["changes"][0]["detail"].startswith("add column users.email")


def test_read_only_setting_refuses_writes_on_the_command_line(project):
    project.migrate(V1)
    env = project_env(project, project.models(V2), MIGRATION_READ_ONLY="1")
    before = tree(project.tmp)
    for args in (["migrate"], ["rollback", "--yes"]):
        run = run_cli(*args, env=env)
        assert run.returncode == 3, run.stderr
        assert "read-only mode is on" in run.stderr and "nothing was changed" in run.stderr
    check = run_cli("check", env=env)
    assert check.returncode == 3 and "would be REFUSED" in check.stdout  # pending, and migrate would refuse it
    assert tree(project.tmp) == before
