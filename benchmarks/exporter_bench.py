"""Exporter throughput: spans per second into embedded ClickHouse (chdb), and memory held.

otel-llmcost: ``LLMCostSpanExporter.export(batch)`` for every batch (row conversion, the
JSON-lines spool, ingest into chdb at most once per ``ingest_interval_s``), then
``force_flush()`` so that every span is in ``otel_traces`` (and, through the
materialized views, in ``llm_calls`` and the rollups) before the clock stops.

Baseline: the same rows, already converted, inserted batch by batch with a plain
clickhouse-connect ``client.insert`` on a client held open for the whole run, into the
same schema (so the materialized views cost the same on both sides).

chdb allows one data path per process, so every measurement is its own subprocess;
that also makes its peak RSS its own. Run as a script it is that subprocess::

    python exporter_bench.py --mode exporter|baseline --batch 512 --spans 20000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULT_MARKER = "@@RESULT@@ "

ENDPOINTS = [f"POST /api/v1/feature{i}" for i in range(50)]
MODELS = ["gpt-4o-mini", "gpt-4o", "o3-mini", "claude-sonnet-4-20250514"]


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def template_attributes() -> dict[str, Any]:
    """The attributes of one real otel-llmcost span (a real SDK call against the fake provider)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import otel_llmcost
    from otel_llmcost import LLMCostInstrumentor
    from otel_llmcost.demo.fakes import FakeLLMServer, openai_client

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrumentor = LLMCostInstrumentor()
    instrumentor.instrument(tracer_provider=provider, providers=["openai"])
    try:
        client = openai_client(FakeLLMServer())
        with otel_llmcost.attributes(endpoint=ENDPOINTS[0], feature="search", team="core", user="u1"):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello " * 50}], max_tokens=64
            )
    finally:
        instrumentor.uninstrument()
    spans = memory.get_finished_spans()
    return dict(spans[-1].attributes or {}) if spans else {}


