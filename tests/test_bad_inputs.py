"""Bad inputs get specific errors (message content, CLI exit code), and refusals change nothing.

Exit codes: 0 ok, 1 failure, 2 usage/configuration, 3 refused for safety.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from migration_core import AutoMigrationSystem, MigrationSettings
from migration_core.errors import ConfigurationError, SafetyRefusal
from server.cli import main as cli_main

from helpers_core import CLI, file_sha256, history_rows, query, system_for, write_models

T_ID = 'Table("t", metadata, Column("id", Integer, primary_key=True), '


@pytest.fixture
def cli(capsys):
    """Run the CLI in this process (same code path as the console script); return (code, stdout, stderr)."""
    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = cli_main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture(autouse=True)
def _no_migration_env(monkeypatch):
    for key in [k for k in os.environ if k.startswith("MIGRATION_")]:
        monkeypatch.delenv(key)


def _args(db: Path, models: str, tmp: Path, *rest: str) -> list[str]:
    return ["--database-url", f"sqlite:///{db}", "--models", models, "--backup-dir", str(tmp / "backups"), *rest]


def _make_db(tmp: Path, table_body: str, rows_sql: str = "") -> tuple[Path, str]:
    db = tmp / "app.db"
    models = write_models(tmp, T_ID + table_body + ")\n")
    system_for(db, models, tmp / "backups").execute_auto_migration(create_backup=False)
    if rows_sql:
        conn = sqlite3.connect(db)
        conn.executescript(rows_sql)
        conn.commit()
        conn.close()
    return db, models


# ---------------------------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------------------------


def test_url_that_does_not_parse(tmp_path, cli):
    with pytest.raises(ConfigurationError, match=r"invalid database URL 'notaurl'"):
        MigrationSettings(database_url="notaurl", models=write_models(tmp_path, ""))
    code, out, err = cli("--database-url", "notaurl", "--models", write_models(tmp_path, ""), "status")
    assert code == 2
    assert "invalid database URL 'notaurl'" in err and out == ""
    assert "Traceback" not in err


def test_in_memory_sqlite_is_refused_with_a_reason(tmp_path, cli):
    for url in ("sqlite:///:memory:", "sqlite://", "sqlite:///file::memory:?cache=shared"):
        with pytest.raises(ConfigurationError, match="in-memory SQLite database cannot be migrated"):
            MigrationSettings(database_url=url, models=write_models(tmp_path, ""))
    code, _, err = cli("--database-url", "sqlite:///:memory:", "--models", write_models(tmp_path, ""), "migrate")
    assert code == 2 and "in-memory" in err and "sqlite:////absolute/path" in err


def test_unsupported_backend(tmp_path, cli):
    settings = MigrationSettings(database_url="oracle://x", models=write_models(tmp_path, ""))
    with pytest.raises(ConfigurationError, match=r"backend .oracle. is not supported; supported: sqlite, postgresql, mysql/mariadb"):
        AutoMigrationSystem(settings)
    code, out, err = cli("--database-url", "oracle://x", "--models", write_models(tmp_path, ""), "--json", "status")
    assert code == 2
    assert '"exit_code": 2' in out and "'oracle' is not supported" in out


# ---------------------------------------------------------------------------------------------
# database files
# ---------------------------------------------------------------------------------------------


def test_status_of_a_database_in_a_missing_directory_does_not_create_it(tmp_path, cli):
    missing = tmp_path / "no" / "such" / "dir"
    models = write_models(tmp_path, T_ID + 'Column("a", Integer))\n')
    code, out, err = cli(*_args(missing / "app.db", models, tmp_path, "status"))
    assert code == 0 and "1 pending change" in out
    assert not (tmp_path / "no").exists(), "a read-only command created directories"


def test_migrate_into_a_missing_directory_is_a_configuration_error(tmp_path, cli):
    """Regression: FileMigrationLock (filelock) created the missing parent directories of
    <db>.migration.lock before connect(write=True) checked them, so a mistyped path made a new database."""
    missing = tmp_path / "no" / "such" / "dir"
    models = write_models(tmp_path, T_ID + 'Column("a", Integer))\n')
    code, out, err = cli(*_args(missing / "app.db", models, tmp_path, "migrate"))
    created = (tmp_path / "no").exists()
    assert code == 2, (code, out, err)
    assert f"directory {missing} does not exist" in err
    assert not created, "migrate created the missing directories (and a new database) instead of refusing"


def test_a_file_that_is_not_a_database(tmp_path, cli):
    db = tmp_path / "junk.db"
    db.write_bytes(os.urandom(8192))
    before = file_sha256(db)
    models = write_models(tmp_path, T_ID + 'Column("a", Integer))\n')
    system = system_for(db, models, tmp_path / "backups")
    for call in (system.check_migration_status, system.execute_auto_migration):
        with pytest.raises(ConfigurationError, match=r"junk\.db is not a usable SQLite database: file is not a database"):
            call()
    for command in ("status", "migrate", "diff"):
        code, out, err = cli(*_args(db, models, tmp_path, command))
        assert code == 2, command
        assert "is not a usable SQLite database" in err and "Traceback" not in err
    code, out, _ = cli(*_args(db, models, tmp_path, "health"))
    assert code == 1 and "unhealthy" in out
    assert file_sha256(db) == before


def test_a_directory_where_the_database_file_should_be(tmp_path, cli):
    db = tmp_path / "dir.db"
    db.mkdir()
    models = write_models(tmp_path, T_ID + 'Column("a", Integer))\n')
    code, _, err = cli(*_args(db, models, tmp_path, "migrate"))
    assert code == 2 and "is a directory, not a SQLite database file" in err


@contextlib.contextmanager
def read_only_file(path: Path):
    """Make `path` unwritable even for root (which ignores permission bits): chattr +i when root."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o444)
        try:
            yield "chmod 0444"
        finally:
            path.chmod(mode)
        return
    r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"running as root and cannot make a file immutable (chattr +i: {r.stderr.strip() or r.returncode}); "
                    "root ignores chmod 0444, so a read-only database cannot be simulated here")
    try:
        yield "chattr +i"
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_database_file(tmp_path, cli):
    db, _ = _make_db(tmp_path, 'Column("a", Integer)', "INSERT INTO t (a) VALUES (1);")
    models = write_models(tmp_path, T_ID + 'Column("a", Integer), Column("b", Integer))\n')
    before = file_sha256(db)
    with read_only_file(db):
        # status only reads: it works and reports the pending change
        code, out, _ = cli(*_args(db, models, tmp_path, "status"))
        assert code == 0 and "add column t.b" in out
        system = system_for(db, models, tmp_path / "backups")
        with pytest.raises(ConfigurationError, match=r"database file .*app\.db is read-only; the migration needs write access"):
            system.execute_auto_migration()
        code, _, err = cli(*_args(db, models, tmp_path, "migrate"))
        assert code == 2 and "is read-only" in err
        code, _, err = cli(*_args(db, models, tmp_path, "migrate", "--dry-run"))
        assert code == 0, err  # a dry run needs no write access
    assert file_sha256(db) == before


