"""otel_traces rows for tests, value for value as the collector's exporter writes them.

One builder for every test that inserts constructed spans, so the column layout
(otel_llmcost.exporter.rows.COLUMNS) is followed in one place: :func:`trace_row` for
any span, and on top of it :func:`call_row` (a GenAI call), :func:`priced_call_row`
(a call with the usage and cost attributes the instrumentation sets) and
:func:`server_span_row` (a web framework's HTTP server span carrying events).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from otel_llmcost import semconv as sc
from otel_llmcost.exporter.rows import COLUMNS
from otel_llmcost.pricing import Cost, Usage
from otel_llmcost.pricing.overrides import variant_label
from otel_llmcost.semconv import INSTRUMENTATION_SCOPE

HOUR_NS = 3600 * 10**9
FASTAPI_SCOPE = ("opentelemetry.instrumentation.fastapi", "0.66b1")


def now_ns() -> int:
    return time.time_ns()


def trace_row(
    ts_ns: int,
    attributes: dict[str, Any],
    *,
    service: str,
    name: str,
    trace_id: str | None = None,
    duration_ns: int = 500_000_000,
    status: str = "Unset",
    kind: str = "Client",
    scope: tuple[str, str] = (INSTRUMENTATION_SCOPE, "0.1"),
    events: Sequence[tuple[str, dict[str, str]]] = (),
) -> list[Any]:
    """A span (by default a client span of otel-llmcost's scope); attribute values are
    stored as strings, ``events`` (name, attributes) one nanosecond apart from ``ts_ns``."""
    row = {
        "Timestamp": ts_ns,
        "TraceId": trace_id or secrets.token_hex(16),
        "SpanId": secrets.token_hex(8),
        "ParentSpanId": "",
        "TraceState": "",
        "SpanName": name,
        "SpanKind": kind,
        "ServiceName": service,
        "ResourceAttributes": {"service.name": service},
        "ScopeName": scope[0],
        "ScopeVersion": scope[1],
        "SpanAttributes": {k: str(v) for k, v in attributes.items()},
        "Duration": duration_ns,
        "StatusCode": status,
        "StatusMessage": "",
        "Events.Timestamp": [ts_ns + i for i in range(len(events))],
        "Events.Name": [event for event, _ in events],
        "Events.Attributes": [attrs for _, attrs in events],
    }
    return [row.get(column, []) for column in COLUMNS]  # Links.*: empty


def call_row(
    service: str,
    ts_ns: int,
    *,
    name: str | None = None,
    status: str = "Unset",
    duration_ns: int = 500_000_000,
    trace_id: str | None = None,
    **attrs: Any,
) -> list[Any]:
    """A GenAI call (chat m1 at provider p1); ``attrs`` are named by their semconv constant,
    lower-case (``cost_total=0.5``, ``gen_ai_usage_input_tokens=2000``)."""
    attributes = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_REQUEST_MODEL: "m1",
        sc.GEN_AI_PROVIDER_NAME: "p1",
    }
    attributes.update({getattr(sc, k.upper()): str(v) for k, v in attrs.items()})
    return trace_row(
        ts_ns,
        attributes,
        service=service,
        name=name or f"chat {attributes[sc.GEN_AI_REQUEST_MODEL]}",
        trace_id=trace_id,
        duration_ns=duration_ns,
        status=status,
    )


def priced_call_row(
    when: datetime,
    request_model: str,
    usage: Usage,
    cost: Cost | None,
    *,
    provider_name: str,
    price_provider: str,
    context: dict[str, str] | None = None,
    reported: float | None = None,
    service: str = "svc",
) -> list[Any]:
    """A call with the attributes calls.LLMCall.finish sets: every token count of ``usage``,
    and ``cost`` (None: recorded as unpriced)."""
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: provider_name,
        sc.GEN_AI_REQUEST_MODEL: request_model,
        sc.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: usage.cache_read_tokens,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: usage.cache_write_tokens,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: usage.reasoning_tokens,
        sc.USAGE_UNCACHED_INPUT_TOKENS: usage.uncached_input_tokens,
        sc.USAGE_CACHE_WRITE_1H_TOKENS: usage.cache_write_1h_tokens,
        sc.USAGE_INPUT_AUDIO_TOKENS: usage.input_audio_tokens,
        sc.USAGE_CACHE_AUDIO_READ_TOKENS: usage.cache_audio_read_tokens,
        sc.USAGE_OUTPUT_AUDIO_TOKENS: usage.output_audio_tokens,
        sc.USAGE_INPUT_IMAGE_TOKENS: usage.input_image_tokens,
        sc.USAGE_CACHE_IMAGE_READ_TOKENS: usage.cache_image_read_tokens,
        sc.USAGE_OUTPUT_IMAGE_TOKENS: usage.output_image_tokens,
        sc.PRICE_PROVIDER: price_provider,
    }
    if context:
        attrs[sc.PRICE_VARIANT] = variant_label(context)
    if cost is None:
        attrs[sc.UNPRICED] = "true"
    else:
        attrs[sc.COST_TOTAL] = repr(cost.total)
        attrs[sc.PRICE_SOURCE] = cost.source
        attrs[sc.PRICE_VERSION] = cost.version
        attrs[sc.PRICE_MODEL] = cost.model_id
    if reported is not None:
        attrs[sc.COST_REPORTED] = repr(reported)
        attrs[sc.COST_REPORTED_SOURCE] = "usage.cost"
    return trace_row(
        int(when.timestamp() * 1e9), attrs, service=service, name=f"chat {request_model}", duration_ns=1_000_000
    )


def server_span_row(
    ts_ns: int,
    route: str,
    events: Sequence[tuple[str, dict[str, str]]],
    *,
    service: str,
    attributes: dict[str, str] | None = None,
) -> list[Any]:
    """An HTTP server span of the FastAPI instrumentation for ``route`` ("POST /chat")
    carrying ``events`` (name, attributes), e.g. the app rate limiter's decisions."""
    return trace_row(
        ts_ns,
        {"http.route": route.split(" ", 1)[1], **(attributes or {})},
        service=service,
        name=route,
        kind="Server",
        scope=FASTAPI_SCOPE,
        duration_ns=5_000_000,
        events=events,
    )
