"""Audio models genai-prices prices by something other than tokens (issue 23): whisper-1 per
hour of input audio, tts-1 and tts-1-hd per million input characters. Hand-computed, and
against genai-prices' own calculator; a unit a price does not have is unpriced, never $0."""

from __future__ import annotations

import genai_prices
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_llmcost.pricing import Pricer, Usage
from otel_llmcost.pricing.formula import rates_from_prices


@pytest.fixture(scope="module")
def pricer() -> Pricer:
    return Pricer(overrides_path="")


def reference(model: str, **usage: float) -> float:
    return float(genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id="openai").total_price)


def test_whisper_90_seconds_costs_nine_tenths_of_a_cent(pricer):
    cost = pricer.price_call(Usage(audio_seconds=90.0), "whisper-1", None, provider_id="openai")
    # $0.36 an hour: 90 / 3600 * 0.36
    assert cost is not None
    assert cost.total == pytest.approx(0.009, rel=1e-12)
    assert (cost.input, cost.output, cost.cache_read, cost.cache_write, cost.savings) == (
        pytest.approx(0.009, rel=1e-12),
        0,
        0,
        0,
        0,
    )
    assert (cost.model_id, cost.provider_id, cost.source) == ("whisper-1", "openai", "genai-prices")


@pytest.mark.parametrize(("model", "expected"), [("tts-1", 0.015), ("tts-1-hd", 0.030)])
def test_speech_1000_characters(pricer, model, expected):
    # $15 / $30 per million characters
    cost = pricer.price_call(Usage(input_characters=1000), model, None, provider_id="openai")
    assert cost is not None
    assert cost.total == pytest.approx(expected, rel=1e-12)
    assert cost.input == pytest.approx(expected, rel=1e-12)


def test_the_rates_come_from_genai_prices_data():
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    _, whisper = snapshot.find_provider_model("whisper-1", None, "openai", None)
    _, tts = snapshot.find_provider_model("tts-1-hd", None, "openai", None)
    whisper_rates = rates_from_prices(whisper.get_prices(None))
    tts_rates = rates_from_prices(tts.get_prices(None))
    assert whisper_rates is not None and tts_rates is not None
    assert (whisper_rates.tokens_priced, float(whisper_rates.input_audio_hours), whisper_rates.input_mchars) == (
        False,
        0.36,
        None,
    )
    assert (tts_rates.tokens_priced, tts_rates.input_audio_hours, float(tts_rates.input_mchars)) == (False, None, 30.0)


@settings(max_examples=40, deadline=None)
@given(seconds=st.floats(0, 36_000, allow_nan=False), characters=st.integers(0, 10_000_000))
def test_totals_equal_genai_prices_calc_price(seconds, characters):
    pricer = Pricer(overrides_path="")
    whisper = pricer.price(Usage(audio_seconds=seconds), "whisper-1", provider_id="openai")
    speech = pricer.price(Usage(input_characters=characters), "tts-1", provider_id="openai")
    assert whisper is not None and speech is not None
    # genai-prices counts transcription audio as input audio seconds (a subset of audio seconds).
    expected = reference("whisper-1", audio_seconds=seconds, input_audio_seconds=seconds)
    assert whisper.total == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert speech.total == pytest.approx(reference("tts-1", input_characters=characters), rel=1e-9, abs=1e-15)


def test_zero_seconds_cost_zero_not_unpriced(pricer):
    cost = pricer.price(Usage(audio_seconds=0.0), "whisper-1", provider_id="openai")
    assert cost is not None and cost.total == 0


@pytest.mark.parametrize(
    ("model", "usage"),
    [
        ("gpt-4o-mini-tts", Usage(input_characters=1000)),  # priced by tokens only
        ("gpt-4o", Usage(audio_seconds=10.0)),  # no price per second
        ("tts-1", Usage(audio_seconds=10.0)),  # priced per character, not per second
        ("whisper-1", Usage(input_characters=1000)),  # priced per second, not per character
        ("whisper-1", Usage(input_tokens=100, output_tokens=10)),  # no token price: tokens are not free
        ("tts-1", Usage(input_tokens=100, input_characters=400)),
        ("tts-9", Usage(input_characters=1000)),  # genai-prices does not know it
    ],
)
def test_a_unit_the_price_lacks_is_unpriced_never_zero(pricer, model, usage):
    assert pricer.price_call(usage, model, None, provider_id="openai") is None


def test_token_prices_are_unchanged_by_the_unit_fields(pricer):
    plain = pricer.price(Usage(input_tokens=1000, output_tokens=100), "gpt-4o", provider_id="openai")
    assert plain is not None
    assert plain.total == pytest.approx((1000 * 2.5 + 100 * 10) / 1e6)


def test_units_add_up_across_hops():
    total = Usage(audio_seconds=1.5, input_characters=3).plus(Usage(audio_seconds=2.0, input_characters=4))
    assert (total.audio_seconds, total.input_characters) == (3.5, 7)
    assert not total.counts_tokens and total.has_units
