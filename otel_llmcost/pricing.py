"""Price a normalized :class:`~otel_llmcost.usage.Usage` in USD, at the price in force.

Prices come from the offline genai-prices database (no network: the snapshot ships
inside the package) or, first, from a user override file
(:mod:`otel_llmcost.price_overrides`, ``OTEL_LLMCOST_PRICES_FILE``). A model with no
price is *unpriced* (``None``), never a silent 0.

A call is priced at the price in force at its start time, not at "now": both sources
carry dated prices (genai-prices' ``StartDateConstraint``, the override file's
``effective_from``), and :class:`PriceEntry` says which entry priced a call, from
which data version, and the window in which that entry is the price.

Why we do not call ``genai_prices.calc_price`` per call: it re-resolves the model on
every call (~50 us), and it returns only input/output/total while our spans carry
the cost of each part (uncached input, cache read, cache write, output) and the
savings from caching. So we resolve the model once (cached), ask genai-prices for
the prices in force (``ModelInfo.get_prices`` applies dated and time-of-day prices
and price variants such as ``service_tier`` or batch) and apply its own
``calc_unit_price`` for tiers. ``tests/test_pricing.py`` checks that our total equals
``genai_prices.calc_price`` for every shape of usage.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from . import price_overrides
from .price_overrides import OverrideFile, PriceFileError, variant_label
from .usage import Usage

logger = logging.getLogger(__name__)

PRICES_FILE_ENV = "OTEL_LLMCOST_PRICES_FILE"
SOURCE_DATABASE = "genai-prices"
_PER_MTOK = Decimal(1_000_000)
# Longest a resolved price is reused without asking the database again. Dated prices
# need no TTL (the cache knows each entry's window); it bounds time-of-day prices
# (an off-peak discount) and a snapshot swapped in at run time (genai-prices updates).
RATES_TTL_S = 60.0
_ZERO = Decimal(0)
_UTC = timezone.utc


# The price fields of _Rates: text parts, then the modality parts (None when a model bills
# that modality at its text price).
TEXT_RATES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning")
MODALITY_RATES = ("input_audio", "cache_audio_read", "output_audio", "input_image", "cache_image_read", "output_image")


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
    # Whether cache reads have a price of their own (else they cost the input price).
    cache_read_priced: bool = True
    # Modality prices; None where the model bills that modality at the text price.
    input_audio: Any = None
    cache_audio_read: Any = None
    output_audio: Any = None
    input_image: Any = None
    cache_image_read: Any = None
    output_image: Any = None


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """The price that applies to a call, and where it comes from (recorded on the span)."""

    rates: _Rates
    model_id: str
    provider_id: str
    source: str  # "genai-prices", or "override prices.yaml:12" (file and line of the entry)
    version: str  # the genai-prices release, or the override file's content hash
    variant: str  # "service_tier=flex", or "" for the standard price
    effective_from: date | None  # UTC date this price took effect; None: as long as we know
    effective_until: date | None  # UTC date a newer price takes over; None: not scheduled
    time_of_day: bool = False  # the price also changes within the day (off-peak discounts)
    # (Provider, Model) of this price's rows in the ClickHouse catalogue (price_catalogue).
    catalogue_key: tuple[str, str] = ("", "")


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
    version: str = ""
    variant: str = ""
    effective_from: date | None = None


def genai_prices_version() -> str:
    """The genai-prices data in use: its release, marked when a newer snapshot was fetched."""
    try:
        from importlib.metadata import version

        from genai_prices import data_snapshot

        release = version("genai-prices")
        return f"{release}+auto-update" if data_snapshot.get_snapshot().from_auto_update else release
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "unknown"


def _unit_cost(price: Any, count: int, total_input: int) -> Decimal:
    if not count or price is None:
        return _ZERO
    from genai_prices.types import calc_unit_price

    return calc_unit_price(price, count, total_input, 1_000_000)


def _as_datetime(when: datetime | float | None) -> datetime:
    if when is None:
        return datetime.now(tz=_UTC)
    if isinstance(when, datetime):
        return when if when.tzinfo is not None else when.replace(tzinfo=_UTC)
    return datetime.fromtimestamp(when, tz=_UTC)


def _day_start(day: date | None, default: float) -> float:
    if day is None:
        return default
    return datetime(day.year, day.month, day.day, tzinfo=_UTC).timestamp()


class Pricer:
    """Resolves models to the price entry in force and prices usages. Thread-safe."""

    def __init__(self, overrides_path: str | os.PathLike[str] | None = None) -> None:
        self._source_version = genai_prices_version()
        self.overrides: OverrideFile | None = None
        path = overrides_path if overrides_path is not None else os.environ.get(PRICES_FILE_ENV)
        if path:
            self.load_overrides(path)
        self._lookup = lru_cache(maxsize=1024)(self._lookup_uncached)
        # Resolved entries per (model, provider, url, variant): (entry, valid from, valid
        # until (epoch s), refresh deadline (monotonic)). Resolving costs more than the rest
        # of a call's pricing; the window makes a price change take effect at its date.
        self._rates: dict[tuple[Any, ...], tuple[PriceEntry | None, float, float, float]] = {}

    # --- overrides --------------------------------------------------------------

    def load_overrides(self, path: str | os.PathLike[str], *, strict: bool = False) -> None:
        """Load an override file. A broken file is logged (file, line, reason) and ignored,
        never fatal to the app; ``strict`` raises :class:`PriceFileError` instead (CLI)."""
        try:
            self.overrides = price_overrides.load(path)
        except PriceFileError as exc:
            if strict:
                raise
            logger.warning("otel-llmcost: ignoring the price override file: %s", exc)
            self.overrides = None
        self._rates = {}

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
        now = datetime.now(tz=_UTC)
        distinct = {repr(found.get_prices(now)) for _, found in candidates}
        if len(distinct) != 1:
            logger.debug("otel-llmcost: %r is priced differently by %d providers; unpriced", model, len(distinct))
            return None
        return candidates[0]

    def database_model(self, model: str, provider_id: str | None = None, api_url: str | None = None) -> Any:
        """(provider, model_info) genai-prices would price ``model`` with, or None."""
        return self._lookup(model, provider_id, api_url) if model else None

    @lru_cache(maxsize=256)  # noqa: B019 - one pricer per process; the key space is tiny
    def provider_for(self, provider_id: str | None, api_url: str | None) -> str | None:
        """The genai-prices provider id a call was priced against, even when its model
        was not found (recorded on unpriced calls, so a later price can be matched)."""
        if provider_id:
            return provider_id
        if not api_url:
            return None
        from genai_prices import data_snapshot

        try:
            return data_snapshot.get_snapshot().find_provider(None, None, api_url).id
        except LookupError:
            return None

    def rates_for(
        self,
        model: str,
        *,
        provider_id: str | None = None,
        api_url: str | None = None,
        price_context: Mapping[str, str] | None = None,
        when: datetime | float | None = None,
    ) -> PriceEntry | None:
        """The price entry in force at ``when`` (a datetime or epoch seconds; default now),
        or None if the model is unpriced."""
        if not model:
            return None
        at = time.time() if when is None else (when.timestamp() if isinstance(when, datetime) else when)
        key = (model, provider_id, api_url, tuple(price_context.items()) if price_context else None)
        cached = self._rates.get(key)
        if cached is not None and cached[1] <= at < cached[2] and time.monotonic() < cached[3]:
            return cached[0]
        entry, valid_from, valid_until = self._resolve(model, provider_id, api_url, price_context, _as_datetime(at))
        if len(self._rates) > 4096:
            self._rates.clear()
        self._rates[key] = (entry, valid_from, valid_until, time.monotonic() + RATES_TTL_S)
        return entry

    def price_call(
        self,
        usage: Usage,
        request_model: str,
        response_model: str | None,
        *,
        provider_id: str | None = None,
        api_url: str | None = None,
        price_context: Mapping[str, str] | None = None,
        when: datetime | float | None = None,
    ) -> Cost | None:
        """Price a call by the model that answered (often a dated id), else by the one asked for."""
        for model in call_models(request_model, response_model):
            cost = self.price(
                usage, model, provider_id=provider_id, api_url=api_url, price_context=price_context, when=when
            )
            if cost is not None:
                return cost
        return None

    def call_window(
        self,
        request_model: str,
        response_model: str | None,
        *,
        provider_id: str | None,
        price_context: Mapping[str, str] | None,
        when: datetime,
    ) -> tuple[PriceEntry | None, float, float]:
        """What :meth:`price_call` would use at ``when``, and the epoch-second window in which
        that answer holds (uncached: for building the ClickHouse catalogue)."""
        lo, hi = -math.inf, math.inf
        for model in call_models(request_model, response_model):
            entry, valid_from, valid_until = self._resolve(model, provider_id, None, price_context, when)
            lo, hi = max(lo, valid_from), min(hi, valid_until)
            if entry is not None:
                return entry, lo, hi
        return None, lo, hi

    def _resolve(
        self,
        model: str,
        provider_id: str | None,
        api_url: str | None,
        price_context: Mapping[str, str] | None,
        when: datetime,
    ) -> tuple[PriceEntry | None, float, float]:
        """(entry or None, epoch seconds from/until which that answer holds)."""
        day = when.astimezone(_UTC).date()
        override_change: date | None = None
        if self.overrides is not None:
            found, override_change = self.overrides.find(model, provider_id, price_context, day)
            if found is not None:
                rates = rates_from_prices(model_price(found.prices))
                assert rates is not None  # the file requires input_mtok or output_mtok
                entry = PriceEntry(
                    rates=rates,
                    model_id=model,
                    provider_id=provider_id or found.provider or "",
                    source=f"override {self.overrides.name}:{found.line}",
                    version=self.overrides.version,
                    variant=found.variant,
                    effective_from=found.effective_from,
                    effective_until=override_change,
                    catalogue_key=found.catalogue_key,
                )
                return entry, _day_start(found.effective_from, -math.inf), _day_start(override_change, math.inf)
        entry = self._database_entry(model, provider_id, api_url, price_context, when)
        if entry is None:
            # Unpriced until the next override for this model takes effect, if one is dated.
            return None, -math.inf, _day_start(override_change, math.inf)
        until = entry.effective_until
        if override_change is not None and (until is None or override_change < until):
            # A dated override ends the database price's reign for this call.
            until = override_change
            entry = dataclasses.replace(entry, effective_until=until)
        if entry.time_of_day:
            # Off-peak windows are minutes to hours long: keep this answer one TTL at most.
            return entry, when.timestamp(), when.timestamp() + RATES_TTL_S
        return entry, _day_start(entry.effective_from, -math.inf), _day_start(until, math.inf)

    def _database_entry(
        self,
        model: str,
        provider_id: str | None,
        api_url: str | None,
        price_context: Mapping[str, str] | None,
        when: datetime,
    ) -> PriceEntry | None:
        found = self._lookup(model, provider_id, api_url)
        if found is None:
            return None
        provider, info = found
        context = dict(price_context) if price_context else None
        rates = rates_from_prices(info.get_prices(when, context))
        if rates is None:
            return None
        effective_from, effective_until, time_of_day, variant = price_window(info, when, context)
        return PriceEntry(
            rates=rates,
            model_id=info.id,
            provider_id=provider.id,
            source=SOURCE_DATABASE,
            version=self._source_version,
            variant=variant,
            effective_from=effective_from,
            effective_until=effective_until,
            time_of_day=time_of_day,
            catalogue_key=(provider.id, info.id),
        )

    # --- pricing --------------------------------------------------------------------

    def price(
        self,
        usage: Usage,
        model: str,
        *,
        provider_id: str | None = None,
        api_url: str | None = None,
        price_context: Mapping[str, str] | None = None,
        when: datetime | float | None = None,
    ) -> Cost | None:
        entry = self.rates_for(model, provider_id=provider_id, api_url=api_url, price_context=price_context, when=when)
        if entry is None:
            return None
        return cost_of(usage, entry)


def call_models(request_model: str, response_model: str | None) -> tuple[str, ...]:
    """The model ids a call is priced by, in order: the answering model, then the requested."""
    if response_model and response_model != request_model:
        return (response_model, request_model) if request_model else (response_model,)
    return (request_model,) if request_model else ()


def price_window(
    info: Any, when: datetime, context: Mapping[str, str] | None
) -> tuple[date | None, date | None, bool, str]:
    """(effective from, effective until, has time-of-day prices, variant label) of the
    genai-prices price of ``info`` in force at ``when`` for ``context``.

    The window runs between the dated constraints around ``when``: the conditional
    prices' start dates and those of the variants that apply to ``context``.
    """
    day = when.astimezone(_UTC).date()
    constraints = _conditional_constraints(info)
    applied: dict[str, str] = {}
    for variant in info.price_variants or ():
        if context and all(context.get(k) == v for k, v in variant.when.items()):
            constraints.append(variant.constraint)
            if variant.constraint is None or variant.constraint.active(when):
                applied.update(variant.when)
    starts = [c.start_date for c in constraints if c is not None and hasattr(c, "start_date")]
    time_of_day = any(c is not None and hasattr(c, "start_time") for c in constraints)
    past = [d for d in starts if d <= day]
    future = [d for d in starts if d > day]
    return (max(past) if past else None, min(future) if future else None, time_of_day, variant_label(applied))


def price_start_dates(info: Any) -> list[date]:
    """Every date on which a price of ``info`` (standard or any variant) takes effect."""
    constraints = _conditional_constraints(info) + [v.constraint for v in info.price_variants or ()]
    return sorted({c.start_date for c in constraints if c is not None and hasattr(c, "start_date")})


def _conditional_constraints(info: Any) -> list[Any]:
    """The constraints of a genai-prices model's dated standard prices (none when undated)."""
    return [c.constraint for c in info.prices] if isinstance(info.prices, list) else []