def make_spans(count: int, seed: int = 1) -> list[Any]:
    """``count`` finished ReadableSpans shaped like otel-llmcost's, with varied dimensions."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

    rng = random.Random(seed)
    base = template_attributes()
    resource_ = Resource.create({"service.name": "bench-app", "deployment.environment": "bench"})
    scope = InstrumentationScope("otel_llmcost", "0.1.0")
    now = time.time_ns()
    spans = []
    for i in range(count):
        attrs = dict(base)
        attrs["llmcost.endpoint"] = ENDPOINTS[i % len(ENDPOINTS)]
        attrs["llmcost.user"] = f"user-{rng.randrange(10_000)}"
        model = MODELS[i % len(MODELS)]
        attrs["gen_ai.request.model"] = model
        attrs["gen_ai.usage.input_tokens"] = rng.randrange(50, 5000)
        attrs["gen_ai.usage.output_tokens"] = rng.randrange(10, 800)
        attrs["llmcost.cost.total"] = rng.random() / 100
        start = now - rng.randrange(86_400 * 10**9)
        context = SpanContext(rng.getrandbits(128) or 1, rng.getrandbits(64) or 1, False, TraceFlags(1))
        spans.append(
            ReadableSpan(
                name=f"chat {model}",
                context=context,
                kind=SpanKind.CLIENT,
                resource=resource_,
                attributes=attrs,
                start_time=start,
                end_time=start + rng.randrange(200_000_000, 3_000_000_000),
                instrumentation_scope=scope,
            )
        )
    return spans


def run_one(mode: str, batch: int, count: int) -> dict[str, Any]:
    from otel_llmcost import storage
    from otel_llmcost.exporter import LLMCostSpanExporter
    from otel_llmcost.exporter.ingest import ensure_schema
    from otel_llmcost.exporter.rows import COLUMNS, span_to_row

    workdir = Path(tempfile.mkdtemp(prefix="llmcost-exporter-bench-"))
    dsn = f"chdb://{workdir / 'chdb'}"
    database = "otel"
    try:
        spans = make_spans(count)
        batches = [spans[i : i + batch] for i in range(0, len(spans), batch)]
        # Same schema on both sides, created before the clock starts.
        client = storage.connect(dsn)
        ensure_schema(client, str(storage.chdb_path(dsn)), database, 180)
        rss_before = _rss_kb()
        if mode == "baseline":
            rows = [[span_to_row(s) for s in b] for b in batches]
            rss_before = _rss_kb()
            start = time.perf_counter()
            for chunk in rows:
                client.insert(f"{database}.otel_traces", chunk, column_names=list(COLUMNS))
            elapsed = time.perf_counter() - start
            client.close()
        else:
            client.close()
            exporter = LLMCostSpanExporter(dsn, database)
            start = time.perf_counter()
            for chunk in batches:
                exporter.export(chunk)
            exporter.force_flush()
            elapsed = time.perf_counter() - start
            exporter.shutdown()
        rss_after = _rss_kb()
        check = storage.connect(dsn)
        try:
            stored = check.query(f"SELECT count() FROM {database}.otel_traces").result_rows[0][0]
            typed = check.query(f"SELECT count() FROM {database}.llm_calls").result_rows[0][0]
        finally:
            check.close()
        return {
            "status": "ok",
            "mode": mode,
            "batch": batch,
            "spans": count,
            "seconds": elapsed,
            "spans_per_s": count / elapsed,
            "stored": stored,
            "llm_calls": typed,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "held_mb": (rss_after - rss_before) / 1024,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(batches: list[int], count: int, python: str | None = None, timeout: float = 900) -> list[dict[str, Any]]:
    results = []
    env = dict(os.environ)
    env["OTEL_LLMCOST_HOME"] = tempfile.mkdtemp(prefix="llmcost-bench-home-")
    for batch in batches:
        for mode in ("baseline", "exporter"):
            cmd = [python or sys.executable, str(Path(__file__).resolve()), "--mode", mode, "--batch", str(batch)]
            cmd += ["--spans", str(count)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            except subprocess.TimeoutExpired:
                results.append({"status": "failed", "mode": mode, "batch": batch, "detail": "timeout"})
                continue
            data = None
            for line in reversed(proc.stdout.splitlines()):
                if line.startswith(RESULT_MARKER):
                    data = json.loads(line[len(RESULT_MARKER) :])
                    break
            if data is None:
                tail = " | ".join((proc.stderr or "").strip().splitlines()[-3:])
                data = {"status": "failed", "mode": mode, "batch": batch, "detail": f"exit {proc.returncode}: {tail}"}
            results.append(data)
    return results


def render(results: list[dict[str, Any]]) -> str:
    by = {(r["batch"], r["mode"]): r for r in results}
    lines = [
        "| batch | spans | baseline spans/s | otel-llmcost spans/s | exporter/baseline | peak RSS MB (base / ours)"
        " | RSS held MB (base / ours) |",
        "|---|---|---|---|---|---|---|",
    ]
    for batch in sorted({r["batch"] for r in results}):
        base, ours = by.get((batch, "baseline")), by.get((batch, "exporter"))
        if not base or not ours or base.get("status") != "ok" or ours.get("status") != "ok":
            detail = (ours or {}).get("detail") or (base or {}).get("detail") or "failed"
            lines.append(f"| {batch} | - | - | - | {detail} | - | - |")
            continue
        lines.append(
            f"| {batch} | {ours['spans']:,} | {base['spans_per_s']:,.0f} | {ours['spans_per_s']:,.0f}"
            f" | {ours['spans_per_s'] / base['spans_per_s']:.2f}x"
            f" | {base['peak_rss_mb']:.0f} / {ours['peak_rss_mb']:.0f}"
            f" | {base['held_mb']:.0f} / {ours['held_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["exporter", "baseline"], required=True)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--spans", type=int, default=20_000)
    args = parser.parse_args()
    sys.stdout.write(RESULT_MARKER + json.dumps(run_one(args.mode, args.batch, args.spans)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
