"""The cost formula, written once: a normalized :class:`Usage` times the rates in force.

::

    cost = uncached_input × input + cache_read × cache_read_rate
         + cache_write_5m × write_5m + cache_write_1h × write_1h
         + (output - reasoning) × output + reasoning × reasoning_rate

Audio and image tokens (subsets of the totals, see :mod:`otel_llmcost.pricing.usage`)
move to their modality's own price where the model has one, as genai-prices bills
them: uncached ones at the modality's input price, cached ones at its cache-read price
(or the text cache-read price when the model has none for the modality).

Some audio models are billed by no token at all (genai-prices: whisper-1 per hour of input
audio, ``input_audio_hours`` falling back to ``audio_hours``; tts-1 and tts-1-hd per million
input characters, ``input_mchars``). Their :class:`Rates` carry those unit prices and
``tokens_priced=False``; a usage's ``audio_seconds`` and ``input_characters`` are priced by
them, as input, with genai-prices' own unit sizes (``genai_prices.data_units``). A usage is
priced only when every unit it counts has a price: tokens against a price with no token
price, or seconds / characters against one without theirs, is unpriced (None), never $0.

:func:`cost_of` allocates tokens to rates once (:func:`_parts`) and multiplies with one
of two unit prices: per-token floats for untiered rates (nearly every call: no Decimal
on the hot path), genai-prices' ``calc_unit_price`` for tiered ones. The SQL repricing
view (``v_calls_repriced``, ``storage/sql/026_audio_units.sql``) states the same formula;
``tests`` check both against one table of cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any

from .usage import Usage

PER_MTOK = Decimal(1_000_000)
_ZERO = Decimal(0)

# The price fields of Rates: text parts, then the modality parts (None when a model bills
# that modality at its text price).
TEXT_RATES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning")
MODALITY_RATES = ("input_audio", "cache_audio_read", "output_audio", "input_image", "cache_image_read", "output_image")
# Prices of units other than tokens: USD per hour of input audio, per million input characters.
UNIT_RATES = ("input_audio_hours", "input_mchars")


@dataclass(frozen=True, slots=True)
class Rates:
    """Prices in force for one call: USD per million tokens (Decimal) or genai-prices TieredPrices."""

    input: Any
    output: Any
    cache_read: Any
    cache_write_5m: Any
    cache_write_1h: Any
    reasoning: Any
    # The text rates as USD per token (floats) when none is tiered; None otherwise.
    per_token: Rates | None = None
    # Whether cache reads have a price of their own (else they cost the input price).
    cache_read_priced: bool = True
    # Modality prices; None where the model bills that modality at the text price.
    input_audio: Any = None
    cache_audio_read: Any = None
    output_audio: Any = None
    input_image: Any = None
    cache_image_read: Any = None
    output_image: Any = None
    # False when the model has no token price at all (priced only by the units below): then a
    # usage that counts tokens is unpriced, and the text rates above are placeholders (0).
    tokens_priced: bool = True
    # Unit prices (Decimal or genai-prices TieredPrices); None where the model has none.
    input_audio_hours: Any = None  # USD per hour of input audio
    input_mchars: Any = None  # USD per million input characters


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """The price that applies to a call, and where it comes from (recorded on the span)."""

    rates: Rates
    model_id: str
    provider_id: str
    source: str  # "genai-prices", or "override prices.yaml:12" (file and line of the entry)
    version: str  # the genai-prices release, or the override file's content hash
    variant: str  # "service_tier=flex", or "" for the standard price
    effective_from: date | None  # UTC date this price took effect; None: as long as we know
    effective_until: date | None  # UTC date a newer price takes over; None: not scheduled
    time_of_day: bool = False  # the price also changes within the day (off-peak discounts)
    # (Provider, Model) of this price's rows in the ClickHouse catalogue (pricing.catalogue).
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
    # True: the usage was beyond belief (pricing.pricer, OTEL_LLMCOST_MAX_PLAUSIBLE_TOKENS);
    # every amount is 0 so nothing is charged, and no cost attribute is recorded.
    implausible: bool = False


def implausible_cost(model_id: str, provider_id: str) -> Cost:
    """The cost of a call whose reported usage is not believed: nothing, flagged."""
    return Cost(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None, model_id, provider_id, "", implausible=True)


UnitPrice = Callable[[Any, int], float]


def _per_token(rate: Any, count: int) -> float:
    return count * rate if count else 0.0


def _tiered(total_input: int, rate: Any, count: int) -> float:
    if not count or rate is None:
        return 0.0
    from genai_prices.types import calc_unit_price

    return float(calc_unit_price(rate, count, total_input, 1_000_000))


def cost_of(usage: Usage, entry: PriceEntry) -> Cost | None:
    """Apply a price entry to a usage; None when the entry has no price for a unit the usage
    counts (see the module docstring)."""
    rates = entry.rates
    if rates.per_token is not None and not usage.has_modalities and not usage.has_units:
        parts = _parts(usage, rates.per_token, _per_token)
    else:
        if not rates.tokens_priced and usage.counts_tokens:
            return None
        parts = _parts(usage, rates, partial(_tiered, usage.input_tokens))
        if usage.has_units or not rates.tokens_priced:
            units = _unit_cost(usage, rates)
            if units is None:
                return None
            parts = (parts[0] + units, *parts[1:])
    return _cost(*parts, usage, entry)


@lru_cache(maxsize=1)
def _unit_sizes() -> tuple[int, int]:
    """(seconds per ``input_audio_hours`` price, characters per ``input_mchars`` price), as
    genai-prices defines its units: 3600 and 1,000,000."""
    from genai_prices.data_units import unit_data

    return int(unit_data["input_audio_seconds"]["per"]), int(unit_data["input_characters"]["per"])


def _unit_cost(usage: Usage, rates: Rates) -> float | None:
    """What the audio seconds and input characters of ``usage`` cost; None if one is unpriced."""
    seconds, characters = usage.audio_seconds, usage.input_characters
    if (seconds and rates.input_audio_hours is None) or (characters and rates.input_mchars is None):
        return None
    if not seconds and not characters:
        return 0.0
    from genai_prices.types import calc_unit_price

    per_hour, per_mchars = _unit_sizes()
    total = 0.0
    if seconds:
        total += float(calc_unit_price(rates.input_audio_hours, seconds, usage.input_tokens, per_hour))
    if characters:
        total += float(calc_unit_price(rates.input_mchars, characters, usage.input_tokens, per_mchars))
    return total


def _parts(usage: Usage, rates: Rates, price: UnitPrice) -> tuple[float, float, float, float, float, float, float]:
    """(input, cache read, cache write, output, at-input-price, plain write, read-of-written)."""
    write_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    write_5m = usage.cache_write_tokens - write_1h
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    uncached_text = usage.uncached_input_tokens
    read_text = usage.cache_read_tokens
    output_text = usage.output_tokens - reasoning
    c_input = c_read = c_output = at_input = 0.0
    if usage.has_modalities:
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
                c_input += price(in_rate, n_uncached)
                uncached_text -= n_uncached
                if read_rate is None and not rates.cache_read_priced:
                    read_rate = in_rate  # no cache-read price at all: cached tokens cost the input price
                if read_rate is not None:
                    c_read += price(read_rate, n_read)
                    at_input += price(in_rate, n_read)
                    read_text -= n_read
            if out_rate is not None:
                n_out = min(n_out, output_text)
                c_output += price(out_rate, n_out)
                output_text -= n_out
    c_input += price(rates.input, uncached_text)
    c_read += price(rates.cache_read, read_text)
    c_write = price(rates.cache_write_5m, write_5m) + price(rates.cache_write_1h, write_1h)
    c_output += price(rates.output, output_text) + price(rates.reasoning, reasoning)
    plain_write = price(rates.input, usage.cache_write_tokens)
    at_input += price(rates.input, read_text) + plain_write
    read_of_written = price(rates.cache_read, usage.cache_write_tokens)
    return c_input, c_read, c_write, c_output, at_input, plain_write, read_of_written


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


def rates_from_prices(prices: Any) -> Rates | None:
    """Map a genai-prices ``ModelPrice`` to our parts, with the fall-backs its decomposition
    uses; None when it has neither a token price nor a unit price we apply (a price per
    request, image or pixel only)."""
    get = prices.__dict__.get
    input_rate = get("input_mtok")
    output_rate = get("output_mtok")
    # Input audio seconds are priced at input_audio_hours, else at their parent unit's
    # audio_hours (genai-prices' decomposition of audio_seconds into input/output).
    audio_hours = _first(get("input_audio_hours"), get("audio_hours"))
    mchars = get("input_mchars")
    if input_rate is None and output_rate is None:
        if audio_hours is None and mchars is None:
            return None
        return Rates(
            _ZERO,
            _ZERO,
            _ZERO,
            _ZERO,
            _ZERO,
            _ZERO,
            cache_read_priced=False,
            tokens_priced=False,
            input_audio_hours=audio_hours,
            input_mchars=mchars,
        )
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
    cache_read_priced = get("cache_read_mtok") is not None
    per_token = None
    if all(isinstance(v, Decimal) for v in text):
        i, o, r, w5, w1, rs = (float(v / PER_MTOK) for v in text)
        per_token = Rates(i, o, r, w5, w1, rs, cache_read_priced=cache_read_priced)
    return Rates(
        *text,
        per_token=per_token,
        cache_read_priced=cache_read_priced,
        input_audio=get("input_audio_mtok"),
        cache_audio_read=get("cache_audio_read_mtok"),
        output_audio=get("output_audio_mtok"),
        input_image=get("input_image_mtok"),
        cache_image_read=get("cache_image_read_mtok"),
        output_image=get("output_image_mtok"),
        input_audio_hours=audio_hours,
        input_mchars=mchars,
    )


def model_price(prices: Mapping[str, Decimal]) -> Any:
    """A genai-prices ``ModelPrice`` from override prices (so both share one rate mapping)."""
    from genai_prices.types import ModelPrice

    return ModelPrice(**prices)
