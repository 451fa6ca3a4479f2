"""An instrumented app for the embedded-store tests and benchmarks (issue 17).

The real openai SDK against a canned fake provider (``_reliability.LightProvider``),
instrumented by otel-llmcost, with a span exporter chosen on the command line:

    python store_app.py --dsn chdb:///x --service s --calls 200 --exporter llmcost
    python store_app.py ... --exporter none          # the baseline: spans go nowhere
    python store_app.py ... --fsize-limit 4096 --fsize-after 10  # RLIMIT_FSIZE from call 10 on
    python store_app.py ... --loop --pause 0.05      # until SIGTERM (read-latency writers)

``--processor simple`` (the default) exports every span as its call ends, so the
exporter's result is known per call; ``batch`` uses a BatchSpanProcessor as
``opentelemetry-instrument`` would. Every call carries ``llmcost.session`` =
``<service>:<seq>`` so that tests can count each call once. On exit it prints one
JSON line: calls made, calls that raised, export results, the exporter's
``dropped_spans`` and the process's peak RSS (``ru_maxrss``, KiB).

The app never imports chdb: the exporter only appends to the spool. ``--exporter
llmcost`` takes the ingester mode from ``OTEL_EXPORTER_LLMCOST_INGESTER``.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _reliability import light_openai  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

import otel_llmcost as llmcost  # noqa: E402
from otel_llmcost import LLMCostInstrumentor  # noqa: E402
from otel_llmcost.pricing import Pricer  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello"}]


class Counting(SpanExporter):
    """Wraps an exporter (or none) and counts what ``export`` returned, per span."""

    def __init__(self, inner: SpanExporter | None) -> None:
        self.inner = inner
        self.accepted = 0
        self.refused = 0
        self.lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans) if self.inner is not None else SpanExportResult.SUCCESS
        with self.lock:
            if result is SpanExportResult.SUCCESS:
                self.accepted += len(spans)
            else:
                self.refused += len(spans)
        return result

    def shutdown(self) -> None:
        if self.inner is not None:
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis) if self.inner is not None else True


def one_call(client: Any, service: str, seq: int) -> None:
    with llmcost.attributes(session=f"{service}:{seq}", feature="store"):
        if seq % 3 == 0:
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            for _ in stream:
                pass
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--first-seq", type=int, default=0, help="number of the first call (llmcost.session)")
    parser.add_argument("--exporter", choices=("llmcost", "none"), default="llmcost")
    parser.add_argument("--processor", choices=("simple", "batch"), default="simple")
    parser.add_argument("--batch-size", type=int, default=512, help="BatchSpanProcessor max_export_batch_size")
    parser.add_argument("--schedule-ms", type=int, default=60_000, help="BatchSpanProcessor schedule_delay_millis")
    parser.add_argument("--fsize-limit", type=int, default=None, help="RLIMIT_FSIZE (bytes) from call --fsize-after")
    parser.add_argument("--fsize-after", type=int, default=0, help="calls made (and flushed) before the limit")
    parser.add_argument("--loop", action="store_true", help="call until SIGTERM")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between calls")
    args = parser.parse_args()

    inner: SpanExporter | None = None
    if args.exporter == "llmcost":
        from otel_llmcost.exporter import LLMCostSpanExporter

        inner = LLMCostSpanExporter(dsn=args.dsn)
    exporter = Counting(inner)
    provider = TracerProvider(resource=Resource.create({"service.name": args.service}))
    processor = (
        SimpleSpanProcessor(exporter)
        if args.processor == "simple"
        else BatchSpanProcessor(exporter, max_export_batch_size=args.batch_size, schedule_delay_millis=args.schedule_ms)
    )
    provider.add_span_processor(processor)
    LLMCostInstrumentor().instrument(
        tracer_provider=provider, meter_provider=MeterProvider(), pricer=Pricer(overrides_path="")
    )
    client = light_openai()

    def limit_file_size() -> None:
        processor.force_flush()  # what was called so far is exported before the disk "fills"
        # A write past the limit then fails with EFBIG instead of killing the process.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize_limit, resource.RLIM_INFINITY))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    calls = failed = 0
    started = time.monotonic()
    while (args.loop and not stop.is_set()) or (not args.loop and calls < args.calls):
        if args.fsize_limit is not None and calls == args.fsize_after:
            limit_file_size()
        try:
            one_call(client, args.service, args.first_seq + calls)
        except Exception as exc:  # the app's call must never fail because of the exporter
            failed += 1
            print(f"call {calls} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        calls += 1
        if args.pause:
            stop.wait(args.pause)
    elapsed = time.monotonic() - started
    provider.shutdown()
    report = {
        "calls": calls,
        "failed": failed,
        "accepted": exporter.accepted,
        "refused": exporter.refused,
        "dropped": getattr(inner, "dropped_spans", 0),
        "seconds": round(elapsed, 3),
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "chdb_loaded": "chdb" in sys.modules,
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