# ---------------------------------------------------------------------------------------------
# models references
# ---------------------------------------------------------------------------------------------


def _models_error(tmp_path: Path, spec: str, cli) -> tuple[str, str]:
    db = tmp_path / "app.db"
    system = AutoMigrationSystem(MigrationSettings(database_url=f"sqlite:///{db}", models=spec, backup_dir=tmp_path / "b"))
    with pytest.raises(ConfigurationError) as excinfo:
        system.check_migration_status()
    code, out, err = cli(*_args(db, spec, tmp_path, "status"))
    assert code == 2, err
    assert "Traceback" not in err
    assert not db.exists(), "a models error created the database"
    return str(excinfo.value), err


def test_models_module_missing(tmp_path, cli):
    msg, err = _models_error(tmp_path, "no_such_models_module_xyz:metadata", cli)
    assert "models module 'no_such_models_module_xyz' not found" in msg
    assert "check --models and PYTHONPATH" in err


def test_models_attribute_missing(tmp_path, cli):
    spec = write_models(tmp_path, T_ID + 'Column("a", Integer))\n').replace(":metadata", ":nope")
    msg, err = _models_error(tmp_path, spec, cli)
    assert "has no attribute 'nope'" in msg and "has no attribute 'nope'" in err


def test_models_attribute_of_the_wrong_type(tmp_path, cli):
    spec = write_models(tmp_path, "answer = 42\n").replace(":metadata", ":answer")
    msg, err = _models_error(tmp_path, spec, cli)
    assert "is a int; expected a MetaData, a declarative base, or a callable returning MetaData" in msg
    spec = write_models(tmp_path, "def build(x):\n    return metadata\n").replace(":metadata", ":build")
    msg, _ = _models_error(tmp_path, spec, cli)
    assert "callable that needs arguments" in msg
    spec = write_models(tmp_path, "def build():\n    return 'not metadata'\n").replace(":metadata", ":build")
    msg, _ = _models_error(tmp_path, spec, cli)
    assert "returned str, not a SQLAlchemy MetaData" in msg


