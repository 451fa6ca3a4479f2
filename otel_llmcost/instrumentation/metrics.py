"""Metric instruments: the GenAI semconv client histograms plus our cost counters.

Counters of spend survive trace sampling: a service sampling 1% of traces still
knows its exact bill from ``llmcost.cost``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.metrics import Meter

from .. import semconv


class Instruments:
    __slots__ = ("operation_duration", "token_usage", "time_to_first_chunk", "cost", "savings", "unpriced", "throttled")

    def __init__(self, meter: Meter) -> None:
        self.operation_duration = meter.create_histogram(
            semconv.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )
        self.token_usage = meter.create_histogram(
            semconv.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(semconv.TOKEN_USAGE_BUCKETS),
        )
        self.time_to_first_chunk = meter.create_histogram(
            semconv.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from request to the first streamed chunk",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )
        self.cost = meter.create_counter(
            semconv.METRIC_COST, unit="USD", description="Spend on LLM calls, priced at the rates in force"
        )
        self.savings = meter.create_up_down_counter(
            semconv.METRIC_CACHE_SAVINGS, unit="USD", description="Net saving from prompt caching (negative: premium)"
        )
        self.unpriced = meter.create_counter(
            semconv.METRIC_UNPRICED_CALLS, unit="{call}", description="Calls whose model had no known price"
        )
        self.throttled = meter.create_counter(
            semconv.METRIC_THROTTLED, unit="{request}", description="Requests answered 429/529 (including retried ones)"
        )

    def record(
        self,
        attributes: dict[str, Any],
        *,
        duration_s: float,
        input_tokens: int | None,
        output_tokens: int | None,
        cost: float | None,
        savings: float | None,
        unpriced: bool,
        throttled_attempts: int,
        ttfc_s: float | None,
        token_attributes: tuple[dict[str, Any], dict[str, Any]] | None = None,
    ) -> None:
        """``token_attributes``: ``attributes`` with ``gen_ai.token.type`` input and output,
        when the caller has them prebuilt (never mutated here)."""
        self.operation_duration.record(duration_s, attributes)
        if input_tokens is not None:
            self.token_usage.record(
                input_tokens,
                token_attributes[0]
                if token_attributes is not None
                else {**attributes, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT},
            )
        if output_tokens is not None:
            self.token_usage.record(
                output_tokens,
                token_attributes[1]
                if token_attributes is not None
                else {**attributes, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_OUTPUT},
            )
        if ttfc_s is not None:
            self.time_to_first_chunk.record(ttfc_s, attributes)
        if cost is not None:
            self.cost.add(cost, attributes)
        if savings:
            self.savings.add(savings, attributes)
        if unpriced:
            self.unpriced.add(1, attributes)
        if throttled_attempts:
            self.throttled.add(throttled_attempts, attributes)
