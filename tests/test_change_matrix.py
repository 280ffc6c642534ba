"""Every change kind on SQLite, PostgreSQL and MariaDB (the `anydb` fixture), with the data checked
value by value and refusals checked to leave the database exactly as it was. What only one engine
has (SQLite's rebuilds, triggers and views; the servers' locks, backups and mid-plan restores) is
tested in test_migrations_sqlite.py / test_migrations_servers.py."""

from __future__ import annotations

import pytest

from matrix import PARENT_CHILD, ROWS, USERS_NO_BIO, USERS_V1, assert_refused, seed, users, with_cols
from servers import server  # noqa: F401 - fixture


def test_create_tables_then_up_to_date(anydb):
    r = anydb.migrate(USERS_V1)
    assert r.success and r.migration_needed and r.operations_executed == 1
    status = anydb.system(USERS_V1).check_migration_status()
    assert status.migration_needed is False and status.changes == [] and status.complexity == "NONE"


# How each engine spells the ALTER that adds a nullable column: no rebuild anywhere.
ADD_EMAIL_SQL = {
    "sqlite": 'ALTER TABLE "users" ADD COLUMN email VARCHAR(100)',
    "postgresql": "ALTER TABLE users ADD COLUMN email VARCHAR(100)",
    "mysql": "ALTER TABLE users ADD COLUMN email VARCHAR(100)",
}


def test_add_nullable_column_uses_alter_and_keeps_rows(anydb):
    seed(anydb)
    body = with_cols('Column("email", String(100))')
    preview = anydb.system(body).preview_diff()
    assert [c.kind for c in preview.changes] == ["add_column"]
    assert any(s.startswith(ADD_EMAIL_SQL[anydb.kind]) for s in preview.sql), preview.sql
    assert preview.complexity == "SIMPLE"
    anydb.migrate(body)
    assert users(anydb, "id, name, age, bio, email") == [r + (None,) for r in ROWS]


def test_add_column_with_default_fills_existing_rows(anydb):
    seed(anydb)
    true = "1" if anydb.kind == "sqlite" else "true"
    anydb.migrate(with_cols(f'Column("active", Boolean, nullable=False, server_default=text("{true}"))'))
    assert [r[0] for r in anydb.sql("SELECT active FROM users ORDER BY id")] == [1, 1, 1]  # True == 1 on PostgreSQL
    assert users(anydb) == ROWS


def test_add_timestamp_default_column(anydb):
    seed(anydb)
    body = with_cols('Column("created", DateTime, server_default=func.now())')
    if anydb.kind == "sqlite":  # ALTER TABLE ADD COLUMN cannot take a non-constant default: a rebuild
        preview = anydb.system(body).preview_diff()
        assert any("rebuild" in s or "_migration_new_users" in s for s in preview.sql)
    anydb.migrate(body)
    assert users(anydb) == ROWS
    assert all(r[0] is not None for r in anydb.sql("SELECT created FROM users"))
    # CURRENT_TIMESTAMP and now() are one default: no false difference.
    same = with_cols('Column("created", DateTime, server_default=text("CURRENT_TIMESTAMP"))')
    assert anydb.system(same).check_migration_status().migration_needed is False


def test_not_null_column_without_default_refused_on_nonempty_table(anydb):
    seed(anydb)
    message = assert_refused(anydb, with_cols('Column("code", String(5), nullable=False)'))
    assert "users.code" in message and "3 rows" in message


def test_drop_column_refused_without_permission_then_applied(anydb):
    seed(anydb)
    message = assert_refused(anydb, USERS_NO_BIO)
    assert "drop column users.bio" in message and "destructive" in message
    r = anydb.migrate(USERS_NO_BIO, allow_destructive=True)
    assert r.backup_id is not None
    assert users(anydb, "id, name, age") == [x[:3] for x in ROWS]


