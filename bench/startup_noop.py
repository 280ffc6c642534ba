"""startup_noop: wall time of `execute_startup_migration` on an up-to-date database, in a fresh
process, minus the wall time of a fresh `python -c "import sqlalchemy"` (the baseline).

Each repetition starts new processes (interleaved, order rotated each round):
- baseline: `python -c "import sqlalchemy"`;
- startup (default models): `python -c` importing migration_core and calling
  execute_startup_migration(MigrationSettings(..., models="migration_core.examples.orchestrator:Base"))
  on a database that an earlier startup migration brought up to date;
- startup (N-table models): the same with a generated models file of N tables x 20 columns
  (its bytecode already cached, as it would be for an installed application);
- reference, models import: `import sqlalchemy` + importing the models alone, which an
  application does anyway; startup minus this is what migrating at startup adds to it.
The child also reports, from inside, how long its imports and the call itself took.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import gen
from .common import (Contender, add_profile_option, base_parser, child_env, fmt_s, format_stats, print_profile, print_ratios,
                     print_table, python_c, ratio, ratio_entry, run_rounds, spawn, summary, workdir, write_results)

NAME = "startup_noop"
DEFAULT_MODELS = "migration_core.examples.orchestrator:Base"

CHILD = """
import json, sys, time
t0 = time.perf_counter()
from migration_core import MigrationSettings, execute_startup_migration
t1 = time.perf_counter()
url, models, backups, expect_noop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
r = execute_startup_migration(MigrationSettings(database_url=url, models=models, backup_dir=backups))
t2 = time.perf_counter()
if not r.success or (expect_noop and r.operations_executed):
    sys.exit(f"unexpected startup result: success={r.success} executed={r.operations_executed} error={r.error}")
print(json.dumps({"import_s": t1 - t0, "call_s": t2 - t1, "executed": r.operations_executed}), flush=True)
if sys.argv[5:] == ["exit"]:
    import os
    os._exit(0)
