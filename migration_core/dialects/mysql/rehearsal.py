"""MariaDB/MySQL rehearsal: DDL commits by itself on these servers, so the plan cannot run on the live
tables and be undone. The tables the plan touches, and the tables their foreign keys join (the proof's
scope, `server/proof.py`), are copied with their rows into a scratch database, dropped afterwards; the
plan runs there. The copy is refused above `REHEARSAL_MAX_BYTES` of data and indexes (information_schema
TABLES: DATA_LENGTH + INDEX_LENGTH, an estimate InnoDB keeps) rather than copying a huge table.
Triggers are made after the rows are copied, so copying fires none of them."""

from __future__ import annotations

import time

from ...errors import MigrationError
from ...rehearse import REHEARSAL_MAX_BYTES, Outcome, rehearsal_tables, run_statements, schema_check
from ..server.connection import message
from ..server.proof import Scope, proof_scope
from .objects import quote_ident as q
from .proof import MysqlShadow


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def rehearse_mysql(dialect, comparison, timeout_ms: int, max_bytes: int = REHEARSAL_MAX_BYTES) -> Outcome:
    out = Outcome(f"copies of the touched tables (and the tables their foreign keys join), rows included, in a scratch "
                  f"database dropped afterwards; at most {_mib(max_bytes)} of data and indexes")
    plan, diff, live = comparison.plan, comparison.diff, comparison.live
    scope = proof_scope(diff, live, views_need_tables=True, kept=plan.kept)
    schema = dialect.schema()
    conn = dialect.connect(write=False)
    try:
        sizes = {name: int(size or 0) for name, size in conn.execute(
            "SELECT table_name, data_length + index_length FROM information_schema.tables WHERE table_schema = %s",
            (schema,)).fetchall()}
    finally:
        conn.close()
    total = sum(sizes.get(t, 0) for t in scope.tables)
    if total > max_bytes:
        raise MigrationError(f"rehearsal refused, nothing was changed: the {len(scope.tables)} table(s) it would copy "
                             f"({', '.join(scope.tables[:8])}) hold about {_mib(total)} of data and indexes, above the "
                             f"rehearsal limit of {_mib(max_bytes)}; preview without rehearse, or rehearse on a smaller copy "
                             "of the database")
    shadow = MysqlShadow(lambda: dialect.connect(write=True), schema)
    with shadow:
        c = shadow.conn
        shadow.copy(live, Scope(scope.tables, scope.touched, scope.views, [], scope.kept))
        c.execute("SET SESSION foreign_key_checks = 0")
        for name in scope.tables:
            cols = ", ".join(q(col.name) for col in live.table(name).columns if not col.generated)
            c.execute(f"INSERT INTO {q(name)} ({cols}) SELECT {cols} FROM {q(schema)}.{q(name)}")
        c.execute("SET SESSION foreign_key_checks = 1")
        for name in scope.triggers:
            try:
                for sql in live.triggers[name].create:
                    c.execute(sql)
            except Exception as exc:  # noqa: BLE001 - reported, as the proof does
                out.notes.append(f"trigger {name} could not be made in the copy: {message(exc)}")
        out.notes.append(f"copied {len(scope.tables)} table(s), about {_mib(total)}: {', '.join(scope.tables)}")
        started = time.monotonic()
        out.statements_run, out.duration_ms, out.error = run_statements(c, plan.statements, started + timeout_ms / 1000)
        if out.error:  # said of the user's tables, not of the scratch copy's
            out.error = out.error.replace(f"`{shadow.name}`.", "").replace(f"{shadow.name}.", "")
        if out.error is None:
            key = live.names.table
            names = {key(diff.table_renames.get(t, t)) for t in scope.touched}
            names |= {key(x.table) for x in diff.changes if x.__class__.__name__ == "AddTable"}
            names -= {key(x.table) for x in diff.changes if x.__class__.__name__ == "DropTable"}
            after = shadow.read()
            out.checks.append(schema_check(after, comparison.target, names))
            bad = []
            for t in after.tables.values():
                for row in c.execute(f"CHECK TABLE {q(t.name)}").fetchall():
                    if str(row[2]).lower() in ("error", "warning") or str(row[3]).lower() not in ("ok", "table is already up to date"):
                        bad.append(f"{t.name}: {row[3]}")
            out.checks.append("CHECK TABLE: " + ("ok" if not bad else "failed: " + "; ".join(bad[:5])))
            orphans = []
            for t in after.tables.values():
                for fk in t.foreign_keys:
                    ref = after.table(fk.ref_table)
                    if ref is None:
                        continue
                    on = " AND ".join(f"r.{q(rc)} = c.{q(cc)}" for cc, rc in zip(fk.columns, fk.ref_columns))
                    present = " AND ".join(f"c.{q(cc)} IS NOT NULL" for cc in fk.columns)
                    n = c.execute(f"SELECT count(*) FROM {q(t.name)} c LEFT JOIN {q(ref.name)} r ON {on} "
                                  f"WHERE {present} AND r.{q(fk.ref_columns[0])} IS NULL").fetchone()[0]
                    if n:
                        orphans.append(f"{n} row(s) of {t.name} reference missing {ref.name} rows")
            out.checks.append("foreign keys: " + ("ok" if not orphans else "failed: " + "; ".join(orphans[:5])))
            for table in rehearsal_tables(comparison):
                real = after.table(table)
                out.rows_after[table] = c.execute(f"SELECT count(*) FROM {q(real.name)}").fetchone()[0] if real else None
    return out
