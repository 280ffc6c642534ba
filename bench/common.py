"""Shared helpers: interleaved timing with medians, subprocess wall time and peak RSS, ratios,
JSON results with machine info, and a small text table."""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ---- command line ---------------------------------------------------------------------------

def base_parser(name: str, description: str, *, repeat: int = 5) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    p.add_argument("--repeat", type=int, default=repeat, help=f"timed repetitions per contender; the median is reported (default {repeat})")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds before the timed ones (default 1)")
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where <name>.json goes (default bench/results)")
    p.add_argument("--workdir", type=Path, default=None, help="parent folder for generated data (default: the system temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the generated data folder (its path is printed)")
    return p


@contextlib.contextmanager
def workdir(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """A fresh folder for generated models and databases, removed afterwards unless --keep."""
    parent = args.workdir
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"mcp-bench-{name}-", dir=parent))
    try:
        yield path
    finally:
        if args.keep:
            print(f"generated data kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# ---- timing ---------------------------------------------------------------------------------

@dataclass
class Contender:
    """`run(state)` is timed; `setup()` (untimed) makes its state, `teardown(state)` cleans up."""

    name: str
    run: Callable[[Any], Any]
    setup: Callable[[], Any] | None = None
    teardown: Callable[[Any], None] | None = None
    check: Callable[[Any], None] | None = None  # called (untimed) with run's return value
    samples: list[float] = field(default_factory=list)
    last: Any = None


def run_rounds(contenders: list[Contender], repeat: int, *, warmup: int = 1, label: str = "") -> dict[str, list[float]]:
    """Interleave the contenders round by round, rotating the order each round, so that load
    from other processes on a shared machine hits all of them alike. Returns seconds per sample."""
    total = warmup + repeat
    for rnd in range(total):
        shift = rnd % len(contenders)
        order = contenders[shift:] + contenders[:shift]
        for c in order:
            state = c.setup() if c.setup else None
            gc.collect()
            t0 = time.perf_counter()
            out = c.run(state)
            elapsed = time.perf_counter() - t0
            if c.check:
                c.check(out)
            c.last = out
            if c.teardown:
                c.teardown(state)
            if rnd >= warmup:
                c.samples.append(elapsed)
        if label:
            done = rnd + 1
            print(f"  {label}: round {done}/{total}" + (" (warm-up)" if rnd < warmup else ""), file=sys.stderr, flush=True)
    return {c.name: list(c.samples) for c in contenders}


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(samples) if samples else None,
        "min_s": min(samples) if samples else None,
        "max_s": max(samples) if samples else None,
        "n": len(samples),
        "samples_s": [round(s, 6) for s in samples],
    }


def ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def ratio_entry(value: float | None, *, numerator: str, baseline: str, goal: float | None = None,
                unit: str = "x", note: str = "") -> dict[str, Any]:
    """One reported figure: `numerator / baseline`, with an upper-bound goal when there is one."""
    return {
        "value": None if value is None else round(value, 4),
        "unit": unit,
        "numerator": numerator,
        "baseline": baseline,
        "goal": None if goal is None else f"<= {goal:g}{unit if unit == 'x' else ' ' + unit}",
        "met": None if value is None or goal is None else bool(value <= goal),
        "note": note,
    }


# ---- subprocesses ---------------------------------------------------------------------------

@dataclass
class ProcResult:
    wall_s: float
    maxrss_kb: int
    returncode: int
    stdout: str
    stderr: str


_RSS_LAUNCHER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(rc)\n"
)


