"""One normalized token record for every provider.

Providers disagree on what "input tokens" means:

* OpenAI: ``prompt_tokens`` / ``input_tokens`` INCLUDE ``cached_tokens``; reasoning tokens
  are part of ``completion_tokens``.
* Anthropic: ``input_tokens`` EXCLUDES ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens`` (the latter optionally split by TTL into
  ``ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``).
* Gemini: ``prompt_token_count`` INCLUDES ``cached_content_token_count``;
  ``thoughts_token_count`` is reported beside ``candidates_token_count`` and billed as output.

``Usage`` fixes one meaning for all of them, the one the GenAI semconv uses for
``gen_ai.usage.input_tokens``::

    input_tokens  = uncached input + cache_read_tokens + cache_write_tokens
    output_tokens = visible output + reasoning_tokens

so that ``cost = uncached*in + cache_read*read + cache_write*write + output*out``
holds for every provider. Audio and image tokens are *subsets* of those totals
(``input_audio_tokens`` of ``input_tokens``, ``cache_audio_read_tokens`` of both
``input_audio_tokens`` and ``cache_read_tokens``, ``output_image_tokens`` of
``output_tokens``, ...), as genai-prices counts them: a model that prices a modality
apart bills those tokens at that price instead of the text price.

Two counts are not tokens: ``audio_seconds`` (input audio a transcription billed: whisper-1)
and ``input_characters`` (text sent to speech: tts-1). genai-prices prices a few models by
them (per audio hour, per million characters) and no tokens at all; a usage with either is
priced only by a price that has that unit (``pricing.formula.cost_of``), never as free tokens.

Reading a provider's usage object into a ``Usage`` is the provider module's job
(``otel_llmcost.providers.<provider>.parse_usage``): the one rule per provider shape.
"""

from __future__ import annotations

from operator import attrgetter

__all__ = ["INT64_MAX", "Usage", "int64"]

# OTLP integer attributes are int64: a larger Python int is dropped by the exporter (with
# an ERROR per span), so counts are capped here before they become attributes.
INT64_MAX = 2**63 - 1


def int64(count: int) -> int:
    """``count`` capped at :data:`INT64_MAX`, so it can be exported."""
    return count if count <= INT64_MAX else INT64_MAX


class Usage:
    """Normalized token counts of one call, and the other units it was billed by (see the module
    docstring for the meaning)."""

    __slots__ = (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "reasoning_tokens",
        "input_audio_tokens",
        "cache_audio_read_tokens",
        "output_audio_tokens",
        "input_image_tokens",
        "cache_image_read_tokens",
        "output_image_tokens",
        "audio_seconds",
        "input_characters",
        "estimated",
    )

    def __init__(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        reasoning_tokens: int = 0,
        estimated: bool = False,
        *,
        input_audio_tokens: int = 0,
        cache_audio_read_tokens: int = 0,
        output_audio_tokens: int = 0,
        input_image_tokens: int = 0,
        cache_image_read_tokens: int = 0,
        output_image_tokens: int = 0,
        audio_seconds: float = 0.0,
        input_characters: int = 0,
    ) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cache_read_tokens = cache_read_tokens
        # Total cache writes, of which cache_write_1h_tokens were written with the 1-hour TTL;
        # the rest used the provider's default (5 minutes).
        self.cache_write_tokens = cache_write_tokens
        self.cache_write_1h_tokens = cache_write_1h_tokens
        self.reasoning_tokens = reasoning_tokens
        self.estimated = estimated
        # Modality subsets (see the module docstring); zero for text-only calls.
        self.input_audio_tokens = input_audio_tokens
        self.cache_audio_read_tokens = cache_audio_read_tokens
        self.output_audio_tokens = output_audio_tokens
        self.input_image_tokens = input_image_tokens
        self.cache_image_read_tokens = cache_image_read_tokens
        self.output_image_tokens = output_image_tokens
        # Billing units other than tokens (see the module docstring); zero for token-billed calls.
        self.audio_seconds = audio_seconds
        self.input_characters = input_characters

    @property
    def uncached_input_tokens(self) -> int:
        return max(self.input_tokens - self.cache_read_tokens - self.cache_write_tokens, 0)

    @property
    def cache_write_5m_tokens(self) -> int:
        return max(self.cache_write_tokens - self.cache_write_1h_tokens, 0)

    @property
    def cache_write_ttl(self) -> str | None:
        if not self.cache_write_tokens:
            return None
        if self.cache_write_1h_tokens >= self.cache_write_tokens:
            return "1h"
        if self.cache_write_1h_tokens:
            return "mixed"
        return "5m"

    @property
    def has_modalities(self) -> bool:
        """Whether any audio or image tokens were reported (the rare, slower pricing path)."""
        return bool(
            self.input_audio_tokens or self.output_audio_tokens or self.input_image_tokens or self.output_image_tokens
        )

    @property
    def has_units(self) -> bool:
        """Whether the usage counts audio seconds or input characters (the units some audio
        models are billed by instead of tokens)."""
        return bool(self.audio_seconds or self.input_characters)

    @property
    def counts_tokens(self) -> bool:
        """Whether any token count is reported (False for a usage in other units only)."""
        return bool(self.input_tokens or self.output_tokens or self.cache_read_tokens or self.cache_write_tokens)

    @property
    def units_only(self) -> bool:
        """Whether the usage counts units other than tokens and no token (whisper-1's seconds,
        speech's characters): there is no token count to record or to meter."""
        return self.has_units and not self.counts_tokens

    @property
    def largest_count(self) -> int:
        """What a plausibility bound is compared with: input + output, or any one count if larger
        (a provider can report a subset, e.g. cache reads, that is absurd on its own)."""
        return max(self.input_tokens + self.output_tokens, *_token_counts_of(self))

    def plus(self, other: Usage) -> Usage:
        """The usage of two requests billed separately (e.g. the hops of one logical call)."""
        total = Usage()
        for name in _COUNTS:
            setattr(total, name, getattr(self, name) + getattr(other, name))
        total.estimated = self.estimated or other.estimated
        return total

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Usage):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self) -> str:
        parts = ", ".join(f"{s}={getattr(self, s)!r}" for s in self.__slots__)
        return f"Usage({parts})"


# Every count field, for arithmetic over all of them (plus(), equality).
_COUNTS = tuple(name for name in Usage.__slots__ if name != "estimated")
# Every token count, in one C call (largest_count is on the hot path; seconds and characters
# are no tokens and have no token bound).
_token_counts_of = attrgetter(*(name for name in _COUNTS if name not in ("audio_seconds", "input_characters")))
