"""Smoke run of every benchmark script at tiny sizes (the benchmarks themselves are not tests).

Each script runs in a subprocess as `python -m bench.<name>`, writes its JSON into a temp
folder, and must report every ratio with its baseline. Figures are not checked: tiny sizes
on a shared machine say nothing about performance.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HAVE_ALEMBIC = importlib.util.find_spec("alembic") is not None

TINY = {
    "status_large_schema": ["--tables", "6", "--profile"],
    "startup_noop": ["--tables", "3"],
    "rebuild_throughput": ["--rows", "300", "--profile"],
    "backup_throughput": ["--size-mb", "1"],
    "memory": ["--rows-small", "100", "--rows", "300", "--tables", "4"],
    "cli_help": [],
    "status_cold": ["--tables", "4", "--dbs", "sqlite", "--rss-tables", "6"],
}
# Ratios whose baseline is Alembic: null when it is not installed.
NEEDS_ALEMBIC = {"check_status cold / alembic", "check_status warm / alembic", "alembic / floor", "migrate / alembic batch",
                 "alembic batch / floor", "migrate / alembic batch, fastest runs"}


@pytest.mark.parametrize("name", sorted(TINY))
def test_bench_script_runs_tiny(name, tmp_path):
    cmd = [sys.executable, "-m", f"bench.{name}", *TINY[name], "--repeat", "1", "--warmup", "0",
           "--out-dir", str(tmp_path / "results"), "--workdir", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ratios (same run)" in proc.stdout

    out = tmp_path / "results" / f"{name}.json"
    assert out.is_file()
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == name
    assert doc["machine"]["cpu_count"] and doc["machine"]["versions"]["sqlite"]
    assert doc["results"]
    ratios = doc["ratios"]
    assert ratios
    for key, r in ratios.items():
        assert {"value", "unit", "numerator", "baseline", "goal", "met"} <= set(r), key
        if HAVE_ALEMBIC or key not in NEEDS_ALEMBIC:
            assert isinstance(r["value"], (int, float)), (key, r)
        if r["goal"] is not None and r["value"] is not None:
            assert isinstance(r["met"], bool), key
    # Generated data lives in the temp folder and is removed afterwards.
    assert not any((tmp_path / "work").iterdir())


def test_bench_json_never_lands_in_repo_results_during_smoke(tmp_path):
    """--out-dir is honoured: the committed default-size results are not overwritten by tiny runs."""
    results = REPO / "bench" / "results"
    before = {p.name: p.stat().st_mtime for p in results.glob("*.json")} if results.is_dir() else {}
    subprocess.run([sys.executable, "-m", "bench.backup_throughput", "--size-mb", "1", "--repeat", "1", "--warmup", "0",
                    "--out-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    after = {p.name: p.stat().st_mtime for p in results.glob("*.json")} if results.is_dir() else {}
    assert before == after
    assert (tmp_path / "backup_throughput.json").is_file()
