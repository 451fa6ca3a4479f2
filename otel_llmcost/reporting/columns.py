"""What a report column holds, how its header reads and how its values show, decided once.

A column's *kind* comes from its name (the SQL alias), by the first rule that matches:

==========  ===============================================================  ====================
kind        names                                                            shown as
==========  ===============================================================  ====================
``money``   ending in ``Usd`` (``CostUsd``, ``CostPerCallUsd``, ``used_usd``)  ``$1,234.56``, ``$0.0042``
``share``   ending in ``Share``, ``Rate`` or ``Headroom``                   ``44.5%``
``ms``      ending in ``Ms``                                                 ``1,234.5``
``time``    ``At``, ``Hour``, ``Day``, ``Timestamp``, ending in ``At`` or    ``2026-11-28 13:05``
            ``Seen``, ``since``, ``exhausted_by``
``tokens``  containing ``Tokens``                                            ``29,999,000``
``count``   ``Calls``, ``Errors``, ``Retries``, ``Items``, ``Tasks`` (or      ``1,234``
            ending in them), ending in ``Remaining``
``number``  ``Score``, ``Expected``, ``Observed``, ``PrefixesPerHour``      ``12.3``
``text``    everything else                                                  as stored
==========  ===============================================================  ====================

(:data:`_EXPLICIT_KINDS` holds the exceptions.) An unknown cost is never $0: a ``money`` cell
that is NULL/NaN, or that a row of only unpriced calls (``UnpricedCalls`` equal to ``Calls``)
computed, shows ``unknown`` (a ``Reported...`` amount is the provider's bill, and stays).

Headers: the name split into words (``MinRequestsHeadroom`` -> ``Min requests headroom``,
``used_usd`` -> ``Used``), a trailing ``Usd`` dropped (the ``$`` says it), ``Ms`` as ``(ms)``;
:data:`_EXPLICIT_HEADERS` renames the odd ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

KINDS = ("money", "share", "count", "tokens", "ms", "time", "number", "text")
NUMERIC_KINDS = frozenset(KINDS) - {"text"}
UNKNOWN = "unknown"

_EXPLICIT_KINDS = {
    "Score": "number",
    "Expected": "number",
    "Observed": "number",
    "PrefixesPerHour": "number",
    "since": "time",
    "exhausted_by": "time",
    "usd_per_day": "money",
    "PrefixTokens": "tokens",
    "MinCacheTokens": "tokens",
    "MinTokensRemaining": "tokens",
    "ItemsCited": "count",
    "DaysSeen": "number",
    "Requests": "count",
}
_TIME_NAMES = frozenset({"At", "Hour", "Day", "Timestamp", "Time"})
_COUNT_WORDS = ("Calls", "Errors", "Retries", "Items", "Tasks", "Remaining")

_EXPLICIT_HEADERS = {
    "ServiceName": "Service",
    "RequestModel": "Model",
    "CostUsd": "Cost",
    "CostPerCallUsd": "Cost per call",
    "CostPerSuccessUsd": "Cost per success",
    "WorstHourP99Ms": "p99 worst hour (ms)",
    "HitRate": "Cache hit rate",
    "ThrottledShare": "Throttled",
    "MinRequestsHeadroom": "Min request headroom",
    "MinRequestsRemaining": "Min requests left",
    "MinTokensRemaining": "Min tokens left",
    "SavingsPerDayUsd": "Savings per day",
    "TopPrefixShare": "Top prefix share",
    "PrefixHash": "Prefix",
    "RequestHash": "Request",
    "CallsWithCitations": "Calls citing",
    "ReportedSource": "Reported by",
    "MaxAbsDifferenceUsd": "Max difference",
    "usd_per_day": "Per day",
}

# Which columns go first when a table does not fit: lower goes first, ties from the right.
_PRIORITY_BY_NAME = {
    "ServiceName": 0,
    "Provider": 1,
    "PrefixHash": 1,
    "RequestHash": 1,
    "Cluster": 1,
    "ResponseModel": 1,
    "Dimension": 4,
    "Calls": 3,
    "State": 2,
    "Endpoint": 5,
    "RequestModel": 5,
    "Endpoints": 4,
    "Key": 5,
    "Kind": 5,
    "Feature": 5,
    "Why": 5,
    "Explanation": 5,
    "CostUsd": 5,
    "MonthlySavingUsd": 5,
    "Action": 5,
    "Model": 4,
    "Evidence": 2,
    "SeenSavingUsd": 1,
    "DaysSeen": 0,
}
_PRIORITY_BY_KIND = {"money": 4, "share": 3, "count": 2, "tokens": 1, "ms": 1, "time": 1, "number": 2, "text": 3}
# Long sentences: wrapped at word boundaries rather than cut.
PROSE = frozenset({"Why", "Explanation", "Endpoints", "explanation", "Evidence", "Action"})

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_|$)|[A-Z]?[a-z]+|\d+|[A-Z]+")


def kind(name: str) -> str:
    """The kind of the column ``name`` (one of :data:`KINDS`), by the rules above."""
    if name in _EXPLICIT_KINDS:
        return _EXPLICIT_KINDS[name]
    bare = name.replace("_", "")
    lower = bare.lower()
    if lower.endswith("usd"):
        return "money"
    if lower.endswith(("share", "rate", "headroom")):
        return "share"
    if bare.endswith("Ms") or name.endswith("_ms"):
        return "ms"
    if name in _TIME_NAMES or bare.endswith(("At", "Seen")) or name.endswith(("_at", "_seen")):
        return "time"
    if "tokens" in lower:
        return "tokens"
    if any(bare.endswith(word) or lower.endswith(word.lower()) for word in _COUNT_WORDS):
        return "count"
    return "text"


def header(name: str) -> str:
    """The column's header for people: ``MinRequestsRemaining`` -> ``Min requests left``."""
    if name in _EXPLICIT_HEADERS:
        return _EXPLICIT_HEADERS[name]
    words = [w for part in name.split("_") for w in (_WORD.findall(part) or [part])]
    if len(words) > 1 and words[-1].lower() == "usd":
        words = words[:-1]
    if len(words) > 1 and words[-1] == "Ms":
        words[-1] = "(ms)"
    shown = [w if (w.isupper() and len(w) > 1) else w.lower() for w in words]
    text = " ".join(shown)
    return text[:1].upper() + text[1:]


