"""OpenAI's image and audio endpoints: ``images.generate`` / ``images.edit``,
``audio.transcriptions.create`` / ``audio.translations.create`` and ``audio.speech.create``.

They are priced from what a response (or, for speech, the request) states in a unit
genai-prices prices the model by:

- GPT Image models (gpt-image-1, -1-mini, -1.5, ...) return ``usage`` with
  ``input_tokens`` (text + image, split in ``input_tokens_details``) and ``output_tokens``
  (``output_tokens_details`` splits image and text, where sent); genai-prices prices input
  image tokens apart. A stream reports it on ``image_generation.completed`` /
  ``image_edit.completed``. DALL-E returns no usage (genai-prices has no DALL-E price either).
- gpt-4o-transcribe and gpt-4o-mini-transcribe return ``usage`` of type ``tokens``:
  ``input_tokens`` with ``input_token_details.audio_tokens`` / ``text_tokens`` (note
  "token", not "tokens") and ``output_tokens``; a stream reports it on
  ``transcript.text.done``. whisper-1 reports ``usage`` of type ``duration`` (``seconds``):
  recorded (``llmcost.usage.audio_seconds``) and priced per hour of input audio
  (genai-prices: $0.36 an hour). A text, SRT or VTT ``response_format`` returns a bare
  string: nothing to price.
- Speech returns audio bytes and no usage at all: the characters sent are recorded
  (``llmcost.usage.input_characters``) and are the call's usage (``Request.billed_usage``)
  once it succeeds. tts-1 and tts-1-hd are priced per million characters (genai-prices: $15
  and $30); gpt-4o-mini-tts is priced by tokens the response never states, so it stays
  unpriced (characters are no tokens: :func:`otel_llmcost.pricing.formula.cost_of`).

A call whose response reports nothing priceable is marked ``llmcost.unpriced`` (never a cost
of 0): ``Request.unpriced_without_usage``. The audio file is never read or hashed.
"""

from __future__ import annotations

from typing import Any

from .. import semconv
from ..pricing.usage import Usage
from .base import Api, PromptView, ResponseRecord
from .fields import as_float, as_int, field

IMAGES = "images"
TRANSCRIPTION = "transcription"
SPEECH = "speech"
KINDS = frozenset({IMAGES, TRANSCRIPTION, SPEECH})
# gen_ai.operation.name -> which response shape it returns (ResponseRecord.operation).
OPERATION_KINDS: dict[str, str] = {
    semconv.OPERATION_IMAGE_GENERATION: IMAGES,
    semconv.OPERATION_IMAGE_EDIT: IMAGES,
    semconv.OPERATION_TRANSCRIPTION: TRANSCRIPTION,
    semconv.OPERATION_TRANSLATION: TRANSCRIPTION,
    semconv.OPERATION_SPEECH: SPEECH,
}

_IMAGES = "openai.resources.images"
_TRANSCRIPTIONS = "openai.resources.audio.transcriptions"
_TRANSLATIONS = "openai.resources.audio.translations"
_SPEECH = "openai.resources.audio.speech"

APIS = (
    Api(_IMAGES, "Images.generate", semconv.OPERATION_IMAGE_GENERATION, False, IMAGES),
    Api(_IMAGES, "AsyncImages.generate", semconv.OPERATION_IMAGE_GENERATION, True, IMAGES),
    Api(_IMAGES, "Images.edit", semconv.OPERATION_IMAGE_EDIT, False, IMAGES),
    Api(_IMAGES, "AsyncImages.edit", semconv.OPERATION_IMAGE_EDIT, True, IMAGES),
    Api(_TRANSCRIPTIONS, "Transcriptions.create", semconv.OPERATION_TRANSCRIPTION, False, TRANSCRIPTION),
    Api(_TRANSCRIPTIONS, "AsyncTranscriptions.create", semconv.OPERATION_TRANSCRIPTION, True, TRANSCRIPTION),
    Api(_TRANSLATIONS, "Translations.create", semconv.OPERATION_TRANSLATION, False, TRANSCRIPTION),
    Api(_TRANSLATIONS, "AsyncTranslations.create", semconv.OPERATION_TRANSLATION, True, TRANSCRIPTION),
    Api(_SPEECH, "Speech.create", semconv.OPERATION_SPEECH, False, SPEECH),
    Api(_SPEECH, "AsyncSpeech.create", semconv.OPERATION_SPEECH, True, SPEECH),
)

