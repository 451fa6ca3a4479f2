"""What every call shares, built once per ``instrument()``: the runtime (settings, tracer,
meter), metric instruments, the pricer, prompt anatomy and budgets; and the two steps
around an SDK call: :meth:`Telemetry.start_call` and :meth:`Telemetry.complete`.

``start_call`` asks the provider what the request says, adds attribution, prompt
hashes and the similarity sketch, declared evidence and the prompt's anatomy, checks
budgets, and starts the span; ``start_call_async`` does the same for async SDK
methods, awaiting the budget store. ``complete`` reads a finished result and ends the
span, or returns the proxy that ends it later (streams, raw responses, stream
helpers). Nothing here may raise into user code, except
:class:`~otel_llmcost.budgets.BudgetExceeded` on purpose.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from .. import semconv
from ..budgets import Budgets, Decision, PlannedCall
from ..budgets.loading import budgets_from_settings
from ..pricing import Pricer
from ..providers.base import Api, PromptView, Provider, ResultKind
from ..providers.fields import to_json
from ..runtime import Runtime
from ..signals import attribution
from ..signals.evidence import claim_pending
from .anatomy import Anatomy
from .attributes import request_attributes
from .call import CURRENT_CALL, LLMCall
from .hashing import prompt_hashes
from .metrics import Instruments
from .similarity import prompt_simhash
from .streams import PROXIES
from .tokens import prompt_counter

logger = logging.getLogger(__name__)

# Attribution dimensions that are safe as metric attributes (bounded cardinality);
# user and session stay on spans only.
_METRIC_DIMENSIONS = (semconv.ENDPOINT, semconv.FEATURE, semconv.TEAM)
_UNSEEN = object()
_SKETCHES_MAX = 8192  # request hash -> similarity sketch; cleared when full, as anatomy's counts


class Telemetry:
    def __init__(self, runtime: Runtime, *, pricer: Pricer | None = None, budgets: Budgets | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.tracer = runtime.tracer
        self.instruments = Instruments(runtime.meter)
        self.pricer = pricer or Pricer(
            overrides_path=self.settings.prices_file or "", max_plausible_tokens=self.settings.max_plausible_tokens
        )
        rate = self.settings.prompt_anatomy
        # None when off: the hot path pays one attribute check for each.
        counter = self.settings.prompt_counter
        self.anatomy = Anatomy(rate, counter) if rate > 0 else None
        self.budgets = _budgets(budgets, runtime, self.pricer)
        # A budget's pre-call estimate stays a tiktoken count whatever the setting: it is a
        # limit, exact for OpenAI models (docs/budgets.md), and budgets are opted into.
        if self.budgets is None:
            self._prompt_counter: Anatomy | None = None
        elif self.anatomy is not None and counter == "tiktoken":
            self._prompt_counter = self.anatomy  # shares its memo
        else:
            self._prompt_counter = Anatomy(counter="tiktoken")
        self._count_evidence = prompt_counter(counter)
        self._sketches: dict[str, Any] = {}

    # --- call lifecycle -----------------------------------------------------------

    def start_call(self, provider: Provider, api: Api, instance: Any, kwargs: dict[str, Any]) -> LLMCall | None:
        """A started call, or None when this call must not be traced (nested or suppressed)."""
        prepared = self._prepare(provider, api, instance, kwargs)
        if prepared is None:
            return None
        call, attrs, evidence = prepared
        decision = None
        if self.budgets is not None:
            try:
                decision = self.budgets.check(self._planned(call, attrs))
            except Exception:  # a bug must not cost the call: it is sent, with its span
                logger.warning("otel-llmcost: the budget check failed; the call is sent unchecked", exc_info=True)
        return self._begin(call, kwargs, attrs, evidence, decision)

    async def start_call_async(
        self, provider: Provider, api: Api, instance: Any, kwargs: dict[str, Any]
    ) -> LLMCall | None:
        """:meth:`start_call` for async SDK methods: the budget check awaits the store."""
        prepared = self._prepare(provider, api, instance, kwargs)
        if prepared is None:
            return None
        call, attrs, evidence = prepared
        decision = None
        if self.budgets is not None:
            try:
                decision = await self.budgets.check_async(self._planned(call, attrs))
            except Exception:
                logger.warning("otel-llmcost: the budget check failed; the call is sent unchecked", exc_info=True)
        return self._begin(call, kwargs, attrs, evidence, decision)

    def _prepare(
        self, provider: Provider, api: Api, instance: Any, kwargs: dict[str, Any]
    ) -> tuple[LLMCall, dict[str, Any], Any] | None:
        """The call and its span attributes before the budget check (None: not traced)."""
        if CURRENT_CALL.get() is not None or not is_instrumentation_enabled():
            return None
        settings = self.settings
        request = provider.read_request(api, instance, kwargs, inject_include_usage=settings.inject_include_usage)
        if request.estimate_usage and not settings.estimate_missing_usage:
            request.collect_output = request.estimate_usage = False  # nothing would be counted: keep nothing
        call = LLMCall(self, provider, request, collect_output=request.collect_output or settings.capture_content)
        attrs = request_attributes(request)
        dimensions: dict[str, str] | None = None
        for attribute, value in attribution.span_attributes(settings.user_hash_key, self.runtime.server_spans):
            attrs[attribute] = value
            if attribute in _METRIC_DIMENSIONS:
                if dimensions is None:
                    dimensions = {}
                dimensions[attribute] = value
        call.metric_dimensions = dimensions
        hashes: tuple[str | None, str] | None = None
        if settings.hash_prompts:
            try:
                hashes = prompt_hashes(request)
                prefix_hash, request_hash = hashes
                if prefix_hash:
                    attrs[semconv.PROMPT_PREFIX_HASH] = prefix_hash
                attrs[semconv.PROMPT_REQUEST_HASH] = request_hash
                # The sketch is a function of the last message, which the request hash covers:
                # a repeated request reuses it (a new one is memoised by text, similarity.py).
                sketches = self._sketches
                sketch = sketches.get(request_hash, _UNSEEN)
                if sketch is _UNSEEN:
                    sketch = prompt_simhash(request.prompt.messages)
                    if len(sketches) >= _SKETCHES_MAX:
                        sketches.clear()
                    sketches[request_hash] = sketch
                if sketch:
                    attrs[semconv.PROMPT_SIMHASH] = sketch
            except Exception:
                logger.debug("otel-llmcost: could not hash the prompt", exc_info=True)
        model = request.model
        evidence = claim_pending(self._count_evidence, model)  # declared by the app; never raises
        if evidence is not None:
            attrs.update(evidence[1])
        anatomy = self.anatomy
        # An embeddings, image or audio input is no conversation: no system, tools or history to break down.
        if anatomy is not None and request.operation not in semconv.NON_CONVERSATION_OPERATIONS and anatomy.sampled():
            try:
                # Set when the call ends, scaled to the input tokens the provider reports.
                call.anatomy = anatomy.attributes(request.prompt, model, evidence[2] if evidence else 0, hashes=hashes)
            except Exception:
                logger.debug("otel-llmcost: could not count the prompt's components", exc_info=True)
        return call, attrs, evidence

    def _planned(self, call: LLMCall, attrs: dict[str, Any]) -> PlannedCall:
        request = call.request
        counter = self._prompt_counter
        prompt = request.prompt

        def prompt_tokens(model: str) -> int:
            return counter.total(prompt, model) if counter is not None else 0

        return PlannedCall(
            model=request.model,
            max_output_tokens=request.max_tokens,
            scope_values=attrs,
            prompt_tokens=prompt_tokens,
            pricing_provider=request.pricing_provider,
            api_url=request.api_url,
            started_at=call.started_at,
        )

    def _begin(
        self, call: LLMCall, kwargs: dict[str, Any], attrs: dict[str, Any], evidence: Any, decision: Decision | None
    ) -> LLMCall:
        """Apply the budget decision (a downgrade changes the model sent) and start the span.
        A refusal ends the span as failed, with its budget events, and raises BudgetExceeded
        to the caller: the request is never sent."""
        if decision is not None:
            attrs.update(decision.attributes)
            if decision.refusal is not None:
                call.begin(attrs)
                _add_events(call.span, decision.events)
                call.fail(decision.refusal)
                raise decision.refusal
            call.reservation = decision.reservation
            request = call.request
            if decision.model != request.model:
                call.provider.replace_model(kwargs, decision.model)
                request.model = decision.model
        try:
            call.begin(attrs)
        except BaseException:
            if call.reservation is not None:
                call.reservation.release()
            raise
        if evidence is not None:  # citations recorded later link to this span
            evidence[0].bind(call.span)
        if decision is not None:
            _add_events(call.span, decision.events)
        if self.settings.capture_content:
            call.span.add_event(
                semconv.EVENT_GEN_AI_INPUT_MESSAGES,
                {semconv.GEN_AI_INPUT_MESSAGES: to_json(_input_messages(call.request.prompt), fallback="[]")},
            )
        return call

    def complete(self, call: LLMCall, result: Any) -> Any:
        """Read a finished SDK result into the call, or wrap it so the span ends later."""
        provider = call.provider
        try:
            kind = provider.classify(result, call.request)
            if kind is ResultKind.RAW and not call.request.stream:
                body = provider.raw_body(result)
                if body is not None:
                    provider.read_response(call.record, body)
                    call.finish()
                    return result
            if kind is not ResultKind.PLAIN:
                return PROXIES[kind](result, call)
            call.answered = True
            provider.read_response(call.record, result)
        except Exception:
            logger.debug("otel-llmcost: unreadable %s response", provider.name, exc_info=True)
        call.finish()
        return result


def _budgets(budgets: Budgets | None, runtime: Runtime, pricer: Pricer) -> Budgets | None:
    """The budgets given in code, else from OTEL_LLMCOST_BUDGETS_FILE, else None."""
    if budgets is None:
        # Never raises: an invalid file is one ERROR line, then OTEL_LLMCOST_BUDGETS_INVALID decides.
        budgets = budgets_from_settings(runtime.settings)
        if budgets is None:
            return None
    budgets.bind(pricer, runtime.meter)
    return budgets


def _add_events(span: Any, events: list[tuple[str, dict[str, Any]]] | None) -> None:
    for name, event_attributes in events or ():
        span.add_event(name, event_attributes)


def _input_messages(prompt: PromptView) -> list[Any]:
    """The prompt as a message list for content capture: the separate system prompt first."""
    if prompt.system is None:
        return prompt.messages
    return [{"role": "system", "content": prompt.system}, *prompt.messages]
