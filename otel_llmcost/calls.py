"""The life of one logical LLM call: one span, started by a provider wrapper and
ended exactly once, whatever happens (return, exception, stream exhausted, closed,
abandoned).

Why not opentelemetry-util-genai's TelemetryHandler: it owns the span end itself
and has no notion of our extra attributes (cost parts, rate-limit headroom, retries
seen by the base client), of ending a stream span from a garbage-collected proxy,
or of pricing; adapting our data to its invocation types would add an allocation-
heavy translation on every call for no behaviour we need. The names it emits are
the same semconv names we use (see semconv.py), so spans from both look alike.

Everything here is guarded: an unexpected shape costs attributes, never the user's
call. The user's exceptions pass through unchanged.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import reported_cost, semconv
from .price_overrides import variant_label
from .usage import Usage

if TYPE_CHECKING:
    from .budgets import Reservation
    from .pricing import Cost
    from .telemetry import Telemetry

logger = logging.getLogger(__name__)

# The call whose SDK request is running in this context: the base-client hooks
# (headers, retries, 429s) report into it.
CURRENT_CALL: contextvars.ContextVar[LLMCall | None] = contextvars.ContextVar("otel_llmcost_call", default=None)

_THROTTLE_STATUSES = (429, 529)


class LLMCall:
    """Mutable record of one call; providers fill it, :meth:`finish` turns it into a span."""

    __slots__ = (
        "telemetry",
        "provider",
        "provider_name",
        "operation",
        "span",
        "start",
        "started_at",
        "model",
        "stream",
        "request_kwargs",
        "api_url",
        "server_address",
        "pricing_provider",
        "price_context",
        "usage",
        "response_model",
        "response_id",
        "finish_reasons",
        "output_parts",
        "first_chunk_at",
        "retries",
        "throttled_attempts",
        "retry_after",
        "status_code",
        "ratelimit",
        "reported_cost",
        "metric_dimensions",
        "reservation",
        "hop_usage",
        "hops",
        "ended",
        "_context_token",
    )

    def __init__(self, telemetry: Telemetry, provider: Any) -> None:
        self.telemetry = telemetry
        self.provider = provider
        self.provider_name: str = provider.name
        self.operation: str = ""
        self.span: Any = None
        self.start = time.perf_counter()
        self.started_at = time.time()  # wall clock: the call is priced at the price in force then
        self.model = ""
        self.stream = False
        self.request_kwargs: dict[str, Any] | None = None
        self.api_url: str | None = None
        self.server_address: str | None = None
        self.pricing_provider: str | None = None
        self.price_context: dict[str, str] | None = None
        self.usage: Usage | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] | None = None
        self.output_parts: list[str] | None = None
        self.first_chunk_at: float | None = None
        self.retries = 0
        self.throttled_attempts = 0
        self.retry_after: float | None = None
        self.status_code: int | None = None
        self.ratelimit: dict[str, Any] | None = None
        self.reported_cost: tuple[float, str] | None = None  # (USD, where it was read) from the host
        self.metric_dimensions: dict[str, str] | None = None
        self.reservation: Reservation | None = None  # held against budgets until finish
        # Calls that the SDK splits into several billed requests (Gemini automatic function
        # calling) sum each request's usage here.
        self.hop_usage: Usage | None = None
        self.hops = 0
        self.ended = False
        self._context_token: object | None = None

    # --- lifecycle --------------------------------------------------------------

    def begin(self, attributes: dict[str, Any]) -> None:
        operation = self.operation
        name = f"{operation} {self.model}" if self.model else operation
        tracer = self.telemetry.tracer
        self.span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    def attach(self) -> contextvars.Token[LLMCall | None]:
        """Make the span current while the SDK sends, so HTTP client spans nest under it."""
        self._context_token = otel_context.attach(trace.set_span_in_context(self.span))
        return CURRENT_CALL.set(self)

    def detach(self, token: contextvars.Token[LLMCall | None]) -> None:
        CURRENT_CALL.reset(token)
        if self._context_token is not None:
            try:
                otel_context.detach(self._context_token)  # type: ignore[arg-type]
            except Exception:  # detaching in another context (async generators) is harmless
                pass
            self._context_token = None

    # --- reports from hooks and stream proxies ------------------------------------

    def on_chunk(self, chunk: Any) -> None:
        if self.first_chunk_at is None:
            self.first_chunk_at = time.perf_counter()
        try:
            self.provider.read_chunk(self, chunk)
        except Exception:
            logger.debug("otel-llmcost: unreadable stream chunk", exc_info=True)

    def on_headers(self, headers: Any, status_code: int | None) -> None:
        try:
            attributes = self.provider.read_headers(headers)
            if attributes:
                if self.ratelimit is None:
                    self.ratelimit = attributes
                else:
                    self.ratelimit.update(attributes)
            if status_code is not None:
                self.status_code = status_code
                if status_code < 400:
                    reported = reported_cost.from_headers(headers)
                    if reported is not None:
                        self.reported_cost = reported
            if status_code in _THROTTLE_STATUSES:
                self.throttled_attempts += 1
                from .ratelimit import parse_retry_after

                after = parse_retry_after(headers)
                if after is not None:
                    self.retry_after = after
        except Exception:
            logger.debug("otel-llmcost: unreadable response headers", exc_info=True)

    def on_retry(self, retries_taken: int) -> None:
        if type(retries_taken) is int and retries_taken > self.retries:
            self.retries = retries_taken

    # --- ending -----------------------------------------------------------------

    def fail(self, error: BaseException) -> None:
        """End the span as failed; never raises (the caller re-raises ``error``)."""
        if self.ended:
            return
        try:
            response = getattr(error, "response", None)
            status = getattr(error, "status_code", None)
            if response is not None and status is None:
                status = getattr(response, "status_code", None)
                if status is None:  # aiohttp responses (google-genai's async path) say .status
                    status = getattr(response, "status", None)
            if type(status) is not int:
                code = getattr(error, "code", None)  # google-genai APIError carries the HTTP code
                status = code if type(code) is int and 100 <= code < 600 else status
            if response is not None:
                self.on_headers(getattr(response, "headers", None), status if type(status) is int else None)
            elif type(status) is int:
                self.status_code = status
                if status in _THROTTLE_STATUSES:
                    self.throttled_attempts += 1
        except Exception:
            logger.debug("otel-llmcost: could not read error %r", type(error), exc_info=True)
        self.finish(error)

    def finish(self, error: BaseException | None = None) -> None:
        """Set every attribute, price the call, record metrics and end the span, once."""
        if self.ended:
            return
        self.ended = True
        span = self.span
        if span is None:
            return
        try:
            self._finish(span, error)
        except Exception:
            logger.debug("otel-llmcost: failed to complete span attributes", exc_info=True)
        finally:
            if self.reservation is not None and not self.reservation.settled:
                self.reservation.release()  # _finish failed before settling: never leak a reservation
            try:
                span.end()
            except Exception:  # pragma: no cover - SDK span.end does not raise
                logger.debug("otel-llmcost: span.end failed", exc_info=True)

    def _finish(self, span: Any, error: BaseException | None) -> None:
        telemetry = self.telemetry
        end = time.perf_counter()
        attrs: dict[str, Any] = {}
        usage = self.usage
        if usage is None and error is None:
            usage = self._estimate_usage()
        if self.response_model:
            attrs[semconv.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.response_id:
            attrs[semconv.GEN_AI_RESPONSE_ID] = self.response_id
        if self.finish_reasons:
            attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(self.finish_reasons)
        ttfc = self.first_chunk_at - self.start if self.first_chunk_at is not None else None
        if ttfc is not None:
            attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
        if self.ratelimit:
            attrs.update(self.ratelimit)
        if self.retries:
            attrs[semconv.RETRY_COUNT] = self.retries
        if self.throttled_attempts:
            attrs[semconv.THROTTLED] = True
            attrs[semconv.THROTTLED_ATTEMPTS] = self.throttled_attempts
        if self.retry_after is not None:
            attrs[semconv.RETRY_AFTER_S] = self.retry_after
        if self.status_code is not None:
            attrs[semconv.HTTP_RESPONSE_STATUS_CODE] = self.status_code

        cost = None
        if usage is not None:
            attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
            attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
            attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
            attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
            attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
            attrs[semconv.USAGE_UNCACHED_INPUT_TOKENS] = usage.uncached_input_tokens
            if usage.estimated:
                attrs[semconv.USAGE_ESTIMATED] = True
            ttl = usage.cache_write_ttl
            if ttl:
                attrs[semconv.CACHE_WRITE_TTL] = ttl
                if usage.cache_write_1h_tokens:
                    attrs[semconv.USAGE_CACHE_WRITE_1H_TOKENS] = usage.cache_write_1h_tokens
            cost = self._price(usage)
            if cost is None:
                attrs[semconv.UNPRICED] = True
                asked = self.telemetry.pricer.provider_for(self.pricing_provider, self.api_url)
                if asked:
                    attrs[semconv.PRICE_PROVIDER] = asked
            else:
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
            if self.price_context:
                attrs[semconv.PRICE_VARIANT] = variant_label(self.price_context)
            if usage.has_modalities:
                for attribute, count in (
                    (semconv.USAGE_INPUT_AUDIO_TOKENS, usage.input_audio_tokens),
                    (semconv.USAGE_CACHE_AUDIO_READ_TOKENS, usage.cache_audio_read_tokens),
                    (semconv.USAGE_OUTPUT_AUDIO_TOKENS, usage.output_audio_tokens),
                    (semconv.USAGE_INPUT_IMAGE_TOKENS, usage.input_image_tokens),
                    (semconv.USAGE_CACHE_IMAGE_READ_TOKENS, usage.cache_image_read_tokens),
                    (semconv.USAGE_OUTPUT_IMAGE_TOKENS, usage.output_image_tokens),
                ):
                    if count:
                        attrs[attribute] = count
        reported = self.reported_cost
        if reported is not None:
            attrs[semconv.COST_REPORTED] = reported[0]
            attrs[semconv.COST_REPORTED_SOURCE] = reported[1]
        if telemetry.emit_draft_cost:
            _draft_cost_attributes(attrs, cost, reported)

        if self.reservation is not None:
            # Reconcile to the actual cost; a failure with no usage was not billed: release.
            if cost is not None:
                self.reservation.commit(cost.total)
            elif error is not None and usage is None:
                self.reservation.release()
            else:
                self.reservation.commit(None)  # no usage reported: keep the estimate

        if telemetry.capture_content and self.output_parts:
            span.add_event(
                semconv.EVENT_GEN_AI_OUTPUT_MESSAGES,
                {semconv.GEN_AI_OUTPUT_MESSAGES: json.dumps(["".join(self.output_parts)])},
            )

        if error is not None:
            error_type = type(error).__qualname__
            attrs[semconv.ERROR_TYPE] = error_type
            # Provider error messages can echo the prompt (e.g. a 400 quoting the input), so
            # the message is recorded only where content capture is allowed.
            description = str(error)[:512] if telemetry.capture_content else error_type
            span.set_status(Status(StatusCode.ERROR, description))
        span.set_attributes(attrs)

        metric_attrs = {
            semconv.GEN_AI_OPERATION_NAME: self.operation,
            semconv.GEN_AI_PROVIDER_NAME: self.provider_name,
            semconv.GEN_AI_REQUEST_MODEL: self.model,
        }
        if self.response_model:
            metric_attrs[semconv.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.server_address:
            metric_attrs[semconv.SERVER_ADDRESS] = self.server_address
        if error is not None:
            metric_attrs[semconv.ERROR_TYPE] = attrs[semconv.ERROR_TYPE]
        if self.metric_dimensions:
            metric_attrs.update(self.metric_dimensions)
        telemetry.instruments.record(
            metric_attrs,
            duration_s=end - self.start,
            input_tokens=usage.input_tokens if usage is not None else None,
            output_tokens=usage.output_tokens if usage is not None else None,
            cost=cost.total if cost is not None else None,
            savings=cost.savings if cost is not None else None,
            unpriced=usage is not None and cost is None,
            throttled_attempts=self.throttled_attempts,
            ttfc_s=ttfc,
        )

    def _price(self, usage: Usage) -> Cost | None:
        # At the span's own start time when it has one: the Timestamp stored in ClickHouse,
        # so `prices sync` reprices the call at the same instant (and span processors that
        # move the clock, as the demo's history replay does, move the price with it).
        start_ns = getattr(self.span, "start_time", None)
        when = start_ns / 1e9 if type(start_ns) is int else self.started_at
        return self.telemetry.pricer.price_call(
            usage,
            self.model,
            self.response_model,
            provider_id=self.pricing_provider,
            api_url=self.api_url,
            price_context=self.price_context,
            when=when,
        )

    def _estimate_usage(self) -> Usage | None:
        """Count tokens locally when the provider returned none (e.g. a stream without usage)."""
        if not self.telemetry.estimate_missing_usage:
            return None
        try:
            return self.provider.estimate_usage(self)
        except Exception:
            logger.debug("otel-llmcost: token estimate failed", exc_info=True)
            return None


def _draft_cost_attributes(attrs: dict[str, Any], cost: Cost | None, reported: tuple[float, str] | None) -> None:
    """``gen_ai.usage.cost.*`` as drafted upstream: the amount the response carried when it
    carried one (passed through), else ours; ``source`` says which."""
    if reported is not None:
        amount, source = reported[0], semconv.COST_SOURCE_PROVIDER
    elif cost is not None:
        amount, source = cost.total, semconv.COST_SOURCE_LOCAL
    else:
        return
    attrs[semconv.GEN_AI_USAGE_COST_AMOUNT] = amount
    attrs[semconv.GEN_AI_USAGE_COST_CURRENCY] = "USD"
    attrs[semconv.GEN_AI_USAGE_COST_SOURCE] = source
