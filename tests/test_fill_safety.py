"""Tester3 F1/F13: a fill is evaluated by read-only commands, so it may call only allowlisted built-ins
(a user-defined function that deletes rows, named in a fill, is refused with exit 2 and runs nowhere), every
check that evaluates a fill runs in a rolled-back read-only transaction (the defence behind the allowlist),
and an expression too deep to parse is a usage error, not a crash."""

from __future__ import annotations

import pytest

from cli_process import project_env, run_cli
from migration_core import fills
from servers import pg, server  # noqa: F401 - fixtures

V1 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n'
      'Table("other", metadata, Column("id", Integer, primary_key=True), Column("secret", String(50)))\n')
ADD_EMAIL = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
             'Column("email", String(2000), nullable=False))\n'
             'Table("other", metadata, Column("id", Integer, primary_key=True), Column("secret", String(50)))\n')

EVIL = {
    "postgresql": "CREATE FUNCTION evil(x int) RETURNS text LANGUAGE sql AS $$ DELETE FROM other RETURNING 'pwned' $$",
    "mysql": "CREATE FUNCTION evil(x int) RETURNS varchar(20) MODIFIES SQL DATA BEGIN DELETE FROM other; RETURN 'p'; END",
}


def _seed(p) -> None:
    p.migrate(V1)
    p.sql("INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bo'), (3, 'cy')")
    p.sql("INSERT INTO other (id, secret) VALUES (1, 's1'), (2, 's2')")


def test_a_user_function_in_a_fill_is_refused_and_never_runs(server):
    _seed(server)
    server.sql(EVIL[server.kind])
    env = project_env(server, server.models(ADD_EMAIL))
    for command in (["status"], ["diff"], ["check"], ["migrate"], ["migrate", "--dry-run"]):
        run = run_cli(*command, "--fill", "users.email=evil(id)", env=env)
        assert run.returncode == 2 and "function evil() is not one a fill may call" in run.stderr, (command, run.stderr)
        assert server.sql("SELECT count(*) FROM other") == [(2,)], command
    assert server.sql("SELECT count(*) FROM users") == [(3,)]


@pytest.mark.parametrize("expr", [
    "query_to_xml('select secret from other', true, true, '')::text",
    "table_to_xml('other', true, true, '')::text",
    "database_to_xml(true, true, '')::text",
    "lo_from_bytea(0, 'abc')::text",
    "pg_notify('c', 'x')::text",
    "current_setting('data_directory')",
    "pg_catalog.lower(name)",
    "random()::text",
    "CAST(name AS nosuchtype)",
])
def test_postgresql_builtins_that_reach_outside_the_row_are_refused(pg, expr):
    _seed(pg)
    before = pg.sql("SELECT count(*) FROM pg_largeobject_metadata")
    run = run_cli("status", "--fill", f"users.email={expr}", env=project_env(pg, pg.models(ADD_EMAIL)))
    assert run.returncode == 2 and ("is not one a fill may call" in run.stderr or "not a built-in type" in run.stderr), run.stderr
    assert pg.sql("SELECT count(*) FROM pg_largeobject_metadata") == before


def test_the_checks_that_evaluate_a_fill_are_read_only_even_if_the_allowlist_missed_a_function(server, monkeypatch):
    """The second layer on its own: the allowlist widened in-process to let evil() through, the data check
    that evaluates the fill fails (read-only transaction) and the rows are all still there."""
    _seed(server)
    server.sql(EVIL[server.kind])
    allowed = fills._allowed(server.kind)
    monkeypatch.setattr(fills, "_allowed", lambda dialect: allowed | {"evil"})
    system = server.system(ADD_EMAIL)
    status = system.check_migration_status(fills=["users.email=evil(id)"])
    [change] = [c for c in status.changes if "email" in c.detail]
    assert change.blocked and "fails on the data" in change.reason, change
    assert "read" in change.reason.lower() and "only" in change.reason.lower(), change.reason
    assert server.sql("SELECT count(*) FROM other") == [(2,)]


