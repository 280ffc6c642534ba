"""The default target schema must build everywhere and name every constraint stably."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import ForeignKeyConstraint, PrimaryKeyConstraint, create_engine, create_mock_engine, inspect
from sqlalchemy.orm import configure_mappers

from migration_core.examples.orchestrator import Base, metadata

EXPECTED_TABLES = {
    "workspaces",
    "task_breakdowns",
    "subtasks",
    "file_operations",
    "architectural_decisions",
    "task_archives",
    "workspace_tasks",
    "workspace_artifacts",
    "specialists",
    "task_events",
    "review_comments",
    "sessions",
}


def test_metadata_is_the_base_metadata_and_has_the_tables():
    assert metadata is Base.metadata
    assert EXPECTED_TABLES <= set(metadata.tables)
    assert len(metadata.tables) >= 12
    configure_mappers()


def test_create_all_on_sqlite_file(tmp_path):
    db = tmp_path / "orchestrator.db"
    engine = create_engine(f"sqlite:///{db}")
    metadata.create_all(engine)
    insp = inspect(engine)
    assert EXPECTED_TABLES <= set(insp.get_table_names())
    fks = {fk["name"]: fk for fk in insp.get_foreign_keys("subtasks")}
    assert fks["fk_subtasks_parent_task_id_task_breakdowns"]["options"].get("ondelete") == "CASCADE"
    engine.dispose()

    # Server defaults and the cascade work through a plain driver, not only through the ORM.
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("INSERT INTO workspaces (id, name, root_path) VALUES ('w1', 'demo', '/srv/demo')")
    conn.execute("INSERT INTO task_breakdowns (parent_task_id, workspace_id, description) VALUES ('t1', 'w1', 'x')")
    conn.execute(
        "INSERT INTO subtasks (task_id, parent_task_id, title, description, specialist_type) "
        "VALUES ('s1', 't1', 'title', 'd', 'coder')"
    )
    row = conn.execute(
        "SELECT status, priority, auto_maintenance_enabled, prerequisite_satisfaction_required, created_at "
        "FROM subtasks"
    ).fetchone()
    assert row[:4] == ("pending", 5, 1, 0)
    assert row[4] is not None
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("UPDATE subtasks SET status = 'bogus'")
    conn.execute("DELETE FROM task_breakdowns")
    assert conn.execute("SELECT count(*) FROM subtasks").fetchone() == (0,)
    conn.close()


def test_every_constraint_and_index_has_a_short_name():
    kinds = {"fk": 0, "uq": 0, "ck": 0, "ix": 0}
    for table in metadata.tables.values():
        named = [(c, c.name) for c in table.constraints] + [(i, i.name) for i in table.indexes]
        for obj, name in named:
            assert name, f"unnamed {type(obj).__name__} on {table.name}"
            assert len(name) <= 63, f"{name} is longer than PostgreSQL's 63-character limit"
            if isinstance(obj, PrimaryKeyConstraint):
                assert name == f"pk_{table.name}"
            elif isinstance(obj, ForeignKeyConstraint):
                kinds["fk"] += 1
            else:
                kinds[name[:2]] = kinds.get(name[:2], 0) + 1
    assert all(kinds[k] > 0 for k in ("fk", "uq", "ck", "ix")), kinds


def test_ddl_compiles_for_postgresql_and_mysql():
    # MySQL's compiler refuses VARCHAR without a length, so this catches a missing String(n).
    for url in ("postgresql+psycopg://", "mysql+pymysql://"):
        statements: list[str] = []
        engine = create_mock_engine(url, lambda sql, *a, **k: statements.append(str(sql.compile(dialect=engine.dialect))))
        metadata.create_all(engine, checkfirst=False)
        assert sum(s.lstrip().startswith("CREATE TABLE") for s in statements) == len(metadata.tables)