def test_widen_and_narrow_string(anydb):
    seed(anydb)
    anydb.migrate(USERS_V1.replace("String(50)", "String(200)"))
    assert users(anydb) == ROWS
    anydb.migrate(USERS_V1.replace("String(50)", "String(3)"))  # every name fits in 3 characters
    assert users(anydb) == ROWS
    assert_refused(anydb, USERS_V1.replace("String(50)", "String(2)"), match="2 values in users.name are longer than 2 characters")


def test_type_change_converts_values_or_is_refused(anydb):
    as_text = USERS_V1.replace('Column("age", Integer)', 'Column("age", String(10))')
    anydb.migrate(as_text)
    anydb.sql("INSERT INTO users VALUES (1, 'ann', '30', 'a'), (2, 'bob', NULL, 'b')")
    if anydb.kind == "sqlite":
        assert anydb.sql("SELECT typeof(age) FROM users ORDER BY id") == [("text",), ("null",)]
    anydb.migrate(USERS_V1)
    assert anydb.sql("SELECT id, age FROM users ORDER BY id") == [(1, 30), (2, None)]
    if anydb.kind == "sqlite":  # the values themselves converted, not only the declared type
        assert anydb.sql("SELECT typeof(age) FROM users ORDER BY id") == [("integer",), ("null",)]
    anydb.migrate(as_text)
    anydb.sql("INSERT INTO users VALUES (3, 'cy', 'thirty', 'c')")
    assert_refused(anydb, USERS_V1, match="1 value in users.age does not convert to INT")  # INT or INTEGER


NUMS = 't = Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", {v}), Column("f", {f}))\n'


def test_numeric_narrowing_never_rounds_silently(anydb):
    """Regression: on the servers 2.5 -> INTEGER stored 3 and 1.75 (float) -> INTEGER stored 2,
    reported as 'checked: every value converts'. Now rounding is destructive (refused unless
    allowed); SQLite would keep such values as REAL, so there they do not convert at all."""
    anydb.migrate(NUMS.format(v="Numeric(10, 3)", f="Float"))
    anydb.insert("t", [(1, 2.5, 1.75), (2, 4, 2.0)])
    to_int = NUMS.format(v="Integer", f="Integer")
    msg = assert_refused(anydb, to_int)
    if anydb.kind == "sqlite":
        assert "1 value in t.v does not convert to INT" in msg and "1 value in t.f does not convert to INT" in msg
    else:
        assert "1 value in t.v would be rounded to whole numbers (destructive" in msg
        assert "1 value in t.f would be rounded to whole numbers (destructive" in msg
    anydb.sql("UPDATE t SET v = 2.125, f = 1.1 WHERE id = 1")
    to_cents = NUMS.format(v="Numeric(10, 2)", f="Numeric(10, 2)")
    if anydb.kind == "sqlite":
        anydb.migrate(to_cents)  # same affinity: values kept as they are
        assert anydb.sql("SELECT v, f FROM t ORDER BY id") == [(2.125, 1.1), (4, 2)]
        return
    # 2.125 would become 2.13; 1.1 (float) is 1.10 exactly, not a rounding
    msg = assert_refused(anydb, to_cents, match="1 value in t.v would be rounded to 2 decimal places")
    assert "t.f" not in msg
    anydb.migrate(to_cents, allow_destructive=True)
    anydb.migrate(to_cents.replace('Column("v", Numeric(10, 2))', 'Column("v", Numeric(12, 4))'))
    assert [tuple(float(x) for x in r) for r in anydb.sql("SELECT v, f FROM t ORDER BY id")] == [(2.13, 1.1), (4.0, 2.0)]


