"""What PostgreSQL and MariaDB share beyond the change-kind matrix (test_change_matrix.py): mid-plan
failures, the lock and its holder, backups, a fixed number of catalog queries and a 200-table
false-difference check. Each test runs on both servers."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import event

from matrix import ROWS, seed, users, with_cols
from migration_core import AutoMigrationSystem
from migration_core.errors import LockTimeout, MigrationError
from servers import server  # noqa: F401 - fixture


def test_failure_mid_plan_leaves_database_as_it_began(server):
    """A CHECK the models keep holds for the text '2024-01-02' but not for the same date as a
    DATETIME's text: every value converts (the probes say so), yet the statement that validates the
    CHECK on the converted rows fails after other statements (a new column, a widened type) already ran.
    On PostgreSQL the transaction undoes them; on MariaDB they had committed and the automatic restore
    undoes them."""
    as_text = "TEXT" if server.kind == "postgresql" else "CHAR"
    v1 = with_cols(f'CheckConstraint("char_length(CAST(bio AS {as_text})) < 12", name="ck_bio")')
    seed(server, v1, rows=[(1, "Ann", 30, "2024-01-02"), (2, "ann", 31, None)])
    before = server.state()
    body = v1.replace("String(50)", "String(80)").replace(
        'Column("bio", Text),', 'Column("bio", DateTime), Column("email", String(50)),')
    system = server.system(body)
    with pytest.raises(MigrationError) as exc:
        system.execute_auto_migration()
    message = str(exc.value)
    assert "failed" in message and "rolled back, nothing changed" in message, message
    assert server.state() == before
    history = system.get_migration_history()
    assert history[0].status == "failed" and "statement" in history[0].error
    if server.kind == "mysql":
        assert "no statement had committed: no statement had taken effect; nothing needed undoing" in message, message
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


# How each server names the holder of the migration lock: PostgreSQL keeps the purpose it was taken for,
# MariaDB's GET_LOCK only knows the connection.
HOLDER = {"postgresql": "holder-thread", "mysql": r"connection \d+ of root"}


def test_lock_status_names_the_holder(server):
    system = server.system("""Table("t", metadata, Column("id", Integer, primary_key=True))""")
    assert system.dialect.lock(0).status().held is False
    got, release = threading.Event(), threading.Event()

    def hold():
        with system.dialect.lock(1000).acquire("holder-thread"):
            got.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    got.wait(5)
    try:
        st = system.dialect.lock(0).status()
        assert st.held and re.search(HOLDER[server.kind], st.holder.purpose), st.holder
        health = system.get_system_health()
        assert next(c for c in health.checks if c.name == "lock").status == "warn"
        other = AutoMigrationSystem(system.settings.model_copy(update={"lock_timeout_ms": 200}))
        with pytest.raises(MigrationError, match="held by .*" + HOLDER[server.kind]):
            other.execute_auto_migration()
    finally:
        release.set()
        t.join()


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


def test_status_uses_a_fixed_number_of_catalog_queries(server):
    counts = {}
    for n in (5, 40):
        system = server.system(_many_tables(n))
        system.execute_auto_migration(create_backup=False)
        statements: list[str] = []
        event.listen(system.dialect.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        assert system.check_migration_status().migration_needed is False
        counts[n] = len(statements)
    assert counts[5] == counts[40], counts


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
