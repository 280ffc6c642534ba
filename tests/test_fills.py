"""Issue 14, item 4: data fills and conversions (`--fill`, `--using`; MCP `fills`, `using`) through the real
console script on SQLite, PostgreSQL and MariaDB: a refusal names the flag that resolves it, the expression
is checked before anything runs, the probe re-checks the data with the fill applied, only NULL rows are
filled, and the fill is part of the plan id and of the history."""

from __future__ import annotations

import json

import pytest

from cli_process import project_env, run_cli

V1 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
      'Column("score", String(20)))\n')
ADD_EMAIL = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
             'Column("score", String(20)), Column("email", String(100), nullable=False))\n')
NAME_NOT_NULL = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50), nullable=False), '
                 'Column("score", String(20)))\n')
SCORE_INT = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
             'Column("score", Integer))\n')


def _concat(kind: str, *parts: str) -> str:
    return f"CONCAT({', '.join(parts)})" if kind == "mysql" else " || ".join(parts)


def _seed(p) -> None:
    p.migrate(V1)
    p.sql("INSERT INTO users (id, name, score) VALUES (1, 'ann', '1,200'), (2, NULL, '7'), (3, 'cy', NULL)")


def _env(p, body: str) -> dict[str, str]:
    return project_env(p, p.models(body))


def test_not_null_column_added_to_a_populated_table_with_fill(anydb):
    _seed(anydb)
    env = _env(anydb, ADD_EMAIL)
    before = anydb.snapshot()
    run = run_cli("migrate", env=env)
    assert run.returncode == 3 and "--fill users.email=EXPR" in run.stderr and "MCP:" not in run.stderr, run.stderr
    expr = _concat(anydb.kind, "'user'", "id", "'@example.com'")
    # A fill that still leaves NULLs (name is NULL in row 2) is refused by the probe, with the count.
    leaky = _concat(anydb.kind, "name", "'@example.com'")
    run = run_cli("migrate", "--fill", f"users.email={leaky}", env=env)
    assert run.returncode == 3 and "still leaves 1 row NULL in users.email" in run.stderr, run.stderr
    assert anydb.snapshot() == before

    preview = json.loads(run_cli("--json", "diff", "--fill", f"users.email={expr}", env=env).stdout)
    assert preview["safe_to_apply"] is True and preview["options"]["fills"] == [f"users.email={expr}"]
    assert any(expr in s for s in preview["sql"])
    [change] = preview["changes"]
    assert not change["blocked"] and "checked: none is left NULL" in change["reason"]
    plain = json.loads(run_cli("--json", "diff", env=env).stdout)
    assert plain["plan_id"] != preview["plan_id"]  # the fill is part of the plan id
    run = run_cli("migrate", "--plan-id", preview["plan_id"], env=env)
    assert run.returncode == 3 and "option fills was" in run.stderr  # the fill must be given again

    run = run_cli("migrate", "--plan-id", preview["plan_id"], "--fill", f"users.email={expr}", env=env)
    assert run.returncode == 0, run.stderr
    assert anydb.sql("SELECT id, email FROM users ORDER BY id") == [(i, f"user{i}@example.com") for i in (1, 2, 3)]
    assert not anydb.nullable("users", "email")
    [entry] = json.loads(run_cli("--json", "history", "--limit", "1", env=env).stdout)["history"]
    assert entry["plan_id"] == preview["plan_id"] and any(expr in s for s in entry["statements"])
    assert run_cli("check", env=env).returncode == 0


def test_fill_makes_a_column_not_null_updating_only_null_rows(anydb):
    _seed(anydb)
    env = _env(anydb, NAME_NOT_NULL)
    run = run_cli("migrate", env=env)
    assert run.returncode == 3 and "1 row holds NULL in users.name" in run.stderr and "--fill users.name=EXPR" in run.stderr
    fill = "users.name=" + _concat(anydb.kind, "'user '", "id")
    run = run_cli("migrate", "--fill", fill, env=env)
    assert run.returncode == 0, run.stderr
    assert anydb.sql("SELECT id, name FROM users ORDER BY id") == [(1, "ann"), (2, "user 2"), (3, "cy")]
    assert not anydb.nullable("users", "name")


def test_using_converts_a_type_change(anydb):
    _seed(anydb)
    env = _env(anydb, SCORE_INT)
    run = run_cli("migrate", env=env)
    assert run.returncode == 3 and "--using users.score=EXPR" in run.stderr, run.stderr
    expr = "REPLACE(score, ',', '')" if anydb.kind == "mysql" else "CAST(REPLACE(score, ',', '') AS INTEGER)"
    run = run_cli("migrate", "--using", f"users.score={expr}", env=env)
    assert run.returncode == 0, run.stderr
    assert anydb.sql("SELECT id, score FROM users ORDER BY id") == [(1, 1200), (2, 7), (3, None)]
    assert run_cli("check", env=env).returncode == 0


@pytest.mark.parametrize("spec, message", [
    ("users.email=(SELECT max(name) FROM users)", "no query, subquery, other table"),
    ("users.email='a'; DROP TABLE users", "one expression, not several statements"),
    ("users.email=other.name", "may use only the columns of users"),
    ("users.email=nosuch || 'x'", "has no column 'nosuch'"),
    ("users.email=pg_sleep(5)", "function pg_sleep() is not one a fill may call"),
    ("users.email=random()", "function random() is not one a fill may call"),
    ("users.email='a' -- hidden", "comments are not allowed"),
    ("users.email=", "expected table.column=EXPR"),
    ("users.name='x'", "no pending change of users.name needs it"),
    ("users.email=CASE WHEN", "not a SQL expression"),
])
def test_bad_fill_expressions_are_refused_before_anything_runs(project, spec, message):
    _seed(project)
    before = project.snapshot()
    for command in (["diff"], ["migrate"]):
        run = run_cli(*command, "--fill", spec, env=_env(project, ADD_EMAIL))
        assert run.returncode == 2 and message in run.stderr, run.stderr
    assert project.snapshot() == before
