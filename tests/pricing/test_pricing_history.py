"""Prices over time: the price in force at the call's date, its entry and version, the
override file's matching rules and its errors, and audio/image tokens."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import genai_prices
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_llmcost.pricing import Pricer, Usage, genai_prices_version
from otel_llmcost.pricing import overrides as price_overrides
from otel_llmcost.pricing.overrides import PriceFileError
from otel_llmcost.providers.google_genai import parse_usage as gemini_usage_of
from otel_llmcost.providers.openai import parse_usage as openai_usage_of

MTOK = Usage(input_tokens=1_000_000)


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc)


def _reference_input_price(model: str, provider: str, when: datetime) -> float:
    """Input USD/Mtok straight from genai-prices' own model data, independent of our code."""
    return float(
        genai_prices.calc_price(
            genai_prices.Usage(input_tokens=1_000_000), model, provider_id=provider, genai_request_timestamp=when
        ).total_price
    )


def _dated_database_model() -> tuple[str, str, date]:
    """A model genai-prices reprices on a date, whichever the bundled data has."""
    from genai_prices import data_snapshot

    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            if not isinstance(model.prices, list):
                continue
            for conditional in model.prices:
                start = getattr(conditional.constraint, "start_date", None)
                if start is None:
                    continue
                before = _reference_input_price(model.id, provider.id, _at(str(start)).replace(day=1))
                after = _reference_input_price(model.id, provider.id, _at(str(start)))
                if start.day > 1 and before != after:
                    return model.id, provider.id, start
    pytest.fail("genai-prices carries no dated price change to test against")


def test_database_price_is_the_one_in_force_at_the_call_date():
    model, provider, start = _dated_database_model()
    pricer = Pricer(overrides_path="")
    before_day = _at(str(start)).replace(day=start.day - 1, hour=23, minute=59)
    on_day = _at(str(start))
    before = pricer.price(MTOK, model, provider_id=provider, when=before_day)
    after = pricer.price(MTOK, model, provider_id=provider, when=on_day)
    assert before.total == pytest.approx(_reference_input_price(model, provider, before_day))
    assert after.total == pytest.approx(_reference_input_price(model, provider, on_day))
    assert before.total != after.total
    # The cached entry for one window must not leak into the other, in either order.
    assert pricer.price(MTOK, model, provider_id=provider, when=before_day).total == before.total
    entry = pricer.rates_for(model, provider_id=provider, when=before_day)
    assert entry.effective_until == start
    later = pricer.rates_for(model, provider_id=provider, when=on_day)
    assert later.effective_from == start
    assert later.source == "genai-prices"
    assert later.version == genai_prices_version() == genai_prices.__version__


OVERRIDES = """\
models:
  - model: gpt-4o
    input_mtok: 2.0
    output_mtok: 8.0
  - model: gpt-4o
    effective_from: 2026-07-01
    input_mtok: 1.5
    output_mtok: 6.0
  - model: gpt-4o
    when: {service_tier: priority}
    input_mtok: 4.0
    output_mtok: 16.0
  - prefix: "acme-"
    provider: vllm
    input_mtok: 0.1
    output_mtok: 0.2
  - regex: "ft:gpt-4o-mini:[a-z]+:.*"
    input_mtok: 0.3
    output_mtok: 1.2
    cache_read_mtok: 0.15
"""


