"""ReadableSpan -> otel_traces row, written the way the collector's clickhouseexporter writes it.

Matching the collector value for value is what lets one set of views serve both paths
(app -> collector -> ClickHouse, and app -> embedded exporter -> chdb):

- SpanKind / StatusCode: pdata ``Kind().String()`` / ``Code().String()``, i.e.
  "Client", "Server", "Internal", "Producer", "Consumer" and "Unset", "Ok", "Error".
- Attribute values: pdata ``Value.AsString()``: bools "true"/"false", ints in base 10,
  doubles in the ES6 number format (Go ``FormatFloat(f, 'f', -1)`` between 1e-6 and
  1e21, exponent form outside), slices as JSON arrays.
- Ids in lower-case hex, empty when all-zero; Duration = end - start in ns.

Strings are made valid UTF-8 (a lone surrogate becomes U+FFFD) because ClickHouse
clients cannot encode them; everything else, NUL and quotes included, passes through
untouched: values travel as data, never inside SQL text.

Sizes are bounded so that one huge prompt (captured content, a giant error message)
cannot blow up a batch: every attribute value, event attribute value, span name and
status message is cut to ``max_value_bytes`` UTF-8 bytes (default 8 KiB,
``OTEL_EXPORTER_LLMCOST_MAX_ATTRIBUTE_BYTES``; 0 disables), on a character boundary.
A span with cut values carries ``llmcost.attributes.truncated`` = how many.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from ..config import DEFAULT_MAX_ATTRIBUTE_BYTES
from ..semconv import ATTRIBUTES_TRUNCATED

COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)

_KIND = {
    SpanKind.INTERNAL: "Internal",
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
}
_STATUS = {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def clean_str(value: str) -> str:
    """Valid UTF-8 text: lone surrogates (which no UTF-8 encoder accepts) become U+FFFD."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def format_double(value: float) -> str:
    """pdata float64AsString: ES6 number formatting, as the collector stores doubles."""
    if math.isnan(value):
        return "json: unsupported value: NaN"
    if math.isinf(value):
        return "json: unsupported value: " + ("+Inf" if value > 0 else "-Inf")
    if value == 0:
        return "0" if math.copysign(1.0, value) > 0 else "-0"
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        # Python's repr is already in exponent form here, with the same shortest digits
        # as Go; Go then trims "e-07" to "e-7" but keeps "e+21".
        text = repr(value)
        if len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
            text = text[:-2] + text[-1]
        return text
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _json_string(value: str) -> str:
    text = json.dumps(clean_str(value), ensure_ascii=False)
    for char, escape in _HTML_ESCAPES.items():
        text = text.replace(char, escape)
    return text


def _json_value(value: Any) -> str:
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("NaN/Inf in a JSON array")
        return format_double(value)
    if value is None:
        return "null"
    return _json_string(str(value))


def format_value(value: Any) -> str:
    """One attribute value as the collector's AttributesToMap stores it."""
    if isinstance(value, str):
        return clean_str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Sequence):
        try:
            return "[" + ",".join(_json_value(v) for v in value) + "]"
        except ValueError:
            return ""  # Go's json.Marshal fails on NaN and AsString then yields ""
    return clean_str(str(value))


class Truncations:
    """Counts values cut by :func:`span_to_row` (per span and in total)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def bound(value: str, limit: int, cuts: Truncations | None) -> str:
    """``value`` cut to at most ``limit`` UTF-8 bytes on a character boundary (0: no limit)."""
    if not limit or len(value) * 4 <= limit:  # fast path: cannot exceed the limit
        return value
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return value
    if cuts is not None:
        cuts.count += 1
    return encoded[:limit].decode("utf-8", "ignore")


def format_attributes(
    attributes: Mapping[str, Any] | None, limit: int = 0, cuts: Truncations | None = None
) -> dict[str, str]:
    if not attributes:
        return {}
    if not limit:
        return {clean_str(str(k)): format_value(v) for k, v in attributes.items()}
    return {bound(clean_str(str(k)), limit, cuts): bound(format_value(v), limit, cuts) for k, v in attributes.items()}


def _trace_id(value: int | None) -> str:
    return format(value, "032x") if value else ""


def _span_id(value: int | None) -> str:
    return format(value, "016x") if value else ""


def _trace_state(context: Any) -> str:
    state = getattr(context, "trace_state", None)
    return clean_str(state.to_header()) if state else ""


def span_to_row(
    span: ReadableSpan, max_value_bytes: int = DEFAULT_MAX_ATTRIBUTE_BYTES, totals: Truncations | None = None
) -> list[Any]:
    """One row for otel_traces, values in COLUMNS order (JSON-serialisable).

    Values longer than ``max_value_bytes`` are cut (see the module docstring); the
    number cut is added to ``totals``.
    """
    limit = max_value_bytes
    cuts = Truncations()
    context = span.context
    resource_attributes = span.resource.attributes if span.resource is not None else {}
    service_name = resource_attributes.get("service.name", "")
    scope = span.instrumentation_scope
    start = span.start_time or 0
    end = span.end_time or start
    status = span.status
    events = span.events or ()
    links = span.links or ()
    span_attributes = format_attributes(span.attributes, limit, cuts)
    event_attributes = [format_attributes(e.attributes, limit, cuts) for e in events]
    name = bound(clean_str(span.name or ""), limit, cuts)
    status_message = bound(clean_str(status.description or ""), limit, cuts) if status else ""
    if cuts.count:
        span_attributes[ATTRIBUTES_TRUNCATED] = str(cuts.count)
        if totals is not None:
            totals.count += cuts.count
    return [
        start,
        _trace_id(context.trace_id if context else 0),
        _span_id(context.span_id if context else 0),
        _span_id(span.parent.span_id if span.parent else 0),
        _trace_state(context),
        name,
        _KIND.get(span.kind, "Unspecified"),
        clean_str(service_name) if isinstance(service_name, str) else "",
        format_attributes(resource_attributes),
        clean_str(scope.name or "") if scope else "",
        clean_str(scope.version or "") if scope else "",
        span_attributes,
        max(end - start, 0),
        _STATUS.get(status.status_code, "Unset") if status else "Unset",
        status_message,
        [e.timestamp for e in events],
        [clean_str(e.name) for e in events],
        event_attributes,
        [_trace_id(link.context.trace_id) for link in links],
        [_span_id(link.context.span_id) for link in links],
        [_trace_state(link.context) for link in links],
        [format_attributes(link.attributes) for link in links],
    ]
