"""Budgets: caps on what LLM calls may cost, enforced before a call is sent.

- :mod:`.config`: the budgets file (per request, per period and scope, and the action);
- :mod:`.periods`: days, weeks and months in the budgets' time zone;
- :mod:`.stores`: counters in memory or in Redis (atomic Lua scripts, ``*.lua``);
- :mod:`.enforcement`: reserve, refuse or downgrade a call, reconcile it when it ends;
- :mod:`.status`: what each budget has used, and its limits for ClickHouse.
"""

from .config import Budget, BudgetConfig, RequestLimits
from .enforcement import BudgetExceeded, Budgets, Decision, PlannedCall, Reservation
from .periods import period_bounds
from .status import STATUS_COLUMNS, BudgetStatus, status_rows
from .stores import Counter, MemoryStore, RedisStore, open_store

__all__ = [
    "STATUS_COLUMNS",
    "Budget",
    "BudgetConfig",
    "BudgetExceeded",
    "BudgetStatus",
    "Budgets",
    "Counter",
    "Decision",
    "MemoryStore",
    "PlannedCall",
    "RedisStore",
    "RequestLimits",
    "Reservation",
    "open_store",
    "period_bounds",
    "status_rows",
]
