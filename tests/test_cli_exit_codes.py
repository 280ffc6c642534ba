"""Issue 13, item 2: exit codes a CI pipeline can act on, through the real console script.

check (and status/diff --exit-code): 0 up to date, 1 pending and applicable, 3 pending and refused,
2 when it cannot tell (configuration). health: non-zero at or below --fail-on (default degraded).
The README's CI example is run as written."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from cli_process import project_env, run_cli, run_many
from helpers_core import CLI

ROOT = Path(__file__).resolve().parents[1]
V1 = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n'
V2 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
      'Column("email", String(100)))\n')
V2_NOT_NULL = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50), nullable=False))\n')
DROPS_NAME = 'Table("users", metadata, Column("id", Integer, primary_key=True))\n'


def _env(project, body: str) -> dict[str, str]:
    return project_env(project, project.models(body))


def test_check_exit_codes(anydb):
    anydb.migrate(V1)
    anydb.sql("INSERT INTO users (id, name) VALUES (1, 'ann'), (2, NULL)")
    before = anydb.snapshot()
    states = {"up to date": V1, "pending": V2, "destructive": DROPS_NAME, "data-dependent": V2_NOT_NULL}
    envs = {name: _env(anydb, body) for name, body in states.items()}
    codes = [r.returncode for r in run_many([(["check"], env) for env in envs.values()])]
    assert dict(zip(states, codes)) == {"up to date": 0, "pending": 1, "destructive": 3, "data-dependent": 3}
    assert anydb.snapshot() == before  # checking changes nothing

    # check promises nothing migrate cannot do: 1 means migrate goes through, 3 means it refuses.
    run = run_cli("--json", "check", env=envs["pending"])
    assert run.returncode == 1 and json.loads(run.stdout)["safe_to_apply"] is True
    assert run_cli("migrate", env=envs["destructive"]).returncode == 3
    assert run_cli("migrate", env=envs["pending"]).returncode == 0
    assert run_cli("check", env=envs["pending"]).returncode == 0


def test_status_and_diff_exit_code_flags(project):
    project.migrate(V1)
    project.sql("INSERT INTO users (id, name) VALUES (1, 'ann')")
    pending, refused = _env(project, V2), _env(project, DROPS_NAME)
    runs = [(["status", "--exit-code"], pending), (["diff", "--exit-code"], pending), (["status"], pending),
            (["status", "--exit-code"], refused), (["diff", "--sql", "--exit-code"], refused), (["diff"], refused)]
    assert [r.returncode for r in run_many(runs)] == [1, 1, 0, 3, 3, 0]


def test_check_cannot_tell_is_exit_2(project):
    env = _env(project, V1)
    env["MIGRATION_MODELS"] = str(project.tmp / "missing.py") + ":Base"
    run = run_cli("check", env=env)
    assert run.returncode == 2 and "missing.py does not exist" in run.stderr and run.stdout == ""


def _health(env: dict[str, str], *args: str) -> tuple[int, str]:
    run = run_cli("--json", "health", *args, env=env)
    return run.returncode, json.loads(run.stdout)["status"]


def test_health_exit_codes(project):
    project.migrate(V1)
    healthy = _env(project, V1)
    assert run_cli("migrate", env=healthy).returncode == 0  # nothing to do; the backup check wants a backup
    project.sql("INSERT INTO users (id, name) VALUES (1, 'ann')")
    assert run_cli("migrate", env=_env(project, V2)).returncode == 0  # a backup now exists
    healthy = _env(project, V2)
    assert _health(healthy) == (0, "healthy")

    degraded = _env(project, DROPS_NAME)  # a pending change that would be refused
    assert _health(degraded) == (1, "degraded")
    assert _health(degraded, "--fail-on", "unhealthy") == (0, "degraded")
    assert _health(degraded, "--fail-on", "degraded") == (1, "degraded")

    broken = dict(healthy, MIGRATION_DATABASE_URL=f"sqlite:///{project.tmp / 'junk.db'}")
    (project.tmp / "junk.db").write_bytes(b"not a database" * 1000)
    assert _health(broken) == (1, "unhealthy")
    assert _health(broken, "--fail-on", "unhealthy") == (1, "unhealthy")
    assert _health(broken, "--fail-on", "never") == (0, "unhealthy")
    bad = run_cli("health", "--fail-on", "sometimes", env=healthy)
    assert bad.returncode == 2 and "invalid choice: 'sometimes'" in bad.stderr


def _readme_ci_example() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- ci-example -->\n```sh\n(.*?)```", text, re.S)
    assert match, "README.md lost its CI example (marked <!-- ci-example -->)"
    return match.group(1)


@pytest.mark.parametrize("body, expected_code, expected_line", [
    (V1, 0, "schema up to date"),
    (V2, 1, "migrations pending"),
    (DROPS_NAME, 3, "pending changes would be refused"),
])
def test_readme_ci_example_runs_as_written(project, body, expected_code, expected_line):
    project.migrate(V1)
    env = _env(project, body)
    env["PATH"] = f"{Path(CLI).parent}:{env.get('PATH', '')}"
    run = subprocess.run(["bash", "-e", "-c", _readme_ci_example()], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == expected_code, (run.stdout, run.stderr)
    assert expected_line in run.stdout + run.stderr