def test_lossy_time_and_float_conversions_need_permission(anydb):
    """DATETIME -> DATE drops the time of day and double -> single precision drops digits, silently
    on the servers (this was reported as 'every value converts'); SQLite keeps the values."""
    before = 't = Table("t", metadata, Column("id", Integer, primary_key=True), Column("at", DateTime), Column("x", Float(53)))\n'
    after = ('from sqlalchemy import Date\n'
             't = Table("t", metadata, Column("id", Integer, primary_key=True), Column("at", Date), Column("x", Float(24)))\n')
    anydb.migrate(before)
    anydb.sql("INSERT INTO t (id, at, x) VALUES (1, '2024-01-02 13:45:00', 1.2345678901234), (2, '2024-01-03 00:00:00', 0.5)")
    if anydb.kind == "sqlite":
        anydb.migrate(after)
        assert anydb.sql("SELECT at, x FROM t ORDER BY id") == [("2024-01-02 13:45:00", 1.2345678901234), ("2024-01-03 00:00:00", 0.5)]
        return
    msg = assert_refused(anydb, after)
    assert "1 value in t.at would be cut to the date (the time of day is lost) (destructive" in msg
    assert "1 value in t.x would be stored with single precision (destructive" in msg
    anydb.migrate(after, allow_destructive=True)
    rows = anydb.sql("SELECT at FROM t ORDER BY id")
    assert [str(r[0]) for r in rows] == ["2024-01-02", "2024-01-03"]


def test_numbers_to_boolean_keep_only_zero_and_one(anydb):
    """Regression: PostgreSQL turned 5 into true ('every value converts'); MariaDB's BOOLEAN is
    TINYINT(1) and keeps 5; SQLite keeps it too (INTEGER -> BOOLEAN is NUMERIC affinity)."""
    anydb.migrate('t = Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", Integer))\n')
    anydb.insert("t", [(1, 5), (2, 0)])
    to_bool = 't = Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", Boolean))\n'
    if anydb.kind == "postgresql":
        assert_refused(anydb, to_bool, match="1 value in t.v would be collapsed to true/false")
        anydb.migrate(to_bool, allow_destructive=True)
        assert anydb.sql("SELECT v FROM t ORDER BY id") == [(True,), (False,)]
    else:
        anydb.migrate(to_bool)
        assert anydb.sql("SELECT v FROM t ORDER BY id") == [(5,), (0,)]


def test_text_and_integer_sources_are_checked_like_numbers(anydb):
    """Regression (review): '1.756' (text) -> NUMERIC(10,2) stored 1.76 and 2**53 + 1 -> DOUBLE stored
    2**53 on the servers, reported as 'every value converts'; '100000' (text) -> SMALLINT was not
    refused ahead. SQLite converts only what converts exactly and keeps the rest as it was."""
    before = 't = Table("t", metadata, Column("id", Integer, primary_key=True), Column("s", String(20)), Column("n", BigInteger))\n'
    after = ('from sqlalchemy import SmallInteger\n'
             't = Table("t", metadata, Column("id", Integer, primary_key=True), Column("s", Numeric(10, 2)), Column("n", Float(53)))\n')
    anydb.migrate(before)
    anydb.insert("t", [(1, "1.756", 2**53 + 1), (2, "2.5", 7)])
    if anydb.kind == "sqlite":
        # NUMERIC affinity stores '1.756' as the REAL 1.756 (exact enough for SQLite: it converts);
        # 2**53 + 1 does not fit a REAL exactly, so it would stay an INTEGER: refused as not converting.
        assert_refused(anydb, after, match="1 value in t.n does not convert to FLOAT")
        return
    msg = assert_refused(anydb, after)
    assert "1 value in t.s would be rounded to 2 decimal places (destructive" in msg
    assert "1 value in t.n would be stored with double precision (destructive" in msg
    anydb.sql("UPDATE t SET s = '100000', n = 1 WHERE id = 1")
    assert_refused(anydb, after.replace('Column("s", Numeric(10, 2))', 'Column("s", SmallInteger)'),
                   match="2 values in t.s do not convert to SMALLINT")  # '100000' out of range, '2.5' not whole
    anydb.sql("UPDATE t SET s = '1.75' WHERE id = 1")
    anydb.migrate(after)
    assert [tuple(float(x) for x in r) for r in anydb.sql("SELECT s, n FROM t ORDER BY id")] == [(1.75, 1.0), (2.5, 7.0)]


