"""A remote ClickHouse that refuses, stalls, answers 500 or closes mid-response: the app's
calls are not slowed, memory stays bounded, retries back off, and every lost span is
counted in the ``llmcost.exporter.dropped_spans`` metric and logged at shutdown."""

from __future__ import annotations

import logging
import statistics
import time

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_llmcost import LLMCostInstrumentor, semconv
from otel_llmcost.exporter import LLMCostSpanExporter
from otel_llmcost.pricing import Pricer
from tests.reliability._reliability import light_openai, rss_bytes
from tests.reliability.fake_clickhouse import FakeClickHouse, refused_port

MESSAGES = [{"role": "user", "content": "hello"}]
CALLS = 300


@pytest.fixture
def clickhouse():  # type: ignore[no-untyped-def]
    server = FakeClickHouse()
    yield server
    server.close()


def dropped_points(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    out: dict[str, int] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == semconv.METRIC_EXPORTER_DROPPED_SPANS:
                    for p in m.data.data_points:
                        out[p.attributes["reason"]] = out.get(p.attributes["reason"], 0) + p.value
    return out


def run_app(dsn: str, calls: int = CALLS, **exporter_options: object):  # type: ignore[no-untyped-def]
    """Instrumented calls with the exporter behind a BatchSpanProcessor; per-call latencies."""
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    options = {"timeout_s": 1.0, "retry_backoff_s": 0.05, "max_retries": 3, **exporter_options}
    exporter = LLMCostSpanExporter(dsn=dsn, meter_provider=meters, **options)
    provider = TracerProvider()
    processor = BatchSpanProcessor(exporter, max_export_batch_size=32, schedule_delay_millis=20)
    provider.add_span_processor(processor)
    instrumentor = LLMCostInstrumentor()
    instrumentor.instrument(tracer_provider=provider, meter_provider=meters, pricer=Pricer(overrides_path=""))
    client = light_openai()
    latencies = []
    try:
        for _ in range(20):  # warm-up
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        for _ in range(calls):
            started = time.perf_counter()
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            latencies.append(time.perf_counter() - started)
    finally:
        instrumentor.uninstrument()
    shutdown_started = time.monotonic()
    provider.shutdown()
    shutdown_s = time.monotonic() - shutdown_started
    return exporter, reader, latencies, shutdown_s


@pytest.fixture(scope="module")
def healthy_median() -> float:
    server = FakeClickHouse()
    try:
        exporter, _, latencies, _ = run_app(server.dsn())
        assert exporter.dropped_spans == 0
        assert server.rows == CALLS + 20
    finally:
        server.close()
    return statistics.median(latencies)


@pytest.mark.parametrize("mode", ["refuse", "500", "stall", "close"])
def test_faulty_remote_never_slows_the_app_and_counts_every_lost_span(mode, healthy_median, caplog):
    server = None if mode == "refuse" else FakeClickHouse(mode)
    dsn = f"http://default:pw@127.0.0.1:{refused_port()}" if server is None else server.dsn()
    try:
        with caplog.at_level(logging.WARNING):
            exporter, reader, latencies, shutdown_s = run_app(dsn)
    finally:
        if server is not None:
            server.close()
    total = CALLS + 20
    # Nothing reached storage and every span is accounted for, in the counter and the metric.
    assert exporter.dropped_spans == total
    assert sum(dropped_points(reader).values()) == total
    assert set(dropped_points(reader)) <= {"remote_failed", "remote_cooldown"}
    assert f"{total} span(s) were dropped by the exporter" in caplog.text
    # The app's calls: export runs on the processor's thread, never on the caller's.
    assert statistics.median(latencies) < 3 * healthy_median + 0.002, (statistics.median(latencies), healthy_median)
    # Shutdown is bounded: the remote's cool-down drops the rest at once.
    assert shutdown_s < 5
    assert not any(r.levelno >= logging.ERROR for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_retries_back_off_exponentially_then_the_remote_cools_down():
    server = FakeClickHouse("500")
    reader = InMemoryMetricReader()
    try:
        exporter = LLMCostSpanExporter(
            dsn=server.dsn(),
            max_retries=4,
            retry_backoff_s=0.2,
            timeout_s=10,
            meter_provider=MeterProvider(metric_readers=[reader]),
        )
        provider = TracerProvider()
        spans = []
        for _ in range(5):
            span = provider.get_tracer("t").start_span("chat m")
            span.end()
            spans.append(span)
        exporter.export(spans[:3])
        times = server.insert_times()
        assert len(times) == 4  # one request per attempt (the handshake fails first)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        for gap, nominal in zip(gaps, (0.2, 0.4, 0.8), strict=True):
            assert nominal * 0.95 <= gap <= nominal * 1.1 + 0.3, gaps
        exporter.export(spans[3:])  # within the cool-down: dropped at once, no request
        assert len(server.requests) == 4
        assert exporter.dropped_spans == 5
        assert dropped_points(reader) == {"remote_failed": 3, "remote_cooldown": 2}
    finally:
        server.close()


def test_remote_that_recovers_within_the_retries_loses_nothing():
    server = FakeClickHouse("fail_first=2")
    try:
        exporter = LLMCostSpanExporter(dsn=server.dsn(), max_retries=4, retry_backoff_s=0.05)
        provider = TracerProvider()
        spans = []
        for _ in range(10):
            span = provider.get_tracer("t").start_span("chat m")
            span.end()
            spans.append(span)
        assert exporter.export(spans).name == "SUCCESS"
        assert server.rows == 10 and exporter.dropped_spans == 0
    finally:
        server.close()


def test_stalled_export_is_bounded_by_timeout():
    server = FakeClickHouse("stall")
    try:
        exporter = LLMCostSpanExporter(dsn=server.dsn(), timeout_s=2.0, max_retries=5, retry_backoff_s=0.1)
        span = TracerProvider().get_tracer("t").start_span("chat m")
        span.end()
        started = time.monotonic()
        exporter.export([span])
        elapsed = time.monotonic() - started
        assert 1.5 <= elapsed < 4.5, elapsed  # timeout_s, plus at most one request's rounding
        assert exporter.dropped_spans == 1
    finally:
        server.close()


def test_memory_stays_bounded_by_the_queue_while_the_remote_stalls():
    """3000 calls against a stalled remote: the processor's queue never exceeds its
    configured size and RSS does not grow with the number of calls."""
    server = FakeClickHouse("stall")
    exporter = LLMCostSpanExporter(dsn=server.dsn(), timeout_s=1.0, max_retries=2, retry_backoff_s=0.05)
    provider = TracerProvider()
    processor = BatchSpanProcessor(exporter, max_queue_size=512, max_export_batch_size=64, schedule_delay_millis=20)
    provider.add_span_processor(processor)
    instrumentor = LLMCostInstrumentor()
    instrumentor.instrument(tracer_provider=provider, meter_provider=MeterProvider(), pricer=Pricer(overrides_path=""))
    client = light_openai()
    queue = processor._batch_processor._queue  # the SDK's bounded deque
    peak_queue = 0
    try:
        for i in range(3000):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            peak_queue = max(peak_queue, len(queue))
            if i == 600:
                warm = rss_bytes()
        grown = rss_bytes() - warm
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
        server.close()
    assert peak_queue <= 512
    assert grown < 16 << 20, f"RSS grew {grown >> 20} MiB over 2400 calls"
