"""`migration-mcp serve` as a real subprocess: the SDK's stdio client, raw pipes, and the shipped client configs."""

import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

CONSOLE_SCRIPT = Path(sys.executable).parent / ("migration-mcp.exe" if os.name == "nt" else "migration-mcp")
REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "client_configs"
MODES = ["auto", "legacy"]
EXPECTED_TOOLS = {"check_status", "preview_diff", "migrate", "rollback", "list_backups", "health"}

pytestmark = pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason=f"console script {CONSOLE_SCRIPT} not installed")


NOISE = 'print("stray print from the models module")\nprint("and a partial line", end="")\n'


def write_app(root: Path, prelude: str = "") -> dict[str, str]:
    """A tiny application (declarative Base, as in the configs) and the env that points the server at it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "models.py").write_text(
        prelude
        + "from sqlalchemy import Integer, String\n"
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n\n"
        "class Base(DeclarativeBase):\n    pass\n\n"
        "class User(Base):\n"
        "    __tablename__ = 'users'\n"
        "    id: Mapped[int] = mapped_column(Integer, primary_key=True)\n"
        "    name: Mapped[str] = mapped_column(String(50))\n"
    )
    return {
        "MIGRATION_DATABASE_URL": f"sqlite:///{root / 'app.db'}",
        "MIGRATION_MODELS": f"{root / 'models.py'}:Base",
        "MIGRATION_BACKUP_DIR": str(root / "backups"),
        "MIGRATION_DATA_DIR": str(root / "data"),
    }


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}


def serve_params(env: dict[str, str], *args: str) -> StdioServerParameters:
    # cwd "/" as Claude Desktop does: nothing may depend on the working directory.
    return StdioServerParameters(command=str(CONSOLE_SCRIPT), args=["serve", *args], env=env, cwd="/")


@pytest.mark.parametrize("mode", MODES)
async def test_stdio_startup_migration_before_first_answer(tmp_path, mode):
    env = write_app(tmp_path / "app", prelude=NOISE)
    db = tmp_path / "app" / "app.db"
    errlog = tmp_path / "stderr.log"
    faults: list[Exception] = []

    async def on_message(message):
        if isinstance(message, Exception):  # a stdout line that is not JSON-RPC
            faults.append(message)

    with errlog.open("w") as err:
        started = time.perf_counter()
        transport = stdio_client(serve_params(env), errlog=err)
        async with Client(transport, mode=mode, read_timeout_seconds=60, message_handler=on_message) as client:
            listing = await client.list_tools()
            first_answer = time.perf_counter() - started
            assert "users" in tables(db)  # the startup migration ran before tools/list was answered
            assert {t.name for t in listing.tools} == EXPECTED_TOOLS
            status = await client.call_tool("check_status", {})
            assert not status.is_error
            assert status.structured_content["startup_migration"]["success"] is True
            assert status.structured_content["migration_needed"] is False
            health = await client.call_tool("health", {})
            assert not health.is_error and 0 <= health.structured_content["score"] <= 100
    assert faults == []
    log = errlog.read_text()
    assert "startup migration" in log and "stray print from the models module" in log
    print(f"\n[{mode}] spawn -> first tools/list (fresh database, migrated at startup): {first_answer:.2f} s")


async def test_stdio_spawn_to_tools_list_on_up_to_date_database(tmp_path):
    env = write_app(tmp_path / "app")
    async with Client(serve_params(env), read_timeout_seconds=60) as client:
        await client.list_tools()  # first run migrates
    timings = []
    for mode in MODES:
        started = time.perf_counter()
        async with Client(serve_params(env), mode=mode, read_timeout_seconds=60) as client:
            await client.list_tools()
            timings.append((mode, time.perf_counter() - started))
            status = await client.call_tool("check_status", {})
            assert status.structured_content["startup_migration"]["migration_needed"] is False
    for mode, seconds in timings:
        print(f"\n[{mode}] spawn -> first tools/list (up-to-date database): {seconds:.2f} s")
        assert seconds < 15


async def test_stdio_read_only_and_no_startup_migration(tmp_path):
    env = write_app(tmp_path / "app")
    db = tmp_path / "app" / "app.db"
    async with Client(serve_params(env, "--read-only", "--no-startup-migration"), read_timeout_seconds=60) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"check_status", "preview_diff", "list_backups", "health"}
        status = await client.call_tool("check_status", {})
        assert status.structured_content["migration_needed"] is True
        assert status.structured_content["startup_migration"] is None
    assert not db.exists() or "users" not in tables(db)


async def test_stdio_flags_allow_destructive_tools_and_global_options(tmp_path):
    """Options instead of env; with --allow-destructive-tools a client without elicitation may roll back."""
    env = write_app(tmp_path / "app")
    db = tmp_path / "app" / "app.db"
    args = ["--allow-destructive-tools", "--database-url", env["MIGRATION_DATABASE_URL"], "--models", env["MIGRATION_MODELS"],
            "--backup-dir", env["MIGRATION_BACKUP_DIR"]]
    params = serve_params({"MIGRATION_DATA_DIR": env["MIGRATION_DATA_DIR"]}, *args)
    async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
        assert "users" in tables(db)
        undone = await client.call_tool("rollback", {})
        assert not undone.is_error, undone.content[0].text
        assert undone.structured_content["success"] is True
        assert "users" not in tables(db)  # back to the empty database the startup migration began with


def _reader(stream, lines: "queue.Queue[str | None]") -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _next_line(lines: "queue.Queue[str | None]", timeout: float = 30) -> str | None:
    return lines.get(timeout=timeout)


def test_raw_pipes_stdout_is_only_json_rpc(tmp_path):
    """Even a models module that print()s (unflushed) leaves stdout to the protocol: the noise lands on stderr."""
    env = {**os.environ, **write_app(tmp_path / "app", prelude=NOISE)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env,
        cwd="/",
    )
    stdout_lines: "queue.Queue[str | None]" = queue.Queue()
    stderr_lines: "queue.Queue[str | None]" = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, stdout_lines), daemon=True).start()
    threading.Thread(target=_reader, args=(proc.stderr, stderr_lines), daemon=True).start()
    seen: list[dict] = []

    def send(message: dict) -> None:
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()

    def wait_for(request_id: int) -> dict:
        while True:
            line = _next_line(stdout_lines)
            assert line is not None, "server closed stdout"
            message = json.loads(line)  # every stdout line must be JSON-RPC
            assert message.get("jsonrpc") == "2.0", line
            seen.append(message)
            if message.get("id") == request_id:
                return message

    try:
        send({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "0"}},
        })
        init = wait_for(1)
        assert init["result"]["serverInfo"]["name"] == "migration-mcp"
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        listing = wait_for(2)
        first_answer = time.perf_counter() - started
        assert {t["name"] for t in listing["result"]["tools"]} == EXPECTED_TOOLS
        send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "check_status", "arguments": {}}})
        status = wait_for(3)
        assert status["result"]["structuredContent"]["startup_migration"]["success"] is True
        send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "rollback", "arguments": {"backup_id": "../../etc/passwd"}}})
        bad = wait_for(4)
        assert bad["result"]["isError"] is True and "invalid backup id" in bad["result"]["content"][0]["text"]
        send({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "migrate", "arguments": {"dry_run": True}}})
        assert wait_for(5)["result"]["structuredContent"]["dry_run"] is True
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    while (line := _next_line(stdout_lines, timeout=10)) is not None:
        message = json.loads(line)
        assert message.get("jsonrpc") == "2.0", line
    assert proc.returncode == 0
    stderr = "".join(iter(lambda: _next_line(stderr_lines, timeout=10) or "", ""))
    assert "startup migration" in stderr
    assert "stray print from the models module" in stderr and "and a partial line" in stderr
    print(f"\n[raw pipes] spawn -> first tools/list (fresh database): {first_answer:.2f} s")


def _config_entry(name: str) -> dict:
    data = json.loads((CONFIGS / name).read_text())
    servers = data.get("mcpServers") or data.get("servers")
    assert servers and list(servers) == ["migrations"], name
    return servers["migrations"]


@pytest.mark.parametrize(
    "name", ["claude_desktop_config.json", "claude_code_mcp.json", "cursor_mcp.json", "vscode_mcp.json"]
)
async def test_client_config_starts_a_working_server(tmp_path, name):
    entry = _config_entry(name)
    assert entry["args"] == ["serve"]
    assert Path(entry["command"]).is_absolute() and entry["command"].endswith("/bin/migration-mcp")
    env = entry["env"]
    assert set(env) == {"MIGRATION_DATABASE_URL", "MIGRATION_MODELS"}
    assert Path(env["MIGRATION_MODELS"].rsplit(":", 1)[0]).is_absolute()
    if name == "vscode_mcp.json":
        config = json.loads((CONFIGS / name).read_text())
        assert entry["type"] == "stdio"
        secret = config["inputs"][0]
        assert secret["type"] == "promptString" and secret["password"] is True
        assert env["MIGRATION_DATABASE_URL"] == "${input:" + secret["id"] + "}"
    else:
        assert env["MIGRATION_DATABASE_URL"].startswith("sqlite:////")  # four slashes: an absolute path

    app = tmp_path / "app"
    app_env = write_app(app)
    venv = Path(sys.executable).parent.parent

    def fill(value: str) -> str:
        value = value.replace("/ABSOLUTE/PATH/TO/venv", str(venv)).replace("/ABSOLUTE/PATH/TO/app", str(app))
        return app_env["MIGRATION_DATABASE_URL"] if value.startswith("${input:") else value

    params = StdioServerParameters(
        command=fill(entry["command"]),
        args=entry["args"],
        env={**{k: fill(v) for k, v in env.items()}, "MIGRATION_DATA_DIR": app_env["MIGRATION_DATA_DIR"]},
        cwd="/",
    )
    async with Client(params, read_timeout_seconds=60) as client:
        assert {t.name for t in (await client.list_tools()).tools} == EXPECTED_TOOLS
        status = await client.call_tool("check_status", {})
        assert not status.is_error and status.structured_content["migration_needed"] is False
    assert "users" in tables(app / "app.db")


UVX = Path(sys.executable).parent / "uvx"  # from the dev extra's `uv`
NETWORK_TROUBLE = ("Failed to fetch", "dns error", "Could not connect", "Connection refused", "error sending request",
                   "tcp connect error", "Network is unreachable")


def test_uvx_config_shape():
    """Issue 13, item 8: the package is not on PyPI, so the config runs it from a checkout with --from."""
    entry = _config_entry("claude_desktop_uvx.json")
    assert entry["command"] == "uvx"
    assert entry["args"] == ["--from", "/ABSOLUTE/PATH/TO/migration-mcp", "migration-mcp", "serve"]
    assert entry["env"]["MIGRATION_DATABASE_URL"].startswith("sqlite:////")
    assert Path(entry["env"]["MIGRATION_MODELS"].rsplit(":", 1)[0]).is_absolute()
    readme = (REPO / "README.md").read_text()
    assert '"args": ["--from", "/ABSOLUTE/PATH/TO/migration-mcp", "migration-mcp", "serve"]' in readme
    assert "works only once it is published" in readme


@pytest.mark.skipif(not UVX.exists(), reason=f"{UVX} not installed (the dev extra brings uv)")
async def test_uvx_config_starts_a_working_server(tmp_path):
    """The shipped uvx config as pasted, with this checkout for the placeholder: uvx builds the checkout
    in an environment of its own (from PyPI, into a fresh cache) and the SDK's client talks to it."""
    entry = _config_entry("claude_desktop_uvx.json")
    app = tmp_path / "app"
    app_env = write_app(app)

    def fill(value: str) -> str:
        return value.replace("/ABSOLUTE/PATH/TO/migration-mcp", str(REPO)).replace("/ABSOLUTE/PATH/TO/app", str(app))

    # The machine's own environment (its proxy and CA settings reach PyPI), the config's variables, uv's folders in tmp.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("MIGRATION_", "UV_"))},
           **{k: fill(v) for k, v in entry["env"].items()}, "MIGRATION_DATA_DIR": app_env["MIGRATION_DATA_DIR"],
           "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_TOOL_DIR": str(tmp_path / "uv-tools")}
    params = StdioServerParameters(command=str(UVX), args=[fill(a) for a in entry["args"]], env=env, cwd="/")
    errlog = tmp_path / "uvx-stderr.log"
    try:
        with errlog.open("w") as err:
            async with Client(stdio_client(params, errlog=err), read_timeout_seconds=300) as client:
                assert {t.name for t in (await client.list_tools()).tools} == EXPECTED_TOOLS
                status = await client.call_tool("check_status", {})
                assert not status.is_error and status.structured_content["migration_needed"] is False
    except Exception:
        log = errlog.read_text()
        if any(s in log for s in NETWORK_TROUBLE):
            pytest.skip(f"uvx could not reach PyPI to build its environment: {log.strip().splitlines()[-1]}")
        raise
    assert "users" in tables(app / "app.db")
