"""The MCP server through the SDK's in-memory Client, on real SQLite files, in both protocol modes."""

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from mcp import Client
from mcp_types import ElicitResult

from migration_core import AutoMigrationSystem, MigrationSettings
from migration_core.lock import FileMigrationLock
from migration_core.results import (
    BackupListResult,
    HealthResult,
    MigrateResult,
    PreviewResult,
    RollbackResult,
    StatusResult,
)
from server.mcp_server import DESTRUCTIVE_TOOLS, READ_ONLY_TOOLS, build_server

try:
    import jsonschema
except ImportError:  # pragma: no cover - jsonschema ships with the dev environment
    jsonschema = None

MODES = ["auto", "legacy"]
RESULT_MODELS = {
    "check_status": StatusResult,
    "preview_diff": PreviewResult,
    "migrate": MigrateResult,
    "rollback": RollbackResult,
    "list_backups": BackupListResult,
    "health": HealthResult,
}
MODELS = {
    "v1": 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))',
    # v2 adds a nullable column: safe.
    "v2": 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
    'Column("email", String(100)))',
    # v3 drops `name`: destructive.
    "v3": 'Table("users", metadata, Column("id", Integer, primary_key=True))',
}


def write_models(tmp_path: Path, version: str) -> Path:
    path = tmp_path / f"models_{version}.py"
    path.write_text(
        "from sqlalchemy import MetaData, Table, Column, Integer, String\n"
        f"metadata = MetaData()\n{MODELS[version]}\n"
    )
    return path


def make_system(tmp_path: Path, version: str, **overrides) -> AutoMigrationSystem:
    settings = MigrationSettings(
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        models=f"{write_models(tmp_path, version)}:metadata",
        backup_dir=tmp_path / "backups",
        **overrides,
    )
    return AutoMigrationSystem(settings)


def columns(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[1] for row in conn.execute("PRAGMA table_info(users)")]


def rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, name FROM users ORDER BY id").fetchall()


