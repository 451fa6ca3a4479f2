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
:mod:`otel_llmcost.anatomy`: messages, system prompt and tool definitions) plus the
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

File (``OTEL_LLMCOST_BUDGETS_FILE``, YAML or JSON)::

    timezone: Europe/Berlin
    store: redis://localhost:6379/0         # default: memory (one process)
    soft_threshold: 0.8
    request: {max_total_tokens: 50000, max_cost_usd: 0.50}
    budgets:
      - {name: monthly, scope: global, period: month, limit_usd: 2000}
      - {name: per-user, scope: user, period: day, limit_usd: 2, action: downgrade, downgrade_to: gpt-4o-mini}
      - {name: search, scope: feature, match: search, period: week, limit_usd: 100}

Checks are synchronous (a Redis round trip under asyncio blocks the loop for that
round trip, well under a millisecond on a local network).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from . import semconv
from .usage import Usage

logger = logging.getLogger(__name__)

BUDGETS_FILE_ENV = "OTEL_LLMCOST_BUDGETS_FILE"
NANO = 1_000_000_000  # counters hold integer nano-USD
SCOPES = ("global", "user", "feature", "team", "endpoint")
PERIODS = ("day", "week", "month")
ACTIONS = ("raise", "downgrade")
_SCOPE_ATTRIBUTES = {
    "user": semconv.USER,
    "feature": semconv.FEATURE,
    "team": semconv.TEAM,
    "endpoint": semconv.ENDPOINT,
}
_KEY_PREFIX = "llmcost:{budgets}:"  # one hash tag: every key in one Redis Cluster slot
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


# --- configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class RequestLimits:
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_total_tokens: int | None = None
    max_cost_usd: float | None = None
    action: str = "raise"
    downgrade_to: str | None = None


@dataclass(frozen=True)
class Budget:
    name: str
    limit_usd: float
    period: str = "month"
    scope: str = "global"
    match: str | None = None
    action: str = "raise"
    downgrade_to: str | None = None
    soft_threshold: float | None = None  # None: the config's

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"budget {self.name!r}: scope must be one of {SCOPES}, got {self.scope!r}")
        if self.period not in PERIODS:
            raise ValueError(f"budget {self.name!r}: period must be one of {PERIODS}, got {self.period!r}")
        _check_action(self.name, self.action, self.downgrade_to)
        if not (isinstance(self.limit_usd, (int, float)) and self.limit_usd >= 0):
            raise ValueError(f"budget {self.name!r}: limit_usd must be a non-negative number")
        if ":" in self.name:
            raise ValueError(f"budget {self.name!r}: the name may not contain ':'")


def _check_action(name: str, action: str, downgrade_to: str | None) -> None:
    if action not in ACTIONS:
        raise ValueError(f"budget {name!r}: action must be one of {ACTIONS}, got {action!r}")
    if action == "downgrade" and not downgrade_to:
        raise ValueError(f"budget {name!r}: action 'downgrade' needs downgrade_to")


