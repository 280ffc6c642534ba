"""cli_help: wall time of `migration-mcp --help`, `--version` and an argument error, in fresh
processes, against `python -c pass` (the interpreter's own start, the floor).

A user who mistypes a flag waits for this, so none of these answers may import SQLAlchemy,
pydantic or the MCP SDK. The script also runs `--help` once in a child that reports which of
those heavy packages ended up in `sys.modules`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .common import (Contender, base_parser, child_env, fmt_s, print_ratios, print_table, python_c, ratio, ratio_entry,
                     run_rounds, spawn, summary, workdir, write_results)

NAME = "cli_help"
CONSOLE_SCRIPT = Path(sys.executable).parent / ("migration-mcp.exe" if os.name == "nt" else "migration-mcp")
HEAVY = ("sqlalchemy", "pydantic", "pydantic_settings", "mcp")
COMMANDS = {
    "migration-mcp --help": ["--help"],
    "migration-mcp --version": ["--version"],
    "migration-mcp --no-such-flag (exit 2)": ["--no-such-flag"],
    "migration-mcp migrate --help": ["migrate", "--help"],
}
LOADED = """
import json, sys
from server.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in %r)), file=sys.stderr)
""" % (HEAVY,)


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(NAME, __doc__.split("\n")[0], repeat=15)
    args = p.parse_args(argv)
    with workdir(args, NAME) as wd:
        env = child_env(MIGRATION_DATA_DIR=str(wd / "data"))
        contenders = [Contender("python -c 'pass'", lambda _: spawn(python_c("pass"), env=env))]
        for label, cli_args in COMMANDS.items():
            contenders.append(Contender(label, lambda _, a=cli_args: spawn([str(CONSOLE_SCRIPT), *a], env=env, check=False)))
        samples = run_rounds(contenders, args.repeat, warmup=args.warmup, label=NAME)
        loaded = {label: json.loads(spawn(python_c(LOADED) + a, env=env).stderr.strip().splitlines()[-1])
                  for label, a in COMMANDS.items()}
        data_dir_created = (wd / "data").exists()

    med = {k: summary(v)["median_s"] for k, v in samples.items()}
    base = med["python -c 'pass'"]
    rows = [[k, fmt_s(summary(v)["median_s"]), fmt_s(summary(v)["min_s"]), fmt_s(summary(v)["max_s"]),
             fmt_s(med[k] - base), f"{ratio(med[k], base):.2f}x"] for k, v in samples.items()]
    ratios = {}
    for label in COMMANDS:
        ratios[f"{label}, net"] = ratio_entry((med[label] - base) * 1000, unit="ms", goal=150,
                                              numerator=f"{label} process wall time", baseline="minus python -c 'pass'")
    print_table(["process", "median", "min", "max", "minus baseline", "/ baseline"], rows,
                title=f"{NAME}: fresh processes, median of {args.repeat}")
    print_table(["command", "heavy packages imported"], [[k, ", ".join(sorted({m.split('.')[0] for m in v})) or "none"]
                                                          for k, v in loaded.items()])
    print_ratios(ratios)
    payload = {
        "results": {k: summary(v) for k, v in samples.items()},
        "heavy_modules_loaded": loaded,
        "data_dir_created": data_dir_created,
        "ratios": ratios,
        "notes": ["net = median wall time of the console script minus that of python -c 'pass', same run"],
    }
    write_results(NAME, args, payload)
    return payload


if __name__ == "__main__":
    main()
