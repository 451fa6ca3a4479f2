"""Budgets: caps on what LLM calls may cost, enforced before a call is sent.

- :mod:`.config`: what a budgets file holds (per request, per period and scope, thresholds and actions);
- :mod:`.loading`: reading a budgets file strictly (``FILE:LINE`` errors), and at ``instrument()``;
- :mod:`.periods`: days, weeks and months in the budgets' time zone;
- :mod:`.stores`: counters in memory or in Redis (atomic Lua scripts, ``*.lua``; timeouts
  and a circuit breaker);
- :mod:`.enforcement`: reserve, notify, downgrade or refuse a call, reconcile it when it ends;
- :mod:`.status`: what each budget has used, and its limits for ClickHouse.
"""

from .config import Budget, BudgetConfig, RequestLimits, Threshold
from .enforcement import BudgetExceeded, Budgets, BudgetStoreUnavailable, Decision, PlannedCall, Reservation
from .loading import budgets_from_settings, check_budgets_file, load_budget_config
from .periods import period_bounds
from .status import STATUS_COLUMNS, BudgetStatus, status_rows
from .stores import Breaker, Counter, MemoryStore, RedisStore, StoreUnavailable, open_store

__all__ = [
    "STATUS_COLUMNS",
    "Budget",
    "BudgetConfig",
    "Breaker",
    "BudgetExceeded",
    "BudgetStatus",
    "BudgetStoreUnavailable",
    "Budgets",
    "Counter",
    "Decision",
    "MemoryStore",
    "PlannedCall",
    "RedisStore",
    "RequestLimits",
    "Reservation",
    "StoreUnavailable",
    "budgets_from_settings",
    "check_budgets_file",
    "load_budget_config",
    "Threshold",
    "open_store",
    "period_bounds",
    "status_rows",
]
