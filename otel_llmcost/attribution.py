"""Who and what an LLM call is for: endpoint, feature, team, user, session, task.

Sources, first wins per key:

1. ``with llmcost.attributes(feature="search", user=user_id):`` (also a decorator),
   held in a contextvar so threads and asyncio tasks never see each other's values;
2. OpenTelemetry baggage ``llmcost.endpoint`` ... ``llmcost.session`` (set by a web
   middleware or an upstream service; baggage crosses process boundaries);
3. for the endpoint only: ``http.route`` (prefixed with the method) of the enclosing
   SERVER span, as the FastAPI/Flask/Django instrumentations record it.

User ids can be personal data: with ``OTEL_LLMCOST_USER_HASH_KEY`` set they leave
the process as a keyed hash (HMAC-SHA256, first 16 hex chars), stable per key.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import hmac
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from opentelemetry import baggage, trace
from opentelemetry.trace import SpanKind

from . import semconv

USER_HASH_KEY_ENV = "OTEL_LLMCOST_USER_HASH_KEY"
_KEYS = semconv.ATTRIBUTION_KEYS + ("task",)
_ATTRIBUTES = {key: semconv.attribution_attribute(key) for key in semconv.ATTRIBUTION_KEYS}
_ATTRIBUTES["task"] = semconv.TASK_ID
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
    ) -> None:
        given = {"endpoint": endpoint, "feature": feature, "team": team, "user": user, "session": session, "task": task}
        self._values = {k: str(v) for k, v in given.items() if v is not None}
        self._tokens: list[contextvars.Token[Any]] = []

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
                with attributes(**self._values):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with attributes(**self._values):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def current() -> Mapping[str, str]:
    """The attribution set by enclosing ``attributes`` blocks (not baggage)."""
    return _current.get() or {}


def hash_user(user: str, key: str | None = None) -> str:
    secret = key if key is not None else os.environ.get(USER_HASH_KEY_ENV)
    if not secret:
        return user
    return hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()[:16]


def _route_of_server_span() -> str | None:
    span = trace.get_current_span()
    if getattr(span, "kind", None) is not SpanKind.SERVER:
        return None
    attrs = getattr(span, "attributes", None) or {}
    route = attrs.get("http.route")
    if not route:
        return None
    method = attrs.get("http.request.method") or attrs.get("http.method")
    return f"{method} {route}" if method else str(route)


def span_attributes(hash_key: str | None = None) -> Iterator[tuple[str, str]]:
    """(attribute, value) pairs for the current call; ``hash_key`` hashes the user id."""
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
            value = _route_of_server_span()
        if value is None:
            continue
        if key == "user" and hash_key:
            value = hash_user(value, hash_key)
        yield attribute, value
