"""Span and metric attributes of a call, from what the call knows: one small function each.

Each ``put_*`` function writes one group of attributes into the dict it is given (one
dict per span, so nothing here allocates per group); the call's start and end compose
them. Names come from :mod:`otel_llmcost.semconv` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import semconv
from ..pricing import Cost, Usage
from ..pricing.overrides import variant_label
from ..pricing.usage import INT64_MAX, int64
from ..providers.base import Request, ResponseRecord

# Modality subsets of the token totals, recorded only when non-zero.
_MODALITY_ATTRIBUTES = (
    (semconv.USAGE_INPUT_AUDIO_TOKENS, "input_audio_tokens"),
    (semconv.USAGE_CACHE_AUDIO_READ_TOKENS, "cache_audio_read_tokens"),
    (semconv.USAGE_OUTPUT_AUDIO_TOKENS, "output_audio_tokens"),
    (semconv.USAGE_INPUT_IMAGE_TOKENS, "input_image_tokens"),
    (semconv.USAGE_CACHE_IMAGE_READ_TOKENS, "cache_image_read_tokens"),
    (semconv.USAGE_OUTPUT_IMAGE_TOKENS, "output_image_tokens"),
)


def request_attributes(request: Request) -> dict[str, Any]:
    """The attributes a call's span starts with (``gen_ai.request.*``, the host)."""
    attrs: dict[str, Any] = {
        semconv.GEN_AI_OPERATION_NAME: request.operation,
        semconv.GEN_AI_PROVIDER_NAME: request.provider_name,
    }
    if request.model:
        attrs[semconv.GEN_AI_REQUEST_MODEL] = request.model
    if request.temperature is not None:
        attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] = request.temperature
    if request.top_p is not None:
        attrs[semconv.GEN_AI_REQUEST_TOP_P] = request.top_p
    attrs[semconv.GEN_AI_REQUEST_STREAM] = request.stream
    if request.max_tokens is not None:
        attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] = request.max_tokens
    if request.server_address:
        attrs[semconv.SERVER_ADDRESS] = request.server_address
        if request.server_port:
            attrs[semconv.SERVER_PORT] = request.server_port
    if request.attributes:
        attrs.update(request.attributes)
    return attrs


def put_response(attrs: dict[str, Any], record: ResponseRecord, ttfc_s: float | None) -> None:
    if record.model:
        attrs[semconv.GEN_AI_RESPONSE_MODEL] = record.model
    if record.id:
        attrs[semconv.GEN_AI_RESPONSE_ID] = record.id
    if record.finish_reasons:
        attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(record.finish_reasons)
    if ttfc_s is not None:
        attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc_s
    if record.attributes:
        attrs.update(record.attributes)


def put_transport(
    attrs: dict[str, Any],
    ratelimit: Mapping[str, int | float] | None,
    retries: int,
    throttled_attempts: int,
    retry_after_s: float | None,
) -> None:
    """Rate-limit headroom, SDK retries and 429s of the call's HTTP attempts."""
    if ratelimit:
        attrs.update(ratelimit)
    if retries:
        attrs[semconv.RETRY_COUNT] = retries
    if throttled_attempts:
        attrs[semconv.THROTTLED] = True
        attrs[semconv.THROTTLED_ATTEMPTS] = throttled_attempts
    if retry_after_s is not None:
        attrs[semconv.RETRY_AFTER_S] = retry_after_s


def put_usage(attrs: dict[str, Any], usage: Usage) -> None:
    """Token counts as reported, capped at int64 (the most OTLP can carry; see pricing.usage).

    A usage in other units only (whisper-1's audio seconds, speech's characters) reports no
    tokens: none are written (no made-up zeros). Its units are already on the span, as the
    provider read them (``llmcost.usage.audio_seconds`` / ``.input_characters``)."""
    if not usage.input_tokens and usage.units_only:  # input first: the hot path reads one field
        return
    # int64() inlined: six calls per span on the hot path.
    cap = INT64_MAX
    count = usage.input_tokens
    attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = count if count <= cap else cap
    count = usage.output_tokens
    attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = count if count <= cap else cap
    count = usage.cache_read_tokens
    attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = count if count <= cap else cap
    count = usage.cache_write_tokens
    attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = count if count <= cap else cap
    count = usage.reasoning_tokens
    attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = count if count <= cap else cap
    count = usage.uncached_input_tokens
    attrs[semconv.USAGE_UNCACHED_INPUT_TOKENS] = count if count <= cap else cap
    if usage.estimated:
        attrs[semconv.USAGE_ESTIMATED] = True
    ttl = usage.cache_write_ttl
    if ttl:
        attrs[semconv.CACHE_WRITE_TTL] = ttl
        if usage.cache_write_1h_tokens:
            attrs[semconv.USAGE_CACHE_WRITE_1H_TOKENS] = int64(usage.cache_write_1h_tokens)
    if usage.has_modalities:
        for attribute, name in _MODALITY_ATTRIBUTES:
            count = getattr(usage, name)
            if count:
                attrs[attribute] = int64(count)


