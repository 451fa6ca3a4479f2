"""The similarity sketch of the last user message (``llmcost.prompt.simhash``): what it
treats as the same text, how far paraphrases and different questions land, which messages
get one, and that it is recorded only with the prompt hashes (issue 20, item 5).

Distances are the sketches' actual Hamming distances for these texts (BLAKE2b is stable,
so they never change unless the sketch does); NEAR_BITS (3) is the view's threshold.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_llmcost import semconv
from otel_llmcost.demo.fakes import anthropic_client, openai_client
from otel_llmcost.instrumentation import similarity
from otel_llmcost.instrumentation.similarity import (
    MAX_CHARS,
    MIN_NEAR_WORDS,
    NEAR_BITS,
    hamming,
    last_user_text,
    normalize,
    prompt_simhash,
    simhash,
)

QUESTION = "How do I reset my password if I no longer have access to my email account?"

# A long message (81 words) and edits of a word or two in it.
TICKET = (
    "Our customer reports that the invoice generated on the third of March lists the wrong billing address, "
    "even though they updated the address in the account settings two weeks before the billing cycle closed. "
    "They also mention that the tax rate applied looks like the rate for their old state rather than the new one. "
    "Please explain what happened, whether the invoice can be corrected and reissued, and what they should do "
    "to make sure the next invoice uses the correct address and tax rate. Keep the answer short and polite."
)


def reference_simhash(text: str) -> int:
    """The sketch as its definition reads, one feature and one bit at a time."""
    words = normalize(text[: similarity.MAX_RAW_CHARS])[:MAX_CHARS].split()
    if not words:
        return 0
    if len(words) < MIN_NEAR_WORDS:  # a short message: its normalized text, hashed
        return int.from_bytes(hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest(), "big")
    hashes = [int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "big") for w in words]

    def rotl(x: int) -> int:
        return ((x << 1) | (x >> 63)) & (2**64 - 1)

    features = hashes + [a ^ rotl(b) for a, b in zip(hashes, hashes[1:], strict=False)]
    return sum(1 << bit for bit in range(64) if 2 * sum((f >> bit) & 1 for f in features) > len(features))


# --- normalization: the same text, the same sketch -----------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        QUESTION + " ",  # the trailing space of the issue
        "  " + QUESTION + "\n",
        QUESTION.upper(),
        "how do i reset my password if i no longer have access to my email account",
        "How do I reset my password, if I no longer have access to my e-mail account??",
        "How do I reset my password if I no longer have access to my email account ?!",
        "How\tdo I reset   my password if I no longer have access to my email account?",
        "Ｈｏｗ do I reset my password if I no longer have access to my email account？",  # full-width (NFKC)
    ],
)
def test_case_punctuation_spacing_and_width_give_the_identical_sketch(variant):
    assert simhash(variant) == simhash(QUESTION)


def test_normalization_casefolds_joins_apostrophes_and_hyphens_and_collapses_the_rest():
    assert normalize("  Don't E-MAIL me!!  Straße\u2019s\tcafé_bar ") == "dont email me strasses café bar"
    assert normalize("?!... \n") == ""


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_the_ascii_fast_path_normalizes_as_the_unicode_path(text):
    assert normalize(text) == similarity._normalize_unicode(text)


_WORDS = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzéøß0123456789", min_size=1, max_size=8), max_size=40)
_SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", ", ", ". ", "? ", "! ", " - ", "; ", ": ", " (", ") ", " / "])


@given(words=_WORDS, data=st.data())
@settings(max_examples=200)
def test_normalization_invariant_edits_never_change_the_sketch(words, data):
    plain = " ".join(words)
    separators = [data.draw(_SEPARATORS) for _ in words]
    edited = data.draw(_SEPARATORS) + "".join(w + s for w, s in zip(words, separators, strict=True))
    if data.draw(st.booleans()):
        edited = edited.upper()
    assert normalize(edited) == normalize(plain)
    assert simhash(edited) == simhash(plain)


@given(st.text(max_size=300))
def test_the_sketch_is_its_definition_and_never_raises(text):
    similarity._sketches.clear()
    assert simhash(text) == reference_simhash(text)
    assert 0 <= simhash(text) < 2**64


def test_only_the_first_max_chars_of_the_normalized_text_count():
    head = "word " * (MAX_CHARS // 5)
    assert simhash(head + "and then something else entirely") == simhash(head + "a different tail")
    assert simhash("") == 0 and simhash(" ?! ") == 0


# --- distances: near stays near, different stays apart --------------------------------------


def test_a_word_changed_in_a_long_message_lands_within_near_bits():
    one_word = TICKET.replace("third of March", "fourth of March")
    assert hamming(simhash(TICKET), simhash(one_word)) == 2 <= NEAR_BITS
    closing = TICKET.replace("Keep the answer short and polite.", "Keep it short and polite.")
    assert hamming(simhash(TICKET), simhash(closing)) == 3 <= NEAR_BITS


def test_the_threshold_is_tight_two_words_in_81_can_fall_outside():
    # 6 of 161 features change: about 5 bits expected; this pair lands at 4, just outside.
    two_words = TICKET.replace("third of March", "fourth of March").replace("two weeks", "three weeks")
    assert hamming(simhash(TICKET), simhash(two_words)) == 4 > NEAR_BITS


def test_a_word_changed_in_a_short_question_is_another_request():
    # 15 words: a changed word moved the SimHash 2 or 5 bits, as far as another question
    # does, so short messages are sketched by their normalized text: equal, or far apart.
    assert len(normalize(QUESTION).split()) < MIN_NEAR_WORDS
    assert hamming(simhash(QUESTION), simhash(QUESTION.replace("email account", "email address"))) == 27
    assert hamming(simhash(QUESTION), simhash(QUESTION.replace("How do", "How can"))) == 31
    # The demo's one-line labels: the same template, different tickets.
    labels = [simhash(f"Label ticket {n}: billing, bug or other?") for n in (1234, 5678)]
    assert hamming(*labels) == 27 > NEAR_BITS


@pytest.mark.parametrize(
    ("other", "distance"),
    [
        ("What's the way to recover my account without the email I signed up with?", 31),  # other words
        ("How do I cancel my subscription?", 26),
        ("Write a haiku about autumn leaves.", 31),
        ("How do I reset my password if I no longer have access to my phone?", 35),  # same template
    ],
)
def test_different_questions_are_far_apart(other, distance):
    assert hamming(simhash(QUESTION), simhash(other)) == distance > NEAR_BITS


def test_questions_sharing_a_template_stay_apart():
    assert hamming(simhash("What is the capital of France?"), simhash("What is the capital of Spain?")) == 31


# --- which message is sketched ---------------------------------------------------------------


def test_the_last_message_is_sketched_when_it_is_the_users_text_alone():
    assert last_user_text([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]) == "hi"
    assert last_user_text(["a Responses or Gemini string"]) == "a Responses or Gemini string"
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}]
    assert last_user_text([{"role": "user", "content": parts}]) == "a\nb"
    assert last_user_text([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "r"}]}])
    assert last_user_text([{"role": "user", "parts": [{"text": "gemini"}]}]) == "gemini"


@pytest.mark.parametrize(
    "last",
    [
        {"role": "assistant", "content": "an answer"},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "42"}]},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url"}]},
        {"role": "user", "parts": [{"text": "and this?"}, {"inline_data": {"mime_type": "image/png"}}]},
        {"role": "user", "parts": [{"function_response": {"name": "f", "response": {}}}]},
        {"role": "user", "content": None},
        42,
    ],
)
def test_no_sketch_unless_the_last_message_is_user_text_alone(last):
    assert prompt_simhash([{"role": "user", "content": "the question"}, last]) is None


def test_the_sketch_is_sixteen_hex_digits():
    value = prompt_simhash([{"role": "user", "content": QUESTION}])
    assert value == f"{simhash(QUESTION):016x}" and len(value) == 16
    assert prompt_simhash([]) is None and prompt_simhash([{"role": "user", "content": "?!"}]) is None


# --- through the instrumentation -------------------------------------------------------------


def test_calls_carry_the_sketch_and_repeats_up_to_spacing_share_it(instrument, otel, fake):
    client = openai_client(fake)
    system = {"role": "system", "content": "You are a support agent."}
    for text in (QUESTION, QUESTION + " ", "How do I cancel my subscription?"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[system, {"role": "user", "content": text}])
    first, second, third = (span.attributes for span in otel.spans())
    assert first[semconv.PROMPT_REQUEST_HASH] != second[semconv.PROMPT_REQUEST_HASH]
    assert first[semconv.PROMPT_SIMHASH] == second[semconv.PROMPT_SIMHASH] == f"{simhash(QUESTION):016x}"
    assert hamming(int(first[semconv.PROMPT_SIMHASH], 16), int(third[semconv.PROMPT_SIMHASH], 16)) == 26
    assert "password" not in str(dict(first))


def test_anthropic_calls_carry_the_sketch_of_the_last_user_text(instrument, otel, fake):
    anthropic_client(fake).messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": QUESTION + "  "}]
    )
    assert otel.only_span().attributes[semconv.PROMPT_SIMHASH] == f"{simhash(QUESTION):016x}"


def test_no_sketch_when_prompt_hashing_is_off(instrument, otel, fake):
    instrument(hash_prompts=False)
    openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}])
    attrs = otel.only_span().attributes
    assert semconv.PROMPT_SIMHASH not in attrs and semconv.PROMPT_REQUEST_HASH not in attrs
