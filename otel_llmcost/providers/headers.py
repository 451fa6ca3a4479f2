"""Reading response headers: rate-limit headroom, retry hints and a billed cost.

Each provider module holds its own header table (:data:`HeaderSpec` rows: header name,
the ``llmcost.ratelimit.*`` attribute it fills, and the parser for its value format);
this module holds the value parsers they share:

- counts (``x-ratelimit-remaining-requests: 4999``);
- Go durations (OpenAI resets: ``"6m0s"``, ``"1.5s"``, ``"20ms"``, ``"1h2m3.5s"``);
- RFC 3339 times (Anthropic resets), turned into seconds from now;
- ``retry-after`` (seconds or an HTTP date) and ``retry-after-ms``, sent by all of them;
- a gateway's billed cost (LiteLLM's ``x-litellm-response-cost``).

Parsers return plain numbers or ``None`` and never raise: a malformed header costs
that one attribute, nothing else.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from .. import semconv

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_HEADER = 64  # longer values are not rate-limit headers we understand
# OTLP integer attributes are int64: a larger count would be dropped by the exporter with
# an ERROR per span, and no real limit is that large, so such a header counts as malformed.
INT64_MAX = 2**63 - 1


@lru_cache(maxsize=512)  # the same few reset strings repeat on every response
def parse_go_duration(value: Any) -> float | None:
    """'6m0s' -> 360.0, '1.5s' -> 1.5, '20ms' -> 0.02; None if not a duration."""
    if not isinstance(value, str) or not value or len(value) > _MAX_HEADER:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text) if text[-1].isdigit() else _sum_go_units(text)
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None


def _sum_go_units(text: str) -> float | None:
    total = 0.0
    position = 0
    for match in _GO_DURATION.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position == len(text) and position else None


def parse_rfc3339_delta(value: Any, now: float | None = None) -> float | None:
    """Seconds from now until an RFC 3339 time ('2026-11-23T12:00:30Z'), floored at 0."""
    if not isinstance(value, str) or not value or len(value) > _MAX_HEADER:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(moment.timestamp() - (time.time() if now is None else now), 0.0)


@lru_cache(maxsize=1024)
def parse_int(value: Any) -> int | None:
    if not isinstance(value, str) or not value or len(value) > _MAX_HEADER:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if 0 <= number <= INT64_MAX else None


def exportable(value: Any) -> bool:
    """Whether a parsed header value can be an OTLP attribute: an int64 or a finite float."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -INT64_MAX - 1 <= value <= INT64_MAX
    return isinstance(value, float) and math.isfinite(value)


def parse_retry_after(headers: Mapping[str, str] | Any, now: float | None = None) -> float | None:
    """retry-after-ms, else retry-after as seconds or an HTTP date; None when absent or bad."""
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            value = float(millis)
            if 0 <= value < 1e9:
                return value / 1000.0
        raw = headers.get("retry-after")
        if raw is None or len(raw) > _MAX_HEADER:
            return None
        try:
            value = float(raw)
            return value if 0 <= value < 1e7 else None
        except ValueError:
            when = parsedate_to_datetime(raw)
            if when is None:
                return None
            return max(when.timestamp() - (time.time() if now is None else now), 0.0)
    except Exception:
        return None


# (header name, llmcost.ratelimit.* attribute, parser of the value)
HeaderSpec = tuple[str, str, Callable[[Any], Any]]


def ratelimit_specs(rows: tuple[tuple[str, str, str, Callable[[Any], Any]], ...]) -> tuple[HeaderSpec, ...]:
    """A header table from (header, kind, field, parser) rows: kind/field name the attribute."""
    return tuple((header, semconv.ratelimit_attribute(kind, name), parse) for header, kind, name, parse in rows)


def ratelimit_values(get: Callable[[str], Any], specs: tuple[HeaderSpec, ...]) -> dict[str, int | float]:
    """Attribute -> value for every header of ``specs`` present, well-formed and exportable
    (checked here once for every provider's parsers, the shared ones and their own)."""
    out: dict[str, int | float] = {}
    for header, attribute, parse in specs:
        raw = get(header)
        if raw is not None:
            value = parse(raw)
            if value is not None and exportable(value):
                out[attribute] = value
    return out


# Response headers that carry the billed cost in USD, in order of preference.
COST_HEADERS = ("x-litellm-response-cost",)


def cost_amount(value: Any) -> float | None:
    """A billed amount in USD (a number or numeric text, finite, 0 <= x < 1e9), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value < 1e9:
        return float(value)
    return None


def reported_cost_from_headers(get: Callable[[str], Any]) -> tuple[float, str] | None:
    """(USD, source) from a cost header, or None."""
    for name in COST_HEADERS:
        amount = cost_amount(get(name))
        if amount is not None:
            return amount, f"header {name}"
    return None
