"""Many instrumented calls through the real openai SDK, with streams consumed, abandoned
half-way, closed early, used as context managers and broken mid-stream: every span ends
exactly once, RSS stays flat, nothing is logged at ERROR."""

from __future__ import annotations

import gc
import logging
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from otel_llmcost import LLMCostInstrumentor
from otel_llmcost.pricing import Pricer
from tests.reliability._reliability import knob, light_openai, rss_bytes

MESSAGES = [{"role": "user", "content": "hello"}]


class Counting(SpanProcessor):
    """Counts starts and ends (ints only: no per-span memory, so RSS is the app's own)."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0

    def on_start(self, span, parent_context=None) -> None:  # type: ignore[no-untyped-def]
        self.started += 1

    def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
        self.ended += 1


def one(client, i: int) -> None:  # type: ignore[no-untyped-def]
    kind = i % 6
    create = client.chat.completions.create
    if kind == 0:
        create(model="gpt-4o-mini", messages=MESSAGES)
    elif kind == 1:  # consumed
        for _ in create(model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}):
            pass
    elif kind == 2:  # abandoned half-way: the proxy is dropped unfinished
        stream = create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        next(iter(stream))
        next(iter(stream))
        del stream
    elif kind == 3:  # closed early
        stream = create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        next(iter(stream))
        stream.close()
    elif kind == 4:  # context manager, left early
        with create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
            for _ in stream:
                break
    else:  # the provider drops the connection mid-stream
        try:
            for _ in create(model="gpt-4o-mini", messages=MESSAGES, stream=True, user="break"):
                pass
        except Exception as error:  # the SDK's error reaches the caller, unchanged
            assert "otel_llmcost" not in repr(error)
        else:
            raise AssertionError("the stream should have broken")


def test_many_calls_with_abandoned_closed_and_broken_streams_end_every_span_once(request, caplog):
    calls = knob("LLMCOST_SOAK_CALLS", 6_000, 1_000_000, request.config)
    counting = Counting()
    provider = TracerProvider()
    provider.add_span_processor(counting)
    instrumentor = LLMCostInstrumentor()
    instrumentor.instrument(tracer_provider=provider, meter_provider=MeterProvider(), pricer=Pricer(overrides_path=""))
    client = light_openai()
    warm_up = min(2000, calls // 5)
    try:
        with caplog.at_level(logging.WARNING):
            for i in range(warm_up):
                one(client, i)
            gc.collect()
            rss_warm = rss_bytes()
            started = time.perf_counter()
            for i in range(warm_up, calls):
                one(client, i)
            elapsed = time.perf_counter() - started
            gc.collect()
            rss_end = rss_bytes()
    finally:
        instrumentor.uninstrument()
    assert counting.started == calls
    assert counting.ended == calls  # the SDK ignores a second end(): see the log check below
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or "ended span" in r.getMessage()]
    assert problems == []
    growth = rss_end - rss_warm
    print(f"\n{calls} calls: {elapsed / (calls - warm_up) * 1e6:.0f} us/call, RSS +{growth / 1e6:.1f} MB after warm-up")
    assert growth < 8 << 20, f"RSS grew {growth >> 20} MiB after warm-up"
