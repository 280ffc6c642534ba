"""Malformed arguments to every tool: each call is a valid result or a specific tool error, and the server keeps serving."""

import time
from pathlib import Path

import jsonschema
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from migration_core import AutoMigrationSystem, MigrationSettings
from server.mcp_server import build_server

TOOLS = ["check_status", "preview_diff", "migrate", "rollback", "list_backups", "health"]
KNOWN_KEYS = ["dry_run", "allow_destructive", "create_backup", "renames", "backup_id"]

path_like = st.sampled_from([
    "../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/passwd", "~/.ssh/id_rsa", "backups/../../x",
    "20260101T000000000000Z-deadbeef", "20260101T000000000000Z-deadbeef/../x", "\x00", "CON", "a" * 31,
    "sqlite:////tmp/other.db", "users:people", "users.name:full_name",
])
huge = st.integers(min_value=1000, max_value=200_000).map(lambda n: "x" * n)
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=50), path_like, huge,
)
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=30), st.just("database_url"), st.just("models"))
random_arguments = st.dictionaries(keys, value, max_size=4)

# Arguments of roughly the right shape, so the calls get past schema validation into the core.
id_text = st.one_of(path_like, st.text(max_size=40), huge, st.from_regex(r"[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}", fullmatch=True))
hint = st.one_of(path_like, st.text(max_size=60), st.from_regex(r"[a-z_]{1,8}(\.[a-z_]{1,8})?:[a-z_]{1,8}", fullmatch=True))
hints = st.one_of(st.none(), st.lists(hint, max_size=4))
flag = st.one_of(st.none(), st.booleans())
plausible = {
    "check_status": st.fixed_dictionaries({}, optional={"renames": hints}),
    "preview_diff": st.fixed_dictionaries({}, optional={"renames": hints}),
    "migrate": st.fixed_dictionaries(
        {}, optional={"dry_run": flag, "allow_destructive": st.booleans(), "create_backup": flag, "renames": hints}
    ),
    "rollback": st.fixed_dictionaries({}, optional={"backup_id": st.one_of(st.none(), id_text)}),
    "list_backups": st.just({}),
    "health": st.just({}),
}
call = st.sampled_from(TOOLS).flatmap(lambda name: st.tuples(st.just(name), st.one_of(plausible[name], random_arguments)))


def make_server(tmp_path: Path):
    models = tmp_path / "models.py"
    models.write_text(
        "from sqlalchemy import MetaData, Table, Column, Integer, String\n"
        "metadata = MetaData()\n"
        'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n'
    )
    system = AutoMigrationSystem(MigrationSettings(
        database_url=f"sqlite:///{tmp_path / 'fuzz.db'}",
        models=f"{models}:metadata",
        backup_dir=tmp_path / "backups",
        lock_timeout_ms=500,
    ))
    # The flag lets rollback reach the core; the refusal without it has its own tests.
    return build_server(system, allow_destructive_tools=True)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(calls=st.lists(call, min_size=1, max_size=3))
def test_malformed_arguments(portal_client, calls):
    portal, client, schemas = portal_client
    for name, args in calls:
        result = portal.call(client.call_tool, name, args)
        if result.is_error:
            text = result.content[0].text
            assert text.startswith(f"Error executing tool {name}: ") and len(text) > len(f"Error executing tool {name}: ") + 10, text
            assert "Traceback" not in text and "failed unexpectedly" not in text, text
        else:
            jsonschema.validate(result.structured_content, schemas[name])
    alive = portal.call(client.call_tool, "health", {})
    assert not alive.is_error


@pytest.fixture(scope="module")
def portal_client(tmp_path_factory):
    """One server for every example, so the test also shows it keeps serving after each error."""
    tmp = tmp_path_factory.mktemp("fuzz")
    started = time.perf_counter()
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(Client(make_server(tmp))) as client:
        schemas = {t.name: t.output_schema for t in portal.call(client.list_tools).tools}
        yield portal, client, schemas
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"fuzzing took {elapsed:.1f} s"
