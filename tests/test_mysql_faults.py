"""What production does to a MariaDB migration, for real: a killed process (kill -9, SIGINT, SIGTERM),
a migration session killed by the server (`KILL CONNECTION`), a restore killed part way, a view whose
DEFINER the app's user may not set, and leftovers (dumps, scratch databases). The 20+ trials per kind
are in bench/mysql_fault_trials.py; here one of each kind runs, on a smaller table."""

from __future__ import annotations

import contextlib
import json
import random
import re
import signal
import subprocess
import time

import anyio
import pytest
from sqlalchemy.engine import make_url

from migration_core import MigrationSettings, execute_startup_migration
from migration_core.dialects.mysql.scratch import scratch_database

from helpers_core import CLI, ROOT
from mysql_trials import CONTENT, FAULTS, Trials, cli, next_command_for, says_put_back
from servers import ServerProject, my, require_server  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    require_server("mysql")
    return Trials(tmp_path_factory.mktemp("trials"), rows=60_000)


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_during_alter_ends_wholly_old_or_new_after_the_next_command(trials, fault):
    index = FAULTS.index(fault)
    outcome = trials.run(fault, index, random.Random(), next_command_for(index))
    print(outcome)
    assert outcome.after_next in ("old", "new")
    assert outcome.interrupted_run in ("failed", "succeeded", "rolled_back")  # it may have finished before the fault
    if fault in ("conn", "sigint", "sigterm") and outcome.exit_code in (1, 130, 143):
        assert outcome.before_next == "old" and says_put_back(outcome.detail), outcome.detail
    if fault == "sigint" and outcome.exit_code > 0:
        assert outcome.exit_code == 130
    if fault == "sigterm" and outcome.exit_code > 0:
        assert outcome.exit_code == 143


