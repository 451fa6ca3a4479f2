"""One instrumentation variant in its own process: the subprocess that overhead.py runs.

Instrumentors patch the SDK globally and the peers conflict with each other, so each
variant gets a fresh interpreter. Every variant sees the same TracerProvider (one
SimpleSpanProcessor into a no-op exporter that only counts) and the same MeterProvider
(an InMemoryMetricReader, no background thread), set globally *and* passed to the
instrumentor, and the same canned responses.

Usage (prints one JSON object on stdout)::

    python overhead_worker.py --provider openai --variant llmcost --scenarios sync:0,sync:100 \
        --calls 200 --repeats 7 [--prompt-chars 400] [--callgrind]

``--callgrind`` makes N then 2N calls per scenario, each inside ``operator.call`` so that
callgrind (``--toggle-collect=_operator_call --dump-after=_operator_call``) counts them apart.
Exit code 3 with ``{"status": "not installed"}`` when the variant's package is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import operator
import os
import resource
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Content capture off for every variant. otel-llmcost and the contrib instrumentation are
# off when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is unset, so it is unset: the
# contrib (util-genai) takes NO_CONTENT / SPAN_ONLY / ..., rejects "false" and logs a
# warning on every call, which inflated its figures by ~194k instructions per call.
# OpenLLMetry and openlit capture prompts by default, which is a different workload.
os.environ.pop("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None)
os.environ["TRACELOOP_TRACE_CONTENT"] = "false"


NOT_INSTALLED = 3
RESULT_MARKER = "@@RESULT@@ "


class CountingExporter:
    """A SpanExporter that keeps nothing but counts (spans, attributes, events)."""

    def __init__(self) -> None:
        self.spans = 0
        self.attributes = 0
        self.events = 0
        self.last_attributes: dict[str, Any] = {}

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        for span in spans:
            self.spans += 1
            attributes = span.attributes or {}
            self.attributes += len(attributes)
            self.events += len(span.events)
            self.last_attributes = dict(attributes)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def setup_otel() -> tuple[Any, Any, Any, CountingExporter]:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = CountingExporter()
    resource = Resource.create({"service.name": "llmcost-bench"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    try:  # a logger provider with no processor: events (if any) go nowhere, the same for all
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider

        set_logger_provider(LoggerProvider(resource=resource))
    except ImportError:
        pass
    if os.environ.get("LLMCOST_BENCH_NO_METRICS") == "1":
        # Metrics off for every variant: the no-op MeterProvider (no SDK metric pipeline).
        return tracer_provider, metrics.NoOpMeterProvider(), None, exporter
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider, reader, exporter


def _openlit_pricing_file() -> str:
    # openlit fetches a pricing table over the network unless given a file: give it one
    # (our own numbers, openlit's documented format: USD per 1k tokens) so it prices too.
    import tempfile

    path = os.path.join(tempfile.gettempdir(), "llmcost-bench-openlit-pricing.json")
    chat = {"promptPrice": 0.00015, "completionPrice": 0.0006}
    claude = {"promptPrice": 0.003, "completionPrice": 0.015}
    table = {
        "chat": {
            "gpt-4o-mini": chat,
            "gpt-4o-mini-2024-07-18": chat,
            "claude-sonnet-4-20250514": claude,
        },
        "embeddings": {},
        "images": {},
        "audio": {},
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(table, fh)
    return path


def instrument(provider: str, variant: str, tracer_provider: Any, meter_provider: Any) -> str:
    """Apply one variant; return its version string. ImportError when not installed."""
    from importlib.metadata import version

    common = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    if variant == "bare":
        return ""
    if variant == "native":
        if not _sdk_has_native_tracing(provider):
            raise ImportError(f"this {provider} SDK has no built-in OpenTelemetry tracing")
        return version(provider)
    if variant == "llmcost":
        from otel_llmcost import LLMCostInstrumentor
        from otel_llmcost.providers import PROVIDERS

        if provider not in PROVIDERS:
            raise ImportError(f"otel-llmcost has no {provider} provider yet")
        LLMCostInstrumentor().instrument(providers=[provider], **common)
        return version("otel-llmcost")
    if variant == "contrib":
        if provider != "openai":
            raise ImportError("no official contrib instrumentation for this provider")
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(**common)
        return version("opentelemetry-instrumentation-openai-v2")
    if variant == "openllmetry":
        if provider == "openai":
            from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Instrumentor

            dist = "opentelemetry-instrumentation-openai"
        else:
            from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as Instrumentor

            dist = "opentelemetry-instrumentation-anthropic"
        if not hasattr(Instrumentor, "instrumentation_dependencies"):
            raise ImportError("not the OpenLLMetry package")
        Instrumentor().instrument(**common)
        return version(dist)
    if variant == "openlit":
        import openlit
        from openlit._instrumentors import MODULE_NAME_MAP

        keep = provider
        openlit.init(
            service_name="llmcost-bench",
            capture_message_content=False,
            pricing_json=_openlit_pricing_file(),
            disabled_instrumentors=[name for name in MODULE_NAME_MAP if name != keep],
            disable_batch=True,
        )
        return version("openlit")
    raise SystemExit(f"unknown variant {variant!r}")


def _sdk_client_class(provider: str, is_async: bool) -> Any:
    if provider == "openai":
        import openai

        return openai.AsyncOpenAI if is_async else openai.OpenAI
    import anthropic

    return anthropic.AsyncAnthropic if is_async else anthropic.Anthropic


def _sdk_has_native_tracing(provider: str) -> bool:
    """anthropic 2.x traces its own calls (``open_telemetry=`` client option, on by default)."""
    import inspect

    return "open_telemetry" in inspect.signature(_sdk_client_class(provider, False)).parameters


def make_client(provider: str, canned: Any, is_async: bool, variant: str) -> Any:
    from canned import sdk_http

    http = sdk_http(provider)
    transport = canned.transport(http)
    http_client = http.AsyncClient(transport=transport) if is_async else http.Client(transport=transport)
    options: dict[str, Any] = {"http_client": http_client, "max_retries": 0}
    if variant != "native" and _sdk_has_native_tracing(provider):
        options["open_telemetry"] = False  # the SDK's own spans only in the "native" variant
    cls = _sdk_client_class(provider, is_async)
    if provider == "openai":
        return cls(api_key="sk-bench", base_url="https://api.openai.com/v1", **options)
    return cls(api_key="sk-ant-bench", **options)


def build_call(provider: str, client: Any, kwargs: dict[str, Any], is_async: bool, stream: bool) -> Any:
    """A zero-argument function doing one call (a coroutine function when async); returns chunks seen."""
    create = client.chat.completions.create if provider == "openai" else client.messages.create
    if not is_async:
        if stream:

            def call() -> int:
                n = 0
                for _chunk in create(**kwargs):
                    n += 1
                return n

        else:

            def call() -> int:
                create(**kwargs)
                return 0

        return call
    if stream:

        async def acall() -> int:
            n = 0
            async for _chunk in await create(**kwargs):
                n += 1
            return n

    else:

        async def acall() -> int:
            await create(**kwargs)
            return 0

    return acall


def run_batch(call: Any, is_async: bool, count: int, loop: Any) -> int:
    chunks = 0
    if is_async:

        async def many() -> int:
            total = 0
            for _ in range(count):
                total += await call()
            return total

        return loop.run_until_complete(many())
    for _ in range(count):
        chunks += call()
    return chunks


def measure_metrics(reader: Any) -> int:
    points = 0
    if reader is None:
        return 0
    data = reader.get_metrics_data()
    if data is not None:
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    points += len(list(metric.data.data_points))
    return points


def calls_for(calls: int, stream_chunks: int) -> int:
    """Fewer calls for long streams, so that each scenario takes about the same time."""
    return max(3, calls * 10 // (10 + stream_chunks))


def run_scenario(args: argparse.Namespace, scenario: str, exporter: CountingExporter) -> dict[str, Any]:
    from canned import anthropic_canned, openai_canned

    mode, _, chunks_text = scenario.partition(":")
    is_async = mode == "async"
    stream_chunks = int(chunks_text or 0)
    n = calls_for(args.calls, stream_chunks)
    make = openai_canned if args.provider == "openai" else anthropic_canned
    canned, kwargs = make(stream_chunks, args.prompt_chars)
    client = make_client(args.provider, canned, is_async, args.variant)
    call = build_call(args.provider, client, kwargs, is_async, bool(stream_chunks))
    loop = asyncio.new_event_loop() if is_async else None
    try:
        warmup = max(args.warmup, 1)
        seen_chunks = run_batch(call, is_async, warmup, loop) // warmup
        spans_before = exporter.spans
        per_call_us: list[float] = []
        cpu_us: list[float] = []
        if args.callgrind:
            # Each operator.call() is one callgrind dump (--toggle-collect/--dump-after=_operator_call):
            # N calls, then 2N calls; the difference / N cancels everything but the calls.
            # Both batches start from an empty young generation, so that a collection
            # landing in one batch but not the other does not skew the difference.
            gc.collect()
            operator.call(run_batch, call, is_async, n, loop)
            gc.collect()
            operator.call(run_batch, call, is_async, 2 * n, loop)
            calls_made = 3 * n
        else:
            for _ in range(args.repeats):
                gc.collect()
                cpu = time.process_time_ns()
                start = time.perf_counter_ns()
                run_batch(call, is_async, n, loop)
                per_call_us.append((time.perf_counter_ns() - start) / n / 1000)
                cpu_us.append((time.process_time_ns() - cpu) / n / 1000)
            calls_made = n * args.repeats
        spans_per_call = (exporter.spans - spans_before) / calls_made
    finally:
        if loop is not None:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    return {
        "scenario": scenario,
        "chunks": seen_chunks,
        "calls": n,
        "per_call_us": per_call_us,
        "min_us": min(per_call_us) if per_call_us else None,
        "median_us": statistics.median(per_call_us) if per_call_us else None,
        "min_cpu_us": min(cpu_us) if cpu_us else None,
        "spans_per_call": spans_per_call,
        "attributes_per_span": len(exporter.last_attributes),
    }


def emit(result: dict[str, Any]) -> None:
    # Peers may print to stdout; the orchestrator reads the line after this marker.
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", default="openai", choices=["openai", "anthropic"])
    parser.add_argument("--variant", required=True)
    parser.add_argument(
        "--scenarios", default="sync:0", help="comma-separated mode:chunks, e.g. sync:0,async:0,sync:100,async:100"
    )
    parser.add_argument("--calls", type=int, default=200, help="calls per batch (non-stream; fewer for streams)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--prompt-chars", type=int, default=400)
    parser.add_argument("--callgrind", action="store_true", help="no timing: N then 2N calls, one dump each")
    args = parser.parse_args()

    try:
        sdk = __import__(args.provider)
    except ImportError:
        emit({"status": "not installed", "detail": f"{args.provider} SDK missing"})
        return NOT_INSTALLED

    tracer_provider, meter_provider, reader, exporter = setup_otel()
    try:
        variant_version = instrument(args.provider, args.variant, tracer_provider, meter_provider)
    except ImportError as exc:
        emit({"status": "not installed", "detail": str(exc)})
        return NOT_INSTALLED

    # Start-up: CPU of this process from its start until instrumented (interpreter, SDK,
    # OpenTelemetry SDK and the variant's imports and instrument()); the bare variant is the baseline.
    startup_cpu_ms = time.process_time() * 1000
    scenarios = [run_scenario(args, s, exporter) for s in args.scenarios.split(",") if s]
    emit(
        {
            "status": "ok",
            "provider": args.provider,
            "sdk_version": sdk.__version__,
            "variant": args.variant,
            "version": variant_version,
            "scenarios": scenarios,
            "metric_points": measure_metrics(reader),
            "startup_cpu_ms": startup_cpu_ms,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
