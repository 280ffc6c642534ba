"""Whole-process `status` (issue 15): `migration-mcp status` against a whole Alembic `compare_metadata`
process and a process that only imports the models, side by side in one run, on SQLite, PostgreSQL
and MariaDB; the normalized-target cache cold (an empty data directory each call) and warm.

    python -m bench.status_cold [--tables 500] [--repeat 3] [--dbs sqlite,postgresql,mysql]
                                [--app prefect.server.database.orm_models:Base ...] [--rss-tables 2000]

Every contender is a fresh `python` process timed from spawn to exit (wall time), rounds interleaved
with a rotating order after an untimed warm-up round; medians are compared. The database is up to
date with the models (created by `create_all`), so status reports nothing to do and Alembic finds
no difference worth a migration. `--app` adds an application's models (any importable `module:attr`) on each
of `--dbs`, its tables created by `migration-mcp migrate`. `--rss-tables` measures peak RSS (ru_maxrss, see
`common.spawn`) of warm and cold status and of the models-only process on a SQLite database of that
many generated tables. Servers come from MIGRATION_TEST_POSTGRES_URL / MIGRATION_TEST_MYSQL_URL
(defaults: the local ones); each run creates and drops its own databases.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import (Contender, base_parser, child_env, fmt_ratio, fmt_s, have_alembic, print_ratios, print_table, ratio,
                          ratio_entry, run_rounds, spawn, summary, workdir, write_results)
from bench.gen import write_wide_models

NAME = "status_cold"
CLI = str(Path(sys.executable).with_name("migration-mcp"))

IMPORT_MODELS = """
import importlib, importlib.util, sys
spec = sys.argv[1]
mod, _, attr = spec.rpartition(":")
if mod.endswith(".py"):
    s = importlib.util.spec_from_file_location("models", mod); m = importlib.util.module_from_spec(s); s.loader.exec_module(m)
else:
    m = importlib.import_module(mod)
obj = m
for part in attr.split("."):
    obj = getattr(obj, part)
metadata = getattr(obj, "metadata", obj)
"""

ALEMBIC = IMPORT_MODELS + """
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool
from alembic.migration import MigrationContext
from alembic.autogenerate import compare_metadata
engine = create_engine(sys.argv[2], poolclass=NullPool)
with engine.connect() as conn:
    diff = compare_metadata(MigrationContext.configure(conn), metadata)
