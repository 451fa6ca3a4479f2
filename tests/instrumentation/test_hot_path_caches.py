"""The hot path's shortcuts give the answers of the long way (issue 24): prompt hashes
without a second serialization, prompt anatomy remembered by prefix and request hash,
pydantic field reads without ``__getattr__``, httpx headers read in one pass."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import httpx
import pydantic
import pytest

from otel_llmcost.instrumentation.anatomy import Anatomy
from otel_llmcost.instrumentation.hashing import prompt_hashes
from otel_llmcost.providers.base import PromptView, Provider, Request
from otel_llmcost.providers.fields import field
from otel_llmcost.providers.openai import HEADERS


def _canonical_digest(value: Any) -> str:
    """The prompt hash as it was first written: json.dumps of the whole structure."""
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.choice(["a", "é", 'x"y', "\u2028", ""])
    if kind == 1:
        return rng.choice([0, -3, 10**20, 0.5, float("nan"), True, None])
    if kind == 2:
        return object.__new__(type("Opaque", (), {"__str__": lambda self: "opaque"}))
    if kind == 3:
        return rng.choice([(1, "t"), ()])
    if kind == 4:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 5:
        return (_value(rng, depth + 1),)
    return {rng.choice(["role", "content", "a", "z"]): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _request(rng: random.Random, messages: list[Any]) -> Request:
    prompt = PromptView(
        system=_value(rng) if rng.random() < 0.5 else None,
        tools=_value(rng) if rng.random() < 0.3 else None,
        messages=messages,
        temperature=rng.choice([None, 0.2, 1]),
    )
    return Request(operation="chat", provider_name="openai", model=rng.choice(["gpt-4o-mini", ""]), prompt=prompt)


def test_prompt_hashes_equal_the_canonical_json_digest_of_the_whole_request() -> None:
    rng = random.Random(24)
    for _ in range(2000):
        request = _request(rng, [_value(rng) for _ in range(rng.randrange(4))])
        prompt, messages = request.prompt, request.prompt.messages
        prefix = [prompt.system, prompt.tools, None, messages[:-1]]
        has_prefix = len(messages) > 1 or prompt.system or prompt.tools
        expected = (
            _canonical_digest(prefix) if has_prefix else None,
            _canonical_digest([request.model, prefix, messages[-1:], prompt.temperature]),
        )
        assert prompt_hashes(request) == expected


def _message(rng: random.Random) -> Any:
    role = rng.choice(["user", "assistant", "system", "tool"])
    text = rng.choice(["hello there", "<context>Order 42 shipped.</context>", "Where is my order?", ""])
    return rng.choice(
        [
            text,
            {"role": role, "content": text},
            {"role": role, "name": "context", "content": text},
            {"role": role, "content": [{"type": rng.choice(["text", "document"]), "text": text}]},
            {"role": role, "content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
        ]
    )


@pytest.mark.parametrize("counter", ["bytes", "tiktoken"])
def test_anatomy_remembered_by_prefix_and_request_hash_counts_as_the_whole_prompt(counter: str) -> None:
    rng = random.Random(7)
    prefixes = [[_message(rng) for _ in range(rng.randrange(4))] for _ in range(6)]
    remembered, counted = Anatomy(counter=counter), Anatomy(counter=counter)
    for _ in range(1500):
        messages = rng.choice(prefixes) + [_message(rng) for _ in range(rng.randrange(3))]
        prompt = PromptView(system=rng.choice([None, "Be brief."]), tools=rng.choice([None, [{"name": "t"}]]))
        prompt.messages = messages
        request = Request(
            operation="chat", provider_name="openai", model=rng.choice(["gpt-4o-mini", "gpt-4"]), prompt=prompt
        )
        evidence = rng.choice([0, 5, 500])
        got = remembered.attributes(prompt, request.model, evidence, hashes=prompt_hashes(request))
        assert got == counted.attributes(prompt, request.model, evidence)


class _Usage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    prompt_tokens: int = 0

    @property
    def doubled(self) -> int:
        return 2 * self.prompt_tokens


class _Strict(pydantic.BaseModel):
    prompt_tokens: int = 0


@pytest.mark.parametrize(
    ("obj", "name", "expected"),
    [
        (_Usage(prompt_tokens=3), "prompt_tokens", 3),
        (_Usage(prompt_tokens=3, cost=0.5), "cost", 0.5),  # an extra
        (_Usage(prompt_tokens=3, cost=0.5), "doubled", 6),  # a property, extras present
        (_Usage(prompt_tokens=3), "doubled", 6),
        (_Usage(prompt_tokens=3, cost=0.5), "image_tokens", None),  # not declared, not an extra
        (_Strict(prompt_tokens=3), "image_tokens", None),
        (_Strict(prompt_tokens=3), "model_fields_set", {"prompt_tokens"}),
        ({"cost": 1}, "cost", 1),
        (None, "cost", None),
    ],
)
def test_field_reads_a_pydantic_model_as_getattr_does(obj: Any, name: str, expected: Any) -> None:
    assert field(obj, name) == expected
    if isinstance(obj, pydantic.BaseModel):
        assert getattr(obj, name, None) == expected  # what field() read before: the same


def test_rate_limit_headers_read_in_one_pass_as_headers_get_reads_them() -> None:
    raw = [
        ("X-RateLimit-Limit-Requests", "5000"),
        ("x-ratelimit-remaining-requests", "4999"),
        ("x-ratelimit-reset-requests", "12ms"),
        ("x-ratelimit-limit-tokens", "800000"),
        ("x-ratelimit-remaining-tokens", "bad"),
        ("x-litellm-response-cost", "0.25"),
        ("Set-Cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]
    provider = Provider()
    provider.header_specs = HEADERS
    fast = provider.read_headers(httpx.Headers(raw), 200)
    slow = provider.read_headers(dict(httpx.Headers(raw).items()), 200)  # a dict: headers.get as it is
    assert fast == slow
    assert fast is not None and fast.reported_cost == (0.25, "header x-litellm-response-cost")
    assert len(fast.ratelimits) == 4
