"""PostgreSQL specifics: native enums, SERIAL/IDENTITY, lock_timeout, statement_timeout,
CREATE INDEX CONCURRENTLY (opt-in), the rewrite assessment and the pg_dump / built-in backups.
What both servers share (the lock holder, catalog query counts, ...) is in test_migrations_servers.py."""

from __future__ import annotations

import time

import pytest

from migration_core.errors import ExecutionTimeout, MigrationError
from servers import pg  # noqa: F401 - fixture

ENUM_V1 = """
Table("tickets", metadata, Column("id", Integer, primary_key=True),
      Column("state", Enum("open", "closed", name="ticket_state"), nullable=False, server_default="open"))
"""


def test_enum_values_added_in_place_and_removal_checked_against_the_data(pg):
    pg.migrate(ENUM_V1)
    pg.sql("INSERT INTO tickets (id, state) VALUES (1, 'open'), (2, 'closed')")
    grown = ENUM_V1.replace('"open", "closed"', '"new", "open", "pending", "closed"')
    sql = pg.system(grown).preview_diff().sql
    assert "ALTER TYPE ticket_state ADD VALUE 'new' BEFORE 'open'" in sql
    assert "ALTER TYPE ticket_state ADD VALUE 'pending' AFTER 'open'" in sql
    pg.migrate(grown)
    assert pg.sql("SELECT enum_range(NULL::ticket_state)::text") == [("{new,open,pending,closed}",)]
    assert pg.sql("SELECT id, state::text FROM tickets ORDER BY id") == [(1, "open"), (2, "closed")]
    shrunk = ENUM_V1.replace('"open", "closed"', '"open"')
    status = pg.system(shrunk).check_migration_status()
    assert status.safe_to_apply is False  # a row still holds 'closed': counted, not "every value converts"
    assert any("1 value in tickets.state does not convert" in c.reason for c in status.changes), status.changes
    pg.sql("DELETE FROM tickets WHERE state = 'closed'")
    preview = pg.system(shrunk).preview_diff()
    assert preview.plan_proven and "ALTER TYPE ticket_state RENAME TO ticket_state__old" in preview.sql, preview.proof
    pg.migrate(shrunk)  # the type rebuilt and swapped inside the transaction
    assert pg.sql("SELECT enum_range(NULL::ticket_state)::text") == [("{open}",)]
    assert pg.sql("SELECT id, state::text FROM tickets ORDER BY id") == [(1, "open")]


def test_serial_and_identity_columns_have_no_false_difference(pg):
    body = """
Table("a", metadata, Column("id", Integer, primary_key=True), Column("v", Integer))
Table("b", metadata, Column("id", BigInteger, primary_key=True), Column("v", Integer))
from sqlalchemy import Identity
Table("c", metadata, Column("id", Integer, Identity(always=True), primary_key=True), Column("v", Integer))
"""
    pg.migrate(body)
    pg.sql("INSERT INTO a (v) VALUES (1)")
    pg.sql("INSERT INTO c (v) VALUES (1)")
    assert pg.sql("SELECT id FROM c") == [(1,)]
    assert pg.system(body).check_migration_status().migration_needed is False


def test_lock_timeout_fails_fast_with_a_clear_error(pg):
    pg.migrate("""Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))""")
    body = """Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)), Column("x", Integer))"""
    system = pg.system(body, ddl_lock_timeout_ms=300)
    before = pg.state()
    with pg.engine.connect() as blocker:
        blocker.exec_driver_sql("BEGIN")
        blocker.exec_driver_sql("SELECT * FROM users")  # ACCESS SHARE held until rollback
        started = time.monotonic()
        with pytest.raises(MigrationError, match="lock_timeout"):
            system.execute_auto_migration(create_backup=False)
        assert time.monotonic() - started < 5
        blocker.exec_driver_sql("ROLLBACK")
    assert pg.state() == before
    system.execute_auto_migration(create_backup=False)


