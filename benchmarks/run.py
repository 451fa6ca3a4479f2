"""otel-llmcost benchmarks: one command.

    python benchmarks/run.py --setup          # build /work/bench-venv (peers) and /work/bench-venv3, once
    python benchmarks/run.py --write-readme   # everything, full size; rewrites README.md's generated block
    python benchmarks/run.py --quick          # small sizes, no callgrind, no peers needed (CI)
    python benchmarks/run.py --only overhead  # any names in SECTIONS, repeatable

Every ratio is against a baseline measured in the same run. Overhead workers run in
``--python`` (default: /work/bench-venv/bin/python when it exists and not --quick,
else this interpreter); a peer that is not installed there is reported as
"not installed", never a failure. The openai 3.x rows run in ``--python3`` (default:
/work/bench-venv3/bin/python when it exists and not --quick). Results are printed as
markdown tables and written as JSON to ``--json`` (default
benchmarks/results-{quick,full}.json); ``--write-readme`` also puts the tables between the
generated-block markers of benchmarks/README.md, leaving the rest of the file as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import exporter_bench  # noqa: E402
import ingest_bench  # noqa: E402
import overhead  # noqa: E402
import query_bench  # noqa: E402

BENCH_VENV = Path(os.environ.get("LLMCOST_BENCH_VENV", "/work/bench-venv"))
BENCH_VENV3 = Path(os.environ.get("LLMCOST_BENCH_VENV3", "/work/bench-venv3"))

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
    # Since the 1.45.2 / 0.66b2 family was published pip finds no solution for openlit and
    # OpenLLMetry together (ResolutionImpossible on opentelemetry-semantic-conventions);
    # pinning the family that resolved before makes it install again (2026-11-28).
    "opentelemetry-api==1.45.1",
    "opentelemetry-sdk==1.45.1",
    "opentelemetry-instrumentation==0.66b1",
    "opentelemetry-semantic-conventions==0.66b1",
    "pyinstrument",
]
# openai 3.x: openlit caps openai < 3, so only otel-llmcost and contrib run there. contrib 2.4b0
# does not cap openai (pip resolves it beside openai 3.57) but imports httpx without requiring
# it, and openai 3.x brings httpx2 only: httpx is added, or contrib fails at import.
SETUP3_REQUIREMENTS = [
    f"-e{REPO}[openai]",
    "openai>=3",
    "opentelemetry-instrumentation-openai-v2==2.4b0",
    "opentelemetry-util-genai==1.1b0",
    "httpx",
]
OPENAI3_VARIANTS = ["bare", "llmcost", "contrib"]

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
        "startup_args": ["--quick"],
        "memory_args": ["--quick"],
        "ingest": (4_000, 3),
        "panel_args": ["--rows", "20000", "--repeats", "1"],
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
        "startup_args": ["--runs", "1", "--no-importtime"],
        "memory_args": ["--calls", "50", "--rounds", "1"],
        "ingest": (1_000, 1),
        "panel_args": ["--rows", "2000", "--users", "200", "--repeats", "1", "--ranges", "7d"],
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
        "startup_args": [],
        "memory_args": [],
        "ingest": (20_000, 3),
        "panel_args": ["--rows", "10000000", "--repeats", "2"],
    },
}


def setup() -> int:
    """Create the peers' venv (openai 2.x: the newest on which every peer installs) and the openai 3.x one."""
    status = 0
    for venv, requirements in ((BENCH_VENV, SETUP_REQUIREMENTS), (BENCH_VENV3, SETUP3_REQUIREMENTS)):
        python = venv / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        cmd = [str(python), "-m", "pip", "install", "--upgrade", *requirements]
        print("+", " ".join(cmd), flush=True)
        status = status or subprocess.run(cmd).returncode
    return status


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


def run_overhead(
    provider: str, python: str, size: dict[str, Any], prompt_chars: int = 400, variants: list[str] | None = None
) -> dict[str, Any]:
    variants = variants or overhead.VARIANTS[provider]
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
    print("\n".join("- " + line.strip() for line in overhead.render_status(provider, results).splitlines()))
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


# --- sections ------------------------------------------------------------------------------
# One entry per section, in the order they run and appear in the generated README block.
# To add one (e.g. storage bytes): write ``def _storage(ctx: Context) -> Any`` that prints
# markdown and returns what goes in the JSON, then append ``Section("storage", "...", _storage)``.


