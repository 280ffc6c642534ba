"""Issue 14 through the MCP server (in-memory SDK client) on SQLite, PostgreSQL and MariaDB: preview_diff
returns a plan_id, migrate(plan_id=...) runs exactly that plan or refuses a stale one saying why, and the
tool descriptions tell the model to preview, show the user, then migrate with the id."""

from __future__ import annotations

from mcp import Client

from server.mcp_server import build_server

V1 = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n'
V2 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
      'Column("email", String(100)))\n')


async def _call(client, name: str, args: dict):
    result = await client.call_tool(name, args)
    return result, (result.content[0].text if result.content else "")


async def test_preview_then_migrate_with_plan_id(anydb):
    anydb.migrate(V1)
    anydb.sql("INSERT INTO users (id, name) VALUES (1, 'ann')")
    system = anydb.system(V2)
    app = build_server(system, run_startup_migration=False)
    async with Client(app) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "plan_id" in tools["migrate"].description and "show the user" in tools["migrate"].description
        assert "plan_id" in tools["preview_diff"].description

        result, _ = await _call(client, "preview_diff", {})
        assert not result.is_error
        plan_id = result.structured_content["plan_id"]
        assert len(plan_id) == 64 and result.structured_content["sql"]

        # The database changes behind the preview's back: migrate with the old id refuses, naming what changed.
        anydb.sql("ALTER TABLE users ADD COLUMN nick VARCHAR(10)")
        changed = anydb.snapshot()
        result, text = await _call(client, "migrate", {"plan_id": plan_id})
        assert result.is_error
        assert "the database or the models changed since this plan was previewed" in text
        assert "the database's schema changed" in text and "nick" in text
        assert anydb.snapshot() == changed

        anydb.sql("ALTER TABLE users DROP COLUMN nick")
        result, text = await _call(client, "migrate", {"plan_id": plan_id})
        assert not result.is_error, text
        assert result.structured_content["plan_id"] == plan_id
        assert system.get_migration_history(1)[0].plan_id == plan_id
        result, text = await _call(client, "migrate", {"plan_id": "not-an-id"})
        assert result.is_error and "64 hex digits" in text


ADD_EMAIL = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
             'Column("email", String(100), nullable=False))\n')


async def test_fills_through_the_tools(anydb):
    anydb.migrate(V1)
    anydb.sql("INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob')")
    system = anydb.system(ADD_EMAIL)
    app = build_server(system, run_startup_migration=False)
    fill = "users.email=" + ("CONCAT(name, '@example.com')" if anydb.kind == "mysql" else "name || '@example.com'")
    async with Client(app) as client:
        result, text = await _call(client, "migrate", {})
        assert result.is_error and 'fills=["users.email=EXPR"]' in text and "--fill" not in text
        result, text = await _call(client, "preview_diff", {"fills": ["users.email=(SELECT 1)"]})
        assert result.is_error and "no query, subquery" in text
        result, text = await _call(client, "preview_diff", {"fills": [fill]})
        assert not result.is_error, text
        preview = result.structured_content
        assert preview["safe_to_apply"] and preview["options"]["fills"] == [fill]
        result, text = await _call(client, "migrate", {"fills": [fill], "plan_id": preview["plan_id"]})
        assert not result.is_error, text
    assert anydb.sql("SELECT id, email FROM users ORDER BY id") == [(1, "ann@example.com"), (2, "bob@example.com")]
