"""What every provider wrapper shares: tracer, instruments, pricer and settings,
built once per ``instrument()`` and closed over by the wrappers so the hot path
does no lookups; and the wrapper factories themselves.

A wrapper starts an :class:`~otel_llmcost.calls.LLMCall`, runs the SDK method with
the call current (so the base-client hooks can report headers and retries into
it), then hands the result to :meth:`Telemetry.complete`, which either reads the
response and ends the span or returns a proxy that ends it later (streams, raw
responses). Nothing here may raise into user code.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from . import attribution, semconv
from .anatomy import Anatomy
from .budgets import BudgetExceeded, Budgets
from .calls import CURRENT_CALL, LLMCall
from .metrics import Instruments
from .pricing import Pricer, default_pricer
from .retrieval import claim_pending
from .streams import AsyncStreamProxy, RawResponseProxy, SyncStreamProxy, read_body_json

logger = logging.getLogger(__name__)

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
INJECT_INCLUDE_USAGE_ENV = "OTEL_LLMCOST_OPENAI_INCLUDE_USAGE"
ESTIMATE_USAGE_ENV = "OTEL_LLMCOST_ESTIMATE_MISSING_USAGE"
PROMPT_HASH_ENV = "OTEL_LLMCOST_PROMPT_HASH"
# Also emit cost as the gen_ai.usage.cost.* attributes drafted upstream (semantic-conventions-genai
# PR #443); off by default while the names may still change.
DRAFT_COST_ENV = "OTEL_LLMCOST_EMIT_DRAFT_COST_ATTRIBUTES"

# Attribution dimensions that are safe as metric attributes (bounded cardinality);
# user and session stay on spans only.
_METRIC_DIMENSIONS = (semconv.ENDPOINT, semconv.FEATURE, semconv.TEAM)


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


class Telemetry:
    def __init__(
        self,
        tracer: Any,
        meter: Any,
        *,
        pricer: Pricer | None = None,
        capture_content: bool | None = None,
        inject_include_usage: bool | None = None,
        estimate_missing_usage: bool | None = None,
        user_hash_key: str | None = None,
        hash_prompts: bool | None = None,
        budgets: Budgets | None = None,
        prompt_anatomy: str | float | bool | None = None,
        emit_draft_cost: bool | None = None,
    ) -> None:
        self.tracer = tracer
        self.instruments = Instruments(meter)
        self.pricer = pricer or default_pricer()
        self.capture_content = env_flag(CAPTURE_CONTENT_ENV, False) if capture_content is None else capture_content
        self.inject_include_usage = (
            env_flag(INJECT_INCLUDE_USAGE_ENV, False) if inject_include_usage is None else inject_include_usage
        )
        self.estimate_missing_usage = (
            env_flag(ESTIMATE_USAGE_ENV, True) if estimate_missing_usage is None else estimate_missing_usage
        )
        self.user_hash_key = user_hash_key or os.environ.get(attribution.USER_HASH_KEY_ENV) or None
        self.hash_prompts = env_flag(PROMPT_HASH_ENV, True) if hash_prompts is None else hash_prompts
        self.emit_draft_cost = env_flag(DRAFT_COST_ENV, False) if emit_draft_cost is None else emit_draft_cost
        # None when off: the hot path pays one attribute check for each.
        self.anatomy = Anatomy.from_environment(prompt_anatomy)
        self.budgets = _budgets(budgets, self.pricer, meter)
        self._prompt_counter = self.anatomy or (Anatomy() if self.budgets is not None else None)

    # --- call lifecycle -----------------------------------------------------------

    def start_call(self, provider: Any, api: Any, instance: Any, kwargs: dict[str, Any]) -> LLMCall | None:
        """A started call, or None when this call must not be traced (nested or suppressed)."""
        if CURRENT_CALL.get() is not None or not is_instrumentation_enabled():
            return None
        call = LLMCall(self, provider)
        call.operation = api.operation
        attrs = provider.read_request(call, api, instance, kwargs)
        dimensions: dict[str, str] | None = None
        for attribute, value in attribution.span_attributes(self.user_hash_key):
            attrs[attribute] = value
            if attribute in _METRIC_DIMENSIONS:
                if dimensions is None:
                    dimensions = {}
                dimensions[attribute] = value
        call.metric_dimensions = dimensions
        if self.hash_prompts:
            try:
                prefix_hash, request_hash = provider.prompt_hashes(kwargs)
                if prefix_hash:
                    attrs[semconv.PROMPT_PREFIX_HASH] = prefix_hash
                if request_hash:
                    attrs[semconv.PROMPT_REQUEST_HASH] = request_hash
            except Exception:
                logger.debug("otel-llmcost: could not hash the prompt", exc_info=True)
        evidence = claim_pending(call.model)  # retrieved evidence the app declared (never raises)
        if evidence is not None:
            attrs.update(evidence[1])
        anatomy = self.anatomy
        if anatomy is not None and anatomy.sampled():
            try:
                attrs.update(anatomy.attributes(provider, kwargs, call.model, evidence[2] if evidence else 0))
            except Exception:
                logger.debug("otel-llmcost: could not count the prompt's components", exc_info=True)
        budget_events = None
        if self.budgets is not None:
            budget_events = self._check_budgets(call, provider, kwargs, attrs)
        try:
            call.begin(attrs)
        except BaseException:
            if call.reservation is not None:
                call.reservation.release()
            raise
        if evidence is not None:  # citations recorded later link to this span
            evidence[0].bind(call.span)
        if budget_events:
            for name, event_attributes in budget_events:
                call.span.add_event(name, event_attributes)
        if self.capture_content:
            messages = provider.request_messages(kwargs)
            if messages is not None:
                call.span.add_event(
                    semconv.EVENT_GEN_AI_INPUT_MESSAGES,
                    {semconv.GEN_AI_INPUT_MESSAGES: _to_json(messages)},
                )
        return call

    def _check_budgets(
        self, call: LLMCall, provider: Any, kwargs: dict[str, Any], attrs: dict[str, Any]
    ) -> list[tuple[str, dict[str, Any]]] | None:
        """Reserve the call's estimate (may downgrade ``kwargs["model"]``); on BudgetExceeded end
        the span as failed and let the exception reach the caller: the request is never sent."""
        counter = self._prompt_counter

        def prompt_tokens(model: str) -> int:
            return counter.total(provider, kwargs, model) if counter is not None else 0

        try:
            return self.budgets.check(call, kwargs, attrs, prompt_tokens)  # type: ignore[union-attr]
        except BudgetExceeded as exceeded:
            call.begin(attrs)
            call.fail(exceeded)
            raise

    def complete(self, call: LLMCall, result: Any) -> Any:
        """Read a finished SDK result into the call, or wrap it so the span ends later."""
        provider = call.provider
        try:
            if provider.is_raw_response(result):
                if not call.stream:
                    body = read_body_json(result)
                    if body is not None:
                        provider.read_response(call, body)
                        call.finish()
                        return result
                return RawResponseProxy(result, call)
            if provider.is_async_stream(result):
                return AsyncStreamProxy(result, call)
            if provider.is_sync_stream(result):
                return SyncStreamProxy(result, call)
            wrapped = provider.wrap_other(call, result)
            if wrapped is not None:
                return wrapped
            provider.read_response(call, result)
        except Exception:
            logger.debug("otel-llmcost: unreadable %s response", provider.name, exc_info=True)
        call.finish()
        return result


def _budgets(budgets: Budgets | None, pricer: Pricer, meter: Any) -> Budgets | None:
    """The budgets given in code, else from OTEL_LLMCOST_BUDGETS_FILE, else None."""
    if budgets is None:
        try:
            budgets = Budgets.from_environment()
        except Exception:
            logger.error("otel-llmcost: budgets file unreadable; budgets are NOT enforced", exc_info=True)
            return None
        if budgets is None:
            return None
    budgets.bind(pricer, meter)
    return budgets


def _to_json(value: Any) -> str:
    try:
        return json.dumps(value, default=lambda o: getattr(o, "model_dump", lambda: repr(o))())
    except Exception:
        return "[]"


def _start(telemetry: Telemetry, provider: Any, api: Any, instance: Any, kwargs: dict[str, Any]) -> LLMCall | None:
    try:
        return telemetry.start_call(provider, api, instance, kwargs)
    except BudgetExceeded:
        raise  # ours, on purpose: the budget refused the call before it was sent
    except Exception:
        logger.debug("otel-llmcost: could not start a span for %s", api.attribute, exc_info=True)
        return None


def sync_wrapper(telemetry: Telemetry, provider: Any, api: Any) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _start(telemetry, provider, api, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = call.attach()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            call.detach(token)
            call.fail(error)
            raise
        call.detach(token)
        return telemetry.complete(call, result)

    return wrapper


def async_wrapper(telemetry: Telemetry, provider: Any, api: Any) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _start(telemetry, provider, api, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = call.attach()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            call.detach(token)
            call.fail(error)
            raise
        call.detach(token)
        return telemetry.complete(call, result)

    return wrapper
