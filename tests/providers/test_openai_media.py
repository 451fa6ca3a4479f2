"""OpenAI images and audio through the real openai SDK against the fake provider: one span per
call, priced from the tokens the response reports (GPT Image, gpt-4o transcribe models) or
the unit genai-prices bills the model by (whisper-1's audio seconds, tts-1's characters), and
unpriced, never $0, where nothing priceable is reported (DALL-E, a text-format transcription,
gpt-4o-mini-tts, a model genai-prices does not know) (issue 23)."""

from __future__ import annotations

import asyncio

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import Reply, openai_client
from otel_llmcost.providers import openai_media
from otel_llmcost.providers.base import ResponseRecord
from otel_llmcost.providers.openai import OpenAIProvider
from tests.helpers.fuzz_values import PROVIDER_FUZZ, json_values

# genai-prices, USD per million tokens:
#   gpt-image-1: text input 5, image input 10, output 40;
#   gpt-4o-transcribe: text input 2.5, audio input 6, output 10;
#   gpt-4o-mini-transcribe: audio input 3, output 5.
# genai-prices, in other units: whisper-1 $0.36 per hour of input audio; tts-1 $15 and
# tts-1-hd $30 per million input characters. DALL-E has no price at all; gpt-4o-mini-tts is
# priced by tokens that speech responses never state.
AUDIO = ("a.mp3", b"fake audio", "audio/mpeg")
_VALUES = json_values(max_int=2**40, text_size=8)


@pytest.fixture
def openai_only(instrument, otel):  # type: ignore[no-untyped-def]
    instrument(providers=("openai",), limiters=())
    return otel


def assert_unpriced(attrs) -> None:  # type: ignore[no-untyped-def]
    assert attrs[semconv.UNPRICED] is True
    assert semconv.COST_TOTAL not in attrs
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in attrs  # nothing reported: no made-up zeros


# --- images --------------------------------------------------------------------------------


def test_gpt_image_generation_is_priced_from_its_token_usage(openai_only, fake):
    fake.enqueue(
        Reply(
            usage={
                "input_tokens": 50,
                "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
                "output_tokens": 4160,
                "total_tokens": 4210,
            }
        )
    )
    openai_client(fake).images.generate(model="gpt-image-1", prompt="a lighthouse at dusk", quality="high")

    span = openai_only.only_span()
    assert span.name == "image_generation gpt-image-1"
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "image_generation"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 50
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4160
    assert attrs[semconv.USAGE_IMAGES] == 1
    # 50 * 5 / 1e6 + 4160 * 40 / 1e6 = 0.00025 + 0.1664 = $0.16665
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.16665)
    assert attrs[semconv.PRICE_MODEL] == "gpt-image-1"
    assert semconv.UNPRICED not in attrs
    # A prompt is no conversation: no anatomy.
    assert not [name for name in attrs if name.startswith(semconv.PROMPT_COMPONENT_PREFIX)]


def test_gpt_image_edit_prices_input_image_tokens_apart_async(openai_only, fake):
    fake.enqueue(
        Reply(
            usage={
                "input_tokens": 300,
                "input_tokens_details": {"text_tokens": 20, "image_tokens": 280},
                "output_tokens": 1056,
                "total_tokens": 1356,
            }
        )
    )
    client = openai_client(fake, is_async=True)
    asyncio.run(
        client.images.edit(model="gpt-image-1", image=("in.png", b"\x89PNG fake", "image/png"), prompt="add a hat")
    )

    attrs = openai_only.only_span().attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "image_edit"
    assert attrs[semconv.USAGE_INPUT_IMAGE_TOKENS] == 280
    # 20 * 5 + 280 * 10 + 1056 * 40 = 100 + 2800 + 42240 -> $0.04514
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.04514)


def test_image_stream_is_priced_from_its_completed_event(openai_only, fake):
    events = list(openai_client(fake).images.generate(model="gpt-image-1", prompt="a cat", quality="low", stream=True))

    assert [event.type for event in events] == ["image_generation.partial_image", "image_generation.completed"]
    attrs = openai_only.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.USAGE_IMAGES] == 1
    tokens_in = attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS]
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 272
    assert attrs[semconv.COST_TOTAL] == pytest.approx((tokens_in * 5 + 272 * 40) / 1e6)


def test_dall_e_image_is_unpriced_never_free(openai_only, fake):
    response = openai_client(fake).images.generate(model="dall-e-3", prompt="a cat", n=1)

    assert response.usage is None
    attrs = openai_only.only_span().attributes
    assert_unpriced(attrs)
    assert attrs[semconv.USAGE_IMAGES] == 1
    assert attrs[semconv.PRICE_PROVIDER] == "openai"
    unpriced = openai_only.metrics()[semconv.METRIC_UNPRICED_CALLS]
    assert sum(point.value for point in unpriced) == 1