@pytest.mark.parametrize("expr", ["(" * 3000 + "'x'" + ")" * 3000, "NOT " * 3000 + "id", "'" + "x" * 20000 + "'"])
def test_a_fill_too_deep_or_too_long_is_a_usage_error(project, expr):
    _seed(project)
    before = project.snapshot()
    for command in (["status"], ["check"], ["migrate"]):
        run = run_cli(*command, "--fill", f"users.email={expr}", env=project_env(project, project.models(ADD_EMAIL)))
        assert run.returncode == 2 and ("nested" in run.stderr or "longer than" in run.stderr), run.stderr[-400:]
        assert "RecursionError" not in run.stderr and len(run.stderr) < 2000
    assert project.snapshot() == before


@pytest.mark.parametrize("kind, expr", [
    ("postgresql", "lower(name) || '@' || CAST(id AS TEXT) || to_char(now(), 'YYYY') || coalesce(name, 'x')"),
    ("postgresql", "CASE WHEN id > 1 THEN substring(name from 1 for 2) ELSE md5(name) END || gen_random_uuid()::text"),
    ("mysql", "CONCAT('user', id, '@', DATE_FORMAT(NOW(), '%Y'), IFNULL(name, 'x'), IF(id > 1, UUID(), LEFT(name, 2)))"),
    ("sqlite", "printf('%d', id) || ifnull(name, 'x') || strftime('%Y', 'now') || iif(id > 1, upper(name), hex(id))"),
])
def test_everyday_built_ins_stay_allowed(kind, expr):
    fills.check_expression(fills.Fill("fill", "users", "email", expr, f"users.email={expr}"), kind, {"id", "name"})


BUMP = {
    "postgresql": ["CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := 'bumped'; RETURN NEW; END $$",
                   "CREATE TRIGGER bump BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION bump()",
                   "CREATE TRIGGER only_name BEFORE UPDATE OF name ON users FOR EACH ROW EXECUTE FUNCTION bump()"],
    "mysql": ["CREATE TRIGGER bump BEFORE UPDATE ON users FOR EACH ROW SET NEW.name = 'bumped'"],
    "sqlite": ["CREATE TRIGGER bump AFTER UPDATE ON users BEGIN UPDATE other SET secret = 'bumped'; END"],
}


def test_status_names_the_update_triggers_a_fill_fires(anydb):
    """Tester3 F9: a fill runs as an UPDATE of its table on PostgreSQL and MariaDB, firing its UPDATE triggers;
    status says which (PostgreSQL `UPDATE OF name` does not fire for the email fill). SQLite's rebuild copies
    the rows with the triggers set aside: nothing fires and nothing is said."""
    import json

    _seed(anydb)
    for stmt in BUMP[anydb.kind]:
        anydb.sql(stmt)
    env = project_env(anydb, anydb.models(ADD_EMAIL))
    status = json.loads(run_cli("--json", "status", "--fill", "users.email='e'", env=env).stdout)
    [change] = [c for c in status["changes"] if "email" in c["detail"]]
    said = [w for w in change["warnings"] if "runs as an UPDATE of users" in w]
    if anydb.kind == "sqlite":
        assert not said, change
    else:
        assert said and "bump fires" in said[0] and "only_name" not in said[0], change
        text = run_cli("status", "--fill", "users.email='e'", env=env).stdout  # among the warnings every output shows
        assert text.count("runs as an UPDATE of users") == 1, text
    assert run_cli("migrate", "--fill", "users.email='e'", env=env).returncode == 0
    names = {r[0] for r in anydb.sql("SELECT name FROM users")}
    assert (names == {"bumped"}) == (anydb.kind != "sqlite"), names  # what the warning said would happen


KEYED = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
         'Column("owner_id", Integer, ForeignKey("other.id"), nullable=False), '
         'Column("code", Integer, nullable=False), Column("slug", String(20), nullable=False, unique=True), '
         'CheckConstraint("code > 0", name="code_positive"))\n'
         'Table("other", metadata, Column("id", Integer, primary_key=True), Column("secret", String(50)))\n')


