"""The budgets file: what may be spent, per request and per period, and what happens at the limit.

File (``OTEL_LLMCOST_BUDGETS_FILE``, YAML or JSON)::

    timezone: Europe/Berlin
    store: redis://localhost:6379/0         # default: memory (one process)
    soft_threshold: 0.8
    request: {max_total_tokens: 50000, max_cost_usd: 0.50}
    budgets:
      - {name: monthly, scope: global, period: month, limit_usd: 2000}
      - {name: per-user, scope: user, period: day, limit_usd: 2, action: downgrade, downgrade_to: gpt-4o-mini}
      - {name: search, scope: feature, match: search, period: week, limit_usd: 100}
      - name: ladder                        # several thresholds, each with its action
        scope: team
        limit_usd: 500
        thresholds:
          - {at: 0.70, action: notify}
          - {at: 0.85, action: downgrade, downgrade_to: gpt-4o-mini}
          - {at: 0.95, action: refuse}
      - {name: tokens, scope: session, period: day, limit_tokens: 200000, action: notify}  # alert only

A budget without ``thresholds`` has the ladder ``soft_threshold: notify`` then, at the
limit, its ``action`` (``raise``/``refuse``, ``downgrade`` with ``downgrade_to``, or
``notify``: alert only, never refuses): files written before ladders mean what they did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

SCOPES = ("global", "user", "feature", "team", "endpoint", "session", "tier")
PERIODS = ("day", "week", "month")
# raise and refuse are one action (raise is its name from before ladders); notify never refuses.
ACTIONS = ("raise", "refuse", "downgrade", "notify")
LADDER_ACTIONS = ("notify", "downgrade", "refuse")


@dataclass(frozen=True)
class RequestLimits:
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_total_tokens: int | None = None
    max_cost_usd: float | None = None
    action: str = "raise"
    downgrade_to: str | None = None
    # The estimate above this share of a limit gets a threshold_crossed event (the call is sent).
    soft_threshold: float | None = None

    def __post_init__(self) -> None:
        _check_action("request", self.action, self.downgrade_to)
        _check_share("request", "soft_threshold", self.soft_threshold, allow_none=True)


@dataclass(frozen=True)
class Threshold:
    """One rung of a budget's ladder: at this share of the limit, do ``action``.

    ``notify`` applies to calls that reach the share (a span event, a log line when a call
    crosses it, the ``llmcost.budget.events`` metric); ``downgrade`` and ``refuse`` to calls
    that would take spend past it.
    """

    at: float
    action: Literal["notify", "downgrade", "refuse"] = "notify"
    downgrade_to: str | None = None


@dataclass(frozen=True)
class Budget:
    name: str
    limit_usd: float | None = None
    period: str = "month"
    scope: str = "global"
    match: str | None = None
    action: str = "raise"
    downgrade_to: str | None = None
    soft_threshold: float | None = None  # None: the config's
    limit_tokens: int | None = None  # a token budget: input + output tokens instead of USD
    thresholds: tuple[Threshold, ...] = ()  # the ladder; empty: soft_threshold, then action at the limit

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"budget {self.name!r}: scope must be one of {SCOPES}, got {self.scope!r}")
        if self.period not in PERIODS:
            raise ValueError(f"budget {self.name!r}: period must be one of {PERIODS}, got {self.period!r}")
        _check_action(self.name, self.action, self.downgrade_to)
        _check_limits(self)
        _check_share(self.name, "soft_threshold", self.soft_threshold, allow_none=True)
        _check_ladder(self)
        if ":" in self.name:
            raise ValueError(f"budget {self.name!r}: the name may not contain ':'")

    @property
    def unit(self) -> str:
        """``"usd"`` or ``"tokens"``: what the counter counts."""
        return "tokens" if self.limit_tokens is not None else "usd"

    @property
    def limit(self) -> float:
        """The limit in the budget's unit."""
        return float(self.limit_tokens if self.limit_tokens is not None else self.limit_usd or 0.0)

    def ladder(self, soft_threshold: float) -> tuple[Threshold, ...]:
        """The rungs, lowest first; a budget without ``thresholds`` gets its pre-ladder meaning."""
        if self.thresholds:
            return tuple(sorted(self.thresholds, key=lambda t: t.at))
        soft = self.soft_threshold if self.soft_threshold is not None else soft_threshold
        rungs = [Threshold(soft, "notify")]
        if self.action == "notify":
            rungs.append(Threshold(1.0, "notify"))
        elif self.action == "downgrade":  # downgrade when the call does not fit, refuse when even that does not
            rungs += [Threshold(1.0, "downgrade", self.downgrade_to), Threshold(1.0, "refuse")]
        else:
            rungs.append(Threshold(1.0, "refuse"))
        return tuple(rungs)


