"""LLMCostInstrumentor: turns the provider patches on and off.

Every patched callable is listed by its provider module (``apis`` and ``hooks``);
one loop applies them all and one loop removes them, so ``uninstrument()``
restores the SDK exactly.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from packaging.requirements import Requirement
from wrapt import wrap_function_wrapper

from . import attribution, limiter, outcomes, semconv
from .limiter_adapters import LimiterAdapters, enabled_from_environment
from .package import PROVIDER_REQUIREMENTS, _instruments
from .telemetry import Telemetry, async_wrapper, sync_wrapper
from .version import __version__

logger = logging.getLogger(__name__)

# provider key -> "module:Class" of its provider module (imported only when its SDK is installed)
_PROVIDERS: dict[str, str] = {
    "openai": "otel_llmcost.providers.openai:OpenAIProvider",
    "anthropic": "otel_llmcost.providers.anthropic:AnthropicProvider",
    "google_genai": "otel_llmcost.providers.google_genai:GoogleGenAIProvider",
}
SCOPE_NAME = semconv.INSTRUMENTATION_SCOPE


def supported_version(provider: str) -> tuple[bool, str | None]:
    """(installed within the supported range, installed version or None)."""
    requirement = Requirement(PROVIDER_REQUIREMENTS[provider])
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        return False, None
    return requirement.specifier.contains(installed, prereleases=True), installed


def _resolve(module_name: str, attribute: str) -> tuple[Any, str]:
    owner: Any = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


class LLMCostInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments the OpenAI, Anthropic and Google GenAI SDKs that are installed.

    ``instrument()`` accepts ``tracer_provider``, ``meter_provider``, ``providers``
    (an iterable of "openai", "anthropic", "google_genai"; default: all installed),
    and the Telemetry settings ``pricer``, ``capture_content``,
    ``inject_include_usage``, ``estimate_missing_usage``, ``user_hash_key``,
    ``budgets`` (an :class:`otel_llmcost.budgets.Budgets`), ``prompt_anatomy``;
    and the app rate-limiter adapters (:mod:`otel_llmcost.limiter_adapters`):
    ``limiters`` ("limits", "slowapi"; default: ``OTEL_LLMCOST_LIMITERS``, else none),
    ``limiter_remaining`` (read requests left, default True), ``limiter_tier``
    (``tier_of(request)`` for slowapi decisions).
    """

    def __init__(self) -> None:
        super().__init__()
        # BaseInstrumentor is a singleton whose __init__ runs on every LLMCostInstrumentor():
        # keep the patch list, or a later handle's uninstrument() would leave every patch in place.
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[str, str]] = []
            self.telemetry: Telemetry | None = None
            self._limiters = LimiterAdapters()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(
            SCOPE_NAME, __version__, kwargs.get("tracer_provider"), schema_url="https://opentelemetry.io/schemas/1.37.0"
        )
        meter = metrics.get_meter(SCOPE_NAME, __version__, kwargs.get("meter_provider"))
        telemetry = Telemetry(
            tracer,
            meter,
            pricer=kwargs.get("pricer"),
            capture_content=kwargs.get("capture_content"),
            inject_include_usage=kwargs.get("inject_include_usage"),
            estimate_missing_usage=kwargs.get("estimate_missing_usage"),
            user_hash_key=kwargs.get("user_hash_key"),
            hash_prompts=kwargs.get("hash_prompts"),
            budgets=kwargs.get("budgets"),
            prompt_anatomy=kwargs.get("prompt_anatomy"),
            emit_draft_cost=kwargs.get("emit_draft_cost"),
        )
        outcomes.set_tracer_provider(kwargs.get("tracer_provider"))
        attribution.track_server_spans(kwargs.get("tracer_provider"))  # endpoint from the enclosing SERVER span
        limiter.configure(
            tracer_provider=kwargs.get("tracer_provider"),
            meter_provider=kwargs.get("meter_provider"),
            user_hash_key=telemetry.user_hash_key,
        )
        wanted_limiters = kwargs.get("limiters")
        self._limiters.instrument(
            enabled_from_environment() if wanted_limiters is None else wanted_limiters,
            read_remaining=kwargs.get("limiter_remaining", True),
            tier_of=kwargs.get("limiter_tier"),
        )
        self.telemetry = telemetry
        wanted = kwargs.get("providers")
        for key, target in _PROVIDERS.items():
            if wanted is not None and key not in wanted:
                continue
            ok, installed = supported_version(key)
            if installed is None:
                logger.debug("otel-llmcost: %s is not installed; not instrumenting it", key)
                continue
            if not ok:
                logger.warning(
                    "otel-llmcost: %s %s is outside the supported range (%s); not instrumenting it",
                    key,
                    installed,
                    PROVIDER_REQUIREMENTS[key],
                )
                continue
            try:
                module_name, class_name = target.split(":")
                provider = getattr(importlib.import_module(module_name), class_name)()
            except Exception as exc:
                logger.warning("otel-llmcost: could not load the %s instrumentation: %s", key, exc)
                continue
            self._apply(telemetry, provider)

    def _apply(self, telemetry: Telemetry, provider: Any) -> None:
        patches: list[tuple[str, str, Any]] = []
        for api in provider.apis:
            factory = async_wrapper if api.is_async else sync_wrapper
            patches.append((api.module, api.attribute, factory(telemetry, provider, api)))
        for hook in provider.hooks:
            patches.append((hook.module, hook.attribute, hook.factory(telemetry)))
        for module_name, attribute, wrapper in patches:
            try:
                wrap_function_wrapper(module_name, attribute, wrapper)
            except (ImportError, AttributeError) as exc:
                # A method this SDK version does not have: skip it, keep the rest.
                logger.debug("otel-llmcost: cannot patch %s.%s: %s", module_name, attribute, exc)
                continue
            self._patched.append((module_name, attribute))

    def _uninstrument(self, **kwargs: Any) -> None:
        while self._patched:
            module_name, attribute = self._patched.pop()
            try:
                owner, name = _resolve(module_name, attribute)
                unwrap(owner, name)
            except Exception as exc:  # pragma: no cover - unwrap of a patch we made
                logger.debug("otel-llmcost: cannot unpatch %s.%s: %s", module_name, attribute, exc)
        self._limiters.uninstrument()
        self.telemetry = None
