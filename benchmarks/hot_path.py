"""Issue 24 item 1: instructions per call that otel-llmcost adds, beside contrib openai-v2.

Callgrind, as ``overhead.measure_instructions`` counts (N then 2N calls in one process,
(2N - N) / N), for bare, otel-llmcost and contrib, with metrics on (an SDK MeterProvider
with an in-memory reader) and off (the no-op MeterProvider), on a sync non-stream call
and a stream of 10 chunks. ``--before DIR`` adds otel-llmcost from another checkout
(``PYTHONPATH=DIR``, e.g. ``git archive <commit> otel_llmcost | tar -x -C DIR``), measured
in the same run. Every process is started as soon as a slot frees (``--jobs``)::

    python benchmarks/hot_path.py --python /work/bench-venv/bin/python --before /tmp/hot-before
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import overhead  # noqa: E402

SCENARIOS = ["sync:0", "sync:10"]
LABELS = {"sync:0": "non-stream", "sync:10": "stream, 10 chunks"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--before", help="a checkout of the baseline commit (its otel_llmcost on PYTHONPATH)")
    parser.add_argument("--metrics", default="on,off", help="on, off or on,off")
    parser.add_argument("--json", default=str(HERE / "results-hot-path.json"))
    args = parser.parse_args()
    repo = str(HERE.parent)
    runs = []  # (metrics, column, variant, PYTHONPATH)
    for metrics in args.metrics.split(","):
        runs += [(metrics, "bare", "bare", repo), (metrics, "contrib", "contrib", repo)]
        runs += [(metrics, "after", "llmcost", repo)]
        if args.before:
            runs.append((metrics, "before", "llmcost", args.before))
    outdir = Path(tempfile.mkdtemp(prefix="llmcost-hot-path-"))
    results: dict[str, dict[str, dict[str, float]]] = {}
    pending, running = list(runs), []
    while pending or running:
        while pending and len(running) < args.jobs:
            metrics, column, variant, pythonpath = pending.pop(0)
            d = outdir / f"{metrics}-{column}"
            d.mkdir()
            env = overhead._bench_env()
            env["PYTHONPATH"] = pythonpath
            env.pop("LLMCOST_BENCH_NO_METRICS", None)
            if metrics == "off":
                env["LLMCOST_BENCH_NO_METRICS"] = "1"
            cmd = [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=_operator_call",
                "--dump-after=_operator_call",
                f"--callgrind-out-file={d}/cg.%p",
            ] + overhead._worker_cmd(
                args.python, "openai", variant, SCENARIOS, args.calls, warmup=30, prompt_chars=400, callgrind=True
            )
            popen = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=HERE
            )
            running.append((metrics, column, popen, d))
        metrics, column, popen, d = running.pop(0)
        stdout, _ = popen.communicate()
        data = overhead._parse(stdout)
        if data is None or data["status"] != "ok":
            print(f"# {metrics} {column}: failed {data}", flush=True)
            continue
        dumps = sorted((p for p in d.iterdir() if p.suffix[1:].isdigit()), key=lambda p: int(p.suffix[1:]))
        totals = [overhead._totals(p) for p in dumps]
        row = {"attributes": data["scenarios"][0]["attributes_per_span"], "metric_points": data["metric_points"]}
        for index, sc in enumerate(data["scenarios"]):
            row[sc["scenario"]] = (totals[2 * index + 1] - totals[2 * index]) / sc["calls"]
        results.setdefault(metrics, {})[column] = row
        print(f"# {metrics} {column}: {json.dumps(row)}", flush=True)
    shutil.rmtree(outdir, ignore_errors=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print()
    print(
        "| metrics | scenario | bare instr/call | contrib + | otel-llmcost before + | otel-llmcost after + "
        "| after / contrib |"
    )
    print("|---|---|---|---|---|---|---|")
    for metrics, data in results.items():
        bare = data.get("bare", {})
        for sc in SCENARIOS:
            b = bare.get(sc)
            if b is None:
                continue

            values = [data.get(column, {}).get(sc) for column in ("contrib", "before", "after")]
            contrib, before, after = (v - b if v is not None else None for v in values)
            cells = [f"{v:,.0f}" if v is not None else "" for v in (contrib, before, after)]
            ratio = f"{after / contrib:.2f}x" if after is not None and contrib else ""
            print(f"| {metrics} | {LABELS[sc]} | {b:,.0f} | {' | '.join(cells)} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
