"""App rate-limiter telemetry: the record_limiter_decision API and the limits / slowapi adapters.

Adapters run against the real libraries: a `limits` strategy on its in-memory storage (sync
and asyncio) and a FastAPI app limited by slowapi, driven through Starlette's TestClient.
"""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import otel_llmcost as llmcost
from otel_llmcost import semconv as sc
from otel_llmcost.config import parse_limiters
from otel_llmcost.instrumentation import package
from otel_llmcost.signals.attribution import hash_user
from otel_llmcost.signals.limiter import record_limiter_decision

limits = pytest.importorskip("limits")
pytest.importorskip("slowapi")
fastapi = pytest.importorskip("fastapi")
from fastapi import Request  # noqa: E402  # module level: the handlers' string annotations resolve here
from limits import parse  # noqa: E402
from limits.storage import MemoryStorage  # noqa: E402
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter  # noqa: E402

ALL_ADAPTERS = ["limits", "slowapi"]


def decisions(otel):  # type: ignore[no-untyped-def]
    """(span, event attributes) of every decision event, in the order the spans ended."""
    return [
        (span, dict(event.attributes))
        for span in otel.spans()
        for event in span.events
        if event.name == sc.EVENT_LIMITER_DECISION
    ]


def counted(otel) -> dict[tuple, int]:  # type: ignore[no-untyped-def]
    """The decisions counter: {sorted attribute items: value}."""
    points = otel.metrics().get(sc.METRIC_LIMITER_DECISIONS, [])
    return {tuple(sorted(p.attributes.items())): p.value for p in points}


# --- the API ---------------------------------------------------------------------------------


def test_decision_is_an_event_on_the_current_span_and_marks_it(instrument, otel):
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handler"):
        record_limiter_decision(
            limit="per-user", key="u1", action="throttled", remaining=0, tier="free", route="POST /chat"
        )
        llmcost.record_limiter_decision(limit="per-tier", key="free", action="allowed", remaining=12.5)
    (span,) = otel.spans()
    assert span.name == "handler"
    assert span.attributes[sc.LIMITER_DECISION_COUNT] == 2
    first, second = (dict(e.attributes) for e in span.events)
    assert first == {
        sc.LIMITER_LIMIT: "per-user",
        sc.LIMITER_ACTION: "throttled",
        sc.LIMITER_KEY: "u1",
        sc.LIMITER_REMAINING: 0,
        sc.LIMITER_TIER: "free",
        sc.LIMITER_ROUTE: "POST /chat",
        sc.LIMITER_SOURCE: "app",
    }
    assert second[sc.LIMITER_ACTION] == "allowed" and second[sc.LIMITER_REMAINING] == 12.5
    assert sc.LIMITER_TIER not in second and sc.LIMITER_ROUTE not in second


def test_metric_counts_by_limit_action_route_tier_and_never_by_key(instrument, otel):
    for user in ("u1", "u2", "u3"):
        record_limiter_decision(limit="per-user", key=user, action="allowed", route="POST /chat", tier="pro")
    record_limiter_decision(limit="per-user", key="u1", action="throttled", route="POST /chat", tier="pro")
    base = {
        sc.LIMITER_LIMIT: "per-user",
        sc.LIMITER_ROUTE: "POST /chat",
        sc.LIMITER_TIER: "pro",
        sc.LIMITER_SOURCE: "app",
    }
    assert counted(otel) == {
        tuple(sorted({**base, sc.LIMITER_ACTION: "allowed"}.items())): 3,
        tuple(sorted({**base, sc.LIMITER_ACTION: "throttled"}.items())): 1,
    }
    for point in otel.metrics()[sc.METRIC_LIMITER_DECISIONS]:
        assert sc.LIMITER_KEY not in point.attributes and sc.LIMITER_REMAINING not in point.attributes


