"""Issue 13, item 3: `rollback` says what it would restore and what each table would lose or gain, then
asks; scripts pass --yes; without a terminal and without --yes it refuses. The MCP tool asks with the
same facts. On SQLite, PostgreSQL and MariaDB, through the real console script (in a pseudo-terminal
where a person would answer) and the real MCP server."""

from __future__ import annotations

import json
import re

import pytest
from mcp import Client
from mcp_types import ElicitResult

from cli_process import project_env, run_cli, run_in_terminal
from migration_core import AutoMigrationSystem
from server.mcp_server import build_server

V1 = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n'
V2 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
      'Column("email", String(100)))\n')


def _two_migrations(project) -> tuple[dict, dict[str, str]]:
    """Migration A creates `users` (its backup predates the table), 3 rows go in, migration B adds a
    column (its backup holds the 3 rows), 2 more rows go in. Returns B's result and the CLI's env."""
    project.migrate(V1)
    project.sql("INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')")
    models = project.models(V2)
    b = AutoMigrationSystem(project.settings(models)).execute_auto_migration()
    assert b.success and b.backup_id
    project.sql("INSERT INTO users (id, name, email) VALUES (4, 'dee', 'd@x'), (5, 'eve', 'e@x')")
    env = project_env(project, models)
    return b.model_dump(), env


def _users(project) -> int:
    return project.sql("SELECT count(*) FROM users")[0][0]


def test_rollback_in_a_terminal_shows_what_it_restores_and_asks(anydb):
    b, env = _two_migrations(anydb)
    before = anydb.snapshot()

    declined = run_in_terminal("rollback", env=env, answer="n")
    assert declined.code == 3, declined.screen
    screen = declined.screen
    assert f"backup {b['backup_id']}" in screen
    assert re.search(r"taken \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(pre-migration\)", screen), screen
    assert f"undoes:   migration {b['migration_id']}" in screen
    assert "rows:     2 would be lost, 0 would come back" in screen
    assert re.search(r"^users\s+5\s+3\s+-2\s*$", screen, re.M), screen
    assert f"Restore backup {b['backup_id']}?" in screen and "[y/N]" in screen
    assert "rollback not confirmed; nothing was changed" in screen
    assert anydb.snapshot() == before and _users(anydb) == 5

    accepted = run_in_terminal("rollback", env=env, answer="y")
    assert accepted.code == 0, accepted.screen
    assert f"rolled back to backup {b['backup_id']} (undid migration {b['migration_id']})" in accepted.screen
    assert _users(anydb) == 3

    # The trap from the issue: a second rollback reaches back past the table's creation. Now it says so.
    second = run_in_terminal("rollback", env=env, answer="no")
    assert second.code == 3
    assert "rows:     3 would be lost, 0 would come back" in second.screen
    assert re.search(r"^users\s+3\s+0\s+-3\s+not in the backup: dropped\s*$", second.screen, re.M), second.screen
    assert _users(anydb) == 3


def test_rollback_without_a_terminal_needs_yes(anydb):
    b, env = _two_migrations(anydb)
    before = anydb.snapshot()
    refused = run_cli("rollback", env=env)
    assert refused.returncode == 3, refused.stderr
    assert refused.stderr.count("\n") == 1 and "pass --yes" in refused.stderr and "nothing was changed" in refused.stderr
    assert refused.stdout == ""
    assert anydb.snapshot() == before

    preview = run_cli("--json", "rollback", "--dry-run", env=env)
    assert preview.returncode == 0, preview.stderr
    doc = json.loads(preview.stdout)
    assert doc["backup"]["id"] == b["backup_id"] and doc["undoes_migration"]["id"] == b["migration_id"]
    assert doc["backup"]["table_rows"] == {"users": 3}  # counted when the backup was taken
    assert doc["tables"] == [{"table": "users", "rows_now": 5, "rows_after": 3, "change": -2, "note": ""}]
    assert (doc["rows_lost"], doc["rows_gained"]) == (2, 0)
    assert anydb.snapshot() == before

    done = run_cli("rollback", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert f"rolled back to backup {b['backup_id']}" in done.stdout and _users(anydb) == 3


def test_rollback_of_a_given_backup_in_a_terminal(project):
    """--backup-id: the question names that backup; the one restored is the one shown."""
    b, env = _two_migrations(project)
    run = run_in_terminal("rollback", "--backup-id", b["backup_id"], env=env, answer="YES")
    assert run.code == 0, run.screen
    assert f"Restore backup {b['backup_id']}?" in run.screen
    assert _users(project) == 3


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_mcp_rollback_asks_with_the_same_facts(project, mode):
    b, _ = _two_migrations(project)
    system = AutoMigrationSystem(project.settings(project.models(V2)))
    questions: list[str] = []

    async def decline(context, params):
        questions.append(params.message)
        return ElicitResult(action="decline")

    async with Client(build_server(system, run_startup_migration=False), mode=mode, elicitation_callback=decline) as client:
        result = await client.call_tool("rollback", {})
    assert result.is_error and "declined" in result.content[0].text
    [question] = questions
    assert f"backup {b['backup_id']}, taken " in question and "(pre-migration)" in question
    assert f"undoes:   migration {b['migration_id']}" in question
    assert "rows:     2 would be lost, 0 would come back" in question
    assert "- users: 5 rows now, 3 rows after (-2)" in question
    assert _users(project) == 5


async def test_mcp_rollback_refusal_without_elicitation_carries_the_facts(project):
    b, _ = _two_migrations(project)
    system = AutoMigrationSystem(project.settings(project.models(V2)))
    async with Client(build_server(system, run_startup_migration=False), mode="legacy") as client:
        result = await client.call_tool("rollback", {})
    text = result.content[0].text
    assert result.is_error and "cannot ask" in text
    assert f"backup {b['backup_id']}" in text and "- users: 5 rows now, 3 rows after (-2)" in text
    assert _users(project) == 5
