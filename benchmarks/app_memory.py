"""Peak memory of an instrumented app with the embedded llmcost exporter, against no exporter.

Issue 17 measured 218 MB -> 614 MB per app process when every app loaded chdb. Now the
exporter only appends to the spool and one ingester process per spool loads chdb, so the
app should pay only for the exporter itself (goal: under 20 MB added).

Each case is a fresh process running ``tests/reliability/store_app.py``: the real openai
SDK against a canned fake provider (MockTransport), instrumented by otel-llmcost, a
BatchSpanProcessor (as ``opentelemetry-instrument`` sets up) in front of

* baseline: no exporter (a counting no-op: spans go nowhere),
* llmcost:  ``LLMCostSpanExporter`` on an embedded DSN, ingester off (so only the app is
  measured; its spool stays for the next step),

both making the same N calls, round-robin over the rounds. Peak RSS is the child's own
``ru_maxrss``. Then the ingester that the exporter would start (``python -m
otel_llmcost.exporter --follow --idle-exit 1``) stores the spool of the last llmcost run,
and its peak RSS is reported apart (``wait4``): that is the one process per spool that
holds chdb, not a cost per app.

    python benchmarks/app_memory.py                # N=2000 calls, 5 rounds
    python benchmarks/app_memory.py --quick        # N=300, 2 rounds (tests/test_benchmarks_store.py)
    python benchmarks/app_memory.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "reliability" / "store_app.py"
GOAL_MB = 20.0


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_LLMCOST_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def run_app(exporter: str, calls: int, dsn: str, home: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(APP), "--dsn", dsn, "--service", f"mem-{exporter}", "--calls", str(calls)]
        + ["--exporter", exporter, "--processor", "batch", "--schedule-ms", "1000"],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(home, OTEL_EXPORTER_LLMCOST_INGESTER="off"),
    )
    if done.returncode != 0:
        raise SystemExit(f"app ({exporter}) failed: {done.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if out["failed"] or out["calls"] != calls:
        raise SystemExit(f"app ({exporter}) calls failed: {out}")
    return out


def run_ingester(dsn: str, home: Path) -> dict[str, Any]:
    """The ingester as the exporter starts it; its peak RSS from wait4."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "otel_llmcost.exporter", "--follow", "--idle-exit", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(home, OTEL_EXPORTER_LLMCOST_DSN=dsn, OTEL_SDK_DISABLED="true"),
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if status != 0:
        raise SystemExit(f"ingester failed ({status}): {stderr[-2000:]}")
    return {"maxrss_mb": usage.ru_maxrss / 1024, "seconds": seconds}


def stored_rows(dsn: str) -> int:
    from otel_llmcost import storage

    with storage.open_client(dsn, wait_s=60) as client:
        return int(client.command("SELECT count() FROM otel.otel_traces WHERE ServiceName = 'mem-llmcost'"))


def measure(calls: int, rounds: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"none": [], "llmcost": []}
    spooled = 0
    with tempfile.TemporaryDirectory(prefix="llmcost-mem-") as tmp:
        home = Path(tmp) / "home"
        llmcost_dsn = ""
        for i in range(rounds):
            for exporter in ("none", "llmcost") if i % 2 == 0 else ("llmcost", "none"):
                dsn = f"chdb://{Path(tmp) / f'r{i}' / 'chdb'}"
                out = run_app(exporter, calls, dsn, home)
                if out["chdb_loaded"]:
                    raise SystemExit("the app loaded chdb")
                samples[exporter].append(out["maxrss_kib"] / 1024)
                if exporter == "llmcost":
                    spooled, llmcost_dsn = out["accepted"], dsn
        ingester = run_ingester(llmcost_dsn, home)
        ingester["stored"] = stored_rows(llmcost_dsn)
        ingester["spooled"] = spooled
    base = statistics.median(samples["none"])
    ours = statistics.median(samples["llmcost"])
    return {
        "calls": calls,
        "rounds": rounds,
        "baseline_mb": base,
        "llmcost_mb": ours,
        "added_mb": ours - base,
        "ratio": ours / base,
        "samples": samples,
        "ingester": ingester,
        "goal_mb": GOAL_MB,
        "met": ours - base < GOAL_MB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 calls, 2 rounds")
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    calls = args.calls or (300 if args.quick else 2000)
    rounds = args.rounds or (2 if args.quick else 5)
    result = measure(calls, rounds)
    ing = result["ingester"]
    print(f"## App peak memory, {calls} calls (real openai SDK, BatchSpanProcessor), median of {rounds} rounds\n")
    print("| app | peak RSS MB (median) | samples |")
    print("|---|---|---|")
    cases = (
        ("none", "baseline_mb", "no exporter (baseline)"),
        ("llmcost", "llmcost_mb", "embedded llmcost exporter, ingester off"),
    )
    for key, median_key, label in cases:
        shown = ", ".join(f"{v:.1f}" for v in result["samples"][key])
        print(f"| {label} | {result[median_key]:.1f} | {shown} |")
    print(
        f"\nadded by the exporter: {result['added_mb']:+.1f} MB ({result['ratio']:.3f}x the baseline); "
        f"goal < {GOAL_MB:.0f} MB: {'met' if result['met'] else 'NOT met'}"
    )
    print(
        f"ingester process (one per spool, loads chdb): peak RSS {ing['maxrss_mb']:.1f} MB, "
        f"stored {ing['stored']} of {ing['spooled']} spooled spans in {ing['seconds']:.1f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if result["met"] and ing["stored"] == ing["spooled"] else 1


if __name__ == "__main__":
    sys.exit(main())