def _status(p, env, *fill_args):
    import json

    args = [x for f in fill_args for x in ("--fill", f)]
    run = run_cli("--json", "status", *args, env=env)
    assert run.returncode in (0, 3), run.stderr
    return {c["detail"].split(" ")[-1] if False else c["detail"]: c for c in json.loads(run.stdout)["changes"]}


def test_fills_are_checked_against_the_new_columns_keys(anydb):
    """Tester3 F11: a fill breaking the new column's FOREIGN KEY, CHECK or UNIQUE key is refused by status with
    the count (check exits 3, migrate changes nothing); fills that keep them are promised and migrate applies them."""
    _seed(anydb)
    env = project_env(anydb, anydb.models(KEYED))
    before = anydb.snapshot()
    bad = ["users.owner_id=id + 100", "users.code=id - 2", "users.slug='same'"]
    changes = _status(anydb, env, *bad)
    reasons = {d: c["reason"] for d, c in changes.items() if c["blocked"]}
    text = " | ".join(reasons.values())
    assert "3 rows would have no other row" in text, text
    assert "2 rows would break CHECK" in text, text
    assert "1 value would repeat in unique" in text, text
    args = [x for f in bad for x in ("--fill", f)]
    assert run_cli("check", *args, env=env).returncode == 3
    assert run_cli("migrate", *args, env=env).returncode == 3
    assert anydb.snapshot() == before
    concat = "CONCAT('s', id)" if anydb.kind == "mysql" else "'s' || id"
    good = ["users.owner_id=1 + id % 2", "users.code=id", f"users.slug={concat}"]
    changes = _status(anydb, env, *good)
    assert not any(c["blocked"] for c in changes.values()), changes
    text = " | ".join(c["reason"] for c in changes.values())
    assert "every value has its other row" in text and "CHECK code_positive holds" in text and "no duplicate in unique" in text, text
    run = run_cli("migrate", *[x for f in good for x in ("--fill", f)], env=env)
    assert run.returncode == 0, run.stderr
    assert anydb.sql("SELECT id, owner_id, code, slug FROM users ORDER BY id") == [(1, 2, 1, "s1"), (2, 1, 2, "s2"), (3, 2, 3, "s3")]


UNIQUE_TEXT = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", String(10), unique=True))\n'
UNIQUE_INT = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", Integer, unique=True))\n'


def test_a_conversion_that_makes_unique_values_collide_is_refused(anydb):
    """Tester3 F11b: `--using` values that collide in the column's unique key are counted and refused."""
    anydb.migrate(UNIQUE_TEXT)
    anydb.sql("INSERT INTO t (id, v) VALUES (1, '10'), (2, '20'), (3, '31')")
    env = project_env(anydb, anydb.models(UNIQUE_INT))
    before = anydb.snapshot()
    run = run_cli("migrate", "--using", "t.v=CAST(v AS INTEGER) % 2", env=env)
    assert run.returncode == 3 and "would repeat in unique" in run.stderr, run.stderr
    assert anydb.snapshot() == before
    run = run_cli("migrate", "--using", "t.v=CAST(v AS INTEGER) + 1", env=env)
    assert run.returncode == 0, run.stderr
    assert anydb.sql("SELECT v FROM t ORDER BY id") == [(11,), (21,), (32,)]


