"""The change-kind matrix of test_migrations_sqlite.py on real PostgreSQL and MariaDB servers,
with the data checked value by value, plus refusals, mid-plan failures, the lock, backups and
a 200-table false-difference check."""

from __future__ import annotations

import threading

import pytest

from migration_core.errors import LockTimeout, MigrationError, SafetyRefusal
from servers import ServerProject, server  # noqa: F401 - fixture

USERS_V1 = """
Table("users", metadata,
      Column("id", Integer, primary_key=True),
      Column("name", String(50), nullable=False),
      Column("age", Integer),
      Column("bio", Text))
"""
ROWS = [(1, "ann", 30, "a"), (2, "bob", None, "b"), (3, "cy", 41, None)]


def with_cols(extra: str, body: str = USERS_V1) -> str:
    return body.replace('Column("bio", Text))', f'Column("bio", Text), {extra})')


def seed(p: ServerProject, body: str = USERS_V1, rows=ROWS) -> None:
    p.migrate(body)
    values = ", ".join("(" + ", ".join(["%s"] * len(r)) + ")" for r in rows)
    p.sql(f"INSERT INTO users VALUES {values}", tuple(v for r in rows for v in r))


def users(p: ServerProject, cols: str = "id, name, age, bio") -> list[tuple]:
    return p.sql(f"SELECT {cols} FROM users ORDER BY id")


def test_create_tables_then_up_to_date(server):
    r = server.migrate(USERS_V1)
    assert r.success and r.migration_needed and r.operations_executed >= 1
    status = server.system(USERS_V1).check_migration_status()
    assert status.migration_needed is False and status.complexity == "NONE"


def test_add_nullable_column_keeps_rows(server):
    seed(server)
    server.migrate(with_cols('Column("email", String(100))'))
    assert users(server, "id, name, age, bio, email") == [r + (None,) for r in ROWS]


def test_add_column_with_default_fills_existing_rows(server):
    seed(server)
    server.migrate(with_cols('Column("active", Boolean, nullable=False, server_default=text("true"))'))
    assert [bool(r[0]) for r in server.sql("SELECT active FROM users ORDER BY id")] == [True, True, True]
    assert users(server) == ROWS


def test_add_timestamp_default_column(server):
    seed(server)
    server.migrate(with_cols('Column("created", DateTime, server_default=func.now())'))
    assert all(r[0] is not None for r in server.sql("SELECT created FROM users"))
    # CURRENT_TIMESTAMP and now() are one default: no false difference.
    same = with_cols('Column("created", DateTime, server_default=text("CURRENT_TIMESTAMP"))')
    assert server.system(same).check_migration_status().migration_needed is False


def test_not_null_column_without_default_refused_on_nonempty_table(server):
    seed(server)
    before = server.state()
    with pytest.raises(SafetyRefusal) as exc:
        server.system(with_cols('Column("code", String(5), nullable=False)')).execute_auto_migration()
    assert "users.code" in str(exc.value) and "3 rows" in str(exc.value)
    assert server.state() == before


def test_drop_column_refused_without_permission_then_applied(server):
    seed(server)
    body = USERS_V1.replace(',\n      Column("bio", Text))', ')')
    before = server.state()
    with pytest.raises(SafetyRefusal, match="drop column users.bio"):
        server.system(body).execute_auto_migration()
    assert server.state() == before
    r = server.migrate(body, allow_destructive=True)
    assert r.backup_id is not None
    assert users(server, "id, name, age") == [x[:3] for x in ROWS]


def test_widen_and_narrow_string(server):
    seed(server)
    server.migrate(USERS_V1.replace("String(50)", "String(200)"))
    assert users(server) == ROWS
    server.migrate(USERS_V1.replace("String(50)", "String(3)"))
    assert users(server) == ROWS
    before = server.state()
    with pytest.raises(SafetyRefusal, match="2 values in users.name are longer than 2 characters"):
        server.system(USERS_V1.replace("String(50)", "String(2)")).execute_auto_migration()
    assert server.state() == before


