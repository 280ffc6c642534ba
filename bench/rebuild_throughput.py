"""rebuild_throughput: a column type change that forces a SQLite table rebuild, on a table of
N rows (default 1M; mixed types, 2 indexes, 1 trigger, a child table with a foreign key to it).

Each contender starts from its own copy of the same prepared file (copied untimed):
- migrate: AutoMigrationSystem(settings with the changed models).execute_auto_migration(
  create_backup=False): load + normalize the models, compare, assess (the type change is
  checked against every row), plan on a shadow schema, run, verify, record history;
- floor: the 12-step rebuild written by hand in raw sqlite3 (foreign_keys off, BEGIN, CREATE
  new, INSERT..SELECT, DROP, RENAME, CREATE INDEX x2, CREATE TRIGGER, foreign_key_check,
  COMMIT), i.e. what the database itself needs;
- alembic batch: Operations(MigrationContext.configure(conn)).batch_alter_table("items")
  .alter_column(type_=...), then the trigger re-created (batch mode drops it with the table).
Each result is checked (untimed): every row, the new type, both indexes and the trigger.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from . import gen
from .common import (Contender, add_profile_option, base_parser, fmt_s, have_alembic, print_profile, print_ratios, print_table,
                     profile_call, ratio, ratio_entry, run_rounds, summary, workdir, write_results)

NAME = "rebuild_throughput"


def prepare(wd: Path, rows: int, change: str) -> tuple[Path, str, str]:
    before = gen.write_rebuild_models(wd / "models_before.py", change, after=False)
    after = gen.write_rebuild_models(wd / "models_after.py", change, after=True)
    template = wd / "prepared.db"
    gen.create_with_sqlalchemy(template, before)
    gen.fill_rebuild_db(template, rows)
    return template, before, after


def run_ours(db: Path, models: str, backup_dir: Path):
    from migration_core import AutoMigrationSystem, MigrationSettings

    settings = MigrationSettings(database_url=f"sqlite:///{db}", models=models, backup_dir=backup_dir)
    result = AutoMigrationSystem(settings).execute_auto_migration(create_backup=False, timeout_ms=3_600_000)
    if not result.success or not result.operations_executed:
        raise RuntimeError(f"migrate did not rebuild: {result}")
    return result


def run_alembic(db: Path, change: str) -> None:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy import BigInteger, Integer, String, create_engine, text

    col, _, _ = gen.REBUILD_CHANGES[change]
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            op = Operations(MigrationContext.configure(conn))
            with op.batch_alter_table(gen.REBUILD_TABLE) as batch:
                if col == "qty":
                    batch.alter_column("qty", type_=BigInteger(), existing_type=Integer(), existing_nullable=False,
                                       existing_server_default=text("0"))
                else:
                    batch.alter_column("name", type_=String(255), existing_type=String(64), existing_nullable=True)
            op.execute(gen.REBUILD_TRIGGER_SQL)
    finally:
        engine.dispose()


def matches_target(db: Path, models: str, backup_dir: Path) -> bool:
    from migration_core import AutoMigrationSystem, MigrationSettings

    settings = MigrationSettings(database_url=f"sqlite:///{db}", models=models, backup_dir=backup_dir)
    status = AutoMigrationSystem(settings).check_migration_status()
    return not status.migration_needed


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(NAME, __doc__.split("\n")[0], repeat=5)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows in the rebuilt table (default 1,000,000)")
    p.add_argument("--change", choices=sorted(gen.REBUILD_CHANGES), default="int-to-bigint",
                   help="the type change (default int-to-bigint: qty INTEGER -> BIGINT, checked against the data)")
    add_profile_option(p)
    args = p.parse_args(argv)

    alembic_ok = have_alembic()
    with workdir(args, NAME) as wd:
        print(f"preparing {args.rows} rows in {wd}", file=sys.stderr)
        template, before, after = prepare(wd, args.rows, args.change)
        size = template.stat().st_size
        if not matches_target(template, before, wd / "backups"):
            raise RuntimeError("the prepared database does not match its own models")
        copies = iter(range(10**9))

        def fresh_copy() -> Path:
            dest = wd / f"run-{next(copies)}.db"
            shutil.copyfile(template, dest)
            return dest

        def remove(db: Path) -> None:
            for suffix in ("", "-journal", "-wal", "-shm", ".migration.lock", ".lock"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)

        checked: dict[str, Path] = {}

        def checker(name: str):
            def check(db: Path) -> None:
                gen.check_rebuilt(db, args.change, args.rows)
                if name not in checked:  # keep the first result for the schema comparison below
                    keep = wd / f"result-{len(checked)}.db"
                    shutil.copyfile(db, keep)
                    checked[name] = keep
            return check

        def timed(fn):
            def run(db: Path) -> Path:
                fn(db)
                return db
            return run

        contenders = [
            Contender("migrate (backup off)", timed(lambda db: run_ours(db, after, wd / "backups")), setup=fresh_copy,
                      teardown=remove, check=checker("migrate")),
            Contender("floor: hand-written 12-step", timed(lambda db: gen.run_rebuild_floor(db, args.change)), setup=fresh_copy,
                      teardown=remove, check=checker("floor")),
        ]
        if alembic_ok:
            contenders.append(Contender("alembic batch_alter_table", timed(lambda db: run_alembic(db, args.change)),
                                        setup=fresh_copy, teardown=remove, check=checker("alembic")))
        samples = run_rounds(contenders, args.repeat, warmup=args.warmup, label=NAME)
        same_schema = {name: matches_target(db, after, wd / "backups") for name, db in checked.items()}
        profile = None
        if args.profile:
            db = fresh_copy()
            profile = profile_call(lambda: run_ours(db, after, wd / "backups"), args.profile_top)
            remove(db)

    med = {k: summary(v)["median_s"] for k, v in samples.items()}
    floor = med["floor: hand-written 12-step"]
    alembic_med = med.get("alembic batch_alter_table")
    ours = med["migrate (backup off)"]
    ratios = {
        "migrate / floor": ratio_entry(ratio(ours, floor), numerator="migrate (backup off)", baseline="hand-written 12-step rebuild",
                                       goal=1.3),
        "migrate / alembic batch": ratio_entry(ratio(ours, alembic_med), numerator="migrate (backup off)",
                                               baseline="alembic batch_alter_table", goal=1.0),
        "alembic batch / floor": ratio_entry(ratio(alembic_med, floor), numerator="alembic batch_alter_table",
                                             baseline="hand-written 12-step rebuild"),
    }
    # On a shared machine the least disturbed run is a useful second view of the same samples.
    mins = {k: summary(v)["min_s"] for k, v in samples.items()}
    ratios["migrate / floor, fastest runs"] = ratio_entry(ratio(mins["migrate (backup off)"], mins["floor: hand-written 12-step"]),
                                                          numerator="migrate, min", baseline="12-step rebuild, min")
    ratios["migrate / alembic batch, fastest runs"] = ratio_entry(ratio(mins["migrate (backup off)"], mins.get("alembic batch_alter_table")),
                                                                  numerator="migrate, min", baseline="alembic batch, min")
    rows = []
    for name, s in samples.items():
        sm = summary(s)
        rows.append([name, fmt_s(sm["median_s"]), fmt_s(sm["min_s"]), fmt_s(sm["max_s"]),
                     f"{args.rows / sm['median_s']:,.0f}", f"{ratio(sm['median_s'], floor):.2f}x"])
    print_table(["contender", "median", "min", "max", "rows/s", "/ floor"], rows,
                title=f"{NAME}: {args.rows:,} rows ({size / 2**20:.0f} MiB file), change {args.change}, median of {args.repeat}")
    print("result schema matches the target models (check_status reports nothing to do): "
          + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in same_schema.items()))
    print_ratios(ratios)
    if profile:
        print_profile(profile, "profile of one migrate (cProfile, by cumulative time)")
    notes = ["every contender starts from its own copy of the same prepared file; copies are made outside the timing"]
    if not alembic_ok:
        notes.append("alembic is not installed (pip install -e '.[bench]'): its figures are missing")
    payload = {
        "sizes": {"rows": args.rows, "file_bytes": size, "change": args.change},
        "results": {k: summary(v) for k, v in samples.items()},
        "result_matches_target": same_schema,
        "ratios": ratios,
        "profile": profile,
        "notes": notes,
    }
    # The default change writes rebuild_throughput.json; another one rebuild_throughput-<change>.json.
    write_results(NAME if args.change == "int-to-bigint" else f"{NAME}-{args.change}", args, payload)
    return payload


if __name__ == "__main__":
    main()