def priority(name: str) -> int:
    """How much a column is worth keeping when the table is too wide (higher stays longer)."""
    return _PRIORITY_BY_NAME.get(name, _PRIORITY_BY_KIND[kind(name)])


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, Decimal)):
        number = float(value)
        return None if math.isnan(number) else number
    return None


def money(value: float) -> str:
    """``$1,234.56``; under a cent, two significant digits (``$0.0042``), at most six decimals."""
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if math.isinf(amount):
        return f"{sign}$inf"
    if amount < 0.0000005:  # below a millionth of a dollar: float noise, not money
        return "$0.00"
    if amount >= 0.01:
        return f"{sign}${amount:,.2f}"
    digits = min(6, max(2, 1 - math.floor(math.log10(amount))))
    return f"{sign}${amount:.{digits}f}"


def format_value(column_kind: str, value: Any) -> str:
    """``value`` of a ``column_kind`` column as a table shows it."""
    number = _number(value)
    if column_kind == "money":
        return UNKNOWN if number is None else money(number)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if column_kind == "time" and isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if number is None:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if column_kind == "share":
        return f"{number * 100:.1f}%"
    if column_kind in ("count", "tokens") or (column_kind in ("text", "number") and isinstance(value, int)):
        return f"{number:,.0f}" if number.is_integer() else f"{number:,.1f}"
    if column_kind == "ms":
        return f"{number:,.1f}"
    return _general(number)


def _general(number: float) -> str:
    if number == 0:
        return "0"
    if abs(number) >= 100:
        return f"{number:,.0f}"
    if abs(number) >= 1:
        return f"{number:,.2f}"
    return f"{number:.3g}"


def unknown_cost(columns: Sequence[str], row: Mapping[str, Any]) -> frozenset[str]:
    """The money columns of ``row`` that are unknown because every call in it is unpriced."""
    calls, unpriced = row.get("Calls"), row.get("UnpricedCalls")
    if not isinstance(calls, int) or not isinstance(unpriced, int) or calls <= 0 or unpriced < calls:
        return frozenset()
    return frozenset(c for c in columns if kind(c) == "money" and not c.startswith("Reported"))


# Attribution columns: an empty value is a call that carried none (a background job has no
# endpoint), shown so rather than as a blank cell that reads like a rendering fault.
_ATTRIBUTION = frozenset({"Endpoint", "Feature", "Team", "User", "Session"})
NOT_SET = "(not set)"


def display_row(columns: Sequence[str], row: Sequence[Any]) -> list[str]:
    """``row`` formatted column by column (the unknown-cost rule applied)."""
    unknown = unknown_cost(columns, dict(zip(columns, row, strict=True)))
    return [
        UNKNOWN if c in unknown else NOT_SET if c in _ATTRIBUTION and v == "" else format_value(kind(c), v)
        for c, v in zip(columns, row, strict=True)
    ]