def test_fractional_seconds_narrowing_needs_permission(server):
    """Regression (review): TIMESTAMP(6) -> TIMESTAMP(0) was blocked on PostgreSQL as 'longer than 0
    characters' (the precision read as a length), and DATETIME(6) -> DATETIME dropped the fraction on MariaDB.
    Servers only: SQLite types carry no fractional-second precision."""
    module, name, arg = ("postgresql", "TIMESTAMP", "precision") if server.kind == "postgresql" else ("mysql", "DATETIME", "fsp")
    body = (f"from sqlalchemy.dialects.{module} import {name}\n"
            f't = Table("t", metadata, Column("id", Integer, primary_key=True), Column("at", {name}({arg}={{p}})))\n')
    server.migrate(body.format(p=6))
    server.sql("INSERT INTO t (id, at) VALUES (1, '2024-01-02 10:00:00.723456'), (2, '2024-01-02 11:00:00')")
    assert_refused(server, body.format(p=0), match="1 value in t.at would be rounded to 0 fractional second digits")
    server.sql("UPDATE t SET at = '2024-01-02 10:00:00' WHERE id = 1")
    server.migrate(body.format(p=0))


def test_numeric_range_narrowing_is_refused_ahead(anydb):
    """Regression: MySQL without strict mode stored 100000 -> SMALLINT as 32767 ('every value converts');
    the servers refuse or fail otherwise, SQLite keeps the values (same affinity: nothing to check)."""
    anydb.migrate(NUMS.format(v="BigInteger", f="Numeric(10, 2)"))
    anydb.insert("t", [(1, 100000, 12345.5), (2, 5, 1.25)])
    narrow = "from sqlalchemy import SmallInteger\n" + NUMS.format(v="SmallInteger", f="Numeric(5, 2)")
    if anydb.kind == "sqlite":
        anydb.migrate(narrow)
        assert anydb.sql("SELECT v, f FROM t ORDER BY id") == [(100000, 12345.5), (5, 1.25)]
        return
    msg = assert_refused(anydb, narrow)
    assert "1 value in t.v does not convert to SMALLINT" in msg and "1 value in t.f does not convert to" in msg
    anydb.sql("DELETE FROM t WHERE id = 1")
    anydb.migrate(narrow)
    assert [tuple(float(x) for x in r) for r in anydb.sql("SELECT v, f FROM t ORDER BY id")] == [(5.0, 1.25)]


def test_set_not_null_checks_nulls_and_back(anydb):
    seed(anydb)
    body = USERS_V1.replace('Column("age", Integer)', 'Column("age", Integer, nullable=False)')
    assert_refused(anydb, body, match="1 row holds NULL in users.age")
    anydb.sql("UPDATE users SET age = 0 WHERE age IS NULL")
    anydb.migrate(body)
    assert anydb.nullable("users", "age") is False
    with pytest.raises(Exception):
        anydb.sql("INSERT INTO users (id, name) VALUES (9, 'z')")
    anydb.migrate(USERS_V1)  # and back to nullable
    assert anydb.nullable("users", "age") is True
    anydb.sql("INSERT INTO users (id, name) VALUES (9, 'z')")
    assert users(anydb)[:3] == [(1, "ann", 30, "a"), (2, "bob", 0, "b"), (3, "cy", 41, None)]


def test_default_change(anydb):
    seed(anydb)
    with_age_default = USERS_V1.replace('Column("age", Integer)', 'Column("age", Integer, server_default="7")')
    anydb.migrate(with_age_default)
    anydb.sql("INSERT INTO users (id, name) VALUES (9, 'zed')")
    assert anydb.sql("SELECT age FROM users WHERE id = 9") == [(7,)]
    anydb.migrate(with_age_default.replace('Column("bio", Text)', 'Column("bio", Text, server_default="n/a")'))
    anydb.sql("INSERT INTO users (id, name) VALUES (10, 'zoe')")
    assert anydb.sql("SELECT age, bio FROM users WHERE id = 10") == [(7, "n/a")]
    assert users(anydb)[:3] == ROWS


