"""Expand a Grafana ClickHouse-datasource query the way Grafana would, to run it anywhere.

The dashboards in ``dashboards/`` are the one place their SQL lives. ``otel-llmcost report
--html`` and the tests run that same SQL outside Grafana, so the text must be expanded
exactly as the official plugin (grafana/clickhouse-datasource) expands it, in the same
three steps and order:

1. ``$__conditionalAll(phrase, $var)`` (plugin frontend, ``applyConditionalAll``):
   ``1=1`` when ``var`` is All or empty, else ``phrase``.
2. Template variables (Grafana's template service, with the plugin's ``format``):
   ``$var``, ``${var}``, ``[[var]]`` and ``${var:format}``. With no format a multi-value
   becomes ``'a','b'`` and a single value stays raw (the plugin's own formatter); an All
   selection becomes every option, or the variable's custom ``allValue`` verbatim.
   Unknown names are left alone, as Grafana does.
3. Backend macros (``pkg/macros/macros.go``): ``$__timeFilter(col)``,
   ``$__timeFilter_ms(col)``, ``$__dateFilter(col)``, ``$__dateTimeFilter(d, t)`` / ``$__dt``,
   ``$__timeFrom(col)``, ``$__timeTo(col)``, ``$__fromTime``, ``$__toTime``,
   ``$__fromTime_ms``, ``$__toTime_ms``, ``$__timeInterval(col)``, ``$__timeInterval_ms(col)``,
   ``$__interval_s``. Seconds are whole Unix seconds (``toDateTime(<unix>)``), intervals are
   at least 1 s. A ``$__`` macro this module does not know is an error, not silent text.

The interval is Grafana's: (to - from) / max data points, rounded to a "nice" step
(``rangeutil.roundInterval``), never below the panel's min interval.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

ALL = "$__all"

__all__ = [
    "ALL",
    "TimeRange",
    "Variable",
    "expand",
    "interval_seconds",
    "parse_duration",
    "referenced_variables",
]


@dataclass(frozen=True)
class TimeRange:
    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if value.tzinfo is None:
                raise ValueError("TimeRange needs timezone-aware datetimes")
        if self.end < self.start:
            raise ValueError("TimeRange end is before start")

    @classmethod
    def last(cls, seconds: float, *, now: dt.datetime | None = None) -> TimeRange:
        end = now or dt.datetime.now(dt.timezone.utc)
        return cls(end - dt.timedelta(seconds=seconds), end)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Variable:
    """A template variable's current state: ``value`` is one string, a list, or ``ALL``."""

    name: str
    value: str | Sequence[str] = ALL
    options: Sequence[str] = field(default_factory=tuple)
    all_value: str | None = None  # Grafana's "Custom all value"

    def is_all(self) -> bool:
        values = [self.value] if isinstance(self.value, str) else list(self.value)
        return values == [ALL]

    def resolved(self) -> str | list[str]:
        """The value Grafana formats: the options for All, else the selection."""
        if self.is_all():
            return list(self.options)
        return self.value if isinstance(self.value, str) else list(self.value)


# --- interval -------------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

# Grafana rangeutil.roundInterval: (upper bound of the raw interval in ms, rounded step in ms)
_ROUND_STEPS = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1500, 1000),
    (3500, 2000),
    (7500, 5000),
    (12500, 10000),
    (17500, 15000),
    (25000, 20000),
    (45000, 30000),
    (90000, 60000),
    (210000, 120000),
    (450000, 300000),
    (750000, 600000),
    (1050000, 900000),
    (1500000, 1200000),
    (2700000, 1800000),
    (5400000, 3600000),
    (9000000, 7200000),
    (16200000, 10800000),
    (32400000, 21600000),
    (86400000, 43200000),
    (604800000, 86400000),
    (1814400000, 604800000),
    (3628800000, 2592000000),
)


