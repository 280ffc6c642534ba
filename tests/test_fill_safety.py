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
    assert run_cli("migrate", "--fill", "users.email='e'", env=env).returncode == 0
    names = {r[0] for r in anydb.sql("SELECT name FROM users")}
    assert (names == {"bumped"}) == (anydb.kind != "sqlite"), names  # what the warning said would happen
