"""Tester findings F3 and F5 on MariaDB, where DDL commits statement by statement.

F3: the automatic restore after a failed run put back the dump's whole table set, dropping tables
other sessions had created while the run went on, and reloaded touched tables from the dump, losing
rows other sessions wrote meanwhile. A restore now drops only what the run created and undoes the
committed steps in place (their reverse SQL, latest first), so other sessions' tables and rows stay.

F5: after a kill -9 during `migrate`, the next command's recovery reloaded the touched tables from the
dump taken before the run, losing rows the application wrote between the crash and the recovery. It
now undoes the committed steps in place too, the statement that was running when the process died
included if the server finished it; the dump is only the fallback, and then the message names the
tables whose later rows it replaced.

The run is held at its second ALTER by another session's open transaction on that table (a real
metadata lock), so each fault happens at a known point."""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from helpers_core import CLI, ROOT
from migration_core.errors import MigrationError
from servers import my  # noqa: F401 - fixture

V1 = """
Table("t1", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))
Table("t2", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))
"""
V2 = """
Table("t1", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)), Column("a", Integer))
Table("t2", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)), Column("b", Integer))
"""


@contextlib.contextmanager
def _holding(my, table: str):
    """An open transaction that has read `table`: an ALTER of it waits for the metadata lock."""
    engine = create_engine(my.url, poolclass=NullPool)
    conn = engine.connect()
    try:
        conn.exec_driver_sql(f"SELECT * FROM {table}").fetchall()  # SQLAlchemy began a transaction
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()
        engine.dispose()