@pytest.fixture
def override_pricer(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(OVERRIDES)
    return Pricer(overrides_path=path)


def test_override_effective_from_splits_history(override_pricer):
    june = override_pricer.price(MTOK, "gpt-4o", when=_at("2026-06-30T23:59:59"))
    july = override_pricer.price(MTOK, "gpt-4o", when=_at("2026-07-01"))
    assert june.total == pytest.approx(2.0)
    assert july.total == pytest.approx(1.5)
    assert june.source == "override prices.yaml:2"
    assert july.source == "override prices.yaml:5"
    assert july.effective_from == date(2026, 7, 1)
    entry = override_pricer.rates_for("gpt-4o", when=_at("2026-06-01"))
    assert entry.effective_until == date(2026, 7, 1)


def test_override_variant_beats_standard_and_needs_its_context(override_pricer):
    priority = override_pricer.price(MTOK, "gpt-4o", price_context={"service_tier": "priority"}, when=_at("2026-08-01"))
    assert priority.total == pytest.approx(4.0)
    assert priority.variant == "service_tier=priority"
    flex = override_pricer.price(MTOK, "gpt-4o", price_context={"service_tier": "flex"}, when=_at("2026-08-01"))
    assert flex.total == pytest.approx(1.5)  # no flex entry: the standard price in force


def test_override_prefix_regex_and_provider(override_pricer):
    assert override_pricer.price(MTOK, "acme-llama-70b", provider_id="vllm").total == pytest.approx(0.1)
    assert override_pricer.price(MTOK, "acme-llama-70b", provider_id="groq") is None  # provider-scoped
    tuned = Usage(input_tokens=1_000_000, cache_read_tokens=500_000)
    cost = override_pricer.price(tuned, "ft:gpt-4o-mini:acme:x1", provider_id="openai")
    assert cost.total == pytest.approx(0.5 * 0.3 + 0.5 * 0.15)
    assert override_pricer.price(MTOK, "ft:gpt-4o-mini:ACME1:x", provider_id="openai") is None  # full match only


def test_no_override_in_force_falls_back_to_the_database(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  - model: gpt-4o-mini\n    effective_from: 2030-01-01\n    input_mtok: 9\n")
    pricer = Pricer(overrides_path=path)
    now = pricer.rates_for("gpt-4o-mini", provider_id="openai", when=_at("2026-01-01"))
    assert now.source == "genai-prices"
    assert now.effective_until == date(2030, 1, 1)  # the window stops where the override starts
    assert pricer.price(MTOK, "gpt-4o-mini", provider_id="openai", when=_at("2030-01-01")).total == pytest.approx(9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n  - model: a\n    input_mtoks: 1\n",
            "prices.yaml:3: models[0].input_mtoks: unknown key (did you mean 'input_mtok'?)",
        ),
        (
            "models:\n  - model: a\n    input_mtok: -1\n",
            "prices.yaml:3: models[0].input_mtok: must not be negative, got -1",
        ),
        (
            "models:\n  - model: a\n    input_mtok: cheap\n",
            "prices.yaml:3: models[0].input_mtok: must be a number (USD per million tokens), got the string 'cheap'",
        ),
        (
            "models:\n  - model: a\n    input_mtok: true\n",
            "prices.yaml:3: models[0].input_mtok: must be a number (USD per million tokens), got true",
        ),
        (
            "models:\n  - model: a\n    input_mtok: .inf\n",
            "prices.yaml:3: models[0].input_mtok: must be a number (USD per million tokens), got inf",
        ),
        (
            "models:\n  - input_mtok: 1\n",
            "prices.yaml:2: models[0]: needs exactly one of model, match, prefix, regex (got none)",
        ),
        (
            "models:\n  - model: a\n    prefix: b\n    input_mtok: 1\n",
            "prices.yaml:2: models[0]: needs exactly one of model, match, prefix, regex (got model, prefix)",
        ),
        (
            "models:\n  - regex: '('\n    input_mtok: 1\n",
            "prices.yaml:2: models[0].regex: invalid regex '(': missing ), unterminated subpattern at position 0",
        ),
        (
            "models:\n  - model: ''\n    input_mtok: 1\n",
            "prices.yaml:2: models[0].model: must be non-empty text, got the string ''",
        ),
        (
            "models:\n  - model: a\n",
            "prices.yaml:2: models[0]: needs input_mtok or output_mtok (USD per million tokens)",
        ),
        (
            "models:\n  - model: a\n    input_mtok: 1\n    provider: 3\n",
            "prices.yaml:4: models[0].provider: must be a provider id such as 'openai', got 3",
        ),
        (
            "models:\n  - model: a\n    input_mtok: 1\n    effective_from: July\n",
            "prices.yaml:4: models[0].effective_from: must be a date like 2026-07-01, got the string 'July'",
        ),
        (
            "models:\n  - model: a\n    input_mtok: 1\n    effective_from: 2026-13-45\n",
            "prices.yaml:4: models[0].effective_from: invalid value '2026-13-45': month must be in 1..12",
        ),
        (
            "models:\n  - model: a\n    input_mtok: 1\n    when: flex\n",
            "prices.yaml:4: models[0].when: must be a mapping such as {service_tier: flex}, got the string 'flex'",
        ),
        (
            "models:\n  - model: a\n    input_mtok: 1\n    when: {service_tier: 1}\n",
            "prices.yaml:4: models[0].when.service_tier: must be text, got 1",
        ),
        (
            "models:\n  - model: a\n    input_mtok: 1\n    input_mtok: 2\n",
            "prices.yaml:4: models[0].input_mtok: duplicate key (first on line 3)",
        ),
        ("model:\n  - model: a\n", "prices.yaml:1: model: unknown key (did you mean 'models'?)"),
        ("models: {a: 1}\n", "prices.yaml:1: models: expected a list of entries, got a mapping"),
        ("models:\n  - 3\n", "prices.yaml:2: models[0]: expected a mapping, got 3"),
        ("models:\n  - [a, b\n", "prices.yaml:3: not valid YAML or JSON: expected ',' or ']', but got '<stream end>'"),
    ],
)
def test_override_file_errors_name_file_line_and_key(tmp_path, text, message):
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PriceFileError) as raised:
        price_overrides.load(path)
    assert raised.value.errors == [f"{tmp_path}/{message}"]
    assert price_overrides.check_prices_file(path) == [f"{tmp_path}/{message}"]