def test_models_spec_without_colon(tmp_path, cli):
    msg, _ = _models_error(tmp_path, "just_a_module", cli)
    assert "invalid models reference 'just_a_module'" in msg and "module:attr" in msg


def test_models_file_missing(tmp_path, cli):
    missing = tmp_path / "nowhere" / "models.py"
    msg, err = _models_error(tmp_path, f"{missing}:metadata", cli)
    assert f"models file {missing} does not exist" in msg


def test_models_file_that_raises_on_import_is_reported_every_time(tmp_path, cli):
    spec = write_models(tmp_path, "raise RuntimeError('boom while importing models')\n")
    msg, err = _models_error(tmp_path, spec, cli)
    assert "importing models file" in msg and "failed: RuntimeError: boom while importing models" in msg
    assert "boom while importing models" in err  # the second import fails again: nothing half-imported was cached


def test_an_index_declared_without_a_column_is_named(tmp_path, cli):
    """MLflow 3.17 declares `Index("index_trace_tags_request_id")` with no column: every database's error
    is a syntax error near ")"; the tool names the index and its table instead, and creates nothing."""
    spec = write_models(tmp_path, 'Table("trace_tags", metadata, Column("id", Integer, primary_key=True), '
                                  'Column("request_id", String(50)), Index("index_trace_tags_request_id"))\n')
    msg, err = _models_error(tmp_path, spec, cli)
    assert "index index_trace_tags_request_id on table trace_tags has no columns" in msg


def test_models_callable_returning_metadata_works(tmp_path):
    db = tmp_path / "app.db"
    spec = write_models(tmp_path, T_ID + 'Column("a", Integer))\ndef get_metadata():\n    return metadata\n')
    system = system_for(db, spec.replace(":metadata", ":get_metadata"), tmp_path / "b")
    assert system.execute_auto_migration().success
    assert query(db, "SELECT name FROM pragma_table_info('t') ORDER BY cid") == [("id",), ("a",)]
    assert system.check_migration_status().migration_needed is False


def test_models_declarative_base_works(tmp_path):
    db = tmp_path / "app.db"
    spec = write_models(tmp_path, """
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

        class Base(DeclarativeBase):
            pass

        class Customer(Base):
            __tablename__ = "customer"
            id: Mapped[int] = mapped_column(primary_key=True)
            email: Mapped[str] = mapped_column(String(200), unique=True)
            note: Mapped[str | None]
        """)
    for attr in (":Base", ":Base.metadata"):
        system = system_for(db, spec.replace(":metadata", attr), tmp_path / "b")
        system.execute_auto_migration()
        assert system.check_migration_status().migration_needed is False
    cols = query(db, "SELECT name, \"notnull\" FROM pragma_table_info('customer') ORDER BY cid")
    assert cols == [("id", 1), ("email", 1), ("note", 0)]


