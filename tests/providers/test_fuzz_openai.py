"""Whatever the provider sends back, instrumentation never raises into user code
and every span ends exactly once."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from otel_llmcost.demo.fakes import Reply, openai_client
from tests.helpers.fuzz_values import OPENAI_USAGE_KEYS, PROVIDER_FUZZ, json_values

values = json_values(max_int=2**40, text_size=12)
usage_keys = st.sampled_from(OPENAI_USAGE_KEYS)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
header_names = st.sampled_from(
    [
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-tokens",
        "retry-after",
        "retry-after-ms",
        "x-ratelimit-limit-tokens",
    ]
)

MESSAGES = [{"role": "user", "content": "hi"}]


@PROVIDER_FUZZ
@given(
    usage=st.dictionaries(usage_keys, values, max_size=5),
    extra=st.dictionaries(st.sampled_from(["model", "id", "choices", "service_tier"]), values, max_size=3),
    headers=st.dictionaries(header_names, header_values, max_size=4),
    stream=st.booleans(),
)
def test_any_response_shape_is_survived(instrument, otel, fake, usage, extra, headers, stream):
    otel.clear()
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [],
        "usage": usage,
        **extra,
    }
    if stream:
        chunk = {**body, "object": "chat.completion.chunk"}
        fake.enqueue(Reply(headers=headers, sse=[chunk, "[DONE]"]))
    else:
        fake.enqueue(Reply(headers=headers, raw=json.dumps(body).encode()))
    client = openai_client(fake, max_retries=0)
    try:
        result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)
        if stream:
            for _ in result:
                pass
    except Exception as error:  # the SDK's own parse errors are allowed; ours are not
        assert "otel_llmcost" not in "".join(_frames(error))
    otel.only_span()


def _frames(error: BaseException) -> list[str]:
    import traceback

    return [frame.filename for frame in traceback.extract_tb(error.__traceback__)]