def test_without_a_recording_span_the_decision_gets_a_short_span_of_its_own(instrument, otel):
    record_limiter_decision(limit="provider", key="gpt-4o", action="queued")
    (span,) = otel.spans()
    assert span.name == sc.LIMITER_SPAN_NAME and span.kind is trace.SpanKind.INTERNAL
    assert span.instrumentation_scope.name == sc.INSTRUMENTATION_SCOPE
    (event,) = span.events
    assert event.name == sc.EVENT_LIMITER_DECISION and event.attributes[sc.LIMITER_ACTION] == "queued"
    assert otel.ends.ends == {span.context.span_id: 1}


def test_in_a_sampled_out_trace_only_the_metric_counts(instrument, otel):
    unsampled = NonRecordingSpan(SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(0)))
    with trace.use_span(unsampled):
        record_limiter_decision(limit="per-user", key="u", action="throttled")
    assert otel.spans() == ()
    assert sum(counted(otel).values()) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": "per-user", "action": "denied"}, "action must be one of"),
        ({"limit": "per-user", "action": "Allowed"}, "action must be one of"),
        ({"limit": "", "action": "allowed"}, "limit must be"),
        ({"limit": None, "action": "allowed"}, "limit must be"),
    ],
)
def test_programmer_errors_raise_value_error_and_record_nothing(instrument, otel, kwargs, message):
    with pytest.raises(ValueError, match=message):
        record_limiter_decision(**kwargs)
    assert otel.spans() == () and counted(otel) == {}


def test_user_keys_are_hashed_with_the_user_hash_key(instrument, otel):
    instrument(user_hash_key="s3cret")
    record_limiter_decision(limit="per-user", key="alice@example.com", action="allowed")
    ((_, event),) = decisions(otel)
    assert event[sc.LIMITER_KEY] == hash_user("alice@example.com", "s3cret")
    assert event[sc.LIMITER_KEY] != "alice@example.com" and len(event[sc.LIMITER_KEY]) == 16


def test_user_keys_are_hashed_with_the_environment_key(instrument, otel, monkeypatch):
    monkeypatch.setenv("OTEL_LLMCOST_USER_HASH_KEY", "from-env")
    instrument()  # settings are read when instrument() runs, as at a process's start
    record_limiter_decision(limit="per-user", key="bob", action="allowed")
    ((_, event),) = decisions(otel)
    assert event[sc.LIMITER_KEY] == hash_user("bob", "from-env") != "bob"


def test_route_defaults_to_the_llm_endpoint_and_tier_to_baggage(instrument, otel):
    token = context.attach(baggage.set_baggage(sc.LIMITER_TIER, "enterprise"))
    try:
        with llmcost.attributes(endpoint="POST /summarize"):
            record_limiter_decision(limit="per-user", key="u", action="allowed")
    finally:
        context.detach(token)
    ((_, event),) = decisions(otel)
    assert event[sc.LIMITER_ROUTE] == "POST /summarize" and event[sc.LIMITER_TIER] == "enterprise"


@pytest.mark.parametrize("remaining", [float("nan"), float("inf"), True, "12", object()])
def test_unusable_remaining_is_dropped_not_raised(instrument, otel, remaining):
    record_limiter_decision(limit="per-user", key="u", action="allowed", remaining=remaining)
    ((_, event),) = decisions(otel)
    assert sc.LIMITER_REMAINING not in event


def test_a_failure_to_record_never_reaches_the_app(instrument, otel, monkeypatch):
    from otel_llmcost.signals import limiter

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("exporter on fire")

    monkeypatch.setattr(limiter, "current_route", broken)
    record_limiter_decision(limit="per-user", key="u", action="allowed")  # no exception