def test_unique_constraint_checked_against_duplicates(anydb):
    seed(anydb, rows=[(1, "ann", 30, "a"), (2, "ann", 31, "b"), (3, "cy", None, None)])
    body = with_cols('UniqueConstraint("name", name="uq_users_name")')
    assert_refused(anydb, body, match="1 value of \\(name\\) appears more than once in users")
    anydb.sql("UPDATE users SET name = 'ann2' WHERE id = 2")
    anydb.migrate(body)
    with pytest.raises(Exception):
        anydb.sql("INSERT INTO users (id, name) VALUES (10, 'ann')")
    anydb.migrate(USERS_V1)  # drop the constraint again
    anydb.sql("INSERT INTO users (id, name) VALUES (10, 'ann')")


def test_check_constraint_added_and_checked(anydb):
    seed(anydb, rows=[(1, "ann", 30, "a"), (2, "bob", -1, "b")])
    body = with_cols('CheckConstraint("age >= 0", name="ck_users_age")')
    assert_refused(anydb, body, match="1 row in users violates CHECK")
    anydb.sql("UPDATE users SET age = 1 WHERE id = 2")
    anydb.migrate(body)
    assert users(anydb, "id, age") == [(1, 30), (2, 1)]
    # Same expression, different spelling: no false difference.
    assert anydb.system(body.replace('"age >= 0"', '"age>=0"')).check_migration_status().migration_needed is False
    with pytest.raises(Exception):
        anydb.sql("UPDATE users SET age = -5 WHERE id = 1")


def test_indexes_added_dropped_and_unique_index_checked(anydb):
    seed(anydb, rows=[(1, "ann", 30, "a"), (2, "bob", 30, "b")])
    body = with_cols('Index("ix_users_age", "age"), Index("ix_users_name_age", "name", "age", unique=True)')
    preview = anydb.system(body).preview_diff()
    assert sorted(c.kind for c in preview.changes) == ["add_index", "add_index"]
    assert not any("_migration_new_" in s for s in preview.sql)  # plain CREATE INDEX, no rebuild
    anydb.migrate(body)
    assert {"ix_users_age", "ix_users_name_age"} <= anydb.indexes("users")
    assert_refused(anydb, with_cols('Index("ix_users_age", "age", unique=True)'))
    anydb.migrate(USERS_V1)
    assert not {"ix_users_age", "ix_users_name_age"} & anydb.indexes("users")
    assert users(anydb, "id, age") == [(1, 30), (2, 30)]


def test_foreign_key_added_checked_and_dropped(anydb):
    anydb.migrate(PARENT_CHILD.format(fk=""))
    anydb.sql("INSERT INTO parents VALUES (1, 'p1'), (2, 'p2')")
    anydb.sql("INSERT INTO children VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 99, 'orphan')")
    name = "" if anydb.kind == "sqlite" else ', name="fk_children_parent"'  # SQLite: an unnamed FK; servers: a named one
    with_fk = PARENT_CHILD.format(fk=f', ForeignKey("parents.id", ondelete="CASCADE"{name})')
    assert_refused(anydb, with_fk, match="1 row in children references missing parents rows")
    anydb.sql("DELETE FROM children WHERE id = 3")
    anydb.migrate(with_fk)
    # Change the parent table (on SQLite a rebuild): dropping the old table must not cascade into children.
    anydb.migrate(with_fk.replace('Column("name", String(20))', 'Column("name", String(40))'))
    assert anydb.sql("SELECT id, parent_id, note FROM children ORDER BY id") == [(1, 1, "a"), (2, 2, "b")]
    assert anydb.fk_targets("children") == ["parents"]
    with pytest.raises(Exception):
        anydb.enforced("INSERT INTO children VALUES (5, 42, 'x')")
    anydb.migrate(PARENT_CHILD.format(fk=""))  # drop the FK again
    assert anydb.fk_targets("children") == []
    anydb.enforced("INSERT INTO children VALUES (5, 42, 'x')")