@dataclass
class Context:
    mode: str
    size: dict[str, Any]
    python: str  # peers' interpreter (openai 2.x)
    python3: str | None  # otel-llmcost and contrib on openai 3.x, when that venv exists
    results: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    run: Callable[[Context], Any]  # prints markdown; its return value is stored as results[name]


def _overhead(ctx: Context) -> Any:
    return run_overhead("openai", ctx.python, ctx.size)


def _openai3(ctx: Context) -> Any:
    if ctx.python3 is None:
        print(f"not measured: no openai 3.x venv ({BENCH_VENV3}; `--setup` builds it, `--python3` picks another)")
        return {"status": "no venv"}
    scenarios = [s for s in ctx.size["scenarios"] if s.startswith("sync:")]
    return run_overhead("openai", ctx.python3, {**ctx.size, "scenarios": scenarios}, variants=OPENAI3_VARIANTS)


def _anthropic(ctx: Context) -> Any:
    return run_overhead("anthropic", ctx.python, ctx.size)


def _subprocess_section(cmd: list[str], timeout: float) -> dict[str, Any]:
    """Run one of the benchmark scripts, print its markdown output, keep its exit status."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
    # The scripts' own "## " headings would break the README's outline inside the generated block.
    print(
        "\n".join("#### " + line[3:] if line.startswith("## ") else line for line in done.stdout.rstrip().splitlines())
    )
    if done.returncode != 0:
        print(f"\n(exit status {done.returncode}: {done.stderr.strip()[-300:]})")
    return {"returncode": done.returncode, "stdout": done.stdout}


def _startup(ctx: Context) -> Any:
    cmd = [ctx.python, str(HERE / "startup.py"), "--python", ctx.python, "--budget-on", "cpu"]
    return _subprocess_section(cmd + ctx.size["startup_args"], timeout=1800)


def _memory(ctx: Context) -> Any:
    with tempfile.TemporaryDirectory(prefix="llmcost-bench-mem-") as tmp:
        out = Path(tmp) / "memory.json"
        # This interpreter, not the peers' venv: the app it runs (tests/reliability/store_app.py) needs pytest.
        cmd = [sys.executable, str(HERE / "app_memory.py"), "--json", str(out), *ctx.size["memory_args"]]
        result = _subprocess_section(cmd, timeout=1800)
        if out.exists():
            result["result"] = json.loads(out.read_text(encoding="utf-8"))
    return result


def _exporter(ctx: Context) -> Any:
    exp = exporter_bench.measure(ctx.size["exporter_batches"], ctx.size["exporter_spans"])
    print(exporter_bench.render(exp))
    return exp


def _ingest(ctx: Context) -> Any:
    spans, rounds = ctx.size["ingest"]
    result = ingest_bench.run(spans, rounds, 512, None)
    print(ingest_bench.render(result))
    return result


def _queries(ctx: Context) -> Any:
    queries = []
    for rows in ctx.size["query_rows"]:
        print(f"\n#### {rows:,} generated spans\n")
        result = query_bench.measure(rows)
        print(query_bench.render(result))
        queries.append(result)
    return queries


def _panels(ctx: Context) -> Any:
    # This interpreter: the panels are otel-llmcost's own SQL on chdb, no peer involved.
    return _subprocess_section([sys.executable, str(HERE / "panel_bench.py"), *ctx.size["panel_args"]], timeout=7200)


def _growth(ctx: Context) -> Any:
    queries = ctx.results.get("queries") or [query_bench.measure(ctx.size["query_rows"][0])]
    return run_growth(ctx.python, ctx.size, queries)


SECTIONS: list[Section] = [
    Section("overhead", "1. OpenAI: instrumentation overhead per call and per chunk", _overhead),
    Section("openai3", "1c. OpenAI 3.x: otel-llmcost and contrib, same method", _openai3),
    Section("anthropic", "2. Anthropic: instrumentation overhead per call and per chunk", _anthropic),
    Section("startup", "Start-up: `opentelemetry-instrument python -c 'import openai'`", _startup),
    Section("memory", "App memory: peak RSS per app process with the embedded exporter", _memory),
    Section("exporter", "3. Exporter throughput (LLMCostSpanExporter vs plain clickhouse-connect insert)", _exporter),
    Section("ingest", "3a. Ingest: spool into chdb, against a bulk insert of the same rows", _ingest),
    Section("queries", "4. Query speed: rollups/views vs raw otel_traces maps", _queries),
    Section("panels", "4b. Storage: rows and bytes per table, every dashboard panel at 1 h, 7 d and 30 d", _panels),
    Section("growth", "5. Cost growth: prompt size, stream length, data size (vs bare, same run)", _growth),
]


class _Tee(io.StringIO):
    """Collects what a section prints while still printing it."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(text)
        self._out.flush()
        return super().write(text)