def seed(db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany("INSERT INTO users (id, name) VALUES (?, ?)", [(1, "ada"), (2, "grace")])
    conn.close()


class Recorder:
    """Keeps each tool's outputSchema and checks every structuredContent against it."""

    def __init__(self, client: Client):
        self.client = client
        self.schemas: dict[str, dict] = {}
        self.errors: list[str] = []  # every tool error's text, in order

    async def load(self):
        listing = await self.client.list_tools()
        self.schemas = {t.name: t.output_schema for t in listing.tools}
        return listing.tools

    async def call(self, name: str, args: dict | None = None, **kwargs):
        result = await self.client.call_tool(name, args or {}, **kwargs)
        if not result.is_error:
            check_structured(name, result.structured_content, self.schemas[name])
        return result

    async def ok(self, name: str, args: dict | None = None, **kwargs) -> dict:
        result = await self.call(name, args, **kwargs)
        assert not result.is_error, f"{name} failed: {result.content[0].text}"
        return result.structured_content

    async def error(self, name: str, args: dict | None = None, **kwargs) -> str:
        result = await self.call(name, args, **kwargs)
        assert result.is_error, f"{name} should have failed: {result.structured_content}"
        text = result.content[0].text
        assert "Traceback" not in text and 'File "' not in text
        self.errors.append(text)
        return text

@contextlib.asynccontextmanager
async def connected(app, **client_options):
    """An in-memory Client on `app`, wrapped in a Recorder that has loaded the tools' output schemas."""
    async with Client(app, **client_options) as client:
        rec = Recorder(client)
        await rec.load()
        yield rec



def check_structured(name: str, content: dict | None, schema: dict | None) -> None:
    assert schema is not None, f"{name} has no outputSchema"
    assert content is not None, f"{name} returned no structuredContent"
    if jsonschema is not None:
        jsonschema.validate(content, schema)
    RESULT_MODELS[name].model_validate(content)


async def accept(ctx, params):
    return ElicitResult(action="accept", content={"confirm": True})


async def decline(ctx, params):
    return ElicitResult(action="decline")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "app.db"


@pytest.fixture
def v1_db(tmp_path: Path, db: Path) -> Path:
    """A database at v1 with two rows, created by the startup migration of a v1 server."""
    system = make_system(tmp_path, "v1")
    from server.mcp_server import run_startup_migration_now

    result = run_startup_migration_now(system)
    assert result.success, result.error
    seed(db)
    return db


@pytest.mark.parametrize("mode", MODES)
async def test_tools_list_schemas_and_annotations(tmp_path, mode):
    app = build_server(make_system(tmp_path, "v1"), run_startup_migration=False)
    async with Client(app, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(READ_ONLY_TOOLS) | set(DESTRUCTIVE_TOOLS)
    for name, tool in tools.items():
        assert tool.output_schema and tool.output_schema.get("type") == "object", name
        assert len(tool.description or "") > 80, name
        assert tool.input_schema.get("additionalProperties") is False, name
        ann = tool.annotations
        assert ann.open_world_hint is False, name
        if name in READ_ONLY_TOOLS:
            assert ann.read_only_hint is True, name
        else:
            assert ann.read_only_hint is False and ann.destructive_hint is True, name
    assert set(tools["migrate"].input_schema["properties"]) == {"dry_run", "allow_destructive", "create_backup", "renames", "plan_id", "fills", "using"}
    assert set(tools["rollback"].input_schema["properties"]) == {"backup_id"}
    for tool in tools.values():
        props = tool.input_schema.get("properties", {})
        assert not {"database_url", "models", "url", "path"} & set(props)


async def test_read_only_registers_only_read_only_tools(tmp_path):
    app = build_server(make_system(tmp_path, "v1"), read_only=True, run_startup_migration=False)
    async with Client(app) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == set(READ_ONLY_TOOLS)
        result = await client.call_tool("migrate", {})
        assert result.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_startup_migration_runs_before_first_answer(tmp_path, db, mode):
    system = make_system(tmp_path, "v1")
    app = build_server(system)
    assert not db.exists()
    async with connected(app, mode=mode) as rec:
        assert columns(db) == ["id", "name"]  # created before tools/list was answered
        status = await rec.ok("check_status")
        assert status["migration_needed"] is False
        assert status["startup_migration"]["success"] is True
        assert status["startup_migration"]["migration_needed"] is True
        health = await rec.ok("health")
        assert 0 <= health["score"] <= 100
        assert "startup" in str(health["checks"]).lower()


async def test_failed_startup_migration_keeps_serving(tmp_path, v1_db):
    """A refused startup migration (v3 drops a column with data) leaves the DB as it was and is reported."""
    system = make_system(tmp_path, "v3")
    app = build_server(system)
    async with connected(app) as rec:
        assert columns(v1_db) == ["id", "name"]
        status = await rec.ok("check_status")
        startup = status["startup_migration"]
        assert startup["success"] is False and startup["error"]
        assert status["migration_needed"] is True
        health = await rec.ok("health")
        assert health["status"] != "healthy" or health["score"] < 100
        assert "startup" in str(health["checks"]).lower()


async def test_startup_migration_blocked_by_lock_keeps_serving(tmp_path, db):
    system = make_system(tmp_path, "v1", lock_timeout_ms=200)
    holder = hold_lock_in_subprocess(db)
    try:
        app = build_server(system)
        async with connected(app) as rec:
            status = await rec.ok("check_status")
            assert status["startup_migration"]["success"] is False
            assert "lock" in status["startup_migration"]["error"].lower()
    finally:
        release(holder)


@pytest.mark.parametrize("mode", MODES)
async def test_full_cycle_migrate_backups_rollback(tmp_path, v1_db, mode):
    app = build_server(make_system(tmp_path, "v2"), run_startup_migration=False, allow_destructive_tools=True)
    async with connected(app, mode=mode) as rec:

        status = await rec.ok("check_status")
        assert status["migration_needed"] is True
        assert status["startup_migration"] is None
        assert any("email" in c["detail"] and c["risk"] == "safe" for c in status["changes"])

        preview = await rec.ok("preview_diff")
        assert any("email" in stmt for stmt in preview["sql"])

        dry = await rec.ok("migrate", {"dry_run": True})
        assert dry["dry_run"] is True and dry["success"] is True
        assert columns(v1_db) == ["id", "name"]

        updates = []

        async def on_progress(progress, total, message):
            updates.append((progress, total, message))

        done = await rec.ok("migrate", {}, progress_callback=on_progress)
        assert done["success"] is True and done["dry_run"] is False
        assert done["operations_executed"] >= 1 and done["backup_id"]
        assert columns(v1_db) == ["id", "name", "email"]
        assert rows(v1_db) == [(1, "ada"), (2, "grace")]
        assert updates, "migrate sent no progress notifications"
        values = [u[0] for u in updates]
        assert values == sorted(values) and len(set(values)) == len(values)

        assert (await rec.ok("check_status"))["migration_needed"] is False
        again = await rec.ok("migrate")
        assert again["success"] is True and again["migration_needed"] is False

        backups = await rec.ok("list_backups")
        assert done["backup_id"] in [b["id"] for b in backups["backups"]]
        await rec.ok("health")

        with sqlite3.connect(v1_db) as conn:
            conn.execute("INSERT INTO users (id, name, email) VALUES (3, 'linus', 'l@x')")
        conn.close()

        undone = await rec.ok("rollback", {})
        assert undone["success"] is True
        assert undone["backup_id"] == done["backup_id"]
        assert columns(v1_db) == ["id", "name"]
        assert rows(v1_db) == [(1, "ada"), (2, "grace")]
        assert (await rec.ok("check_status"))["migration_needed"] is True


@pytest.mark.parametrize("mode", MODES)
async def test_migrate_and_rollback_send_log_messages(tmp_path, v1_db, mode):
    messages: list[str] = []

    async def on_log(params):
        messages.append(str(params.data))

    app = build_server(make_system(tmp_path, "v2"), run_startup_migration=False, allow_destructive_tools=True)
    async with connected(app, mode=mode, logging_callback=on_log, log_level="info") as rec:
        await rec.ok("migrate")
        assert any(m.startswith("migrate: ") and "backup" in m for m in messages), messages
        await rec.ok("rollback")
        assert any(m.startswith("rollback: ") for m in messages), messages


@pytest.mark.parametrize("mode", MODES)
async def test_rollback_to_named_backup(tmp_path, v1_db, mode):
    app = build_server(make_system(tmp_path, "v2"), run_startup_migration=False)
    async with connected(app, mode=mode, elicitation_callback=accept) as rec:
        done = await rec.ok("migrate")
        undone = await rec.ok("rollback", {"backup_id": done["backup_id"]})
        assert undone["success"] is True and undone["backup_id"] == done["backup_id"]
        assert columns(v1_db) == ["id", "name"]


@pytest.mark.parametrize("mode", MODES)
async def test_backup_id_errors(tmp_path, v1_db, mode):
    app = build_server(make_system(tmp_path, "v2"), run_startup_migration=False, allow_destructive_tools=True)
    async with connected(app, mode=mode, elicitation_callback=accept) as rec:
        before = v1_db.read_bytes()

        text = await rec.error("rollback", {"backup_id": "../../etc/passwd"})
        assert "invalid backup id" in text
        text = await rec.error("rollback", {"backup_id": "20260101T000000000000Z-deadbeef"})
        assert "unknown backup id" in text and "list_backups" in text
        assert v1_db.read_bytes() == before
        await rec.ok("check_status")  # still serving


async def test_nothing_to_roll_back(tmp_path, db):
    app = build_server(make_system(tmp_path, "v1"), run_startup_migration=False, allow_destructive_tools=True)
    async with connected(app) as rec:
        text = await rec.error("rollback", {})
        assert "nothing to roll back" in text.lower()
        await rec.ok("check_status")


@pytest.mark.parametrize("mode", MODES)
async def test_destructive_migrate_without_permission_is_refused(tmp_path, v1_db, mode):
    app = build_server(make_system(tmp_path, "v3"), run_startup_migration=False)
    async with connected(app, mode=mode) as rec:
        text = await rec.error("migrate", {})
        assert "name" in text and "allow_destructive" in text
        text = await rec.error("migrate", {"allow_destructive": True})
        assert "--allow-destructive-tools" in text and "elicitation" in text
        text = await rec.error("rollback", {})
        assert "--allow-destructive-tools" in text
        assert columns(v1_db) == ["id", "name"]
        assert rows(v1_db) == [(1, "ada"), (2, "grace")]
        dry = await rec.ok("migrate", {"allow_destructive": True, "dry_run": True})
        assert dry["dry_run"] is True and columns(v1_db) == ["id", "name"]


async def test_destructive_migrate_with_server_flag(tmp_path, v1_db):
    app = build_server(make_system(tmp_path, "v3"), run_startup_migration=False, allow_destructive_tools=True)
    async with connected(app) as rec:
        await rec.error("migrate", {})  # the flag does not turn the per-call guard off
        done = await rec.ok("migrate", {"allow_destructive": True})
        assert done["success"] and columns(v1_db) == ["id"]


@pytest.mark.parametrize("mode", MODES)
async def test_elicitation_accept_applies_destructive_change(tmp_path, v1_db, mode):
    asked: list[str] = []

    async def accept_and_record(ctx, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    app = build_server(make_system(tmp_path, "v3"), run_startup_migration=False)
    async with connected(app, mode=mode, elicitation_callback=accept_and_record) as rec:
        done = await rec.ok("migrate", {"allow_destructive": True})
        assert done["success"] is True and done["backup_id"]
        assert columns(v1_db) == ["id"]
        assert asked and "name" in asked[0]

        undone = await rec.ok("rollback", {})
        assert undone["success"] is True
        assert columns(v1_db) == ["id", "name"] and rows(v1_db) == [(1, "ada"), (2, "grace")]
        assert len(asked) == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("answer", ["decline", "cancel", "untick"])
async def test_elicitation_refusal_leaves_db_unchanged(tmp_path, v1_db, mode, answer):
    async def respond(ctx, params):
        if answer == "untick":
            return ElicitResult(action="accept", content={"confirm": False})
        return ElicitResult(action=answer)

    # Even with the server flag, a client that can ask must ask, and a "no" wins.
    app = build_server(make_system(tmp_path, "v3"), run_startup_migration=False, allow_destructive_tools=True)
    async with connected(app, mode=mode, elicitation_callback=respond) as rec:
        before = v1_db.read_bytes()
        backups_before = (await rec.ok("list_backups"))["backups"]
        text = await rec.error("migrate", {"allow_destructive": True})
        assert "nothing was changed" in text
        assert v1_db.read_bytes() == before
        assert columns(v1_db) == ["id", "name"]
        assert (await rec.ok("list_backups"))["backups"] == backups_before


async def test_no_confirmation_asked_when_nothing_destructive(tmp_path, v1_db):
    asked = []

    async def record(ctx, params):
        asked.append(params.message)
        return ElicitResult(action="decline")

    app = build_server(make_system(tmp_path, "v2"), run_startup_migration=False)
    async with connected(app, elicitation_callback=record) as rec:
        done = await rec.ok("migrate", {"allow_destructive": True})
        assert done["success"] and asked == []
        assert columns(v1_db) == ["id", "name", "email"]


def hold_lock_in_subprocess(db: Path) -> subprocess.Popen:
    code = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from migration_core.lock import FileMigrationLock
        with FileMigrationLock(Path(sys.argv[1]), timeout_ms=5000).acquire("test holder"):
            print("locked", flush=True)
            sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait(timeout=10)


@pytest.mark.parametrize("mode", MODES)
async def test_lock_held_by_another_process(tmp_path, v1_db, mode):
    app = build_server(make_system(tmp_path, "v2", lock_timeout_ms=300), run_startup_migration=False)
    async with connected(app, mode=mode) as rec:
        holder = hold_lock_in_subprocess(v1_db)
        try:
            text = await rec.error("migrate", {})
            assert "lock" in text.lower() and "test holder" in text
            assert columns(v1_db) == ["id", "name"]
        finally:
            release(holder)
        done = await rec.ok("migrate")
        assert done["success"] and columns(v1_db) == ["id", "name", "email"]


async def test_lock_held_by_another_thread(tmp_path, v1_db):
    app = build_server(make_system(tmp_path, "v2", lock_timeout_ms=300), run_startup_migration=False)
    locked, leave = threading.Event(), threading.Event()

    def hold():
        with FileMigrationLock(v1_db, timeout_ms=5000).acquire("thread holder"):
            locked.set()
            leave.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(5)
        async with connected(app) as rec:
            text = await rec.error("migrate", {})
            assert "lock" in text.lower()
    finally:
        leave.set()
        thread.join()


async def test_unexpected_error_is_short_and_server_keeps_serving(tmp_path, v1_db):
    system = make_system(tmp_path, "v1")

    def broken():
        raise RuntimeError("internal detail that must stay on the server")

    system.list_backups = broken
    app = build_server(system, run_startup_migration=False)
    async with connected(app) as rec:
        text = await rec.error("list_backups")
        assert "internal detail" not in text and "RuntimeError" in text
        await rec.ok("health")


@pytest.mark.parametrize("mode", MODES)
async def test_bad_arguments_are_tool_errors(tmp_path, v1_db, mode):
    app = build_server(make_system(tmp_path, "v1"), run_startup_migration=False)
    async with connected(app, mode=mode) as rec:
        text = await rec.error("migrate", {"database_url": "sqlite:////tmp/other.db"})
        assert text.endswith("unknown argument 'database_url': this tool takes allow_destructive, create_backup, dry_run, "
                             "fills, plan_id, renames, using (the database and the models are fixed by the server's configuration)"), text
        text = await rec.error("list_backups", {"path": "/etc"})
        assert "unknown argument 'path': this tool takes no arguments" in text
        # Strict booleans: no guessing what "yes" or 1 meant.
        for value, shown in (("maybe", "'maybe'"), ("yes", "'yes'"), (1, "1"), ("1", "'1'")):
            text = await rec.error("migrate", {"dry_run": value})
            assert text.endswith(f"dry_run must be true or false, not {shown}"), text
        text = await rec.error("check_status", {"renames": "users:people"})
        assert text.endswith("renames must be an array of strings, not a string ('users:people')"), text
        text = await rec.error("rollback", {"backup_id": 42})
        assert text.endswith("backup_id must be a string, not a number (42)"), text
        for text in rec.errors:
            assert "pydantic" not in text and "https://" not in text and "validation error" not in text, text
        await rec.error("nonexistent_tool", {})
        await rec.ok("check_status")