def test_statement_timeout_enforces_the_time_limit(pg):
    pg.migrate("""Table("big", metadata, Column("id", Integer, primary_key=True), Column("v", String(40)))""")
    pg.sql("INSERT INTO big (v) SELECT md5(g::text) FROM generate_series(1, 300000) g")
    before = pg.state()
    body = """Table("big", metadata, Column("id", Integer, primary_key=True), Column("v", Text), Index("ix_big_v", "v"))"""
    with pytest.raises(ExecutionTimeout, match="rolled back, nothing changed"):
        pg.system(body).execute_auto_migration(create_backup=False, timeout_ms=50)
    assert pg.state() == before


def test_concurrent_index_is_opt_in_and_recorded(pg):
    pg.migrate("""Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", Integer))""")
    pg.sql("INSERT INTO t (v) SELECT g FROM generate_series(1, 1000) g")
    body = """Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", Integer), Index("ix_t_v", "v"))"""
    preview = pg.system(body).preview_diff()
    assert any(s.startswith("CREATE INDEX ix_t_v") for s in preview.sql)
    system = pg.system(body, concurrent_indexes=True)
    preview = system.preview_diff()
    assert preview.sql[-1].startswith("CREATE INDEX CONCURRENTLY ix_t_v") and preview.sql.index("COMMIT") < len(preview.sql) - 1
    r = system.execute_auto_migration(create_backup=False)
    assert r.success and system.check_migration_status().migration_needed is False
    assert any("CONCURRENTLY" in s for s in system.get_migration_history()[0].statements)
    assert pg.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_t_v'::regclass") == [(True,)]


BACKUP_MODELS = """
from sqlalchemy import Identity
Table("parents", metadata, Column("id", Integer, primary_key=True), Column("name", String(20), nullable=False),
      Column("state", Enum("open", "closed", name="pstate"), server_default="open"), Column("doc", JSON),
      Column("price", Numeric(10, 2)), Column("at", DateTime), CheckConstraint("price >= 0", name="ck_price"),
      Index("ix_parents_lower", func.lower(text("name"))), comment="the parents")
Table("children", metadata, Column("id", Integer, Identity(), primary_key=True),
      Column("parent_id", Integer, ForeignKey("parents.id", ondelete="CASCADE")), Column("blob", Text),
      UniqueConstraint("parent_id", "blob", name="uq_child"))
"""


def _fill(pg):
    pg.sql("""INSERT INTO parents (name, state, doc, price, at) VALUES ('a', 'closed', '{"k": [1, 2]}', 1.50, '2024-05-06 07:08:09'), """
           "('b', 'open', NULL, NULL, NULL)")
    pg.sql("INSERT INTO children (parent_id, blob) VALUES (1, 'x'), (2, NULL)")


def test_builtin_logical_backup_round_trip_when_pg_dump_is_absent(pg):
    pg.migrate(BACKUP_MODELS)
    _fill(pg)
    system = pg.system(BACKUP_MODELS)
    _, manager = pg.builtin_backup(system)
    before = pg.state()
    info = manager.create_backup("test")
    pg.sql("DELETE FROM children")
    pg.sql("UPDATE parents SET name = 'zz'")
    pg.sql("CREATE TABLE extra (id int)")
    manager.restore_backup(info.id)
    assert pg.state() == before
    # Sequences continue where they were: the next ids do not collide.
    pg.sql("INSERT INTO parents (name) VALUES ('c')")
    pg.sql("INSERT INTO children (parent_id) VALUES (3)")
    assert pg.sql("SELECT max(id) FROM parents") == [(3,)] and pg.sql("SELECT max(id) FROM children") == [(3,)]