def test_every_problem_of_the_file_is_listed(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n"
        "  - model: gpt-4o\n"
        "    input_mtok: 1\n"
        "    effective_from: 2026-13-45\n"
        "  - model: b\n"
        "    input_mtoks: 1\n"
        "  - {model: c, output_mtok: x}\n"
    )
    assert price_overrides.check_prices_file(path) == [
        f"{path}:4: models[0].effective_from: invalid value '2026-13-45': month must be in 1..12",
        f"{path}:6: models[1].input_mtoks: unknown key (did you mean 'input_mtok'?)",
        f"{path}:7: models[2].output_mtok: must be a number (USD per million tokens), got the string 'x'",
    ]
    assert price_overrides.check_prices_file(tmp_path / "nope.yaml") == [
        f"{tmp_path}/nope.yaml: cannot read: No such file or directory"
    ]


def test_quoted_and_unquoted_dates_are_the_same_date(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n  - {model: a, input_mtok: 1, effective_from: 2026-07-01}\n"
        "  - {model: b, input_mtok: 1, effective_from: '2026-07-01'}\n"
    )
    loaded = price_overrides.load(path)
    assert [e.effective_from for e in loaded.entries] == [date(2026, 7, 1), date(2026, 7, 1)]
    assert loaded.name == "prices.yaml"  # spans name the file, not the directory it is in


