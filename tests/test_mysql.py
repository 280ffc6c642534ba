"""MariaDB/MySQL specifics: BOOLEAN/JSON/ENUM normalization, per-statement history, the
built-in logical backup (the mysqldump fallback), the automatic restore and half-done runs.
What both servers share (the lock holder, catalog query counts, ...) is in test_migrations_servers.py."""

from __future__ import annotations

import pytest

from migration_core.errors import BackupError, MigrationError
from servers import my  # noqa: F401 - fixture

TYPES = """
Table("things", metadata, Column("id", Integer, primary_key=True),
      Column("flag", Boolean, nullable=False, server_default=text("0")),
      Column("doc", JSON),
      Column("size", Enum("small", "medium", "large", name="size_enum")),
      Column("created", DateTime, server_default=func.now()),
      Column("price", Numeric(10, 2), server_default="0"))
"""


def test_boolean_json_enum_and_now_have_no_false_differences(my):
    my.migrate(TYPES)
    my.sql("INSERT INTO things (id, flag, doc, size) VALUES (1, 1, '{\"a\": 1}', 'large')")
    assert my.system(TYPES).check_migration_status().migration_needed is False
    # CURRENT_TIMESTAMP spelled either way is the same default.
    same = TYPES.replace("func.now()", 'text("CURRENT_TIMESTAMP")')
    assert my.system(same).check_migration_status().migration_needed is False
    # MySQL sorts an ENUM by its list's order: a reordered list is a change, and it keeps every value.
    reordered = TYPES.replace('"small", "medium", "large"', '"large", "small", "medium"')
    assert [c.kind for c in my.system(reordered).check_migration_status().changes] == ["alter_column_type"]
    my.migrate(reordered)
    assert my.sql("SELECT size FROM things") == [("large",)]
    my.migrate(TYPES)
    grown = TYPES.replace('"large", name', '"large", "huge", name')
    status = my.system(grown).check_migration_status()
    assert [c.kind for c in status.changes] == ["alter_column_type"]
    my.migrate(grown)
    my.sql("INSERT INTO things (id, size) VALUES (2, 'huge')")
    assert my.sql("SELECT id, flag, size FROM things ORDER BY id") == [(1, 1, "large"), (2, 0, "huge")]


def unchecked(my, statement: str) -> None:
    """Run `statement` with CHECK constraints off (MariaDB's check_constraint_checks): a row that breaks
    a CHECK, which MariaDB verifies again when an ALTER TABLE copies the table. The probes count what
    a conversion does to values, not what the table's unchanged CHECKs say of them, so such a row
    makes a plan fail midway, after earlier statements committed."""
    with my.engine.connect() as c:
        c.exec_driver_sql("SET SESSION check_constraint_checks = 0")
        c.exec_driver_sql(statement)

def test_every_executed_statement_is_recorded_and_failure_says_where(my):
    """One ALTER TABLE per table: the changes to `a` and `b` commit, then `t`'s fails; all are undone."""
    v1 = """Table("a", metadata, Column("id", Integer, primary_key=True))
Table("b", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))
Table("t", metadata, Column("id", Integer, primary_key=True), Column("b", Integer), Column("a", Text), CheckConstraint("b > 0"))"""
    my.migrate(v1)
    unchecked(my, "INSERT INTO t VALUES (1, -1, 'x')")
    my.sql("INSERT INTO b VALUES (1, 7)")
    before = my.state()
    body = v1.replace('Column("id", Integer, primary_key=True))', 'Column("id", Integer, primary_key=True), Column("x", Integer))', 1)
    body = body.replace('Column("n", Integer)', 'Column("n", BigInteger)').replace('Column("a", Text)', 'Column("a", String(50))')
    system = my.system(body)
    with pytest.raises(MigrationError) as exc:
        system.execute_auto_migration()
    msg = str(exc.value)
    assert "statement 3 of 3 failed" in msg and "2 statement(s) had committed and were undone" in msg, msg
    assert my.state() == before
    entry = system.get_migration_history()[0]
    assert entry.status == "failed" and "statement 3 of 3" in entry.error
    assert len(entry.statements) == 3
    assert list(my.backups.glob("run-*")) == []  # the run's dump of affected tables is removed once restored


