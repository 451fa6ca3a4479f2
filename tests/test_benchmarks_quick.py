"""The benchmarks stay runnable: ``benchmarks/run.py --quick`` exits 0 and prints its ratios.

Sized down further than --quick itself (one section each, smallest sizes) so that CI
spends well under a minute here; peers that are not installed are reported, never fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def _run(tmp_path: Path, *args: str) -> str:
    env = dict(os.environ)
    env["LLMCOST_BENCH_TINY"] = "1"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--json", str(tmp_path / "results.json"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "results.json").exists()
    return proc.stdout


def test_quick_overhead_prints_ratio_to_bare_and_reports_missing_peers(tmp_path: Path) -> None:
    out = _run(tmp_path, "--only", "overhead")
    assert re.search(r"\| sync, non-stream \| [\d,.]+ \| -?[\d,.]+ \|.*-?[\d.]+% \|", out), out
    assert "per chunk" in out
    for peer in ("contrib", "openllmetry", "openlit"):
        assert re.search(rf"{peer}\s+.*: (ok|not installed)", out), out


def test_quick_exporter_and_queries_print_ratios_against_same_run_baselines(tmp_path: Path) -> None:
    out = _run(tmp_path, "--only", "exporter", "--only", "queries")
    assert re.search(r"\| 512 \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d.]+x \|", out), out
    assert re.search(r"\| spend_by_endpoint \|.*\| [\d.]+x \|.*\| yes \|", out), out
    assert "| NO |" not in out


def test_chunk_benchmark_prints_proxy_cost_against_the_sdk_parse() -> None:
    script = RUN.parent / "bench_chunk.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--chunks", "200", "--repeat", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"proxy / SDK parse: -?[\d.]+%", proc.stdout), proc.stdout
