"""otel-llmcost benchmarks: one command.

    python benchmarks/run.py --setup          # build /work/bench-venv (peers + this repo), once
    python benchmarks/run.py                  # everything, full size (by hand; ~40 min on 2 cores)
    python benchmarks/run.py --quick          # small sizes, no callgrind, no peers needed (CI)
    python benchmarks/run.py --only overhead  # overhead | anthropic | exporter | queries | growth

Every ratio is against a baseline measured in the same run. Overhead workers run in
``--python`` (default: /work/bench-venv/bin/python when it exists and not --quick,
else this interpreter); a peer that is not installed there is reported as
"not installed", never a failure. Results are printed as markdown tables and written
as JSON to ``--json`` (default benchmarks/results-{quick,full}.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import exporter_bench  # noqa: E402
import overhead  # noqa: E402
import query_bench  # noqa: E402

BENCH_VENV = Path(os.environ.get("LLMCOST_BENCH_VENV", "/work/bench-venv"))

# The newest versions on which every peer installs together (checked with pip):
# openlit 1.45.0 caps openai < 3 and anthropic < 1; opentelemetry-instrumentation-openai-v2
# 2.4b0 imports opentelemetry.util.genai.instruments, which opentelemetry-util-genai 1.2b0+
# no longer has, so util-genai stays at 1.1b0. pip then resolves openai 2.54.0,
# anthropic 0.125.0, wrapt 2.5.2 and the opentelemetry 1.45.1 / 0.66b1 family.
SETUP_REQUIREMENTS = [
    f"-e{REPO}[openai,anthropic]",
    "openlit==1.45.0",
    "opentelemetry-instrumentation-openai-v2==2.4b0",
    "opentelemetry-util-genai==1.1b0",
    "opentelemetry-instrumentation-openai==0.62.4",
    "opentelemetry-instrumentation-anthropic==0.62.4",
    "pyinstrument",
]

SIZES = {
    "quick": {
        "calls": 60,
        "repeats": 3,
        "rounds": 1,
        "warmup": 10,
        "scenarios": ["sync:0", "async:0", "sync:10", "sync:100"],
        "callgrind": False,
        "exporter_batches": [512, 2048],
        "exporter_spans": 2048,
        "query_rows": [20_000],
        "growth_prompts": [100, 10_000],
        "growth_streams": [10, 100],
    },
    # The test's size (LLMCOST_BENCH_TINY=1 with --quick): keeps the code alive in CI in seconds.
    "tiny": {
        "calls": 20,
        "repeats": 2,
        "rounds": 1,
        "warmup": 3,
        "scenarios": ["sync:0", "sync:10", "sync:50"],
        "callgrind": False,
        "exporter_batches": [512],
        "exporter_spans": 1024,
        "query_rows": [5_000],
        "growth_prompts": [100, 10_000],
        "growth_streams": [10, 50],
    },
    "full": {
        "calls": 200,
        "repeats": 5,
        "rounds": 3,
        "warmup": 30,
        "scenarios": ["sync:0", "async:0", "sync:10", "sync:100", "async:10", "async:100"],
        "callgrind": True,
        "callgrind_calls": 40,
        "exporter_batches": [512, 1024, 2048, 4096, 8192],
        "exporter_spans": 32_768,
        "query_rows": [200_000, 1_000_000, 10_000_000],
        "growth_prompts": [100, 1_000, 10_000, 100_000],
        "growth_streams": [10, 100, 1_000],
    },
}


def setup() -> int:
    """Create the peers' venv (openai 2.x: the newest on which every peer installs)."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    cmd = [str(python), "-m", "pip", "install", "--upgrade", *SETUP_REQUIREMENTS]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode


