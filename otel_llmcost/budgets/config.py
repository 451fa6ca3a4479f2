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
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

SCOPES = ("global", "user", "feature", "team", "endpoint")
PERIODS = ("day", "week", "month")
ACTIONS = ("raise", "downgrade")


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
