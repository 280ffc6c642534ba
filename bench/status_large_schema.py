"""status_large_schema: `check_status` on an up-to-date database with N tables x 20 columns,
against Alembic's `compare_metadata` and against the bare catalog reads (the floor).

Contenders (interleaved round by round, order rotated each round):
- check_status (cold): a fresh AutoMigrationSystem each repetition, so normalizing the target
  (create_all in an in-memory database + reading it back) is included, and the memo caches
  of migration_core (lru_cache'd SQL parsing) cleared, as on a process's first call; the
  models module itself stays imported (its import is part of bench.startup_noop).
- check_status (warm): one AutoMigrationSystem reused, the target snapshot cached.
- alembic compare_metadata: a fresh Engine, MigrationContext.configure(conn) and
  alembic.autogenerate.compare_metadata(ctx, metadata) each repetition.
- floor, catalog queries: sqlite3.connect + the 4 catalog queries of
  migration_core/dialects/sqlite/catalog.py, fetched raw (no Python objects built). This is
  the floor the goal refers to: it returns every fact the snapshot needs, in 4 statements.
- alt floor, per-table pragmas: `SELECT sql FROM sqlite_schema` + `pragma_table_xinfo` per
  table (N+1 statements; returns less: no foreign keys or index columns), for reference.

Statement counts come from separate, untimed runs: sqlite3 set_trace_callback on every
connection our code opens (split into the live file and the in-memory scratch database), a
SQLAlchemy before_cursor_execute event for Alembic (and set_trace_callback as a cross-check).
"""

from __future__ import annotations

import collections
import contextlib
import sqlite3
import sqlite3.dbapi2
import sys
import time
from pathlib import Path

from . import gen
from .common import (Contender, add_profile_option, base_parser, fmt_s, have_alembic, print_profile, print_ratios, print_table,
                     profile_call, ratio, ratio_entry, run_rounds, summary, workdir, write_results)

NAME = "status_large_schema"


@contextlib.contextmanager
def traced_sqlite():
    """Count statements on every sqlite3 connection opened meanwhile: {'file': n, 'memory': n}.

    Only top-level statements count: SQLite also traces the statements that pragma table-valued
    functions (and triggers) run inside a statement, prefixed with `-- `; those go to
    'file_nested' / 'memory_nested'."""
    counts: collections.Counter = collections.Counter()
    original = sqlite3.connect

    def connect(*args, **kwargs):
        conn = original(*args, **kwargs)
        target = str(args[0] if args else kwargs.get("database", ""))
        kind = "memory" if target in ("", ":memory:") or "mode=memory" in target else "file"

        def trace(stmt, kind=kind):
            counts[kind + "_nested" if stmt.startswith("-- ") else kind] += 1

        conn.set_trace_callback(trace)
        return conn

    # SQLAlchemy's pysqlite dialect calls sqlite3.dbapi2.connect: patch both names.
    sqlite3.connect = sqlite3.dbapi2.connect = connect
    try:
        yield counts
    finally:
        sqlite3.connect = sqlite3.dbapi2.connect = original


def catalog_queries() -> list[str]:
    from migration_core.dialects.sqlite import catalog

    return [catalog._Q_SCHEMA, catalog._Q_COLUMNS, catalog._Q_FKS, catalog._Q_INDEX_COLUMNS]


def floor_catalog(db: Path, queries: list[str]) -> int:
    conn = sqlite3.connect(f"file:{db.as_posix()}?mode=ro", uri=True, isolation_level=None)
    try:
        return sum(len(conn.execute(q).fetchall()) for q in queries)
    finally:
        conn.close()


