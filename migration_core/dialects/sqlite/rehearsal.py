"""SQLite rehearsal: the live file copied with the online backup API (sqlite.org/backup.html) from a
read-only connection into a temporary folder, the plan run there by the same executor as migrate,
then `PRAGMA integrity_check` and `PRAGMA foreign_key_check` on the result. The live file is only read."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from ...diff import diff_snapshots
from ...errors import MigrationError
from ...rehearse import Outcome, rehearsal_tables, schema_check


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rehearse_sqlite(dialect, comparison, timeout_ms: int) -> Outcome:
    method = "a copy of the database file made with SQLite's online backup API in a temporary folder, deleted afterwards"
    out = Outcome(method)
    plan = comparison.plan
    with tempfile.TemporaryDirectory(prefix="migration-rehearsal-") as folder:
        copy_path = Path(folder) / "rehearsal.db"
        copy = sqlite3.connect(str(copy_path), isolation_level=None)
        try:
            live = dialect.connect(write=False)
            if live is not None:
                try:
                    live.backup(copy)
                finally:
                    live.close()
            target = comparison.target

            def verify(c) -> None:
                rest = diff_snapshots(dialect.read_live(c), target)
                if not rest.empty:
                    raise MigrationError("the copy still differs from the models after the plan: "
                                         + "; ".join(x.detail for x in rest.changes[:5]))

            started = time.monotonic()
            try:
                out.statements_run = dialect.run_plan(copy, plan, deadline=started + timeout_ms / 1000, verify=verify,
                                                      before_commit=lambda c: None, progress=None)
            except MigrationError as exc:
                out.error = str(exc).replace("; rolled back, nothing changed", "")
            out.duration_ms = (time.monotonic() - started) * 1000
            if out.error is None:
                out.checks.append(schema_check(dialect.read_live(copy), target))
            problems = [r[0] for r in copy.execute("PRAGMA integrity_check").fetchall()]
            out.checks.append("integrity_check: " + ("ok" if problems == ["ok"] else "failed: " + "; ".join(problems[:5])))
            orphans = copy.execute("PRAGMA foreign_key_check").fetchall()
            out.checks.append("foreign_key_check: " + ("ok" if not orphans else
                                                       f"failed: {len(orphans)} row(s) reference missing rows"))
            names = {n.lower(): n for (n,) in copy.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
            for table in rehearsal_tables(comparison) if out.error is None else ():  # a failed run left the copy as it was
                real = names.get(table.lower())
                out.rows_after[table] = copy.execute(f"SELECT count(*) FROM {q(real)}").fetchone()[0] if real else None
        finally:
            copy.close()
    return out