def environment(python: str) -> dict[str, Any]:
    probe = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        "for d in ['openai', 'anthropic', 'wrapt', 'opentelemetry-sdk', 'otel-llmcost', 'openlit',"
        " 'opentelemetry-instrumentation-openai-v2', 'opentelemetry-instrumentation-openai',"
        " 'opentelemetry-instrumentation-anthropic', 'opentelemetry-util-genai', 'httpx', 'httpx2', 'chdb']:\n"
        "    try: out[d] = m.version(d)\n"
        "    except Exception: out[d] = None\n"
        "print(json.dumps(out))\n"
    )
    try:
        versions = json.loads(subprocess.run([python, "-c", probe], capture_output=True, text=True).stdout)
    except Exception:
        versions = {}
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "worker_python": python,
        "versions": versions,
    }


def section(title: str) -> None:
    print(f"\n## {title}\n", flush=True)


def run_overhead(provider: str, python: str, size: dict[str, Any], prompt_chars: int = 400) -> dict[str, Any]:
    variants = overhead.VARIANTS[provider]
    scenarios = size["scenarios"]
    results = overhead.measure_wall(
        python,
        provider,
        variants,
        scenarios,
        calls=size["calls"],
        repeats=size["repeats"],
        rounds=size["rounds"],
        warmup=size["warmup"],
        prompt_chars=prompt_chars,
    )
    print(overhead.render_status(provider, results))
    out: dict[str, Any] = {"variants": {v: r.__dict__ for v, r in results.items()}}
    print(f"\nCPU time (process_time), µs per call, min over {size['rounds']}x{size['repeats']} batches:\n")
    print(overhead.render(provider, results, scenarios, "cpu_us", "µs"))
    print("\nWall clock (perf_counter), µs per call, min over the same batches:\n")
    print(overhead.render(provider, results, scenarios, "wall_us", "µs"))
    out["cpu"] = overhead.summary(results, scenarios, "cpu_us")
    out["wall"] = overhead.summary(results, scenarios, "wall_us")
    if size.get("callgrind") and overhead.valgrind_available():
        overhead.measure_instructions(
            python,
            provider,
            variants,
            scenarios,
            calls=size["callgrind_calls"],
            warmup=8,
            prompt_chars=prompt_chars,
            results=results,
        )
        print("\nInstructions per call (callgrind, (2N - N) / N):\n")
        print(overhead.render(provider, results, scenarios, "instr", "instr"))
        out["instructions"] = overhead.summary(results, scenarios, "instr")
        out["variants"] = {v: r.__dict__ for v, r in results.items()}
    elif size.get("callgrind"):
        print("\n(valgrind not found or Python < 3.11: no instruction counts)")
    return out


