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
apart bills those tokens at that price instead of the text price. Each ``from_*`` constructor is the single rule for one
provider's shape and accepts SDK objects and plain dicts alike, tolerating missing
fields and wrong types: a bad shape gives ``None``, never an exception.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Usage", "field", "as_int"]


def field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK models, ``obj[name]`` for dicts, ``None`` otherwise."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def as_int(value: Any) -> int:
    """A non-negative token count, or 0 for anything that is not one (bools excluded)."""
    if type(value) is int:
        return value if value > 0 else 0
    if isinstance(value, float) and value == value and 0 < value < 1e15:
        return int(value)
    return 0


class Usage:
    """Normalized token counts of one call (see the module docstring for the meaning)."""

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

    # --- provider rules -------------------------------------------------------

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """Chat Completions (prompt_/completion_tokens) and Responses API (input_/output_tokens)."""
        if usage is None:
            return None
        prompt = field(usage, "prompt_tokens")
        if prompt is not None:
            input_details = field(usage, "prompt_tokens_details")
            output_details = field(usage, "completion_tokens_details")
            completion = field(usage, "completion_tokens")
        else:
            prompt = field(usage, "input_tokens")
            if prompt is None:
                return None
            input_details = field(usage, "input_tokens_details")
            output_details = field(usage, "output_tokens_details")
            completion = field(usage, "output_tokens")
        cache_read = as_int(field(input_details, "cached_tokens"))
        input_tokens = max(as_int(prompt), cache_read)
        output_tokens = as_int(completion)
        input_audio = min(as_int(field(input_details, "audio_tokens")), input_tokens)
        input_image = min(as_int(field(input_details, "image_tokens")), input_tokens - input_audio)
        output_audio = min(as_int(field(output_details, "audio_tokens")), output_tokens)
        output_image = min(as_int(field(output_details, "image_tokens")), output_tokens - output_audio)
        return cls(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            reasoning_tokens=as_int(field(output_details, "reasoning_tokens")),
            input_audio_tokens=input_audio,
            output_audio_tokens=output_audio,
            input_image_tokens=input_image,
            output_image_tokens=output_image,
        )

    @classmethod
    def from_anthropic(cls, usage: Any) -> Usage | None:
        """Messages API usage; input_tokens there excludes cache reads and writes."""
        if usage is None:
            return None
        uncached = as_int(field(usage, "input_tokens"))
        cache_read = as_int(field(usage, "cache_read_input_tokens"))
        cache_write = as_int(field(usage, "cache_creation_input_tokens"))
        split = field(usage, "cache_creation")
        write_5m = as_int(field(split, "ephemeral_5m_input_tokens"))
        write_1h = as_int(field(split, "ephemeral_1h_input_tokens"))
        # The TTL split, when present, is authoritative; the total is kept if it is larger.
        cache_write = max(cache_write, write_5m + write_1h)
        output = as_int(field(usage, "output_tokens"))
        # output_tokens includes thinking; output_tokens_details.thinking_tokens (newer
        # APIs) only says how much of it was reasoning.
        thinking = as_int(field(field(usage, "output_tokens_details"), "thinking_tokens"))
        return cls(
            input_tokens=uncached + cache_read + cache_write,
            output_tokens=output,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cache_write_1h_tokens=write_1h,
            reasoning_tokens=min(thinking, output),
        )

    @classmethod
    def from_gemini(cls, usage_metadata: Any) -> Usage | None:
        """google-genai usage_metadata; thoughts are billed as output."""
        if usage_metadata is None:
            return None
        prompt = as_int(field(usage_metadata, "prompt_token_count"))
        tool_prompt = as_int(field(usage_metadata, "tool_use_prompt_token_count"))
        cached = as_int(field(usage_metadata, "cached_content_token_count"))
        candidates = as_int(field(usage_metadata, "candidates_token_count"))
        thoughts = as_int(field(usage_metadata, "thoughts_token_count"))
        input_tokens = max(prompt + tool_prompt, cached)
        prompt_modes = _gemini_modalities(field(usage_metadata, "prompt_tokens_details"))
        cache_modes = _gemini_modalities(field(usage_metadata, "cache_tokens_details"))
        output_modes = _gemini_modalities(field(usage_metadata, "candidates_tokens_details"))
        input_audio = min(prompt_modes.get("AUDIO", 0), input_tokens)
        input_image = min(prompt_modes.get("IMAGE", 0), input_tokens - input_audio)
        output_audio = min(output_modes.get("AUDIO", 0), candidates)
        return cls(
            input_tokens=input_tokens,
            output_tokens=candidates + thoughts,
            cache_read_tokens=cached,
            reasoning_tokens=thoughts,
            input_audio_tokens=input_audio,
            cache_audio_read_tokens=min(cache_modes.get("AUDIO", 0), input_audio, cached),
            output_audio_tokens=output_audio,
            input_image_tokens=input_image,
            cache_image_read_tokens=min(cache_modes.get("IMAGE", 0), input_image, cached),
            output_image_tokens=min(output_modes.get("IMAGE", 0), candidates - output_audio),
        )


def _gemini_modalities(details: Any) -> dict[str, int]:
    """``[ModalityTokenCount(modality=AUDIO, token_count=n), ...]`` as ``{"AUDIO": n}``."""
    counts: dict[str, int] = {}
    if not isinstance(details, (list, tuple)):
        return counts
    for item in details:
        modality = field(item, "modality")
        name = getattr(modality, "value", modality)  # an enum in the SDK, a string in dicts
        if isinstance(name, str):
            counts[name.upper()] = counts.get(name.upper(), 0) + as_int(field(item, "token_count"))
    return counts


# Every count field, for arithmetic over all of them (plus(), equality).
_COUNTS = tuple(name for name in Usage.__slots__ if name != "estimated")
