"""Price a normalized :class:`~otel_llmcost.usage.Usage` in USD.

Prices come from the offline genai-prices database (no network: the snapshot ships
inside the package) or, first, from a user override file for fine-tuned models and
negotiated rates. A model with no price is *unpriced* (``None``), never a silent 0.

Why we do not call ``genai_prices.calc_price`` per call: it re-resolves the model on
every call (~50 us), and it returns only input/output/total while our spans carry
the cost of each part (uncached input, cache read, cache write, output) and the
savings from caching. So we resolve the model once (cached), ask genai-prices for
the prices in force (``ModelInfo.get_prices`` applies dated and time-of-day prices
and price variants such as ``service_tier`` or batch) and apply its own
``calc_unit_price`` for tiers. ``tests/test_pricing.py`` checks that our total equals
``genai_prices.calc_price`` for every shape of usage.

Override file (``OTEL_LLMCOST_PRICES_FILE``, YAML or JSON), same units as genai-prices
(USD per million tokens)::

    models:
      - match: "ft:gpt-4o-mini:acme:*"     # fnmatch pattern on the model id
        provider: openai                   # optional: only for this provider
        input_mtok: 0.30
        output_mtok: 1.20
        cache_read_mtok: 0.15              # optional, defaults to input_mtok
        cache_write_mtok: 0.375            # optional (5-minute writes), defaults to input_mtok
        cache_write_1h_mtok: 0.60          # optional, defaults to cache_write_mtok
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from .usage import Usage

logger = logging.getLogger(__name__)

PRICES_FILE_ENV = "OTEL_LLMCOST_PRICES_FILE"
_PER_MTOK = Decimal(1_000_000)
RATES_TTL_S = 60.0
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Cost:
    """What one call cost, in USD, split by part; ``total`` is the sum of the parts."""

    total: float
    input: float  # uncached input only
    output: float
    cache_read: float
    cache_write: float
    savings: float  # what the call would have cost with no caching, minus what it cost
    write_premium: float  # what cache writes cost above the plain input price
    breakeven_reads: float | None  # cache reads needed to pay back the write premium
    model_id: str
    provider_id: str
    source: str


@dataclass(frozen=True, slots=True)
class _Rates:
    """Per-million-token prices in force for one call (Decimal or genai-prices TieredPrices)."""

    input: Any
    output: Any
    cache_read: Any
    cache_write_5m: Any
    cache_write_1h: Any
    reasoning: Any
    # Per-token USD floats (input, output, cache_read, cache_write_5m, cache_write_1h, reasoning)
    # when no rate is tiered; None otherwise.
    flat: tuple[float, ...] | None = None


class _Override:
    __slots__ = ("pattern", "provider", "rates")

    def __init__(self, pattern: str, provider: str | None, rates: _Rates) -> None:
        self.pattern = pattern
        self.provider = provider
        self.rates = rates


def _genai_prices_version() -> str:
    try:
        from importlib.metadata import version

        return f"genai-prices {version('genai-prices')}"
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "genai-prices"


def _unit_cost(price: Any, count: int, total_input: int) -> Decimal:
    if not count or price is None:
        return _ZERO
    from genai_prices.types import calc_unit_price

    return calc_unit_price(price, count, total_input, 1_000_000)


class Pricer:
    """Resolves models to rates and prices usages. Thread-safe; one per process is enough."""

    def __init__(self, overrides_path: str | os.PathLike[str] | None = None) -> None:
        self._source_db = _genai_prices_version()
        self._overrides: list[_Override] = []
        self._overrides_source = ""
        path = overrides_path if overrides_path is not None else os.environ.get(PRICES_FILE_ENV)
        if path:
            self.load_overrides(path)
        self._lookup = lru_cache(maxsize=1024)(self._lookup_uncached)
        # Rates in force per (model, provider, url, variant), kept for RATES_TTL_S: resolving
        # them costs more than the rest of a call's pricing. The TTL bounds how late a dated
        # or time-of-day price change (e.g. an off-peak discount) is picked up.
        self._rates: dict[tuple[Any, ...], tuple[float, Any]] = {}

    # --- overrides --------------------------------------------------------------

    def load_overrides(self, path: str | os.PathLike[str]) -> None:
        """Load an override file; a broken file is logged and ignored, never fatal."""
        try:
            text = Path(path).read_text(encoding="utf-8")
            data = json.loads(text) if str(path).endswith(".json") else _load_yaml(text)
            self._overrides = [_parse_override(entry) for entry in (data or {}).get("models", [])]
            self._overrides_source = f"override {Path(path).name}"
        except Exception as exc:
            logger.warning("otel-llmcost: ignoring price override file %s: %s", path, exc)
            self._overrides = []

    def _find_override(self, model: str, provider_id: str | None) -> _Override | None:
        for override in self._overrides:
            if override.provider and provider_id and override.provider != provider_id:
                continue
            if fnmatch.fnmatchcase(model, override.pattern) or fnmatch.fnmatchcase(model.lower(), override.pattern):
                return override
        return None

    # --- model resolution ---------------------------------------------------------

    def _lookup_uncached(self, model: str, provider_id: str | None, api_url: str | None) -> tuple[Any, Any] | None:
        """(provider, model_info) from genai-prices, or None when the model has no unambiguous price."""
        from genai_prices import data_snapshot

        snapshot = data_snapshot.get_snapshot()
        if provider_id or api_url:
            try:
                return snapshot.find_provider_model(model, None, provider_id, None if provider_id else api_url)
            except LookupError:
                if provider_id:
                    return None
        # Unknown host (self-hosted gateway, vLLM, a proxy). Price the model only when its id
        # is unambiguous: genai-prices names its originating provider (gpt-* -> openai), or
        # every provider listing it charges the same. Otherwise we would be guessing.
        try:
            return snapshot.find_provider_model(model, None, None, None)
        except LookupError:
            pass
        candidates = []
        for provider in snapshot.providers:
            found = provider.find_model(model.lower())
            if found is not None:
                candidates.append((provider, found))
        if not candidates:
            return None
        now = datetime.now(tz=timezone.utc)
        distinct = {repr(found.get_prices(now)) for _, found in candidates}
        if len(distinct) != 1:
            logger.debug("otel-llmcost: %r is priced differently by %d providers; unpriced", model, len(distinct))
            return None
        return candidates[0]

    def rates_for(
        self,
        model: str,
        *,
        provider_id: str | None = None,
        api_url: str | None = None,
        price_context: Mapping[str, str] | None = None,
        when: datetime | None = None,
    ) -> tuple[_Rates, str, str, str] | None:
        """(rates, model_id, provider_id, source) in force, or None if unpriced."""
        if not model:
            return None
        override = self._find_override(model, provider_id) if self._overrides else None
        if override is not None:
            return override.rates, model, provider_id or "", self._overrides_source
        if when is None:
            key = (model, provider_id, api_url, tuple(price_context.items()) if price_context else None)
            cached = self._rates.get(key)
            now = time.monotonic()
            if cached is not None and cached[0] > now:
                return cached[1]
            resolved = self._resolve(model, provider_id, api_url, price_context, None)
            if len(self._rates) > 4096:
                self._rates.clear()
            self._rates[key] = (now + RATES_TTL_S, resolved)
            return resolved
        return self._resolve(model, provider_id, api_url, price_context, when)

    def _resolve(
        self,
        model: str,
        provider_id: str | None,
        api_url: str | None,
        price_context: Mapping[str, str] | None,
        when: datetime | None,
    ) -> tuple[_Rates, str, str, str] | None:
        found = self._lookup(model, provider_id, api_url)
        if found is None:
            return None
        provider, info = found
        prices = info.get_prices(when or datetime.now(tz=timezone.utc), dict(price_context) if price_context else None)
        rates = _rates_from_model_price(prices)
        if rates is None:
            return None
        return rates, info.id, provider.id, self._source_db

    # --- pricing --------------------------------------------------------------------

    def price(
        self,
        usage: Usage,
        model: str,
        *,
        provider_id: str | None = None,
        api_url: str | None = None,
        price_context: Mapping[str, str] | None = None,
        when: datetime | None = None,
    ) -> Cost | None:
        resolved = self.rates_for(
            model, provider_id=provider_id, api_url=api_url, price_context=price_context, when=when
        )
        if resolved is None:
            return None
        rates, model_id, resolved_provider, source = resolved
        return cost_of(usage, rates, model_id=model_id, provider_id=resolved_provider, source=source)


def cost_of(usage: Usage, rates: _Rates, *, model_id: str, provider_id: str, source: str) -> Cost:
    """Apply rates to a usage: the formula that DESIGN.md states holds for every provider."""
    if rates.flat is not None:
        return _cost_of_flat(usage, rates.flat, model_id=model_id, provider_id=provider_id, source=source)
    total_input = usage.input_tokens
    write_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    write_5m = usage.cache_write_tokens - write_1h
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)

    c_input = _unit_cost(rates.input, usage.uncached_input_tokens, total_input)
    c_read = _unit_cost(rates.cache_read, usage.cache_read_tokens, total_input)
    c_write = _unit_cost(rates.cache_write_5m, write_5m, total_input) + _unit_cost(
        rates.cache_write_1h, write_1h, total_input
    )
    c_output = _unit_cost(rates.output, usage.output_tokens - reasoning, total_input) + _unit_cost(
        rates.reasoning, reasoning, total_input
    )
    plain_write = _unit_cost(rates.input, usage.cache_write_tokens, total_input)
    at_input_price = _unit_cost(rates.input, usage.cache_read_tokens, total_input) + plain_write
    read_of_written = _unit_cost(rates.cache_read, usage.cache_write_tokens, total_input)
    return _cost(
        float(c_input),
        float(c_read),
        float(c_write),
        float(c_output),
        float(at_input_price),
        float(plain_write),
        float(read_of_written),
        usage,
        model_id,
        provider_id,
        source,
    )


def _cost_of_flat(usage: Usage, flat: tuple[float, ...], *, model_id: str, provider_id: str, source: str) -> Cost:
    """The same formula in floats, for rates without tiers (nearly all): no Decimal per call."""
    r_input, r_output, r_read, r_write_5m, r_write_1h, r_reasoning = flat
    write_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    write_5m = usage.cache_write_tokens - write_1h
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    c_input = usage.uncached_input_tokens * r_input
    c_read = usage.cache_read_tokens * r_read
    c_write = write_5m * r_write_5m + write_1h * r_write_1h
    c_output = (usage.output_tokens - reasoning) * r_output + reasoning * r_reasoning
    plain_write = usage.cache_write_tokens * r_input
    at_input_price = usage.cache_read_tokens * r_input + plain_write
    read_of_written = usage.cache_write_tokens * r_read
    return _cost(
        c_input,
        c_read,
        c_write,
        c_output,
        at_input_price,
        plain_write,
        read_of_written,
        usage,
        model_id,
        provider_id,
        source,
    )


def _cost(
    c_input: float,
    c_read: float,
    c_write: float,
    c_output: float,
    at_input_price: float,
    plain_write: float,
    read_of_written: float,
    usage: Usage,
    model_id: str,
    provider_id: str,
    source: str,
) -> Cost:
    premium = c_write - plain_write
    breakeven: float | None = None
    if usage.cache_write_tokens and plain_write:
        # Each later read of the written tokens saves (input - read) per token.
        saving_per_read = plain_write - read_of_written
        if saving_per_read > 0:
            breakeven = premium / saving_per_read
    return Cost(
        total=c_input + c_read + c_write + c_output,
        input=c_input,
        output=c_output,
        cache_read=c_read,
        cache_write=c_write,
        savings=at_input_price - c_read - c_write,
        write_premium=premium,
        breakeven_reads=breakeven,
        model_id=model_id,
        provider_id=provider_id,
        source=source,
    )


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _rates_from_model_price(prices: Any) -> _Rates | None:
    """Map genai-prices keys to our parts, with the same fall-backs its decomposition uses."""
    input_rate = getattr(prices, "input_mtok", None)
    output_rate = getattr(prices, "output_mtok", None)
    if input_rate is None and output_rate is None:
        return None  # priced per request/second/character only: not a token model we can price
    input_rate = _first(input_rate, _ZERO)
    output_rate = _first(output_rate, _ZERO)
    write = getattr(prices, "cache_write_mtok", None)
    return _with_flat(
        input_rate,
        output_rate,
        _first(getattr(prices, "cache_read_mtok", None), input_rate),
        _first(getattr(prices, "cache_write_5m_mtok", None), write, input_rate),
        _first(getattr(prices, "cache_write_1h_mtok", None), write, input_rate),
        _first(getattr(prices, "output_reasoning_mtok", None), output_rate),
    )


def _with_flat(*values: Any) -> _Rates:
    flat = None
    if all(isinstance(v, Decimal) for v in values):
        flat = tuple(float(v / _PER_MTOK) for v in values)
    return _Rates(*values, flat=flat)


def _decimal(value: Any, name: str) -> Decimal:
    number = Decimal(str(value))
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return number


def _parse_override(entry: Mapping[str, Any]) -> _Override:
    if "match" not in entry:
        raise ValueError(f"override entry needs 'match': {entry!r}")
    input_rate = _decimal(entry.get("input_mtok", 0), "input_mtok")
    output_rate = _decimal(entry.get("output_mtok", 0), "output_mtok")
    write = _decimal(entry.get("cache_write_mtok", input_rate), "cache_write_mtok")
    rates = _with_flat(
        input_rate,
        output_rate,
        _decimal(entry.get("cache_read_mtok", input_rate), "cache_read_mtok"),
        write,
        _decimal(entry.get("cache_write_1h_mtok", write), "cache_write_1h_mtok"),
        _decimal(entry.get("output_reasoning_mtok", output_rate), "output_reasoning_mtok"),
    )
    return _Override(str(entry["match"]), entry.get("provider"), rates)


def _load_yaml(text: str) -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is a dependency
        raise ValueError("YAML override files need PyYAML; use a .json file instead") from exc
    return yaml.safe_load(text)


_default: Pricer | None = None
_default_lock = threading.Lock()


def default_pricer() -> Pricer:
    """The process-wide pricer, built on first use (reads OTEL_LLMCOST_PRICES_FILE)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Pricer()
    return _default


def reset_default_pricer() -> None:
    """Forget the process-wide pricer so the next call re-reads the environment (tests, CLI)."""
    global _default
    with _default_lock:
        _default = None