# ---------------------------------------------------------------------------------------------
# rename hints
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hint", ["a:b:c", "t.a.b:c", "nocolon", "", ":x", "t.:x"])
def test_invalid_rename_hint_syntax(tmp_path, cli, hint):
    db, _ = _make_db(tmp_path, 'Column("a", Integer)')
    models = write_models(tmp_path, T_ID + 'Column("b", Integer))\n')
    with pytest.raises(ValidationError, match="invalid rename hint"):  # found when the settings are made
        system_for(db, models, tmp_path / "b", renames=[hint])
    before = file_sha256(db)
    code, _, err = cli(*_args(db, models, tmp_path, "migrate", "--allow-destructive", "--rename", hint))
    assert code == 2 and "invalid rename hint" in err and "old_table:new_table" in err
    assert file_sha256(db) == before


def test_rename_hint_that_does_not_apply(tmp_path, cli):
    db, _ = _make_db(tmp_path, 'Column("a", Integer)')
    models = write_models(tmp_path, T_ID + 'Column("b", Integer))\n')
    before = file_sha256(db)
    code, _, err = cli(*_args(db, models, tmp_path, "migrate", "--rename", "t.zzz:b"))
    assert code == 2 and "rename hint t.zzz:b does not apply" in err
    code, _, err = cli(*_args(db, models, tmp_path, "migrate", "--rename", "nosuch.a:b"))
    assert code == 2 and "names table 'nosuch'" in err
    code, _, err = cli(*_args(db, models, tmp_path, "migrate", "--rename", "gone:alsogone"))
    assert code == 2 and "rename hint gone:alsogone does not apply" in err
    assert file_sha256(db) == before


def test_rename_hint_keeps_values_and_stays_valid_after_it_applied(tmp_path):
    db, _ = _make_db(tmp_path, 'Column("a", Integer)', "INSERT INTO t (a) VALUES (5), (6);")
    models = write_models(tmp_path, T_ID + 'Column("b", Integer))\n')
    system = system_for(db, models, tmp_path / "b", renames=["t.a:b"])
    system.execute_auto_migration()
    assert query(db, "SELECT b FROM t ORDER BY id") == [(5,), (6,)]
    assert system.check_migration_status().migration_needed is False  # the same hint again: already applied


def test_column_rename_hint_with_old_table_name_stays_valid(tmp_path):
    """Regression: once the table rename was applied, diff_snapshots rejected the column hint naming the
    table's old name ('names table ..., which exists neither in the database nor in the models'), so a
    persistent settings.renames broke every later status/startup."""
    db = tmp_path / "app.db"
    old = write_models(tmp_path, 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", Text))\n')
    system_for(db, old, tmp_path / "b").execute_auto_migration()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO users (id, name) VALUES (1, 'ann')")
    conn.commit()
    conn.close()
    new = write_models(tmp_path, 'Table("people", metadata, Column("id", Integer, primary_key=True), Column("full_name", Text))\n')
    system = system_for(db, new, tmp_path / "b", renames=["users:people", "users.name:full_name"])
    assert system.execute_auto_migration().success
    assert query(db, "SELECT id, full_name FROM people") == [(1, "ann")]
    assert system.check_migration_status().migration_needed is False  # raises ConfigurationError today


# ---------------------------------------------------------------------------------------------
# refusals change nothing
# ---------------------------------------------------------------------------------------------


def test_destructive_change_is_refused_and_the_file_is_byte_identical(tmp_path, cli):
    db, _ = _make_db(tmp_path, 'Column("a", Integer), Column("b", Text)', "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y');")
    Table2 = 'Table("t2", metadata, Column("id", Integer, primary_key=True))\n'
    models_drop_col = write_models(tmp_path, T_ID + 'Column("a", Integer))\n')
    before = file_sha256(db)
    with pytest.raises(SafetyRefusal) as excinfo:
        system_for(db, models_drop_col, tmp_path / "backups").execute_auto_migration()
    assert "drop column t.b" in str(excinfo.value) and "2 rows" in str(excinfo.value)
    assert "pass allow_destructive=True to permit" in str(excinfo.value)  # the library speaks Python
    code, out, err = cli(*_args(db, models_drop_col, tmp_path, "migrate"))
    assert code == 3, err
    assert "refused" in err and "drop column t.b" in err
    assert "rerun with --allow-destructive to permit" in err and "allow_destructive=" not in err  # the CLI speaks flags
    # dropping a whole table (the models no longer mention t)
    models_drop_table = write_models(tmp_path, Table2)
    code, out, err = cli(*_args(db, models_drop_table, tmp_path, "migrate"))
    assert code == 3 and "drop table t" in err and "2 rows" in err
    code, out, err = cli(*_args(db, models_drop_table, tmp_path, "--json", "migrate"))
    assert code == 3 and '"refused": true' in out
    assert file_sha256(db) == before
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir()), "a refused migration left a backup"
    # and allowed, it applies
    code, _, err = cli(*_args(db, models_drop_col, tmp_path, "migrate", "--allow-destructive"))
    assert code == 0, err
    assert query(db, "SELECT id, a FROM t ORDER BY id") == [(1, 1), (2, 2)]


