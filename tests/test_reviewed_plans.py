"""Issue 14, items 1 and 2: what was previewed is what runs. Plan ids from `diff`, `migrate --plan-id`,
plan files (`plan --out`, `migrate --plan`, `check --plan`) and `diff --sql` run by the databases' own
command-line clients, through the real console script on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from sqlalchemy.engine import make_url

from cli_process import project_env, run_cli
from migration_core.planfile import _header_digest

V1 = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n'
V2 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
      'Column("email", String(100)), Index("ix_users_email", "email"))\n'
      'Table("posts", metadata, Column("id", Integer, primary_key=True), Column("user_id", ForeignKey("users.id")), '
      'Column("title", String(80), nullable=False))\n')
V2_OTHER = V2.replace("String(100)", "String(120)")
STALE = "the database or the models changed since this plan was previewed"


def _env(project, body: str) -> dict[str, str]:
    return project_env(project, project.models(body))


def _json(run) -> dict:
    assert run.stdout, run.stderr
    return json.loads(run.stdout)


def _history(env) -> list[dict]:
    return _json(run_cli("--json", "history", env=env))["history"]


def _add_column_by_hand(p) -> None:
    p.sql("ALTER TABLE users ADD COLUMN nick VARCHAR(10)")


def test_previewed_plan_id_runs_and_a_stale_one_is_refused(anydb):
    anydb.migrate(V1)
    anydb.sql("INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob')")
    env, other = _env(anydb, V2), _env(anydb, V2_OTHER)
    preview = _json(run_cli("--json", "diff", env=env))
    plan_id = preview["plan_id"]
    assert len(plan_id) == 64 and preview["sql"]
    assert _json(run_cli("--json", "diff", env=env))["plan_id"] == plan_id  # the same inputs, the same id
    assert plan_id in run_cli("diff", env=env).stdout

    # The models changed since the preview: refused, nothing changed, and the refusal says what differs.
    before = anydb.snapshot()
    run = run_cli("migrate", "--plan-id", plan_id, env=other)
    assert run.returncode == 3, run.stderr
    assert STALE in run.stderr and "the models changed" in run.stderr and "VARCHAR(120)" in run.stderr
    # The database changed since the preview (a column added by hand): refused as well.
    _add_column_by_hand(anydb)
    changed = anydb.snapshot()
    run = run_cli("--json", "migrate", "--plan-id", plan_id, env=env)
    assert run.returncode == 3 and _json(run)["refused"] is True
    assert STALE in run.stderr and "the database's schema changed" in run.stderr
    assert anydb.snapshot() == changed != before
    # An option the preview did not have changes the plan id too.
    run = run_cli("migrate", "--plan-id", plan_id, "--allow-destructive", env=env)
    assert run.returncode == 3 and "option allow_destructive was false in the preview, true now" in run.stderr

    anydb.sql("ALTER TABLE users DROP COLUMN nick")
    run = run_cli("--json", "migrate", "--plan-id", plan_id, env=env)
    assert run.returncode == 0, run.stderr
    assert _json(run)["plan_id"] == plan_id
    assert _history(env)[0]["plan_id"] == plan_id
    assert run_cli("check", env=env).returncode == 0
    # Applied: the same id is now stale (there is nothing left to do).
    run = run_cli("migrate", "--plan-id", plan_id, env=env)
    assert run.returncode == 3 and "the database already matches the models" in run.stderr


def test_destructive_plan_id_needs_the_same_flag_in_preview_and_migrate(project):
    project.migrate(V1)
    project.sql("INSERT INTO users (id, name) VALUES (1, 'ann')")
    env = _env(project, 'Table("users", metadata, Column("id", Integer, primary_key=True))\n')
    plain = _json(run_cli("--json", "diff", env=env))
    allowed = _json(run_cli("--json", "diff", "--allow-destructive", env=env))
    assert plain["plan_id"] != allowed["plan_id"] and plain["sql"] == allowed["sql"]
    assert plain["safe_to_apply"] is False and allowed["safe_to_apply"] is True
    assert run_cli("migrate", "--plan-id", plain["plan_id"], env=env).returncode == 3  # still destructive without the flag
    plain_file, allowed_file = project.tmp / "plain.sql", project.tmp / "allowed.sql"
    run_cli("plan", "--out", str(plain_file), env=env)
    run_cli("plan", "--out", str(allowed_file), "--allow-destructive", env=env)
    assert "-- safe-to-apply: no" in plain_file.read_text() and "[destructive, refused]" in plain_file.read_text()
    assert run_cli("check", "--plan", str(plain_file), env=env).returncode == 3  # matches, but migrate would refuse it
    assert run_cli("check", "--plan", str(allowed_file), env=env).returncode == 0
    run = run_cli("check", "--plan", str(allowed_file), "--rename", "a:b", env=env)
    assert run.returncode == 2 and "uses the plan file's own" in run.stderr
    run = run_cli("migrate", "--plan-id", allowed["plan_id"], "--allow-destructive", env=env)
    assert run.returncode == 0, run.stderr
    assert project.sql("SELECT * FROM users") == [(1,)]


def test_malformed_plan_id_is_a_usage_error(project):
    project.migrate(V1)
    before = project.snapshot()
    for bad in ("12", "x" * 64, "../../etc/passwd"):
        run = run_cli("migrate", "--plan-id", bad, env=_env(project, V2))
        assert run.returncode == 2 and "plan id must be the 64 hex digits" in run.stderr
    assert project.snapshot() == before


def test_plan_file_check_migrate_and_stale(anydb, tmp_path):
    anydb.migrate(V1)
    anydb.sql("INSERT INTO users (id, name) VALUES (1, 'ann')")
    env = _env(anydb, V2)
    plan = tmp_path / "plan.sql"
    run = run_cli("plan", "--out", str(plan), env=env)
    assert run.returncode == 0, run.stderr
    text = plan.read_text()
    preview = _json(run_cli("--json", "diff", env=env))
    assert f"-- plan-id: {preview['plan_id']}" in text
    assert f"-- database-fingerprint: {preview['database_fingerprint']}" in text
    assert f"-- models-fingerprint: {preview['models_fingerprint']}" in text
    assert "-- tool-version: " in text and "[safe] add column users.email" in text
    assert "<" not in "".join(line for line in text.splitlines() if not line.startswith("--"))  # no placeholders
    assert run_cli("check", "--plan", str(plan), env=env).returncode == 0

    # Stale: check fails for CI and migrate refuses, both saying why.
    _add_column_by_hand(anydb)
    changed = anydb.snapshot()
    run = run_cli("check", "--plan", str(plan), env=env)
    assert run.returncode == 1 and "stale" in run.stdout and "the database's schema changed" in run.stdout
    run = run_cli("migrate", "--plan", str(plan), env=env)
    assert run.returncode == 3 and STALE in run.stderr
    assert anydb.snapshot() == changed

    # A hand-edited plan file no longer matches its id: refused before anything runs.
    anydb.sql("ALTER TABLE users DROP COLUMN nick")
    unedited = anydb.snapshot()
    edited = tmp_path / "edited.sql"
    head, body = text.split("-- statement 1\n", 1)
    assert "VARCHAR(100)" in body
    edited.write_text(head + "-- statement 1\n" + body.replace("VARCHAR(100)", "VARCHAR(200)"))
    run = run_cli("migrate", "--plan", str(edited), env=env)
    assert run.returncode == 3 and "changed after it was written" in run.stderr
    assert anydb.snapshot() == unedited
    run = run_cli("migrate", "--plan", str(plan), "--allow-destructive", env=env)
    assert run.returncode == 2 and "plan file carries its own options" in run.stderr

    run = run_cli("--json", "migrate", "--plan", str(plan), env=env)
    assert run.returncode == 0, run.stderr
    assert _json(run)["plan_id"] == preview["plan_id"] == _history(env)[0]["plan_id"]
    assert run_cli("check", env=env).returncode == 0
    assert run_cli("check", "--plan", str(plan), env=env).returncode == 1  # applied: no longer what migrate would run


def test_not_a_plan_file(project, tmp_path):
    project.migrate(V1)
    junk = tmp_path / "junk.sql"
    junk.write_text("DROP TABLE users;\n")
    for args in (["migrate", "--plan", str(junk)], ["check", "--plan", str(junk)], ["migrate", "--plan", str(tmp_path / "none.sql")]):
        run = run_cli(*args, env=_env(project, V2))
        assert run.returncode == 2, run.stderr
    assert project.tables() == ["users"]


def _client_command(p, script) -> list[str] | None:
    """The database's own command-line client, reading `script`; None when it is not installed."""
    if p.kind == "sqlite":
        tool = shutil.which("sqlite3")
        return [tool, "-bail", str(p.db), f".read {script}"] if tool else None
    url = make_url(p.url)
    if p.kind == "postgresql":
        tool = shutil.which("psql")
        return [tool, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", url.host, "-p", str(url.port or 5432), "-U", url.username,
                "-d", url.database, "-f", str(script)] if tool else None
    tool = shutil.which("mariadb") or shutil.which("mysql")
    return [tool, "-h", url.host, "-P", str(url.port or 3306), "-u", url.username, url.database,
            "-e", f"source {script}"] if tool else None