# --- the peers side by side ----------------------------------------------------------------


def _peer_rows(result: dict[str, Any] | None, scenarios: list[str]) -> list[list[str]]:
    """One row per variant of an overhead run: added instructions and CPU per call, start-up, memory."""
    if not result or "variants" not in result:
        return []
    variants = result["variants"]
    stream = max((s for s in scenarios if s.startswith("sync:")), key=lambda s: int(s.split(":")[1]))
    bare = variants.get("bare", {})
    rows = []
    for name, res in variants.items():
        label = overhead.LABELS[name].format(provider="openai").split(" (")[0]
        sdk = f"openai {res['sdk_version']}" if res.get("sdk_version") else "-"
        if res["status"] != "ok":
            status = "not installed in this venv" if res["status"] == "not installed" else res["status"]
            rows.append([label, sdk, status] + ["-"] * 7)
            continue
        cells = [label, sdk, res.get("version") or "-"]
        for metric in ("instructions", "cpu"):
            per_call = result.get(metric, {}).get("per_call", {})
            for scenario in ("sync:0", stream):
                value = per_call.get(scenario, {}).get(name)
                cells.append(overhead._fmt(value) if value is not None else "-")
        for key in ("startup_cpu_ms", "maxrss_mb"):
            value, base = res.get(key), bare.get(key)
            if value is None:
                cells.append("-")
            elif name == "bare" or base is None:
                cells.append(f"{value:,.1f}")
            else:
                cells.append(f"{value:,.1f} ({value - base:+,.1f})")
        cells.append(str(res.get("attributes", {}).get("sync:0", "-")))
        rows.append(cells)
    return rows


