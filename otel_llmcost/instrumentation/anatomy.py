"""Prompt anatomy: where the input tokens of a call go.

Each traced call gets ``llmcost.prompt.component.{system,tools,context,history,latest}``:
the prompt's input tokens split by component. Each component is counted locally, by
default at a token per 4 bytes of UTF-8 (:func:`.tokens.estimate_text`; with
``OTEL_LLMCOST_PROMPT_COUNTER=tiktoken``, o200k/cl100k for OpenAI models and o200k as an
estimate for others, at ~80 MB of memory per process), and when the call ends the counts
are scaled to the input tokens the provider reported (:func:`scaled`): the components add
up to ``gen_ai.usage.input_tokens``, and only the split is an estimate.

``system``
    system/developer messages and the system prompt given apart from them (Anthropic's
    ``system=``, the Responses API's ``instructions=``, Gemini's
    ``config.system_instruction``: the provider's :class:`PromptView` says which, and
    never lists it twice);
``tools``
    tool (function) definitions, counted on their JSON (providers render them in
    their own format, so this is an estimate of the same size);
``context``
    retrieved context *the app marks*, in any message:

    * a message whose ``name`` starts with ``context`` (OpenAI's optional ``name``
      field: ``{"role": "user", "name": "context", "content": docs}``),
    * a content part of type ``document`` or ``search_result`` (Anthropic's own
      types for retrieved material),
    * a text (message or part) that starts with an XML-style tag ``<context``,
      ``<document``, ``<documents`` or ``<retrieved`` — the wrapping that prompt
      guides recommend for retrieved text, so marked RAG prompts need no change;

``history``
    every other message before the last one (including tool calls and results);
``latest``
    the last message (unmarked parts) and the reply primer.

Unscaled, the components add up to the prompt estimate (chat-format overhead per message
included, as :func:`otel_llmcost.instrumentation.tokens.count_messages` counts it), which
is the input side of the budgets' pre-call estimate and what a failed call records.

Speed: counts are memoised per distinct text (by hash and length, so the cache holds
integers, never prompt text), and the stable part of a prompt — system prompt, tools,
context and history — repeats call after call, so a typical call encodes only its
latest message. ``benchmarks/bench_anatomy.py`` measures it against the bare SDK call.
With prompt hashes on, :meth:`Anatomy.attributes` is also given the call's prefix and
request hashes: a repeated request reuses its whole breakdown, and a new last message
after a known prefix counts only that message (the prefix's components are kept by
prefix hash). The result is the same as counting the whole prompt.

``OTEL_LLMCOST_PROMPT_ANATOMY`` (:mod:`otel_llmcost.config`): ``on`` (default), ``off``,
or a sample rate such as ``0.1``. Default on because the warm cost (a few µs per call, see the benchmark) is
small beside the SDK's own request building, let alone the network call; use a rate
for very high call volumes with huge, always-new prompts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .. import semconv
from ..providers.base import PromptView
from ..providers.fields import plain, to_json
from .tokens import TOKENS_PER_MESSAGE, TOKENS_REPLY_PRIMER, encoding_name_for_model, estimate_text, get_encoding

ATTRIBUTES = tuple(semconv.PROMPT_COMPONENT_PREFIX + name for name in semconv.PROMPT_COMPONENTS)
SYSTEM, TOOLS, CONTEXT, HISTORY, LATEST = range(5)
_SYSTEM_ROLES = ("system", "developer")
_CONTEXT_PART_TYPES = ("document", "search_result")
_CONTEXT_TAGS = ("<context", "<document", "<retrieved")
_CACHE_MAX = 8192
BYTES = "bytes"  # the counter that needs no vocabulary (tokens.estimate_text)


class Anatomy:
    """Counts prompt components; one per process. ``rate`` is the share of calls counted."""

    __slots__ = ("rate", "counter", "_counts", "_random", "_prefixes", "_requests")

    def __init__(self, rate: float = 1.0, counter: str = "bytes") -> None:
        self.rate = rate
        self.counter = counter  # "bytes" or "tiktoken": OTEL_LLMCOST_PROMPT_COUNTER
        self._counts: dict[tuple[int, int, int], int] = {}
        self._random = random.Random()
        # (prefix hash, encoding) -> components of everything before the last message;
        # (request hash, encoding) -> (components, prefix tokens) of the whole prompt.
        self._prefixes: dict[tuple[str, str], tuple[int, ...]] = {}
        self._requests: dict[tuple[str, str], tuple[tuple[int, ...], int]] = {}

    def sampled(self) -> bool:
        return self.rate >= 1.0 or self._random.random() < self.rate

    # --- counting -------------------------------------------------------------------

    def breakdown(self, prompt: PromptView, model: str) -> list[int]:
        """[system, tools, context, history, latest] prompt tokens of one request."""
        return self.measure(prompt, model)[0]

    def measure(self, prompt: PromptView, model: str) -> tuple[list[int], int]:
        """(breakdown, prefix tokens): the prefix is everything before the last message,
        what ``llmcost.prompt.prefix_hash`` covers and a provider can cache."""
        parts, prefix, _ = self._measure(prompt, self._encoding_name(model))
        return parts, prefix

    def _encoding_name(self, model: str) -> str:
        """The cache key of a model's counting: one for every model when counting bytes."""
        return encoding_name_for_model(model) if self.counter == "tiktoken" else BYTES

    def _measure(self, prompt: PromptView, encoding_name: str) -> tuple[list[int], int, tuple[int, ...]]:
        """(breakdown, prefix tokens, the components of the prefix alone)."""
        count = self._counter(encoding_name)
        parts = [0, 0, 0, 0, 0]
        if prompt.system is not None:
            parts[SYSTEM] += _strings(prompt.system, count)
        if prompt.tools:
            parts[TOOLS] += count(to_json(prompt.tools, fallback=""))
        messages = prompt.messages
        last = len(messages) - 1
        for index in range(last):
            _message(messages[index], HISTORY, count, parts)
        prefix_parts = tuple(parts)
        prefix = sum(parts)
        if last >= 0:
            _message(messages[last], LATEST, count, parts)
        parts[LATEST] += TOKENS_REPLY_PRIMER
        return parts, prefix, prefix_parts

    def _measure_keyed(
        self, prompt: PromptView, model: str, prefix_key: str | None, request_key: str
    ) -> tuple[list[int], int]:
        """:meth:`measure`, remembered by the call's request hash, and the prefix's
        components by its prefix hash (None: the prompt has no prefix, all zeros)."""
        encoding_name = self._encoding_name(model)
        requests = self._requests
        key = (request_key, encoding_name)
        known = requests.get(key)
        if known is not None:
            return list(known[0]), known[1]
        if prefix_key is None:
            prefix_parts: tuple[int, ...] | None = (0, 0, 0, 0, 0)
        else:
            prefix_parts = self._prefixes.get((prefix_key, encoding_name))
        if prefix_parts is None:
            parts, prefix, prefix_parts = self._measure(prompt, encoding_name)
            prefixes = self._prefixes
            if len(prefixes) >= _CACHE_MAX:
                prefixes.clear()
            prefixes[(prefix_key, encoding_name)] = prefix_parts  # type: ignore[index]  # not None here
        else:
            parts = list(prefix_parts)
            prefix = sum(parts)
            messages = prompt.messages
            if messages:
                _message(messages[-1], LATEST, self._counter(encoding_name), parts)
            parts[LATEST] += TOKENS_REPLY_PRIMER
        if len(requests) >= _CACHE_MAX:
            requests.clear()
        requests[key] = (tuple(parts), prefix)
        return parts, prefix

    def total(self, prompt: PromptView, model: str) -> int:
        return sum(self.breakdown(prompt, model))

    def attributes(
        self,
        prompt: PromptView,
        model: str,
        evidence_tokens: int = 0,
        *,
        hashes: tuple[str | None, str] | None = None,
    ) -> dict[str, int]:
        """Component attributes and the prefix's tokens; ``evidence_tokens`` (declared by the
        app, :mod:`otel_llmcost.signals.evidence`) count as context (see :func:`claim_context`).
        ``hashes``: the call's (prefix hash, request hash), to reuse what was counted."""
        if hashes is not None:
            parts, prefix = self._measure_keyed(prompt, model, hashes[0], hashes[1])
        else:
            parts, prefix = self.measure(prompt, model)
        if evidence_tokens:
            claim_context(parts, evidence_tokens)
        attrs = dict(zip(ATTRIBUTES, parts, strict=True))
        if prefix:
            attrs[semconv.PROMPT_PREFIX_TOKENS] = prefix
        return attrs

    def _counter(self, encoding_name: str) -> Callable[[str], int]:
        if encoding_name == BYTES:
            return estimate_text  # cheaper than a memo lookup
        encoding = get_encoding(encoding_name)
        counts = self._counts
        encode = encoding.encode
        tag = id(encoding)

        def count(text: str) -> int:
            if not text:
                return 0
            key = (tag, hash(text), len(text))
            n = counts.get(key)
            if n is None:
                n = len(encode(text, disallowed_special=()))
                if len(counts) >= _CACHE_MAX:
                    counts.clear()  # crude but bounded; a steady workload refills it at once
                counts[key] = n
            return n

        return count


