"""Every change kind on real SQLite files, with the data checked value by value."""

from __future__ import annotations

import pytest

from migration_core.errors import ConfigurationError, MigrationError, SafetyRefusal

USERS_V1 = """
Table("users", metadata,
      Column("id", Integer, primary_key=True),
      Column("name", String(50), nullable=False),
      Column("age", Integer),
      Column("bio", Text))
"""
ROWS = [(1, "ann", 30, "a"), (2, "bob", None, "b"), (3, "cy", 41, None)]


def seed(project, body=USERS_V1, rows=ROWS):
    project.migrate(body)
    project.sql(f"INSERT INTO users VALUES ({', '.join('?' * len(rows[0]))})" if False else "SELECT 1")
    conn_rows = ", ".join("(" + ", ".join("?" * len(r)) + ")" for r in rows)
    project.sql(f"INSERT INTO users VALUES {conn_rows}", [v for r in rows for v in r])


def users(project, cols="id, name, age, bio"):
    return project.sql(f"SELECT {cols} FROM users ORDER BY id")


def test_create_tables_then_up_to_date(project):
    r = project.migrate(USERS_V1)
    assert r.success and r.migration_needed and r.operations_executed == 1
    status = project.system(USERS_V1).check_migration_status()
    assert status.migration_needed is False and status.changes == [] and status.complexity == "NONE"


def test_add_nullable_column_uses_alter_and_keeps_rows(project):
    seed(project)
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Column("email", String(100)))')
    preview = project.system(body).preview_diff()
    assert [c.kind for c in preview.changes] == ["add_column"]
    assert any(s.startswith('ALTER TABLE "users" ADD COLUMN email VARCHAR(100)') for s in preview.sql)
    assert preview.complexity == "SIMPLE"
    project.migrate(body)
    assert users(project, "id, name, age, bio, email") == [r + (None,) for r in ROWS]


def test_add_column_with_default_fills_existing_rows(project):
    seed(project)
    project.migrate(USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Column("active", Boolean, nullable=False, server_default=text("1")))'))
    assert [r[0] for r in project.sql("SELECT active FROM users")] == [1, 1, 1]


def test_add_column_with_current_timestamp_default_rebuilds(project):
    seed(project)
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Column("created", DateTime, server_default=text("CURRENT_TIMESTAMP")))')
    preview = project.system(body).preview_diff()
    assert any("rebuild" in s or "_migration_new_users" in s for s in preview.sql)
    project.migrate(body)
    assert users(project) == ROWS
    assert all(r[0] is not None for r in project.sql("SELECT created FROM users"))


def test_not_null_column_without_default_refused_on_nonempty_table(project):
    seed(project)
    before = project.file_bytes()
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Column("code", String(5), nullable=False))')
    with pytest.raises(SafetyRefusal) as exc:
        project.system(body).execute_auto_migration()
    assert "users.code" in str(exc.value) and "3 rows" in str(exc.value)
    assert project.file_bytes() == before


def test_not_null_column_without_default_on_empty_table_is_applied(project):
    project.migrate(USERS_V1)
    project.migrate(USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Column("code", String(5), nullable=False))'))
    assert ("code", 1) in [(r[1], r[3]) for r in project.sql("PRAGMA table_info(users)")]


def test_drop_column_refused_without_permission_then_applied(project):
    seed(project)
    body = USERS_V1.replace('      Column("bio", Text))', '      )').replace('Column("age", Integer),', 'Column("age", Integer))').replace("\n      )", "")
    before = project.file_bytes()
    with pytest.raises(SafetyRefusal) as exc:
        project.system(body).execute_auto_migration()
    assert "drop column users.bio" in str(exc.value) and "destructive" in str(exc.value)
    assert project.file_bytes() == before
    r = project.migrate(body, allow_destructive=True)
    assert r.backup_id is not None
    assert users(project, "id, name, age") == [x[:3] for x in ROWS]


