"""App rate-limiter telemetry: record what the application's OWN limiter decided.

Provider headers tell us when the provider throttles us (``llmcost.ratelimit.*``,
``llmcost.throttled``); this records the limits the app enforces itself — per user,
per route, per tier, or a client-side limiter in front of a provider::

    import otel_llmcost as llmcost

    allowed = limiter.hit(per_user, user_id)
    llmcost.record_limiter_decision(
        limit="per-user", key=user_id, action="allowed" if allowed else "throttled", tier="free"
    )

Each decision becomes

- a ``llmcost.limiter.decision`` event on the current span (the request's SERVER span
  in a web app), and ``llmcost.limiter.decision_count`` on that span. When no span is
  recording (a background job, or tracing not set up), the event goes on a short
  ``llmcost.limiter`` span of its own, so a decision is never silently dropped; a span
  that is not recording because the trace was sampled out gets no span: the child of
  an unsampled parent is unsampled too, as it should be;
- one increment of the ``llmcost.limiter.decisions`` counter, by limit, action, route,
  tier and source — never by key (one series per user would be unbounded), so the
  throttle rate survives trace sampling.

The key is usually a user id or a client address: with ``OTEL_LLMCOST_USER_HASH_KEY``
(or the instrumentor's ``user_hash_key``) set it leaves the process as the same keyed
hash as ``llmcost.user``. The route defaults to the endpoint of LLM calls
(``llmcost.endpoint``: explicit attribution, baggage, or the enclosing SERVER span's
route), so the app's throttle rate and the provider's 429s line up per route; the
tier defaults to baggage ``llmcost.limiter.tier``.

Adapters that record the decisions of the ``limits`` library and of slowapi with no
code are in :mod:`otel_llmcost.signals.limiter_adapters`. Decisions are recorded with
the runtime ``instrument()`` installed (:func:`otel_llmcost.runtime.current`), or the
global providers before that.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry.trace import SpanKind

from .. import runtime, semconv
from . import attribution

logger = logging.getLogger(__name__)

ACTIONS = frozenset(semconv.LIMITER_ACTIONS)


def _decisions_counter(owner: runtime.Runtime) -> Any:
    """The counter of decisions (by limit, action, route, tier and source; never the key)."""
    return owner.meter.create_counter(
        semconv.METRIC_LIMITER_DECISIONS,
        unit="{decision}",
        description="App rate-limiter decisions (allowed, throttled, rejected, queued, retried)",
    )


def record_limiter_decision(
    *,
    limit: str,
    action: str,
    key: str | None = None,
    remaining: float | None = None,
    tier: str | None = None,
    route: str | None = None,
    rule: str | None = None,
) -> None:
    """Record one decision of the app's own rate limiter.

    ``limit`` names which limit decided: ``"per-user"``, ``"per-route"``, ``"per-tier"``,
    ``"provider"``, ``"global"`` or a name of your own (keep it low-cardinality: it is a
    metric attribute). ``action`` is one of ``allowed``, ``throttled`` (refused for now),
    ``rejected`` (refused for good), ``queued``, ``retried``. ``key`` is who was limited
    (hashed like ``llmcost.user``), ``remaining`` the requests or tokens left in the
    window, ``rule`` the rule itself (``"5 per 1 minute"``).

    Raises ``ValueError`` for an unknown ``action`` or an empty ``limit``: those are bugs
    in the calling code, found the first time it runs. Nothing else raises: a failure
    to record is logged at debug level and the app goes on.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(semconv.LIMITER_ACTIONS)}; got {action!r}")
    if not isinstance(limit, str) or not limit:
        raise ValueError(f"limit must be a non-empty string such as 'per-user'; got {limit!r}")
    record(limit=limit, action=action, key=key, remaining=remaining, tier=tier, route=route, rule=rule, source="app")


def record(
    *,
    limit: str,
    action: str,
    key: str | None = None,
    remaining: float | None = None,
    tier: str | None = None,
    route: str | None = None,
    rule: str | None = None,
    source: str,
) -> None:
    """Record a decision whose arguments are known to be valid (the adapters' path). Never raises."""
    try:
        _record(limit, action, key, remaining, tier, route, rule, source)
    except Exception:
        logger.debug("otel-llmcost: could not record a limiter decision", exc_info=True)


def _record(
    limit: str,
    action: str,
    key: Any,
    remaining: Any,
    tier: Any,
    route: Any,
    rule: Any,
    source: str,
) -> None:
    current = runtime.current()
    if route is None:
        route = current_route(current)
    if tier is None:
        tier = _baggage_tier()
    dimensions: dict[str, Any] = {semconv.LIMITER_LIMIT: limit, semconv.LIMITER_ACTION: action}
    if route:
        dimensions[semconv.LIMITER_ROUTE] = str(route)
    if tier:
        dimensions[semconv.LIMITER_TIER] = str(tier)
    dimensions[semconv.LIMITER_SOURCE] = source
    current.cached("limiter.decisions", _decisions_counter).add(1, dimensions)

    event = dict(dimensions)
    if key is not None and key != "":
        event[semconv.LIMITER_KEY] = attribution.hash_user(str(key), current.settings.user_hash_key)
    number = _number(remaining)
    if number is not None:
        event[semconv.LIMITER_REMAINING] = number
    if rule:
        event[semconv.LIMITER_RULE] = str(rule)

    span = trace.get_current_span()
    if span.is_recording():
        _add_to(span, event)
        return
    if span.get_span_context().is_valid:
        return  # an unsampled trace: the decision is in the metric, like the rest of the trace
    own = current.tracer.start_span(semconv.LIMITER_SPAN_NAME, kind=SpanKind.INTERNAL)
    try:
        _add_to(own, event)
    finally:
        own.end()


def _add_to(span: Any, event: dict[str, Any]) -> None:
    span.add_event(semconv.EVENT_LIMITER_DECISION, event)
    attributes = getattr(span, "attributes", None) or {}
    count = attributes.get(semconv.LIMITER_DECISION_COUNT, 0)
    span.set_attribute(semconv.LIMITER_DECISION_COUNT, (count if isinstance(count, int) else 0) + 1)


def current_route(current: runtime.Runtime | None = None) -> str | None:
    """The endpoint LLM calls made here would carry (``llmcost.endpoint``), if any."""
    server_spans = (current or runtime.current()).server_spans
    for attribute, value in attribution.span_attributes(None, server_spans):
        if attribute == semconv.ENDPOINT:
            return value
    return None


def _baggage_tier() -> str | None:
    try:
        value = baggage.get_baggage(semconv.LIMITER_TIER)
    except Exception:
        return None
    return str(value) if value is not None else None


def _number(value: Any) -> int | float | None:
    """``remaining`` as a finite int or float; anything else (bool, NaN, text) is dropped."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