def model_price(prices: Mapping[str, Decimal]) -> Any:
    """A genai-prices ``ModelPrice`` from override prices (so both share one rate mapping)."""
    from genai_prices.types import ModelPrice

    return ModelPrice(**prices)


def cost_of(usage: Usage, entry: PriceEntry) -> Cost:
    """Apply a price entry to a usage: the formula that DESIGN.md states holds for every provider."""
    rates = entry.rates
    if rates.flat is not None and not usage.has_modalities:
        parts = _parts_flat(usage, rates.flat)
    else:
        parts = _parts_decimal(usage, rates)
    return _cost(*parts, usage, entry)


def _parts_decimal(usage: Usage, rates: _Rates) -> tuple[float, ...]:
    """(input, cache read, cache write, output, at-input-price, plain write, read-of-written).

    Audio and image tokens (a subset of the totals, see :mod:`otel_llmcost.usage`) move
    to their own price where the model has one, as genai-prices bills them: uncached
    ones at the modality's input price, cached ones at its cache-read price (or the text
    cache-read price when the model has none for the modality).
    """
    total_input = usage.input_tokens
    write_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    write_5m = usage.cache_write_tokens - write_1h
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    uncached_text = usage.uncached_input_tokens
    read_text = usage.cache_read_tokens
    output_text = usage.output_tokens - reasoning
    c_input = c_read = c_output = at_input = _ZERO
    for in_rate, read_rate, out_rate, n_in, n_read, n_out in (
        (
            rates.input_audio,
            rates.cache_audio_read,
            rates.output_audio,
            usage.input_audio_tokens,
            usage.cache_audio_read_tokens,
            usage.output_audio_tokens,
        ),
        (
            rates.input_image,
            rates.cache_image_read,
            rates.output_image,
            usage.input_image_tokens,
            usage.cache_image_read_tokens,
            usage.output_image_tokens,
        ),
    ):
        if in_rate is not None:
            n_read = min(n_read, read_text)
            n_uncached = min(max(n_in - n_read, 0), uncached_text)
            c_input += _unit_cost(in_rate, n_uncached, total_input)
            uncached_text -= n_uncached
            if read_rate is None and not rates.cache_read_priced:
                read_rate = in_rate  # no cache-read price at all: cached tokens cost the input price
            if read_rate is not None:
                c_read += _unit_cost(read_rate, n_read, total_input)
                at_input += _unit_cost(in_rate, n_read, total_input)
                read_text -= n_read
        if out_rate is not None:
            n_out = min(n_out, output_text)
            c_output += _unit_cost(out_rate, n_out, total_input)
            output_text -= n_out
    c_input += _unit_cost(rates.input, uncached_text, total_input)
    c_read += _unit_cost(rates.cache_read, read_text, total_input)
    c_write = _unit_cost(rates.cache_write_5m, write_5m, total_input) + _unit_cost(
        rates.cache_write_1h, write_1h, total_input
    )
    c_output += _unit_cost(rates.output, output_text, total_input) + _unit_cost(rates.reasoning, reasoning, total_input)
    plain_write = _unit_cost(rates.input, usage.cache_write_tokens, total_input)
    at_input += _unit_cost(rates.input, read_text, total_input) + plain_write
    read_of_written = _unit_cost(rates.cache_read, usage.cache_write_tokens, total_input)
    return (
        float(c_input),
        float(c_read),
        float(c_write),
        float(c_output),
        float(at_input),
        float(plain_write),
        float(read_of_written),
    )


