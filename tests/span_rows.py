"""otel_traces rows for tests, value for value as the collector's exporter writes them.

One builder for every test that inserts constructed spans, so the column layout
(otel_llmcost.exporter.rows.COLUMNS) is followed in one place.
"""

from __future__ import annotations

import secrets
from typing import Any

from otel_llmcost.exporter.rows import COLUMNS
from otel_llmcost.semconv import INSTRUMENTATION_SCOPE


def trace_row(
    ts_ns: int,
    attributes: dict[str, Any],
    *,
    service: str,
    name: str,
    trace_id: str | None = None,
    duration_ns: int = 500_000_000,
    status: str = "Unset",
) -> list[Any]:
    """A client span of otel-llmcost's scope; attribute values are stored as strings."""
    row = {
        "Timestamp": ts_ns,
        "TraceId": trace_id or secrets.token_hex(16),
        "SpanId": secrets.token_hex(8),
        "ParentSpanId": "",
        "TraceState": "",
        "SpanName": name,
        "SpanKind": "Client",
        "ServiceName": service,
        "ResourceAttributes": {"service.name": service},
        "ScopeName": INSTRUMENTATION_SCOPE,
        "ScopeVersion": "0.1",
        "SpanAttributes": {k: str(v) for k, v in attributes.items()},
        "Duration": duration_ns,
        "StatusCode": status,
        "StatusMessage": "",
    }
    return [row.get(column, []) for column in COLUMNS]  # Events.* and Links.*: empty
