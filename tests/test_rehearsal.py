"""Issue 14, item 3: rehearsals on a copy of the real data (`diff --rehearse`, `migrate --rehearse`, MCP
`preview_diff(rehearse=true)`) on SQLite, PostgreSQL and MariaDB: real figures reported, the live
database unchanged (SQLite: byte for byte; servers: catalog fingerprint and every row), nothing left behind."""

from __future__ import annotations

import json

import pytest

from cli_process import project_env, run_cli
from migration_core.errors import MigrationError

V1 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n'
      'Table("posts", metadata, Column("id", Integer, primary_key=True), Column("uid", Integer))\n')
V2 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50), nullable=False), '
      'Column("email", String(100)), Index("ix_users_email", "email"))\n'
      'Table("posts", metadata, Column("id", Integer, primary_key=True), Column("uid", ForeignKey("users.id")))\n'
      'Table("tags", metadata, Column("id", Integer, primary_key=True))\n')
FILL = "users.name='anon'"


def _seed(p) -> None:
    p.migrate(V1)
    p.insert("users", [(i, None if i % 10 == 0 else f"u{i}") for i in range(1, 41)])
    p.insert("posts", [(i, 1 + i % 40) for i in range(1, 61)])


def test_rehearsal_reports_real_figures_and_leaves_the_live_database_unchanged(anydb):
    _seed(anydb)
    env = project_env(anydb, anydb.models(V2))
    before = anydb.snapshot()
    run = run_cli("--json", "diff", "--rehearse", "--fill", FILL, env=env)
    assert run.returncode == 0, run.stderr
    r = json.loads(run.stdout)["rehearsal"]
    assert r["ran"] is True and r["error"] is None, r
    assert r["duration_ms"] > 0 and r["statements_run"] > 0 and r["estimated_seconds"] >= 0
    rows = {t["table"]: (t["rows_before"], t["rows_after"]) for t in r["tables"]}
    assert rows == {"users": (40, 40), "posts": (60, 60), "tags": (None, 0)}
    assert r["checks"][0] == "the copy matches the models: yes" and all("failed" not in c for c in r["checks"])
    assert anydb.snapshot() == before  # byte for byte on SQLite; catalog fingerprint and every row on servers
    text = run_cli("diff", "--rehearse", "--fill", FILL, env=env).stdout
    assert "rehearsal: ran" in text and "ROWS BEFORE" in text

    # A plan the data breaks: the rehearsal reports the first error, and migrate --rehearse refuses.
    anydb.insert("posts", [(61, 999)])
    broken = anydb.snapshot()
    r = json.loads(run_cli("--json", "diff", "--rehearse", "--fill", FILL, env=env).stdout)["rehearsal"]
    assert r["ran"] is False and "foreign key" in r["error"].lower(), r
    assert anydb.snapshot() == broken

    anydb.sql("DELETE FROM posts WHERE id = 61")
    run = run_cli("--json", "migrate", "--rehearse", "--fill", FILL, env=env)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["rehearsal"]["ran"] is True and result["migration_id"]
    assert run_cli("check", env=env).returncode == 0
    assert anydb.sql("SELECT count(*) FROM users WHERE name = 'anon'") == [(4,)]


def test_mariadb_rehearsal_refuses_above_its_size_limit(tmp_path):
    from servers import server_project

    from migration_core.dialects.mysql.rehearsal import rehearse_mysql

    with server_project("mysql", tmp_path) as p:
        _seed(p)
        system = p.system(V2)
        comparison = system.comparator.compare_schemas(fills=[FILL])
        with pytest.raises(MigrationError, match="above the rehearsal limit of 0.0 MiB"):
            rehearse_mysql(system.dialect, comparison, 30000, max_bytes=1)


async def test_rehearsal_through_the_tool(anydb):
    from mcp import Client

    from server.mcp_server import build_server

    _seed(anydb)
    system = anydb.system(V2)
    before = anydb.snapshot()
    async with Client(build_server(system, run_startup_migration=False)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "locks" in tools["preview_diff"].input_schema["properties"]["rehearse"]["description"]
        result = await client.call_tool("preview_diff", {"rehearse": True, "fills": [FILL]})
        assert not result.is_error, result.content[0].text
        r = result.structured_content["rehearsal"]
        assert r["ran"] is True and {t["table"]: t["rows_after"] for t in r["tables"]}["users"] == 40
    assert anydb.snapshot() == before


def test_read_only_mode_rehearses_only_where_nothing_is_written(anydb):
    """SQLite's rehearsal only reads the live file; a server's writes (a rolled-back transaction holding
    locks, a scratch database), so read-only mode refuses it there."""
    from migration_core.errors import SafetyRefusal

    _seed(anydb)
    system = anydb.system(V2, read_only=True)
    before = anydb.snapshot()
    if anydb.kind == "sqlite":
        assert system.preview_diff(rehearse=True, fills=[FILL]).rehearsal.ran is True
    else:
        with pytest.raises(SafetyRefusal, match="read-only mode is on"):
            system.preview_diff(rehearse=True, fills=[FILL])
    assert anydb.snapshot() == before
