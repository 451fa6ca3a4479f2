"""Who and what an LLM call is for: endpoint, feature, team, user, session, tier, task.

Sources, first wins per key:

1. ``with llmcost.attributes(feature="search", user=user_id):`` (also a decorator),
   held in a contextvar so threads and asyncio tasks never see each other's values;
2. OpenTelemetry baggage ``llmcost.endpoint`` ... ``llmcost.session``, ``llmcost.user.tier``
   (set by a web middleware or an upstream service; baggage crosses process boundaries);
3. for the endpoint only: ``http.route`` (prefixed with the method) of the enclosing
   SERVER span, as the FastAPI/Flask/Django instrumentations record it, even when the
   LLM call runs under INTERNAL spans of the handler (see :class:`ServerSpanTracker`).

User ids can be personal data: with ``OTEL_LLMCOST_USER_HASH_KEY`` set they leave
the process as a keyed hash (HMAC-SHA256, first 16 hex chars), stable per key. The
user's tier (their plan: ``free``, ``pro``) is a small closed set and is never hashed.

This is where every part of otel-llmcost learns who a call is for: the instrumentation
puts it on LLM spans, task outcomes and limiter decisions use it too.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import hmac
import inspect
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from opentelemetry import baggage, trace
from opentelemetry.trace import SpanKind

try:  # the SDK is a dependency, but the API alone must keep working
    from opentelemetry.sdk.trace import SpanProcessor
except ImportError:  # pragma: no cover
    SpanProcessor = object  # type: ignore[misc,assignment]

from .. import semconv
from ..runtime import ServerSpans

_KEYS = semconv.ATTRIBUTION_KEYS + ("tier", "task", "background")
_ATTRIBUTES = {key: semconv.attribution_attribute(key) for key in semconv.ATTRIBUTION_KEYS}
_ATTRIBUTES["tier"] = semconv.USER_TIER  # llmcost.user.tier: a property of the user, not llmcost.tier
_ATTRIBUTES["task"] = semconv.TASK_ID
_ATTRIBUTES["background"] = semconv.BACKGROUND
_BAGGAGE_KEYS = tuple((key, _ATTRIBUTES[key]) for key in _KEYS)

_current: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "otel_llmcost_attribution", default=None
)

F = TypeVar("F", bound=Callable[..., Any])


class attributes:  # noqa: N801 - used like a function: ``with llmcost.attributes(...)``
    """Attach attribution to every LLM call made inside the block or decorated function.

    Nested blocks inherit the outer values and override the keys they name; ``None``
    values are ignored. Works across ``await`` and in threads started with
    ``contextvars.copy_context()``.
    """

    __slots__ = ("_values", "_tokens")

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        feature: str | None = None,
        team: str | None = None,
        user: str | None = None,
        session: str | None = None,
        task: str | None = None,
        tier: str | None = None,
        background: bool | None = None,
    ) -> None:
        given = {
            "endpoint": endpoint,
            "feature": feature,
            "team": team,
            "user": user,
            "session": session,
            "tier": tier,
            "task": task,
            "background": None if background is None else ("true" if background else "false"),
        }
        self._values = {k: str(v) for k, v in given.items() if v is not None}
        self._tokens: list[contextvars.Token[Any]] = []

    def _copy(self) -> attributes:
        # A fresh block per call of a decorated function: its tokens are its own, so
        # recursive and concurrent calls each restore what they replaced.
        block = attributes()
        block._values = self._values
        return block

    def __enter__(self) -> attributes:
        merged = dict(_current.get() or {})
        merged.update(self._values)
        self._tokens.append(_current.set(merged))
        return self

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._tokens.pop())

    async def __aenter__(self) -> attributes:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._copy():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._copy():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def current() -> Mapping[str, str]:
    """The attribution set by enclosing ``attributes`` blocks (not baggage)."""
    return _current.get() or {}


def hash_user(user: str, key: str | None) -> str:
    """``user`` as it leaves the process: a keyed hash when ``key`` is set, else as given."""
    if not key:
        return user
    return hmac.new(key.encode(), user.encode(), hashlib.sha256).hexdigest()[:16]


class ServerSpanTracker(SpanProcessor):  # type: ignore[misc]
    """Knows, for every span in progress in this process, its nearest SERVER ancestor.

    Why a span processor: the OpenTelemetry API gives a span no reference to its
    parent, so an LLM call made under ``with tracer.start_as_current_span("retrieve")``
    inside a request handler cannot reach the request's SERVER span from the current
    span alone, and matching on the trace id alone is wrong when one process serves
    several requests of the same trace (a service calling itself). So on each span
    start we map its span id to the server span of its parent (one dict lookup and
    one store; nothing for spans outside a server span) and drop it on end.

    Why the route is read from the live server span at call time: all three
    instrumentations set ``http.route`` before the handler runs — FastAPI in the
    ASGI middleware's default span details (it matches the app's routes itself),
    Flask in ``before_request`` (after Werkzeug routing), Django in
    ``process_view``. Only Flask keeps a framework request context we could read
    instead (``flask.request.url_rule``); it is the fallback when a route is missing
    from the span (e.g. Flask served under another WSGI middleware whose span is the
    SERVER one). Starlette has no global request context, so for FastAPI the span is
    the only source.

    Bounded: spans that never end (a leak in the app) are evicted oldest-first past
    ``max_spans``.
    """

    def __init__(self, max_spans: int = 10_000) -> None:
        self.max_spans = max_spans
        self._servers: dict[int, Any] = {}
        self._evict_lock = threading.Lock()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        servers = self._servers
        if span.kind is SpanKind.SERVER:
            server = span
        else:
            parent = span.parent
            if parent is None or parent.is_remote:
                return
            server = servers.get(parent.span_id)
            if server is None:
                return
        servers[span.context.span_id] = server
        if len(servers) > self.max_spans:
            with self._evict_lock:
                while len(servers) > self.max_spans:
                    try:
                        servers.pop(next(iter(servers)), None)
                    except (StopIteration, RuntimeError):  # emptied or resized concurrently
                        break

    def on_end(self, span: Any) -> None:
        self._servers.pop(span.context.span_id, None)

    def server_span_of(self, span: Any) -> Any:
        context = span.get_span_context()
        return self._servers.get(context.span_id) if context is not None else None

    def shutdown(self) -> None:
        self._servers.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_tracker: ServerSpanTracker | None = None
_tracked_providers: weakref.WeakSet[Any] = weakref.WeakSet()


def track_server_spans(tracer_provider: Any = None) -> ServerSpanTracker | None:
    """Register the :class:`ServerSpanTracker` on ``tracer_provider`` (default: the global one), once.

    Without it (a provider with no ``add_span_processor``) the endpoint still comes
    from the server span when that span is the current one.
    """
    global _tracker
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        return _tracker
    if _tracker is None:
        _tracker = ServerSpanTracker()
    try:
        known = provider in _tracked_providers
    except TypeError:  # not weak-referenceable: register (idempotence is best effort)
        known = False
    if not known:
        add(_tracker)
        try:
            _tracked_providers.add(provider)
        except TypeError:
            pass
    return _tracker


def _route_of_server_span(server_spans: ServerSpans | None) -> str | None:
    span = trace.get_current_span()
    server = span if getattr(span, "kind", None) is SpanKind.SERVER else None
    if server is None and server_spans is not None:
        server = server_spans.server_span_of(span)
    attrs = getattr(server, "attributes", None) or {}
    route = attrs.get("http.route") or _flask_route()
    if not route:
        return None
    method = attrs.get("http.request.method") or attrs.get("http.method") or _flask_method()
    return f"{method} {route}" if method else str(route)


def _flask_route() -> str | None:
    flask = sys.modules.get("flask")  # only when the app uses Flask; never imports it
    if flask is None:
        return None
    try:
        if flask.has_request_context() and flask.request.url_rule is not None:
            return str(flask.request.url_rule.rule)
    except Exception:
        pass
    return None


def _flask_method() -> str | None:
    flask = sys.modules.get("flask")
    try:
        return str(flask.request.method) if flask is not None and flask.has_request_context() else None
    except Exception:
        return None


def span_attributes(hash_key: str | None, server_spans: ServerSpans | None) -> Iterator[tuple[str, str]]:
    """(attribute, value) pairs for the current call; ``hash_key`` hashes the user id,
    ``server_spans`` finds the route of a SERVER span the call runs under."""
    explicit = _current.get()
    try:
        entries = baggage.get_all()
    except Exception:
        entries = None
    for key, attribute in _BAGGAGE_KEYS:
        value = explicit.get(key) if explicit else None
        if value is None and entries:
            raw = entries.get(attribute)
            value = str(raw) if raw is not None else None
        if value is None and key == "endpoint":
            value = _route_of_server_span(server_spans)
        if value is None:
            continue
        if key == "user" and hash_key:
            value = hash_user(value, hash_key)
        yield attribute, value