def test_failed_image_call_is_an_error_not_unpriced(openai_only, fake):
    fake.enqueue(Reply(status=400, body={"error": {"message": "bad size", "type": "invalid_request_error"}}))
    with pytest.raises(openai.BadRequestError):
        openai_client(fake, max_retries=0).images.generate(model="gpt-image-1", prompt="a cat", size="1x1")

    attrs = openai_only.only_span().attributes
    assert attrs[semconv.ERROR_TYPE] == "BadRequestError"
    assert semconv.UNPRICED not in attrs


# --- audio ---------------------------------------------------------------------------------


def test_gpt_4o_transcription_prices_audio_tokens(openai_only, fake):
    fake.enqueue(
        Reply(
            usage={
                "type": "tokens",
                "input_tokens": 1000,
                "input_token_details": {"text_tokens": 40, "audio_tokens": 960},
                "output_tokens": 200,
                "total_tokens": 1200,
            }
        )
    )
    openai_client(fake).audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, prompt="names: Ada")

    span = openai_only.only_span()
    assert span.name == "transcription gpt-4o-transcribe"
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1000
    assert attrs[semconv.USAGE_INPUT_AUDIO_TOKENS] == 960
    # 40 * 2.5 + 960 * 6 + 200 * 10 = 100 + 5760 + 2000 -> $0.00786
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.00786)


def test_transcription_async_and_streamed_are_priced(openai_only, fake):
    async def transcribe() -> None:
        await openai_client(fake, is_async=True).audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO)

    asyncio.run(transcribe())
    # the fake: 120 audio tokens in, 7 out -> 120 * 6 + 7 * 10 = $0.00079
    assert openai_only.only_span().attributes[semconv.COST_TOTAL] == pytest.approx(0.00079)
    openai_only.clear()

    stream = openai_client(fake).audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=AUDIO, stream=True)
    text = "".join(event.delta for event in stream if event.type == "transcript.text.delta")

    assert text == fake.reply_text
    attrs = openai_only.only_span().attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    # 120 * 3 + 7 * 5 = $0.000395
    assert attrs[semconv.COST_TOTAL] == pytest.approx(0.000395)


def assert_priced(attrs, total: float, model: str) -> None:  # type: ignore[no-untyped-def]
    assert semconv.UNPRICED not in attrs
    assert attrs[semconv.COST_TOTAL] == pytest.approx(total, rel=1e-12)
    assert attrs[semconv.COST_INPUT] == pytest.approx(total, rel=1e-12)  # audio in or text in: input
    assert attrs[semconv.COST_OUTPUT] == 0
    assert attrs[semconv.PRICE_MODEL] == model
    assert attrs[semconv.PRICE_PROVIDER] == "openai"
    assert attrs[semconv.PRICE_SOURCE] == "genai-prices"
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in attrs  # billed by another unit: no made-up zeros


def genai_prices_total(model: str, **usage: float) -> float:
    """The price genai-prices itself computes (its own calculator over its own data)."""
    import genai_prices

    return float(genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id="openai").total_price)


def test_whisper_transcription_is_priced_per_audio_hour(openai_only, fake):
    fake.enqueue(Reply(usage={"type": "duration", "seconds": 90}))
    response = openai_client(fake).audio.transcriptions.create(model="whisper-1", file=AUDIO)

    assert response.usage.seconds == 90
    attrs = openai_only.only_span().attributes
    assert attrs[semconv.USAGE_AUDIO_SECONDS] == 90
    # 90 s of audio at $0.36 an hour: 90 / 3600 * 0.36 = $0.009
    assert_priced(attrs, 0.009, "whisper-1")
    assert 0.009 == pytest.approx(genai_prices_total("whisper-1", audio_seconds=90, input_audio_seconds=90))
    assert semconv.METRIC_UNPRICED_CALLS not in openai_only.metrics()


def test_whisper_default_duration_async_and_translation_are_priced(openai_only, fake):
    async def transcribe() -> None:
        await openai_client(fake, is_async=True).audio.transcriptions.create(model="whisper-1", file=AUDIO)

    asyncio.run(transcribe())
    # the fake reports 12.5 s: 12.5 / 3600 * 0.36 = $0.00125
    assert_priced(openai_only.only_span().attributes, 0.00125, "whisper-1")
    openai_only.clear()

    openai_client(fake).audio.translations.create(model="whisper-1", file=AUDIO)
    attrs = openai_only.only_span().attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "translation"
    assert_priced(attrs, 0.00125, "whisper-1")


def test_text_format_transcription_reports_nothing_so_is_unpriced(openai_only, fake):
    text = openai_client(fake).audio.transcriptions.create(
        model="gpt-4o-transcribe", file=AUDIO, response_format="text"
    )

    assert text == fake.reply_text
    assert_unpriced(openai_only.only_span().attributes)


