"""PostgreSQL rehearsal: the plan's statements run on the live database inside one transaction that is
always rolled back (PostgreSQL's DDL is transactional: docs, "Transactions" and ROLLBACK), under the
configured `lock_timeout` and the time limit as `statement_timeout`. It takes the plan's locks while it
runs, as the migration would; other sessions never see its changes. Concurrent index builds
(`concurrent_indexes`) cannot run in a transaction and are not rehearsed."""

from __future__ import annotations

import time

from ...rehearse import Outcome, rehearsal_tables, run_statements, schema_check


def rehearse_postgresql(dialect, comparison, timeout_ms: int) -> Outcome:
    out = Outcome("the live database, inside a transaction that is always rolled back (it holds the plan's locks while it runs)")
    plan = comparison.plan
    if plan.postamble:
        out.notes.append(f"{len(plan.postamble)} concurrent index build(s) after the transaction are not rehearsed: "
                         "CREATE INDEX CONCURRENTLY cannot run inside one")
    conn = dialect.connect(write=True)
    try:
        conn.execute("BEGIN")
        try:
            conn.execute(f"SET LOCAL lock_timeout = {int(dialect.settings.ddl_lock_timeout_ms)}")
            conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
            started = time.monotonic()
            out.statements_run, out.duration_ms, out.error = run_statements(conn, plan.statements, started + timeout_ms / 1000)
            if out.error is None:
                out.checks.append(schema_check(dialect.read_live(conn), comparison.target))
                invalid = dialect.integrity_check(conn)
                out.checks.append("indexes valid: " + (f"failed: {invalid}" if invalid else "ok"))
                out.checks.append("foreign keys: ok (every constraint the plan adds or keeps was validated by PostgreSQL)")
                schema = dialect.schema()
                for table in rehearsal_tables(comparison):
                    exists = conn.execute("SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
                                          (schema, table)).fetchone()
                    out.rows_after[table] = (conn.execute(f"SELECT count(*) FROM {dialect.quote_ident(table)}").fetchone()[0]
                                             if exists else None)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    finally:
        conn.close()
    return out