# --- limits adapter --------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [FixedWindowRateLimiter, MovingWindowRateLimiter])
def test_limits_hits_are_allowed_then_throttled_with_remaining(instrument, otel, strategy):
    instrument(limiters=["limits"])
    rate = strategy(MemoryStorage())
    item = parse("2/minute")
    results = [rate.hit(item, "per-user", "u1") for _ in range(3)]
    assert results == [True, True, False]  # the limiter's answers are untouched
    got = [
        (e[sc.LIMITER_ACTION], e[sc.LIMITER_REMAINING], e[sc.LIMITER_LIMIT], e[sc.LIMITER_KEY])
        for _, e in decisions(otel)
    ]
    assert got == [
        ("allowed", 1, "per-user", "u1"),
        ("allowed", 0, "per-user", "u1"),
        ("throttled", 0, "per-user", "u1"),
    ]
    assert {e[sc.LIMITER_RULE] for _, e in decisions(otel)} == {"2 per 1 minute"}
    assert {e[sc.LIMITER_SOURCE] for _, e in decisions(otel)} == {"limits"}


def test_limits_identifiers_without_a_kind_are_the_key(instrument, otel):
    instrument(limiters=["limits"])
    FixedWindowRateLimiter(MemoryStorage()).hit(parse("5/second"), "search", "u9")
    ((_, event),) = decisions(otel)
    assert event[sc.LIMITER_LIMIT] == "limits" and event[sc.LIMITER_KEY] == "search/u9"


def test_limits_test_records_only_a_refusal(instrument, otel):
    instrument(limiters=["limits"])
    rate = FixedWindowRateLimiter(MemoryStorage())
    item = parse("1/minute")
    assert rate.test(item, "k") is True
    assert decisions(otel) == []  # the hit that follows a passing test is the decision
    assert rate.hit(item, "k") is True
    assert rate.test(item, "k") is False
    assert [e[sc.LIMITER_ACTION] for _, e in decisions(otel)] == ["allowed", "throttled"]


def test_limits_remaining_can_be_skipped(instrument, otel):
    instrument(limiters=["limits"], limiter_remaining=False)
    FixedWindowRateLimiter(MemoryStorage()).hit(parse("2/minute"), "k")
    ((_, event),) = decisions(otel)
    assert sc.LIMITER_REMAINING not in event


def test_limits_aio_strategy_is_recorded(instrument, otel):
    from limits.aio.storage import MemoryStorage as AsyncMemoryStorage
    from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow

    instrument(limiters=["limits"])

    async def run() -> list[bool]:
        storage = AsyncMemoryStorage()  # limits 3 strategies hold their storage weakly
        rate = AsyncMovingWindow(storage)
        item = parse("1/minute")
        return [await rate.hit(item, "per-route", "GET /x") for _ in range(2)]

    assert asyncio.run(run()) == [True, False]
    got = [(e[sc.LIMITER_ACTION], e[sc.LIMITER_LIMIT], e[sc.LIMITER_REMAINING]) for _, e in decisions(otel)]
    assert got == [("allowed", "per-route", 0), ("throttled", "per-route", 0)]


def test_a_failing_limiter_raises_its_own_exception_unchanged(instrument, otel):
    instrument(limiters=["limits"])
    boom = ConnectionError("storage down")

    class DeadStorage(MemoryStorage):
        def incr(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise boom

    with pytest.raises(ConnectionError) as caught:
        FixedWindowRateLimiter(DeadStorage()).hit(parse("1/minute"), "k")
    assert caught.value is boom
    assert decisions(otel) == []


def test_a_failing_remaining_read_still_records_the_decision(instrument, otel):
    instrument(limiters=["limits"])

    class NoStats(FixedWindowRateLimiter):
        pass

    rate = NoStats(MemoryStorage())
    rate.get_window_stats = None  # type: ignore[method-assign]  # calling it raises TypeError
    assert rate.hit(parse("1/minute"), "k") is True
    ((_, event),) = decisions(otel)
    assert event[sc.LIMITER_ACTION] == "allowed" and sc.LIMITER_REMAINING not in event


# --- slowapi adapter -------------------------------------------------------------------------


def _slowapi_app(otel, *, instrument_fastapi: bool = True, middleware: bool = False, **limiter_options):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient
    from slowapi import Limiter, _rate_limit_exceeded_handler
    from slowapi.errors import RateLimitExceeded
    from slowapi.middleware import SlowAPIMiddleware
    from slowapi.util import get_remote_address

    limiter = Limiter(key_func=get_remote_address, **limiter_options)
    app = fastapi.FastAPI()
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)

    if middleware:
        app.add_middleware(SlowAPIMiddleware)

        @app.get("/items/{item_id}")
        async def item(item_id: str) -> dict[str, str]:
            return {"item": item_id}

    else:

        @app.post("/chat/{conversation_id}")
        @limiter.limit("2/minute")
        async def chat(request: Request, conversation_id: str) -> dict[str, str]:
            return {"ok": conversation_id}

        @app.get("/free")
        @limiter.exempt
        async def free(request: Request) -> dict[str, str]:
            return {"ok": "free"}

    if instrument_fastapi:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=otel.tracer_provider)
    return TestClient(app)


