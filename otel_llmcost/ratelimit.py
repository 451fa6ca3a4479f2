"""Rate-limit headroom and retry hints from provider response headers.

OpenAI:    x-ratelimit-{limit,remaining,reset}-{requests,tokens}; reset is a Go
           duration ("6m0s", "1.5s", "20ms", "1h2m3.5s").
Anthropic: anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset};
           reset is an RFC 3339 time, turned into seconds from now.
Both:      retry-after (seconds or an HTTP date) and retry-after-ms.

Parsers return plain numbers or ``None`` and never raise: a malformed header costs
that one attribute, nothing else.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from . import semconv

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_HEADER = 64  # longer values are not rate-limit headers we understand


@lru_cache(maxsize=512)  # the same few reset strings repeat on every response
def parse_go_duration(value: Any) -> float | None:
    """'6m0s' -> 360.0, '1.5s' -> 1.5, '20ms' -> 0.02; None if not a duration."""
    if not isinstance(value, str) or not value or len(value) > _MAX_HEADER:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return float(text) if text[-1].isdigit() else _sum_go_units(text)
    except ValueError:
        return None


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
    return number if number >= 0 else None


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


# (header name, our kind, our field, parser) for each provider's scheme.
_Spec = tuple[str, str, str, Callable[[Any], Any]]


def _openai_specs() -> tuple[_Spec, ...]:
    specs: list[_Spec] = []
    for kind in ("requests", "tokens"):
        specs.append((f"x-ratelimit-limit-{kind}", kind, "limit", parse_int))
        specs.append((f"x-ratelimit-remaining-{kind}", kind, "remaining", parse_int))
        specs.append((f"x-ratelimit-reset-{kind}", kind, "reset_s", parse_go_duration))
    return tuple(specs)


def _anthropic_specs() -> tuple[_Spec, ...]:
    specs: list[_Spec] = []
    for kind, header_kind in (
        ("requests", "requests"),
        ("tokens", "tokens"),
        ("input_tokens", "input-tokens"),
        ("output_tokens", "output-tokens"),
    ):
        specs.append((f"anthropic-ratelimit-{header_kind}-limit", kind, "limit", parse_int))
        specs.append((f"anthropic-ratelimit-{header_kind}-remaining", kind, "remaining", parse_int))
        specs.append((f"anthropic-ratelimit-{header_kind}-reset", kind, "reset_s", parse_rfc3339_delta))
    return tuple(specs)


OPENAI_HEADERS = tuple((h, semconv.ratelimit_attribute(k, f), p) for h, k, f, p in _openai_specs())
ANTHROPIC_HEADERS = tuple((h, semconv.ratelimit_attribute(k, f), p) for h, k, f, p in _anthropic_specs())


def ratelimit_attributes(headers: Any, scheme: tuple[tuple[str, str, Callable[[Any], Any]], ...]) -> dict[str, Any]:
    """Span attributes for every rate-limit header of ``scheme`` present and well-formed."""
    out: dict[str, Any] = {}
    get = getattr(headers, "get", None)
    if get is None:
        return out
    for header, attribute, parse in scheme:
        raw = get(header)
        if raw is not None:
            value = parse(raw)
            if value is not None:
                out[attribute] = value
    return out