print(len(diff))
"""

CREATE = IMPORT_MODELS + """
from sqlalchemy import create_engine
metadata.create_all(create_engine(sys.argv[2]))
"""


def _server_project(kind: str, tmp: Path):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from servers import ServerProject

    return ServerProject(kind, tmp)


@contextmanager
def _database(kind: str, tmp: Path, name: str, *, app: bool = False) -> Iterator[str]:
    """A fresh database of `kind` (a SQLite file `<name>.db` in `tmp`, or a server database dropped
    afterwards); yields its URL. An application's PostgreSQL database gets `pg_trgm`, as its own
    migrations create it first (Prefect's trigram indexes)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / (name + '.db')}"
        return
    project = _server_project(kind, tmp)
    try:
        if app and kind == "postgresql":
            project.sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        yield project.url
    finally:
        project.drop()


def _status_cmd(url: str, spec: str) -> list[str]:
    return [CLI, "--database-url", url, "--models", spec, "status", "--json"]


def _check_status(res) -> None:
    doc = json.loads(res.stdout)
    if doc.get("migration_needed"):
        raise RuntimeError(f"status reports changes on an up-to-date database: {[c.get('detail') for c in doc['changes']][:5]}")


def measure_db(label: str, url: str, spec: str, tmp: Path, args) -> dict:
    """Time the four contenders on one database (already up to date with `spec`)."""
    warm_dir = tmp / f"data-warm-{label}"
    env_warm = child_env(MIGRATION_DATA_DIR=str(warm_dir), MIGRATION_BACKUP_DIR=str(tmp / "backups"))
    _check_status(spawn(_status_cmd(url, spec), env=env_warm))  # fills the warm cache

    def cold_setup():
        d = Path(tempfile.mkdtemp(prefix="data-cold-", dir=tmp))
        return d

    def cold_run(d):
        return spawn(_status_cmd(url, spec), env=child_env(MIGRATION_DATA_DIR=str(d), MIGRATION_BACKUP_DIR=str(tmp / "backups")))

    contenders = [
        Contender("status warm", lambda _: spawn(_status_cmd(url, spec), env=env_warm), check=_check_status),
        Contender("status cold", cold_run, setup=cold_setup, teardown=lambda d: shutil.rmtree(d, ignore_errors=True),
                  check=_check_status),
        Contender("import models only", lambda _: spawn([sys.executable, "-c", IMPORT_MODELS, spec])),
    ]
    if have_alembic():
        contenders.insert(2, Contender("alembic compare_metadata", lambda _: spawn([sys.executable, "-c", ALEMBIC, spec, url])))
    notes = []
    if args.baseline:  # the same CLI from another checkout (e.g. main before this change), first on PYTHONPATH
        env_base = child_env(MIGRATION_DATA_DIR=str(tmp / "data-baseline"), MIGRATION_BACKUP_DIR=str(tmp / "backups"),
                             PYTHONPATH=str(Path(args.baseline).resolve()), MIGRATION_TARGET_CACHE="off")
        tried = spawn(_status_cmd(url, spec), env=env_base, check=False)
        if tried.returncode == 0:
            contenders.append(Contender("status baseline", lambda _: spawn(_status_cmd(url, spec), env=env_base), check=_check_status))
        else:
            notes.append(f"status baseline fails here (exit {tried.returncode}): {tried.stderr.strip().splitlines()[-1][:300]}")
    samples = run_rounds(contenders, args.repeat, warmup=args.warmup, label=label)
    out = {name: summary(s) for name, s in samples.items()}
    if notes:
        out["notes"] = notes
    return out


def _ratios(label: str, res: dict, *, goals: dict[str, float]) -> dict:
    med = {k: v["median_s"] for k, v in res.items() if k != "notes"}
    out = {}
    for name, base, goal_key in (("status warm", "alembic compare_metadata", "warm_alembic"),
                                 ("status cold", "alembic compare_metadata", "cold_alembic"),
                                 ("status warm", "import models only", "warm_models"),
                                 ("status cold", "import models only", None),
                                 ("alembic compare_metadata", "import models only", None),
                                 ("status baseline", "alembic compare_metadata", None),
                                 ("status baseline", "import models only", None)):
        if name not in med or base not in med:
            continue
        out[f"{label}: {name} / {base}"] = ratio_entry(ratio(med[name], med[base]), numerator=name, baseline=base,
                                                       goal=goals.get(goal_key) if goal_key else None)
    # Each process's own work, net of importing the models (which every contender does first): where the
    # models' import alone is near Alembic's whole process, this is what is left to compare.
    models, alembic = med.get("import models only"), med.get("alembic compare_metadata")
    if models is not None and alembic is not None and alembic - models > 0.02:
        for name in ("status warm", "status cold"):
            if name in med:
                out[f"{label}: {name} net of the models' import / alembic's"] = ratio_entry(
                    ratio(med[name] - models, alembic - models), numerator=f"{name} - import models only",
                    baseline="alembic compare_metadata - import models only")
    return out


def measure_rss(n: int, tmp: Path, repeat: int) -> dict:
    models = tmp / f"rss_{n}.py"
    spec = write_wide_models(models, n)
    db = tmp / f"rss_{n}.db"
    url = f"sqlite:///{db}"
    spawn([sys.executable, "-c", CREATE, spec, url])
    warm_dir = tmp / "data-rss-warm"
    env_warm = child_env(MIGRATION_DATA_DIR=str(warm_dir))
    spawn(_status_cmd(url, spec), env=env_warm)
    runs: dict[str, list[int]] = {"status warm": [], "status cold": [], "import models only": []}
    for _ in range(repeat):
        runs["status warm"].append(spawn(_status_cmd(url, spec), env=env_warm, rss=True).maxrss_kb)
        cold = Path(tempfile.mkdtemp(prefix="data-rss-cold-", dir=tmp))
        runs["status cold"].append(spawn(_status_cmd(url, spec), env=child_env(MIGRATION_DATA_DIR=str(cold)), rss=True).maxrss_kb)
        shutil.rmtree(cold, ignore_errors=True)
        runs["import models only"].append(spawn([sys.executable, "-c", IMPORT_MODELS, spec], rss=True).maxrss_kb)
    return {k: sorted(v)[len(v) // 2] for k, v in runs.items()}


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(NAME, __doc__.split("\n\n")[0], repeat=3)
    p.add_argument("--tables", type=int, default=500, help="generated tables (20 columns each; default 500; 0 skips them)")
    p.add_argument("--dbs", default="sqlite,postgresql,mysql", help="comma-separated: sqlite, postgresql, mysql")
    p.add_argument("--app", action="append", default=[], help="an application's models, module:attr, on each of --dbs (repeatable)")
    p.add_argument("--baseline", default=None, help="a checkout of another version (e.g. main) whose status runs alongside")
    p.add_argument("--rss-tables", type=int, default=2000, help="tables for the peak-RSS figure (0 skips it; default 2000)")
    args = p.parse_args(argv)
    results: dict[str, dict] = {}
    ratios: dict[str, dict] = {}
    goals_schema = {"warm_alembic": 0.5, "cold_alembic": 1.0}
    with workdir(args, NAME) as tmp:
        spec = write_wide_models(tmp / f"wide_{args.tables}.py", args.tables, portable=True)
        kinds = [k.strip() for k in args.dbs.split(",") if k.strip()]
        for kind in kinds if args.tables else []:
            label = f"{kind}, {args.tables} tables"
            with _database(kind, tmp, "wide") as url:
                spawn([sys.executable, "-c", CREATE, spec, url])
                results[label] = measure_db(kind, url, spec, tmp, args)
            goals = dict(goals_schema, **({"warm_models": 1.15} if kind == "sqlite" else {}))
            ratios.update(_ratios(label, results[label], goals=goals))
            write_results(NAME, args, {"results": results, "ratios": ratios, "partial": True})  # kept if a later part fails
        for app in args.app:
            name = app.split(":")[0].removeprefix("bench.").split(".")[0].removesuffix("_models")
            for kind in kinds:
                label = f"{name} ({kind})"
                with _database(kind, tmp, name, app=True) as url:
                    try:
                        # Created by migrate: an application's models need not survive a bare create_all (Prefect 3
                        # declares one index twice, which migrate creates once).
                        spawn([CLI, "--database-url", url, "--models", app, "migrate", "--no-backup"],
                              env=child_env(MIGRATION_DATA_DIR=str(tmp / "data-create")))
                        results[label] = measure_db(f"{name}-{kind}", url, app, tmp, args)
                    except RuntimeError as exc:  # an application whose models this database refuses: said, not fatal
                        results[label] = {"notes": [str(exc).splitlines()[-1][:300]]}
                ratios.update(_ratios(label, results[label], goals={"warm_alembic": 0.8, "cold_alembic": 0.8}))
                write_results(NAME, args, {"results": results, "ratios": ratios, "partial": True})
        rss = None
        if args.rss_tables:
            rss = measure_rss(args.rss_tables, tmp, max(1, min(args.repeat, 3)))
            for name in ("status warm", "status cold"):
                ratios[f"peak RSS, {args.rss_tables} tables: {name} / import models only"] = ratio_entry(
                    ratio(rss[name], rss["import models only"]), numerator=name, baseline="import models only",
                    goal=1.3 if name == "status warm" else None)
    rows = []
    for label, res in results.items():
        base = res.get("alembic compare_metadata", {}).get("median_s")
        for name, s in res.items():
            if name == "notes":
                continue
            rows.append([label, name, fmt_s(s["median_s"]), fmt_s(s["min_s"]), fmt_s(s["max_s"]), fmt_ratio(ratio(s["median_s"], base))])
    print_table(["database", "process", "median", "min", "max", "/ alembic"], rows, title=f"{NAME}: whole processes, median of {args.repeat}")
    if rss:
        print_table(["process", "peak RSS MB"], [[k, f"{v / 1024:.1f}"] for k, v in rss.items()],
                    title=f"peak RSS, SQLite, {args.rss_tables} tables (median)")
    print_ratios(ratios)
    for label, res in results.items():
        for note in res.get("notes", []):
            print(f"note ({label}): {note}")
    payload = {"results": results, "rss_kb": rss, "ratios": ratios}
    write_results(NAME, args, payload)
    return payload


if __name__ == "__main__":
    main()