def _parts_flat(usage: Usage, flat: tuple[float, ...]) -> tuple[float, ...]:
    """The same formula in floats, for text-only usage at untiered rates (nearly every call):
    no Decimal per call."""
    r_input, r_output, r_read, r_write_5m, r_write_1h, r_reasoning = flat
    write_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    write_5m = usage.cache_write_tokens - write_1h
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    plain_write = usage.cache_write_tokens * r_input
    return (
        usage.uncached_input_tokens * r_input,
        usage.cache_read_tokens * r_read,
        write_5m * r_write_5m + write_1h * r_write_1h,
        (usage.output_tokens - reasoning) * r_output + reasoning * r_reasoning,
        usage.cache_read_tokens * r_input + plain_write,
        plain_write,
        usage.cache_write_tokens * r_read,
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
    entry: PriceEntry,
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
        model_id=entry.model_id,
        provider_id=entry.provider_id,
        source=entry.source,
        version=entry.version,
        variant=entry.variant,
        effective_from=entry.effective_from,
    )


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def rates_from_prices(prices: Any) -> _Rates | None:
    """Map a genai-prices ``ModelPrice`` to our parts, with the fall-backs its decomposition
    uses; None when it has no token price (priced per request, second or character)."""
    get = prices.__dict__.get
    input_rate = get("input_mtok")
    output_rate = get("output_mtok")
    if input_rate is None and output_rate is None:
        return None
    input_rate = _first(input_rate, _ZERO)
    output_rate = _first(output_rate, _ZERO)
    write = get("cache_write_mtok")
    text = (
        input_rate,
        output_rate,
        _first(get("cache_read_mtok"), input_rate),
        _first(get("cache_write_5m_mtok"), write, input_rate),
        _first(get("cache_write_1h_mtok"), write, input_rate),
        _first(get("output_reasoning_mtok"), output_rate),
    )
    flat = tuple(float(v / _PER_MTOK) for v in text) if all(isinstance(v, Decimal) for v in text) else None
    return _Rates(
        *text,
        flat=flat,
        cache_read_priced=get("cache_read_mtok") is not None,
        input_audio=get("input_audio_mtok"),
        cache_audio_read=get("cache_audio_read_mtok"),
        output_audio=get("output_audio_mtok"),
        input_image=get("input_image_mtok"),
        cache_image_read=get("cache_image_read_mtok"),
        output_image=get("output_image_mtok"),
    )


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