def scaled(components: dict[str, int], input_tokens: int) -> dict[str, int]:
    """``components`` (what :meth:`Anatomy.attributes` returned) scaled to add up to
    ``input_tokens``, the call's input as the provider reported it: the local count only
    splits the prompt (images, audio and the provider's own rendering of tools are in the
    bill and not in the text). The prefix scales with them; rounding goes to the largest."""
    counted = 0
    for name in ATTRIBUTES:
        counted += components[name]
    if counted <= 0 or input_tokens <= 0 or counted == input_tokens:
        return components
    factor = input_tokens / counted
    result = {name: round(components[name] * factor) for name in ATTRIBUTES}
    largest = max(ATTRIBUTES, key=result.__getitem__)
    result[largest] += input_tokens - sum(result.values())
    prefix = components.get(semconv.PROMPT_PREFIX_TOKENS)
    if prefix:
        result[semconv.PROMPT_PREFIX_TOKENS] = min(round(prefix * factor), input_tokens)
    return result


def claim_context(parts: list[int], evidence_tokens: int) -> None:
    """Count declared evidence as ``context``: evidence the prompt did not mark is somewhere
    in it unmarked, most likely beside the question, so the shortfall moves from ``latest``
    and then ``history`` (never below zero; the total is unchanged)."""
    missing = evidence_tokens - parts[CONTEXT]
    for source in (LATEST, HISTORY):
        if missing <= 0:
            return
        moved = min(missing, parts[source])
        parts[source] -= moved
        parts[CONTEXT] += moved
        missing -= moved