@dataclass(frozen=True)
class BudgetConfig:
    budgets: tuple[Budget, ...] = ()
    request: RequestLimits | None = None
    timezone: str = "UTC"
    soft_threshold: float = 0.8
    store: str = "memory"
    default_max_output_tokens: int = 4096
    input_margin: float = 1.0  # multiply the prompt estimate (e.g. 1.2 for non-OpenAI tokenizers)
    lease_s: float = 900.0
    fail_open: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BudgetConfig:
        request = data.get("request")
        budgets = []
        for index, entry in enumerate(data.get("budgets") or ()):
            entry = dict(entry)
            entry.setdefault("name", f"budget-{index + 1}")
            budgets.append(Budget(**entry))
        names = [b.name for b in budgets]
        if len(set(names)) != len(names):
            raise ValueError(f"budget names must be unique: {names}")
        limits = RequestLimits(**request) if request else None
        if limits is not None:
            _check_action("request", limits.action, limits.downgrade_to)
        known = {"budgets", "request", "timezone", "soft_threshold", "store", "default_max_output_tokens"}
        known |= {"input_margin", "lease_s", "fail_open"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown budget settings: {sorted(unknown)}")
        config = cls(
            budgets=tuple(budgets),
            request=limits,
            timezone=str(data.get("timezone", "UTC")),
            soft_threshold=float(data.get("soft_threshold", 0.8)),
            store=str(data.get("store", "memory")),
            default_max_output_tokens=int(data.get("default_max_output_tokens", 4096)),
            input_margin=float(data.get("input_margin", 1.0)),
            lease_s=float(data.get("lease_s", 900.0)),
            fail_open=bool(data.get("fail_open", True)),
        )
        ZoneInfo(config.timezone)  # fail early on a bad zone name
        return config

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BudgetConfig:
        text = Path(path).read_text(encoding="utf-8")
        if str(path).endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
        return cls.from_dict(data or {})


# --- periods ---------------------------------------------------------------------


def period_bounds(period: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime, str]:
    """(start, end, key) of the period containing ``now``, in local time of ``tz``."""
    local = now.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period == "day":
        start, end, key = day, day + timedelta(days=1), day.strftime("%Y-%m-%d")
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        iso = start.isocalendar()
        end, key = start + timedelta(days=7), f"{iso[0]}-W{iso[1]:02d}"
    elif period == "month":
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        key = start.strftime("%Y-%m")
    else:
        raise ValueError(f"unknown period {period!r}")
    # Wall-clock midnights, made aware in the zone (correct across DST changes).
    return start.replace(tzinfo=tz), end.replace(tzinfo=tz), key


# --- stores ------------------------------------------------------------------------


@dataclass(frozen=True)
class Counter:
    key: str
    limit: int  # nano-USD
    ttl_s: int


class MemoryStore:
    """Counters in this process (a lock around plain dicts); the default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # key -> [used, reserved, {lease member: (deadline_ms, amount)}, expires_at_ms]
        self._counters: dict[str, list[Any]] = {}

    def _entry(self, key: str, now_ms: int) -> list[Any]:
        entry = self._counters.get(key)
        if entry is None or entry[3] <= now_ms:
            entry = self._counters[key] = [0, 0, {}, math.inf]
        leases = entry[2]
        if leases:
            for member in [m for m, (deadline, _) in leases.items() if deadline <= now_ms]:
                entry[1] -= leases.pop(member)[1]
        return entry

    def reserve(
        self, counters: list[Counter], amount: int, member: str, now_ms: int, deadline_ms: int
    ) -> tuple[int, list[int], list[int]]:
        with self._lock:
            entries = [self._entry(c.key, now_ms) for c in counters]
            used = [e[0] for e in entries]
            reserved = [e[1] for e in entries]
            for index, (counter, entry) in enumerate(zip(counters, entries, strict=True)):
                if entry[0] + entry[1] + amount > counter.limit:
                    return index + 1, used, reserved
            for counter, entry in zip(counters, entries, strict=True):
                entry[1] += amount
                entry[2][member] = (deadline_ms, amount)
                entry[3] = now_ms + counter.ttl_s * 1000
            if len(self._counters) > 10_000:
                for key in [k for k, e in self._counters.items() if e[3] <= now_ms]:
                    del self._counters[key]
            return 0, used, reserved

    def settle(self, keys: list[str], member: str, amount: int, actual: int | None) -> None:
        with self._lock:
            for key in keys:
                entry = self._counters.get(key)
                if entry is None:
                    continue
                if entry[2].pop(member, None) is not None:
                    entry[1] -= amount
                if actual:
                    entry[0] += actual

    def read(self, key: str, now_ms: int) -> tuple[int, int]:
        with self._lock:
            entry = self._counters.get(key)
            if entry is None or entry[3] <= now_ms:
                return 0, 0
            entry = self._entry(key, now_ms)
            return entry[0], entry[1]

    def keys(self, prefix: str) -> list[str]:
        with self._lock:
            return [k for k in self._counters if k.startswith(prefix)]


_RESERVE_LUA = """
-- KEYS: counter hashes (fields used, reserved); each has a lease zset KEYS[i]..':leases'
-- whose members are '<id>|<amount>' scored by their deadline (ms).
-- ARGV: now_ms, deadline_ms, member, amount, then per key: limit, ttl_s.
-- All or nothing: either every counter takes the reservation or none does.
local now = tonumber(ARGV[1])
local amount = tonumber(ARGV[4])
local used, reserved = {}, {}
for i, key in ipairs(KEYS) do
  local leases = key .. ':leases'
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now)) do
    redis.call('HINCRBY', key, 'reserved', '-' .. string.match(m, '|(%d+)$'))
    redis.call('ZREM', leases, m)
  end
  local u = tonumber(redis.call('HGET', key, 'used') or '0')
  local r = tonumber(redis.call('HGET', key, 'reserved') or '0')
  used[i], reserved[i] = u, r
  if u + r + amount > tonumber(ARGV[3 + 2 * i]) then
    return {i, used, reserved}
  end
end
for i, key in ipairs(KEYS) do
  local ttl = ARGV[4 + 2 * i]
  redis.call('HINCRBY', key, 'reserved', ARGV[4])
  redis.call('ZADD', key .. ':leases', ARGV[2], ARGV[3])
  redis.call('EXPIRE', key, ttl)
  redis.call('EXPIRE', key .. ':leases', ttl)