# Stream events that end an image or transcription stream with its usage.
_IMAGE_COMPLETED = frozenset({"image_generation.completed", "image_edit.completed"})
_TRANSCRIPT_DONE = "transcript.text.done"
_TRANSCRIPT_DELTA = "transcript.text.delta"
EVENTS = _IMAGE_COMPLETED | {_TRANSCRIPT_DONE, _TRANSCRIPT_DELTA}


def prompt(kind: str, kwargs: dict[str, Any]) -> PromptView:
    """The text of the request, hashed like a prompt: the image prompt, the text to speak, a
    transcription's ``prompt`` hint (never the audio)."""
    text = kwargs.get("input") if kind == SPEECH else kwargs.get("prompt")
    return PromptView(messages=[text] if isinstance(text, str) and text else [])


def request_attributes(kind: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    if kind == SPEECH:
        text = kwargs.get("input")
        if isinstance(text, str):
            return {semconv.USAGE_INPUT_CHARACTERS: len(text)}
    return None


def billed_usage(kind: str, kwargs: dict[str, Any]) -> Usage | None:
    """What the request alone bills: the characters a speech request sends (None otherwise)."""
    if kind == SPEECH:
        text = kwargs.get("input")
        if isinstance(text, str):
            return Usage(input_characters=len(text))
    return None


def parse_transcription_usage(usage: Any) -> Usage | None:
    """A transcription's ``usage`` of type ``tokens``; None for ``duration`` (whisper-1) or none."""
    if usage is None or field(usage, "input_tokens") is None:
        return None
    input_tokens = as_int(field(usage, "input_tokens"))
    details = field(usage, "input_token_details")
    if details is None:
        details = field(usage, "input_tokens_details")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=as_int(field(usage, "output_tokens")),
        input_audio_tokens=min(as_int(field(details, "audio_tokens")), input_tokens),
    )


def read_response(record: ResponseRecord, response: Any, kind: str, parse_usage: Any) -> None:
    """An ImagesResponse, a Transcription / Translation (or the bare string a text format
    returns), or speech audio (nothing to read)."""
    if kind == IMAGES:
        usage = parse_usage(field(response, "usage"))
        if usage is not None:
            record.usage = usage
        data = field(response, "data")
        if isinstance(data, list):
            record.set_attribute(semconv.USAGE_IMAGES, len(data))
    elif kind == TRANSCRIPTION and not isinstance(response, (str, bytes)):
        _read_transcription_usage(record, field(response, "usage"))


def read_event(record: ResponseRecord, event_type: str, event: dict[str, Any], parse_usage: Any) -> None:
    """One of :data:`EVENTS` of an image or transcription stream."""
    if event_type == _TRANSCRIPT_DELTA:
        record.add_output(event.get("delta"))
    elif event_type == _TRANSCRIPT_DONE:
        _read_transcription_usage(record, event.get("usage"))
    else:  # an image completed
        usage = parse_usage(event.get("usage"))
        if usage is not None:
            record.usage = usage  # the request's usage (a stream makes one image)
        images = record.attributes.get(semconv.USAGE_IMAGES, 0) if record.attributes else 0
        record.set_attribute(semconv.USAGE_IMAGES, images + 1)


def _read_transcription_usage(record: ResponseRecord, usage: Any) -> None:
    parsed = parse_transcription_usage(usage)
    if parsed is not None:
        record.usage = parsed
        return
    seconds = as_float(field(usage, "seconds"))
    if seconds is not None and 0 <= seconds < 1e9:  # NaN and infinity fail this too
        record.set_attribute(semconv.USAGE_AUDIO_SECONDS, seconds)
        record.usage = Usage(audio_seconds=seconds)  # whisper-1: billed by the second of audio