def test_drop_indexed_column_rebuilds(project):
    body1 = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Index("ix_users_bio", "bio"))')
    project.migrate(body1)
    project.sql("INSERT INTO users VALUES (1, 'ann', 30, 'a'), (2, 'bob', NULL, 'b')")
    body2 = USERS_V1.replace(',\n      Column("bio", Text))', ')')
    preview = project.system(body2, allow_destructive=True).preview_diff()
    assert {c.kind for c in preview.changes} == {"drop_column", "drop_index"}
    project.migrate(body2, allow_destructive=True)
    assert users(project, "id, name, age") == [(1, "ann", 30), (2, "bob", None)]


def test_widen_and_narrow_string(project):
    seed(project)
    project.migrate(USERS_V1.replace("String(50)", "String(200)"))
    assert users(project) == ROWS
    project.migrate(USERS_V1.replace("String(50)", "String(3)"))  # every name fits in 3 characters
    assert users(project) == ROWS
    before = project.file_bytes()
    with pytest.raises(SafetyRefusal) as exc:
        project.system(USERS_V1.replace("String(50)", "String(2)")).execute_auto_migration()
    assert "2 values in users.name are longer than 2 characters" in str(exc.value)
    assert project.file_bytes() == before


def test_type_change_converts_values(project):
    project.migrate(USERS_V1.replace('Column("age", Integer)', 'Column("age", String(10))'))
    project.sql("INSERT INTO users VALUES (1, 'ann', '30', 'a'), (2, 'bob', NULL, 'b')")
    assert project.sql("SELECT typeof(age) FROM users ORDER BY id") == [("text",), ("null",)]
    project.migrate(USERS_V1)
    assert project.sql("SELECT age, typeof(age) FROM users ORDER BY id") == [(30, "integer"), (None, "null")]


def test_type_change_refused_when_values_do_not_convert(project):
    project.migrate(USERS_V1.replace('Column("age", Integer)', 'Column("age", String(10))'))
    project.sql("INSERT INTO users VALUES (1, 'ann', 'thirty', 'a'), (2, 'bob', '012', 'b'), (3, 'cy', '7', 'c')")
    before = project.file_bytes()
    with pytest.raises(SafetyRefusal) as exc:
        project.system(USERS_V1).execute_auto_migration()
    assert "2 values in users.age do not convert to INTEGER" in str(exc.value)
    assert project.file_bytes() == before


def test_set_not_null_checks_nulls(project):
    seed(project)
    body = USERS_V1.replace('Column("age", Integer)', 'Column("age", Integer, nullable=False)')
    before = project.file_bytes()
    with pytest.raises(SafetyRefusal) as exc:
        project.system(body).execute_auto_migration()
    assert "1 row hold NULL in users.age" in str(exc.value) or "1 row holds NULL" in str(exc.value) or "hold NULL in users.age" in str(exc.value)
    assert project.file_bytes() == before
    project.sql("UPDATE users SET age = 0 WHERE age IS NULL")
    project.migrate(body)
    assert project.sql("SELECT \"notnull\" FROM pragma_table_info('users') WHERE name = 'age'") == [(1,)]
    project.migrate(USERS_V1)  # and back to nullable
    assert project.sql("SELECT \"notnull\" FROM pragma_table_info('users') WHERE name = 'age'") == [(0,)]


def test_default_change(project):
    seed(project)
    project.migrate(USERS_V1.replace('Column("bio", Text)', 'Column("bio", Text, server_default="n/a")'))
    project.sql("INSERT INTO users (id, name) VALUES (9, 'zed')")
    assert project.sql("SELECT bio FROM users WHERE id = 9") == [("n/a",)]
    assert users(project)[:3] == ROWS