def floor_per_table(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db.as_posix()}?mode=ro", uri=True, isolation_level=None)
    try:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_schema").fetchall()
        n = len(rows)
        for typ, name, _ in rows:
            if typ == "table" and not name.startswith("sqlite_"):
                n += len(conn.execute("SELECT * FROM pragma_table_xinfo(?)", (name,)).fetchall())
        return n
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(NAME, __doc__.split("\n")[0], repeat=5)
    p.add_argument("--tables", type=int, default=500, help="number of tables (default 500), 20 columns each")
    add_profile_option(p)
    args = p.parse_args(argv)

    from migration_core import AutoMigrationSystem, MigrationSettings
    from migration_core.target import load_metadata

    alembic_ok = have_alembic()
    with workdir(args, NAME) as wd:
        print(f"generating {args.tables} tables x {gen.WIDE_COLUMNS_PER_TABLE} columns in {wd}", file=sys.stderr)
        spec = gen.write_wide_models(wd / "wide_models.py", args.tables)
        db = wd / "wide.db"
        gen.create_with_sqlalchemy(db, spec)
        metadata = load_metadata(spec)
        settings = MigrationSettings(database_url=f"sqlite:///{db}", models=spec, backup_dir=wd / "backups")

        def ours_cold(_):
            return AutoMigrationSystem(settings).check_migration_status()

        def clear_caches():
            # As on the first call in a new process: no memoized parse of any SQL text.
            for name, module in list(sys.modules.items()):
                if name.startswith("migration_core"):
                    for obj in vars(module).values():
                        if callable(getattr(obj, "cache_clear", None)):
                            obj.cache_clear()

        warm_system = AutoMigrationSystem(settings)
        warm_system.check_migration_status()

        def ours_warm(_):
            return warm_system.check_migration_status()

        reread_system = AutoMigrationSystem(settings)
        reread_system.check_migration_status()

        def forget_live():
            # As after a change behind the server's back: the target stays cached, the live schema is read again.
            reread_system.comparator.dialect._live = None

        def ours_reread(_):
            return reread_system.check_migration_status()

        def up_to_date(status):
            if status.migration_needed:
                raise RuntimeError(f"expected an up-to-date database, got {[c.detail for c in status.changes[:5]]}")

        queries = catalog_queries()
        contenders = [
            Contender("check_status (cold)", ours_cold, setup=clear_caches, check=up_to_date),
            Contender("check_status (warm)", ours_warm, check=up_to_date),
            Contender("check_status (warm, live re-read)", ours_reread, setup=forget_live, check=up_to_date),
            Contender("floor: 4 catalog queries", lambda _: floor_catalog(db, queries)),
            Contender("alt floor: per-table pragmas", lambda _: floor_per_table(db)),
        ]
        alembic_diffs = None
        if alembic_ok:
            from alembic.autogenerate import compare_metadata
            from alembic.migration import MigrationContext
            from sqlalchemy import create_engine, event

            def alembic_compare(_):
                engine = create_engine(f"sqlite:///{db}")
                try:
                    with engine.connect() as conn:
                        return compare_metadata(MigrationContext.configure(conn), metadata)
                finally:
                    engine.dispose()

            contenders.insert(2, Contender("alembic compare_metadata", alembic_compare))
        samples = run_rounds(contenders, args.repeat, warmup=args.warmup, label=NAME)
        by_name = {c.name: c for c in contenders}
        if alembic_ok:
            alembic_diffs = len(by_name["alembic compare_metadata"].last)

        # -- statement counts (untimed) --
        counts: dict[str, dict] = {}
        clear_caches()
        with traced_sqlite() as c:
            AutoMigrationSystem(settings).check_migration_status()
        counts["check_status (cold)"] = {"live_db": c["file"], "scratch_db": c["memory"], "total": c["file"] + c["memory"],
                                         "nested_pragma_statements": c["file_nested"] + c["memory_nested"]}
        with traced_sqlite() as c:
            warm_system.check_migration_status()
        counts["check_status (warm)"] = {"live_db": c["file"], "scratch_db": c["memory"], "total": c["file"] + c["memory"],
                                         "nested_pragma_statements": c["file_nested"] + c["memory_nested"]}
        forget_live()
        with traced_sqlite() as c:
            reread_system.check_migration_status()
        counts["check_status (warm, live re-read)"] = {"live_db": c["file"], "scratch_db": c["memory"], "total": c["file"] + c["memory"],
                                                      "nested_pragma_statements": c["file_nested"] + c["memory_nested"]}
        with traced_sqlite() as c:
            floor_catalog(db, queries)
        counts["floor: 4 catalog queries"] = {"live_db": c["file"], "total": c["file"], "nested_pragma_statements": c["file_nested"]}
        with traced_sqlite() as c:
            floor_per_table(db)
        counts["alt floor: per-table pragmas"] = {"live_db": c["file"], "total": c["file"]}
        if alembic_ok:
            sa_count = collections.Counter()
            with traced_sqlite() as c:
                engine = create_engine(f"sqlite:///{db}")
                event.listen(engine, "before_cursor_execute", lambda *a, **k: sa_count.update(["n"]))
                with engine.connect() as conn:
                    compare_metadata(MigrationContext.configure(conn), metadata)
                engine.dispose()
            counts["alembic compare_metadata"] = {"live_db": sa_count["n"], "total": sa_count["n"], "sqlite_trace": c["file"],
                                                  "nested_pragma_statements": c["file_nested"]}

        # -- where the cold time goes (one untimed-by-rounds breakdown, median of 3) --
        breakdown = _breakdown(settings, metadata, clear_caches)
        profiles = None
        if args.profile:
            clear_caches()
            profiles = {"cold": profile_call(lambda: ours_cold(None), args.profile_top),
                        "warm": profile_call(lambda: ours_warm(None), args.profile_top)}

    med = {k: summary(v)["median_s"] for k, v in samples.items()}
    alembic_med = med.get("alembic compare_metadata")
    floor = med["floor: 4 catalog queries"]
    ratios = {
        "check_status cold / alembic": ratio_entry(ratio(med["check_status (cold)"], alembic_med), numerator="check_status (cold)",
                                                   baseline="alembic compare_metadata", goal=0.5),
        "check_status warm / alembic": ratio_entry(ratio(med["check_status (warm)"], alembic_med), numerator="check_status (warm)",
                                                   baseline="alembic compare_metadata", goal=0.5),
        "check_status cold / floor": ratio_entry(ratio(med["check_status (cold)"], floor), numerator="check_status (cold)",
                                                 baseline="4 catalog queries, raw", goal=3),
        "check_status warm / floor": ratio_entry(ratio(med["check_status (warm)"], floor), numerator="check_status (warm)",
                                                 baseline="4 catalog queries, raw", goal=3),
        "check_status warm, live re-read / floor": ratio_entry(
            ratio(med["check_status (warm, live re-read)"], floor), numerator="check_status (warm, live re-read)",
            baseline="4 catalog queries, raw", goal=3),
        "alembic / floor": ratio_entry(ratio(alembic_med, floor), numerator="alembic compare_metadata", baseline="4 catalog queries, raw"),
        "alt floor / floor": ratio_entry(ratio(med["alt floor: per-table pragmas"], floor), numerator="per-table pragmas",
                                         baseline="4 catalog queries, raw"),
    }
    rows = []
    for name, s in samples.items():
        sm = summary(s)
        cnt = counts.get(name, {})
        rows.append([name, fmt_s(sm["median_s"]), fmt_s(sm["min_s"]), fmt_s(sm["max_s"]),
                     f"{ratio(sm['median_s'], alembic_med):.2f}x" if alembic_med else "-",
                     f"{ratio(sm['median_s'], floor):.2f}x", cnt.get("total", "-")])
    print_table(["contender", "median", "min", "max", "/ alembic", "/ floor", "statements"], rows,
                title=f"{NAME}: {args.tables} tables x {gen.WIDE_COLUMNS_PER_TABLE} columns, SQLite, median of {args.repeat}")
    print_table(["part of a cold check_status", "median"], [[k, fmt_s(v)] for k, v in breakdown.items()])
    print_ratios(ratios)
    for kind, prof in (profiles or {}).items():
        print_profile(prof, f"profile of one check_status ({kind}; cProfile, by cumulative time)")
    notes = [
        "SQLite here; PostgreSQL and MariaDB: bench.status_servers.",
        "floor = the 4 catalog queries of migration_core/dialects/sqlite/catalog.py run raw (connect, execute, fetchall).",
        "warm reuses the live snapshot while sqlite_schema is unchanged (1 catalog query); "
        "warm, live re-read drops that cache before each call (the target stays cached).",
    ]
    if not alembic_ok:
        notes.append("alembic is not installed (pip install -e '.[bench]'): its figures are missing")
    payload = {
        "sizes": {"tables": args.tables, "columns_per_table": gen.WIDE_COLUMNS_PER_TABLE},
        "results": {k: summary(v) for k, v in samples.items()},
        "statements": counts,
        "alembic_diffs_reported": alembic_diffs,
        "cold_breakdown_s": breakdown,
        "ratios": ratios,
        "profile": profiles,
        "notes": notes,
    }
    write_results(NAME, args, payload)
    return payload