def test_text_format_translation_is_one_unpriced_span(openai_only, fake):
    openai_client(fake).audio.translations.create(model="whisper-1", file=AUDIO, response_format="text")

    attrs = openai_only.only_span().attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "translation"
    assert semconv.USAGE_AUDIO_SECONDS not in attrs  # the duration is never guessed from the file
    assert_unpriced(attrs)


def test_speech_is_priced_per_character_sync_and_async(openai_only, fake):
    text = "x" * 1000
    audio = openai_client(fake).audio.speech.create(model="tts-1", voice="alloy", input=text)

    assert audio.content.startswith(b"ID3")
    span = openai_only.only_span()
    assert span.name == "speech tts-1"
    assert span.attributes[semconv.USAGE_INPUT_CHARACTERS] == 1000
    # 1,000 characters at $15 per million: $0.015
    assert_priced(span.attributes, 0.015, "tts-1")
    assert 0.015 == pytest.approx(genai_prices_total("tts-1", input_characters=1000))
    openai_only.clear()

    async def speak() -> None:
        await openai_client(fake, is_async=True).audio.speech.create(model="tts-1-hd", voice="alloy", input=text)

    asyncio.run(speak())
    # tts-1-hd: $30 per million characters: $0.030
    assert_priced(openai_only.only_span().attributes, 0.030, "tts-1-hd")
    assert 0.030 == pytest.approx(genai_prices_total("tts-1-hd", input_characters=1000))


def test_streamed_speech_is_one_priced_span(openai_only, fake):
    client = openai_client(fake)
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="Hi") as response:
        body = b"".join(response.iter_bytes())

    assert body.startswith(b"ID3")
    assert_priced(openai_only.only_span().attributes, 2 * 15 / 1e6, "tts-1")


def test_speech_by_a_token_priced_or_unknown_model_stays_unpriced_never_free(openai_only, fake):
    # gpt-4o-mini-tts is priced by tokens the response never states; tts-9 has no price at all.
    for model in ("gpt-4o-mini-tts", "tts-9"):
        openai_client(fake).audio.speech.create(model=model, voice="alloy", input="Hello, world")
        attrs = openai_only.only_span().attributes
        assert attrs[semconv.USAGE_INPUT_CHARACTERS] == 12
        assert_unpriced(attrs)
        openai_only.clear()


def test_failed_speech_is_an_error_not_priced_or_unpriced(openai_only, fake):
    fake.enqueue(Reply(status=400, body={"error": {"message": "bad voice", "type": "invalid_request_error"}}))
    with pytest.raises(openai.BadRequestError):
        openai_client(fake, max_retries=0).audio.speech.create(model="tts-1", voice="nobody", input="Hi")

    attrs = openai_only.only_span().attributes
    assert attrs[semconv.ERROR_TYPE] == "BadRequestError"
    assert semconv.UNPRICED not in attrs
    assert semconv.COST_TOTAL not in attrs


def test_draft_cost_attributes_carry_the_audio_price(instrument, otel, fake):
    instrument(providers=("openai",), limiters=(), emit_draft_cost=True)
    openai_client(fake).audio.speech.create(model="tts-1", voice="alloy", input="x" * 1000)

    attrs = otel.only_span().attributes
    assert attrs[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(0.015)
    assert attrs[semconv.GEN_AI_USAGE_COST_CURRENCY] == "USD"
    assert attrs[semconv.GEN_AI_USAGE_COST_SOURCE] == semconv.COST_SOURCE_LOCAL


# --- any shape -----------------------------------------------------------------------------

_MEDIA_USAGE_KEYS = st.sampled_from(
    ["type", "input_tokens", "output_tokens", "seconds", "input_token_details", "input_tokens_details"]
)
_MEDIA_EVENTS = st.sampled_from(
    ["image_generation.completed", "image_edit.completed", "transcript.text.done", "transcript.text.delta"]
)


@PROVIDER_FUZZ
@given(
    operation=st.sampled_from(sorted(openai_media.OPERATION_KINDS)),
    usage=st.one_of(_VALUES, st.dictionaries(_MEDIA_USAGE_KEYS, _VALUES, max_size=4)),
    data=_VALUES,
    event_type=_MEDIA_EVENTS,
)
def test_any_image_or_audio_response_shape_is_survived(operation, usage, data, event_type):
    provider = OpenAIProvider()
    record = ResponseRecord(operation=operation, output_parts=[])
    provider.read_response(record, {"usage": usage, "data": data, "text": data})
    provider.read_chunk(record, {"type": event_type, "usage": usage, "delta": data})
    assert record.usage is None or record.usage.input_tokens >= record.usage.input_audio_tokens