def test_unique_constraint_checked_against_duplicates(project):
    seed(project, rows=[(1, "ann", 30, "a"), (2, "ann", 31, "b"), (3, "cy", None, None)])
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), UniqueConstraint("name", name="uq_users_name"))')
    before = project.file_bytes()
    with pytest.raises(SafetyRefusal) as exc:
        project.system(body).execute_auto_migration()
    assert "1 value of (name) appear more than once in users" in str(exc.value)
    assert project.file_bytes() == before
    project.sql("UPDATE users SET name = 'ann2' WHERE id = 2")
    project.migrate(body)
    with pytest.raises(Exception):
        project.sql("INSERT INTO users (id, name) VALUES (10, 'ann')")
    project.migrate(USERS_V1)  # drop the constraint again
    project.sql("INSERT INTO users (id, name) VALUES (10, 'ann')")


def test_check_constraint_added_and_checked(project):
    seed(project, rows=[(1, "ann", 30, "a"), (2, "bob", -1, "b")])
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), CheckConstraint("age >= 0", name="ck_users_age"))')
    with pytest.raises(SafetyRefusal) as exc:
        project.system(body).execute_auto_migration()
    assert "1 row in users violate CHECK" in str(exc.value)
    project.sql("UPDATE users SET age = 1 WHERE id = 2")
    project.migrate(body)
    assert users(project, "id, age") == [(1, 30), (2, 1)]
    # Same expression, different spelling: no false difference.
    project.script("")
    assert project.system(body.replace('"age >= 0"', '"age>=0"')).check_migration_status().migration_needed is False


def test_unnamed_check_compared_by_expression(project):
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), CheckConstraint("age > 0"))')
    project.migrate(body)
    assert project.system(body.replace('"age > 0"', '"(age>0)"')).check_migration_status().migration_needed is False
    changed = project.system(body.replace('"age > 0"', '"age > 1"')).check_migration_status()
    assert sorted(c.kind for c in changed.changes) == ["add_check_constraint", "drop_check_constraint"]


def test_indexes_added_dropped_and_unique_index_checked(project):
    seed(project, rows=[(1, "ann", 30, "a"), (2, "bob", 30, "b")])
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Index("ix_users_age", "age"), Index("ix_users_name_age", "name", "age", unique=True))')
    preview = project.system(body).preview_diff()
    assert sorted(c.kind for c in preview.changes) == ["add_index", "add_index"]
    assert not any("_migration_new_" in s for s in preview.sql)  # plain CREATE INDEX, no rebuild
    project.migrate(body)
    names = {r[0] for r in project.sql("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL")}
    assert {"ix_users_age", "ix_users_name_age"} <= names
    unique_age = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Index("ix_users_age", "age", unique=True))')
    with pytest.raises(SafetyRefusal):
        project.system(unique_age).execute_auto_migration()
    project.migrate(USERS_V1)
    assert not {"ix_users_age", "ix_users_name_age"} & {r[0] for r in project.sql("SELECT name FROM sqlite_schema WHERE type = 'index'")}


PARENT_CHILD = """
Table("parents", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))
Table("children", metadata,
      Column("id", Integer, primary_key=True),
      Column("parent_id", Integer{fk}),
      Column("note", String(20)))
"""


def test_foreign_key_added_checked_and_cascade_not_fired_by_rebuild(project):
    project.migrate(PARENT_CHILD.format(fk=""))
    project.script("PRAGMA foreign_keys=ON; INSERT INTO parents VALUES (1, 'p1'), (2, 'p2');"
                   "INSERT INTO children VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 99, 'orphan');")
    with_fk = PARENT_CHILD.format(fk=', ForeignKey("parents.id", ondelete="CASCADE")')
    with pytest.raises(SafetyRefusal) as exc:
        project.system(with_fk).execute_auto_migration()
    assert "1 row in children reference missing parents rows" in str(exc.value)
    project.sql("DELETE FROM children WHERE id = 3")
    project.migrate(with_fk)
    # Rebuild the parent table (type change): its DROP must not cascade into children.
    project.migrate(with_fk.replace('Column("name", String(20))', 'Column("name", String(40))'))
    assert project.sql("SELECT id, parent_id, note FROM children ORDER BY id") == [(1, 1, "a"), (2, 2, "b")]
    assert project.sql("PRAGMA foreign_key_list(children)")[0][2] == "parents"
    project.migrate(PARENT_CHILD.format(fk=""))  # drop the FK again
    assert project.sql("PRAGMA foreign_key_list(children)") == []