def _check_action(name: str, action: str, downgrade_to: str | None) -> None:
    if action not in ACTIONS:
        raise ValueError(f"budget {name!r}: action must be one of {ACTIONS}, got {action!r}")
    if action == "downgrade" and not downgrade_to:
        raise ValueError(f"budget {name!r}: action 'downgrade' needs downgrade_to")


def _check_limits(budget: Budget) -> None:
    usd, tokens = budget.limit_usd, budget.limit_tokens
    if (usd is None) == (tokens is None):
        raise ValueError(f"budget {budget.name!r}: set exactly one of limit_usd and limit_tokens")
    if usd is not None and not (_is_number(usd) and usd >= 0):
        raise ValueError(f"budget {budget.name!r}: limit_usd must be a non-negative number")
    if tokens is not None and not (isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0):
        raise ValueError(f"budget {budget.name!r}: limit_tokens must be a non-negative integer")


def _check_ladder(budget: Budget) -> None:
    if not budget.thresholds:
        return
    if budget.action != "raise" or budget.downgrade_to is not None or budget.soft_threshold is not None:
        raise ValueError(
            f"budget {budget.name!r}: with thresholds, put every action in the ladder "
            "(action, downgrade_to and soft_threshold are for budgets without one)"
        )
    for rung in budget.thresholds:
        if not isinstance(rung, Threshold):
            raise ValueError(f"budget {budget.name!r}: thresholds must be Threshold entries, got {rung!r}")
        _check_share(budget.name, "thresholds.at", rung.at, allow_none=False)
        if rung.action not in LADDER_ACTIONS:
            raise ValueError(f"budget {budget.name!r}: a threshold's action must be one of {LADDER_ACTIONS}")
        if rung.action == "downgrade" and not rung.downgrade_to:
            raise ValueError(f"budget {budget.name!r}: the downgrade threshold at {rung.at} needs downgrade_to")


def _check_share(name: str, key: str, value: float | None, *, allow_none: bool) -> None:
    """Thresholds are shares of a limit: above 0, at most 1."""
    if value is None and allow_none:
        return
    if not (_is_number(value) and 0 < float(value) <= 1):  # type: ignore[arg-type]
        raise ValueError(f"budget {name!r}: {key} must be a share of the limit in (0, 1], got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
    # Redis: each connect and each command gives up after these; the breaker then skips the
    # store for breaker_cooldown_s once breaker_failures calls in a row found it unavailable.
    store_connect_timeout_ms: int = 200
    store_timeout_ms: int = 250
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0

    def __post_init__(self) -> None:
        _check_share("budgets", "soft_threshold", self.soft_threshold, allow_none=False)
        for key in ("store_connect_timeout_ms", "store_timeout_ms", "breaker_failures"):
            value = getattr(self, key)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"budgets: {key} must be a positive integer, got {value!r}")
        if not (_is_number(self.breaker_cooldown_s) and self.breaker_cooldown_s > 0):
            raise ValueError(f"budgets: breaker_cooldown_s must be a positive number, got {self.breaker_cooldown_s!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BudgetConfig:
        request = data.get("request")
        budgets = []
        for index, entry in enumerate(data.get("budgets") or ()):
            entry = dict(entry)
            entry.setdefault("name", f"budget-{index + 1}")
            entry["thresholds"] = tuple(_threshold(t) for t in entry.get("thresholds") or ())
            budgets.append(Budget(**entry))
        names = [b.name for b in budgets]
        if len(set(names)) != len(names):
            raise ValueError(f"budget names must be unique: {names}")
        limits = RequestLimits(**request) if request else None
        known = {"budgets", "request", "timezone", "soft_threshold", "store", "default_max_output_tokens"}
        known |= {"input_margin", "lease_s", "fail_open", *_STORE_KEYS}
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
            **{key: data[key] for key in _STORE_KEYS if key in data},
        )
        ZoneInfo(config.timezone)  # fail early on a bad zone name
        return config


_STORE_KEYS = ("store_connect_timeout_ms", "store_timeout_ms", "breaker_failures", "breaker_cooldown_s")


def _threshold(entry: Any) -> Threshold:
    if isinstance(entry, Threshold):
        return entry
    if not isinstance(entry, Mapping):
        raise ValueError(f"a threshold is a mapping like {{at: 0.7, action: notify}}, got {entry!r}")
    return Threshold(**entry)
