"""Per-call cost of the in-memory budget store as the number of counters grows.

A per-user budget keeps one counter per user. The store must stay O(1) per call however
many users it has seen: this times the budget check and reconciliation of one call
(``Budgets.check`` + ``Reservation.commit``) with a small baseline of counters and with a
large one, in the same run, and prints the ratio (about 1.0 when the cost does not grow).

    python benchmarks/budget_store.py [--small 100] [--large 100000] [--calls 20000]
"""

from __future__ import annotations

import argparse
import random
import time
from types import SimpleNamespace
from typing import Any


class _FlatPricer:
    """Every call costs the same: the benchmark times the store, not pricing."""

    def price(self, usage: Any, model: str, **_: Any) -> Any:
        return SimpleNamespace(total=1e-6)


def _budgets() -> Any:
    from otel_llmcost.budgets import BudgetConfig, Budgets

    config = BudgetConfig.from_dict({"budgets": [{"name": "per-user", "scope": "user", "limit_usd": 1_000.0}]})
    return Budgets(config, pricer=_FlatPricer())


def _call(user: str) -> Any:
    from otel_llmcost.budgets import PlannedCall

    return PlannedCall(
        model="m", max_output_tokens=10, scope_values={"llmcost.user": user}, prompt_tokens=lambda model: 10
    )


def per_call_us(counters: int, calls: int, seed: int = 7) -> float:
    """Microseconds per check + commit with ``counters`` users already counted."""
    budgets = _budgets()
    for user in range(counters):  # one counter per user, as a long-running service accumulates
        budgets.check(_call(f"u{user}")).reservation.commit(1e-6)
    rng = random.Random(seed)
    planned = [_call(f"u{rng.randrange(counters)}") for _ in range(calls)]
    start = time.perf_counter()
    for call in planned:
        budgets.check(call).reservation.commit(1e-6)
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    small = min(per_call_us(args.small, args.calls) for _ in range(args.repeat))
    large = min(per_call_us(args.large, args.calls) for _ in range(args.repeat))
    print("| counters | us per call |")
    print("|---:|---:|")
    print(f"| {args.small} | {small:.1f} |")
    print(f"| {args.large} | {large:.1f} |")
    print(f"ratio large/small: {large / small:.2f}")


if __name__ == "__main__":
    main()
