"""Record the decisions of the rate limiters Python services use, with no code.

Turned on by ``LLMCostInstrumentor().instrument(limiters=["slowapi"])`` or
``OTEL_LLMCOST_LIMITERS=limits,slowapi`` (``all`` for every adapter); off by default,
because these patch libraries that have nothing to do with LLM SDKs. This module only
says what to wrap and how (:func:`patches`); the instrumentation's patch engine applies
the patches when the library is imported, after checking its version range, and removes
them on ``uninstrument()``.

- ``limits``: every ``hit()`` of its strategies (sync and ``limits.aio``) is one
  decision, allowed or throttled. ``test()`` records only a refusal: the usual pattern
  is test-then-hit, and counting the test's "yes" too would count every request twice.
  When the first identifier names a limit kind (``hit(item, "per-user", user_id)``),
  it is the limit and the rest is the key; otherwise the limit is ``"limits"``.
  Flask-Limiter is built on ``limits``, so its decisions are recorded this way too.
- ``slowapi``: one decision per request and limiter check
  (``Limiter._check_request_limit``, the one path its decorator and both middlewares
  take): throttled when it raises ``RateLimitExceeded``, else allowed, with the limit
  slowapi reports in its headers (the tightest, or the one that failed). Per limit
  checked would count a request refused by its second limit as one allowed and one
  throttled decision, and halve the throttle rate. The ``limits`` calls slowapi makes
  inside are not recorded again.

Remaining requests come from the strategy's ``get_window_stats`` (one more storage
read per decision; ``limiter_remaining=False`` skips it). Every path is guarded: the
limiter's own result or exception reaches the app unchanged, a failure to record is
logged at debug level.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Callable
from typing import Any

from .. import semconv
from ..config import LIMITER_ADAPTERS as ADAPTERS
from . import limiter

logger = logging.getLogger(__name__)

# (module, "Class.method", wrapt wrapper): applied only where the class defines the
# method itself (an inherited one is patched on its parent; patching both would count twice).
PatchSpec = tuple[str, str, Callable[..., Any]]

# limits: the strategy classes of each major we support; a name one version lacks is
# skipped (FixedWindowElasticExpiry left in 4.0, SlidingWindowCounter came in 4.1).
_LIMITS_STRATEGIES = (
    "FixedWindowRateLimiter",
    "MovingWindowRateLimiter",
    "SlidingWindowCounterRateLimiter",
    "FixedWindowElasticExpiryRateLimiter",
)
_LIMITS_MODULES = (("limits.strategies", False), ("limits.aio.strategies", True))
_SLOWAPI_CHECK = ("slowapi.extension", "Limiter._check_request_limit")

# True while an adapter is inside a limiter's decision: slowapi's nested limits.hit()
# calls and its in-memory-fallback re-check are part of the one decision it records.
_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("otel_llmcost_limiter_inside", default=False)
_MISSING = object()


def patches(
    name: str, *, read_remaining: bool = True, tier_of: Callable[[Any], str | None] | None = None
) -> list[PatchSpec]:
    """What the adapter ``name`` ("limits" or "slowapi") wraps.

    ``tier_of(request)`` gives slowapi decisions their user tier from the Starlette
    request (default: baggage ``llmcost.limiter.tier``).
    """
    if name == "limits":
        return _limits_patches(read_remaining)
    if name == "slowapi":
        return [(*_SLOWAPI_CHECK, _slowapi_wrapper(read_remaining, tier_of))]
    raise ValueError(f"unknown limiter adapter {name!r}; known: {', '.join(ADAPTERS)}")


# --- limits -----------------------------------------------------------------------------


def _limits_patches(read_remaining: bool) -> list[PatchSpec]:
    patches = []
    for module_name, is_async in _LIMITS_MODULES:
        factory = _limits_async_wrapper if is_async else _limits_sync_wrapper
        for cls in _LIMITS_STRATEGIES:
            for method in ("hit", "test"):
                patches.append((module_name, f"{cls}.{method}", factory(method, read_remaining)))
    return patches


def _limits_sync_wrapper(method: str, read_remaining: bool) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _INSIDE.get():
            return wrapped(*args, **kwargs)
        result = wrapped(*args, **kwargs)  # the limiter's own exception reaches the app unchanged
        if method == "test" and result:
            return result
        try:
            item, identifiers = _limits_arguments(args, kwargs)
        except Exception:
            logger.debug("otel-llmcost: could not read a limits decision", exc_info=True)
            return result
        remaining = None
        if read_remaining:
            token = _INSIDE.set(True)
            try:
                remaining = instance.get_window_stats(item, *identifiers)[1]
            except Exception:  # the decision still counts, without what is left
                logger.debug("otel-llmcost: could not read the limits window", exc_info=True)
            finally:
                _INSIDE.reset(token)
        _record_limits(item, identifiers, bool(result), remaining)
        return result

    return wrapper


def _limits_async_wrapper(method: str, read_remaining: bool) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _INSIDE.get():
            return await wrapped(*args, **kwargs)
        result = await wrapped(*args, **kwargs)
        if method == "test" and result:
            return result
        try:
            item, identifiers = _limits_arguments(args, kwargs)
        except Exception:
            logger.debug("otel-llmcost: could not read a limits decision", exc_info=True)
            return result
        remaining = None
        if read_remaining:
            token = _INSIDE.set(True)
            try:
                remaining = (await instance.get_window_stats(item, *identifiers))[1]
            except Exception:  # the decision still counts, without what is left
                logger.debug("otel-llmcost: could not read the limits window", exc_info=True)
            finally:
                _INSIDE.reset(token)
        _record_limits(item, identifiers, bool(result), remaining)
        return result

    return wrapper


def _limits_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    if args:
        return args[0], tuple(args[1:])
    return kwargs["item"], ()


def _record_limits(item: Any, identifiers: tuple[Any, ...], allowed: bool, remaining: Any) -> None:
    try:
        parts = [str(part) for part in identifiers]
        rule = str(item)
    except Exception:
        logger.debug("otel-llmcost: could not read a limits decision", exc_info=True)
        return
    if parts and parts[0] in semconv.LIMITER_LIMITS:
        limit, parts = parts[0], parts[1:]
    else:
        limit = "limits"
    limiter.record(
        limit=limit,
        action="allowed" if allowed else "throttled",
        key="/".join(parts) or None,
        remaining=remaining,
        rule=rule,
        source="limits",
    )


# --- slowapi ----------------------------------------------------------------------------


def _slowapi_refused(error: BaseException) -> bool:
    """Whether ``error`` is slowapi's RateLimitExceeded (slowapi is imported: it raised it)."""
    errors = sys.modules.get("slowapi.errors")
    refused = getattr(errors, "RateLimitExceeded", None)
    return isinstance(refused, type) and isinstance(error, refused)


