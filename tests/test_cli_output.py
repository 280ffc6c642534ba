"""Issue 13, items 6 and 7: what a person reads from the real console script. migrate lists what it
changed; the dry run and the run count the same statements; the one duration shown is the history's;
--version; tables fit an 80-column terminal; progress bars on a terminal's stderr and nowhere else;
--help and argument errors load neither SQLAlchemy, pydantic nor the MCP SDK."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from cli_process import clean_env, project_env, run_cli, run_in_terminal

V1 = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n'
V2 = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), '
      'Column("email", String(100)), Index("ix_users_email", "email"))\n'
      'Table("teams", metadata, Column("id", Integer, primary_key=True))\n')
# Long reasons: a narrowing with data in the way, on each database its own words.
V_NARROW = ('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(3), nullable=False))\n'
            'Table("a_table_with_a_rather_long_name_for_a_narrow_terminal", metadata, Column("id", Integer, primary_key=True))\n')


def _env(project, body: str) -> dict[str, str]:
    return project_env(project, project.models(body))


def test_migrate_lists_its_changes_and_agrees_with_the_dry_run_and_the_history(anydb):
    anydb.migrate(V1)
    env = _env(anydb, V2)
    dry = json.loads(run_cli("--json", "migrate", "--dry-run", env=env).stdout)
    dry_text = run_cli("migrate", "--dry-run", env=env).stdout
    run = run_cli("migrate", env=env)
    assert run.returncode == 0, run.stderr
    text = run.stdout
    # The same table as status: every change with its risk, table and reason.
    for change in dry["changes"]:
        assert re.search(rf"^{change['risk']}\s+{change['table']}\s+{re.escape(change['detail'])}", text, re.M), (change, text)
    n = dry["planned_statements"]
    assert n >= 2  # at least the new table and the altered one
    assert f"dry run: {len(dry['changes'])} change(s), {n} statement(s) would run; nothing was changed" in dry_text
    head = re.search(r"^migrated: (\d+) change\(s\), (\d+) statement\(s\) in ([\d.]+) ms$", text, re.M)
    assert head and (int(head[1]), int(head[2])) == (len(dry["changes"]), n), text
    migration_id = re.search(r"^migration id: (\S+)$", text, re.M)[1]
    [entry] = [e for e in json.loads(run_cli("--json", "history", env=env).stdout)["history"] if e["id"] == migration_id]
    shown = float(head[3])
    recorded = entry["duration_ms"]
    assert shown == float(f"{recorded:.1f}" if recorded < 10 else f"{recorded:.0f}")  # one figure: the history's
    history_text = run_cli("history", env=env).stdout
    assert re.search(rf"^{migration_id}\s+migrate\s+succeeded\s+.*\s{re.escape(head[3])}\s", history_text, re.M), history_text


def test_version():
    run = run_cli("--version", env=clean_env())
    assert run.returncode == 0 and run.stdout == f"migration-mcp {version('migration-mcp')}\n"


def _lines_fit(screen: str, width: int = 80) -> None:
    too_wide = [line for line in screen.splitlines() if len(line) > width]
    assert not too_wide, "\n".join(too_wide)


def test_tables_fit_an_80_column_terminal(anydb):
    anydb.migrate('Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))\n')
    anydb.sql("INSERT INTO users (id, name) VALUES (1, 'a name far longer than three characters'), (2, NULL)")
    env = _env(anydb, V_NARROW)
    status = run_in_terminal("status", env=env)
    assert status.code == 0 and "would be REFUSED" in status.screen, status.screen
    _lines_fit(status.screen)
    # The long table name wraps inside its column: its pieces, read down the column, make the name again.
    column = re.findall(r"^(?:safe|destructive|data_dependent)?\s+(a_table\S*|\S*_\S*)\s", status.screen, re.M)
    assert "a_table_with_a_rather_long_name_for_a_narrow_terminal" in "".join(column), status.screen
    # Piped, each change stays on one line, whole, for grep.
    piped = run_cli("status", env=env).stdout
    assert max(len(line) for line in piped.splitlines()) > 80
    reason_lines = [line for line in piped.splitlines() if line.startswith(("safe ", "destructive", "data_dependent"))]
    assert len(reason_lines) == len(json.loads(run_cli("--json", "status", env=env).stdout)["changes"])
    if anydb.kind == "sqlite":  # backups and history: long ids; the least needed columns give way
        assert run_cli("migrate", env=_env(anydb, V1 + 'Table("t2", metadata, Column("id", Integer, primary_key=True))\n')).returncode == 0
        for command in ("backups", "history", "health"):
            shown = run_in_terminal(command, env=env)
            assert shown.code in (0, 1), shown.screen
            _lines_fit(shown.screen)


def test_progress_bars_only_on_a_terminal(project):
    project.migrate('Table("events", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))\n')
    values = ",".join(f"({i}, {i})" for i in range(1, 3001))
    project.sql(f"INSERT INTO events (id, n) VALUES {values}")
    rebuild = 'Table("events", metadata, Column("id", Integer, primary_key=True), Column("n", BigInteger, nullable=False))\n'
    on_terminal = run_in_terminal("migrate", env=_env(project, rebuild), stdout_to_pipe=True)
    assert on_terminal.code == 0, on_terminal.screen
    assert "\x1b[" in on_terminal.screen and "━" in on_terminal.screen  # rich drew a bar on stderr
    assert on_terminal.stdout.startswith("migrated: 2 change(s)") and "\x1b[" not in on_terminal.stdout

    project.migrate('Table("events", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))\n')
    piped = run_cli("migrate", env=_env(project, rebuild))
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stderr and "━" not in piped.stderr and piped.stderr == ""
    rolled = run_in_terminal("rollback", "--yes", env=_env(project, rebuild), stdout_to_pipe=True)
    assert rolled.code == 0 and "━" in rolled.screen


HEAVY = ("sqlalchemy", "pydantic", "pydantic_settings", "mcp", "mcp_types", "rich", "migration_core")
LOADED = """
import json, sys
from server.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = None
print(json.dumps([code, sorted({m.split('.')[0] for m in sys.modules} & set(%r))]), file=sys.stderr)
""" % (HEAVY,)


@pytest.mark.parametrize("args, code", [(["--help"], 0), (["--version"], 0), (["migrate", "--help"], 0), (["--no-such-flag"], 2),
                                        (["status", "--nope"], 2), (["migrate", "--timeout-ms", "0"], 2), (["frobnicate"], 2),
                                        ([], 2)])
def test_help_and_usage_errors_load_nothing_heavy(args, code):
    run = subprocess.run([sys.executable, "-c", LOADED, *args], capture_output=True, text=True, env=clean_env(), timeout=60)
    exit_code, loaded = json.loads(run.stderr.strip().splitlines()[-1])
    assert exit_code == code and loaded == [], (loaded, run.stderr)
    if code == 2:
        assert "usage: migration-mcp" in run.stderr


def test_help_fits_80_columns():
    for command in ([], ["status"], ["check"], ["diff"], ["migrate"], ["rollback"], ["backups"], ["history"], ["health"], ["serve"]):
        run = run_cli(*command, "--help", env=clean_env(COLUMNS="80"))
        assert run.returncode == 0 and "usage: migration-mcp" in run.stdout
        _lines_fit(run.stdout)
    assert "exit codes:" in run_cli("--help", env=clean_env()).stdout