DATA_CASES = {
    # name: (old columns, rows, new columns, expected message fragments)
    "not_null_on_nulls": (
        'Column("email", String(50))', "INSERT INTO t (email) VALUES (NULL), (NULL), (NULL), ('a@x');",
        'Column("email", String(50), nullable=False)',
        ["make t.email NOT NULL", "3 rows hold NULL in t.email"]),
    "unique_on_duplicates": (
        'Column("email", String(50))', "INSERT INTO t (email) VALUES ('a'), ('a'), ('b'), ('b'), ('b'), ('c');",
        'Column("email", String(50), unique=True)',
        ["t(email)", "2 values of (email) appear more than once in t"]),
    "unique_index_on_duplicates": (
        'Column("email", String(50))', "INSERT INTO t (email) VALUES ('a'), ('a'), ('c');",
        'Column("email", String(50)), Index("ix_t_email", "email", unique=True)',
        ["ix_t_email", "1 value of (email) appears more than once in t"]),
    "not_null_without_default_on_rows": (
        'Column("email", String(50))', "INSERT INTO t (email) VALUES ('a'), ('b');",
        'Column("email", String(50)), Column("age", Integer, nullable=False)',
        ["add column t.age", "NOT NULL without a default", "2 rows"]),
    "narrowing_with_long_values": (
        'Column("code", String(50))', "INSERT INTO t (code) VALUES ('abcdefgh'), ('abc'), ('abcdefghijk'), (NULL);",
        'Column("code", String(5))',
        ["t.code", "VARCHAR(50) to VARCHAR(5)", "2 values in t.code are longer than 5 characters"]),
    "text_to_integer_with_words": (
        'Column("qty", Text)', "INSERT INTO t (qty) VALUES ('12'), ('twelve'), ('3x'), ('7'), (NULL), ('1.5');",
        'Column("qty", Integer)',
        ["t.qty", "3 values in t.qty do not convert to INTEGER"]),
    "check_on_violating_rows": (
        'Column("qty", Integer)', "INSERT INTO t (qty) VALUES (-1), (-2), (3);",
        'Column("qty", Integer), CheckConstraint("qty >= 0", name="ck_qty")',
        ["ck_qty", "2 rows in t violate CHECK"]),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_data_dependent_refusal_names_table_column_and_count(tmp_path, cli, case):
    old_cols, rows, new_cols, fragments = DATA_CASES[case]
    db, _ = _make_db(tmp_path, old_cols, rows)
    models = write_models(tmp_path, T_ID + new_cols + ")\n")
    before = file_sha256(db)
    system = system_for(db, models, tmp_path / "backups")
    status = system.check_migration_status()
    assert status.safe_to_apply is False
    blocked = [c for c in status.changes if c.blocked]
    assert len(blocked) == 1 and blocked[0].risk == "data_dependent"
    with pytest.raises(SafetyRefusal) as excinfo:
        system.execute_auto_migration(allow_destructive=True)  # permission to destroy does not override the data
    for fragment in fragments:
        assert fragment in str(excinfo.value), (fragment, str(excinfo.value))
    code, out, err = cli(*_args(db, models, tmp_path, "migrate", "--allow-destructive"))
    assert code == 3, err
    for fragment in fragments:
        assert fragment in err
    code, _, err = cli(*_args(db, models, tmp_path, "migrate", "--dry-run"))
    assert code == 3
    assert file_sha256(db) == before
    assert history_rows(db)[-1]["status"] == "succeeded"  # only the setup migration is recorded


def test_added_column_whose_default_violates_its_check_is_refused_up_front(tmp_path, cli):
    """Regression: the CHECK probe could not see a column the plan adds, swallowed the sqlite3 error and
    reported 0 violations, so the migration failed mid-execution (exit 1, history row written)."""
    db, _ = _make_db(tmp_path, 'Column("a", Integer)', "INSERT INTO t (a) VALUES (1), (2);")
    models = write_models(tmp_path, T_ID + 'Column("a", Integer), '
                          'Column("qty", Integer, CheckConstraint("qty >= 0", name="ck_qty"), server_default=text("-5")))\n')
    before = file_sha256(db)
    system = system_for(db, models, tmp_path / "backups")
    with pytest.raises(SafetyRefusal, match=r"ck_qty.*2 rows in t violate CHECK"):
        system.execute_auto_migration()
    code, _, err = cli(*_args(db, models, tmp_path, "migrate"))
    assert code == 3 and "ck_qty" in err
    assert file_sha256(db) == before
    # a default that satisfies the CHECK goes through
    ok = write_models(tmp_path, T_ID + 'Column("a", Integer), '
                      'Column("qty", Integer, CheckConstraint("qty >= 0", name="ck_qty"), server_default=text("5")))\n')
    assert system_for(db, ok, tmp_path / "backups").execute_auto_migration().success
    assert query(db, "SELECT a, qty FROM t ORDER BY id") == [(1, 5), (2, 5)]


# ---------------------------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------------------------

SECRET = "S3cr3t-Pa55w0rd"


def _run_all(commands: list[tuple[list[str], dict]]) -> list[tuple[list[str], int, str]]:
    """Run CLI invocations concurrently (each is a fresh interpreter); return (args, code, all output)."""
    procs = []
    for args, env in commands:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_")}
        full_env.update(env)
        procs.append((args, subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             text=True, env=full_env)))
    out = []
    for args, p in procs:
        text, _ = p.communicate(timeout=120)
        out.append((args, p.returncode, text))
    return out


