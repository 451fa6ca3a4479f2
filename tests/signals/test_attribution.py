"""Attribution sources and their priority; task outcomes."""

from __future__ import annotations

import asyncio

from opentelemetry import baggage, context

import otel_llmcost as llmcost
from otel_llmcost import semconv
from otel_llmcost.demo.fakes import openai_client

MESSAGES = [{"role": "user", "content": "hi"}]


def test_context_manager_sets_span_attribution(instrument, otel, fake):
    with llmcost.attributes(endpoint="POST /chat", feature="chat", team="product", user="u1", session="s1"):
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = otel.only_span().attributes
    assert (attrs[semconv.ENDPOINT], attrs[semconv.FEATURE], attrs[semconv.TEAM]) == ("POST /chat", "chat", "product")
    assert (attrs[semconv.USER], attrs[semconv.SESSION]) == ("u1", "s1")


def test_explicit_values_win_over_baggage(instrument, otel, fake):
    token = context.attach(baggage.set_baggage(semconv.FEATURE, "from-baggage", baggage.set_baggage(semconv.TEAM, "t")))
    try:
        with llmcost.attributes(feature="explicit"):
            openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        context.detach(token)
    attrs = otel.only_span().attributes
    assert attrs[semconv.FEATURE] == "explicit"
    assert attrs[semconv.TEAM] == "t"


def test_user_ids_can_be_keyed_hashed(instrument, otel, fake):
    instrument(user_hash_key="secret")
    with llmcost.attributes(user="alice@example.com"):
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    user = otel.only_span().attributes[semconv.USER]
    assert user != "alice@example.com" and len(user) == 16


def test_user_tier_is_set_like_the_user_and_never_hashed(instrument, otel, fake):
    instrument(user_hash_key="secret")
    with llmcost.attributes(user="alice", tier="pro"):
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    token = context.attach(baggage.set_baggage(semconv.USER_TIER, "free"))  # from an upstream service
    try:
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        context.detach(token)

    @llmcost.attributes(tier="team")
    def decorated() -> None:
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    decorated()
    assert [s.attributes[semconv.USER_TIER] for s in otel.spans()] == ["pro", "free", "team"]


def test_attribution_does_not_leak_between_asyncio_tasks(instrument, otel, fake):
    client = openai_client(fake, is_async=True)

    async def call(user: str) -> None:
        with llmcost.attributes(user=user):
            await asyncio.sleep(0)
            await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": user}])

    async def main() -> None:
        await asyncio.gather(*(call(f"user-{i}") for i in range(20)))

    asyncio.run(main())
    for span in otel.spans():
        assert span.attributes[semconv.USER].startswith("user-")
    assert len({s.attributes[semconv.USER] for s in otel.spans()}) == 20


def test_task_links_calls_and_records_outcome(instrument, otel, fake):
    with llmcost.task("ticket-1") as task:
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        task.success = False
    call, outcome = otel.spans()
    assert call.attributes[semconv.TASK_ID] == "ticket-1"
    assert outcome.name == semconv.TASK_SPAN_NAME
    assert outcome.attributes[semconv.TASK_SUCCESS] is False


def test_prefix_and_request_hashes_identify_repeats_without_content(instrument, otel, fake):
    client = openai_client(fake)
    long_context = [{"role": "system", "content": "policy " * 50}]
    client.chat.completions.create(model="gpt-4o-mini", messages=long_context + [{"role": "user", "content": "a"}])
    client.chat.completions.create(model="gpt-4o-mini", messages=long_context + [{"role": "user", "content": "b"}])
    client.chat.completions.create(model="gpt-4o-mini", messages=long_context + [{"role": "user", "content": "b"}])
    first, second, third = (s.attributes for s in otel.spans())
    assert first[semconv.PROMPT_PREFIX_HASH] == second[semconv.PROMPT_PREFIX_HASH]
    assert first[semconv.PROMPT_REQUEST_HASH] != second[semconv.PROMPT_REQUEST_HASH]
    assert second[semconv.PROMPT_REQUEST_HASH] == third[semconv.PROMPT_REQUEST_HASH]
    assert "policy" not in str(dict(first))
