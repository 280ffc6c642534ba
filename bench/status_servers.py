"""Measure `status` on a 500-table schema on PostgreSQL and MariaDB, and count the statements it
issues (SQLAlchemy before_cursor_execute on the dialect's engine).

    python bench/status_servers.py [N_TABLES]

Uses MIGRATION_TEST_POSTGRES_URL / MIGRATION_TEST_MYSQL_URL (defaults: local servers); creates and
drops its own databases. The first status includes normalizing the models in a scratch schema /
database; later ones reuse it (the models do not change while a process runs) and only read the
live catalog.
"""

from __future__ import annotations

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


def measure(kind: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        p = ServerProject(kind, Path(tmp))
        try:
            system = p.system(_many_tables(n))
            eng = create_engine(p.url)
            load_metadata(system.settings.models).create_all(eng)
            eng.dispose()
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
            return {"kind": kind, "tables": n, "first_status_s": round(first, 3), "first_statements": first_count,
                    "status_s_median": round(statistics.median(runs), 3), "statements": len(stmts),
                    "catalog_queries": len(catalog)}
        finally:
            p.drop()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    for kind in ("postgresql", "mysql"):
        print(measure(kind, n))