end
return {0, used, reserved}
"""

_SETTLE_LUA = """
-- KEYS: the counters of one reservation. ARGV: member, reserved amount, actual amount ('' = release).
-- A lease already dropped as expired gave its amount back then: never subtract twice.
for _, key in ipairs(KEYS) do
  if redis.call('ZREM', key .. ':leases', ARGV[1]) == 1 then
    redis.call('HINCRBY', key, 'reserved', '-' .. ARGV[2])
  end
  if ARGV[3] ~= '' then
    redis.call('HINCRBY', key, 'used', ARGV[3])
    if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, 86400) end
  end
end
return 1
"""


class RedisStore:
    """Counters in Redis, shared by every process and host; atomic by Lua scripts."""

    def __init__(self, client: Any) -> None:
        if isinstance(client, str):
            import redis

            client = redis.Redis.from_url(client)
        self.client = client
        self._reserve = client.register_script(_RESERVE_LUA)
        self._settle = client.register_script(_SETTLE_LUA)

    def reserve(
        self, counters: list[Counter], amount: int, member: str, now_ms: int, deadline_ms: int
    ) -> tuple[int, list[int], list[int]]:
        args: list[Any] = [now_ms, deadline_ms, member, amount]
        for counter in counters:
            args += [counter.limit, counter.ttl_s]
        failed, used, reserved = self._reserve(keys=[c.key for c in counters], args=args)
        return int(failed), [int(u) for u in used], [int(r) for r in reserved]

    def settle(self, keys: list[str], member: str, amount: int, actual: int | None) -> None:
        self._settle(keys=keys, args=[member, amount, "" if actual is None else actual])

    def read(self, key: str, now_ms: int) -> tuple[int, int]:
        pipe = self.client.pipeline()
        pipe.hmget(key, "used", "reserved")
        pipe.zrangebyscore(key + ":leases", "-inf", now_ms)
        (used, reserved), expired = pipe.execute()
        stale = sum(int(m.rsplit(b"|", 1)[1]) for m in expired)
        return int(used or 0), max(int(reserved or 0) - stale, 0)

    def keys(self, prefix: str) -> list[str]:
        found = []
        for key in self.client.scan_iter(match=_glob_escape(prefix) + "*", count=500):
            text = key.decode() if isinstance(key, bytes) else key
            if not text.endswith(":leases"):
                found.append(text)
        return found


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def open_store(url: str) -> MemoryStore | RedisStore:
    if not url or url == "memory":
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url)
    raise ValueError(f"unknown budget store {url!r}: use 'memory' or redis://host:port/db")


# --- enforcement -------------------------------------------------------------------


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


@dataclass
class BudgetStatus:
    name: str
    scope: str
    scope_value: str
    period: str
    period_start: datetime
    period_end: datetime
    limit_usd: float
    used_usd: float
    reserved_usd: float
    burn_rate_usd_per_day: float
    projected_exhaustion: datetime | None  # None: not before the period resets

    @property
    def utilization(self) -> float:
        return self.used_usd / self.limit_usd if self.limit_usd else math.inf


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
    def from_environment(cls, **kwargs: Any) -> Budgets | None:
        path = os.environ.get(BUDGETS_FILE_ENV)
        if not path:
            return None
        return cls(BudgetConfig.load(path), **kwargs)

    # --- the pre-call check --------------------------------------------------------

    def check(
        self, call: Any, kwargs: dict[str, Any], attrs: dict[str, Any], estimate: Callable[[str], int]
    ) -> list[tuple[str, dict[str, Any]]] | None:
        """Reserve this call's estimate or raise BudgetExceeded; may rewrite ``kwargs["model"]``.

        ``estimate(model)`` gives the prompt tokens. On success the call holds a
        :class:`Reservation` (``call.reservation``) that ``LLMCall.finish`` settles, the
        budget attributes are in ``attrs``, and the return value lists the span events
        (soft thresholds) to add once the span exists.
        """
        config = self.config
        model = call.model
        max_out = attrs.get(semconv.GEN_AI_REQUEST_MAX_TOKENS)
        out_tokens = max_out if type(max_out) is int else config.default_max_output_tokens
        est = self._estimate(call, model, estimate, out_tokens)
        report: tuple[str, str, float, float, str] | None = None  # name, scope, limit, used, action
        events: list[tuple[str, dict[str, Any]]] | None = None

        limits = config.request
        if limits is not None:
            violation = self._request_violation(limits, est)
            if violation is not None and limits.action == "downgrade" and limits.downgrade_to != model:
                cheaper = self._estimate(call, limits.downgrade_to or model, estimate, out_tokens)
                if self._request_violation(limits, cheaper) is None:
                    report = ("request", "request", violation.limit, violation.requested, "downgrade")
                    est, violation = cheaper, None
            if violation is not None:
                self._record(attrs, "request", "request", violation.limit, violation.requested, "raise")
                raise violation

        counters = self._counters(attrs) if config.budgets else None
        if counters and est.cost is not None:
            reservation, outcome = self._reserve(counters, est)
            if reservation is None and outcome is not None:
                budget, scope, limit, used = outcome
                if budget.action == "downgrade" and budget.downgrade_to and budget.downgrade_to != est.model:
                    cheaper = self._estimate(call, budget.downgrade_to, estimate, out_tokens)
                    if cheaper.cost is not None:
                        reservation, retry = self._reserve(counters, cheaper)
                        if reservation is not None:
                            est, outcome = cheaper, retry
                            report = (budget.name, scope, limit, used, "downgrade")
                        elif retry is not None:
                            budget, scope, limit, used = retry
                if reservation is None:
                    self._record(attrs, budget.name, scope, limit, used, "raise")
                    raise BudgetExceeded(budget.name, scope, limit, used, est.cost)
            if reservation is not None:
                call.reservation = reservation
                events, headroom = self._soft(outcome)
                if report is None:
                    report = headroom

        if est.model != model:
            kwargs["model"] = est.model
            call.model = est.model
            attrs[semconv.GEN_AI_REQUEST_MODEL] = est.model
            attrs[semconv.BUDGET_ORIGINAL_MODEL] = model
        if report is not None:
            self._record(attrs, *report)
        return events

    def _estimate(self, call: Any, model: str, estimate: Callable[[str], int], out_tokens: int) -> Estimate:
        input_tokens = int(math.ceil(estimate(model) * self.config.input_margin))
        cost = None
        if self.pricer is not None and model:
            priced = self.pricer.price(
                Usage(input_tokens=input_tokens, output_tokens=out_tokens),
                model,
                provider_id=call.pricing_provider,
                api_url=call.api_url,
                price_context=call.price_context,
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

    def _counters(self, attrs: Mapping[str, Any]) -> list[tuple[Budget, str, Counter]]:
        now = self.clock()
        found = []
        for budget in self.config.budgets:
            if budget.scope == "global":
                value, scope = "", "global"
            else:
                raw = attrs.get(_SCOPE_ATTRIBUTES[budget.scope])
                if raw is None or (budget.match is not None and raw != budget.match):
                    continue
                value, scope = str(raw), f"{budget.scope}={raw}"
            start, end, period_key = period_bounds(budget.period, now, self.tz)
            ttl = int((end - now).total_seconds()) + _GRACE_S
            key = f"{_KEY_PREFIX}{budget.name}:{period_key}:{value}"
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
        now = now or self.clock()
        now_ms = int(now.timestamp() * 1000)
        out = []
        for budget in self.config.budgets:
            start, end, period_key = period_bounds(budget.period, now, self.tz)
            prefix = f"{_KEY_PREFIX}{budget.name}:{period_key}:"
            if budget.scope == "global":
                values = [""]
            elif budget.match is not None:
                values = [budget.match]
            else:
                values = sorted(k[len(prefix) :] for k in self.store.keys(prefix))
            for value in values:
                used, reserved = self.store.read(prefix + value, now_ms)
                out.append(_status(budget, value, start, end, now, used / NANO, reserved / NANO))
        return out


def _status(
    budget: Budget, value: str, start: datetime, end: datetime, now: datetime, used: float, reserved: float
) -> BudgetStatus:
    elapsed_days = max((now - start).total_seconds(), 60.0) / 86_400
    rate = used / elapsed_days
    exhaustion: datetime | None = None
    if used >= budget.limit_usd:
        exhaustion = now
    elif rate > 0:
        when = now + timedelta(days=(budget.limit_usd - used) / rate)
        exhaustion = when if when < end else None
    return BudgetStatus(
        name=budget.name,
        scope=budget.scope,
        scope_value=value,
        period=budget.period,
        period_start=start,
        period_end=end,
        limit_usd=budget.limit_usd,
        used_usd=used,
        reserved_usd=reserved,
        burn_rate_usd_per_day=rate,
        projected_exhaustion=exhaustion,
    )


def status_rows(statuses: Iterable[BudgetStatus]) -> list[tuple[Any, ...]]:
    """Rows for the CLI table (same order as :data:`STATUS_COLUMNS`)."""
    return [
        (
            s.name,
            "global" if s.scope == "global" else f"{s.scope}={s.scope_value}",
            s.period,
            s.period_start.date().isoformat(),
            s.used_usd,
            s.limit_usd,
            s.used_usd / s.limit_usd if s.limit_usd else None,
            s.burn_rate_usd_per_day,
            s.projected_exhaustion.isoformat(timespec="minutes") if s.projected_exhaustion else None,
        )
        for s in statuses
    ]


STATUS_COLUMNS = [
    "budget",
    "scope",
    "period",
    "since",
    "used_usd",
    "limit_usd",
    "used_share",
    "usd_per_day",
    "exhausted_by",
]