def test_slowapi_fastapi_app_records_allowed_and_throttled_on_the_server_span(instrument, otel):
    instrument(limiters=ALL_ADAPTERS)  # with the limits adapter on too: slowapi's hits are not counted twice
    client = _slowapi_app(otel)
    assert [client.post("/chat/42").status_code for _ in range(3)] == [200, 200, 429]
    got = decisions(otel)
    assert [(span.kind, span.name) for span, _ in got] == [(trace.SpanKind.SERVER, "POST /chat/{conversation_id}")] * 3
    assert [(e[sc.LIMITER_ACTION], e[sc.LIMITER_REMAINING]) for _, e in got] == [
        ("allowed", 1),
        ("allowed", 0),
        ("throttled", 0),
    ]
    for _, event in got:
        assert event[sc.LIMITER_ROUTE] == "POST /chat/{conversation_id}"
        assert event[sc.LIMITER_LIMIT] == "per-route" and event[sc.LIMITER_SOURCE] == "slowapi"
        assert event[sc.LIMITER_KEY] == "testclient" and event[sc.LIMITER_RULE] == "2 per 1 minute"
    route = {
        sc.LIMITER_LIMIT: "per-route",
        sc.LIMITER_ROUTE: "POST /chat/{conversation_id}",
        sc.LIMITER_SOURCE: "slowapi",
    }
    assert counted(otel) == {
        tuple(sorted({**route, sc.LIMITER_ACTION: "allowed"}.items())): 2,
        tuple(sorted({**route, sc.LIMITER_ACTION: "throttled"}.items())): 1,
    }


def test_slowapi_exempt_route_records_nothing(instrument, otel):
    instrument(limiters=["slowapi"])
    client = _slowapi_app(otel)
    assert client.get("/free").status_code == 200
    assert decisions(otel) == [] and counted(otel) == {}


def test_slowapi_without_web_instrumentation_gets_its_route_from_the_request(instrument, otel):
    instrument(limiters=["slowapi"])
    client = _slowapi_app(otel, instrument_fastapi=False)
    assert [client.post("/chat/7").status_code for _ in range(3)] == [200, 200, 429]
    got = decisions(otel)
    assert [span.name for span, _ in got] == [sc.LIMITER_SPAN_NAME] * 3  # no server span: spans of their own
    assert [e[sc.LIMITER_ACTION] for _, e in got] == ["allowed", "allowed", "throttled"]
    assert {e[sc.LIMITER_ROUTE] for _, e in got} == {"POST /chat/{conversation_id}"}


def test_slowapi_middleware_application_limits_are_global_decisions(instrument, otel):
    instrument(limiters=["slowapi"])
    client = _slowapi_app(otel, instrument_fastapi=False, middleware=True, application_limits=["1/minute"])
    assert [client.get("/items/a").status_code for _ in range(2)] == [200, 429]
    got = [e for _, e in decisions(otel)]
    assert [(e[sc.LIMITER_ACTION], e[sc.LIMITER_LIMIT]) for e in got] == [
        ("allowed", "global"),
        ("throttled", "global"),
    ]
    assert {e[sc.LIMITER_ROUTE] for e in got} == {"GET /items/{item_id}"}  # matched like slowapi matches it


