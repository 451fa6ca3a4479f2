"""The embedded-store benchmarks of issue 17 run in CI, small, and hold their goals.

- ``benchmarks/app_memory.py``: an instrumented app with the embedded llmcost exporter
  adds under 20 MB of peak RSS to the same app with no exporter (it never loads chdb),
  and the ingester it would start stores every spooled span.
- ``benchmarks/read_latency.py --quick``: with 4 writing app processes, no read through
  ``open_for_reading`` fails (in-process or the CLI), and every span a writer's exporter
  accepted is stored exactly once. The p95 goal (under 2 s in-process) is a timing: it is
  printed, and asserted only under ``--runslow`` on one worker (``-n 0``), because the
  default suite runs on two xdist workers and the other one's tests share the cores (a
  CI run measured 4.2 s that way). The CLI's own p95 is printed, not asserted: it
  includes ~1-3 s of interpreter start-up and imports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(tmp_path: Path, script: str, *args: str) -> tuple[str, dict]:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout + proc.stderr, json.loads(out.read_text())


def test_app_memory_with_the_embedded_exporter_stays_within_20_mb_of_no_exporter(tmp_path: Path) -> None:
    text, r = _run(tmp_path, "app_memory.py", "--quick", "--calls", "100", "--rounds", "1")

    assert "added by the exporter:" in text and "ingester process" in text, text
    assert r["added_mb"] < 20, text
    assert r["ingester"]["stored"] == r["ingester"]["spooled"] == 100, text


@pytest.fixture(scope="module")
def read_latency(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    return _run(tmp_path_factory.mktemp("reads"), "read_latency.py", "--quick", "--reads", "8", "--cli-reads", "1")


def test_reads_never_fail_while_apps_write_and_every_span_is_stored_once(read_latency: tuple[str, dict]) -> None:
    text, r = read_latency

    assert "p95 loaded / baseline" in text, text
    for phase in ("baseline", "loaded"):
        for kind in ("in_process", "cli"):
            assert r[phase][kind]["failures"] == 0, (phase, kind, r[phase][kind]["errors"])
    assert r["writer_failed_calls"] == 0 and r["writer_dropped"] == 0
    assert r["check"]["exactly_once"] and r["check"]["stored"] == r["writer_calls"], r["check"]


@pytest.mark.slow
def test_reads_p95_stays_under_2_s_while_apps_write(read_latency: tuple[str, dict]) -> None:
    text, r = read_latency

    assert r["loaded"]["in_process"]["p95"] < 2.0, text


def test_ingest_bench_stores_every_span_by_every_path_and_prints_the_ratio(tmp_path: Path) -> None:
    """``benchmarks/ingest_bench.py`` (issue 24, item 2): every path stores all the spans
    (the script checks llm_calls after each) and the ratio against the bulk insert is
    printed. The ratio itself (goal: >= 0.8x) is a timing: printed here, measured by hand
    (benchmarks/README.md, section 3a)."""
    text, r = _run(tmp_path, "ingest_bench.py", "--spans", "1000", "--rounds", "1")

    assert "Goal (issue 24): ingest >= 0.8x the rows baseline" in text, text
    assert set(r["median_spans_per_s"]) == {"ingest", "rows", "columns", "native", "decode"}
    assert all(rate > 0 for rate in r["median_spans_per_s"].values()), r
