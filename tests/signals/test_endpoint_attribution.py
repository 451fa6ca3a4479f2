"""The endpoint of an LLM call comes from the enclosing SERVER span of a real FastAPI or
Flask app, instrumented by its official OpenTelemetry instrumentation, even when the call
runs under the handler's own INTERNAL spans."""

from __future__ import annotations

import pytest

import otel_llmcost as llmcost
from otel_llmcost import semconv
from otel_llmcost.demo.fakes import openai_client

MESSAGES = [{"role": "user", "content": "hi"}]


def _llm_spans(otel):  # type: ignore[no-untyped-def]
    return [s for s in otel.spans() if s.attributes and s.attributes.get(semconv.GEN_AI_OPERATION_NAME)]


@pytest.fixture
def fastapi_app(instrument, otel, fake):  # type: ignore[no-untyped-def]
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app = fastapi.FastAPI()
    tracer = otel.tracer_provider.get_tracer("app")
    async_client = openai_client(fake, is_async=True)
    sync_client = openai_client(fake)

    @app.post("/chat/{conversation_id}")
    async def chat(conversation_id: str) -> dict[str, str]:
        with tracer.start_as_current_span("retrieve"):
            with tracer.start_as_current_span("rerank"):
                await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return {"ok": conversation_id}

    @app.get("/sync")
    def sync_handler() -> dict[str, str]:  # runs in the threadpool
        with tracer.start_as_current_span("work"):
            sync_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return {"ok": "1"}

    @app.get("/explicit")
    def explicit() -> dict[str, str]:
        with llmcost.attributes(endpoint="custom"):
            sync_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return {"ok": "1"}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=otel.tracer_provider)
    try:
        yield TestClient(app)
    finally:
        FastAPIInstrumentor.uninstrument_app(app)


@pytest.fixture
def flask_app(instrument, otel, fake):  # type: ignore[no-untyped-def]
    flask = pytest.importorskip("flask")
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    app = flask.Flask("llmcost-test")
    tracer = otel.tracer_provider.get_tracer("app")
    client = openai_client(fake)

    @app.post("/orders/<int:order_id>/summary")
    def summary(order_id: int) -> dict[str, int]:
        with tracer.start_as_current_span("load-order"), tracer.start_as_current_span("summarize"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return {"order": order_id}

    FlaskInstrumentor().instrument_app(app, tracer_provider=otel.tracer_provider)
    try:
        yield app.test_client()
    finally:
        FlaskInstrumentor().uninstrument_app(app)


def test_fastapi_route_reaches_a_call_nested_under_internal_spans(fastapi_app, otel):
    assert fastapi_app.post("/chat/abc-123").status_code == 200
    (span,) = _llm_spans(otel)
    assert span.attributes[semconv.ENDPOINT] == "POST /chat/{conversation_id}"


def test_fastapi_route_reaches_a_sync_handler_in_the_threadpool(fastapi_app, otel):
    assert fastapi_app.get("/sync").status_code == 200
    (span,) = _llm_spans(otel)
    assert span.attributes[semconv.ENDPOINT] == "GET /sync"


def test_explicit_endpoint_wins_over_the_route(fastapi_app, otel):
    assert fastapi_app.get("/explicit").status_code == 200
    (span,) = _llm_spans(otel)
    assert span.attributes[semconv.ENDPOINT] == "custom"


def test_concurrent_requests_each_get_their_own_route(fastapi_app, otel):
    from concurrent.futures import ThreadPoolExecutor

    def hit(i: int) -> int:
        return (fastapi_app.post(f"/chat/{i}") if i % 2 else fastapi_app.get("/sync")).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(hit, range(16))) == {200}
    endpoints = sorted(s.attributes[semconv.ENDPOINT] for s in _llm_spans(otel))
    assert endpoints == ["GET /sync"] * 8 + ["POST /chat/{conversation_id}"] * 8


def test_flask_route_reaches_a_call_nested_under_internal_spans(flask_app, otel):
    assert flask_app.post("/orders/7/summary").status_code == 200
    (span,) = _llm_spans(otel)
    assert span.attributes[semconv.ENDPOINT] == "POST /orders/<int:order_id>/summary"


def test_tracker_forgets_ended_spans(flask_app, otel):
    from otel_llmcost.signals import attribution

    for i in range(5):
        flask_app.post(f"/orders/{i}/summary")
    assert attribution._tracker is not None
    assert attribution._tracker._servers == {}


def test_tracker_is_bounded():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind

    from otel_llmcost.signals.attribution import ServerSpanTracker

    tracker = ServerSpanTracker(max_spans=10)
    provider = TracerProvider()
    provider.add_span_processor(tracker)
    tracer = provider.get_tracer("t")
    leaked = [tracer.start_span(f"req {i}", kind=SpanKind.SERVER) for i in range(50)]
    assert len(tracker._servers) == 10
    for span in leaked:
        span.end()
    assert tracker._servers == {}
