"""Prompt hashes: which calls share a cacheable prefix, and which repeat a request exactly.

Hashes only, never content. The prefix is what providers cache: the system prompt,
the tools and every message but the last. Equal prefixes with no cache reads are
missed caching; equal request hashes (model, prefix, last message, temperature) are
duplicate spend. BLAKE2b over canonical JSON, 64 bits: collisions are irrelevant at
the scale of one service's distinct prompts.

Speed: the prefix is serialized once and its JSON text reused inside the request's
(a JSON array is its items' JSON joined by commas, so the text is the same as
serializing the whole request), with one encoder built at import.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..providers.base import Request

# json.dumps(value, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":")),
# without building an encoder per call.
_encode = json.JSONEncoder(sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":")).encode
_blake2b = hashlib.blake2b


def _digest_text(text: str) -> str:
    return _blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _digest(value: Any) -> str:
    return _digest_text(_encode(value))


def prompt_hashes(request: Request) -> tuple[str | None, str]:
    """(prefix hash or None when there is no prefix, request hash)."""
    prompt = request.prompt
    messages = prompt.messages
    # The third slot held a second system-prompt field in earlier releases; kept (None) so
    # that the hashes of OpenAI chat and Gemini requests did not change with this layout.
    prefix_text = _encode([prompt.system, prompt.tools, None, messages[:-1]])
    prefix_hash = _digest_text(prefix_text) if len(messages) > 1 or prompt.system or prompt.tools else None
    # == _encode([request.model, prefix, messages[-1:], prompt.temperature])
    request_text = f"[{_encode(request.model)},{prefix_text},{_encode(messages[-1:])},{_encode(prompt.temperature)}]"
    return prefix_hash, _digest_text(request_text)
