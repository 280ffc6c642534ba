"""SQLite specifics on real files: the 12-step rebuild (indexes, triggers, views and sequences survive it),
SQLite's type affinity, unnamed CHECKs, rename hints, mid-plan rollback and rollback to a backup. The change
kinds every engine shares are in test_change_matrix.py."""

from __future__ import annotations

import pytest

from matrix import PARENT_CHILD, ROWS, USERS_NO_BIO, USERS_V1, assert_refused, seed, users, with_cols
from migration_core.errors import ConfigurationError, MigrationError, SafetyRefusal


def test_not_null_column_without_default_on_empty_table_is_applied(project):
    project.migrate(USERS_V1)
    project.migrate(with_cols('Column("code", String(5), nullable=False)'))
    assert ("code", 1) in [(r[1], r[3]) for r in project.sql("PRAGMA table_info(users)")]


def test_drop_indexed_column_rebuilds(project):
    body1 = with_cols('Index("ix_users_bio", "bio")')
    project.migrate(body1)
    project.sql("INSERT INTO users VALUES (1, 'ann', 30, 'a'), (2, 'bob', NULL, 'b')")
    body2 = USERS_NO_BIO
    preview = project.system(body2, allow_destructive=True).preview_diff()
    assert {c.kind for c in preview.changes} == {"drop_column", "drop_index"}
    project.migrate(body2, allow_destructive=True)
    assert users(project, "id, name, age") == [(1, "ann", 30), (2, "bob", None)]


def test_type_change_refused_when_values_do_not_convert(project):
    project.migrate(USERS_V1.replace('Column("age", Integer)', 'Column("age", String(10))'))
    project.sql("INSERT INTO users VALUES (1, 'ann', 'thirty', 'a'), (2, 'bob', '012', 'b'), (3, 'cy', '7', 'c')")
    message = assert_refused(project, USERS_V1)  # '012' would not read back as it was written
    assert "2 values in users.age do not convert to INTEGER" in message


def test_unnamed_check_compared_by_expression(project):
    body = with_cols('CheckConstraint("age > 0")')
    project.migrate(body)
    assert project.system(body.replace('"age > 0"', '"(age>0)"')).check_migration_status().migration_needed is False
    changed = project.system(body.replace('"age > 0"', '"age > 1"')).check_migration_status()
    assert sorted(c.kind for c in changed.changes) == ["add_check_constraint", "drop_check_constraint"]


def test_rename_column_hint_keeps_data_index_and_view(project):
    body = with_cols('Index("ix_users_age", "age")')
    seed(project, body=body)
    project.sql("CREATE VIEW adults AS SELECT name FROM users WHERE age >= 18")
    renamed = body.replace('"age"', '"years"')
    status = project.system(renamed).check_migration_status(renames=["users.age:years"])
    assert [c.kind for c in status.changes] == ["rename_column"]
    project.migrate(renamed, renames=["users.age:years"])
    assert users(project, "id, name, years, bio") == ROWS
    assert project.sql("SELECT name FROM adults ORDER BY name") == [("ann",), ("cy",)]


def test_renaming_a_referenced_column_does_not_rebuild_children(project):
    project.migrate(PARENT_CHILD.format(fk=', ForeignKey("parents.id")'))
    project.sql("INSERT INTO parents VALUES (1, 'p')")
    project.sql("INSERT INTO children VALUES (1, 1, 'c')")
    renamed = PARENT_CHILD.format(fk=', ForeignKey("parents.pid")').replace(
        'Table("parents", metadata, Column("id"', 'Table("parents", metadata, Column("pid"')
    preview = project.system(renamed).preview_diff(renames=["parents.id:pid"])
    assert [c.kind for c in preview.changes] == ["rename_column"]
    assert not any("_migration_new_" in s for s in preview.sql)
    project.migrate(renamed, renames=["parents.id:pid"])
    assert project.sql("SELECT * FROM children") == [(1, 1, "c")]
    assert project.sql("PRAGMA foreign_key_list(children)")[0][4] == "pid"


def test_invalid_rename_hints(project):
    project.migrate(USERS_V1)
    with pytest.raises(ConfigurationError, match="invalid rename hint"):
        project.system(USERS_V1).check_migration_status(renames=["nonsense"])
    with pytest.raises(ConfigurationError, match="does not apply"):
        project.system(USERS_V1).check_migration_status(renames=["users:people"])


def test_triggers_views_indexes_survive_rebuild(project):
    body = with_cols('Index("ix_users_name", "name")') + """
Table("audit", metadata, Column("id", Integer, primary_key=True), Column("user_id", Integer), Column("what", String(20)))
"""
    seed(project, body=body)
    project.script("""
        CREATE TRIGGER users_audit AFTER UPDATE ON users BEGIN INSERT INTO audit (user_id, what) VALUES (new.id, 'update'); END;
        CREATE TRIGGER audit_touch AFTER INSERT ON audit BEGIN SELECT count(*) FROM users; END;
        CREATE VIEW user_names AS SELECT id, name FROM users;
        CREATE VIEW named_audit AS SELECT a.what, u.name FROM audit a JOIN user_names u ON u.id = a.user_id;
    """)
    before = project.schema_sql()
    project.migrate(body.replace("String(50)", "String(60)"))  # forces a rebuild of users
    after = project.schema_sql()
    for name in ("users_audit", "audit_touch", "user_names", "named_audit", "ix_users_name"):
        assert after[name] == before[name], name
    project.sql("UPDATE users SET bio = 'changed' WHERE id = 1")
    assert project.sql("SELECT what, name FROM named_audit") == [("update", "ann")]