def test_logical_backup_fallback_round_trip_and_tamper_check(my):
    my.migrate(TYPES)
    my.sql("INSERT INTO things (id, flag, doc, size, created, price) VALUES "
           "(1, 1, '{\"a\": 1}', 'large', '2024-01-02 03:04:05', 12.34), (2, 0, NULL, NULL, NULL, 0)")
    before = my.state()
    system = my.system(TYPES)
    engine, manager = my.builtin_backup(system)
    info = manager.create_backup("test")
    my.sql("DELETE FROM things WHERE id = 1")
    my.sql("UPDATE things SET price = 99 WHERE id = 2")
    my.sql("CREATE TABLE extra (id INT PRIMARY KEY)")
    manager.restore_backup(info.id)
    assert my.state() == before
    data = open(info.path, "rb").read()
    cut = my.tmp / "cut.logical.jsonl"
    cut.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 1])  # drop the end marker line
    assert "truncated" in engine.check_backup_file(cut)
    with open(info.path, "r+b") as fh:
        fh.seek(5)
        fh.write(b"#")
    with pytest.raises(BackupError, match="checksum"):
        manager.restore_backup(info.id)


def test_mysqldump_backup_detects_truncation(my):
    my.migrate(TYPES)
    system = my.system(TYPES)
    assert system.backups.engine.name == "mysqldump"
    info = system.backups.create_backup("test")
    assert system.backups.engine.check_backup_file(__import__("pathlib").Path(info.path)) is None
    data = open(info.path, "rb").read()
    cut = my.tmp / "cut.sql"
    cut.write_bytes(data[: len(data) // 2])
    assert "truncated" in system.backups.engine.check_backup_file(cut)


def test_automatic_restore_keeps_triggers_and_auto_increment(my):
    my.migrate("""Table("t", metadata, Column("id", Integer, primary_key=True), Column("b", Integer), Column("a", Text),
      CheckConstraint("b > 0", name="ck_t_b"))
Table("log", metadata, Column("id", Integer, primary_key=True), Column("what", String(20)))""")
    my.sql("CREATE TRIGGER t_ins AFTER INSERT ON t FOR EACH ROW INSERT INTO log (what) VALUES (CONCAT('ins ', NEW.id))")
    unchecked(my, "INSERT INTO t (b, a) VALUES (-1, 'x'), (2, NULL)")
    my.sql("DELETE FROM t WHERE id = 2")
    before = my.state()
    body = """Table("t", metadata, Column("id", Integer, primary_key=True), Column("b", BigInteger), Column("a", String(50)),
      CheckConstraint("b > 0", name="ck_t_b"))
Table("log", metadata, Column("id", Integer, primary_key=True), Column("what", String(20)))"""
    with pytest.raises(MigrationError, match="no statement had committed: no statement had taken effect"):
        my.system(body).execute_auto_migration()  # one ALTER for both columns: it failed whole (atomic DDL)
    assert my.state() == before
    my.sql("INSERT INTO t (b) VALUES (3)")
    assert my.sql("SELECT id FROM t ORDER BY id") == [(1,), (3,)]  # AUTO_INCREMENT kept: 2 is not reused
    assert my.sql("SELECT what FROM log ORDER BY id")[-1] == ("ins 3",)  # the trigger is back


def test_interrupted_run_without_a_dump_is_marked_failed_with_nothing_to_undo(my):
    """A `running` row with no dump: the process died before its first statement or after its own restore.
    (A run killed in between, with its dump, is restored: test_mysql_faults.py.)"""
    system = my.system("""Table("t", metadata, Column("id", Integer, primary_key=True))""")
    system.execute_auto_migration()
    conn = system.dialect.connect(write=True)
    try:
        system.history.record_migration_start(conn, "mig-crashed", statements=["a", "b", "c"])
        system.history.record_progress(conn, "mig-crashed", 2, 3)
    finally:
        conn.close()
    system.execute_auto_migration()  # takes the lock, finds the dead run's row
    entry = next(h for h in system.get_migration_history() if h.id == "mig-crashed")
    assert entry.status == "failed" and "nothing to undo" in entry.error and "2 of 3 statements executed" in entry.error


def test_migration_sessions_are_strict_whatever_the_server_default(my):
    """A session without strict mode clamps values that do not fit (100000 -> SMALLINT stores 32767)
    and truncates text; ours always add STRICT_ALL_TABLES, so the server fails the statement instead."""
    from migration_core.dialects.mysql.dialect import MysqlDialect

    loose = my.settings(my.models('Table("t", metadata, Column("id", Integer, primary_key=True))'))
    loose = loose.model_copy(update={"database_url": my.url + "?init_command=SET+sql_mode%3D%27%27"})
    conn = MysqlDialect(loose).connect(write=True)
    try:
        assert "STRICT_ALL_TABLES" in conn.execute("SELECT @@SESSION.sql_mode").scalar().split(",")
        conn.execute("CREATE TABLE strict_probe (v SMALLINT)")
        with pytest.raises(Exception, match="Out of range"):
            conn.execute("INSERT INTO strict_probe VALUES (100000)")
    finally:
        conn.close()


def test_time_limit_holds_during_a_long_alter(my, tmp_path):
    """max_execution_time_ms was checked between statements only, so one long ALTER ran past it; now
    MariaDB's max_statement_time aborts the ALTER itself, and the run restores the table."""
    import time

    from migration_core.dialects.mysql.dump import take_dump
    from migration_core.errors import ExecutionTimeout

    # Few columns to dump, many indexes for the ALTER to rebuild: the ALTER is the long part.
    orders = [("a", "b"), ("b", "a"), ("a", "n"), ("b", "n"), ("n", "a"), ("n", "b")]
    idx = ", ".join(f'Index("ix{i}_{k}", "{x}", "{y}", "id")' for k in range(3) for i, (x, y) in enumerate(orders))
    v1 = f'Table("big", metadata, Column("id", Integer, primary_key=True), Column("n", Integer), Column("a", String(32)), ' \
         f'Column("b", String(32)), {idx})'
    my.migrate(v1)
    my.sql("INSERT INTO big SELECT seq, seq, md5(seq), md5(seq + 1) FROM seq_1_to_60000")
    before = my.state()
    system = my.system(v1.replace('Column("n", Integer)', 'Column("n", BigInteger)'))
    conn = system.dialect.connect(write=True)
    try:  # what the run spends before its first statement: the dump of the table
        started = time.monotonic()
        take_dump(conn, my.dbname, ["big"], tmp_path / "probe.jsonl")
        dump_s = time.monotonic() - started
    finally:
        conn.close()
    started = time.monotonic()  # and what it spends before that: the comparison, its checks and proof (a dry run)
    system.execute_auto_migration(dry_run=True, create_backup=False)
    checks_s = time.monotonic() - started
    exceeded = "SHOW GLOBAL STATUS LIKE 'max_statement_time_exceeded'"
    aborted = int(my.sql(exceeded)[0][1])
    with pytest.raises(ExecutionTimeout, match="time limit during statement 1 of 1"):
        system.execute_auto_migration(timeout_ms=int((checks_s + dump_s * 1.3 + 0.2) * 1000), create_backup=False)
    assert int(my.sql(exceeded)[0][1]) > aborted  # the server aborted the ALTER itself
    assert my.state() == before
    system.execute_auto_migration(create_backup=False)  # with the default limit it goes through
    assert my.sql("SELECT count(*), sum(n) FROM big") == [(60000, 1800030000)]


def test_automatic_restore_keeps_rows_other_sessions_wrote_meanwhile(my):
    """The restore put the dumped tables back whole: rows another session inserted while the run was
    going were silently gone. Now committed steps are undone in place where they can be (an added column
    dropped again) and tables the run never changed are left alone."""
    v1 = """
Table("accounts", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))
Table("big", metadata, Column("id", Integer, primary_key=True), Column("born", Text), CheckConstraint("born <> 'x'", name="ck_big"))
Table("calm", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))
"""
    my.migrate(v1)
    my.sql("INSERT INTO accounts VALUES (1, 'ann')")
    unchecked(my, "INSERT INTO big VALUES (1, 'x')")
    v2 = v1.replace('Column("name", String(20)))', 'Column("name", String(20)), Column("email", String(50)))').replace(
        'Column("born", Text)', 'Column("born", String(50))').replace('Column("n", Integer)', 'Column("n", BigInteger)')
    system = my.system(v2)

    def meanwhile(done, total, text):
        if text.startswith("running statement 2"):  # the accounts ALTER has committed; big's fails next
            my.sql("INSERT INTO accounts (id, name) VALUES (2, 'bob')")
            my.sql("INSERT INTO calm VALUES (5, 5)")
    with pytest.raises(MigrationError, match=r"undone in place by their reverse statements, rows written meanwhile kept: "
                                             r"accounts \(add column accounts\.email"):
        system.execute_auto_migration(create_backup=False, progress=meanwhile)
    assert my.sql("SELECT id, name FROM accounts ORDER BY id") == [(1, "ann"), (2, "bob")]
    assert my.sql("SELECT id, n FROM calm") == [(5, 5)]
    assert my.system(v1).check_migration_status().migration_needed is False