def run_growth(python: str, size: dict[str, Any], queries: list[dict[str, Any]]) -> dict[str, Any]:
    """How otel-llmcost's added cost grows with prompt size and stream length, and query time with data."""
    variants = ["bare", "llmcost"]
    rows: list[dict[str, Any]] = []
    for prompt in size["growth_prompts"]:
        res = overhead.measure_wall(
            python, "openai", variants, ["sync:0"], calls=size["calls"], repeats=size["repeats"],
            rounds=1, warmup=size["warmup"], prompt_chars=prompt,
        )  # fmt: skip
        table = overhead.overhead_rows(res, ["sync:0"], "cpu_us")["scenarios"].get("sync:0", {})
        rows.append(
            {"kind": "prompt chars", "size": prompt, "bare_us": table.get("bare"), "added_us": table.get("llmcost")}
        )
    streams = [f"sync:{n}" for n in size["growth_streams"]]
    res = overhead.measure_wall(
        python, "openai", variants, streams, calls=size["calls"], repeats=size["repeats"],
        rounds=1, warmup=max(3, size["warmup"] // 5), prompt_chars=400,
    )  # fmt: skip
    table = overhead.overhead_rows(res, streams, "cpu_us")["scenarios"]
    for scenario in streams:
        row = table.get(scenario, {})
        chunks = res["bare"].chunks.get(scenario, 0) if res.get("bare") else 0
        rows.append(
            {"kind": "stream chunks", "size": chunks, "bare_us": row.get("bare"), "added_us": row.get("llmcost")}
        )
    print("| what grows | size | bare CPU µs/call | otel-llmcost adds µs/call | added % |")
    print("|---|---|---|---|---|")
    for row in rows:
        pct = (
            f"{100 * row['added_us'] / row['bare_us']:.1f}%" if row["added_us"] is not None and row["bare_us"] else "-"
        )
        print(
            f"| {row['kind']} | {row['size']:,} | {overhead._fmt(row['bare_us'])} | {overhead._fmt(row['added_us'])}"
            f" | {pct} |"
        )
    if queries:
        print("\n| spans stored | spend_by_endpoint views ms | raw maps ms | raw/views (wall) | raw/views (CPU) |")
        print("|---|---|---|---|---|")
        for result in queries:
            if result.get("status") != "ok":
                continue
            q = next(q for q in result["queries"] if q["name"] == "spend_by_endpoint")
            print(
                f"| {result['rows']:,} | {q['view_s'] * 1000:,.1f} | {q['raw_s'] * 1000:,.1f} | {q['speedup']:.1f}x"
                f" | {q['cpu_speedup']:.1f}x |"
            )
    return {"overhead": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, no callgrind (< 2 minutes)")
    parser.add_argument("--only", choices=["overhead", "anthropic", "exporter", "queries", "growth"], action="append")
    parser.add_argument("--setup", action="store_true", help=f"build {BENCH_VENV} with every peer, then exit")
    parser.add_argument("--python", help="interpreter for the overhead workers")
    parser.add_argument("--query-rows", type=int, action="append", help="override the query benchmark size(s)")
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()

    if args.setup:
        return setup()

    mode = "quick" if args.quick else "full"
    size = dict(SIZES["tiny" if args.quick and os.environ.get("LLMCOST_BENCH_TINY") else mode])
    if args.query_rows:
        size["query_rows"] = args.query_rows
    bench_python = BENCH_VENV / "bin" / "python"
    python = args.python or (str(bench_python) if bench_python.exists() and not args.quick else sys.executable)
    only = set(args.only or ["overhead", "anthropic", "exporter", "queries", "growth"])
    started = time.time()
    results: dict[str, Any] = {"mode": mode, "environment": environment(python)}
    env = results["environment"]
    print(f"# otel-llmcost benchmarks ({mode})")
    print(f"python {env['python']} on {env['cpus']} CPUs, load average at start {env['loadavg_at_start']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v))

    if "overhead" in only:
        section("1. OpenAI: instrumentation overhead per call and per chunk")
        results["openai"] = run_overhead("openai", python, size)
    if "anthropic" in only:
        section("2. Anthropic: instrumentation overhead per call and per chunk")
        results["anthropic"] = run_overhead("anthropic", python, size)
    if "exporter" in only:
        section("3. Exporter throughput into chdb (LLMCostSpanExporter vs plain clickhouse-connect insert)")
        exp = exporter_bench.measure(size["exporter_batches"], size["exporter_spans"])
        print(exporter_bench.render(exp))
        results["exporter"] = exp
    queries: list[dict[str, Any]] = []
    if "queries" in only or "growth" in only:
        rows_list = size["query_rows"] if "queries" in only else size["query_rows"][:1]
        for rows in rows_list:
            if "queries" in only:
                section(f"4. Query speed on {rows:,} generated spans: rollups/views vs raw otel_traces maps")
            result = query_bench.measure(rows)
            if "queries" in only:
                print(query_bench.render(result))
            queries.append(result)
        results["queries"] = queries
    if "growth" in only:
        section("5. Cost growth: prompt size, stream length, data size (otel-llmcost vs bare, same run)")
        results["growth"] = run_growth(python, size, queries)

    elapsed = time.time() - started
    print(f"\ntotal {elapsed:.0f}s")
    results["elapsed_s"] = elapsed
    out = Path(args.json) if args.json else HERE / f"results-{mode}.json"
    out.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