def test_drop_table_refused_then_applied_and_fk_check_guards_references(project):
    project.migrate(PARENT_CHILD.format(fk=', ForeignKey("parents.id")'))
    project.sql("INSERT INTO parents VALUES (1, 'p')")
    project.sql("INSERT INTO children VALUES (1, 1, 'c')")
    only_children = 'Table("children", metadata, Column("id", Integer, primary_key=True), Column("parent_id", Integer), Column("note", String(20)))'
    with pytest.raises(SafetyRefusal) as exc:
        project.system(only_children).execute_auto_migration()
    assert "drop table parents" in str(exc.value) and "1 row" in str(exc.value)
    project.migrate(only_children, allow_destructive=True)
    assert project.sql("SELECT * FROM children") == [(1, 1, "c")]
    assert project.sql("SELECT name FROM sqlite_schema WHERE name = 'parents'") == []


def test_primary_key_change(project):
    body = """
Table("pairs", metadata, Column("a", Integer, nullable=False), Column("b", Integer, nullable=False), Column("v", String(5)),
      PrimaryKeyConstraint("a", name="pk_pairs"))
"""
    project.migrate(body)
    project.sql("INSERT INTO pairs VALUES (1, 1, 'x'), (2, 1, 'y')")
    project.migrate(body.replace('PrimaryKeyConstraint("a"', 'PrimaryKeyConstraint("a", "b"'))
    assert project.sql("SELECT * FROM pairs ORDER BY a") == [(1, 1, "x"), (2, 1, "y")]
    with pytest.raises(SafetyRefusal) as exc:
        project.system(body.replace('PrimaryKeyConstraint("a"', 'PrimaryKeyConstraint("b"')).execute_auto_migration()
    assert "duplicate" in str(exc.value)


def test_rename_table_hint_keeps_data_and_references(project):
    project.migrate(PARENT_CHILD.format(fk=', ForeignKey("parents.id")'))
    project.sql("INSERT INTO parents VALUES (1, 'p')")
    project.sql("INSERT INTO children VALUES (1, 1, 'c')")
    renamed = PARENT_CHILD.format(fk=', ForeignKey("families.id")').replace('Table("parents"', 'Table("families"')
    # Without a hint this is a drop + add: destructive, refused.
    with pytest.raises(SafetyRefusal):
        project.system(renamed).execute_auto_migration()
    status = project.system(renamed).check_migration_status(renames=["parents:families"])
    assert [c.kind for c in status.changes] == ["rename_table"] and status.changes[0].risk == "safe"
    project.migrate(renamed, renames=["parents:families"])
    assert project.sql("SELECT * FROM families") == [(1, "p")]
    assert project.sql("PRAGMA foreign_key_list(children)")[0][2] == "families"
    # The hint stays valid once applied (startup migrations repeat it).
    assert project.system(renamed, renames=["parents:families"]).check_migration_status().migration_needed is False


def test_rename_column_hint_keeps_data_index_and_view(project):
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Index("ix_users_age", "age"))')
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
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Index("ix_users_name", "name"))') + """
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
    body = USERS_V1.replace(',\n      Column("bio", Text))', ')')
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


def test_dry_run_changes_nothing_and_returns_plan(project):
    seed(project)
    before = project.file_bytes()
    body = USERS_V1.replace("String(50)", "String(80)")
    r = project.system(body).execute_auto_migration(dry_run=True)
    assert r.dry_run and r.operations_executed == 0 and r.migration_needed
    assert any(s.startswith("CREATE TABLE") for s in r.sql)
    assert project.file_bytes() == before


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
    body = "from sqlalchemy import func\n" + body
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
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Column("email", String(100)))')
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