def test_view_depending_on_dropped_column_fails_the_plan_cleanly(project):
    seed(project)
    project.sql("CREATE VIEW bios AS SELECT bio FROM users")
    before = project.file_bytes()
    body = USERS_NO_BIO
    status = project.system(body, allow_destructive=True).check_migration_status()
    assert status.safe_to_apply is False and any("bios" in w for w in status.warnings)
    with pytest.raises(SafetyRefusal, match="bios"):
        project.system(body).execute_auto_migration(allow_destructive=True)
    assert project.file_bytes() == before


def test_autoincrement_sequence_survives_rebuild(project):
    body = """
Table("events", metadata, Column("id", Integer, primary_key=True), Column("what", String(10)), sqlite_autoincrement=True)
"""
    project.migrate(body)
    project.sql("INSERT INTO events (what) VALUES ('a'), ('b'), ('c')")
    project.sql("DELETE FROM events WHERE id = 3")
    project.migrate(body.replace("String(10)", "String(20)"))
    project.sql("INSERT INTO events (what) VALUES ('d')")
    assert project.sql("SELECT id, what FROM events ORDER BY id") == [(1, "a"), (2, "b"), (4, "d")]


def test_status_does_not_create_missing_database(project):
    status = project.system(USERS_V1).check_migration_status()
    assert status.migration_needed and not project.db.exists()
    assert "does not exist yet" in status.warnings[0]


def test_failed_statement_rolls_back_everything(project):
    """A unique index over an expression cannot be probed in advance: it fails mid-plan and
    the statements before it (a rebuild, an added column) are rolled back with it."""
    seed(project, rows=[(1, "Ann", 30, "a"), (2, "ann", 31, "b")])
    before_schema, before_rows = project.schema_sql(), users(project)
    body = USERS_V1.replace("String(50)", "String(80)").replace(
        'Column("bio", Text))', 'Column("bio", Text), Column("email", String(50)), Index("ix_users_lower_name", func.lower(text("name")), unique=True))')
    system = project.system(body)
    with pytest.raises(MigrationError, match="UNIQUE constraint failed") as exc:
        system.execute_auto_migration()
    assert "rolled back, nothing changed" in str(exc.value)
    assert project.schema_sql() == before_schema and users(project) == before_rows
    history = system.get_migration_history()
    assert history[0].status == "failed" and "UNIQUE" in history[0].error


def test_existing_orphans_do_not_block_unrelated_rebuilds_but_new_ones_fail(project):
    body = PARENT_CHILD.format(fk=', ForeignKey("parents.id")')
    project.migrate(body)
    project.sql("INSERT INTO parents VALUES (1, 'p')")
    project.sql("INSERT INTO children VALUES (1, 99, 'old orphan')")  # foreign_keys is off by default
    project.migrate(body.replace('Column("note", String(20))', 'Column("note", String(30))'))
    assert project.sql("SELECT * FROM children") == [(1, 99, "old orphan")]


def test_rollback_restores_previous_schema_and_data(project):
    seed(project)
    body = with_cols('Column("email", String(100))')
    system = project.system(body)
    r = system.execute_auto_migration()
    project.sql("UPDATE users SET email = 'x@y' WHERE id = 1")
    rb = system.rollback_last_migration()
    assert rb.success and rb.backup_id == r.backup_id and rb.migration_id == r.migration_id and rb.safety_backup_id
    assert users(project) == ROWS
    assert "email" not in [c[1] for c in project.sql("PRAGMA table_info(users)")]
    history = system.get_migration_history()
    assert [h.kind for h in history[:2]] == ["rollback", "migrate"] or {h.kind for h in history[:2]} == {"rollback", "migrate"}
    undone = next(h for h in history if h.id == r.migration_id)
    assert undone.status == "rolled_back"
    with pytest.raises(MigrationError, match="nothing to roll back"):
        # the first migration (creating users) had a backup of the empty file: roll that back, then nothing is left
        system.rollback_last_migration()
        system.rollback_last_migration()


def test_rollback_with_nothing_to_roll_back(project):
    system = project.system(USERS_V1)
    with pytest.raises(MigrationError, match="nothing to roll back"):
        system.rollback_last_migration()


def test_rollback_target_names_the_backup_without_changing_anything(project):
    system = project.system(USERS_V1)
    with pytest.raises(MigrationError, match="nothing to roll back"):
        system.rollback_target()
    r = system.execute_auto_migration()
    before = project.file_bytes()
    info, entry = system.rollback_target()
    assert info.id == r.backup_id and entry.id == r.migration_id
    assert project.file_bytes() == before