"""
BASELINE = "import sqlalchemy"
# The same processes ended with os._exit(0): an application that migrates at startup goes on
# running, so the interpreter's teardown (~100 ms here, more the more is loaded) is not part of
# what startup costs it. Both sides of each difference end the same way.
FAST_EXIT = "; import os; os._exit(0)"
# Reference: a process that only imports SQLAlchemy and the models (an application does this anyway).
# The models are loaded from their file, so that a module inside a package (the default models
# live in migration_core.examples) does not import that package's __init__ too.
IMPORT_MODELS = """
import importlib.util, sys
import sqlalchemy
spec = importlib.util.spec_from_file_location("bench_models", sys.argv[1])
module = sys.modules["bench_models"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""
IMPORT_MODELS_EXIT = IMPORT_MODELS + "import os\nos._exit(0)\n"


def models_file(models: str) -> str:
    module = models.rpartition(":")[0]
    if module.endswith(".py"):
        return module
    import importlib.util

    return importlib.util.find_spec(module).origin


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(NAME, __doc__.split("\n")[0], repeat=9)
    p.add_argument("--tables", type=int, default=500, help="tables in the large generated models file (default 500; 0 skips it)")
    add_profile_option(p)
    args = p.parse_args(argv)

    with workdir(args, NAME) as wd:
        env = child_env(MIGRATION_DATA_DIR=str(wd / "data"))
        setups = {"default models": (f"sqlite:///{wd / 'default.db'}", DEFAULT_MODELS)}
        if args.tables:
            spec = gen.write_wide_models(wd / "wide_models.py", args.tables)
            setups[f"{args.tables}-table models"] = (f"sqlite:///{wd / 'wide.db'}", spec)
        for label, (url, models) in setups.items():
            # The first start creates the schema; every later one is the no-op being measured.
            print(f"creating the {label} database with a first startup migration", file=sys.stderr)
            spawn(python_c(CHILD) + [url, models, str(wd / "backups"), "0"], env=env)

        inner: dict[str, list[dict]] = {label: [] for label in setups}

        def child(label: str, fast: bool = False):
            url, models = setups[label]
            extra = ["exit"] if fast else []

            def run(_):
                return spawn(python_c(CHILD) + [url, models, str(wd / "backups"), "1", *extra], env=env)

            def keep(res):
                inner[label].append(json.loads(res.stdout.strip().splitlines()[-1]))

            return Contender(f"startup ({label}){', os._exit' if fast else ''}", run, check=keep)

        contenders = [Contender(f"baseline: python -c '{BASELINE}'", lambda _: spawn(python_c(BASELINE), env=env)),
                      Contender(f"baseline: python -c '{BASELINE}{FAST_EXIT}'", lambda _: spawn(python_c(BASELINE + FAST_EXIT), env=env)),
                      Contender("python -c 'pass'", lambda _: spawn(python_c("pass"), env=env))]
        contenders += [child(label) for label in setups]
        contenders.append(child("default models", fast=True))
        for label, (_, models) in setups.items():
            path = models_file(models)
            contenders.append(Contender(f"reference: import sqlalchemy + {label}",
                                        lambda _, path=path: spawn(python_c(IMPORT_MODELS) + [path], env=env)))
            if label == "default models":
                contenders.append(Contender(f"reference: import sqlalchemy + {label}, os._exit",
                                            lambda _, path=path: spawn(python_c(IMPORT_MODELS_EXIT) + [path], env=env)))
        samples = run_rounds(contenders, args.repeat, warmup=args.warmup, label=NAME)
        profiles = {label: profile_child(wd, env, *setups[label], args.profile_top) for label in setups} if args.profile else None

    med = {k: summary(v)["median_s"] for k, v in samples.items()}
    base = med[f"baseline: python -c '{BASELINE}'"]
    ratios = {}
    rows = []
    for name, s in samples.items():
        sm = summary(s)
        rows.append([name, fmt_s(sm["median_s"]), fmt_s(sm["min_s"]), fmt_s(sm["max_s"]),
                     fmt_s(sm["median_s"] - base), f"{ratio(sm['median_s'], base):.2f}x"])
    for label in setups:
        m = med[f"startup ({label})"]
        goal = 150 if label == "default models" else None
        ratios[f"startup net, {label}"] = ratio_entry(
            (m - base) * 1000, unit="ms", numerator=f"startup ({label}) process wall time", goal=goal,
            baseline=f"minus python -c '{BASELINE}'")
        ratios[f"startup / baseline, {label}"] = ratio_entry(ratio(m, base), numerator=f"startup ({label}) process wall time",
                                                              baseline=f"python -c '{BASELINE}'")
        ref = med[f"reference: import sqlalchemy + {label}"]
        ratios[f"startup net of models import, {label}"] = ratio_entry(
            (m - ref) * 1000, unit="ms", numerator=f"startup ({label}) process wall time",
            baseline="minus python -c 'import sqlalchemy + the models'")
    fast_base = med[f"baseline: python -c '{BASELINE}{FAST_EXIT}'"]
    fast = med["startup (default models), os._exit"]
    ratios["startup net without teardown, default models"] = ratio_entry(
        (fast - fast_base) * 1000, unit="ms", numerator="startup (default models) process, ended by os._exit",
        baseline=f"minus python -c '{BASELINE}{FAST_EXIT}'")
    ratios["startup net of models import without teardown, default models"] = ratio_entry(
        (fast - med["reference: import sqlalchemy + default models, os._exit"]) * 1000, unit="ms", goal=150,
        numerator="startup (default models) process, ended by os._exit",
        baseline="minus python -c 'import sqlalchemy + the models', ended by os._exit")
    import statistics

    inside = {label: {k: round(statistics.median(x[k] for x in v), 6) for k in ("import_s", "call_s")} for label, v in inner.items() if v}
    print_table(["process", "median", "min", "max", "minus baseline", "/ baseline"], rows,
                title=f"{NAME}: fresh processes, median of {args.repeat}")
    print_table(["measured inside the child", "imports", "execute_startup_migration"],
                [[k, fmt_s(v["import_s"]), fmt_s(v["call_s"])] for k, v in inside.items()])
    print_ratios(ratios)
    for label, prof in (profiles or {}).items():
        print_profile(prof["call_cprofile"], f"profile of execute_startup_migration, {label}, fresh process after its imports "
                                             "(cProfile, by cumulative time)")
        print_table(["import (python -X importtime), top level", "cumulative"],
                    [[m, fmt_s(us / 1e6)] for m, us in prof["importtime_top"]])
        print_table(["import (python -X importtime), any module", "self"],
                    [[m, fmt_s(us / 1e6)] for m, us in prof["importtime_self_top"]])
    payload = {
        "sizes": {"tables": args.tables, "default_models": DEFAULT_MODELS},
        "results": {k: summary(v) for k, v in samples.items()},
        "inside_child_median_s": inside,
        "ratios": ratios,
        "profile": profiles,
        "notes": ["net = median whole-process wall time of the startup child minus that of python -c 'import sqlalchemy', same run"],
    }
    write_results(NAME, args, payload)
    return payload


PROFILE_CALL = """
import cProfile, sys
from migration_core import MigrationSettings, execute_startup_migration
url, models, backups, out = sys.argv[1:5]
settings = MigrationSettings(database_url=url, models=models, backup_dir=backups)
prof = cProfile.Profile()
prof.enable()
execute_startup_migration(settings)
prof.disable()
prof.dump_stats(out)
"""


def profile_child(wd: Path, env: dict, url: str, models: str, top: int) -> dict:
    """In fresh processes: the startup call alone under cProfile (after the imports), and the
    imports under -X importtime (top-level packages by cumulative time, modules by self time)."""
    import pstats

    prof_file = wd / "startup_call.prof"
    spawn(python_c(PROFILE_CALL) + [url, models, str(wd / "backups"), str(prof_file)], env=env)
    cprofile = format_stats(pstats.Stats(str(prof_file)), top)
    res = spawn([sys.executable, "-X", "importtime", "-c", CHILD, url, models, str(wd / "backups"), "1"], env=env)
    top_level, by_self = [], []
    for line in res.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"; top level = no indentation
        if line.startswith("import time:") and "|" in line:
            own, cumulative, name = line.split("|", 2)
            own = own.split(":", 1)[1].strip()
            if not cumulative.strip().isdigit():
                continue
            if not name.startswith("  "):
                top_level.append((name.strip(), int(cumulative)))
            by_self.append((name.strip(), int(own)))
    top_level.sort(key=lambda x: -x[1])
    by_self.sort(key=lambda x: -x[1])
    return {"call_cprofile": cprofile, "importtime_top": top_level[:top], "importtime_self_top": by_self[:top]}


if __name__ == "__main__":
    main()