@pytest.mark.parametrize("kind, models, flag, expr, message", [
    ("mysql", ADD_EMAIL, "--fill", "users.email='user' || id", "Truncated incorrect DOUBLE value"),
    ("mysql", ADD_EMAIL, "--fill", "users.email=COALESCE(CAST(10 / (id - 1) AS CHAR), 'z')", "Division by 0"),
    ("mysql", ADD_EMAIL, "--fill", "users.email=REPEAT('x', 2001)", "would not store into users.email"),
    ("postgresql", ADD_EMAIL, "--fill", "users.email=repeat('x', 2001)", "value too long"),
    ("mysql", UNIQUE_INT.replace('unique=True', 'unique=False'), "--using", "t.v=CAST(v AS INTEGER)", "Truncated incorrect INTEGER"),
])
def test_fill_values_are_tried_as_the_strict_update_stores_them(kind, models, flag, expr, message, tmp_path):
    """Tester3 F2: MariaDB's lenient SELECT (`||` is OR, 10/0 is NULL, a long text cut) is not what the strict
    UPDATE does: the probe stores the values into the target type with strict mode's failures counted."""
    from servers import server_project

    with server_project(kind, tmp_path) as p:
        if flag == "--using":
            p.migrate(UNIQUE_TEXT.replace("unique=True", "unique=False"))
            p.sql("INSERT INTO t (id, v) VALUES (1, '10'), (2, 'x')")
        else:
            _seed(p)
        env = project_env(p, p.models(models))
        before = p.snapshot()
        status = run_cli("status", flag, expr, env=env)
        assert "blocked" in status.stdout and message in status.stdout, status.stdout
        for command in ("check", "migrate"):
            run = run_cli(command, flag, expr, env=env)
            assert run.returncode == 3 and message in (run.stdout + run.stderr), (command, run.stdout, run.stderr)
        assert p.snapshot() == before


def test_a_double_beyond_float_range_is_not_promised_as_a_float(server):
    """Tester3 F5: DOUBLE 1e39 -> FLOAT (single precision) is refused by status with the count, not promised."""
    server.migrate('Table("m", metadata, Column("id", Integer, primary_key=True), Column("v", Float(precision=53)))\n')
    server.sql("INSERT INTO m (id, v) VALUES (1, 1.5), (2, 1e39), (3, -2e38)")
    env = project_env(server, server.models('Table("m", metadata, Column("id", Integer, primary_key=True), '
                                            'Column("v", Float(precision=24)))\n'))
    before = server.snapshot()
    run = run_cli("migrate", env=env)
    assert run.returncode == 3 and "1 value" in run.stderr, run.stderr
    assert server.snapshot() == before


async def test_a_read_only_mcp_server_refuses_a_user_function_in_fills(server):
    """Tester3 F1d: `serve --read-only`'s preview_diff(fills=[..evil(id)..]) is an error naming the function,
    and the rows evil() would delete are all still there."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    from helpers_core import CLI

    _seed(server)
    server.sql(EVIL[server.kind])
    env = project_env(server, server.models(ADD_EMAIL))
    params = StdioServerParameters(command=CLI, args=["serve", "--read-only"], env=env, cwd="/")
    async with Client(params, read_timeout_seconds=60) as client:
        for tool in ("preview_diff", "check_status"):
            result = await client.call_tool(tool, {"fills": ["users.email=evil(id)"]})
            assert result.is_error and "evil() is not one a fill may call" in result.content[0].text, result.content[0].text
    assert server.sql("SELECT count(*) FROM other") == [(2,)]


def test_a_key_over_two_filled_columns_is_checked_with_both_filled(anydb):
    """A UNIQUE key over two new columns, each with its fill: the duplicates are those of the pair as filled."""
    anydb.migrate(V1)
    anydb.sql("INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bo'), (3, 'cy')")
    env = project_env(anydb, anydb.models(
        'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
        'Column("a", Integer, nullable=False), Column("b", Integer, nullable=False), UniqueConstraint("a", "b", name="ab"))\n'
        'Table("other", metadata, Column("id", Integer, primary_key=True), Column("secret", String(50)))\n'))
    run = run_cli("migrate", "--fill", "users.a=1", "--fill", "users.b=id % 2", env=env)
    assert run.returncode == 3 and "1 value would repeat in unique" in run.stderr, run.stderr
    run = run_cli("migrate", "--fill", "users.a=1", "--fill", "users.b=id", env=env)
    assert run.returncode == 0, run.stderr
