"""The cost a gateway or provider says it billed, read from the response.

Some OpenAI-compatible hosts return the billed amount with the answer:

* OpenRouter (and gateways that copy its shape) put ``usage.cost`` (USD) in the body,
  in the last chunk of a stream too;
* the LiteLLM proxy sends an ``x-litellm-response-cost`` header (USD).

We record it as ``llmcost.cost.reported`` *beside* our own price, never instead of it
and never added to it: ``llmcost.cost.total`` stays what the price catalogue says, so
sums never double count, and ``v_cost_reported_disagreements`` shows where the two
differ (a negotiated discount, a missing price variant, or a stale catalogue).
"""

from __future__ import annotations

import math
from typing import Any

from .usage import field

# Response headers that carry the billed cost in USD, in order of preference.
COST_HEADERS = ("x-litellm-response-cost",)
SOURCE_BODY = "usage.cost"


def _amount(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value < 1e9:
        return float(value)
    return None


def from_usage(usage: Any) -> float | None:
    """``usage.cost`` of an OpenAI-shaped usage object or dict, when the host sent one.

    SDK models (pydantic, ``extra="allow"``) keep fields they do not declare in
    ``__pydantic_extra__``; reading that dict avoids a failing ``__getattr__`` (several
    microseconds) on every call to a host that sends no cost.
    """
    if usage is None:
        return None
    if isinstance(usage, dict):
        return _amount(usage.get("cost"))
    extra = getattr(usage, "__pydantic_extra__", None)
    if isinstance(extra, dict):
        return _amount(extra.get("cost"))
    return _amount(field(usage, "cost"))


def from_headers(headers: Any) -> tuple[float, str] | None:
    """(USD, source) from a cost header, or None."""
    if headers is None:
        return None
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name in COST_HEADERS:
        amount = _amount(get(name))
        if amount is not None:
            return amount, f"header {name}"
    return None
