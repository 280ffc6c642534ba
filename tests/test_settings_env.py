"""Issue 13, item 4: settings from the environment. The obvious forms work (a comma-separated list as
well as JSON); every bad value is one line naming the variable and exit code 2, from the CLI and from
the server; random values never produce a traceback."""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cli_process import clean_env, run_cli
from helpers_core import write_models
from server.cli import main as cli_main

SETTINGS_VARS = ["AUTO_BACKUP", "MAX_EXECUTION_TIME_MS", "DRY_RUN", "ALLOW_DESTRUCTIVE", "READ_ONLY", "BACKUP_RETENTION",
                 "LOCK_TIMEOUT_MS", "DDL_LOCK_TIMEOUT_MS", "CONCURRENT_INDEXES", "RENAMES", "IGNORE_TABLES"]


def _app(tmp: Path, body: str, rows: str = "") -> dict[str, str]:
    db = tmp / "app.db"
    conn = sqlite3.connect(db)
    conn.executescript(rows)
    conn.close()
    return {"MIGRATION_DATABASE_URL": f"sqlite:///{db}", "MIGRATION_MODELS": write_models(tmp, body),
            "MIGRATION_BACKUP_DIR": str(tmp / "backups"), "MIGRATION_DATA_DIR": str(tmp / "data")}


@pytest.mark.parametrize("renames", ["customers.name:full_name, orders:purchases", '["customers.name:full_name", "orders:purchases"]'])
def test_renames_as_a_plain_list(tmp_path, renames):
    app = _app(tmp_path, 'Table("customers", metadata, Column("id", Integer, primary_key=True), Column("full_name", String(50)))\n'
                         'Table("purchases", metadata, Column("id", Integer, primary_key=True))\n',
               "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(50)); INSERT INTO customers VALUES (1, 'ann');"
               "CREATE TABLE orders (id INTEGER PRIMARY KEY); INSERT INTO orders VALUES (7);")
    run = run_cli("migrate", env=clean_env(**app, MIGRATION_RENAMES=renames))
    assert run.returncode == 0, run.stderr
    assert "rename column customers.name to full_name" in run.stdout
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert conn.execute("SELECT id, full_name FROM customers").fetchall() == [(1, "ann")]
        if "orders" in renames:
            assert conn.execute("SELECT id FROM purchases").fetchall() == [(7,)]


@pytest.mark.parametrize("pattern", ["audit_*", "audit_*,tmp_*", '["audit_*"]'])
def test_ignore_tables_as_a_plain_glob(tmp_path, pattern):
    app = _app(tmp_path, 'Table("users", metadata, Column("id", Integer, primary_key=True))\n',
               "CREATE TABLE users (id INTEGER PRIMARY KEY); CREATE TABLE audit_log (id INTEGER PRIMARY KEY, what TEXT);"
               "INSERT INTO audit_log VALUES (1, 'kept');")
    env = clean_env(**app, MIGRATION_IGNORE_TABLES=pattern)
    assert run_cli("check", env=env).returncode == 0  # audit_log is not a pending drop
    assert run_cli("migrate", "--allow-destructive", env=env).returncode == 0
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert conn.execute("SELECT * FROM audit_log").fetchall() == [(1, "kept")]


BAD = [
    ("MIGRATION_RENAMES", "[customers.name", "MIGRATION_RENAMES='[customers.name': starts with '[' but is not a JSON list"),
    ("MIGRATION_RENAMES", "customers", "MIGRATION_RENAMES='customers': invalid rename hint 'customers': use old_table:new_table"),
    ("MIGRATION_IGNORE_TABLES", '[1, 2]', "must be a JSON list of strings"),
    ("MIGRATION_AUTO_BACKUP", "maybe", "MIGRATION_AUTO_BACKUP='maybe': Input should be a valid boolean"),
    ("MIGRATION_LOCK_TIMEOUT_MS", "ten", "MIGRATION_LOCK_TIMEOUT_MS='ten': Input should be a valid integer"),
    ("MIGRATION_MAX_EXECUTION_TIME_MS", "0", "MIGRATION_MAX_EXECUTION_TIME_MS='0': Input should be greater than 0"),
    ("MIGRATION_BACKUP_RETENTION", "1e99", "MIGRATION_BACKUP_RETENTION='1e99'"),
    ("MIGRATION_DATABASE_URL", "postgresql://app:s3cret@db:5x32/app", "MIGRATION_DATABASE_URL: invalid database URL"),
    ("MIGRATION_DATABASE_URL", "sqlite://", "MIGRATION_DATABASE_URL: an in-memory SQLite database cannot be migrated"),
]


