"""Budgets: caps on what LLM calls may cost, enforced *before* a call is sent.

Two kinds, both optional:

* **per request** — ``max_input_tokens``, ``max_output_tokens``, ``max_total_tokens``,
  ``max_cost_usd``, checked on the pre-call estimate (``soft_threshold``: a notify event
  when the estimate comes close);
* **per period** — USD (``limit_usd``) or tokens (``limit_tokens``: input + output) per
  ``day`` / ``week`` / ``month`` (reset at local midnight, Monday, the 1st, in the
  configured time zone) for the whole service (``scope: global``) or per ``user`` /
  ``feature`` / ``team`` / ``endpoint`` / ``session`` / ``tier`` (each value has its own
  counter; ``match`` limits a budget to one value). The scope values are the call's
  attribution (``llmcost.attributes``, baggage, the server route); users are counted by
  their keyed hash when ``OTEL_LLMCOST_USER_HASH_KEY`` is set.

The pre-call estimate is the prompt's tokens (offline tiktoken, see
:mod:`otel_llmcost.instrumentation.anatomy`) plus the request's ``max_tokens`` (or
``default_max_output_tokens``), priced with the same rates as the span.

Each period budget has a **ladder** of thresholds (shares of its limit), each with an
action (:meth:`.config.Budget.ladder`; a budget written before ladders keeps its meaning):

* ``notify``: a call made at or above it carries a ``llmcost.budget.threshold_crossed``
  span event and counts in ``llmcost.budget.events``; the call that crosses it logs a
  WARNING. A budget whose ladder has no ``refuse`` is "alert only".
* ``downgrade``: a call that would take spend past it is sent with ``downgrade_to``
  instead (``kwargs["model"]`` rewritten, ``llmcost.budget.downgraded`` event).
* ``refuse``: a call that would take spend past it raises :class:`BudgetExceeded` from the
  SDK method *before the request is sent* (``llmcost.budget.refused`` event, the span ends
  with ``error.type``). This is the one exception otel-llmcost raises into application
  code, on purpose. A downgrade stretches a budget, it never lifts its refusal.

Caps hold under concurrency: a call **reserves** its estimate atomically against every
budget it falls under (all or none, one Lua script in Redis), is **reconciled** to its
actual cost and tokens when it finishes and **released** when it fails or is cancelled.
Reservations are leases: one whose process died is dropped after ``lease_s``. Spend can
exceed a cap only by what the calls in flight at once cost *beyond their estimates*.

When the store is unavailable (down, hung past its timeout, or skipped by the circuit
breaker, see :mod:`.stores`) the call is not counted: with ``fail_open`` (the default) it
is sent with a ``llmcost.budget.unchecked`` event; without it :class:`BudgetStoreUnavailable`
(a :class:`BudgetExceeded`) refuses it and the span records the refusal. Async SDK calls
check with an asyncio Redis client (:meth:`Budgets.check_async`): the loop never blocks.

The decision is written once, as a generator that yields its store operations
(:meth:`Budgets._decide`); :meth:`Budgets.check` runs them synchronously and
:meth:`Budgets.check_async` awaits them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from .. import semconv
from ..pricing import Usage
from .config import Budget, BudgetConfig, RequestLimits, Threshold
from .periods import period_bounds
from .status import BudgetStatus, statuses
from .stores import KEY_PREFIX, NANO, Breaker, Counter, MemoryStore, RedisStore, StoreUnavailable, open_store

logger = logging.getLogger(__name__)

_SCOPE_ATTRIBUTES = {
    "user": semconv.USER,
    "feature": semconv.FEATURE,
    "team": semconv.TEAM,
    "endpoint": semconv.ENDPOINT,
    "session": semconv.SESSION,
    "tier": semconv.USER_TIER,
}
_GRACE_S = 86_400  # counters outlive their period by a day, for late reconciliations and status
_UNCAPPED = 2**62  # the store's cap of a budget that never refuses (alert only)

Event = tuple[str, dict[str, Any]]


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
        elif budget == "request":
            detail = f"this call needs up to {requested:.0f} {unit}, the limit is {limit:.0f}"
        else:
            detail = f"used {used:.0f} of {limit:.0f} {unit}, this call needs up to {requested:.0f}"
        super().__init__(f"LLM budget {budget!r} ({scope}) exceeded: {detail}; the request was not sent")


class BudgetStoreUnavailable(BudgetExceeded):
    """The budget store (Redis) could not be reached and ``fail_open: false`` refuses
    unchecked calls. A :class:`BudgetExceeded`, so one ``except`` handles both."""

    def __init__(self, budget: str, scope: str, reason: str) -> None:
        self.budget = budget
        self.scope = scope
        self.limit = math.nan
        self.used = math.nan
        self.requested = math.nan
        self.unit = "USD"
        self.reason = reason
        Exception.__init__(
            self,
            f"LLM budget {budget!r} ({scope}) could not be checked: the budget store is unavailable "
            f"({reason}) and fail_open is false; the request was not sent",
        )


class Reservation:
    """What one call holds against its period budgets until it finishes."""

    __slots__ = ("budgets", "keys", "lease", "amounts", "units", "settled")

    def __init__(
        self, budgets: Budgets, keys: list[str], lease: str, amounts: list[int], units: list[str] | None = None
    ) -> None:
        self.budgets = budgets
        self.keys = keys
        self.lease = lease
        self.amounts = amounts
        self.units = units or ["usd"] * len(keys)
        self.settled = False

    @property
    def amount(self) -> int:
        """The nano-USD held (0 when every budget counts tokens)."""
        return next((a for a, u in zip(self.amounts, self.units, strict=True) if u == "usd"), 0)

    def commit(self, cost_usd: float | None, tokens: int | None = None) -> None:
        """Replace the reservation by the actual cost and tokens (the estimate when ``None``)."""
        actuals = []
        for amount, unit in zip(self.amounts, self.units, strict=True):
            actual = cost_usd if unit == "usd" else tokens
            if actual is None:
                actuals.append(amount)
            else:
                actuals.append(max(int(round(actual * NANO)) if unit == "usd" else int(actual), 0))
        self._settle(actuals)

    def release(self) -> None:
        self._settle(None)

    def _settle(self, actuals: list[int] | None) -> None:
        if self.settled:
            return
        self.settled = True
        store = self.budgets.store
        try:
            if _in_event_loop():  # never wait for Redis on the event loop's thread
                store.settle_later(self.keys, self.lease, self.amounts, actuals)
            else:
                store.settle(self.keys, self.lease, self.amounts, actuals)
        except Exception as error:  # a custom store; ours never raise here
            logger.debug("otel-llmcost: could not settle a budget reservation (expires by lease): %s", error)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass
class Estimate:
    model: str
    input_tokens: int
    output_tokens: int
    cost: float | None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class PlannedCall:
    """What the budget check needs to know of a call about to be sent."""

    model: str
    max_output_tokens: int | None
    scope_values: Mapping[str, Any]  # llmcost.user / .feature / .team / .endpoint / ... -> value
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
    events: list[Event] | None = None  # budget span events (name, attributes)
    refusal: BudgetExceeded | None = None  # set: the request must not be sent

    def event(self, name: str, attributes: dict[str, Any]) -> None:
        if self.events is None:
            self.events = []
        self.events.append((name, attributes))


@dataclass
class _Applied:
    """A period budget that applies to this call, with its counter for the current period."""

    budget: Budget
    value: str  # the scope value ("" for global)
    counter: Counter
    ladder: tuple[Threshold, ...]

    @property
    def scope(self) -> str:  # as on the span: "user=alice" or "global"
        return "global" if self.budget.scope == "global" else f"{self.budget.scope}={self.value}"

    @property
    def limit(self) -> int:  # the full limit in counter units (the counter's cap may be lower)
        budget = self.budget
        return budget.limit_tokens if budget.limit_tokens is not None else int(round((budget.limit_usd or 0) * NANO))

    def amount(self, est: Estimate) -> int:
        if self.budget.unit == "tokens":
            return est.tokens
        return int(math.ceil((est.cost or 0.0) * NANO))

    def in_unit(self, value: int) -> float:
        return float(value) if self.budget.unit == "tokens" else value / NANO


@dataclass
class _Reserve:
    applied: list[_Applied]
    amounts: list[int]
    lease: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class _Release:
    reserve: _Reserve


_Op = _Reserve | _Release
# (failed index or 0, used, reserved) from the store, or None: the store was unavailable
_Reply = tuple[int, list[int], list[int]] | None
_Steps = Generator[_Op, _Reply, None]


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
        self.store = store if store is not None else _open_store(config)
        self.pricer = pricer
        self.tz = ZoneInfo(config.timezone)
        self.clock = clock or (lambda: datetime.now(tz=timezone.utc))
        self._events: Any = None
        self._logged: set[tuple[str, float]] = set()  # (counter key, rung) crossings logged
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
                description="Calls that hit a budget threshold or went unchecked, by budget and action",
            )

    # --- the pre-call check: drivers -----------------------------------------------------

    def check(self, call: PlannedCall) -> Decision:
        """Reserve this call's estimate against its budgets, or refuse it.

        On success the decision holds a :class:`Reservation` that the caller settles when
        the call ends, the budget attributes and events for its span; a refusal carries the
        :class:`BudgetExceeded` to raise before anything is sent. Never raises itself.
        """
        decision = Decision(model=call.model, attributes={})
        steps = self._decide(call, decision)
        reply: _Reply = None
        while True:
            try:
                op = steps.send(reply)
            except StopIteration:
                return decision
            reply = self._run(op)

    async def check_async(self, call: PlannedCall) -> Decision:
        """:meth:`check` for async SDK calls: store round trips are awaited, never blocking the loop."""
        decision = Decision(model=call.model, attributes={})
        steps = self._decide(call, decision)
        reply: _Reply = None
        while True:
            try:
                op = steps.send(reply)
            except StopIteration:
                return decision
            reply = await self._arun(op)

    def _run(self, op: _Op) -> _Reply:
        store = self.store
        if isinstance(op, _Release):
            applied = op.reserve.applied
            store.settle([a.counter.key for a in applied], op.reserve.lease, op.reserve.amounts, None)
            return None
        try:
            return store.reserve([a.counter for a in op.applied], op.amounts, op.lease, *self._lease_window())
        except Exception as error:  # StoreUnavailable, or a custom store's own error
            _log_unavailable(error)
            return None

    async def _arun(self, op: _Op) -> _Reply:
        store = self.store
        if isinstance(op, _Release):
            if isinstance(store, MemoryStore):
                self._run(op)
            else:  # rare (a downgrade below the cap): a worker thread keeps it off the loop
                await asyncio.to_thread(self._run, op)
            return None
        try:
            return await store.areserve([a.counter for a in op.applied], op.amounts, op.lease, *self._lease_window())
        except Exception as error:
            _log_unavailable(error)
            return None

    def _lease_window(self) -> tuple[int, int]:
        now_ms = int(self.clock().timestamp() * 1000)
        return now_ms, now_ms + int(self.config.lease_s * 1000)

    # --- the decision ---------------------------------------------------------------------

    def _decide(self, call: PlannedCall, decision: Decision) -> _Steps:
        """Request limits first (no I/O), then the period budgets (reservations in the store)."""
        out_tokens = (
            call.max_output_tokens if call.max_output_tokens is not None else self.config.default_max_output_tokens
        )
        est = self._estimate(call, call.model, out_tokens)
        if self.config.request is not None:
            est = self._check_request(call, self.config.request, est, out_tokens, decision)
            if decision.refusal is not None:
                return
        applied = self._applied(call.scope_values, est) if self.config.budgets else []
        if applied:
            est = yield from self._check_periods(call, applied, est, out_tokens, decision)
        if decision.refusal is None and est.model != call.model:
            decision.model = est.model
            decision.attributes[semconv.GEN_AI_REQUEST_MODEL] = est.model
            decision.attributes[semconv.BUDGET_ORIGINAL_MODEL] = call.model

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

    # --- per request --------------------------------------------------------------------------

    def _check_request(
        self, call: PlannedCall, limits: RequestLimits, est: Estimate, out_tokens: int, decision: Decision
    ) -> Estimate:
        """The estimate to send (a downgrade changes it); sets ``decision.refusal`` on a violation."""
        violation = _request_violation(limits, est)
        if violation is not None and limits.action == "downgrade" and limits.downgrade_to != est.model:
            cheaper = self._estimate(call, limits.downgrade_to or est.model, out_tokens)
            if _request_violation(limits, cheaper) is None:
                attrs = _request_event(violation, 1.0, "downgrade")
                attrs[semconv.BUDGET_DOWNGRADED_TO] = cheaper.model
                decision.event(semconv.EVENT_BUDGET_DOWNGRADED, attrs)
                self._record(
                    decision.attributes, "request", "request", violation.limit, violation.requested, "downgrade"
                )
                return cheaper
        if violation is not None:
            decision.event(semconv.EVENT_BUDGET_REFUSED, _request_event(violation, 1.0, "refuse"))
            self._record(decision.attributes, "request", "request", violation.limit, violation.requested, "raise")
            decision.refusal = violation
            return est
        if limits.soft_threshold is not None:
            for near in _request_near(limits, est, limits.soft_threshold):
                decision.event(
                    semconv.EVENT_BUDGET_THRESHOLD_CROSSED, _request_event(near, limits.soft_threshold, "notify")
                )
                self._count("request", "warn")
        return est

    # --- per period ---------------------------------------------------------------------------

    def _applied(self, scope_values: Mapping[str, Any], est: Estimate) -> list[_Applied]:
        """The budgets this call falls under (USD budgets only when the model is priced)."""
        now = self.clock()
        found = []
        for budget in self.config.budgets:
            if budget.unit == "usd" and est.cost is None:
                continue  # unpriced: not counted against USD budgets (a price override makes it count)
            if budget.scope == "global":
                value = ""
            else:
                raw = scope_values.get(_SCOPE_ATTRIBUTES[budget.scope])
                if raw is None or (budget.match is not None and raw != budget.match):
                    continue
                value = str(raw)
            found.append(self._applied_budget(budget, value, now))
        return found

    def _applied_budget(self, budget: Budget, value: str, now: datetime) -> _Applied:
        _, end, period_key = period_bounds(budget.period, now, self.tz)
        ttl = int((end - now).total_seconds()) + _GRACE_S
        key = f"{KEY_PREFIX}{budget.name}:{period_key}:{value}"
        ladder = budget.ladder(self.config.soft_threshold)
        refuse = [t.at for t in ladder if t.action == "refuse"]
        limit = budget.limit_tokens if budget.limit_tokens is not None else int(round((budget.limit_usd or 0) * NANO))
        cap = int(math.floor(min(refuse) * limit)) if refuse else _UNCAPPED
        return _Applied(budget, value, Counter(key, cap, ttl), ladder)

    def _counters(self, scope_values: Mapping[str, Any]) -> list[tuple[Budget, str, Counter]]:
        """(budget, scope, counter) of each budget that would apply (status and tests)."""
        now = self.clock()
        found = []
        for budget in self.config.budgets:
            raw = "" if budget.scope == "global" else scope_values.get(_SCOPE_ATTRIBUTES[budget.scope])
            if raw is None or (budget.match is not None and raw != budget.match):
                continue
            applied = self._applied_budget(budget, str(raw), now)
            found.append((budget, applied.scope, applied.counter))
        return found

    def _check_periods(
        self, call: PlannedCall, applied: list[_Applied], est: Estimate, out_tokens: int, decision: Decision
    ) -> Generator[_Op, _Reply, Estimate]:
        reserve = _Reserve(applied, [a.amount(est) for a in applied])
        reply = yield reserve
        if reply is None:
            self._unavailable(applied, est, decision)
            return est
        target = _downgrade_target(applied, reserve.amounts, reply, est.model)
        if target is not None:
            rung, crossed, used = target
            cheaper = self._estimate(call, rung.downgrade_to or est.model, out_tokens)
            if cheaper.cost is not None or all(a.budget.unit == "tokens" for a in applied):
                if reply[0] == 0:
                    yield _Release(reserve)  # the first reservation was for the dearer model
                reserve = _Reserve(applied, [a.amount(cheaper) for a in applied])
                reply = yield reserve
                if reply is None:
                    self._unavailable(applied, cheaper, decision)
                    return est
                if reply[0] == 0:
                    attrs = _event(crossed, rung.at, "downgrade", used)
                    attrs[semconv.BUDGET_DOWNGRADED_TO] = cheaper.model
                    decision.event(semconv.EVENT_BUDGET_DOWNGRADED, attrs)
                    self._record_applied(decision.attributes, crossed, used, "downgrade")
                    est = cheaper
        failed, used_all, reserved_all = reply
        if failed:
            self._refuse(applied[failed - 1], used_all[failed - 1] + reserved_all[failed - 1], est, decision)
            return est
        decision.reservation = Reservation(
            self,
            [a.counter.key for a in applied],
            reserve.lease,
            reserve.amounts,
            [a.budget.unit for a in applied],
        )
        self._notify(applied, reserve.amounts, used_all, reserved_all, decision)
        return est

    def _refuse(self, applied: _Applied, held: int, est: Estimate, decision: Decision) -> None:
        refuse_at = min((t.at for t in applied.ladder if t.action == "refuse"), default=1.0)
        decision.event(semconv.EVENT_BUDGET_REFUSED, _event(applied, refuse_at, "refuse", held))
        self._record_applied(decision.attributes, applied, held, "raise")
        unit = "USD" if applied.budget.unit == "usd" else "tokens"
        requested = (est.cost or 0.0) if unit == "USD" else float(est.tokens)
        limit = applied.in_unit(applied.counter.limit)
        decision.refusal = BudgetExceeded(
            applied.budget.name, applied.scope, limit, applied.in_unit(held), requested, unit
        )

    def _notify(
        self, applied: list[_Applied], amounts: list[int], used: list[int], reserved: list[int], decision: Decision
    ) -> None:
        """Notify events for the budgets at or above a notify rung; the span's budget attributes
        for the one with the least headroom."""
        tightest: tuple[float, _Applied, int, str] | None = None
        for entry, amount, u, r in zip(applied, amounts, used, reserved, strict=True):
            held, limit = u + r, entry.limit
            share = (held + amount) / limit if limit else math.inf
            rung = _highest(entry.ladder, "notify", held + amount, limit, past=False)
            if rung is not None:
                decision.event(semconv.EVENT_BUDGET_THRESHOLD_CROSSED, _event(entry, rung.at, "notify", held))
                self._count(entry.budget.name, "warn")
                if self._first_crossing(entry.counter.key, rung.at):
                    logger.warning(
                        "otel-llmcost: budget %r (%s) crossed %g%% of its %s limit",
                        entry.budget.name,
                        entry.scope,
                        rung.at * 100,
                        entry.budget.period,
                    )
            if tightest is None or share > tightest[0]:
                tightest = (share, entry, held, "warn" if rung is not None else "none")
        if tightest is not None and semconv.BUDGET_ACTION not in decision.attributes:
            _, entry, held, action = tightest
            self._record_applied(decision.attributes, entry, held, action)

    def _first_crossing(self, key: str, at: float) -> bool:
        """Whether this process has not logged this rung of this counter (the key names the
        period) yet: one log line per budget, scope value, threshold and period, not per call."""
        logged = self._logged
        if (key, at) in logged:
            return False
        if len(logged) >= 10_000:  # bounded: one entry per counter and rung
            logged.clear()
        logged.add((key, at))
        return True

    def _unavailable(self, applied: list[_Applied], est: Estimate, decision: Decision) -> None:
        """The store could not be reached: send unchecked (fail_open) or refuse."""
        if self.config.fail_open:
            for entry in applied:
                decision.event(semconv.EVENT_BUDGET_UNCHECKED, _event(entry, None, "unchecked", None))
                self._count(entry.budget.name, "unchecked")
            decision.attributes[semconv.BUDGET_ACTION] = "unchecked"
            return
        first = applied[0]
        decision.event(semconv.EVENT_BUDGET_REFUSED, _event(first, None, "refuse", None))
        decision.attributes.update(
            {semconv.BUDGET_NAME: first.budget.name, semconv.BUDGET_SCOPE: first.scope, semconv.BUDGET_ACTION: "raise"}
        )
        self._count(first.budget.name, "raise")
        decision.refusal = BudgetStoreUnavailable(first.budget.name, first.scope, _store_reason(self.store))

    # --- span attributes and metrics -------------------------------------------------------

    def _record_applied(self, attrs: dict[str, Any], entry: _Applied, held: int, action: str) -> None:
        if entry.budget.unit == "tokens":
            attrs[semconv.BUDGET_NAME] = entry.budget.name
            attrs[semconv.BUDGET_SCOPE] = entry.scope
            attrs[semconv.BUDGET_LIMIT_TOKENS] = entry.limit
            attrs[semconv.BUDGET_USED_TOKENS] = held
            attrs[semconv.BUDGET_ACTION] = action
            if action in ("raise", "downgrade"):
                self._count(entry.budget.name, action)
            return
        self._record(attrs, entry.budget.name, entry.scope, entry.limit / NANO, held / NANO, action)

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
        flush = getattr(self.store, "flush", None)  # settlements still in flight from async calls count too
        if flush is not None:
            flush()
        return statuses(self.config, self.store, self.tz, now or self.clock())


# --- helpers: pure functions of the decision ---------------------------------------------------


def _open_store(config: BudgetConfig) -> MemoryStore | RedisStore:
    consequence = "calls are sent unchecked" if config.fail_open else "calls are refused (fail_open: false)"
    breaker = Breaker(config.breaker_failures, config.breaker_cooldown_s, consequence=consequence)
    return open_store(
        config.store,
        connect_timeout_ms=config.store_connect_timeout_ms,
        timeout_ms=config.store_timeout_ms,
        breaker=breaker,
    )


def _log_unavailable(error: BaseException) -> None:
    # The breaker logs the state changes at WARNING; each failed call is a debug line only.
    if not isinstance(error, StoreUnavailable):
        logger.debug("otel-llmcost: budget store error: %s: %s", type(error).__name__, error)


def _store_reason(store: Any) -> str:
    breaker = getattr(store, "breaker", None)
    return "circuit breaker open" if breaker is not None and breaker.is_open else "unreachable or timed out"


def _highest(ladder: Sequence[Threshold], action: str, after: int, limit: int, *, past: bool) -> Threshold | None:
    """The highest rung with ``action`` that spend of ``after`` reaches (``past``: goes beyond).

    Notify rungs apply at their share, downgrade and refuse rungs to calls that would go past
    it: a call that lands exactly on a limit fits, as it always did."""
    found = None
    for rung in ladder:  # lowest first
        bound = rung.at * limit
        if rung.action == action and (after > bound if past else after >= bound):
            found = rung
    return found


def _downgrade_target(
    applied: list[_Applied], amounts: list[int], reply: tuple[int, list[int], list[int]], model: str
) -> tuple[Threshold, _Applied, int] | None:
    """(rung, budget, held) of the first budget whose downgrade rung this call would pass.

    The store reports used/reserved up to the budget that refused (all when none did)."""
    failed, used, reserved = reply
    known = failed if failed else len(applied)
    for index in range(known):
        entry, held = applied[index], used[index] + reserved[index]
        after, limit = held + amounts[index], entry.limit
        rung = _highest(entry.ladder, "downgrade", after, limit, past=True)
        if rung is not None and rung.downgrade_to and rung.downgrade_to != model:
            return rung, entry, held
    return None


def _event(entry: _Applied, threshold: float | None, action: str, held: int | None) -> dict[str, Any]:
    budget = entry.budget
    attrs: dict[str, Any] = {
        semconv.BUDGET_NAME: budget.name,
        semconv.BUDGET_SCOPE: budget.scope,
        semconv.BUDGET_PERIOD: budget.period,
        semconv.BUDGET_ACTION: action,
    }
    if entry.value:
        attrs[semconv.BUDGET_SCOPE_VALUE] = entry.value
    if threshold is not None:
        attrs[semconv.BUDGET_THRESHOLD] = float(threshold)
    if budget.unit == "tokens":
        attrs[semconv.BUDGET_LIMIT_TOKENS] = entry.limit
        if held is not None:
            attrs[semconv.BUDGET_USED_TOKENS] = held
    else:
        attrs[semconv.BUDGET_LIMIT_USD] = entry.limit / NANO
        if held is not None:
            attrs[semconv.BUDGET_USED_USD] = held / NANO
    return attrs


def _request_checks(limits: RequestLimits, est: Estimate) -> list[tuple[float, float, str]]:
    """(limit, value, unit) of each per-request limit that is set."""
    checks: list[tuple[float, float, str]] = []
    for limit, value, unit in (
        (limits.max_input_tokens, est.input_tokens, "input tokens"),
        (limits.max_output_tokens, est.output_tokens, "output tokens"),
        (limits.max_total_tokens, est.tokens, "tokens"),
    ):
        if limit is not None:
            checks.append((limit, value, unit))
    if limits.max_cost_usd is not None and est.cost is not None:
        checks.append((limits.max_cost_usd, est.cost, "USD"))
    return checks


def _request_violation(limits: RequestLimits, est: Estimate) -> BudgetExceeded | None:
    for limit, value, unit in _request_checks(limits, est):
        if value > limit:
            return BudgetExceeded("request", "request", limit, 0.0 if unit == "USD" else 0, value, unit)
    return None


def _request_near(limits: RequestLimits, est: Estimate, share: float) -> list[BudgetExceeded]:
    """The per-request limits this estimate reaches ``share`` of (as BudgetExceeded-shaped records)."""
    return [
        BudgetExceeded("request", "request", limit, 0.0, value, unit)
        for limit, value, unit in _request_checks(limits, est)
        if value >= share * limit
    ]


def _request_event(violation: BudgetExceeded, threshold: float, action: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        semconv.BUDGET_NAME: "request",
        semconv.BUDGET_SCOPE: "request",
        semconv.BUDGET_PERIOD: "request",
        semconv.BUDGET_THRESHOLD: float(threshold),
        semconv.BUDGET_ACTION: action,
    }
    if violation.unit == "USD":
        attrs[semconv.BUDGET_USED_USD] = float(violation.requested)
        attrs[semconv.BUDGET_LIMIT_USD] = float(violation.limit)
    else:
        attrs[semconv.BUDGET_USED_TOKENS] = int(violation.requested)
        attrs[semconv.BUDGET_LIMIT_TOKENS] = int(violation.limit)
    return attrs