def test_type_change_converts_values_or_is_refused(server):
    server.migrate(USERS_V1.replace('Column("age", Integer)', 'Column("age", String(10))'))
    server.sql("INSERT INTO users VALUES (1, 'ann', '30', 'a'), (2, 'bob', NULL, 'b')")
    server.migrate(USERS_V1)
    assert server.sql("SELECT id, age FROM users ORDER BY id") == [(1, 30), (2, None)]
    server.migrate(USERS_V1.replace('Column("age", Integer)', 'Column("age", String(10))'))
    server.sql("INSERT INTO users VALUES (3, 'cy', 'thirty', 'c')")
    before = server.state()
    with pytest.raises(SafetyRefusal, match="1 value in users.age do not convert to INT"):
        server.system(USERS_V1).execute_auto_migration()
    assert server.state() == before


def test_set_not_null_checks_nulls_and_back(server):
    seed(server)
    body = USERS_V1.replace('Column("age", Integer)', 'Column("age", Integer, nullable=False)')
    before = server.state()
    with pytest.raises(SafetyRefusal, match="1 row hold NULL in users.age"):
        server.system(body).execute_auto_migration()
    assert server.state() == before
    server.sql("UPDATE users SET age = 0 WHERE age IS NULL")
    server.migrate(body)
    with pytest.raises(Exception):
        server.sql("INSERT INTO users (id, name) VALUES (9, 'z')")
    server.migrate(USERS_V1)
    server.sql("INSERT INTO users (id, name) VALUES (9, 'z')")
    assert users(server)[:3] == [(1, "ann", 30, "a"), (2, "bob", 0, "b"), (3, "cy", 41, None)]


def test_default_change(server):
    seed(server)
    server.migrate(USERS_V1.replace('Column("age", Integer)', 'Column("age", Integer, server_default="7")'))
    server.sql("INSERT INTO users (id, name) VALUES (9, 'zed')")
    assert server.sql("SELECT age FROM users WHERE id = 9") == [(7,)]
    assert users(server)[:3] == ROWS


def test_unique_constraint_checked_against_duplicates(server):
    seed(server, rows=[(1, "ann", 30, "a"), (2, "ann", 31, "b"), (3, "cy", None, None)])
    body = with_cols('UniqueConstraint("name", name="uq_users_name")')
    before = server.state()
    with pytest.raises(SafetyRefusal, match="1 value of \\(name\\) appear more than once in users"):
        server.system(body).execute_auto_migration()
    assert server.state() == before
    server.sql("UPDATE users SET name = 'ann2' WHERE id = 2")
    server.migrate(body)
    with pytest.raises(Exception):
        server.sql("INSERT INTO users (id, name) VALUES (10, 'ann')")
    server.migrate(USERS_V1)
    server.sql("INSERT INTO users (id, name) VALUES (10, 'ann')")


def test_check_constraint_added_and_checked(server):
    seed(server, rows=[(1, "ann", 30, "a"), (2, "bob", -1, "b")])
    body = with_cols('CheckConstraint("age >= 0", name="ck_users_age")')
    with pytest.raises(SafetyRefusal, match="1 row in users violate CHECK"):
        server.system(body).execute_auto_migration()
    server.sql("UPDATE users SET age = 1 WHERE id = 2")
    server.migrate(body)
    assert users(server, "id, age") == [(1, 30), (2, 1)]
    assert server.system(body.replace('"age >= 0"', '"age>=0"')).check_migration_status().migration_needed is False
    with pytest.raises(Exception):
        server.sql("UPDATE users SET age = -5 WHERE id = 1")


def test_indexes_added_dropped_and_unique_index_checked(server):
    seed(server, rows=[(1, "ann", 30, "a"), (2, "bob", 30, "b")])
    body = with_cols('Index("ix_users_age", "age"), Index("ix_users_name_age", "name", "age", unique=True)')
    preview = server.system(body).preview_diff()
    assert sorted(c.kind for c in preview.changes) == ["add_index", "add_index"]
    server.migrate(body)
    with pytest.raises(SafetyRefusal):
        server.system(with_cols('Index("ix_users_age", "age", unique=True)')).execute_auto_migration()
    server.migrate(USERS_V1)
    assert users(server, "id, age") == [(1, 30), (2, 30)]


PARENT_CHILD = """
Table("parents", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))
Table("children", metadata,
      Column("id", Integer, primary_key=True),
      Column("parent_id", Integer{fk}),
      Column("note", String(20)))
"""


