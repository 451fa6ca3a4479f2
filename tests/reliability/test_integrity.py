"""N instrumented calls in, exactly N rows in llm_calls: from threads, from asyncio tasks,
and from several worker processes sharing one embedded database (with the ingester they
start on demand) while ``otel-llmcost report`` reads it, every read succeeding."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otel_llmcost as llmcost
from otel_llmcost import LLMCostInstrumentor
from otel_llmcost.exporter import LLMCostSpanExporter, ingest_pending, pending_files
from otel_llmcost.exporter.ingester import running
from otel_llmcost.exporter.spool import count_lines
from otel_llmcost.pricing import Pricer
from tests.reliability._reliability import (
    chdb_query,
    ingester_pid,
    knob,
    light_openai,
    percentiles,
    run_app,
    stop_ingester,
    wait_until,
    worker_env,
)

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def pipeline(tmp_path):  # type: ignore[no-untyped-def]
    """An instrumented process exporting through BatchSpanProcessor to a fresh chdb path
    (the test ingests the spool itself)."""
    dsn = f"chdb://{tmp_path / 'chdb'}"
    exporter = LLMCostSpanExporter(dsn=dsn, ingester="off")
    provider = TracerProvider(resource=Resource.create({"service.name": "inproc"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=128, schedule_delay_millis=50))
    instrumentor = LLMCostInstrumentor()
    instrumentor.instrument(tracer_provider=provider, meter_provider=MeterProvider(), pricer=Pricer(overrides_path=""))
    yield dsn, provider, exporter
    instrumentor.uninstrument()
    provider.shutdown()


def counts(dsn: str, service: str) -> tuple[int, int, int]:
    ((rows, sessions, raw),) = chdb_query(
        dsn,
        "SELECT count(), uniqExact(Session),"
        " (SELECT count() FROM otel.otel_traces WHERE ServiceName = {s:String})"
        " FROM otel.llm_calls WHERE ServiceName = {s:String}",
        s=service,
    )
    return rows, sessions, raw


def spooled_then_stored(dsn: str, n: int) -> None:
    """All n spans are in the spool; one ingest stores them."""
    assert sum(count_lines(p) for p in pending_files(dsn)) == n
    assert ingest_pending(dsn, "otel") == n
    assert pending_files(dsn) == []


def test_calls_from_threads_become_exactly_n_rows(pipeline):
    dsn, provider, exporter = pipeline
    client = light_openai()
    threads, per_thread = 8, 100

    def work(t: int) -> None:
        for i in range(per_thread):
            with llmcost.attributes(session=f"t{t}:{i}"):
                if i % 4 == 0:
                    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
                        pass
                else:
                    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    provider.shutdown()
    n = threads * per_thread
    assert exporter.dropped_spans == 0
    spooled_then_stored(dsn, n)
    assert counts(dsn, "inproc") == (n, n, n)


def test_calls_from_asyncio_tasks_become_exactly_n_rows(pipeline):
    dsn, provider, exporter = pipeline
    client = light_openai(is_async=True)
    tasks, per_task = 40, 20

    async def work(t: int) -> None:
        for i in range(per_task):
            with llmcost.attributes(session=f"a{t}:{i}"):
                if i % 3 == 0:
                    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
                    async for _ in stream:
                        pass
                else:
                    await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    async def main() -> None:
        await asyncio.gather(*(work(t) for t in range(tasks)))

    asyncio.run(main())
    provider.shutdown()
    n = tasks * per_task
    assert exporter.dropped_spans == 0
    spooled_then_stored(dsn, n)
    assert counts(dsn, "inproc") == (n, n, n)


def test_worker_processes_sharing_one_path_while_report_reads_lose_and_duplicate_nothing(tmp_path, request):
    """N worker processes write through the ingester they start on demand while
    ``otel-llmcost report`` runs in a loop: every read succeeds (none fails because apps
    write, none sees fewer calls than the one before), the read latencies are reported, and
    the ingester alone stores every call exactly once."""
    workers = knob("LLMCOST_SOAK_WORKERS", 4, 4, request.config)
    calls = knob("LLMCOST_SOAK_WORKER_CALLS", 300, 5000, request.config)
    dsn = f"chdb://{tmp_path / 'chdb'}"
    procs = [
        run_app(
            ["--dsn", dsn, "--service", f"w{i}", "--calls", str(calls), "--threads", "2", "--batch", "32"]
            + ["--ingester", "auto"],
        )
        for i in range(workers)
    ]
    reports: list[subprocess.CompletedProcess] = []
    latencies: list[float] = []
    seen: list[int] = []
    outputs: list[tuple[str, str]] = []
    try:
        # Reads start once the apps write (before anything was written there is no database:
        # a read says so and exits non-zero, by design).
        assert wait_until(lambda: bool(pending_files(dsn)) or any(p.poll() is not None for p in procs), 120)
        while any(p.poll() is None for p in procs) or not reports:
            started = time.monotonic()
            reports.append(
                subprocess.run(
                    [sys.executable, "-m", "otel_llmcost.cli", "report", "--dsn", dsn, "--only", "spend_by_endpoint"]
                    + ["--format", "json"],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    env=worker_env(),
                )
            )
            latencies.append(time.monotonic() - started)
        outputs = [p.communicate(timeout=120) for p in procs]
        # The on-demand ingester stores what the apps left, with no read and no ingest of ours.
        drained = wait_until(lambda: not pending_files(dsn), 120, every_s=0.2)
        had_ingester = ingester_pid(dsn) is not None
    finally:
        for p in procs:
            p.kill()
        stop_ingester(dsn)
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert f"done {calls} dropped 0 chdb False" in out, (out, err)
        assert " ERROR " not in err and "Traceback" not in err, err
    failed = [(r.returncode, r.stderr) for r in reports if r.returncode != 0]
    assert failed == [], f"{len(failed)} of {len(reports)} reads failed: {failed[:3]}"
    for r in reports:
        payload = json.loads(r.stdout)
        seen.append(sum(row["Calls"] for row in payload[0]["rows"]))
    assert seen == sorted(seen)  # the report only ever sees more
    p50, p95 = percentiles(latencies)
    print(
        f"\n{workers} x {calls} calls, {len(reports)} reads while writing:"
        f" read latency p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(latencies):.2f} s"
    )
    assert drained and had_ingester, "the on-demand ingester did not drain the spool"
    assert not running(dsn)
    for i in range(workers):
        assert counts(dsn, f"w{i}") == (calls, calls, calls)
    started = time.monotonic()
    ((total,),) = chdb_query(dsn, "SELECT sum(Calls) FROM otel.v_cost_by_endpoint_hourly")
    assert total == workers * calls
    assert time.monotonic() - started < 30