def _breakdown(settings, metadata, clear_caches) -> dict[str, float]:
    """The stages of a cold check_status, run as the comparator runs them (collector paused)."""
    import sqlite3
    import statistics

    from migration_core.gcpause import gc_paused
    from migration_core.diff import diff_snapshots
    from migration_core.dialects.factory import get_dialect
    from migration_core.dialects.sqlite.catalog import read_snapshot
    from migration_core.dialects.sqlite.dialect import _compiled_ddl

    parts: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(3):
        clear_caches()
        dialect = get_dialect(settings)
        with gc_paused():
            t0 = time.perf_counter()
            statements = _compiled_ddl(metadata)
            t1 = time.perf_counter()
            mem = sqlite3.connect(":memory:", isolation_level=None)
            mem.execute("BEGIN")
            for stmt in statements:
                mem.execute(stmt)
            mem.execute("COMMIT")
            t2 = time.perf_counter()
            target = read_snapshot(mem, ())
            mem.close()
            t3 = time.perf_counter()
            conn = dialect.connect(write=False)
            live = dialect.read_live(conn)
            conn.close()
            t4 = time.perf_counter()
            diff_snapshots(live, target)
            t5 = time.perf_counter()
        parts["target: compile the models to DDL (SQLAlchemy)"].append(t1 - t0)
        parts["target: create them in an in-memory database"].append(t2 - t1)
        parts["target: read back into a snapshot (catalog + parse)"].append(t3 - t2)
        parts["live: read the catalog into a snapshot (parse cached)"].append(t4 - t3)
        parts["diff"].append(t5 - t4)
    return {k: round(statistics.median(v), 6) for k, v in parts.items()}


if __name__ == "__main__":
    main()
