"""Ctrl-C during a first `status` on a server, while the server builds the models in scratch (in a worker
thread, `target_cache.normalized_target`): the process ends at once with 130 instead of waiting for the
rest of the models' DDL. What it leaves is what a killed process leaves: nothing on PostgreSQL (the
session's transaction is rolled back), a scratch database on MariaDB whose lease ends with the cut
session, dropped by the next migrate (tests/test_mysql_faults.py covers that cleanup)."""

from __future__ import annotations

import signal
import subprocess
import time


from cli_process import project_env
from helpers_core import CLI
from servers import server  # noqa: F401 - fixture

TABLES = "".join(
    f'Table("ctrlc_t{i}", metadata, Column("id", Integer, primary_key=True), '
    + ", ".join(f'Column("c{j}", String(50), server_default="x")' for j in range(10))
    + (f', Column("ref", Integer, ForeignKey("ctrlc_t{i - 1}.id"))' if i else "") + f', Index("ix_ctrlc_t{i}_c0", "c0"))\n'
    for i in range(600))

BUILDING = {  # the server is running these models' scratch DDL (other tests' processes may be building theirs)
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                  "AND query LIKE 'CREATE %%' AND query LIKE '%%ctrlc\\_t%%'",
    "mysql": "SELECT count(*) FROM information_schema.processlist WHERE db LIKE '\\_mig\\_scratch\\_%%' AND id <> CONNECTION_ID() "
             "AND info LIKE 'CREATE %%' AND info LIKE '%%ctrlc\\_t%%'",
}


def test_ctrl_c_during_a_cold_status_ends_at_once(server):  # noqa: F811
    env = project_env(server, server.models(TABLES))
    proc = subprocess.Popen([CLI, "status"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not server.sql(BUILDING[server.kind])[0][0]:
            assert proc.poll() is None and time.monotonic() < deadline, "status ended before the scratch DDL was seen"
            time.sleep(0.01)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and err.strip().endswith("interrupted"), (proc.returncode, err)
    assert "Traceback" not in err and out == ""
    # the rest of 600 tables' DDL takes seconds (PostgreSQL 2-3 s, MariaDB 4-5 s, more on a loaded machine);
    # giving up takes a fraction of one
    assert took < 1.5, f"status took {took:.1f} s to end after Ctrl-C"