def _slowapi_wrapper(read_remaining: bool, tier_of: Callable[[Any], str | None] | None) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _INSIDE.get():  # the in-memory-fallback re-check: part of the outer decision
            return wrapped(*args, **kwargs)
        request = args[0] if args else kwargs.get("request")
        before = _view_rate_limit(request)
        token = _INSIDE.set(True)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            _INSIDE.reset(token)
            if _slowapi_refused(error):
                _record_slowapi(instance, request, before, False, read_remaining, tier_of)
            raise
        _INSIDE.reset(token)
        _record_slowapi(instance, request, before, True, read_remaining, tier_of)
        return result

    return wrapper


def _view_rate_limit(request: Any) -> Any:
    try:
        return getattr(request.state, "view_rate_limit", _MISSING)
    except Exception:
        return _MISSING


def _record_slowapi(
    instance: Any,
    request: Any,
    before: Any,
    allowed: bool,
    read_remaining: bool,
    tier_of: Callable[[Any], str | None] | None,
) -> None:
    try:
        # slowapi stores (limit item, [key prefix?, key, scope]) of the limit it reports once
        # it has evaluated the limits; unchanged means it returned early (disabled, exempt).
        view = _view_rate_limit(request)
        if view is _MISSING or view is None or view is before:
            return
        item, key_args = view[0], list(view[1])
        key, scope = (key_args[-2], key_args[-1]) if len(key_args) >= 2 else (None, "")
        remaining = None
        if read_remaining:
            token = _INSIDE.set(True)
            try:
                remaining = instance.limiter.get_window_stats(item, *key_args)[1]
            except Exception:
                logger.debug("otel-llmcost: could not read slowapi's remaining requests", exc_info=True)
            finally:
                _INSIDE.reset(token)
        tier = None
        if tier_of is not None:
            try:
                tier = tier_of(request)
            except Exception:
                logger.debug("otel-llmcost: tier_of(request) failed", exc_info=True)
        limiter.record(
            limit="global" if scope == "global" else "per-route",  # application_limits use scope "global"
            action="allowed" if allowed else "throttled",
            key=key,
            remaining=remaining,
            tier=tier,
            route=limiter.current_route() or _request_route(request),
            rule=str(item),
            source="slowapi",
        )
    except Exception:
        logger.debug("otel-llmcost: could not read a slowapi decision", exc_info=True)


def _request_route(request: Any) -> str | None:
    """ "<METHOD> <route template>" of a Starlette request, as the server span would name it.

    Used when no server span carries the route (no FastAPI/Starlette instrumentation).
    In decorator mode the router has set ``scope["route"]``; in middleware mode slowapi
    runs before routing, so the routes are matched here the way slowapi matches them.
    """
    scope = request.scope
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        from starlette.routing import Match

        for candidate in getattr(scope.get("app"), "routes", ()):
            match, _ = candidate.matches(scope)
            if match == Match.FULL:
                path = getattr(candidate, "path", None)
                break
    if path is None:
        return None
    return f"{request.method} {path}"
