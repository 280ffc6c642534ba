"""Rehearsals: the plan run on a copy of the real data, so the user sees what it does before it does it
(as Neon's MCP server rehearses on a temporary branch). The live database is never changed.

Each dialect makes its copy (`dialect.rehearse`): SQLite copies the file with the online backup API
into a temporary folder (sqlite.org/backup.html); PostgreSQL runs the plan on the live database in a
transaction that is always rolled back, under `lock_timeout` (so it takes the plan's locks while it
runs); MariaDB copies the touched tables, and the tables their foreign keys join, into a scratch
database, within `REHEARSAL_MAX_BYTES` (refused above it rather than copying a huge table).
This module gives the common parts: row counts before, the report, and the check that the copy
reached the models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .diff import diff_snapshots
from .results import RehearsalResult, RehearsalTable

REHEARSAL_MAX_BYTES = 256 * 1024 * 1024  # MariaDB: data + indexes of the tables a rehearsal copies


@dataclass
class Outcome:
    """What a dialect's rehearsal found on its copy."""

    method: str
    duration_ms: float | None = None
    statements_run: int = 0
    rows_after: dict[str, int | None] = field(default_factory=dict)  # target table name -> rows (None: absent)
    checks: list[str] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def run_statements(conn, statements: list[str], deadline: float) -> tuple[int, float, str | None]:
    """Run `statements` in order until the first error or the deadline: (statements run, ms, first error)."""
    started = time.monotonic()
    done = 0
    for sql in statements:
        if time.monotonic() > deadline:
            return done, (time.monotonic() - started) * 1000, (f"the time limit ran out after {done} of {len(statements)} "
                                                              "statements (max_execution_time_ms)")
        try:
            conn.execute(sql)
        except Exception as exc:  # noqa: BLE001 - the engine's own word is the report
            text = " ".join(str(getattr(exc, "orig", exc)).split())[:500]
            return done, (time.monotonic() - started) * 1000, f"statement {done + 1} of {len(statements)} failed: {text} [{sql}]"
        done += 1
    return done, (time.monotonic() - started) * 1000, None


def schema_check(after, target, names: set[str] | None = None) -> str:
    """'schema matches the models: yes' or what still differs (restricted to `names`, lower-cased, if given)."""
    if names is not None:
        from .snapshot import SchemaSnapshot

        key = after.names.table
        after = SchemaSnapshot(after.dialect, {t.name: t for t in after.tables.values() if key(t.name) in names}, names=after.names)
        target = SchemaSnapshot(target.dialect, {t.name: t for t in target.tables.values() if key(t.name) in names},
                                names=after.names)
    rest = diff_snapshots(after, target)
    if rest.empty:
        return "the copy matches the models: yes"
    return "the copy matches the models: no (" + "; ".join(c.detail for c in rest.changes[:5]) + ")"


def report(comparison, probe, outcome: Outcome) -> RehearsalResult:
    """The rehearsal's report: rows per table before (counted on the live data) and after (on the copy)."""
    plan = comparison.plan
    diff = comparison.diff
    tables: list[RehearsalTable] = []
    seen: set[str] = set()
    for c in diff.changes:
        if c.table.lower() in seen:
            continue
        seen.add(c.table.lower())
        live_name = diff.live_table(c.table)
        before = probe.row_count(c.table) if comparison.live.table(live_name) is not None else None
        tables.append(RehearsalTable(table=c.table, rows_before=before, rows_after=outcome.rows_after.get(c.table)))
    ran = outcome.error is None and plan is not None and all(": no" not in x and "failed" not in x for x in outcome.checks)
    return RehearsalResult(ran=ran, method=outcome.method, duration_ms=round(outcome.duration_ms, 3) if outcome.duration_ms is not None else None,
                           estimated_seconds=comparison.assessment.estimated_downtime_seconds, statements_run=outcome.statements_run,
                           tables=tables, checks=outcome.checks, error=outcome.error, notes=outcome.notes)


def rehearsal_tables(comparison) -> list[str]:
    """Target names of the tables the plan changes (rows are counted on these)."""
    out: list[str] = []
    for c in comparison.diff.changes:
        if c.table not in out:
            out.append(c.table)
    return out


def rehearse(dialect, comparison, timeout_ms: int, read_only: bool = False) -> RehearsalResult:
    """Rehearse `comparison`'s plan on a copy of the data and report it. Raises SafetyRefusal when there is
    no plan to rehearse (it failed its proof) or read-only mode forbids the writes a server rehearsal makes,
    MigrationError when the copy would be too large (MariaDB)."""
    from .errors import SafetyRefusal

    if comparison.plan is None or comparison.planning_error:
        raise SafetyRefusal("rehearsal refused, nothing was changed: the plan cannot run on this database"
                            + (f" ({comparison.planning_error})" if comparison.planning_error else ""))
    if read_only and dialect.rehearsal_writes:
        raise SafetyRefusal(f"rehearsal refused: on {dialect.name} it writes (a transaction that is rolled back, or a scratch "
                            "database), and read-only mode is on; nothing was changed")
    outcome = dialect.rehearse(comparison, timeout_ms)
    conn = dialect.connect(write=False)
    try:
        probe = dialect.probe(conn, comparison.diff, comparison.live, comparison.target)
        return report(comparison, probe, outcome)
    finally:
        if conn is not None:
            conn.close()