def _waiting_alter(my, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = my.sql("SELECT id FROM information_schema.processlist WHERE db = %s AND info LIKE 'ALTER TABLE t2 %%' "
                      "AND state LIKE '%%metadata lock%%'", (my.dbname,))
        if rows:
            return rows[0][0]
        time.sleep(0.01)
    raise AssertionError("the run never waited at its ALTER of t2")


def _columns(my, table: str) -> list[str]:
    return [r[0] for r in my.sql("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                                 "ORDER BY ordinal_position", (my.dbname, table))]


def _start(my):
    my.migrate(V1)
    my.sql("INSERT INTO t1 VALUES (1, 'a'), (2, 'b')")
    my.sql("INSERT INTO t2 VALUES (1, 'x')")
    system = my.system(V2)
    plan = system.preview_diff().sql
    alters = [s for s in plan if s.startswith("ALTER TABLE")]
    assert [s.split()[2] for s in alters] == ["t1", "t2"], plan  # t1 first, then t2
    return system


def test_failed_run_keeps_other_sessions_tables_and_rows(my):
    system = _start(my)
    errors: list[BaseException] = []
    with _holding(my, "t2"):
        runner = threading.Thread(target=lambda: _catch(errors, lambda: system.execute_auto_migration(
            create_backup=False, timeout_ms=6000)))
        runner.start()
        _waiting_alter(my)
        # Meanwhile, other sessions go on: a new table, and rows in the table the run already altered.
        my.sql("CREATE TABLE audit (id int PRIMARY KEY, what varchar(20))")
        my.sql("INSERT INTO audit VALUES (1, 'made meanwhile')")
        my.sql("INSERT INTO t1 (id, name, a) VALUES (3, 'written then', 7)")
        my.sql("UPDATE t1 SET name = 'changed then' WHERE id = 1")
        runner.join(120)
    assert len(errors) == 1 and isinstance(errors[0], MigrationError), errors
    message = str(errors[0])
    print(message)
    assert my.sql("SELECT * FROM audit") == [(1, "made meanwhile")]
    assert _columns(my, "t1") == ["id", "name"] and _columns(my, "t2") == ["id", "name"]
    assert my.sql("SELECT id, name FROM t1 ORDER BY id") == [(1, "changed then"), (2, "b"), (3, "written then")]
    # What the message says is what happened: undone in place, nothing reloaded from the dump, nothing lost.
    assert "undone in place" in message and "t1" in message, message
    assert "restored from the dump" not in message and "no row lost" in message, message
    assert "values written meanwhile into what the run had added went with it: t1 (add column t1.a" in message, message


def _catch(errors: list, fn) -> None:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - handed to the test
        errors.append(exc)


def _cli(my, models: str, *args: str, **kw):
    return subprocess.Popen([CLI, "--database-url", my.url, "--models", models, "--backup-dir", str(my.backups), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, **kw)


@pytest.mark.parametrize("server_finishes", [False, True], ids=["statement-stopped", "statement-finished-by-server"])
def test_recovery_after_kill9_undoes_in_place_and_keeps_rows_written_since(my, server_finishes):
    _start(my)
    v1, v2 = my.models(V1), my.models(V2)
    with _holding(my, "t2") as holder:
        proc = _cli(my, v2, "migrate")
        _waiting_alter(my)
        proc.kill()  # SIGKILL: no handler runs, the dump and a `running` row stay
        proc.communicate(timeout=30)
        if server_finishes:
            holder.rollback()  # the lock goes: the server finishes the dead client's ALTER
            deadline = time.monotonic() + 30
            while "b" not in _columns(my, "t2") and time.monotonic() < deadline:
                time.sleep(0.01)
            assert "b" in _columns(my, "t2")
        # The application writes between the crash and the next command.
        my.sql("INSERT INTO t1 (id, name, a) VALUES (3, 'after the crash', 1)")
        my.sql("INSERT INTO t2 (id, name) VALUES (2, 'after the crash')")
        my.sql("UPDATE t1 SET name = 'edited later' WHERE id = 2")
        if not server_finishes:
            holder.rollback()
    assert list(my.backups.glob("run-*.affected.jsonl"))
    nxt = _cli(my, v1, "migrate")
    out, err = nxt.communicate(timeout=120)
    assert nxt.returncode == 0, (out, err)
    assert _columns(my, "t1") == ["id", "name"] and _columns(my, "t2") == ["id", "name"]
    assert my.sql("SELECT id, name FROM t1 ORDER BY id") == [(1, "a"), (2, "edited later"), (3, "after the crash")]
    assert my.sql("SELECT id, name FROM t2 ORDER BY id") == [(1, "x"), (2, "after the crash")]
    [(status, note)] = my.sql("SELECT status, error FROM _migration_history WHERE kind = 'migrate' AND status <> 'succeeded'")
    print(note)
    assert status == "failed" and "undone in place" in note and "restored from" not in note, note
    assert not list(my.backups.glob("run-*.affected.jsonl"))


def test_a_step_without_reverse_falls_back_to_the_dump_and_names_what_it_replaced(my):
    """Dropping a column has no reverse (its values are gone): that table alone comes back from the dump,
    and the message says that rows written to it during the run were replaced; the other is undone in place."""
    my.migrate(V1.replace('Column("name", String(20)))', 'Column("name", String(20)), Column("old", Integer))', 1))
    my.sql("INSERT INTO t1 VALUES (1, 'a', 10), (2, 'b', 20)")
    my.sql("INSERT INTO t2 VALUES (1, 'x')")
    body = V1.replace('Column("name", String(20)))', 'Column("name", String(20)), Column("z", Integer))')  # t1 drops old, t2 adds z
    system = my.system(body)
    assert [s.split()[2] for s in system.preview_diff().sql if s.startswith("ALTER")] == ["t1", "t2"]
    errors: list[BaseException] = []
    with _holding(my, "t2"):
        runner = threading.Thread(target=lambda: _catch(errors, lambda: system.execute_auto_migration(
            create_backup=False, allow_destructive=True, timeout_ms=6000)))
        runner.start()
        _waiting_alter(my)
        my.sql("INSERT INTO t1 (id, name) VALUES (3, 'written then')")
        my.sql("CREATE TABLE audit (id int)")
        runner.join(120)
    message = str(errors[0])
    print(message)
    assert my.sql("SELECT id, name, old FROM t1 ORDER BY id") == [(1, "a", 10), (2, "b", 20)]  # the dump's rows: 3 replaced
    assert my.sql("SELECT count(*) FROM audit") == [(0,)]
    assert re.search(r"restored from the dump taken before the run: t1 \[t1: step '[^']*drop column t1\.old' has no reverse\]",
                     message), message
    assert "rows other sessions wrote to it after that dump were replaced by the dump's (the state found was saved as backup " \
        in message, message
    saved = re.search(r"the state found was saved as backup (\S+)\)", message)[1]
    assert (my.backups / f"{saved}.json").exists()  # row 3 is in it
    assert "nothing lost" not in message and "no row lost" not in message and "nothing changed" not in message, message