def _clear_failure(text: str) -> bool:
    """A server URL fails for a stated reason: backend not supported (yet), bad URL, or no connection."""
    return any(s in text for s in ("not supported yet", "invalid database URL", "cannot connect", "not installed"))


def test_password_in_url_never_appears_in_any_output(tmp_path):
    models = write_models(tmp_path, T_ID + 'Column("a", Integer))\n')
    url = f"postgresql://app_user:{SECRET}@db.example.invalid:5432/app"
    base = ["--models", models, "--backup-dir", str(tmp_path / "b")]
    commands = []
    for sub in (["diff", "--sql"], ["rollback", "--yes"], ["--json", "health"], ["-v", "--json", "migrate"]):
        commands.append((["--database-url", url, *base, *sub], {}))
    commands.append(([*base, "status"], {"MIGRATION_DATABASE_URL": url}))
    commands.append(([*base, "--json", "health"], {"MIGRATION_DATABASE_URL": url.replace("postgresql", "postgresql+psycopg")}))
    commands.append((["--database-url", url.replace(":5432", ":54x32"), *base, "status"], {}))  # unparseable port
    commands.append((["--database-url", f"postgresql://app_user:{SECRET}@127.0.0.1:1/app", *base, "migrate"], {}))
    commands.append((["--database-url", f"mysql+pymysql://app_user:{SECRET}@127.0.0.1:1/app", *base, "status"], {}))
    for args, code, text in _run_all(commands):
        assert SECRET not in text, f"password leaked by {args}:\n{text}"
        assert code in (1, 2), (args, code, text)
        assert "Traceback" not in text, (args, text)
        assert _clear_failure(text), (args, text)


