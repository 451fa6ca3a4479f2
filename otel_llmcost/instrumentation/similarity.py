"""A similarity sketch of the last user message: near-duplicate requests without content.

``llmcost.prompt.simhash`` is a 64-bit SimHash (16 hex digits, like the other prompt
hashes) of the *normalized* last message when that message is the user's text. Equal
request hashes catch exact repeats only; two messages that differ in case, punctuation,
whitespace or Unicode width (``"What is X?"``, ``"what is x "``) have the same sketch,
and a message with a word or two changed in a long text has a sketch a few bits away.
``v_near_duplicates`` (``storage/sql/018_near_duplicates.sql``) groups sketches within
:data:`NEAR_BITS` bits of each other that share service, model and prompt prefix.

- **Which text.** The last message, only when it is a user message made of text alone
  (a string, OpenAI/Anthropic ``text`` and Responses ``input_text`` parts, Gemini
  ``{"text": ...}`` parts). A tool result, an assistant turn, or a message with an image,
  audio, file or document gets no sketch: a tool loop's next call repeats the question
  but is not a repeat of it, and the same words about another image are another request.
- **Normalization.** Unicode NFKC, casefold, apostrophes and hyphens removed
  ("e-mail" = "email"), then every run of characters that are not letters or digits
  (other punctuation, symbols, underscores, whitespace) becomes one space, stripped at
  both ends. Only the first :data:`MAX_CHARS` characters of the normalized
  text are sketched (and no more than :data:`MAX_RAW_CHARS` of the message are read),
  which bounds the cost per call.
- **Features.** Word unigrams and bigrams, one vote each. A word's 64-bit hash is
  BLAKE2b (``digest_size=8``: stable across processes and releases); a bigram's is
  ``h(first) XOR rotl(h(second), 1)``, so a call hashes each distinct word once and the
  bigrams cost a few big-integer operations for the whole message.
- **Bits.** Bit ``j`` of the sketch is set when more than half the features have bit
  ``j`` set, counted per bit over all features at once with byte slices and
  ``int.bit_count`` (no per-feature Python loop over 64 bits).

SimHash is written here rather than taken from a library: ``datasketch`` (MinHash and LSH,
no SimHash) pulls numpy and scipy into the app process, and the app-side install is meant
to stay light (docs/architecture.md); 64 bits over a few hundred features need neither.

What it does not catch: paraphrases that use other words, and any word changed in a short
message. In a 15-word question one word is 3 of 29 features, which moved the SimHash 2 or
5 bits in the tests, as far as a different question with the same template ("capital of
France" / "capital of Spain": 8 bits; "Label ticket 1234" / "Label ticket 5678": within
3). So a message of fewer than :data:`MIN_NEAR_WORDS` words is sketched by its normalized
text alone: the same words up to case, punctuation and spacing share the sketch, anything
else lands far away. :data:`NEAR_BITS` = 3 applies to longer messages, where a changed
word or two stays within it. The view stays quiet rather than merge different requests;
the distances are pinned in ``tests/instrumentation/test_similarity.py``.

Privacy: the sketch is a hash, never content, and is recorded only when the prompt
hashes are (``OTEL_LLMCOST_PROMPT_HASH``). Like any unkeyed hash of a short text, a
guessed message can be checked against it; unlike a cryptographic hash, similar messages
have similar sketches.

Speed: sketches are memoised by ``(hash(text), len(text))`` and word digests by
``hash(word)``, so the caches hold integers, never text (bounded, cleared when full, as
anatomy's counts). Measured with timeit (CPython 3.11, a shared 2-core machine): a repeated
message ~1 µs; a new 20-word question whose words were seen before ~15-20 µs (64 popcounts
are most of it); a new 200-word message ~60 µs (normalizing ~8, word digests ~15, bigrams
and bit counts ~35), ~150 µs when every word is new too.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from ..providers.fields import plain

NEAR_BITS = 3  # near duplicates: at most this many of the 64 bits differ (v_near_duplicates)
# Below this many words a message is sketched by its normalized text alone (equal or far):
# one word is then more than 6% of the features and moves the SimHash as far as another
# question does ("Label ticket 1234" / "Label ticket 5678": different requests, 2-5 bits).
MIN_NEAR_WORDS = 24
MAX_CHARS = 2_000  # characters of the normalized message that are sketched
MAX_RAW_CHARS = 8_000  # characters of the message that are read at all
_CACHE_MAX = 8192

_NOT_WORD = re.compile(r"[\W_]+")
# Apostrophes and hyphens join what they separate ("e-mail" = "email", "what's" = "whats").
_JOINERS = re.compile("['\u2018\u2019\u2010\\-]")
_ASCII_NOT_WORD = str.maketrans({chr(c): None if chr(c) in "'-" else " " for c in range(128) if not chr(c).isalnum()})
# Text parts: OpenAI chat and Anthropic {"type": "text"}, the Responses API's "input_text";
# a Gemini part is text when "text" is its only field.
_TEXT_PART_TYPES = frozenset(("text", "input_text"))

_word_hashes: dict[int, bytes] = {}
_sketches: dict[tuple[int, int], int] = {}


def normalize(text: str) -> str:
    """NFKC, casefolded, apostrophes and hyphens removed, every other run of characters that
    are not letters or digits as one space, stripped; uncapped."""
    if text.isascii():  # the same result as _normalize_unicode, ~10x faster on ASCII text
        return " ".join(text.lower().translate(_ASCII_NOT_WORD).split())
    return _normalize_unicode(text)


def _normalize_unicode(text: str) -> str:
    folded = _JOINERS.sub("", unicodedata.normalize("NFKC", text).casefold())
    return _NOT_WORD.sub(" ", folded).strip()


def simhash(text: str) -> int:
    """The 64-bit SimHash of ``text`` after :func:`normalize`; 0 when it has no words."""
    key = (hash(text), len(text))  # an exact repeat is one lookup
    sketch = _sketches.get(key)
    if sketch is None:
        words = normalize(text[:MAX_RAW_CHARS])[:MAX_CHARS].split()
        sketch = _sketch(words) if len(words) >= MIN_NEAR_WORDS else _exact(words)
        if len(_sketches) >= _CACHE_MAX:
            _sketches.clear()  # crude but bounded, as anatomy's counts
        _sketches[key] = sketch
    return sketch


def hamming(a: int, b: int) -> int:
    """Bits that differ between two sketches (``bitCount(bitXor(a, b))`` in the views)."""
    return (a ^ b).bit_count()


def prompt_simhash(messages: list[Any]) -> str | None:
    """The sketch of the last message as 16 hex digits, or None when it is not user text."""
    text = last_user_text(messages)
    if not text:
        return None
    sketch = simhash(text)
    return f"{sketch:016x}" if sketch else None


def last_user_text(messages: list[Any]) -> str:
    """The text of the last message when it is the user's text alone; '' otherwise (an
    assistant or tool turn, a tool result, or a message with an image, audio, a file or
    a document: the same words about another attachment are another request)."""
    if not messages:
        return ""
    message = messages[-1]
    if isinstance(message, str):  # Responses API `input="..."`, Gemini `contents="..."`
        return message
    message = plain(message)
    if not isinstance(message, dict) or message.get("role", "user") != "user":
        return ""
    if message.get("type", "message") != "message":  # a Responses item: function_call_output, ...
        return ""
    content = message["content"] if "content" in message else message.get("parts")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        part = plain(part)
        if not isinstance(part, dict):
            return ""
        kind = part.get("type")
        text = part.get("text")
        if not isinstance(text, str) or (kind not in _TEXT_PART_TYPES if kind is not None else len(part) != 1):
            return ""
        texts.append(text)
    return "\n".join(texts)


def _word_hashes_of(words: list[str]) -> bytes:
    """The words' 8-byte BLAKE2b digests, concatenated; memoised by the words' ``hash()``
    (an int: the cache holds no text; a 64-bit collision is immaterial at this size)."""
    keys = list(map(hash, words))
    digests = list(map(_word_hashes.get, keys))
    try:
        return b"".join(digests)  # type: ignore[arg-type]  # a TypeError when a word is new
    except TypeError:
        pass
    if len(_word_hashes) >= _CACHE_MAX:
        _word_hashes.clear()  # crude but bounded, as anatomy's counts
    for index, digest in enumerate(digests):
        if digest is None:
            key = keys[index]
            digest = _word_hashes.get(key)  # the word may have come earlier in this text
            if digest is None:
                digest = hashlib.blake2b(words[index].encode("utf-8", "surrogatepass"), digest_size=8).digest()
                _word_hashes[key] = digest
            digests[index] = digest
    return b"".join(digests)  # type: ignore[arg-type]  # no None left


def _exact(words: list[str]) -> int:
    """A short message's sketch: a hash of its normalized text, so only the same words in
    the same order (up to case, punctuation and spacing) share it; 0 when it has no words."""
    if not words:
        return 0
    return int.from_bytes(
        hashlib.blake2b(" ".join(words).encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"
    )


def _sketch(words: list[str]) -> int:
    n = len(words)
    if n == 0:
        return 0
    unigrams = _word_hashes_of(words)
    features = unigrams
    if n > 1:
        # Bigram k = h(word k) XOR rotl(h(word k+1), 1), lane by lane over the whole message.
        whole = int.from_bytes(unigrams, "big")
        firsts = whole >> 64  # words 0 .. n-2
        seconds = whole & ((1 << (64 * (n - 1))) - 1)  # words 1 .. n-1
        lanes = n - 1
        high = int.from_bytes(b"\xff\xff\xff\xff\xff\xff\xff\xfe" * lanes, "big")  # bits 1..63 of each lane
        low = int.from_bytes(b"\x00\x00\x00\x00\x00\x00\x00\x01" * lanes, "big")  # bit 0 of each lane
        rotated = ((seconds << 1) & high) | ((seconds >> 63) & low)
        features += (firsts ^ rotated).to_bytes(8 * lanes, "big")
    count = len(features) // 8
    ones = int.from_bytes(b"\x01" * count, "big")
    masks = [ones << bit for bit in range(7, -1, -1)]
    # Per feature-hash byte (most significant first), per bit of it (high to low): how many
    # features have that bit set; 64 popcounts over columns of `count` bytes.
    bits = ["1" if 2 * (column & mask).bit_count() > count else "0" for column in _columns(features) for mask in masks]
    return int("".join(bits), 2)


def _columns(features: bytes) -> list[int]:
    """Byte k of every 8-byte feature hash, as one integer per k."""
    return [int.from_bytes(features[byte::8], "big") for byte in range(8)]
