"""memory: peak RSS of a rebuild at 100k and 1M rows, and of `check_status` on 2,000 tables,
each run in its own subprocess: getrusage(RUSAGE_CHILDREN).ru_maxrss, read in a minimal
launcher process whose only child it is (see bench.common.spawn for why not straight from here).

Children:
- baseline: `import migration_core` (Python + SQLAlchemy + pydantic: what any use costs);
- migrate rebuild, small and large rows (the same type change as bench.rebuild_throughput,
  backup off), and the hand-written 12-step rebuild in raw sqlite3 for reference;
- check_status on N tables x 20 columns (fresh process: import + normalize + compare), the
  models file alone (load_metadata: memory the application's models take anyway), and
  Alembic's compare_metadata on the same database for reference.
Goals: flat in rows (large / small <= 1.1x) and <= 150 MB for each of ours.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path

from . import gen
from .common import (REPO_ROOT, add_profile_option, base_parser, have_alembic, print_ratios, print_table, python_c, ratio,
                     ratio_entry, spawn, workdir, write_results)
from .rebuild_throughput import prepare

NAME = "memory"

IMPORT_ONLY = "import migration_core"
REBUILD_OURS = """
import sys
from pathlib import Path
from bench.rebuild_throughput import run_ours
run_ours(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
"""
REBUILD_FLOOR = """
import sys
from pathlib import Path
from bench.gen import run_rebuild_floor
run_rebuild_floor(Path(sys.argv[1]), sys.argv[2])
"""
STATUS_OURS = """
import sys
from migration_core import AutoMigrationSystem, MigrationSettings
s = AutoMigrationSystem(MigrationSettings(database_url=sys.argv[1], models=sys.argv[2], backup_dir=sys.argv[3]))
r = s.check_migration_status()
assert not r.migration_needed, [c.detail for c in r.changes[:5]]
"""
LOAD_MODELS = """
import sys
from migration_core.target import load_metadata
load_metadata(sys.argv[2])
"""
TRACE_STATUS = """
import json, sys, tracemalloc
tracemalloc.start(1)
from migration_core import AutoMigrationSystem, MigrationSettings
from migration_core.target import load_metadata
load_metadata(sys.argv[2])
before = tracemalloc.take_snapshot()
base, _ = tracemalloc.get_traced_memory()
tracemalloc.reset_peak()
s = AutoMigrationSystem(MigrationSettings(database_url=sys.argv[1], models=sys.argv[2], backup_dir=sys.argv[3]))
s.check_migration_status()
current, peak = tracemalloc.get_traced_memory()
after = tracemalloc.take_snapshot()
top = [{"where": f"{st.traceback[0].filename}:{st.traceback[0].lineno}", "size_mb": round(st.size_diff / 2**20, 2),
        "blocks": st.count_diff} for st in after.compare_to(before, "lineno")[:int(sys.argv[4])]]
print(json.dumps({"python_heap_models_mb": round(base / 2**20, 1), "python_heap_after_status_mb": round(current / 2**20, 1),
                  "python_heap_peak_during_status_mb": round(peak / 2**20, 1), "top_retained": top}))
"""
STATUS_ALEMBIC = """
import sys
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from migration_core.target import load_metadata
md = load_metadata(sys.argv[2])
with create_engine(sys.argv[1]).connect() as conn:
    compare_metadata(MigrationContext.configure(conn), md)
"""


def mb(kb: float) -> float:
    return kb / 1024


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(NAME, __doc__.split("\n")[0], repeat=3)
    p.add_argument("--rows-small", type=int, default=100_000, help="rows of the small rebuild (default 100,000)")
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the large rebuild (default 1,000,000)")
    p.add_argument("--tables", type=int, default=2000, help="tables for check_status (default 2,000)")
    add_profile_option(p)
    args = p.parse_args(argv)
    change = "int-to-bigint"

    runs: dict[str, list[tuple[int, float]]] = {}  # name -> [(maxrss_kb, wall_s)]

    def measure(name: str, cmd: list[str]) -> None:
        for _ in range(args.repeat):
            res = spawn(cmd, rss=True)
            runs.setdefault(name, []).append((res.maxrss_kb, res.wall_s))
        print(f"  {NAME}: {name}: {mb(statistics.median(r[0] for r in runs[name])):.1f} MB", file=sys.stderr, flush=True)

    with workdir(args, NAME) as wd:
        measure("baseline: import migration_core", python_c(IMPORT_ONLY))
        for label, rows in (("small", args.rows_small), ("large", args.rows)):
            sub = wd / label
            sub.mkdir()
            print(f"preparing {rows} rows", file=sys.stderr)
            template, _before, after = prepare(sub, rows, change)
            run_db = sub / "run.db"

            def fresh(template=template, run_db=run_db):
                shutil.copyfile(template, run_db)

            def cleanup(run_db=run_db):
                for suffix in ("", "-journal", ".migration.lock", ".lock"):
                    Path(f"{run_db}{suffix}").unlink(missing_ok=True)

            for name, code, extra in ((f"migrate rebuild, {rows:,} rows", REBUILD_OURS, [after, str(sub / "backups")]),
                                      (f"floor 12-step rebuild, {rows:,} rows", REBUILD_FLOOR, [change])):
                for _ in range(args.repeat):
                    fresh()
                    res = spawn(python_c(code) + [str(run_db), *extra], rss=True)
                    runs.setdefault(name, []).append((res.maxrss_kb, res.wall_s))
                    cleanup()
                print(f"  {NAME}: {name}: {mb(statistics.median(r[0] for r in runs[name])):.1f} MB", file=sys.stderr, flush=True)
            shutil.rmtree(sub)

        print(f"generating {args.tables} tables", file=sys.stderr)
        spec = gen.write_wide_models(wd / "wide_models.py", args.tables)
        db = wd / "wide.db"
        gen.create_with_sqlalchemy(db, spec)
        status_args = [f"sqlite:///{db}", spec, str(wd / "backups")]
        spawn(python_c(LOAD_MODELS) + status_args)  # compile the models file once (bytecode cache)
        measure(f"load models file only, {args.tables} tables", python_c(LOAD_MODELS) + status_args)
        measure(f"check_status, {args.tables} tables", python_c(STATUS_OURS) + status_args)
        if have_alembic():
            measure(f"alembic compare_metadata, {args.tables} tables", python_c(STATUS_ALEMBIC) + status_args)
        profile = None
        if args.profile:
            # Python heap only (tracemalloc): what check_status allocates and keeps, by source line.
            out = spawn(python_c(TRACE_STATUS) + status_args + [str(args.profile_top)]).stdout
            profile = json.loads(out.strip().splitlines()[-1])

    med = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
    base = med["baseline: import migration_core"]
    small, large = f"migrate rebuild, {args.rows_small:,} rows", f"migrate rebuild, {args.rows:,} rows"
    status = f"check_status, {args.tables} tables"
    ratios = {
        "rebuild RSS large / small": ratio_entry(ratio(med[large], med[small]), numerator=large, baseline=small, goal=1.1,
                                                 note="flat in rows"),
        "rebuild peak RSS, large": ratio_entry(mb(med[large]), unit="MB", numerator=large, baseline="absolute", goal=150),
        "rebuild RSS / floor": ratio_entry(ratio(med[large], med[f"floor 12-step rebuild, {args.rows:,} rows"]), numerator=large,
                                           baseline="raw sqlite3 12-step rebuild process"),
        "status peak RSS": ratio_entry(mb(med[status]), unit="MB", numerator=status, baseline="absolute", goal=150),
        "status RSS / models loaded": ratio_entry(ratio(med[status], med[f"load models file only, {args.tables} tables"]),
                                                  numerator=status, baseline="process that only loads the models file"),
    }
    if have_alembic():
        ratios["status RSS / alembic"] = ratio_entry(ratio(med[status], med[f"alembic compare_metadata, {args.tables} tables"]),
                                                     numerator=status, baseline="alembic compare_metadata process")
    rows = [[k, f"{mb(v):.1f}", f"{mb(v - base):+.1f}", f"{statistics.median(r[1] for r in runs[k]):.2f} s"] for k, v in med.items()]
    print_table(["subprocess", "peak RSS MB", "vs import only", "wall"], rows,
                title=f"{NAME}: peak RSS (ru_maxrss), median of {args.repeat}")
    print_ratios(ratios)
    if profile:
        print(f"\ntracemalloc, check_status on {args.tables} tables: Python heap {profile['python_heap_models_mb']} MB with the models "
              f"loaded, {profile['python_heap_after_status_mb']} MB after, peak {profile['python_heap_peak_during_status_mb']} MB")
        rows = []
        for r in profile["top_retained"]:
            where = r["where"]
            where = where.split("site-packages/", 1)[-1].replace(str(REPO_ROOT) + "/", "")
            rows.append([where, f"{r['size_mb']:+.1f}", f"{r['blocks']:+d}"])
        print_table(["allocated by (kept after check_status)", "MB", "blocks"], rows)
    payload = {
        "sizes": {"rows_small": args.rows_small, "rows": args.rows, "tables": args.tables},
        "results": {k: {"median_maxrss_mb": round(mb(med[k]), 2), "maxrss_mb": [round(mb(r[0]), 2) for r in v],
                        "wall_s": [round(r[1], 4) for r in v]} for k, v in runs.items()},
        "ratios": ratios,
        "profile": profile,
        "notes": ["peak RSS = getrusage(RUSAGE_CHILDREN).ru_maxrss in a minimal launcher (python -S) whose only child ran the work; "
                  "the launcher's own ~10 MB is the floor of the measurement"],
    }
    write_results(NAME, args, payload)
    return payload


if __name__ == "__main__":
    main()