def test_password_not_in_output_or_logs_of_any_subcommand(tmp_path, cli, caplog):
    """In process, every subcommand, text and JSON: neither stdout, stderr nor log records carry the password."""
    caplog.set_level("DEBUG")
    models = write_models(tmp_path, T_ID + 'Column("a", Integer))\n')
    url = f"postgresql+psycopg://app_user:{SECRET}@db.example.invalid/app?sslmode=require"
    for sub in (["status"], ["diff", "--sql"], ["migrate"], ["migrate", "--dry-run", "--allow-destructive"],
                ["rollback", "--yes"], ["rollback", "--dry-run"], ["backups"], ["history"], ["health"]):
        for json_flag in ([], ["--json"]):
            code, out, err = cli("--database-url", url, "--models", models, "--backup-dir", str(tmp_path / "b"),
                                 *json_flag, "-v", *sub)
            assert SECRET not in out + err + caplog.text, f"password leaked by {sub}"
            if sub == ["backups"]:  # only lists the backup folder: no connection needed
                assert code == 0, (out, err)
                continue
            assert code in (1, 2), (sub, out, err)
            assert _clear_failure(out + err), (sub, out, err)


@pytest.mark.parametrize("url", [f"postgresql:/app_user:{SECRET}@db.example.invalid/app",
                                 f"app_user:{SECRET}@db.example.invalid/app"])
def test_password_in_a_malformed_url_is_not_printed(tmp_path, url, cli):
    """Regression: mask_url fell back to the raw text for a URL without '://', printing the password."""
    code, out, err = cli("--database-url", url, "--models", write_models(tmp_path, ""), "status")
    assert code == 2 and "invalid database URL" in err
    assert SECRET not in out + err


# ---------------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------------


def test_bad_option_values_are_usage_errors(tmp_path, cli):
    db, _ = _make_db(tmp_path, 'Column("a", Integer)')
    models = write_models(tmp_path, T_ID + 'Column("a", Integer), Column("b", Integer))\n')
    before = file_sha256(db)
    code, _, err = cli(*_args(db, models, tmp_path, "migrate", "--timeout-ms", "abc"))
    assert code == 2 and "argument --timeout-ms: expected a whole number, got 'abc'" in err
    code, _, err = cli(*_args(db, models, tmp_path, "rollback", "--backup-id", "../../etc/passwd"))
    assert code == 2 and "invalid backup id '../../etc/passwd'" in err
    code, _, err = cli(*_args(db, models, tmp_path, "no-such-command"))
    assert code == 2 and "invalid choice" in err
    with pytest.raises(ValidationError, match="greater than 0"):
        MigrationSettings(database_url=f"sqlite:///{db}", models=models, max_execution_time_ms=0)
    assert file_sha256(db) == before


@pytest.mark.parametrize("value", ["0", "-5"])
def test_non_positive_timeout_is_a_usage_error(tmp_path, cli, value):
    """Regression: --timeout-ms 0/-5 was not validated like max_execution_time_ms (gt=0): the run took a
    backup, timed out at once, wrote a 'failed' history row and exited 1."""
    db, _ = _make_db(tmp_path, 'Column("a", Integer)')
    models = write_models(tmp_path, T_ID + 'Column("a", Integer), Column("b", Integer))\n')
    before = file_sha256(db)
    code, _, err = cli(*_args(db, models, tmp_path, "migrate", f"--timeout-ms={value}"))
    assert code == 2, (code, err)
    assert file_sha256(db) == before
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir())
    with pytest.raises((ConfigurationError, ValidationError, ValueError)):
        system_for(db, models, tmp_path / "backups").execute_auto_migration(timeout_ms=int(value))
    assert file_sha256(db) == before