def test_diff_sql_runs_as_printed(anydb, tmp_path):
    """`diff --sql > plan.sql` then the database's own client on plan.sql brings the database to the models."""
    anydb.migrate(V1)
    anydb.sql("INSERT INTO users (id, name) VALUES (1, 'ann')")
    env = _env(anydb, V2)
    run = run_cli("diff", "--sql", env=env)
    assert run.returncode == 0, run.stderr
    script = tmp_path / "plan.sql"
    script.write_text(run.stdout)
    command = _client_command(anydb, script)
    if command is None:
        pytest.skip(f"no command-line client for {anydb.kind}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and "ERROR" not in done.stderr.upper(), done.stderr
    assert run_cli("check", env=env).returncode == 0
    assert anydb.sql("SELECT id, name FROM users") == [(1, "ann")]


def test_plan_file_review_header_unbounded_input_and_other_database(project, tmp_path):
    """A reviewer reads the header: an edit of a risk is caught like an edit of a statement. A device or a
    pipe is read only up to the size limit; a byte-order mark is tolerated; an id nobody previewed is not
    said to be stale; a plan for another kind of database is named as such."""
    project.migrate(V1)
    env = _env(project, V2)
    plan = tmp_path / "plan.sql"
    assert run_cli("plan", "--out", str(plan), env=env).returncode == 0
    text = plan.read_text()
    assert "[safe] add column users.email" in text and "-- header-sha256: " in text
    before = project.snapshot()
    for old, new in (("[safe] add column users.email", "[destructive] add column users.email"),
                     ("-- complexity: ", "-- complexity: SIMPLE "), ("-- safe-to-apply: yes", "-- safe-to-apply: no")):
        edited = tmp_path / "edited.sql"
        edited.write_text(text.replace(old, new, 1))
        assert edited.read_text() != text, old
        for command in ("check", "migrate"):
            run = run_cli(command, "--plan", str(edited), env=env)
            assert run.returncode == 3 and "review header" in run.stderr, (old, run.stderr)
    bom = tmp_path / "bom.sql"
    bom.write_text("\ufeff" + text)
    assert run_cli("check", "--plan", str(bom), env=env).returncode == 0
    run = run_cli("check", "--plan", "/dev/zero", env=env, timeout=60)
    assert run.returncode == 2 and "larger than 64 MiB" in run.stderr
    run = run_cli("migrate", "--plan-id", "0" * 64, env=env)
    assert run.returncode == 3 and STALE not in run.stderr and "is not the plan migrate would run now" in run.stderr
    head, body = text.replace("-- dialect: sqlite", "-- dialect: postgresql", 1).split("\n-- header-sha256: ", 1)
    other = tmp_path / "other.sql"  # as if written against a PostgreSQL database with the same schema
    other.write_text(f"{head}\n-- header-sha256: {_header_digest(head.splitlines())}\n" + body.split("\n", 1)[1])
    run = run_cli("check", "--plan", str(other), env=env)
    assert run.returncode == 2 and "is a plan for a postgresql database; this database is sqlite" in run.stderr, run.stderr
    assert project.snapshot() == before
