"""A WSGI app for gunicorn ``--preload`` (test_fork.py): imported once in the master, which
sets up tracing with the llmcost exporter and makes one instrumented call (so the exporter
has written the spool, and started the ingester, before gunicorn forks its workers).

``GET /call?n=<n>`` makes an instrumented openai call (the light fake provider) with
``llmcost.session`` = ``http:<n>`` and answers ``{"pid": ..., "chdb": <bool>}``;
``GET /health`` answers without a call. gunicorn_conf.py shuts the provider down in each
worker and in the master as they exit. The DSN comes from ``OTEL_EXPORTER_LLMCOST_DSN``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _reliability import light_openai  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

import otel_llmcost as llmcost  # noqa: E402
from otel_llmcost import LLMCostInstrumentor  # noqa: E402
from otel_llmcost.exporter import LLMCostSpanExporter  # noqa: E402
from otel_llmcost.pricing import Pricer  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello"}]

exporter = LLMCostSpanExporter()  # configured by OTEL_EXPORTER_LLMCOST_* as in production
provider = TracerProvider(resource=Resource.create({"service.name": "gunicorn"}))
processor = BatchSpanProcessor(exporter, max_export_batch_size=32, schedule_delay_millis=50)
provider.add_span_processor(processor)
LLMCostInstrumentor().instrument(
    tracer_provider=provider, meter_provider=MeterProvider(), pricer=Pricer(overrides_path="")
)
client = light_openai()

with llmcost.attributes(session="master:0"):
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[attr-defined]
processor.force_flush()


def shutdown() -> None:
    provider.shutdown()


def app(environ, start_response):  # type: ignore[no-untyped-def]
    if environ.get("PATH_INFO") == "/call":
        n = environ.get("QUERY_STRING", "").partition("n=")[2]
        with llmcost.attributes(session=f"http:{n}"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[attr-defined]
    body = json.dumps({"pid": os.getpid(), "chdb": "chdb" in sys.modules}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