def put_cost(attrs: dict[str, Any], cost: Cost, usage: Usage) -> None:
    """The cost by part and the price entry that produced it; for an implausible usage only
    the flag: no amount computed from it (absent, like an unpriced call's, so SQL totals skip it)."""
    if cost.implausible:
        attrs[semconv.USAGE_IMPLAUSIBLE] = True
        return
    attrs[semconv.COST_TOTAL] = cost.total
    attrs[semconv.COST_INPUT] = cost.input
    attrs[semconv.COST_OUTPUT] = cost.output
    attrs[semconv.COST_CACHE_READ] = cost.cache_read
    attrs[semconv.COST_CACHE_WRITE] = cost.cache_write
    attrs[semconv.COST_SAVINGS] = cost.savings
    attrs[semconv.PRICE_SOURCE] = cost.source
    attrs[semconv.PRICE_VERSION] = cost.version
    attrs[semconv.PRICE_MODEL] = cost.model_id
    attrs[semconv.PRICE_PROVIDER] = cost.provider_id
    if cost.effective_from is not None:
        attrs[semconv.PRICE_EFFECTIVE_FROM] = cost.effective_from.isoformat()
    if usage.cache_write_tokens:
        attrs[semconv.COST_CACHE_WRITE_PREMIUM] = cost.write_premium
        if cost.breakeven_reads is not None:
            attrs[semconv.CACHE_BREAKEVEN_READS] = cost.breakeven_reads


def put_unpriced(attrs: dict[str, Any], price_provider: str | None) -> None:
    """No price for the model: flagged, never a silent 0; the provider asked helps match a later price."""
    attrs[semconv.UNPRICED] = True
    if price_provider:
        attrs[semconv.PRICE_PROVIDER] = price_provider


def put_price_variant(attrs: dict[str, Any], price_context: Mapping[str, str]) -> None:
    attrs[semconv.PRICE_VARIANT] = variant_label(price_context)


def put_reported_cost(attrs: dict[str, Any], reported: tuple[float, str]) -> None:
    attrs[semconv.COST_REPORTED] = reported[0]
    attrs[semconv.COST_REPORTED_SOURCE] = reported[1]


def put_draft_cost(attrs: dict[str, Any], cost: Cost | None, reported: tuple[float, str] | None) -> None:
    """``gen_ai.usage.cost.*`` as drafted upstream: the amount the response carried when it
    carried one (passed through), else ours; ``source`` says which."""
    if reported is not None:
        amount, source = reported[0], semconv.COST_SOURCE_PROVIDER
    elif cost is not None and not cost.implausible:
        amount, source = cost.total, semconv.COST_SOURCE_LOCAL
    else:
        return
    attrs[semconv.GEN_AI_USAGE_COST_AMOUNT] = amount
    attrs[semconv.GEN_AI_USAGE_COST_CURRENCY] = "USD"
    attrs[semconv.GEN_AI_USAGE_COST_SOURCE] = source


# (operation, provider, request model, response model, host, error type, dimensions) ->
# (metric attributes, the same with gen_ai.token.type input, with output): shared, never
# mutated (the SDK copies what it keeps); bounded like the other per-process caches.
MetricAttributeSets = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
_metric_sets: dict[tuple[Any, ...], MetricAttributeSets] = {}
_METRIC_SETS_MAX = 4096


def metric_attribute_sets(
    request: Request, record: ResponseRecord, error_type: str | None, dimensions: Mapping[str, str] | None
) -> MetricAttributeSets:
    """:func:`metric_attributes`, and the token-usage histogram's two variants of it,
    built once per distinct combination."""
    key = (
        request.operation,
        request.provider_name,
        request.model,
        record.model,
        request.server_address,
        error_type,
        tuple(dimensions.items()) if dimensions else None,
    )
    sets = _metric_sets.get(key)
    if sets is None:
        attrs = metric_attributes(request, record, error_type, dimensions)
        sets = (
            attrs,
            {**attrs, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT},
            {**attrs, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_OUTPUT},
        )
        if len(_metric_sets) >= _METRIC_SETS_MAX:
            _metric_sets.clear()
        _metric_sets[key] = sets
    return sets


def metric_attributes(
    request: Request, record: ResponseRecord, error_type: str | None, dimensions: Mapping[str, str] | None
) -> dict[str, Any]:
    """Low-cardinality attributes for the call's metrics (never user or session)."""
    attrs: dict[str, Any] = {
        semconv.GEN_AI_OPERATION_NAME: request.operation,
        semconv.GEN_AI_PROVIDER_NAME: request.provider_name,
        semconv.GEN_AI_REQUEST_MODEL: request.model,
    }
    if record.model:
        attrs[semconv.GEN_AI_RESPONSE_MODEL] = record.model
    if request.server_address:
        attrs[semconv.SERVER_ADDRESS] = request.server_address
    if error_type is not None:
        attrs[semconv.ERROR_TYPE] = error_type
    if dimensions:
        attrs.update(dimensions)
    return attrs