def spawn(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True,
          rss: bool = False) -> ProcResult:
    """Run `cmd`; return its wall time (and with `rss=True` its peak RSS in KiB, else 0).

    Peak RSS goes through a minimal launcher process that runs `cmd` as its only child and
    reports getrusage(RUSAGE_CHILDREN).ru_maxrss: Linux carries the RSS high-water mark of
    the forking process over into the child's ru_maxrss at exec, so a child started straight
    from this (large) benchmark process would report at least this process's RSS. The launcher
    (python -S, about 10 MB) is the floor of the measurement instead."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "maxrss"
        full = [sys.executable, "-S", "-c", _RSS_LAUNCHER, str(rss_file), *cmd] if rss else cmd
        t0 = time.perf_counter()
        proc = subprocess.run(full, cwd=cwd or REPO_ROOT, env=env or child_env(), stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        maxrss = int(rss_file.read_text()) if rss and rss_file.exists() else 0
        res = ProcResult(wall, maxrss, proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    if check and res.returncode != 0:
        raise RuntimeError(f"command failed ({res.returncode}): {' '.join(cmd)[:300]}\n{res.stderr[-3000:]}")
    return res


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # generated models files get their bytecode cached, as installed code would
    env.update(extra)
    return env


def python_c(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# ---- results --------------------------------------------------------------------------------

def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for mod in ("sqlalchemy", "alembic", "pydantic"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            out[mod] = None
    return out


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if head.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "mem_total_mb": _mem_total_mb(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": _versions(),
        "git": _git_commit(),
    }


def write_results(name: str, args: argparse.Namespace, payload: dict[str, Any]) -> Path:
    """Write the run's JSON (machine facts and parameters added) and say where."""
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("out_dir", "workdir", "keep")}
    doc = {
        "benchmark": name,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "params": params,
        **payload,
    }
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    print(f"\nwrote {path}")
    return path


# ---- output ---------------------------------------------------------------------------------

def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + fmt_s(-seconds)
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(value: float | None, unit: str = "x") -> str:
    if value is None:
        return "-"
    return f"{value:.2f}{unit}" if unit == "x" else f"{value:.1f} {unit}"


def print_table(headers: list[str], rows: list[list[Any]], *, title: str | None = None) -> None:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if title:
        print(f"\n{title}")
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(cells[0], widths)))
    print(line)
    for r in cells[1:]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def print_ratios(ratios: dict[str, dict[str, Any]], title: str = "ratios (same run)") -> None:
    rows = []
    for key, r in ratios.items():
        met = {True: "yes", False: "NO", None: "-"}[r["met"]]
        rows.append([key, fmt_ratio(r["value"], r["unit"]), r["baseline"], r["goal"] or "-", met])
    print_table(["figure", "value", "baseline", "goal", "met"], rows, title=title)


def have_alembic() -> bool:
    try:
        import alembic  # noqa: F401
    except ImportError:
        return False
    return True


# ---- profiles -------------------------------------------------------------------------------

def add_profile_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", action="store_true",
                   help="after the timed rounds, run our contender once more under cProfile and print/store the top entries")
    p.add_argument("--profile-top", type=int, default=15, help="entries to show with --profile (default 15)")


def format_stats(stats, top: int) -> list[dict[str, Any]]:
    """Top entries by cumulative time of a pstats.Stats, as JSON-friendly rows."""
    import pstats

    stats.sort_stats(pstats.SortKey.CUMULATIVE)
    out = []
    for func in stats.fcn_list[:top]:  # type: ignore[attr-defined]
        cc, nc, tt, ct, _callers = stats.stats[func]  # type: ignore[attr-defined]
        filename, line, name = func
        where = name if filename == "~" else f"{_short_path(filename)}:{line}({name})"
        out.append({"function": where, "ncalls": nc, "tottime_s": round(tt, 4), "cumtime_s": round(ct, 4)})
    return out


def _short_path(filename: str) -> str:
    for marker in (str(REPO_ROOT) + os.sep, "site-packages" + os.sep, "lib" + os.sep + "python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def profile_call(fn: Callable[[], Any], top: int) -> list[dict[str, Any]]:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    return format_stats(pstats.Stats(prof), top)


def print_profile(rows: list[dict[str, Any]], title: str) -> None:
    print_table(["function", "calls", "tottime s", "cumtime s"],
                [[r["function"], r["ncalls"], f"{r['tottime_s']:.3f}", f"{r['cumtime_s']:.3f}"] for r in rows], title=title)
