"""The life of one logical LLM call: one span, started by a wrapper and ended exactly
once, whatever happens (return, exception, stream exhausted, closed, abandoned).

A call holds what its provider read from the request (:class:`Request`) and fills a
:class:`ResponseRecord` from the response and stream events; the SDK-internal hooks
report each HTTP attempt (headers, status, retries) into the call running in their
context (:data:`CURRENT_CALL`). :meth:`LLMCall.finish` turns it all into attributes
with the functions of :mod:`.attributes`, prices it, records metrics and ends the span.

Why not opentelemetry-util-genai's TelemetryHandler: it owns the span end itself and
has no notion of our extra attributes (cost parts, rate-limit headroom, retries seen
by the base client), of ending a stream span from a garbage-collected proxy, or of
pricing; adapting our data to its invocation types would add an allocation-heavy
translation on every call for no behaviour we need. The names it emits are the same
semconv names we use (see semconv.py), so spans from both look alike.

Everything here is guarded: an unexpected shape costs attributes, never the user's
call. The user's exceptions pass through unchanged.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import semconv
from ..budgets import Reservation
from ..config import Settings
from ..pricing import Cost, Pricer, Usage
from ..providers.base import Attempt, Provider, Request, ResponseRecord
from . import attributes
from .anatomy import scaled
from .metrics import Instruments
from .tokens import count_parts, count_prompt, count_texts

logger = logging.getLogger(__name__)

# The call whose SDK request is running in this context: the SDK-internal hooks report into it.
CURRENT_CALL: contextvars.ContextVar[LLMCall | None] = contextvars.ContextVar("otel_llmcost_call", default=None)


class CallOwner(Protocol):
    """What a call needs from the instrumentation that started it (``Telemetry``)."""

    tracer: Any
    pricer: Pricer
    settings: Settings
    instruments: Instruments

    def complete(self, call: LLMCall, result: Any) -> Any: ...


class LLMCall:
    """What is known about one call while it runs; :meth:`finish` turns it into a span."""

    __slots__ = (
        "telemetry",
        "provider",
        "request",
        "record",
        "span",
        "start",
        "start_ns",
        "end",
        "started_at",
        "first_chunk_at",
        "retries",
        "throttled_attempts",
        "retry_after",
        "status_code",
        "ratelimit",
        "header_cost",
        "pending_failure",
        "hop_usage",
        "hops",
        "metric_dimensions",
        "reservation",
        "anatomy",
        "answered",
        "ended",
        "_context_token",
    )

    def __init__(self, telemetry: CallOwner, provider: Provider, request: Request, *, collect_output: bool) -> None:
        self.telemetry = telemetry
        self.provider = provider
        self.request = request
        estimate = request.estimate_usage
        self.record = ResponseRecord(
            operation=request.operation,
            output_parts=[] if collect_output else None,
            generated_parts=[] if estimate else None,
            reasoning_parts=[] if estimate else None,
        )
        self.span: Any = None
        # Reset when the span starts (begin): the span, its duration and time to first
        # chunk are all measured from that one instant, on the one monotonic clock.
        self.start = time.perf_counter()
        self.start_ns = time.time_ns()
        self.end: float | None = None
        self.started_at = time.time()  # wall clock: the call is priced at the price in force then
        self.first_chunk_at: float | None = None
        self.retries = 0
        self.throttled_attempts = 0
        self.retry_after: float | None = None
        self.status_code: int | None = None
        self.ratelimit: dict[str, int | float] | None = None
        self.header_cost: tuple[float, str] | None = None  # billed cost from a response header
        self.pending_failure: Attempt | None = None  # a failed attempt, until we know it is retried
        # Calls that the SDK splits into several billed requests (Gemini automatic function
        # calling) sum each request's usage here.
        self.hop_usage: Usage | None = None
        self.hops = 0
        self.metric_dimensions: dict[str, str] | None = None
        self.reservation: Reservation | None = None  # held against budgets until finish
        self.anatomy: dict[str, int] | None = None  # prompt components as counted locally (anatomy.py)
        self.answered = False  # a complete response was read (not a stream that may never start)
        self.ended = False
        self._context_token: object | None = None

    # --- lifecycle --------------------------------------------------------------

    def begin(self, span_attributes: dict[str, Any]) -> None:
        request = self.request
        name = f"{request.operation} {request.model}" if request.model else request.operation
        # Everything before this (attribution, prompt hashing and counting, the budget
        # decision) is not the call: time starts here, for the span and for TTFT alike.
        self.start = time.perf_counter()
        self.start_ns = time.time_ns()
        self.span = self.telemetry.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=span_attributes, start_time=self.start_ns
        )

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
            self.provider.read_chunk(self.record, chunk)
        except Exception:
            logger.debug("otel-llmcost: unreadable stream chunk", exc_info=True)

    def report(self, reader: Callable[[tuple[Any, ...], dict[str, Any], Any], Attempt | None], *hook_args: Any) -> None:
        """Apply what an SDK-internal hook read (``reader(args, kwargs, value)``). Never raises."""
        try:
            attempt = reader(*hook_args)
            if attempt is not None:
                self.on_attempt(attempt)
        except Exception:
            logger.debug("otel-llmcost: could not read an HTTP attempt", exc_info=True)

    def on_attempt(self, attempt: Attempt) -> None:
        if attempt.starting:
            failed, self.pending_failure = self.pending_failure, None
            if failed is not None:  # the SDK is sending another attempt: the failed one was retried
                self.retries += 1
                self.on_headers(failed.headers, failed.status)
            return
        if attempt.failed:
            self.pending_failure = attempt  # the final failure is read from the exception instead
            return
        if attempt.retries_taken is not None and attempt.retries_taken > self.retries:
            self.retries = attempt.retries_taken
        if attempt.headers is not None or attempt.status is not None:
            self.on_headers(attempt.headers, attempt.status)
        if attempt.hop_usage is not None:
            self.hop_usage = attempt.hop_usage if self.hop_usage is None else self.hop_usage.plus(attempt.hop_usage)
            self.hops += 1

    def on_headers(self, headers: Any, status: int | None) -> None:
        try:
            report = self.provider.read_headers(headers, status) if headers is not None else None
            if report is not None:
                if report.ratelimits:
                    if self.ratelimit is None:
                        self.ratelimit = report.ratelimits
                    else:
                        self.ratelimit.update(report.ratelimits)
                if report.reported_cost is not None:
                    self.header_cost = report.reported_cost
                if report.retry_after_s is not None:
                    self.retry_after = report.retry_after_s
            if status is not None:
                self.status_code = status
                if status in self.provider.throttle_statuses:
                    self.throttled_attempts += 1
        except Exception:
            logger.debug("otel-llmcost: unreadable response headers", exc_info=True)

    # --- ending -----------------------------------------------------------------

    def fail(self, error: BaseException) -> None:
        """End the span as failed; never raises (the caller re-raises ``error``)."""
        if self.ended:
            return
        try:
            report = self.provider.read_error(error)
            headers = report.headers
            if headers is None and self.pending_failure is not None:
                # The exception dropped the response's headers (cohere 5.x's ApiError): the last
                # failed attempt, the one not retried, is that response.
                headers = self.pending_failure.headers
            self.on_headers(headers, report.status)
            if report.throttled and report.status not in self.provider.throttle_statuses:
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
                span.end(end_time=self._end_time_ns())
            except Exception:  # pragma: no cover - SDK span.end does not raise
                logger.debug("otel-llmcost: span.end failed", exc_info=True)

    def _end_time_ns(self) -> int:
        """The span's end on the clock that timed its first chunk: duration >= TTFT, always."""
        end = self.end if self.end is not None else time.perf_counter()
        return self.start_ns + int((end - self.start) * 1e9)

    def _finish(self, span: Any, error: BaseException | None) -> None:
        telemetry = self.telemetry
        end = self.end = time.perf_counter()
        record = self.record
        usage = self.hop_usage if self.hops > 1 and self.hop_usage is not None else record.usage
        if usage is None and error is None:
            usage = self.request.billed_usage  # speech: the characters sent (None for most requests)
        if error is None and self.request.estimate_usage and telemetry.settings.estimate_missing_usage:
            usage = self._estimate_usage(usage)
        ttfc = self.first_chunk_at - self.start if self.first_chunk_at is not None else None
        attrs: dict[str, Any] = {}
        attributes.put_response(attrs, record, ttfc)
        attributes.put_transport(attrs, self.ratelimit, self.retries, self.throttled_attempts, self.retry_after)
        if self.status_code is not None:
            attrs[semconv.HTTP_RESPONSE_STATUS_CODE] = self.status_code
        cost: Cost | None = None
        unpriced_without_usage = False
        if usage is not None:
            attributes.put_usage(attrs, usage)
            cost = self._price(usage)
            if cost is None:
                provider_id = telemetry.pricer.provider_for(self.request.pricing_provider, self.request.api_url)
                attributes.put_unpriced(attrs, provider_id)
            else:
                attributes.put_cost(attrs, cost, usage)
            if record.price_context:
                attributes.put_price_variant(attrs, record.price_context)
        elif error is None and self.request.unpriced_without_usage:
            unpriced_without_usage = True
            provider_id = telemetry.pricer.provider_for(self.request.pricing_provider, self.request.api_url)
            attributes.put_unpriced(attrs, provider_id)
        reported = record.reported_cost or self.header_cost
        if reported is not None:
            attributes.put_reported_cost(attrs, reported)
        if telemetry.settings.emit_draft_cost:
            attributes.put_draft_cost(attrs, cost, reported)
        self._settle(cost, usage, error)
        if telemetry.settings.capture_content and record.output_parts:
            span.add_event(
                semconv.EVENT_GEN_AI_OUTPUT_MESSAGES,
                {semconv.GEN_AI_OUTPUT_MESSAGES: json.dumps(["".join(record.output_parts)])},
            )
        if error is not None:
            error_type = type(error).__qualname__
            attrs[semconv.ERROR_TYPE] = error_type
            # Provider error messages can echo the prompt (e.g. a 400 quoting the input), so
            # the message is recorded only where content capture is allowed.
            description = str(error)[:512] if telemetry.settings.capture_content else error_type
            span.set_status(Status(StatusCode.ERROR, description))
        components = self.anatomy
        if components is not None:
            # Kept as counted: a multi-request call (Gemini's automatic function calling)
            # bills more input than the one prompt the components split, and an implausible
            # usage is no bill. The input is read back capped at int64, as it is exported.
            input_tokens = attrs.get(semconv.GEN_AI_USAGE_INPUT_TOKENS, 0) if self.hops <= 1 else 0
            if input_tokens > 0 and not (cost is not None and cost.implausible):
                components = scaled(components, input_tokens)
            attrs.update(components)
        span.set_attributes(attrs)
        # A usage in other units only (whisper-1's seconds, speech's characters) counts no tokens.
        tokens = usage if usage is not None and not usage.units_only else None
        metric_attrs, input_attrs, output_attrs = attributes.metric_attribute_sets(
            self.request, record, attrs.get(semconv.ERROR_TYPE), self.metric_dimensions
        )
        telemetry.instruments.record(
            metric_attrs,
            token_attributes=(input_attrs, output_attrs),
            duration_s=end - self.start,
            input_tokens=tokens.input_tokens if tokens is not None else None,
            output_tokens=tokens.output_tokens if tokens is not None else None,
            cost=cost.total if cost is not None else None,
            savings=cost.savings if cost is not None else None,
            unpriced=(usage is not None and cost is None) or unpriced_without_usage,
            throttled_attempts=self.throttled_attempts,
            ttfc_s=ttfc,
        )

    def _settle(self, cost: Cost | None, usage: Usage | None, error: BaseException | None) -> None:
        """Reconcile a budget reservation to the actual cost; a failure with no usage was not billed."""
        reservation = self.reservation
        if reservation is None:
            return
        tokens = usage.input_tokens + usage.output_tokens if usage is not None else None
        if cost is not None and getattr(cost, "implausible", False):
            tokens = 0  # a usage beyond belief is charged nothing (its cost is 0 too)
        if cost is not None:
            reservation.commit(cost.total, tokens)
        elif error is not None and usage is None:
            reservation.release()
        else:
            reservation.commit(None, tokens)  # unpriced or no usage: keep the USD estimate

    def _price(self, usage: Usage) -> Cost | None:
        # At the span's own start time when it has one: the Timestamp stored in ClickHouse,
        # so `prices sync` reprices the call at the same instant (and span processors that
        # move the clock, as the demo's history replay does, move the price with it).
        start_ns = getattr(self.span, "start_time", None)
        when = start_ns / 1e9 if type(start_ns) is int else self.started_at
        request = self.request
        return self.telemetry.pricer.price_call(
            usage,
            request.model,
            self.record.model,
            provider_id=request.pricing_provider,
            api_url=request.api_url,
            price_context=self.record.price_context,
            when=when,
        )

    def _estimate_usage(self, usage: Usage | None) -> Usage | None:
        """Count tokens locally where the provider reported none (a stream without usage).

        With no usage (or one that counts nothing), input and output are counted; with a
        usage whose output count is zero, missing or provisional, only the output is raised
        to what the stream generated. The output is all of it: the answer's text, tool-call
        names and arguments, refusals, and reasoning text unless the usage reported
        reasoning itself. A usage that already covers it is returned as it is.
        """
        record = self.record
        if self.request.operation == semconv.OPERATION_EMBEDDINGS:
            return self._estimate_input(usage)
        if usage is not None and usage.output_tokens and not record.output_partial:
            return usage  # the provider's count: the common case, nothing to count
        parts = record.output_parts
        if parts is None:
            return usage
        counted = usage if usage is not None and (usage.input_tokens or usage.output_tokens) else None
        if counted is None and self.status_code is None and self.first_chunk_at is None:
            return usage  # never answered (a stream never iterated): nothing was billed
        try:
            model = record.model or self.request.model
            reported_reasoning = counted.reasoning_tokens if counted is not None else 0
            reasoning = 0 if reported_reasoning else count_parts(record.reasoning_parts, model)
            output = count_parts(parts, model) + count_parts(record.generated_parts, model) + reasoning
            if counted is None:
                prompt = self.request.prompt
                return Usage(
                    input_tokens=count_prompt(prompt.system, prompt.messages, model),
                    output_tokens=output,
                    reasoning_tokens=reasoning,
                    estimated=True,
                )
            raised = reported_reasoning + output - counted.output_tokens
            if raised <= 0:
                return usage
            return counted.plus(Usage(output_tokens=raised, reasoning_tokens=reasoning, estimated=True))
        except Exception:
            logger.debug("otel-llmcost: token estimate failed", exc_info=True)
            return usage

    def _estimate_input(self, usage: Usage | None) -> Usage | None:
        """An embeddings response that reported no tokens (the Gemini API's): every text of
        the input counted, with no chat-format overhead. Nothing to generate, so no output."""
        if usage is not None or not self.answered:
            return usage
        try:
            model = self.record.model or self.request.model
            return Usage(input_tokens=count_texts(self.request.prompt.messages, model), estimated=True)
        except Exception:
            logger.debug("otel-llmcost: token estimate failed", exc_info=True)
            return usage
