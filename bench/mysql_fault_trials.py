"""MariaDB fault trials: N `migrate` processes hit while they run an ALTER (kill -9, KILL CONNECTION of
their session, SIGINT, SIGTERM), each followed by the next command (alternately `migrate` and
`rollback`); every trial must end wholly old or wholly new with every row kept (tests/mysql_trials.py).
Creates and drops its own databases; writes bench/results/mysql_fault_trials.json.

    python -m bench.mysql_fault_trials [--trials 20] [--signal-trials 5] [--rows 100000] [--seed S]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from mysql_trials import Trials, next_command_for  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20, help="kill -9 and KILL CONNECTION trials each")
    p.add_argument("--signal-trials", type=int, default=5, help="SIGINT and SIGTERM trials each")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "mysql_fault_trials.json")
    args = p.parse_args()
    rng = random.Random(args.seed)
    plan = [(f, n) for f, n in (("kill9", args.trials), ("conn", args.trials), ("sigint", args.signal_trials),
                                ("sigterm", args.signal_trials))]
    outcomes, failures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        trials = Trials(Path(tmp), rows=args.rows)
        for fault, n in plan:
            for i in range(n):
                started = time.monotonic()
                try:
                    o = trials.run(fault, i, rng, next_command_for(i))
                    outcomes.append(o)
                    print(f"{fault:8s} #{i:2d} +{o.delay_ms:4d} ms exit {o.exit_code:4d}  before next: {o.before_next:4s}  "
                          f"{o.next_command:8s} -> {o.after_next:4s}  run {o.interrupted_run:11s} ({time.monotonic() - started:.0f} s)",
                          flush=True)
                except AssertionError as exc:
                    failures.append((fault, i, str(exc)))
                    print(f"{fault:8s} #{i:2d} FAILED: {exc}", flush=True)
    summary = {}
    for fault, n in plan:
        mine = [o for o in outcomes if o.fault == fault]
        summary[fault] = {"trials": n, "wholly_old_or_new_after_next": len(mine),
                          "failed": sum(1 for f in failures if f[0] == fault),
                          "state_right_after_fault": dict(Counter(o.before_next for o in mine)),
                          "faulted_run_recorded_as": dict(Counter(o.interrupted_run for o in mine))}
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seed": args.seed, "rows": args.rows, "summary": summary,
                                    "outcomes": [dataclasses.asdict(o) for o in outcomes], "failures": failures}, indent=2))
    print(f"wrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