def test_foreign_key_added_checked_and_dropped(server):
    server.migrate(PARENT_CHILD.format(fk=""))
    server.sql("INSERT INTO parents VALUES (1, 'p1'), (2, 'p2')")
    server.sql("INSERT INTO children VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 99, 'orphan')")
    with_fk = PARENT_CHILD.format(fk=', ForeignKey("parents.id", ondelete="CASCADE", name="fk_children_parent")')
    before = server.state()
    with pytest.raises(SafetyRefusal, match="1 row in children reference missing parents rows"):
        server.system(with_fk).execute_auto_migration()
    assert server.state() == before
    server.sql("DELETE FROM children WHERE id = 3")
    server.migrate(with_fk)
    server.migrate(with_fk.replace('Column("name", String(20))', 'Column("name", String(40))'))
    assert server.sql("SELECT id, parent_id, note FROM children ORDER BY id") == [(1, 1, "a"), (2, 2, "b")]
    with pytest.raises(Exception):
        server.sql("INSERT INTO children VALUES (5, 42, 'x')")
    server.migrate(PARENT_CHILD.format(fk=""))
    server.sql("INSERT INTO children VALUES (5, 42, 'x')")


def test_drop_table_refused_then_applied(server):
    server.migrate(PARENT_CHILD.format(fk=', ForeignKey("parents.id")'))
    server.sql("INSERT INTO parents VALUES (1, 'p')")
    server.sql("INSERT INTO children VALUES (1, 1, 'c')")
    only_children = 'Table("children", metadata, Column("id", Integer, primary_key=True), Column("parent_id", Integer), Column("note", String(20)))'
    with pytest.raises(SafetyRefusal, match="drop table parents"):
        server.system(only_children).execute_auto_migration()
    server.migrate(only_children, allow_destructive=True)
    assert server.sql("SELECT * FROM children") == [(1, 1, "c")]
    assert server.tables() == ["children"]


def test_primary_key_change(server):
    body = """
Table("pairs", metadata, Column("a", Integer, nullable=False, autoincrement=False), Column("b", Integer, nullable=False, autoincrement=False),
      Column("v", String(5)), PrimaryKeyConstraint("a", name="pk_pairs"))
"""
    server.migrate(body)
    server.sql("INSERT INTO pairs VALUES (1, 1, 'x'), (2, 1, 'y')")
    server.migrate(body.replace('PrimaryKeyConstraint("a"', 'PrimaryKeyConstraint("a", "b"'))
    assert server.sql("SELECT * FROM pairs ORDER BY a") == [(1, 1, "x"), (2, 1, "y")]
    with pytest.raises(SafetyRefusal, match="duplicate"):
        server.system(body.replace('PrimaryKeyConstraint("a"', 'PrimaryKeyConstraint("b"')).execute_auto_migration()


def test_rename_table_and_column_hints_keep_data(server):
    server.migrate(PARENT_CHILD.format(fk=', ForeignKey("parents.id")'))
    server.sql("INSERT INTO parents VALUES (1, 'p')")
    server.sql("INSERT INTO children VALUES (1, 1, 'c')")
    renamed = PARENT_CHILD.format(fk=', ForeignKey("families.id")').replace('Table("parents"', 'Table("families"')
    with pytest.raises(SafetyRefusal):
        server.system(renamed).execute_auto_migration()
    server.migrate(renamed, renames=["parents:families"])
    assert server.sql("SELECT * FROM families") == [(1, "p")]
    renamed2 = renamed.replace('"note"', '"remark"')
    server.migrate(renamed2, renames=["parents:families", "children.note:remark"])
    assert server.sql("SELECT id, parent_id, remark FROM children") == [(1, 1, "c")]


def test_dry_run_changes_nothing(server):
    seed(server)
    before = server.state()
    r = server.system(USERS_V1.replace("String(50)", "String(80)")).execute_auto_migration(dry_run=True)
    assert r.dry_run and r.operations_executed == 0 and r.migration_needed and r.sql
    assert server.state() == before


def test_failure_mid_plan_leaves_database_as_it_began(server):
    """Text that is not a date cannot be probed for every target type in advance: the type change
    fails after other statements (a new column, a widened type) already ran. On PostgreSQL the
    transaction undoes them; on MariaDB they had committed and the automatic restore undoes them."""
    seed(server, rows=[(1, "Ann", 30, "a"), (2, "ann", 31, "b")])
    before = server.state()
    body = USERS_V1.replace("String(50)", "String(80)").replace(
        'Column("bio", Text))', 'Column("bio", DateTime), Column("email", String(50)))')
    system = server.system(body)
    with pytest.raises(MigrationError) as exc:
        system.execute_auto_migration()
    message = str(exc.value)
    assert "failed" in message and "rolled back, nothing changed" in message, message
    assert server.state() == before
    history = system.get_migration_history()
    assert history[0].status == "failed" and "statement" in history[0].error
    if server.kind == "mysql":
        assert "had committed and were undone" in message and "restored" in message
    assert system.check_migration_status().migration_needed is True  # and it can be retried once the data is fixed
    server.sql("UPDATE users SET bio = NULL")
    server.migrate(body)
    assert server.sql("SELECT id, name, age FROM users ORDER BY id") == [(1, "Ann", 30), (2, "ann", 31)]