# The server reads its settings through the same code as every command: three cases show it exits the same way.
CASES = [(["status"], *bad) for bad in BAD] + [(["serve"], *BAD[i]) for i in (0, 3, 7)]


@pytest.mark.parametrize("command, var, value, expected", CASES, ids=[f"{c[0]}-{v}={x}" for c, v, x, _ in CASES])
def test_bad_setting_is_one_line_and_exit_2(tmp_path, command, var, value, expected):
    app = _app(tmp_path, 'Table("users", metadata, Column("id", Integer, primary_key=True))\n')
    run = run_cli(*command, env=clean_env(**{**app, var: value}), timeout=60)
    assert run.returncode == 2, run.stderr
    lines = [line for line in run.stderr.splitlines() if not line.startswith("migration-mcp: using ")]
    assert len(lines) == 1 and lines[0].startswith("migration-mcp: error: "), run.stderr
    assert expected in lines[0], lines[0]
    assert "s3cret" not in run.stderr and run.stdout == ""
    assert not (tmp_path / "data").exists() and not (tmp_path / "backups").exists()


# -- property: random environment values never end in a traceback ---------------------------------

env_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
interesting = st.sampled_from(["", " ", "[", "[]", "[1]", '["a:b"]', '["a"', "a,b", "a:b,c.d:e", ",", "0", "-1", "1", "true",
                               "yes", "off", "NaN", "1e3", "99999999999999999999", "{}", "null", "t.x:y", "*", "audit_*"])
value = st.one_of(interesting, env_text)
database_urls = st.one_of(st.just(None), st.sampled_from(["notaurl", "sqlite://", "sqlite:///:memory:", "oracle://x/y",
                                                          "postgresql://u:pw@127.0.0.1:1/db", "mysql+pymysql://u:pw@127.0.0.1:1/db",
                                                          "sqlite:///relative/app.db"]),
                          env_text.filter(lambda t: "://" not in t))
models = st.one_of(st.just(None), st.sampled_from(["", ":", "x", "zz_no_such_module:Base", "/no/such/file.py:Base"]),
                   env_text.map(lambda t: "zz_no_such_" + t))


@contextmanager
def environment(values: dict[str, str]):
    saved = {k: v for k, v in os.environ.items() if k.startswith("MIGRATION_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("MIGRATION_")]:
            del os.environ[key]
        os.environ.update(saved)


@pytest.fixture(scope="module")
def app_env(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("settings")
    return _app(tmp, 'Table("users", metadata, Column("id", Integer, primary_key=True))\n',
                "CREATE TABLE users (id INTEGER PRIMARY KEY);")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=st.dictionaries(st.sampled_from(SETTINGS_VARS), value, max_size=5), url=database_urls, spec=models,
       command=st.sampled_from([["status"], ["check"], ["--json", "health"], ["history"], ["rollback", "--dry-run"],
                              ["migrate", "--dry-run"]]))
def test_random_settings_never_end_in_a_traceback(app_env, capsys, chosen, url, spec, command):
    values = {**app_env, **{f"MIGRATION_{k}": v for k, v in chosen.items()}}
    if url is not None:
        values["MIGRATION_DATABASE_URL"] = url
    if spec is not None:
        values["MIGRATION_MODELS"] = spec
    cwd = os.getcwd()
    os.chdir(Path(app_env["MIGRATION_DATA_DIR"]).parent)  # where a relative SQLite path would land
    try:
        with environment(values):
            code = cli_main(command)  # an exception escaping here is the traceback a user would see
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    event(f"exit code {code}")
    assert code in (0, 1, 2, 3), (code, err)
    assert "Traceback" not in err and "unexpected error" not in err, err
    if code == 2:
        [line] = [x for x in err.splitlines() if x.startswith("migration-mcp: error: ")]
        assert len(line) < 400, line


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=st.dictionaries(st.sampled_from(SETTINGS_VARS), value, min_size=1, max_size=4))
def test_random_settings_never_crash_the_server(app_env, chosen):
    """The server process itself: it serves (and exits 0 when its client hangs up) or exits 2 with one line."""
    env = clean_env(**app_env, **{f"MIGRATION_{k}": v for k, v in chosen.items()})
    run = run_cli("serve", "--no-startup-migration", env=env, timeout=60)
    assert run.returncode in (0, 2), run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    if run.returncode == 2:
        assert [x for x in run.stderr.splitlines() if x.startswith("migration-mcp: error: MIGRATION_")], run.stderr