def peers_table(ctx: Context) -> str:
    scenarios = ctx.size["scenarios"]
    stream = max((s for s in scenarios if s.startswith("sync:")), key=lambda s: int(s.split(":")[1]))
    chunks = stream.split(":")[1]
    rows = _peer_rows(ctx.results.get("overhead"), scenarios) + _peer_rows(ctx.results.get("openai3"), scenarios)
    if not rows:
        return "(no overhead section in this run)"
    header = [
        "variant",
        "SDK",
        "version",
        "+instr/call non-stream",
        f"+instr/call stream {chunks}",
        "+CPU µs non-stream",
        f"+CPU µs stream {chunks}",
        "start-up CPU ms (+ vs bare)",
        "peak RSS MB (+ vs bare)",
        "span attributes",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines.append(
        "\nSync calls; the bare rows are absolute, the others what they add to bare in the same venv and run."
        " Instructions: callgrind, (2N - N) / N (full mode only). CPU: process CPU, min over batches."
        " Start-up: the worker's CPU from process start until instrumented (interpreter, SDK, OpenTelemetry"
        " SDK, the variant's imports and `instrument()`); peak RSS: the worker's after its calls."
    )
    if ctx.results.get("openai3", {}).get("status") == "no venv":
        lines.append(f"openai 3.x: not measured in this run (no venv at {BENCH_VENV3}).")
    elif "openai3" in ctx.results:
        lines.append(
            "openai 3.x: openlit 1.45.0 does not install (it requires `openai<3`); OpenLLMetry is not measured there."
            " contrib 2.4b0 installs but imports `httpx` without requiring it (openai 3.x uses httpx2), so the venv"
            " adds httpx."
        )
    return "\n".join(lines)


# --- the generated README block ------------------------------------------------------------

README = HERE / "README.md"
BEGIN = "<!-- generated by benchmarks/run.py --write-readme: begin (everything up to the end marker is overwritten) -->"
END = "<!-- generated by benchmarks/run.py --write-readme: end -->"


def write_readme(path: Path, block: str) -> None:
    """Replace what lies between the markers in ``path``; leave every other byte alone."""
    text = path.read_text(encoding="utf-8")
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{path}: markers not found; add the two lines\n{BEGIN}\n{END}")
    start = begin + len(BEGIN)
    path.write_text(text[:start] + "\n" + block.strip("\n") + "\n" + text[end:], encoding="utf-8")


def _environment_line(env: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    return (
        f"Python {env['python']} on {env['cpus']} CPUs, load average at start {env['loadavg_at_start']}; "
        f"{env['worker_python']}: {versions}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, no callgrind (< 2 minutes)")
    parser.add_argument("--only", choices=[s.name for s in SECTIONS], action="append")
    parser.add_argument("--setup", action="store_true", help=f"build {BENCH_VENV} and {BENCH_VENV3}, then exit")
    parser.add_argument("--python", help="interpreter for the overhead workers (openai 2.x, every peer)")
    parser.add_argument("--python3", help=f"interpreter for the openai 3.x rows (default {BENCH_VENV3} if it exists)")
    parser.add_argument("--query-rows", type=int, action="append", help="override the query benchmark size(s)")
    parser.add_argument("--scenarios", help="override the overhead scenarios, e.g. sync:0,sync:10,sync:100")
    parser.add_argument("--rounds", type=int, help="override the overhead rounds (full: 3)")
    parser.add_argument("--json", help="write results here")
    parser.add_argument(
        "--write-readme",
        nargs="?",
        const=str(README),
        metavar="PATH",
        help="rewrite the generated block between the markers of PATH (default benchmarks/README.md)",
    )
    args = parser.parse_args()

    if args.setup:
        return setup()

    mode = "quick" if args.quick else "full"
    size = dict(SIZES["tiny" if args.quick and os.environ.get("LLMCOST_BENCH_TINY") else mode])
    if args.query_rows:
        size["query_rows"] = args.query_rows
    if args.scenarios:
        size["scenarios"] = args.scenarios.split(",")
    if args.rounds:
        size["rounds"] = args.rounds
    bench_python = BENCH_VENV / "bin" / "python"
    python = args.python or (str(bench_python) if bench_python.exists() and not args.quick else sys.executable)
    python3 = args.python3
    if python3 is None and not args.quick and (BENCH_VENV3 / "bin" / "python").exists():
        python3 = str(BENCH_VENV3 / "bin" / "python")
    only = set(args.only or [s.name for s in SECTIONS])
    started = time.time()
    ctx = Context(mode, size, python, python3)
    ctx.results.update({"mode": mode, "environment": environment(python)})
    if python3:
        ctx.results["environment3"] = environment(python3)
    header = f"# otel-llmcost benchmarks ({mode})\n{_environment_line(ctx.results['environment'])}"
    if python3:
        header += f"\n{_environment_line(ctx.results['environment3'])}"
    print(header)

    blocks: list[str] = []
    names = [sec.name for sec in SECTIONS if sec.name in only]

    def write(elapsed: float, done: int) -> None:
        """The README block so far: rewritten after every section, so a long run cut short keeps what it measured."""
        if not args.write_readme:
            return
        command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
        partial = f" PARTIAL: {done} of {len(names)} sections so far ({', '.join(names)})." if done < len(names) else ""
        intro = (
            f"Generated by `{command}` ({mode} mode) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},"
            f" {elapsed / 60:.0f} min.{partial} Do not edit by hand: the next run overwrites this block.\n\n"
            + header.split("\n", 1)[1].replace("\n", "  \n")
        )
        block = "\n\n".join([intro, "### Peers side by side (OpenAI)\n\n" + peers_table(ctx), *blocks])
        write_readme(Path(args.write_readme), block)

    for sec in SECTIONS:
        if sec.name not in only:
            continue
        print(f"\n### {sec.title}\n", flush=True)
        tee = _Tee(sys.stdout)
        with contextlib.redirect_stdout(tee):
            ctx.results[sec.name] = sec.run(ctx)
        blocks.append(f"### {sec.title}\n\n{tee.getvalue().strip()}")
        write(time.time() - started, len(blocks))
    if "overhead" in ctx.results:
        ctx.results["openai"] = ctx.results["overhead"]  # the key earlier JSON files used
    print("\n### Peers side by side (OpenAI)\n\n" + peers_table(ctx))

    elapsed = time.time() - started
    print(f"\ntotal {elapsed:.0f}s")
    ctx.results["elapsed_s"] = elapsed
    out = Path(args.json) if args.json else HERE / f"results-{mode}.json"
    out.write_text(json.dumps(ctx.results, indent=1, default=str), encoding="utf-8")
    print(f"results written to {out}")
    if args.write_readme:
        write(elapsed, len(blocks))
        print(f"generated block written to {args.write_readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
