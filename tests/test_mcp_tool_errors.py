"""Issue 13, item 5: MCP tool errors in the tool's language. An answer to a confirmation that does not
fit its form gets a plain message and changes nothing (only a real `true` is consent); argument
errors read the same over a real stdio connection to `migration-mcp serve`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import ElicitResult

from helpers_core import CLI
from migration_core import AutoMigrationSystem, MigrationSettings
from server.mcp_errors import BAD_ANSWER
from server.mcp_server import build_server

V1 = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n'
V_DROP = 'Table("users", metadata, Column("id", Integer, primary_key=True))\n'
HEADER = "from sqlalchemy import MetaData, Table, Column, Integer, String\nmetadata = MetaData()\n"


def _system(tmp: Path, body: str, name: str) -> AutoMigrationSystem:
    models = tmp / f"{name}.py"
    models.write_text(HEADER + body)
    return AutoMigrationSystem(MigrationSettings(database_url=f"sqlite:///{tmp / 'app.db'}", models=f"{models}:metadata",
                                                 backup_dir=tmp / "backups"))


@pytest.fixture
def migrated(tmp_path) -> Path:
    system = _system(tmp_path, V1, "v1")
    assert system.execute_auto_migration().success
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("INSERT INTO users VALUES (1, 'ann')")
    return tmp_path


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("content", [{"confirm": "yes"}, {"confirm": 1}, {"confirm": "true"}, {"ok": True}, {}])
@pytest.mark.parametrize("tool, arguments", [("migrate", {"allow_destructive": True}), ("rollback", {})])
async def test_an_answer_that_does_not_fit_the_form_changes_nothing(migrated, mode, content, tool, arguments):
    app = build_server(_system(migrated, V_DROP, "drop"), run_startup_migration=False)
    before = (migrated / "app.db").read_bytes()

    async def answer(context, params):
        return ElicitResult(action="accept", content=content)

    async with Client(app, mode=mode, elicitation_callback=answer) as client:
        result = await client.call_tool(tool, arguments)
        assert result.is_error
        assert result.content[0].text == f"Error executing tool {tool}: {BAD_ANSWER}"
        alive = await client.call_tool("check_status", {})
        assert not alive.is_error
    assert (migrated / "app.db").read_bytes() == before


async def test_argument_errors_over_stdio(migrated):
    """The console script's server, spoken to by the SDK's client over pipes, in the handshake most clients use."""
    env = {"MIGRATION_DATABASE_URL": f"sqlite:///{migrated / 'app.db'}", "MIGRATION_MODELS": f"{migrated / 'v1.py'}:metadata",
           "MIGRATION_BACKUP_DIR": str(migrated / "backups"), "MIGRATION_DATA_DIR": str(migrated / "data")}
    params = StdioServerParameters(command=CLI, args=["serve", "--no-startup-migration"], env=env, cwd="/")
    async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
        calls = {
            ("migrate", "database_url"): ("unknown argument 'database_url': this tool takes allow_destructive, create_backup, "
                                          "dry_run, fills, plan_id, renames, using (the database and the models are fixed by the server's configuration)"),
            ("migrate", "dry_run"): "dry_run must be true or false, not 'yes'",
            ("health", "verbose"): "unknown argument 'verbose': this tool takes no arguments",
        }
        for (tool, key), expected in calls.items():
            result = await client.call_tool(tool, {key: "yes" if key == "dry_run" else "sqlite:////tmp/other.db"})
            assert result.is_error
            assert result.content[0].text == f"Error executing tool {tool}: invalid arguments: {expected}"
        assert not (await client.call_tool("check_status", {})).is_error
