"""backup_throughput: `create_backup` + `verify_backup` of a ~1 GiB SQLite file, against
`cp` + `sha256sum` of the same file.

Contenders (interleaved, order rotated each round; `sync` runs untimed before each, so dirty
pages left by one contender are not written back on another's time):
- create_backup + verify_backup: BackupManager of AutoMigrationSystem; the copy goes through
  SQLite's online backup API (consistent while other connections write), is hashed, fsynced,
  renamed into place with JSON metadata; verify re-hashes it and runs PRAGMA quick_check;
- baseline: `cp src dst` then `sha256sum dst` (two processes, no fsync, no consistency);
- reference: `cp`, `sync dst` (fsync), `sha256sum dst`: the same durability as ours;
- reference: `cp` + `openssl dgst -sha256` (when openssl is on PATH): a hash that uses the
  CPU's SHA instructions, as Python's hashlib does (coreutils' sha256sum may not).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

from . import gen
from .common import (Contender, base_parser, fmt_s, print_ratios, print_table, ratio, ratio_entry, run_rounds, summary, workdir,
                     write_results)

NAME = "backup_throughput"


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(NAME, __doc__.split("\n")[0], repeat=3)
    p.add_argument("--size-mb", type=int, default=1024, help="size of the database file in MiB (default 1024)")
    args = p.parse_args(argv)

    from migration_core import AutoMigrationSystem, MigrationSettings

    with workdir(args, NAME) as wd:
        db = wd / "big.db"
        print(f"writing a {args.size_mb} MiB database in {wd}", file=sys.stderr)
        gen.make_big_db(db, args.size_mb)
        size = db.stat().st_size
        backup_dir = wd / "backups"
        system = AutoMigrationSystem(MigrationSettings(database_url=f"sqlite:///{db}", backup_dir=backup_dir))
        parts: dict[str, list[float]] = {"create_backup": [], "verify_backup": [], "cp": [], "sha256sum": [], "sync": [],
                                         "openssl dgst -sha256": []}

        def ours(_):
            t0 = time.perf_counter()
            info = system.backups.create_backup("benchmark")
            t1 = time.perf_counter()
            checked = system.backups.verify_backup(info.id)
            t2 = time.perf_counter()
            if not checked.verified or checked.size_bytes != size:
                raise RuntimeError(f"backup not verified: {checked}")
            parts["create_backup"].append(t1 - t0)
            parts["verify_backup"].append(t2 - t1)
            return info

        def drop_ours(_):
            for f in backup_dir.iterdir():
                f.unlink()

        dst = wd / "copy.db"

        def cp_hash(hasher: list[str], with_sync: bool, key: str | None):
            def run(_):
                t0 = time.perf_counter()
                subprocess.run(["cp", str(db), str(dst)], check=True)
                t1 = time.perf_counter()
                if with_sync:
                    subprocess.run(["sync", str(dst)], check=True)
                t2 = time.perf_counter()
                out = subprocess.run([*hasher, str(dst)], check=True, capture_output=True, text=True).stdout
                t3 = time.perf_counter()
                if key == "baseline":
                    parts["cp"].append(t1 - t0)
                    parts["sha256sum"].append(t3 - t2)
                elif key == "sync":
                    parts["sync"].append(t2 - t1)
                elif key == "openssl":
                    parts["openssl dgst -sha256"].append(t3 - t2)
                return out
            return run

        def settle():
            os.sync()

        contenders = [
            Contender("create_backup + verify_backup", ours, setup=settle, teardown=drop_ours),
            Contender("baseline: cp + sha256sum", cp_hash(["sha256sum"], False, "baseline"), setup=settle,
                      teardown=lambda _: dst.unlink()),
            Contender("reference: cp + sync + sha256sum", cp_hash(["sha256sum"], True, "sync"), setup=settle,
                      teardown=lambda _: dst.unlink()),
        ]
        if shutil.which("openssl"):
            # coreutils' sha256sum may not use the CPU's SHA extensions; OpenSSL (like Python's hashlib) does.
            contenders.append(Contender("reference: cp + openssl dgst -sha256", cp_hash(["openssl", "dgst", "-sha256"], False, "openssl"),
                                        setup=settle, teardown=lambda _: dst.unlink()))
        samples = run_rounds(contenders, args.repeat, warmup=args.warmup, label=NAME)

    med = {k: summary(v)["median_s"] for k, v in samples.items()}
    pmed = {k: statistics.median(v) if v else None for k, v in parts.items()}
    base = med["baseline: cp + sha256sum"]
    ours_med = med["create_backup + verify_backup"]
    ratios = {
        "backup+verify / cp+sha256sum": ratio_entry(ratio(ours_med, base), numerator="create_backup + verify_backup",
                                                    baseline="cp + sha256sum", goal=2),
        "backup+verify / cp+sync+sha256sum": ratio_entry(ratio(ours_med, med["reference: cp + sync + sha256sum"]),
                                                         numerator="create_backup + verify_backup", baseline="cp + sync + sha256sum"),
        "backup+verify / cp+openssl sha256": ratio_entry(ratio(ours_med, med.get("reference: cp + openssl dgst -sha256")),
                                                         numerator="create_backup + verify_backup", baseline="cp + openssl dgst -sha256"),
        "create_backup / cp": ratio_entry(ratio(pmed["create_backup"], pmed["cp"]), numerator="create_backup", baseline="cp"),
        "verify_backup / sha256sum": ratio_entry(ratio(pmed["verify_backup"], pmed["sha256sum"]), numerator="verify_backup",
                                                 baseline="sha256sum"),
    }
    mib = size / 2**20
    rows = [[name, fmt_s(sm["median_s"]), fmt_s(sm["min_s"]), fmt_s(sm["max_s"]), f"{mib / sm['median_s']:.0f}",
             f"{ratio(sm['median_s'], base):.2f}x"] for name, sm in ((n, summary(s)) for n, s in samples.items())]
    print_table(["contender", "median", "min", "max", "MiB/s", "/ baseline"], rows,
                title=f"{NAME}: {mib:.0f} MiB SQLite file, median of {args.repeat}")
    print_table(["part", "median", "MiB/s"], [[k, fmt_s(v), f"{mib / v:.0f}" if v else "-"] for k, v in pmed.items()])
    print_ratios(ratios)
    payload = {
        "sizes": {"size_mb": args.size_mb, "file_bytes": size},
        "results": {k: summary(v) for k, v in samples.items()},
        "parts_median_s": pmed,
        "ratios": ratios,
        "notes": ["`sync` ran untimed before every contender; our backup fsyncs its file, cp does not (see the reference row)"],
    }
    write_results(NAME, args, payload)
    return payload


if __name__ == "__main__":
    main()
