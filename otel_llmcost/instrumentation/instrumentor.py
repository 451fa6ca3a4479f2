"""LLMCostInstrumentor: builds the runtime and turns every patch on and off.

Every patched callable is declared by its provider module (``apis`` and ``hooks``) or
limiter adapter; one patch engine applies them all when their module is imported and
removes them all, so ``uninstrument()`` restores the SDKs exactly and ``instrument()``
imports no SDK the application does not use.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Collection, Iterable
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from .. import runtime
from ..config import OBJECT_KEYWORDS, OPTIONS, Settings
from ..providers import PROVIDERS
from ..providers.base import Provider
from ..signals import attribution, limiter_adapters
from . import package
from .batches import BatchLedger, batch_wrapper
from .patching import Patch, PatchEngine
from .telemetry import Telemetry
from .wrappers import call_wrapper, hook_wrapper

logger = logging.getLogger(__name__)

_SETTING_KEYWORDS = frozenset(option.name for option in OPTIONS if option.keyword)
# Keywords instrument() takes that are not settings (documented in config), and BaseInstrumentor's own.
_OTHER_KEYWORDS = frozenset(name for name, _doc in OBJECT_KEYWORDS) | {"skip_dep_check", "raise_exception_on_conflict"}


def _warn_unknown(kwargs: dict[str, Any]) -> None:
    """A misspelt keyword is ignored by instrument(); say so once, with the likely name."""
    known = _SETTING_KEYWORDS | _OTHER_KEYWORDS
    for key in sorted(set(kwargs) - known):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        logger.warning(
            "otel-llmcost: instrument() ignores the unknown keyword %r%s",
            key,
            f" (did you mean {close[0]!r}?)" if close else "",
        )


def provider_patches(telemetry: Telemetry, provider: Provider) -> list[Patch]:
    """Every patch of one provider: its call methods, its SDK-internal hooks and its batch methods."""
    patches = [Patch(api.module, api.attribute, call_wrapper(telemetry, provider, api)) for api in provider.apis]
    patches += [Patch(hook.module, hook.attribute, hook_wrapper(hook)) for hook in provider.hooks]
    if provider.batch_apis:
        ledger = BatchLedger()
        patches += [
            Patch(api.module, api.attribute, batch_wrapper(telemetry, provider, api, ledger))
            for api in provider.batch_apis
        ]
    return patches


def _load_provider(key: str) -> Provider | None:
    """The provider ``key`` when its SDK is installed within its supported range (never imports the SDK)."""
    requirement = package.PROVIDER_REQUIREMENTS[key]
    ok, installed = package.supported_version(requirement)
    if installed is None:
        logger.debug("otel-llmcost: %s is not installed; not instrumenting it", key)
        return None
    if not ok:
        logger.warning(
            "otel-llmcost: %s %s is outside the supported range (%s); not instrumenting it", key, installed, requirement
        )
        return None
    module_name, class_name = PROVIDERS[key].target.split(":")
    try:
        provider: Provider = getattr(importlib.import_module(module_name), class_name)()
    except Exception as exc:
        logger.warning("otel-llmcost: could not load the %s instrumentation: %s", key, exc)
        return None
    return provider


def _limiter_supported(name: str) -> bool:
    requirement = package.LIMITER_REQUIREMENTS[name]
    ok, installed = package.supported_version(requirement)
    if installed is None:
        logger.debug("otel-llmcost: %s is not installed; no limiter adapter for it", name)
    elif not ok:
        logger.warning(
            "otel-llmcost: %s %s is outside the supported range (%s); not recording its decisions",
            name,
            installed,
            requirement,
        )
    return ok


class LLMCostInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments the OpenAI, Anthropic, Google GenAI, Groq, Mistral, Cohere and Ollama SDKs,
    boto3's Bedrock runtime client and LiteLLM, where installed.

    ``instrument()`` takes ``tracer_provider``, ``meter_provider``, ``providers`` (an iterable
    of "openai", "anthropic", "google_genai", "groq", "mistral", "cohere", "ollama", "bedrock",
    "litellm"; default: every one installed),
    ``pricer`` (an :class:`otel_llmcost.pricing.Pricer`), ``budgets`` (an
    :class:`otel_llmcost.budgets.Budgets`), the limiter options ``limiter_remaining``
    and ``limiter_tier``, and every setting of :mod:`otel_llmcost.config` by its
    keyword (``capture_content``, ``prompt_anatomy``, ``limiters``, ...), which wins
    over its environment variable.
    """

    def __init__(self) -> None:
        super().__init__()
        # BaseInstrumentor is a singleton whose __init__ runs on every LLMCostInstrumentor():
        # keep the engine, or a later handle's uninstrument() would leave every patch in place.
        if not hasattr(self, "_engine"):
            self._engine = PatchEngine()
            self.telemetry: Telemetry | None = None
            self._runtime: runtime.Runtime | None = None

    @property
    def patched(self) -> list[tuple[str, str]]:
        """(module, attribute) of every SDK and limiter method patched so far."""
        return self._engine.applied

    def instrumentation_dependencies(self) -> Collection[str]:
        return package._instruments

    def _instrument(self, **kwargs: Any) -> None:
        _warn_unknown(kwargs)
        settings = Settings.load(**{key: value for key, value in kwargs.items() if key in _SETTING_KEYWORDS})
        current = runtime.Runtime(
            settings, tracer_provider=kwargs.get("tracer_provider"), meter_provider=kwargs.get("meter_provider")
        )
        # Endpoint from the enclosing SERVER span (FastAPI/Flask/Django instrumentations).
        current.server_spans = attribution.track_server_spans(kwargs.get("tracer_provider"))
        telemetry = Telemetry(current, pricer=kwargs.get("pricer"), budgets=kwargs.get("budgets"))
        runtime.install(current)
        self._runtime = current
        self.telemetry = telemetry
        self._patch_providers(telemetry, kwargs.get("providers"))
        self._patch_limiters(
            settings.limiters,
            read_remaining=kwargs.get("limiter_remaining", True),
            tier_of=kwargs.get("limiter_tier"),
        )

    def _patch_providers(self, telemetry: Telemetry, wanted: Iterable[str] | None) -> None:
        chosen = None if wanted is None else set(wanted)
        for key in PROVIDERS:
            if chosen is not None and key not in chosen:
                continue
            provider = _load_provider(key)
            if provider is not None:
                self._engine.add(provider_patches(telemetry, provider))

    def _patch_limiters(self, names: Iterable[str], *, read_remaining: bool, tier_of: Any) -> None:
        for name in names:
            if not _limiter_supported(name):
                continue
            specs = limiter_adapters.patches(name, read_remaining=read_remaining, tier_of=tier_of)
            self._engine.add(Patch(module, attribute, wrapper, own_only=True) for module, attribute, wrapper in specs)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._engine.remove_all()
        runtime.uninstall(self._runtime)
        self._runtime = None
        self.telemetry = None
