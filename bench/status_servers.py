"""Measure `status` on a 500-table schema on PostgreSQL and MariaDB, with views and triggers beside the
tables, count the statements it issues (SQLAlchemy before_cursor_execute on the dialect's engine), and
measure what proving a plan costs.

    python bench/status_servers.py [N_TABLES] [N_VIEWS_AND_TRIGGERS]

Uses MIGRATION_TEST_POSTGRES_URL / MIGRATION_TEST_MYSQL_URL (defaults: local servers); creates and
drops its own databases. The first status includes normalizing the models in a scratch schema /
database; later ones reuse it (the models do not change while a process runs) and only read the
live catalog. The proof figures come from a pending change on one table (a column added to t000,
which a view reads and a trigger watches): the whole status with its proof, and the proof alone
(a schema-only copy of the tables the plan touches, in a scratch schema / database).
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import ServerProject  # noqa: E402
from test_migrations_servers import _many_tables  # noqa: E402

from migration_core.target import load_metadata  # noqa: E402


def _objects(p: ServerProject, n: int) -> None:
    """`n` views (one per table, every fifth on the view before it) and `n` triggers."""
    if p.kind == "postgresql":
        p.sql("CREATE FUNCTION bench_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := NEW.name; RETURN NEW; END $$")
    for i in range(n):
        t = f"t{i:03d}"
        source = f"v{i - 1:03d}" if i % 5 == 4 else t
        p.sql(f"CREATE VIEW v{i:03d} AS SELECT id, name FROM {source}")
        if p.kind == "postgresql":
            p.sql(f"CREATE TRIGGER tr{i:03d} BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION bench_touch()")
        else:
            p.sql(f"CREATE TRIGGER tr{i:03d} BEFORE INSERT ON {t} FOR EACH ROW SET NEW.name = NEW.name")


def measure(kind: str, n: int, objects: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        p = ServerProject(kind, Path(tmp))
        try:
            system = p.system(_many_tables(n))
            eng = create_engine(p.url)
            load_metadata(system.settings.models).create_all(eng)
            eng.dispose()
            _objects(p, objects)
            stmts: list[str] = []
            event.listen(system.dialect.engine, "before_cursor_execute", lambda *a: stmts.append(a[2]))
            t0 = time.perf_counter()
            st = system.check_migration_status()
            first = time.perf_counter() - t0
            assert not st.migration_needed, [c.detail for c in st.changes][:5]
            first_count = len(stmts)
            runs = []
            for _ in range(5):
                stmts.clear()
                t0 = time.perf_counter()
                system.check_migration_status()
                runs.append(time.perf_counter() - t0)
            catalog = [s for s in stmts if "information_schema" in s or "pg_" in s]
            out = {"kind": kind, "tables": n, "views": objects, "triggers": objects, "first_status_s": round(first, 3),
                   "first_statements": first_count, "status_s_median": round(statistics.median(runs), 3),
                   "statements": len(stmts), "catalog_queries": len(catalog)}
            pending = p.system(_many_tables(n).replace('Index("ix_t000_created", "created"))',
                                                        'Index("ix_t000_created", "created"), Column("extra", Integer))', 1))
            pending.check_migration_status()  # normalize the models once, as a running process would have
            proofs, totals = [], []
            for _ in range(5):
                t0 = time.perf_counter()
                st = pending.check_migration_status()
                totals.append(time.perf_counter() - t0)
                assert st.plan_proven, st.proof
                proofs.append(float(re.search(r"\((\d+) ms\)", st.proof)[1]) / 1000)
            out.update({"pending_status_s_median": round(statistics.median(totals), 3),
                        "proof_s_median": round(statistics.median(proofs), 3), "proof": st.proof})
            return out
        finally:
            p.drop()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    for kind in ("postgresql", "mysql"):
        print(measure(kind, n, k))
