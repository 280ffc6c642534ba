"""Benchmarks for migration-mcp (issue 5). Run each as `python -m bench.<name>` from the repo root.

Absolute times on a shared machine are noisy, so every benchmark reports ratios against a
baseline measured in the same run (see bench/README.md). Not part of pytest or CI; only a
tiny smoke run of each script is (tests/test_bench_smoke.py).
"""