def test_pg_dump_backup_round_trip_keeps_sequences(pg):
    pg.migrate(BACKUP_MODELS)
    _fill(pg)
    system = pg.system(BACKUP_MODELS)
    assert system.backups.engine.name == "pg_dump-custom"
    before = pg.state()
    info = system.backups.create_backup("test")
    pg.sql("DELETE FROM children")
    pg.sql("CREATE TABLE extra (id int)")
    system.backups.restore_backup(info.id)
    assert pg.state() == before
    pg.sql("INSERT INTO parents (name) VALUES ('c')")
    assert pg.sql("SELECT max(id) FROM parents") == [(3,)]


def test_assessment_names_rewrites_and_plans_cheaper_forms(pg):
    body = """Table("t", metadata, Column("id", Integer, primary_key=True), Column("n", Integer), Column("s", String(10)))"""
    pg.migrate(body)
    pg.sql("INSERT INTO t VALUES (1, 1, 'a')")
    changed = body.replace('Column("n", Integer)', 'Column("n", BigInteger, nullable=False)').replace(
        "String(10)", "String(20)") + """
Table("u", metadata, Column("id", Integer, primary_key=True), Column("t_id", Integer, ForeignKey("t.id")))
"""
    preview = pg.system(changed).preview_diff()
    joined = " | ".join(preview.warnings)
    assert "changing t.n from INTEGER to BIGINT rewrites t" in joined
    assert "t.s" not in joined  # VARCHAR widening needs no rewrite
    assert "CHECK NOT VALID + VALIDATE" in joined
    assert any(s.endswith("CHECK (n IS NOT NULL) NOT VALID") for s in preview.sql)
    validate = next(i for i, s in enumerate(preview.sql) if s.startswith("ALTER TABLE t VALIDATE CONSTRAINT") and "_mig_nn_n" in s)
    assert preview.sql.index("ALTER TABLE t ALTER COLUMN n SET NOT NULL") > validate
    pg.migrate(changed)
    assert pg.sql("SELECT id, n, s FROM t") == [(1, 1, "a")]
    assert pg.sql("SELECT count(*) FROM pg_constraint WHERE conname = '_mig_nn_n'") == [(0,)]


def test_concurrent_unique_constraint_is_built_then_attached(pg):
    pg.migrate("""Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", Integer))""")
    pg.sql("INSERT INTO t (v) SELECT g FROM generate_series(1, 1000) g")
    body = """Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", Integer), UniqueConstraint("v", name="uq_t_v"))"""
    system = pg.system(body, concurrent_indexes=True)
    sql = system.preview_diff().sql
    assert sql[-2:] == ["CREATE UNIQUE INDEX CONCURRENTLY uq_t_v ON t (v)", "ALTER TABLE t ADD CONSTRAINT uq_t_v UNIQUE USING INDEX uq_t_v"]
    system.execute_auto_migration(create_backup=False)
    assert system.check_migration_status().migration_needed is False
    assert pg.sql("SELECT contype FROM pg_constraint WHERE conname = 'uq_t_v'") == [("u",)]


def test_float_rounding_is_seen_whatever_the_sessions_float_output(pg):
    """With extra_float_digits = 0 a float8 reads as 15 digits, so 0.1 + 0.2 looked like 0.3 and its
    rounding to NUMERIC(10,2) went unseen (MariaDB saw it); the probe sets the shortest exact output."""
    from migration_core import AutoMigrationSystem
    from migration_core.errors import SafetyRefusal

    pg.migrate('Table("t", metadata, Column("id", Integer, primary_key=True), Column("x", Float(53)))')
    pg.sql("INSERT INTO t VALUES (1, 0.1::float8 + 0.2::float8)")
    settings = pg.settings(pg.models('Table("t", metadata, Column("id", Integer, primary_key=True), Column("x", Numeric(10, 2)))'))
    settings = settings.model_copy(update={"database_url": pg.url + "?options=-c%20extra_float_digits%3D0"})
    with pytest.raises(SafetyRefusal, match="1 value in t.x would be rounded to 2 decimal places"):
        AutoMigrationSystem(settings).execute_auto_migration()
