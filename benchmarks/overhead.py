"""Instrumentation overhead per call and per chunk: otel-llmcost side by side with the peers.

Each variant runs in its own interpreter (overhead_worker.py). Wall time: the variants'
processes are interleaved over rounds and the fastest batch of each is kept (on a shared
machine the minimum is the least disturbed figure). Instructions: valgrind's callgrind
counts a batch of N and one of 2N calls inside the same process; (2N - N) / N is the
cost of one call with start-up, imports and warm-up cancelled, and it repeats exactly.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKER = HERE / "overhead_worker.py"
RESULT_MARKER = "@@RESULT@@ "

VARIANTS = {
    "openai": ["bare", "llmcost", "contrib", "openllmetry", "openlit"],
    "anthropic": ["bare", "native", "llmcost", "openllmetry", "openlit"],
}
LABELS = {
    "bare": "no instrumentation",
    "native": "the SDK's built-in OpenTelemetry tracing (anthropic 2.x)",
    "llmcost": "otel-llmcost",
    "contrib": "opentelemetry-instrumentation-openai-v2 (contrib)",
    "openllmetry": "OpenLLMetry (opentelemetry-instrumentation-{provider})",
    "openlit": "openlit",
}
PEERS = ("contrib", "openllmetry", "openlit")


@dataclass
class VariantResult:
    variant: str
    status: str = "not run"
    detail: str = ""
    version: str = ""
    sdk_version: str = ""
    wall_us: dict[str, float] = field(default_factory=dict)  # scenario -> min per-call µs
    wall_median_us: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[str, float] = field(default_factory=dict)  # scenario -> min per-call process CPU µs
    instr: dict[str, float] = field(default_factory=dict)  # scenario -> instructions per call
    chunks: dict[str, int] = field(default_factory=dict)
    attributes: dict[str, int] = field(default_factory=dict)
    spans_per_call: dict[str, float] = field(default_factory=dict)
    metric_points: int = 0
    startup_cpu_ms: float | None = None  # min over runs: CPU from process start until instrumented
    maxrss_mb: float | None = None  # min over runs: peak RSS of the worker after its calls


def _parse(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    return None


def _worker_cmd(python: str, provider: str, variant: str, scenarios: list[str], calls: int, **kw: Any) -> list[str]:
    cmd = [python, str(WORKER), "--provider", provider, "--variant", variant, "--scenarios", ",".join(scenarios)]
    cmd += ["--calls", str(calls)]
    for key, value in kw.items():
        if value is True:
            cmd.append("--" + key.replace("_", "-"))
        elif value is not None and value is not False:
            cmd += ["--" + key.replace("_", "-"), str(value)]
    return cmd


def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[dict[str, Any] | None, str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(HERE))
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f}s"
    result = _parse(proc.stdout)
    if result is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return None, f"exit {proc.returncode}: " + " | ".join(tail)
    return result, ""


def _bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OTEL_LLMCOST_OPENAI_INCLUDE_USAGE", None)
    env["OTEL_LLMCOST_HOME"] = env.get("OTEL_LLMCOST_HOME") or tempfile.mkdtemp(prefix="llmcost-bench-home-")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def measure_wall(
    python: str,
    provider: str,
    variants: list[str],
    scenarios: list[str],
    *,
    calls: int,
    repeats: int,
    rounds: int,
    warmup: int,
    prompt_chars: int,
    timeout: float = 900,
) -> dict[str, VariantResult]:
    results = {v: VariantResult(v) for v in variants}
    env = _bench_env()
    rng = random.Random(7)
    for _ in range(rounds):
        order = [v for v in variants if results[v].status in ("not run", "ok")]
        rng.shuffle(order)
        for variant in order:
            res = results[variant]
            cmd = _worker_cmd(
                python, provider, variant, scenarios, calls, repeats=repeats, warmup=warmup, prompt_chars=prompt_chars
            )
            data, error = _run(cmd, timeout, env)
            if data is None:
                res.status, res.detail = "failed", error
                continue
            if data["status"] != "ok":
                res.status, res.detail = data["status"], data.get("detail", "")
                continue
            res.status, res.version, res.sdk_version = "ok", data["version"], data["sdk_version"]
            res.metric_points = max(res.metric_points, data.get("metric_points", 0))
            for key in ("startup_cpu_ms", "maxrss_mb"):
                if data.get(key) is not None:
                    setattr(res, key, min(getattr(res, key) or data[key], data[key]))
            for sc in data["scenarios"]:
                name = sc["scenario"]
                best = sc["min_us"]
                res.wall_us[name] = min(res.wall_us.get(name, best), best)
                res.wall_median_us.setdefault(name, []).append(sc["median_us"])
                res.cpu_us[name] = min(res.cpu_us.get(name, sc["min_cpu_us"]), sc["min_cpu_us"])
                res.chunks[name] = sc["chunks"]
                res.attributes[name] = sc["attributes_per_span"]
                res.spans_per_call[name] = sc["spans_per_call"]
    return results


def valgrind_available() -> bool:
    return shutil.which("valgrind") is not None and sys.version_info >= (3, 11)


def _totals(path: Path) -> int:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def measure_instructions(
    python: str,
    provider: str,
    variants: list[str],
    scenarios: list[str],
    *,
    calls: int,
    warmup: int,
    prompt_chars: int,
    results: dict[str, VariantResult],
    jobs: int = 2,
    timeout: float = 1800,
) -> None:
    """Fill ``results[v].instr``: instructions per call, by callgrind, N vs 2N calls."""
    env = _bench_env()
    runnable = [v for v in variants if results.get(v) is None or results[v].status in ("ok", "not run")]
    procs: list[tuple[str, subprocess.Popen[str], Path]] = []
    pending = list(runnable)
    outdir = Path(tempfile.mkdtemp(prefix="llmcost-callgrind-"))

    def start(variant: str) -> None:
        d = outdir / variant
        d.mkdir()
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=_operator_call",
            "--dump-after=_operator_call",
            f"--callgrind-out-file={d}/cg.%p",
        ] + _worker_cmd(
            python,
            provider,
            variant,
            scenarios,
            calls,
            warmup=warmup,
            prompt_chars=prompt_chars,
            callgrind=True,
        )
        popen = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=str(HERE)
        )
        procs.append((variant, popen, d))

    try:
        while pending or procs:
            while pending and len(procs) < jobs:
                start(pending.pop(0))
            variant, popen, d = procs.pop(0)
            try:
                stdout, _ = popen.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.communicate()
                continue
            res = results.setdefault(variant, VariantResult(variant))
            data = _parse(stdout)
            if data is None or data["status"] != "ok":
                if data is not None:
                    res.status, res.detail = data["status"], data.get("detail", "")
                elif res.status == "not run":
                    res.status, res.detail = "failed", "callgrind run failed"
                continue
            # Two dumps per scenario, in order: N calls, then 2N calls.
            dumps = sorted((p for p in d.iterdir() if p.suffix[1:].isdigit()), key=lambda p: int(p.suffix[1:]))
            totals = [_totals(p) for p in dumps]
            for index, sc in enumerate(data["scenarios"]):
                if len(totals) >= 2 * index + 2:
                    name = sc["scenario"]
                    res.instr[name] = (totals[2 * index + 1] - totals[2 * index]) / sc["calls"]
                    res.chunks.setdefault(name, sc["chunks"])
                    res.attributes.setdefault(name, sc["attributes_per_span"])
            if res.status == "not run":
                res.status, res.version, res.sdk_version = "ok", data["version"], data["sdk_version"]
                res.metric_points = data.get("metric_points", 0)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


# --- reporting -------------------------------------------------------------------------


def _label(variant: str, provider: str) -> str:
    return LABELS[variant].format(provider=provider)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:,.1f}{unit}"


def overhead_rows(results: dict[str, VariantResult], scenarios: list[str], metric: str) -> dict[str, Any]:
    """Added cost per call (and per chunk) of every variant against bare, same run."""
    bare = results.get("bare")
    table: dict[str, Any] = {"scenarios": {}, "per_chunk": {}}
    if bare is None or bare.status != "ok":
        return table
    base: dict[str, float] = getattr(bare, metric)
    for scenario in scenarios:
        if scenario not in base:
            continue
        row = {"bare": base[scenario]}
        for variant, res in results.items():
            values = getattr(res, metric)
            if variant != "bare" and res.status == "ok" and scenario in values:
                row[variant] = values[scenario] - base[scenario]
        table["scenarios"][scenario] = row
    # Per chunk: slope of the added cost between the short and the long stream.
    for mode in ("sync", "async"):
        streams = sorted(
            (s for s in table["scenarios"] if s.startswith(mode + ":") and int(s.split(":")[1]) > 0),
            key=lambda s: int(s.split(":")[1]),
        )
        if len(streams) < 2:
            continue
        short, long_ = streams[0], streams[-1]
        row = {}
        for variant in table["scenarios"][long_]:
            if variant == "bare" or variant not in table["scenarios"][short]:
                continue
            d_chunks = bare.chunks.get(long_, 0) - bare.chunks.get(short, 0)
            if d_chunks > 0:
                row[variant] = (table["scenarios"][long_][variant] - table["scenarios"][short][variant]) / d_chunks
        bare_chunks = bare.chunks.get(long_, 0) - bare.chunks.get(short, 0)
        if bare_chunks > 0:
            row["bare"] = (base[long_] - base[short]) / bare_chunks
        table["per_chunk"][mode] = row
    return table


def render(provider: str, results: dict[str, VariantResult], scenarios: list[str], metric: str, unit: str) -> str:
    table = overhead_rows(results, scenarios, metric)
    shown = [v for v in results if v != "bare" and results[v].status == "ok"]
    header = ["scenario", f"bare {unit}/call"] + [f"{v} +{unit}" for v in shown] + ["llmcost/best peer", "llmcost/bare"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def ratio_cells(row: dict[str, float]) -> list[str]:
        peers = [row[p] for p in PEERS if p in row]
        ours = row.get("llmcost")
        best = min(peers) if peers else None
        vs_peer = f"{ours / best:.2f}x" if ours is not None and best and best > 0 else "-"
        vs_bare = f"{100 * ours / row['bare']:.1f}%" if ours is not None and row.get("bare") else "-"
        return [vs_peer, vs_bare]

    for scenario, row in table["scenarios"].items():
        chunks = results["bare"].chunks.get(scenario, 0)
        name = f"{scenario.split(':')[0]}, " + (f"stream {chunks} chunks" if chunks else "non-stream")
        cells = [name, _fmt(row["bare"])] + [_fmt(row.get(v)) for v in shown] + ratio_cells(row)
        lines.append("| " + " | ".join(cells) + " |")
    for mode, row in table["per_chunk"].items():
        if "bare" not in row:
            continue
        cells = [f"{mode}, per chunk", _fmt(row["bare"])] + [_fmt(row.get(v)) for v in shown] + ratio_cells(row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_status(provider: str, results: dict[str, VariantResult]) -> str:
    lines = []
    for variant, res in results.items():
        version = f" {res.version}" if res.version else ""
        extra = ""
        if res.status == "ok" and res.attributes:
            scenario = next(iter(res.attributes))
            extra = f"; {res.attributes[scenario]} span attributes, {res.metric_points} metric points"
        detail = f" ({res.detail})" if res.detail and res.status != "ok" else ""
        lines.append(f"  {variant:<12} {_label(variant, provider)}{version}: {res.status}{detail}{extra}")
    return "\n".join(lines)


def summary(results: dict[str, VariantResult], scenarios: list[str], metric: str) -> dict[str, Any]:
    table = overhead_rows(results, scenarios, metric)
    return {"per_call": table["scenarios"], "per_chunk": table["per_chunk"]}