def _plain(value: Any) -> Any:
    """An SDK object as plain data; str, dict, list and tuple pass as they are (walked here)."""
    if isinstance(value, (str, dict, list, tuple)) or value is None:
        return value
    return plain(value)


def _strings(value: Any, count: Callable[[str], int]) -> int:
    """Tokens of every string inside ``value`` (as tokens.count_messages walks a message)."""
    if isinstance(value, str):
        return count(value)
    value = _plain(value)
    if isinstance(value, dict):
        return sum(_strings(v, count) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_strings(v, count) for v in value)
    return 0


def _is_marked_text(text: Any) -> bool:
    return isinstance(text, str) and text.lstrip()[:12].lower().startswith(_CONTEXT_TAGS)


def _message(message: Any, default: int, count: Callable[[str], int], parts: list[int]) -> None:
    message = _plain(message)
    if isinstance(message, str):
        parts[CONTEXT if _is_marked_text(message) else default] += count(message) + TOKENS_PER_MESSAGE
        return
    if not isinstance(message, dict):
        return
    role = message.get("role")
    name = message.get("name")
    if role in _SYSTEM_ROLES:
        component = SYSTEM
    elif isinstance(name, str) and name.lower().startswith("context"):
        component = CONTEXT
    else:
        component = default
    parts[component] += TOKENS_PER_MESSAGE
    for key, value in message.items():
        if key in ("content", "parts") and component != CONTEXT:
            _content(value, component, count, parts)
        else:
            parts[component] += _strings(value, count)


def _content(content: Any, component: int, count: Callable[[str], int], parts: list[int]) -> None:
    if isinstance(content, str):
        parts[CONTEXT if _is_marked_text(content) else component] += count(content)
        return
    if not isinstance(content, (list, tuple)):
        parts[component] += _strings(content, count)
        return
    for part in content:
        part = _plain(part)
        if isinstance(part, dict):
            marked = part.get("type") in _CONTEXT_PART_TYPES or _is_marked_text(part.get("text"))
        else:
            marked = _is_marked_text(part)
        parts[CONTEXT if marked else component] += _strings(part, count)
