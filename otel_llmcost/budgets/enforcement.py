"""Budgets: caps on what LLM calls may cost, enforced *before* a call is sent.

Two kinds, both optional:

* **per request** — ``max_input_tokens``, ``max_output_tokens``, ``max_total_tokens``,
  ``max_cost_usd``, checked on the pre-call estimate;
* **per period** — USD per ``day`` / ``week`` / ``month`` (reset at local midnight,
  Monday, the 1st, in the configured time zone) for the whole service (``scope:
  global``) or per ``user`` / ``feature`` / ``team`` / ``endpoint`` (each value has
  its own counter; ``match`` limits a budget to one value). The scope values are
  the call's attribution (``llmcost.attributes``, baggage, the server route); users
  are counted by their keyed hash when ``OTEL_LLMCOST_USER_HASH_KEY`` is set.

The pre-call estimate is the prompt's tokens (offline tiktoken, see
:mod:`otel_llmcost.instrumentation.anatomy`: messages, system prompt and tool definitions) plus the
request's ``max_tokens`` (or ``default_max_output_tokens`` when it sets none), priced
with the same rates as the span.

At the **soft threshold** (default 80% of a period limit) every call made while the
budget is above it carries a ``llmcost.budget.soft_limit`` span event and counts in
the ``llmcost.budget.events`` metric (``llmcost.budget.action=warn``). At the **hard
threshold** — the call would take the budget over its limit — the budget's action
applies:

* ``raise``: :class:`BudgetExceeded` is raised by the SDK method *before the request
  is sent*. This is the one exception otel-llmcost raises into application code, on
  purpose: catch it where you call the SDK. The span ends with ``error.type =
  BudgetExceeded``.
* ``downgrade``: the request is sent with ``downgrade_to`` instead (``kwargs["model"]``
  is rewritten; the span records ``llmcost.budget.original_model``) if the cheaper
  call fits; otherwise BudgetExceeded. A downgrade stretches a budget, it never
  lifts it.

Caps hold under concurrency: a call **reserves** its estimate atomically against
every budget it falls under (all or none, one Lua script in Redis), is **reconciled**
to its actual cost when it finishes and **released** when it fails or is cancelled.
Reservations are leases: one whose process died is dropped after ``lease_s``.
Documented bound: spend can exceed a period limit only by what the calls in flight
at once cost *beyond their estimates*; when every request sets ``max_tokens`` and
the model's tokenizer is tiktoken's (OpenAI models) the estimate is an upper bound
and spend never exceeds the limit. For other tokenizers raise ``input_margin``.
Calls whose model has no known price are not counted against USD budgets (a price
override makes them count).

Counters are integer nano-USD (exact, so a reserve and its release always cancel),
in memory by default or in Redis (``store: redis://host:6379/0``) for services with
several processes or hosts; Redis keys share one hash tag, so Redis Cluster works.
With Redis unreachable calls are allowed (``fail_open: false`` refuses them).

The file is read by :mod:`.config`, counters live in :mod:`.stores`, and
:mod:`.status` reports them.

Checks are synchronous (a Redis round trip under asyncio blocks the loop for that
round trip, well under a millisecond on a local network).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from .. import semconv
from ..config import Settings
from ..pricing import Usage
from .config import Budget, BudgetConfig, RequestLimits
from .periods import period_bounds
from .status import BudgetStatus, statuses
from .stores import KEY_PREFIX, NANO, Counter, MemoryStore, RedisStore, open_store

logger = logging.getLogger(__name__)

_SCOPE_ATTRIBUTES = {
    "user": semconv.USER,
    "feature": semconv.FEATURE,
    "team": semconv.TEAM,
    "endpoint": semconv.ENDPOINT,
}
_GRACE_S = 86_400  # counters outlive their period by a day, for late reconciliations and status


class BudgetExceeded(Exception):
    """A call would exceed a budget; raised by the SDK method before the request is sent.

    ``budget`` is the budget's name (``"request"`` for per-request limits), ``scope``
    e.g. ``"user=alice"`` or ``"global"``; amounts are USD, or tokens for token limits.
    """

    def __init__(self, budget: str, scope: str, limit: float, used: float, requested: float, unit: str = "USD") -> None:
        self.budget = budget
        self.scope = scope
        self.limit = limit
        self.used = used
        self.requested = requested
        self.unit = unit
        if unit == "USD":
            detail = f"used ${used:.6f} of ${limit:.6f}, this call needs up to ${requested:.6f}"
        else:
            detail = f"this call needs up to {requested:.0f} {unit}, the limit is {limit:.0f}"
        super().__init__(f"LLM budget {budget!r} ({scope}) exceeded: {detail}; the request was not sent")


class Reservation:
    """What one call holds against its period budgets until it finishes."""

    __slots__ = ("budgets", "keys", "member", "amount", "settled")

    def __init__(self, budgets: Budgets, keys: list[str], member: str, amount: int) -> None:
        self.budgets = budgets
        self.keys = keys
        self.member = member
        self.amount = amount
        self.settled = False

    def commit(self, cost_usd: float | None) -> None:
        """Replace the reservation by the actual cost (the estimate when ``None``)."""
        actual = self.amount if cost_usd is None else max(int(round(cost_usd * NANO)), 0)
        self._settle(actual)

    def release(self) -> None:
        self._settle(None)

    def _settle(self, actual: int | None) -> None:
        if self.settled:
            return
        self.settled = True
        try:
            self.budgets.store.settle(self.keys, self.member, self.amount, actual)
        except Exception:
            logger.warning("otel-llmcost: could not settle a budget reservation (expires by lease)", exc_info=True)


@dataclass
class Estimate:
    model: str
    input_tokens: int
    output_tokens: int
    cost: float | None


@dataclass(slots=True)
class PlannedCall:
    """What the budget check needs to know of a call about to be sent."""

    model: str
    max_output_tokens: int | None
    scope_values: Mapping[str, Any]  # llmcost.user / .feature / .team / .endpoint -> value
    prompt_tokens: Callable[[str], int]  # the prompt's tokens as counted for a model
    pricing_provider: str | None = None
    api_url: str | None = None
    started_at: float | None = None


@dataclass(slots=True)
class Decision:
    """What the check decided: send ``model`` (a downgrade changes it), or not at all."""

    model: str
    attributes: dict[str, Any]  # llmcost.budget.* for the span
    reservation: Reservation | None = None
    events: list[tuple[str, dict[str, Any]]] | None = None  # soft-threshold span events
    refusal: BudgetExceeded | None = None  # set: the request must not be sent


class Budgets:
    """Enforces a :class:`BudgetConfig`; one per process, shared by every call."""

    def __init__(
        self,
        config: BudgetConfig,
        *,
        store: MemoryStore | RedisStore | None = None,
        pricer: Any = None,
        meter: Any = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.store = store if store is not None else open_store(config.store)
        self.pricer = pricer
        self.tz = ZoneInfo(config.timezone)
        self.clock = clock or (lambda: datetime.now(tz=timezone.utc))
        self._events: Any = None
        if meter is not None:
            self.bind(pricer, meter)

    def bind(self, pricer: Any, meter: Any) -> None:
        """Use the instrumentation's pricer (unless given one) and meter; called by Telemetry."""
        if self.pricer is None:
            self.pricer = pricer
        if self._events is None and meter is not None:
            self._events = meter.create_counter(
                semconv.METRIC_BUDGET_EVENTS,
                unit="{call}",
                description="Calls that hit a budget threshold, by budget and action (warn, downgrade, raise)",
            )

    @classmethod
    def from_environment(cls, settings: Settings | None = None, **kwargs: Any) -> Budgets | None:
        """The budgets of ``OTEL_LLMCOST_BUDGETS_FILE``, or None when it is not set."""
        path = (settings or Settings.load()).budgets_file
        if not path:
            return None
        return cls(BudgetConfig.load(path), **kwargs)

    # --- the pre-call check --------------------------------------------------------

    def check(self, call: PlannedCall) -> Decision:
        """Reserve this call's estimate against its budgets, or refuse it.

        On success the decision holds a :class:`Reservation` that the caller settles when
        the call ends, the budget attributes for its span and the soft-threshold events;
        a refusal carries the :class:`BudgetExceeded` to raise before anything is sent.
        """
        config = self.config
        model = call.model
        out_tokens = call.max_output_tokens if call.max_output_tokens is not None else config.default_max_output_tokens
        est = self._estimate(call, model, out_tokens)
        decision = Decision(model=model, attributes={})
        report: tuple[str, str, float, float, str] | None = None  # name, scope, limit, used, action

        limits = config.request
        if limits is not None:
            violation = self._request_violation(limits, est)
            if violation is not None and limits.action == "downgrade" and limits.downgrade_to != model:
                cheaper = self._estimate(call, limits.downgrade_to or model, out_tokens)
                if self._request_violation(limits, cheaper) is None:
                    report = ("request", "request", violation.limit, violation.requested, "downgrade")
                    est, violation = cheaper, None
            if violation is not None:
                self._record(decision.attributes, "request", "request", violation.limit, violation.requested, "raise")
                decision.refusal = violation
                return decision

        counters = self._counters(call.scope_values) if config.budgets else None
        if counters and est.cost is not None:
            reservation, outcome = self._reserve(counters, est)
            if reservation is None and outcome is not None:
                budget, scope, limit, used = outcome
                if budget.action == "downgrade" and budget.downgrade_to and budget.downgrade_to != est.model:
                    cheaper = self._estimate(call, budget.downgrade_to, out_tokens)
                    if cheaper.cost is not None:
                        reservation, retry = self._reserve(counters, cheaper)
                        if reservation is not None:
                            est, outcome = cheaper, retry
                            report = (budget.name, scope, limit, used, "downgrade")
                        elif retry is not None:
                            budget, scope, limit, used = retry
                if reservation is None:
                    self._record(decision.attributes, budget.name, scope, limit, used, "raise")
                    decision.refusal = BudgetExceeded(budget.name, scope, limit, used, est.cost or 0.0)
                    return decision
            if reservation is not None:
                decision.reservation = reservation
                decision.events, headroom = self._soft(outcome)
                if report is None:
                    report = headroom

        if est.model != model:
            decision.model = est.model
            decision.attributes[semconv.GEN_AI_REQUEST_MODEL] = est.model
            decision.attributes[semconv.BUDGET_ORIGINAL_MODEL] = model
        if report is not None:
            self._record(decision.attributes, *report)
        return decision

    def _estimate(self, call: PlannedCall, model: str, out_tokens: int) -> Estimate:
        input_tokens = int(math.ceil(call.prompt_tokens(model) * self.config.input_margin))
        cost = None
        if self.pricer is not None and model:
            priced = self.pricer.price(
                Usage(input_tokens=input_tokens, output_tokens=out_tokens),
                model,
                provider_id=call.pricing_provider,
                api_url=call.api_url,
                when=call.started_at,
            )
            if priced is not None:
                cost = priced.total
        return Estimate(model, input_tokens, out_tokens, cost)

    @staticmethod
    def _request_violation(limits: RequestLimits, est: Estimate) -> BudgetExceeded | None:
        checks = (
            (limits.max_input_tokens, est.input_tokens, "input tokens"),
            (limits.max_output_tokens, est.output_tokens, "output tokens"),
            (limits.max_total_tokens, est.input_tokens + est.output_tokens, "tokens"),
        )
        for limit, value, unit in checks:
            if limit is not None and value > limit:
                return BudgetExceeded("request", "request", limit, 0, value, unit)
        if limits.max_cost_usd is not None and est.cost is not None and est.cost > limits.max_cost_usd:
            return BudgetExceeded("request", "request", limits.max_cost_usd, 0.0, est.cost)
        return None

    def _counters(self, scope_values: Mapping[str, Any]) -> list[tuple[Budget, str, Counter]]:
        now = self.clock()
        found = []
        for budget in self.config.budgets:
            if budget.scope == "global":
                value, scope = "", "global"
            else:
                raw = scope_values.get(_SCOPE_ATTRIBUTES[budget.scope])
                if raw is None or (budget.match is not None and raw != budget.match):
                    continue
                value, scope = str(raw), f"{budget.scope}={raw}"
            start, end, period_key = period_bounds(budget.period, now, self.tz)
            ttl = int((end - now).total_seconds()) + _GRACE_S
            key = f"{KEY_PREFIX}{budget.name}:{period_key}:{value}"
            found.append((budget, scope, Counter(key, int(round(budget.limit_usd * NANO)), ttl)))
        return found

    def _reserve(self, counters: list[tuple[Budget, str, Counter]], est: Estimate) -> tuple[Reservation | None, Any]:
        """(reservation, (counters, used, reserved, amount)) or (None, (budget, scope, limit, used)) when
        a budget refused, or (None, None) when the store is down and ``fail_open`` allows the call."""
        amount = int(math.ceil((est.cost or 0.0) * NANO))
        member = f"{uuid.uuid4().hex}|{amount}"
        now_ms = int(self.clock().timestamp() * 1000)
        deadline_ms = now_ms + int(self.config.lease_s * 1000)
        plain = [c for _, _, c in counters]
        try:
            failed, used, reserved = self.store.reserve(plain, amount, member, now_ms, deadline_ms)
        except Exception:
            if not self.config.fail_open:
                raise
            logger.warning("otel-llmcost: budget store unavailable; allowing the call", exc_info=True)
            return None, None
        if failed:
            budget, scope, counter = counters[failed - 1]
            spent = (used[failed - 1] + reserved[failed - 1]) / NANO
            return None, (budget, scope, counter.limit / NANO, spent)
        return Reservation(self, [c.key for c in plain], member, amount), (counters, used, reserved, amount)

    def _soft(self, outcome: Any) -> tuple[list[tuple[str, dict[str, Any]]] | None, Any]:
        """Soft-threshold events, and the budget with the least headroom (recorded on every budgeted call)."""
        counters, used, reserved, amount = outcome
        events: list[tuple[str, dict[str, Any]]] | None = None
        tightest: tuple[float, tuple[str, str, float, float, str]] | None = None
        for (budget, scope, counter), u, r in zip(counters, used, reserved, strict=True):
            share = (u + r + amount) / counter.limit if counter.limit else math.inf
            threshold = budget.soft_threshold if budget.soft_threshold is not None else self.config.soft_threshold
            entry = (budget.name, scope, counter.limit / NANO, (u + r) / NANO, "warn" if share >= threshold else "none")
            if share >= threshold:
                if events is None:
                    events = []
                events.append(
                    (
                        semconv.EVENT_BUDGET_SOFT_LIMIT,
                        {
                            semconv.BUDGET_NAME: budget.name,
                            semconv.BUDGET_SCOPE: scope,
                            semconv.BUDGET_LIMIT: entry[2],
                            semconv.BUDGET_USED: entry[3],
                            semconv.BUDGET_THRESHOLD: float(threshold),
                        },
                    )
                )
                self._count(budget.name, "warn")
            if tightest is None or share > tightest[0]:
                tightest = (share, entry)
        return events, tightest[1] if tightest is not None else None

    def _record(self, attrs: dict[str, Any], name: str, scope: str, limit: float, used: float, action: str) -> None:
        attrs[semconv.BUDGET_NAME] = name
        attrs[semconv.BUDGET_SCOPE] = scope
        attrs[semconv.BUDGET_LIMIT] = float(limit)
        attrs[semconv.BUDGET_USED] = float(used)
        attrs[semconv.BUDGET_ACTION] = action
        if action in ("raise", "downgrade"):
            self._count(name, action)

    def _count(self, name: str, action: str) -> None:
        if self._events is not None:
            self._events.add(1, {semconv.BUDGET_NAME: name, semconv.BUDGET_ACTION: action})

    # --- status -------------------------------------------------------------------------

    def status(self, now: datetime | None = None) -> list[BudgetStatus]:
        """Used, limit, burn rate and projected exhaustion of every counter in its current period."""
        return statuses(self.config, self.store, self.tz, now or self.clock())