def test_drop_table_refused_then_applied(anydb):
    anydb.migrate(PARENT_CHILD.format(fk=', ForeignKey("parents.id")'))
    anydb.sql("INSERT INTO parents VALUES (1, 'p')")
    anydb.sql("INSERT INTO children VALUES (1, 1, 'c')")
    only_children = 'Table("children", metadata, Column("id", Integer, primary_key=True), Column("parent_id", Integer), Column("note", String(20)))'
    message = assert_refused(anydb, only_children)
    assert "drop table parents" in message and "1 row" in message
    anydb.migrate(only_children, allow_destructive=True)
    assert anydb.sql("SELECT * FROM children") == [(1, 1, "c")]
    assert anydb.tables() == ["children"]


def test_primary_key_change(anydb):
    body = """
Table("pairs", metadata, Column("a", Integer, nullable=False, autoincrement=False), Column("b", Integer, nullable=False, autoincrement=False),
      Column("v", String(5)), PrimaryKeyConstraint("a", name="pk_pairs"))
"""
    anydb.migrate(body)
    anydb.sql("INSERT INTO pairs VALUES (1, 1, 'x'), (2, 1, 'y')")
    anydb.migrate(body.replace('PrimaryKeyConstraint("a"', 'PrimaryKeyConstraint("a", "b"'))
    assert anydb.sql("SELECT * FROM pairs ORDER BY a") == [(1, 1, "x"), (2, 1, "y")]
    assert_refused(anydb, body.replace('PrimaryKeyConstraint("a"', 'PrimaryKeyConstraint("b"'), match="duplicate")


def test_rename_table_and_column_hints_keep_data_and_references(anydb):
    anydb.migrate(PARENT_CHILD.format(fk=', ForeignKey("parents.id")'))
    anydb.sql("INSERT INTO parents VALUES (1, 'p')")
    anydb.sql("INSERT INTO children VALUES (1, 1, 'c')")
    renamed = PARENT_CHILD.format(fk=', ForeignKey("families.id")').replace('Table("parents"', 'Table("families"')
    # Without a hint this is a drop + add: destructive, refused.
    assert_refused(anydb, renamed)
    status = anydb.system(renamed).check_migration_status(renames=["parents:families"])
    assert [c.kind for c in status.changes] == ["rename_table"] and status.changes[0].risk == "safe"
    anydb.migrate(renamed, renames=["parents:families"])
    assert anydb.sql("SELECT * FROM families") == [(1, "p")]
    assert anydb.fk_targets("children") == ["families"]
    # The hint stays valid once applied (startup migrations repeat it).
    assert anydb.system(renamed, renames=["parents:families"]).check_migration_status().migration_needed is False
    renamed2 = renamed.replace('"note"', '"remark"')
    anydb.migrate(renamed2, renames=["parents:families", "children.note:remark"])
    assert anydb.sql("SELECT id, parent_id, remark FROM children") == [(1, 1, "c")]


def test_dry_run_changes_nothing_and_returns_plan(anydb):
    seed(anydb)
    before = anydb.snapshot()
    r = anydb.system(USERS_V1.replace("String(50)", "String(80)")).execute_auto_migration(dry_run=True)
    assert r.dry_run and r.operations_executed == 0 and r.migration_needed and r.sql
    if anydb.kind == "sqlite":  # a type change is a rebuild
        assert any(s.startswith("CREATE TABLE") for s in r.sql)
    assert anydb.snapshot() == before