def test_json_override_file_reports_lines_too(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text('{"models": [\n  {"model": "a", "input_mtok": 1},\n  {"model": "b", "input_mtok": "x"}\n]}\n')
    assert price_overrides.check_prices_file(path) == [
        f"{path}:3: models[1].input_mtok: must be a number (USD per million tokens), got the string 'x'"
    ]


def test_an_invalid_date_at_start_up_is_logged_and_spans_are_still_recorded(tmp_path, monkeypatch, caplog, otel, fake):
    from otel_llmcost import LLMCostInstrumentor
    from otel_llmcost.demo.fakes import openai_client

    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  - model: gpt-4o-mini\n    input_mtok: 1\n    effective_from: 2026-13-45\n")
    monkeypatch.setenv("OTEL_LLMCOST_PRICES_FILE", str(path))
    instrumentor = LLMCostInstrumentor()
    with caplog.at_level(logging.ERROR, logger="otel_llmcost"):
        instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        instrumentor.uninstrument()
    assert otel.only_span().attributes["llmcost.price.source"] == "genai-prices"
    assert [(r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "otel-llmcost: ignoring the price override file, prices come from genai-prices alone: "
            f"{path}:4: models[0].effective_from: invalid value '2026-13-45': month must be in 1..12",
            None,
        )
    ]


def test_strict_load_raises_and_lenient_load_keeps_the_database(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  - model: gpt-4o\n    input_mtok: 1\n    oops: 1\n")
    with pytest.raises(PriceFileError):
        Pricer(overrides_path="").load_overrides(path, strict=True)
    pricer = Pricer(overrides_path=path)
    assert pricer.overrides is None
    assert pricer.price(MTOK, "gpt-4o", provider_id="openai").source == "genai-prices"


# --- audio and image tokens ------------------------------------------------------

MODALITY_MODELS = [
    ("gpt-4o-realtime-preview", "openai"),  # audio in/out and cached audio priced apart
    ("gpt-audio", "openai"),  # audio in/out, no cached audio price
    ("gemini-2.5-flash", "google"),  # audio input and cached audio input
    ("gpt-image-1.5", "openai"),  # image in/out and cached image
]


@settings(max_examples=80, deadline=None)
@given(
    model=st.sampled_from(MODALITY_MODELS),
    text_in=st.integers(0, 100_000),
    audio_in=st.integers(0, 100_000),
    image_in=st.integers(0, 100_000),
    cached_share=st.floats(0, 1),
    text_out=st.integers(0, 20_000),
    audio_out=st.integers(0, 20_000),
    image_out=st.integers(0, 20_000),
)
def test_modality_total_equals_genai_prices(
    model, text_in, audio_in, image_in, cached_share, text_out, audio_out, image_out
):
    name, provider = model
    cached_audio = int(audio_in * cached_share)
    cached_image = int(image_in * cached_share)
    cached = int(text_in * cached_share) + cached_audio + cached_image
    usage = Usage(
        input_tokens=text_in + audio_in + image_in,
        output_tokens=text_out + audio_out + image_out,
        cache_read_tokens=cached,
        input_audio_tokens=audio_in,
        cache_audio_read_tokens=cached_audio,
        output_audio_tokens=audio_out,
        input_image_tokens=image_in,
        cache_image_read_tokens=cached_image,
        output_image_tokens=image_out,
    )
    try:
        reference = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=cached,
                input_audio_tokens=audio_in,
                cache_audio_read_tokens=cached_audio,
                output_audio_tokens=audio_out,
                input_image_tokens=image_in,
                cache_image_read_tokens=cached_image,
                output_image_tokens=image_out,
            ),
            name,
            provider_id=provider,
        )
    except ValueError:
        return  # genai-prices refuses this split for this model (an unpriced sub-unit overlap)
    cost = Pricer(overrides_path="").price(usage, name, provider_id=provider)
    assert cost.total == pytest.approx(float(reference.total_price), rel=1e-9, abs=1e-12)


def test_override_audio_price_applies_to_audio_tokens(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n  - model: voice-1\n    input_mtok: 1\n    output_mtok: 2\n"
        "    input_audio_mtok: 10\n    output_audio_mtok: 20\n"
    )
    usage = Usage(
        input_tokens=2_000_000, output_tokens=2_000_000, input_audio_tokens=1_000_000, output_audio_tokens=1_000_000
    )
    cost = Pricer(overrides_path=path).price(usage, "voice-1")
    assert cost.input == pytest.approx(1 + 10)
    assert cost.output == pytest.approx(2 + 20)


def test_usage_reads_modalities_from_openai_and_gemini():
    openai = openai_usage_of(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 10, "audio_tokens": 40},
            "completion_tokens_details": {"audio_tokens": 30, "reasoning_tokens": 5},
        }
    )
    assert (openai.input_audio_tokens, openai.output_audio_tokens) == (40, 30)
    gemini = gemini_usage_of(
        {
            "prompt_token_count": 100,
            "cached_content_token_count": 20,
            "candidates_token_count": 60,
            "prompt_tokens_details": [
                {"modality": "TEXT", "token_count": 50},
                {"modality": "AUDIO", "token_count": 50},
            ],
            "cache_tokens_details": [{"modality": "AUDIO", "token_count": 20}],
            "candidates_tokens_details": [{"modality": "IMAGE", "token_count": 60}],
        }
    )
    assert (gemini.input_audio_tokens, gemini.cache_audio_read_tokens, gemini.output_image_tokens) == (50, 20, 60)
    # Subsets never exceed their totals, whatever the provider sends.
    odd = openai_usage_of({"prompt_tokens": 5, "prompt_tokens_details": {"audio_tokens": 50}})
    assert odd.input_audio_tokens == 5
    both = openai.plus(gemini)
    assert both.input_audio_tokens == 90 and both.input_tokens == 200