def test_two_concurrent_migrations_one_lock_winner(server):
    seed(server)
    body = with_cols('Column("email", String(100))')
    system = server.system(body, lock_timeout_ms=300)
    outcome: list[str] = []
    with system.dialect.lock(1000).acquire("test holder"):
        t = threading.Thread(target=lambda: outcome.append(_try(system)))
        t.start()
        t.join()
    assert outcome and outcome[0].startswith("LockTimeout") and "held by" in outcome[0]
    # Two real migrations at once: exactly one applies, the other waits and then finds nothing to do or times out.
    results: list[str] = []
    systems = [server.system(body, lock_timeout_ms=20000) for _ in range(2)]
    threads = [threading.Thread(target=lambda s=s: results.append(_try(s))) for s in systems]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["applied", "up to date"], results
    assert users(server, "id, name, age, bio, email") == [r + (None,) for r in ROWS]


def _try(system) -> str:
    try:
        r = system.execute_auto_migration()
        return "applied" if r.operations_executed else "up to date"
    except LockTimeout as exc:
        return f"LockTimeout: {exc}"


def test_backup_restore_round_trip_and_rollback(server):
    seed(server)
    before = server.state()
    system = server.system(with_cols('Column("email", String(100))'))
    r = system.execute_auto_migration()
    assert r.backup_id
    info = system.backups.verify_backup(r.backup_id)
    assert info.verified and info.size_bytes > 0 and "@" not in info.database or ":" not in info.database.split("@")[0][-4:]
    server.sql("UPDATE users SET email = 'x@y' WHERE id = 1")
    server.sql("INSERT INTO users (id, name) VALUES (4, 'dee')")
    rb = system.rollback_last_migration()
    assert rb.success and rb.backup_id == r.backup_id
    assert server.state() == before
    hist = system.get_migration_history()
    assert {h.kind for h in hist} >= {"migrate", "rollback"}
    assert next(h for h in hist if h.id == r.migration_id).status == "rolled_back"


def test_tampered_backup_is_refused(server):
    seed(server)
    system = server.system(with_cols('Column("email", String(100))'))
    r = system.execute_auto_migration()
    path = system.backups.verify_backup(r.backup_id).path
    with open(path, "r+b") as fh:
        fh.seek(-10, 2)
        fh.write(b"XXXXXXXXXX")
    before = server.state()
    with pytest.raises(MigrationError, match="checksum"):
        system.rollback_last_migration()
    assert server.state() == before


def _many_tables(n: int) -> str:
    out = []
    for i in range(n):
        out.append(f"""
Table("t{i:03d}", metadata,
      Column("id", Integer, primary_key=True),
      Column("name", String(40), nullable=False, server_default="x"),
      Column("flag", Boolean, server_default=text("false")),
      Column("amount", Numeric(10, 2), server_default="0"),
      Column("created", DateTime, server_default=func.now()),
      Column("payload", JSON),
      Column("kind", Enum("a", "b", "c", name="kind_{i % 3}")),
      Column("parent_id", Integer, ForeignKey("t{max(i - 1, 0):03d}.id", ondelete="SET NULL")),
      CheckConstraint("amount >= 0", name="ck_t{i:03d}_amount"),
      UniqueConstraint("name", "parent_id", name="uq_t{i:03d}"),
      Index("ix_t{i:03d}_created", "created"))""")
    return "".join(out)


def test_200_tables_no_false_differences_after_create_all(server):
    body = _many_tables(200)
    system = server.system(body)
    from sqlalchemy import create_engine

    create_engine(server.url).dispose()
    from migration_core.target import load_metadata

    eng = create_engine(server.url)
    try:
        load_metadata(system.settings.models).create_all(eng)
    finally:
        eng.dispose()
    status = system.check_migration_status()
    assert status.migration_needed is False, [c.detail for c in status.changes][:10]
