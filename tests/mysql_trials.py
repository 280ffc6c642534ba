"""Fault trials on a real MariaDB server: a `migration-mcp migrate` process is hit while it runs an
`ALTER` on a table big enough to take a moment, then the next command runs, and the database must be
wholly old or wholly new with every row kept. Used by tests/test_mysql_faults.py (a few trials) and
bench/mysql_fault_trials.py (20+ of each kind).

Faults: `kill9` (SIGKILL: nothing in the process runs; the server may even finish the ALTER), `conn`
(`KILL CONNECTION` of the migration's session from another session), `sigint`, `sigterm`.
The plan has three statements: one ALTER of `big` (two column type changes that copy it, and an index),
one of `big2`, and the new table; a fault during or between them leaves a really half-migrated schema
unless something puts it right.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from helpers_core import CLI, ROOT, write_models
from projects import HEADER
from servers import ServerProject

OLD = """
Table("big", metadata, Column("id", Integer, primary_key=True), Column("name", String(64), nullable=False),
      Column("n", Integer), Column("m", Integer), Column("note", Text))
Table("big2", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))
"""
NEW = """
Table("big", metadata, Column("id", Integer, primary_key=True), Column("name", String(64), nullable=False),
      Column("n", BigInteger), Column("m", BigInteger), Column("note", Text), Index("ix_big_name", "name"))
