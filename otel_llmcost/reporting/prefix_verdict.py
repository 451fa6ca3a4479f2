"""One plain-English line per endpoint: why prompt caching does or does not pay.

Input is one row of the ``prefix_stability`` report (:mod:`otel_llmcost.reporting.reports`),
which reads ``v_prefix_calls_hourly`` / ``v_prefix_stability_hourly`` (``storage/sql/006_caching.sql``).
The checks go in the order a reader would fix things: caching already working (or
costing more than it saves), then no prefix at all, a prefix under the provider's
minimum cacheable size, a prefix that changes from request to request, and last a
stable, long-enough prefix that still gets no hits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A prefix is "not stable" when its most common value covers less than this share of
# the calls; below it at most one request in two could ever hit the cache.
STABLE_SHARE = 0.5

# Providers that cache only what the request marks (cache_control), not automatically.
_EXPLICIT_CACHE_PROVIDERS = ("anthropic",)


def _usd(value: float) -> str:
    return f"${value:,.2f}" if abs(value) >= 0.01 else f"${value:,.4f}"


def explain(row: Mapping[str, Any]) -> str:
    """Why caching does or does not pay for one (endpoint, model) row of the report."""
    calls = row.get("Calls") or 0
    share = row.get("TopPrefixShare") or 0.0
    per_hour = row.get("PrefixesPerHour") or 0.0
    prefix_tokens = row.get("PrefixTokens")
    minimum = row.get("MinCacheTokens")
    hit_rate = row.get("HitRate") or 0.0
    per_day = row.get("SavingsPerDayUsd") or 0.0
    provider = row.get("Provider") or ""
    if hit_rate > 0:
        if per_day > 0:
            return f"pays: {hit_rate:.0%} of input tokens read from cache, saves {_usd(per_day)}/day"
        return (
            f"does not pay: {hit_rate:.0%} cache hits, but cache writes cost {_usd(-per_day)}/day more than reads"
            " save: the prefix is seldom reused before the cache expires"
        )
    if calls == 0 or share == 0:
        return "nothing to cache: single-message prompts with no system prompt or tools share no prefix"
    if prefix_tokens is not None and minimum is not None and prefix_tokens < minimum:
        size = f"~{prefix_tokens:,} tokens"
        return f"no hits: the prefix ({size}) is under the {minimum:,}-token minimum {provider} caches"
    if share < STABLE_SHARE:
        return (
            f"no hits: {per_hour:,.0f} distinct prefixes/hour, the most common in {share:.0%} of requests:"
            " the prefix is not stable (move per-request content after the shared part)"
        )
    if prefix_tokens is None:
        return "no hits: prefix length unknown (prompt anatomy off or sampled out), minimum size not checked"
    if minimum is None:
        return f"no hits: stable ~{prefix_tokens:,}-token prefix; no known minimum cache size for {provider or '?'}"
    if provider in _EXPLICIT_CACHE_PROVIDERS:
        return f"no hits: stable ~{prefix_tokens:,}-token prefix is never marked: add cache_control to its last block"
    return (
        f"no hits: stable ~{prefix_tokens:,}-token prefix; requests too far apart for the cache to stay warm"
        " (or the provider routed them to different machines)"
    )
