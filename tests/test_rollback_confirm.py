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


P1 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), Column("n", Integer))\n'
      'Table("notes", metadata, Column("id", Integer, primary_key=True))\n')
P2 = P1.replace('Column("n", Integer)', 'Column("n", BigInteger)')


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_rollback_after_a_kill9_on_a_transactional_database_names_the_interrupted_run(kind, tmp_path):
    """F6's flow where the database rolls a killed run back itself: migrate B is kill -9'd mid-plan;
    nothing is left to undo, so `rollback` undoes the last successful migration A, and its dry run and
    question say first that B was interrupted and changed nothing (a real SIGKILL)."""
    import signal
    import subprocess
    import time
    from contextlib import nullcontext

    from conftest import Project
    from helpers_core import CLI, ROOT
    from servers import server_project

    with (nullcontext(Project(tmp_path)) if kind == "sqlite" else server_project(kind, tmp_path)) as p:
        a = AutoMigrationSystem(p.settings(p.models(P1))).execute_auto_migration()
        assert a.success and a.backup_id
        p.sql("INSERT INTO notes (id) VALUES (1)")
        p.sql("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 400000) "
              "INSERT INTO users (id, name, n) SELECT i, 'user ' || i, i FROM s")
        env = project_env(p, p.models(P2))
        proc = subprocess.Popen([CLI, "migrate"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline, b_id = time.monotonic() + 60, None
        while b_id is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                rows = p.sql("SELECT id FROM _migration_history WHERE status = 'running'")
            except Exception:  # noqa: BLE001 - SQLite: the writer holds the file for a moment
                rows = []
            b_id = rows[0][0] if rows else None
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if b_id is None or p.sql("SELECT status FROM _migration_history WHERE id = ?".replace("?", p.param), (b_id,)) != [("running",)]:
            pytest.skip("migrate B finished before it could be killed")
        if kind != "sqlite":  # the killed client's backend ends (rolling back) once it notices
            while p.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()")[0][0] and time.monotonic() < deadline:
                time.sleep(0.05)

        dry = run_cli("rollback", "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr
        assert f"note:     migration {b_id}" in dry.stdout and "was interrupted and changed nothing" in dry.stdout
        assert "the transaction was rolled back): it is recorded as failed, and this rollback does not count it" in dry.stdout
        assert f"restore:  backup {a.backup_id}" in dry.stdout and f"undoes:   migration {a.migration_id}" in dry.stdout, dry.stdout
        asked = run_in_terminal("rollback", env=env, answer="n")
        assert asked.code == 3 and f"migration {b_id}" in asked.screen and f"Restore backup {a.backup_id}?" in asked.screen
        assert _users(p) == 400000

        done = run_cli("--json", "rollback", "--yes", env=env)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["backup_id"] == a.backup_id and result["migration_id"] == a.migration_id and result["recovered"] == []
        assert "users" not in p.tables()  # A's backup predates it: what the preview said
        statuses = dict(p.sql("SELECT id, status FROM _migration_history WHERE kind = 'migrate'"))
        assert statuses == {a.migration_id: "rolled_back", b_id: "failed"}, statuses