def test_kill9_mid_plan_status_and_health_say_so_and_startup_recovers(trials):
    """kill -9 once the first ALTER has committed: half-migrated until the next command that takes the lock;
    status and health report it with the way out; the startup migration recovers, then migrates."""
    p = trials._project("k9status", trials.rows)
    try:
        content = p.sql(CONTENT)
        proc = subprocess.Popen([CLI, "--database-url", p.url, "--models", trials.new_models, "--backup-dir", str(p.backups),
                                 "migrate"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        trials._wait_for_alter(p, proc)
        deadline = time.monotonic() + 60  # until the first ALTER has committed (its progress is recorded)
        while not re.search(r"\b1 of \d+", p.sql("SELECT error FROM _migration_history")[0][0] or "") and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)
        assert trials.state(p) == "half"
        [dump] = p.backups.glob("run-*.affected.jsonl")
        status = cli(p, trials.new_models, "--json", "status")
        warning = json.loads(status.stdout)["warnings"][0]
        assert "interrupted" in warning and "half-migrated" in warning and dump.name in warning, warning
        health = cli(p, trials.new_models, "--json", "health")
        check = {c["name"]: c for c in json.loads(health.stdout)["checks"]}["interrupted_migration"]
        assert check["status"] == "fail" and "restores them from the dump" in check["detail"]
        assert health.returncode == 1 and "Traceback" not in health.stderr + status.stderr

        settings = MigrationSettings(database_url=p.url, models=trials.new_models, backup_dir=p.backups)
        result = execute_startup_migration(settings)
        assert result.success and result.operations_executed == trials.statements, result.error
        assert trials.state(p) == "new" and p.sql(CONTENT) == content
        rows = p.sql("SELECT status, error FROM _migration_history ORDER BY started_at")
        assert [r[0] for r in rows] == ["failed", "succeeded"]
        # A type widened has no reverse (narrowing back could fail): the dump puts those tables back, and the note says so.
        assert "recovered: restored from the dump taken before the run: big" in rows[0][1], rows[0][1]
        assert "has no reverse" in rows[0][1] and "as they were before the migration" in rows[0][1], rows[0][1]
        assert not dump.exists()
        reasons = [json.loads(m.read_text())["reason"] for m in p.backups.glob("*.json")]
        assert "pre-recovery" in reasons  # the half-migrated state was saved before it was replaced
    finally:
        p.drop()


NOTES = 'Table("notes", metadata, Column("id", Integer, primary_key=True), Column("body", String(40)))\n'


def _models_a_and_b(tmp_path) -> tuple[str, str]:
    """Migration A's models (the trials' old schema) and B's (their new one), both with `notes`."""
    from helpers_core import write_models
    from mysql_trials import NEW, OLD
    from projects import HEADER

    return write_models(tmp_path, OLD + NOTES, header=HEADER), write_models(tmp_path, NEW + NOTES, header=HEADER)


def test_rollback_after_a_kill9_undoes_the_interrupted_run_and_nothing_else(trials, tmp_path):
    """F6: migration A succeeds, the app writes rows, migration B is kill -9'd after its first ALTER
    committed. `rollback` (as the README's troubleshooting says) undoes B only: the dry run and the
    terminal's question say so, A and the rows written since it stay; a second rollback undoes A."""
    a_models, b_models = _models_a_and_b(tmp_path)
    p = trials._project("k9rollback", trials.rows)
    try:
        a = json.loads(cli(p, a_models, "--json", "migrate").stdout)
        assert a["migration_id"] and a["backup_id"], a
        p.sql("INSERT INTO notes VALUES (1, 'written after A'), (2, 'also after A')")
        content = p.sql(CONTENT)
        b_id = _kill9_after_first_alter(trials, p, b_models)

        dry = cli(p, b_models, "rollback", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"undoes:   the interrupted migration {b_id}" in dry.stdout, dry.stdout
        assert f"nothing else is rolled back: run rollback again afterwards to undo migration {a['migration_id']}" in dry.stdout
        assert "restore:" not in dry.stdout and a["backup_id"] not in dry.stdout, dry.stdout
        doc = json.loads(cli(p, b_models, "--json", "rollback", "--dry-run").stdout)
        assert doc["backup"] is None and doc["undoes_migration"]["id"] == b_id
        assert [(r["migration"]["id"], r["undo"], r["next_rollback"]) for r in doc["interrupted"]] == [(b_id, True, a["migration_id"])]
        from cli_process import project_env, run_in_terminal

        asked = run_in_terminal("rollback", env=project_env(p, b_models), answer="n")  # the question names B, not A's backup
        assert asked.code == 3 and f"Undo the interrupted migration {b_id}?" in asked.screen, asked.screen
        assert "Restore backup" not in asked.screen and "nothing was changed" in asked.screen
        result, questions = anyio.run(_mcp_rollback_declined, p, b_models)  # the MCP tool asks the same
        assert result.is_error and "declined" in result.content[0].text
        assert len(questions) == 1 and f"by undoing the interrupted migration {b_id}?" in questions[0], questions
        assert f"run rollback again afterwards to undo migration {a['migration_id']}" in questions[0]
        assert p.sql("SELECT status FROM _migration_history WHERE id = %s", (b_id,)) == [("running",)]  # nothing changed so far

        done = cli(p, b_models, "--json", "rollback", "--yes")
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        result = json.loads(done.stdout)
        assert result["backup_id"] is None and result["migration_id"] == b_id, result
        # (another process killed on this server may have left a scratch database, which recovery also drops and names)
        assert result["next_rollback"] == a["migration_id"] and any(b_id in note for note in result["recovered"]), result
        assert p.sql(CONTENT) == content and trials.old["big"] == _creates_one(p, "big")  # B undone, every row kept
        assert p.sql("SELECT id, body FROM notes ORDER BY id") == [(1, "written after A"), (2, "also after A")]  # A stays
        history = dict(p.sql("SELECT id, status FROM _migration_history WHERE kind = 'migrate'"))
        assert history == {a["migration_id"]: "succeeded", b_id: "failed"}, history
        assert list(p.backups.glob("run-*.affected.jsonl")) == []

        text = cli(p, b_models, "rollback", "--dry-run")  # now the next one is A, as promised
        assert f"restore:  backup {a['backup_id']}" in text.stdout and "interrupted" not in text.stdout, text.stdout
        again = cli(p, b_models, "rollback", "--yes")
        assert again.returncode == 0 and f"undid migration {a['migration_id']}" in again.stdout, again.stderr
        assert "notes" not in p.tables()
    finally:
        p.drop()


def _kill9_after_first_alter(trials, p, models: str) -> str:
    """Start `migrate` to `models` and kill -9 it once its first ALTER has committed; its run id."""
    proc = subprocess.Popen([CLI, "--database-url", p.url, "--models", models, "--backup-dir", str(p.backups), "migrate"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    trials._wait_for_alter(p, proc)
    deadline = time.monotonic() + 60  # until the first ALTER has committed: half-migrated
    run_id = None
    while time.monotonic() < deadline:
        rows = p.sql("SELECT id, error FROM _migration_history WHERE status = 'running'")
        if rows and re.search(r"\b1 of \d+", rows[0][1] or ""):
            run_id = rows[0][0]
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run_id, "the run's first statement never committed"
    time.sleep(0.5)
    assert "bigint" in p.sql("SHOW CREATE TABLE big")[0][1]  # half-migrated: big's ALTER took effect
    return run_id


def test_rollback_to_a_given_backup_after_a_kill9_says_first_that_it_undoes_the_run(trials, tmp_path):
    """With --backup-id the rollback does as asked (restores that backup), and says first, in the dry run
    and in its result, that it undoes the interrupted run."""
    a_models, b_models = _models_a_and_b(tmp_path)
    p = trials._project("k9backupid", trials.rows)
    try:
        a = json.loads(cli(p, a_models, "--json", "migrate").stdout)
        b_id = _kill9_after_first_alter(trials, p, b_models)
        dry = cli(p, b_models, "rollback", "--dry-run", "--backup-id", a["backup_id"])
        assert dry.returncode == 0, dry.stderr
        lines = dry.stdout.splitlines()
        assert lines[1].startswith(f"first:    undoes the interrupted migration {b_id}"), dry.stdout
        assert lines[2].startswith(f"restore:  backup {a['backup_id']}"), dry.stdout
        done = cli(p, b_models, "rollback", "--yes", "--backup-id", a["backup_id"])
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"first, migration {b_id} interrupted after 1 of"), done.stdout
        assert f"rolled back to backup {a['backup_id']} (undid migration {a['migration_id']})" in done.stdout
        assert "notes" not in p.tables() and trials.state(p) == "old"
        history = dict(p.sql("SELECT id, status FROM _migration_history WHERE kind = 'migrate'"))
        assert history == {a["migration_id"]: "rolled_back", b_id: "failed"}, history
    finally:
        p.drop()


def test_mcp_rollback_after_a_kill9_runs_what_the_question_showed(trials, tmp_path):
    """Through the MCP tool: the user accepts undoing the interrupted run B; if another command put B right
    while the question was open, the tool refuses rather than go on to undo A (what it would do now)."""
    from mcp import Client
    from mcp_types import ElicitResult

    from migration_core import AutoMigrationSystem
    from server.mcp_server import build_server

    a_models, b_models = _models_a_and_b(tmp_path)
    p = trials._project("k9mcp", trials.rows)
    try:
        a = json.loads(cli(p, a_models, "--json", "migrate").stdout)
        b_id = _kill9_after_first_alter(trials, p, b_models)
        system = AutoMigrationSystem(MigrationSettings(database_url=p.url, models=b_models, backup_dir=p.backups))

        async def call(meanwhile, run_id):
            async def accept(context, params):
                assert f"undoing the interrupted migration {run_id}?" in params.message, params.message
                meanwhile()
                return ElicitResult(action="accept", content={"confirm": True})

            # legacy: the question inside the call (in auto mode a changed preview is asked again on the retry)
            async with Client(build_server(system, run_startup_migration=False), mode="legacy", elicitation_callback=accept) as client:
                return await client.call_tool("rollback", {})

        def other_command():  # e.g. a server start: it recovers B under the lock
            r = cli(p, a_models, "migrate")
            assert r.returncode == 0, r.stderr

        raced = anyio.run(call, other_command, b_id)
        assert raced.is_error and f"interrupted migration {b_id} shown before is no longer waiting" in raced.content[0].text
        assert "notes" in p.tables() and p.sql("SELECT count(*) FROM _migration_history WHERE kind = 'rollback'") == [(0,)]
        assert p.sql("SELECT status FROM _migration_history WHERE id = %s", (a["migration_id"],)) == [("succeeded",)]

        b2 = _kill9_after_first_alter(trials, p, b_models)  # killed again: now the user's yes goes through
        done = anyio.run(call, lambda: None, b2)
        assert not done.is_error, done.content[0].text
        result = done.structured_content
        assert result["backup_id"] is None and result["migration_id"] == b2 and result["next_rollback"] == a["migration_id"]
        assert "notes" in p.tables() and "bigint" not in p.sql("SHOW CREATE TABLE big")[0][1]
    finally:
        p.drop()


async def _mcp_rollback_declined(p, models: str):
    from mcp import Client
    from mcp_types import ElicitResult

    from migration_core import AutoMigrationSystem
    from server.mcp_server import build_server

    questions: list[str] = []

    async def decline(context, params):
        questions.append(params.message)
        return ElicitResult(action="decline")

    system = AutoMigrationSystem(MigrationSettings(database_url=p.url, models=models, backup_dir=p.backups))
    async with Client(build_server(system, run_startup_migration=False), mode="auto", elicitation_callback=decline) as client:
        result = await client.call_tool("rollback", {})
    return result, questions


def _creates_one(p, table: str) -> str:
    return re.sub(r" AUTO_INCREMENT=[0-9]+", "", p.sql(f"SHOW CREATE TABLE `{table}`")[0][1])


def test_rollback_killed_part_way_is_undone_from_its_safety_backup(trials):
    """KILL CONNECTION of the restoring session in the middle of a rollback: the state before the rollback
    comes back from the rollback's own safety backup, and the audit trail survives."""
    p = trials._project("rbkill", trials.rows)
    try:
        assert cli(p, trials.new_models, "migrate").returncode == 0
        p.sql("UPDATE big SET note = 'after the migration' WHERE id = 1")
        content, creates = p.sql(CONTENT), trials.state(p)
        proc = subprocess.Popen([CLI, "--database-url", p.url, "--models", trials.new_models, "--backup-dir", str(p.backups),
                                 "rollback", "--yes"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        killed = []
        deadline = time.monotonic() + 120
        while not killed and proc.poll() is None and time.monotonic() < deadline:
            for (cid,) in p.sql("SELECT id FROM information_schema.processlist WHERE db = %s AND info LIKE 'INSERT INTO `big`%%'",
                                (p.dbname,)):
                p.sql(f"KILL CONNECTION {int(cid)}")
                killed.append(cid)
            time.sleep(0.002)
        out, err = proc.communicate(timeout=300)
        assert killed, "the restore ended before it could be killed"
        assert proc.returncode == 1, (out, err)
        assert "rollback to backup" in err and "put back from its safety backup" in err and "nothing changed" in err, err
        assert "Traceback" not in err
        assert trials.state(p) == creates == "new" and p.sql(CONTENT) == content
        history = p.sql("SELECT kind, status FROM _migration_history ORDER BY started_at")
        assert history == [("migrate", "succeeded"), ("rollback", "failed")], history
    finally:
        p.drop()


def test_rollback_of_a_view_with_a_foreign_definer_is_refused_before_anything_changes(my):
    """The app's user may not create a view for another DEFINER: a restore would fail at the view after
    dropping and reloading every table. It is refused up front; tables, view and history are untouched."""
    from secrets import token_hex

    user, secret = f"mr_{token_hex(4)}", token_hex(8)
    my.sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{secret}'")
    try:
        my.sql(f"GRANT ALL ON `{my.dbname}`.* TO '{user}'@'%%'")
        my.sql(f"GRANT ALL ON `\\_mig\\_scratch\\_%%`.* TO '{user}'@'%%'")
        url = make_url(my.url).set(username=user, password=secret).render_as_string(hide_password=False)
        v1 = my.models('Table("t", metadata, Column("id", Integer, primary_key=True), Column("a", Integer))')
        v2 = my.models('Table("t", metadata, Column("id", Integer, primary_key=True), Column("a", Integer), Column("b", Integer))')

        def run(models, *args):
            return subprocess.run([CLI, "--database-url", url, "--models", models, "--backup-dir", str(my.backups), *args],
                                  capture_output=True, text=True, cwd=ROOT, timeout=120)

        assert run(v1, "migrate").returncode == 0
        my.sql("INSERT INTO t VALUES (1, 10)")
        my.sql("CREATE DEFINER=`root`@`localhost` VIEW v AS SELECT id, a FROM t")  # by an administrator
        assert run(v2, "migrate").returncode == 0
        before = (my.state(), my.sql("SHOW CREATE VIEW v")[0][1], my.sql("SELECT id, kind, status FROM _migration_history"))
        r = run(v2, "rollback", "--yes")
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "DEFINER is root@localhost" in r.stderr and "SET USER" in r.stderr and "nothing was changed" in r.stderr, r.stderr
        assert (my.state(), my.sql("SHOW CREATE VIEW v")[0][1], my.sql("SELECT id, kind, status FROM _migration_history")) == before
    finally:
        my.sql(f"DROP USER '{user}'@'%%'")


def test_leftover_scratch_databases_and_dumps_are_removed_by_the_next_locked_run(my):
    """A scratch database whose owner session died (a killed `status`) goes; one whose owner lives stays;
    a dump whose run has finished goes."""
    system = my.system('Table("t", metadata, Column("id", Integer, primary_key=True))')
    system.execute_auto_migration()
    [entry] = system.get_migration_history()
    stale_dump = my.backups / f"run-{entry.id}.affected.jsonl"  # a run that succeeded but died before removing it
    stale_dump.write_text("{}\n")

    dead = system.dialect.connect(write=False)
    orphan_cm = scratch_database(dead, charset_of=my.dbname)
    orphan = orphan_cm.__enter__()  # the owner is killed inside the block: the database stays behind
    dead_id = dead.execute("SELECT CONNECTION_ID()").scalar()
    my.sql(f"KILL CONNECTION {int(dead_id)}")
    alive = system.dialect.connect(write=False)
    live_cm = scratch_database(alive, charset_of=my.dbname)
    live = live_cm.__enter__()
    try:
        schemas = {r[0] for r in my.sql("SELECT schema_name FROM information_schema.schemata")}
        assert {orphan, live} <= schemas and orphan.startswith(f"_mig_scratch_{dead_id}_")
        result = system.execute_auto_migration()  # takes the lock: leftovers go first
        assert result.success
        schemas = {r[0] for r in my.sql("SELECT schema_name FROM information_schema.schemata")}
        assert orphan not in schemas and live in schemas
        assert not stale_dump.exists()
    finally:
        live_cm.__exit__(None, None, None)
        alive.close()
        with contextlib.suppress(Exception):  # the owner's connection is dead: its cleanup cannot run
            orphan_cm.__exit__(None, None, None)
        dead.close()
    assert live not in {r[0] for r in my.sql("SELECT schema_name FROM information_schema.schemata")}


def test_a_killed_status_leaves_a_scratch_database_that_the_next_migrate_drops(my):
    """The real thing: `status` kill -9'd while it builds the models in its scratch database."""
    many = "\n".join(f'Table("k9s_t{i}", metadata, Column("id", Integer, primary_key=True), Column("a", String(20)), '
                     f'Index("ix_k9s_t{i}_a", "a"))' for i in range(150))
    models = my.models(many)
    proc = subprocess.Popen([CLI, "--database-url", my.url, "--models", models, "status"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    found = None
    deadline = time.monotonic() + 60
    while found is None and time.monotonic() < deadline and proc.poll() is None:
        # this status's own scratch database: the one whose owner runs these models' DDL (other processes on
        # the server may hold scratch databases of their own)
        rows = my.sql("SELECT db FROM information_schema.processlist WHERE db LIKE '\\_mig\\_scratch\\_%%' "
                      "AND info LIKE '%%k9s\\_t%%'")
        found = rows[0][0] if rows else None
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if found is None or not my.sql("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (found,)):
        pytest.skip(f"status finished before it could be killed inside its scratch database ({found})")
    # The server goes on with the dead client's statement (the models' DDL is one batch) and holds its lease
    # until it ends; the scratch database is an orphan from then on.
    owner = int(found.split("_")[3])
    deadline = time.monotonic() + 60
    while my.sql("SELECT 1 FROM information_schema.processlist WHERE id = %s", (owner,)) and time.monotonic() < deadline:
        time.sleep(0.05)
    system = my.system('Table("t", metadata, Column("id", Integer, primary_key=True))')
    assert system.execute_auto_migration().success
    assert not my.sql("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (found,))
