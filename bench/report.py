"""report: one Markdown table of every ratio in bench/results/*.json (or --out-dir), with its
baseline and goal, as pasted into bench/README.md.

    python -m bench.report            # read the results
    python -m bench.report --run      # first run every benchmark at its default size
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from .common import REPO_ROOT, RESULTS_DIR

ORDER = ["status_large_schema", "startup_noop", "rebuild_throughput", "backup_throughput", "memory", "cli_help"]


def fmt_value(r: dict) -> str:
    v = r.get("value")
    if v is None:
        return "n/a"
    return f"{v:.2f}x" if r.get("unit", "x") == "x" else f"{v:.0f} {r['unit']}" if abs(v) >= 10 else f"{v:.1f} {r['unit']}"


def markdown(out_dir: Path) -> str:
    lines = ["| benchmark | figure | value | baseline (same run) | goal | met |", "|---|---|---|---|---|---|"]
    machine = None
    names = []
    for name in ORDER:
        names.append(name)
        names += sorted(p.stem for p in out_dir.glob(f"{name}-*.json"))
    for name in names:
        path = out_dir / f"{name}.json"
        if not path.is_file():
            lines.append(f"| {name} | (not run) | | | | |")
            continue
        doc = json.loads(path.read_text())
        machine = machine or doc.get("machine")
        sizes = ", ".join(f"{k}={v}" for k, v in doc.get("sizes", {}).items() if k not in ("file_bytes", "default_models"))
        for key, r in doc["ratios"].items():
            met = {True: "yes", False: "**no**", None: ""}[r.get("met")]
            lines.append(f"| {name} ({sizes}) | {key} | {fmt_value(r)} | {r['baseline']} | {r.get('goal') or ''} | {met} |")
    if machine:
        v = machine.get("versions", {})
        lines.append("")
        lines.append(f"Machine: {machine.get('cpu')} x{machine.get('cpu_count')}, {machine.get('mem_total_mb')} MB RAM, "
                     f"Python {v.get('python')}, SQLite {v.get('sqlite')}, SQLAlchemy {v.get('sqlalchemy')}, "
                     f"Alembic {v.get('alembic')}; commit {machine.get('git')}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    p.add_argument("--run", action="store_true", help="run every benchmark at its default size first (several minutes)")
    args = p.parse_args(argv)
    if args.run:
        for name in ORDER:
            print(f"== bench.{name}", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", f"bench.{name}", "--out-dir", str(args.out_dir)], cwd=REPO_ROOT, check=True)
    print(markdown(args.out_dir))


if __name__ == "__main__":
    main()
