"""The one runtime object: settings, tracer and meter that every part of otel-llmcost
records with.

``LLMCostInstrumentor.instrument()`` builds a :class:`Runtime` from its keywords and
installs it; ``uninstrument()`` removes it. Code that records on the application's
behalf outside an SDK call (task outcomes, citations, limiter decisions) takes
``current()``: the installed runtime, or, before ``instrument()`` ran, one built from
the global providers and the environment, so those calls work without instrumentation
too. Nothing else in the package keeps a tracer, a meter or a setting of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from opentelemetry import metrics, trace

from . import semconv
from .config import Settings
from .version import __version__

T = TypeVar("T")

# The semantic-conventions release whose names semconv.py spells out.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"


class ServerSpans(Protocol):
    """Finds the SERVER span a span runs under (signals.attribution.ServerSpanTracker)."""

    def server_span_of(self, span: Any) -> Any: ...


class Runtime:
    """Settings plus the tracer and meter built from the providers ``instrument()`` was given."""

    __slots__ = ("settings", "tracer_provider", "meter_provider", "tracer", "meter", "server_spans", "_cache", "_lock")

    def __init__(self, settings: Settings, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer = trace.get_tracer(
            semconv.INSTRUMENTATION_SCOPE, __version__, tracer_provider, schema_url=SCHEMA_URL
        )
        self.meter = metrics.get_meter(semconv.INSTRUMENTATION_SCOPE, __version__, meter_provider)
        self.server_spans: ServerSpans | None = None
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def cached(self, key: str, build: Callable[[Runtime], T]) -> T:
        """``build(self)`` once per runtime (metric instruments made on first use)."""
        value = self._cache.get(key)
        if value is None:
            with self._lock:
                value = self._cache.get(key)
                if value is None:
                    value = self._cache[key] = build(self)
        return value  # type: ignore[no-any-return]


_installed: Runtime | None = None
_default: Runtime | None = None
_default_lock = threading.Lock()


def install(runtime: Runtime) -> None:
    global _installed
    _installed = runtime


def uninstall(runtime: Runtime | None = None) -> None:
    """Remove ``runtime`` (or whichever is installed)."""
    global _installed
    if runtime is None or _installed is runtime:
        _installed = None


def current() -> Runtime:
    """The installed runtime, else a default one on the global providers (built once)."""
    runtime = _installed
    if runtime is not None:
        return runtime
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Runtime(Settings.load())
    return _default


def reset_default() -> None:
    """Forget the default runtime, so the next one re-reads the environment (tests)."""
    global _default
    with _default_lock:
        _default = None