def parse_duration(text: str) -> float:
    """Seconds in a Grafana duration such as ``1h``, ``30s``, ``500ms`` (a bare number is seconds)."""
    match = re.fullmatch(r"\s*>?\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*", text or "")
    if not match:
        raise ValueError(f"not a Grafana duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def interval_seconds(time_range: TimeRange, *, max_data_points: int = 1000, min_interval: str | None = None) -> int:
    """The ``$__interval`` Grafana would pick for this range, in whole seconds (>= 1)."""
    raw_ms = time_range.seconds * 1000 / max(max_data_points, 1)
    step_ms: float = next((step for bound, step in _ROUND_STEPS if raw_ms <= bound), 31536000000)
    if min_interval:
        step_ms = max(step_ms, parse_duration(min_interval) * 1000)
    return max(int(step_ms // 1000), 1)


# --- step 1: $__conditionalAll ----------------------------------------------------------

_CONDITIONAL_ALL = "$__conditionalAll("
_VAR_IN_ARG = re.compile(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+")


def _macro_args(text: str, open_paren: int) -> tuple[list[str], int]:
    """Arguments of the call whose ``(`` is at ``open_paren``: split at top-level commas."""
    depth, quote, start, args = 0, "", open_paren + 1, []
    i = open_paren - 1
    while i + 1 < len(text):
        i += 1
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1  # skip the escaped character
            elif ch == quote:
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(text[start:i])
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append(text[start:i])
            start = i + 1
    raise ValueError(f"unbalanced parentheses after position {open_paren}: {text[open_paren : open_paren + 60]!r}")


def _apply_conditional_all(sql: str, variables: Mapping[str, Variable]) -> str:
    index = sql.rfind(_CONDITIONAL_ALL)
    while index != -1:
        args, end = _macro_args(sql, index + len(_CONDITIONAL_ALL) - 1)
        if len(args) != 2:
            raise ValueError(f"$__conditionalAll takes 2 arguments, got {len(args)}")
        phrase = args[0]
        match = _VAR_IN_ARG.search(args[1].strip())
        if match:
            var = variables.get(match.group(0))
            if var is None:
                raise ValueError(f"$__conditionalAll refers to unknown variable ${match.group(0)}")
            current = var.value if isinstance(var.value, str) else ",".join(var.value)
            if current in ("", ALL):
                phrase = "1=1"
        sql = sql[:index] + phrase + sql[end:]
        index = sql.rfind(_CONDITIONAL_ALL)
    return sql


# --- step 2: template variables ---------------------------------------------------------

# Grafana's variableRegex: $var | [[var(:fmt)]] | ${var(.field)(:fmt)}
_TEMPLATE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def _quote(values: list[str], quote: str, escape: str) -> str:
    return ",".join(f"{quote}{v.replace(quote, escape + quote)}{quote}" for v in values)


def _format(value: str | list[str], fmt: str | None) -> str:
    values = [value] if isinstance(value, str) else list(value)
    if fmt is None:  # the ClickHouse plugin's own formatter
        return value if isinstance(value, str) else "'" + "','".join(values) + "'"
    if fmt == "singlequote":
        return _quote(values, "'", "\\")
    if fmt == "doublequote":
        return _quote(values, '"', "\\")
    if fmt == "sqlstring":
        return _quote(values, "'", "'")
    if fmt in ("csv", "raw", "text"):
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    raise ValueError(f"unsupported variable format :{fmt}")


def _builtin_variables(time_range: TimeRange, interval_s: int) -> dict[str, str]:
    return {
        "__from": str(int(time_range.start.timestamp() * 1000)),
        "__to": str(int(time_range.end.timestamp() * 1000)),
        "__interval_ms": str(interval_s * 1000),
        "__interval": f"{interval_s}s",
        "__range_s": str(int(time_range.seconds)),
    }


def _apply_template_variables(
    sql: str, variables: Mapping[str, Variable], time_range: TimeRange, interval_s: int
) -> str:
    builtins = _builtin_variables(time_range, interval_s)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins:
            return builtins[name]
        var = variables.get(name)
        if var is None:
            return match.group(0)
        if var.is_all() and var.all_value is not None:
            return var.all_value
        return _format(var.resolved(), fmt)

    return _TEMPLATE.sub(replace, sql)


# --- step 3: backend macros -------------------------------------------------------------

_BACKEND = re.compile(r"\$__(\w+)")


def _date_time(t: dt.datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _date_time64(t: dt.datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: dt.datetime) -> str:
    return f"toDate('{t.astimezone(dt.timezone.utc):%Y-%m-%d}')"


def _backend_macro(name: str, args: list[str], tr: TimeRange, interval_s: int) -> str:
    def need(count: int) -> list[str]:
        if len(args) != count:
            raise ValueError(f"$__{name} expected {count} argument(s), received {len(args)}")
        return [a.strip() for a in args]

    start, end = tr.start, tr.end
    if name in ("fromTime", "toTime", "fromTime_ms", "toTime_ms", "interval_s"):
        return {
            "fromTime": lambda: _date_time(start),
            "toTime": lambda: _date_time(end),
            "fromTime_ms": lambda: _date_time64(start),
            "toTime_ms": lambda: _date_time64(end),
            "interval_s": lambda: str(max(interval_s, 1)),
        }[name]()
    if name == "timeFilter":
        (col,) = need(1)
        return f"{col} >= {_date_time(start)} AND {col} <= {_date_time(end)}"
    if name == "timeFilter_ms":
        (col,) = need(1)
        return f"{col} >= {_date_time64(start)} AND {col} <= {_date_time64(end)}"
    if name == "dateFilter":
        (col,) = need(1)
        return f"{col} >= {_date(start)} AND {col} <= {_date(end)}"
    if name in ("dateTimeFilter", "dt"):
        day, time = need(2)
        return (
            f"({day} >= {_date(start)} AND {day} <= {_date(end)}) AND "
            f"({time} >= {_date_time(start)} AND {time} <= {_date_time(end)})"
        )
    if name == "timeFrom":
        (col,) = need(1)
        return f"{col} >= {_date_time(start)}"
    if name == "timeTo":
        (col,) = need(1)
        return f"{col} <= {_date_time(end)}"
    if name == "timeInterval":
        (col,) = need(1)
        return f"toStartOfInterval(toDateTime({col}), INTERVAL {max(interval_s, 1)} second)"
    if name == "timeInterval_ms":
        (col,) = need(1)
        return f"toStartOfInterval(toDateTime64({col}, 3), INTERVAL {max(interval_s * 1000, 1)} millisecond)"
    raise ValueError(f"unknown macro $__{name}")


_TAKES_ARGS = {"timeFilter", "timeFilter_ms", "dateFilter", "dateTimeFilter", "dt", "timeFrom", "timeTo"}
_TAKES_ARGS |= {"timeInterval", "timeInterval_ms"}


def _apply_backend_macros(sql: str, time_range: TimeRange, interval_s: int) -> str:
    out: list[str] = []
    pos = 0
    for match in _BACKEND.finditer(sql):
        if match.start() < pos:
            continue
        name = match.group(1)
        out.append(sql[pos : match.start()])
        if name in _TAKES_ARGS:
            if match.end() >= len(sql) or sql[match.end()] != "(":
                raise ValueError(f"$__{name} needs arguments: $__{name}(column)")
            args, pos = _macro_args(sql, match.end())
        else:
            args, pos = [], match.end()
        out.append(_backend_macro(name, args, time_range, interval_s))
    out.append(sql[pos:])
    return "".join(out)


# --- public -----------------------------------------------------------------------------


def expand(
    sql: str,
    *,
    time_range: TimeRange,
    interval_s: int = 60,
    variables: Mapping[str, Variable] | Sequence[Variable] = (),
) -> str:
    """``sql`` as the ClickHouse plugin would send it to the server."""
    if not isinstance(variables, Mapping):
        variables = {v.name: v for v in variables}
    sql = _apply_conditional_all(sql, variables)
    sql = _apply_template_variables(sql, variables, time_range, interval_s)
    return _apply_backend_macros(sql, time_range, interval_s)


def referenced_variables(sql: str) -> set[str]:
    """Names of template variables (not ``$__`` built-ins or macros) that ``sql`` refers to."""
    names = {m.group(1) or m.group(2) or m.group(4) for m in _TEMPLATE.finditer(sql)}
    return {n for n in names if n and not n.startswith("__")}