def test_slowapi_own_failure_reaches_the_app_unchanged_and_records_nothing(instrument, otel):
    from fastapi.testclient import TestClient
    from slowapi import Limiter

    instrument(limiters=["slowapi"])
    boom = LookupError("no such tenant")

    def tenant_key(request: Request) -> str:
        raise boom

    limiter = Limiter(key_func=tenant_key)
    app = fastapi.FastAPI()
    app.state.limiter = limiter

    @app.get("/t")
    @limiter.limit("1/minute")
    async def tenant(request: Request) -> dict[str, str]:
        return {}

    with pytest.raises(LookupError) as caught:
        TestClient(app).get("/t")
    assert caught.value is boom
    assert decisions(otel) == [] and counted(otel) == {}


def test_slowapi_tier_comes_from_the_tier_of_option(instrument, otel):
    instrument(limiters=["slowapi"], limiter_tier=lambda request: request.headers.get("x-plan"))
    client = _slowapi_app(otel)
    client.post("/chat/1", headers={"x-plan": "pro"})
    ((_, event),) = decisions(otel)
    assert event[sc.LIMITER_TIER] == "pro"


def test_slowapi_keys_are_hashed(instrument, otel):
    instrument(limiters=["slowapi"], user_hash_key="k")
    _slowapi_app(otel).post("/chat/1")
    ((_, event),) = decisions(otel)
    assert event[sc.LIMITER_KEY] == hash_user("testclient", "k")


# --- enabling and removing -------------------------------------------------------------------


def _originals() -> dict[str, object]:
    from limits.aio import strategies as aio
    from slowapi.extension import Limiter

    return {
        "fixed.hit": vars(FixedWindowRateLimiter)["hit"],
        "fixed.test": vars(FixedWindowRateLimiter)["test"],
        "moving.hit": vars(MovingWindowRateLimiter)["hit"],
        "aio.fixed.hit": vars(aio.FixedWindowRateLimiter)["hit"],
        "slowapi.check": vars(Limiter)["_check_request_limit"],
    }


def test_off_by_default_and_uninstrument_restores_every_method(instrument, otel):
    before = _originals()
    assert _originals() == before  # default: nothing patched
    instrumentor = instrument(limiters=ALL_ADAPTERS)
    patched = _originals()
    assert all(patched[name] is not before[name] for name in before)
    instrumentor.uninstrument()
    assert _originals() == before
    FixedWindowRateLimiter(MemoryStorage()).hit(parse("1/minute"), "k")
    assert decisions(otel) == []


def test_environment_variable_enables_adapters(instrument, otel, monkeypatch):
    monkeypatch.setenv("OTEL_LLMCOST_LIMITERS", "limits")
    instrument()
    FixedWindowRateLimiter(MemoryStorage()).hit(parse("1/minute"), "k")
    assert len(decisions(otel)) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", ()), ("limits", ("limits",)), (" SlowAPI , limits ", ("limits", "slowapi")), ("all", ("limits", "slowapi"))],
)
def test_environment_value_parsing(value, expected):
    assert parse_limiters(value) == expected


def test_a_version_outside_the_supported_range_is_not_patched(instrument, monkeypatch, caplog):
    monkeypatch.setitem(package.LIMITER_REQUIREMENTS, "limits", "limits<1")
    before = _originals()
    instrumentor = instrument(limiters=["limits", "slowapi"])
    try:
        assert vars(FixedWindowRateLimiter)["hit"] is before["fixed.hit"]
        assert _originals()["slowapi.check"] is not before["slowapi.check"]
        assert "outside the supported range" in caplog.text
    finally:
        instrumentor.uninstrument()
    assert _originals() == before