Table("big2", metadata, Column("id", Integer, primary_key=True), Column("n", BigInteger))
Table("extra", metadata, Column("id", Integer, primary_key=True), Column("big_id", Integer))
"""
CONTENT = ("SELECT count(*), sum(n), sum(m), sum(crc32(concat(id, name, note))), (SELECT count(*) FROM big2), "
           "(SELECT sum(n) FROM big2) FROM big")
FAULTS = ("kill9", "conn", "sigint", "sigterm")
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=[0-9]+")


@dataclass
class Outcome:
    fault: str
    delay_ms: int
    next_command: str
    exit_code: int  # of the faulted migrate process
    before_next: str  # "old", "new" or "half", read right after the fault (and after the process ended)
    after_next: str  # "old" or "new" (anything else fails the trial)
    interrupted_run: str  # the faulted run's history status after the next command
    detail: str = ""


def _creates(project: ServerProject) -> dict[str, str]:
    out = {}
    for table in project.tables():
        out[table] = _AUTO_INCREMENT.sub("", project.sql(f"SHOW CREATE TABLE `{table}`")[0][1])
    return out


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_")}


def cli(project: ServerProject, models: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "--database-url", project.url, "--models", models, "--backup-dir", str(project.backups), *args],
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=timeout)


class Trials:
    """Reference schemas once; then `run(fault, ...)` per trial, each on a fresh database."""

    def __init__(self, tmp: Path, rows: int = 150_000):
        self.tmp = tmp
        self.rows = rows
        self.old_models = write_models(tmp, OLD, header=HEADER)
        self.new_models = write_models(tmp, NEW, header=HEADER)
        ref = self._project("ref", 10)
        try:
            self.old = _creates(ref)
            r = cli(ref, self.new_models, "--json", "migrate", "--no-backup")
            assert r.returncode == 0, r.stderr
            self.statements = json.loads(r.stdout)["operations_executed"]
            self.new = _creates(ref)
            assert set(self.new) == {"big", "big2", "extra"} and self.old["big"] != self.new["big"]
        finally:
            ref.drop()

    def _project(self, name: str, rows: int) -> ServerProject:
        tmp = self.tmp / name
        tmp.mkdir(parents=True, exist_ok=True)
        p = ServerProject("mysql", tmp)
        # The old schema is made by hand, not by the tool: no earlier migration a rollback could undo.
        p.sql("CREATE TABLE big (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, n INT, m INT, note TEXT)")
        p.sql(f"INSERT INTO big (name, n, m, note) SELECT md5(seq), seq, seq * 7, repeat(md5(seq), 4) FROM seq_1_to_{rows}")
        p.sql("CREATE TABLE big2 (id INT NOT NULL PRIMARY KEY, n INT)")
        p.sql(f"INSERT INTO big2 SELECT seq, seq * 3 FROM seq_1_to_{rows}")
        return p

    def state(self, p: ServerProject) -> str:
        creates = _creates(p)
        return "old" if creates == self.old else "new" if creates == self.new else "half"

    def run(self, fault: str, index: int, rng: random.Random, next_command: str) -> Outcome:
        p = self._project(f"{fault}{index}", self.rows)
        try:
            return self._run(p, fault, rng, next_command)
        finally:
            p.drop()

    def _run(self, p: ServerProject, fault: str, rng: random.Random, next_command: str) -> Outcome:
        content = p.sql(CONTENT)
        proc = subprocess.Popen([CLI, "--database-url", p.url, "--models", self.new_models, "--backup-dir", str(p.backups),
                                 "migrate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
        session = self._wait_for_alter(p, proc)
        delay = rng.uniform(0, 1.5 * self.rows / 150_000)  # big's ALTER (two type changes, an index) takes about that
        time.sleep(delay)
        if fault == "kill9":
            proc.send_signal(signal.SIGKILL)
        elif fault == "sigint":
            proc.send_signal(signal.SIGINT)
        elif fault == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:  # the server drops the migration's session, whatever it is doing
            running = [r[0] for r in p.sql("SELECT id FROM information_schema.processlist WHERE db = %s AND info LIKE 'ALTER%%'",
                                           (p.dbname,))]
            for cid in running or [session]:
                try:
                    p.sql(f"KILL CONNECTION {int(cid)}")
                except Exception:  # noqa: BLE001 - it ended meanwhile
                    pass
        out, err = proc.communicate(timeout=300)
        where = f"{fault} +{delay * 1000:.0f} ms"
        assert "Traceback" not in err, f"{where}: {err}"
        # The signal came after the plan had committed and been recorded, when Python's own handlers are back:
        # SIGINT's KeyboardInterrupt or SIGTERM's default end, or either signal's default end while the
        # interpreter shuts down (it resets their handlers then); the database is wholly new either way.
        finished = " applied " in err or (proc.returncode in (-signal.SIGTERM, -signal.SIGINT) and self.state(p) == "new"
                                          and p.sql("SELECT status FROM _migration_history")[-1:] == [("succeeded",)])
        if fault != "kill9" and proc.returncode != 0 and not finished:
            assert proc.returncode in (1, 130, 143), (where, proc.returncode, err)
            assert "rolled back" in err and says_put_back(err), (where, err)
        before_next = self.state(p)
        if fault != "kill9":  # the process put it right itself
            assert before_next in ("old", "new"), (where, before_next, err)
            assert p.sql(CONTENT) == content, where
        r = cli(p, self.new_models, next_command, *(["--yes"] if next_command == "rollback" else []))
        assert "Traceback" not in r.stderr, (where, r.stderr)
        after = self.state(p)
        assert after == ("new" if next_command == "migrate" else "old"), (where, next_command, after, r.stdout, r.stderr)
        assert p.sql(CONTENT) == content, f"{where}: rows changed"
        history = p.sql("SELECT id, kind, status, error FROM _migration_history ORDER BY started_at")
        assert not [h for h in history if h[2] == "running"], (where, history)
        first = history[0] if history else (None, None, "not started", None)
        assert list(p.backups.glob("run-*.affected.jsonl")) == [], where  # the dump is gone once recovered
        assert list(p.backups.glob(".*.partial")) == [], where
        scratch = p.sql("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '\\_mig\\_scratch\\_%%'")
        return Outcome(fault, round(delay * 1000), next_command, proc.returncode, before_next, after, first[2],
                       detail=(first[3] or "")[:600] + (f" scratch left: {scratch}" if scratch else ""))

    @staticmethod
    def _wait_for_alter(p: ServerProject, proc: subprocess.Popen, timeout: float = 120) -> int:
        """The migration's session id, once it runs its first ALTER."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = p.sql("SELECT id FROM information_schema.processlist WHERE db = %s AND info LIKE 'ALTER%%'", (p.dbname,))
            if rows:
                return rows[0][0]
            if proc.poll() is not None:
                raise AssertionError(f"migrate ended before its first ALTER: {proc.communicate()}")
            time.sleep(0.005)
        proc.kill()
        raise AssertionError("no ALTER seen")


def says_put_back(text: str) -> bool:
    """The message says how the database was put back: steps undone, a dump restored, or nothing changed
    (the fault hit the first statement, before anything had committed)."""
    return "undone" in text or "restored" in text or "nothing changed" in text


def next_command_for(index: int) -> str:
    """Alternate: `migrate` must end wholly new, `rollback` wholly old."""
    return "migrate" if index % 2 == 0 else "rollback"
