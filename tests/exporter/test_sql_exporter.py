"""LLMCostSpanExporter on chdb: real SDK spans land as typed llm_calls rows, nothing is lost
while another process holds the database, nothing is duplicated on replay, and export
never raises.

chdb admits one data path per process at a time, so this module never keeps a client
open: every check opens and closes one, as the exporter itself does.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_llmcost import semconv as sc
from otel_llmcost import storage
from otel_llmcost.exporter import IngestDeferred, LLMCostSpanExporter, ingest_pending, pending_files
from otel_llmcost.exporter.ingest import insert_rows
from otel_llmcost.exporter.rows import format_value, span_to_row
from otel_llmcost.exporter.spool import write_spool
from tests.helpers.chdb import chdb_dsn, query_dsn


@pytest.fixture(scope="module")
def dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An embedded database path the exporter creates and migrates itself (no shared chdb fixture)."""
    return chdb_dsn(tmp_path_factory.mktemp("exporter"))


def make_spans(exporter: LLMCostSpanExporter, service: str, n: int, **extra) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(sc.INSTRUMENTATION_SCOPE, "0.1")
    for i in range(n):
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    sc.GEN_AI_OPERATION_NAME: "chat",
                    sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                    sc.GEN_AI_USAGE_INPUT_TOKENS: 1000 + i,
                    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 500,
                    sc.COST_TOTAL: 0.00125,
                    sc.UNPRICED: False,
                    sc.THROTTLED: i == 0,
                    sc.ratelimit_attribute("tokens", "remaining"): 9000 - i,
                    sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
                    **extra,
                }
            )
            span.add_event("retry", {"attempt": 1})
            if i == 1:
                span.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    ingest_pending(exporter._dsn, "otel", wait_s=30)  # what the ingester process does


def test_sdk_spans_become_exactly_n_typed_llm_calls(dsn):
    exporter = LLMCostSpanExporter(dsn=dsn)
    make_spans(exporter, "sdk", 25)
    assert exporter.dropped_spans == 0
    assert pending_files(dsn) == []
    got = query_dsn(
        dsn,
        "SELECT count(), sum(InputTokens), sum(CacheReadTokens), round(sum(CostTotal), 8), sum(Throttled),"
        " min(RateLimitTokensRemaining), sum(Unpriced), countIf(StatusCode = 'Error')"
        " FROM otel.llm_calls WHERE ServiceName = 'sdk'",
    )
    assert got == [(25, 25 * 1000 + 300, 12500, round(25 * 0.00125, 8), 1, 9000 - 24, 0, 1)]


def test_rows_match_what_the_collector_writes(dsn):
    row = query_dsn(
        dsn,
        "SELECT SpanKind, StatusCode, StatusMessage, ScopeName, ScopeVersion,"
        " length(TraceId), length(SpanId),"
        " SpanAttributes[{f:String}], SpanAttributes[{u:String}], SpanAttributes[{c:String}],"
        " Events.Name, Events.Attributes, Duration > 0"
        " FROM otel.otel_traces WHERE ServiceName = 'sdk' AND StatusCode = 'Error'",
        f=sc.GEN_AI_RESPONSE_FINISH_REASONS,
        u=sc.UNPRICED,
        c=sc.COST_TOTAL,
    )
    assert row == [
        (
            "Client",
            "Error",
            "boom",
            "otel_llmcost",
            "0.1",
            32,
            16,
            '["stop"]',
            "false",
            "0.00125",
            ["retry"],
            [{"attempt": "1"}],
            1,
        )
    ]


def test_export_while_another_process_holds_the_database_loses_nothing(dsn):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time, clickhouse_connect\n"
                f"c = clickhouse_connect.get_client(dsn={dsn!r})\n"
                "c.command('SELECT 1')\n"
                "print('ready', flush=True)\n"
                "time.sleep(3)\n"
                "c.close()\n"
            ),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        exporter = LLMCostSpanExporter(dsn=dsn)
        started = time.monotonic()
        make_spans_no_shutdown = TracerProvider(resource=Resource.create({"service.name": "busy"}))
        make_spans_no_shutdown.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = make_spans_no_shutdown.get_tracer(sc.INSTRUMENTATION_SCOPE)
        for _ in range(10):
            with tracer.start_as_current_span("chat m") as span:
                span.set_attribute(sc.GEN_AI_OPERATION_NAME, "chat")
        assert time.monotonic() - started < 3.0  # never waited for the holder
        assert pending_files(exporter._dsn)  # spooled, not lost
        with pytest.raises(storage.StorageBusy):
            ingest_pending(dsn, "otel", wait_s=0.5)  # the ingester finds the path busy: retries later
        assert pending_files(exporter._dsn)
        holder.wait(timeout=20)
        make_spans_no_shutdown.shutdown()
        ingest_pending(dsn, "otel", wait_s=30)
    finally:
        holder.kill()
    assert exporter.dropped_spans == 0
    assert query_dsn(dsn, "SELECT count() FROM otel.llm_calls WHERE ServiceName = 'busy'") == [(10,)]


def test_replaying_a_spool_file_after_a_crash_does_not_duplicate(dsn):
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "replay"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for _ in range(3):
        with provider.get_tracer(sc.INSTRUMENTATION_SCOPE).start_as_current_span("chat m") as span:
            span.set_attribute(sc.GEN_AI_OPERATION_NAME, "chat")
    rows = [span_to_row(s) for s in memory.get_finished_spans()]
    path = write_spool(dsn, rows)
    with storage.open_client(dsn) as c:  # the crash: inserted, but never unlinked
        insert_rows(c, "otel", rows, token=path.name)
    assert ingest_pending(dsn, "otel") == 3  # replays the same file with the same token
    assert not path.exists()
    assert query_dsn(dsn, "SELECT count() FROM otel.otel_traces WHERE ServiceName = 'replay'") == [(3,)]
    assert query_dsn(dsn, "SELECT count() FROM otel.llm_calls WHERE ServiceName = 'replay'") == [(3,)]
    assert query_dsn(dsn, "SELECT sum(Calls) FROM otel.v_cost_hourly WHERE ServiceName = 'replay'") == [(3,)]


HOSTILE = {
    "quote": 'it\'s "quoted"',
    "backslash": "C:\\path\\to\\x\\",
    "sql": "'; DROP TABLE otel_traces; --",
    "nul": "a\x00b",
    "big": "x" * 100_000,
    "surrogate": "ok\ud800bad",
    "newline": "line1\nline2\r\n",
    "unicode": "naïve 🚀 \u2028",
}


def test_hostile_attribute_values_round_trip_or_are_sanitised(dsn):
    exporter = LLMCostSpanExporter(dsn=dsn)
    attrs = {f"test.{k}": v for k, v in HOSTILE.items()}
    make_spans(exporter, "hostile", 2, **{sc.ENDPOINT: HOSTILE["sql"], sc.USER: HOSTILE["surrogate"]}, **attrs)
    assert exporter.dropped_spans == 0
    stored = query_dsn(dsn, "SELECT SpanAttributes FROM otel.otel_traces WHERE ServiceName = 'hostile'")
    assert len(stored) == 2
    for (attributes,) in stored:
        for key, value in HOSTILE.items():
            expected = value.replace("\ud800", "\ufffd")[:8192]  # values are cut at 8 KiB
            assert attributes[f"test.{key}"] == expected
        assert attributes[sc.ATTRIBUTES_TRUNCATED] == "1"
    calls = query_dsn(dsn, "SELECT Endpoint, User FROM otel.llm_calls WHERE ServiceName = 'hostile'")
    assert calls == [(HOSTILE["sql"], "ok\ufffdbad")] * 2
    assert query_dsn(dsn, "EXISTS TABLE otel.otel_traces") == [(1,)]


def test_unreachable_remote_never_slows_the_app_and_keeps_the_spans(caplog):
    remote = "http://user:s3cret@127.0.0.1:1"
    exporter = LLMCostSpanExporter(dsn=remote)
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        for _ in range(3):
            with provider.get_tracer(sc.INSTRUMENTATION_SCOPE).start_as_current_span("chat m"):
                pass
        provider.shutdown()
        assert time.monotonic() - started < 1.0  # export writes a local file, nothing more
        with pytest.raises(IngestDeferred) as deferred:
            ingest_pending(remote, "otel")
    assert exporter.dropped_spans == 0
    assert sum(1 for _ in pending_files(remote)) == 3  # kept for when the server is back
    assert "s3cret" not in caplog.text and "s3cret" not in str(deferred.value)


def test_redact_dsn_hides_passwords():
    assert storage.redact_dsn("https://alice:pw@ch.example:8443/db?password=pw2&x=1") == (
        "https://alice:***@ch.example:8443/db?password=***&x=1"
    )
    assert storage.redact_dsn("chdb:///tmp/x") == "chdb:///tmp/x"
    assert "pw" not in storage.redact_text("auth failed for https://alice:pw@h/ (pw)", "https://alice:pw@h/")


def test_attribute_values_are_stringified_like_pdata():
    assert format_value(True) == "true"
    assert format_value(123) == "123"
    assert format_value(0.00123) == "0.00123"
    assert format_value(3.0) == "3"
    assert format_value(1e-7) == "1e-7"
    assert format_value(1e21) == "1e+21"
    assert format_value(["a", 1, 2.5, False]) == '["a",1,2.5,false]'


def test_default_dsn_and_env(monkeypatch, tmp_path):
    monkeypatch.setenv("OTEL_LLMCOST_HOME", str(tmp_path))
    monkeypatch.delenv("OTEL_EXPORTER_LLMCOST_DSN", raising=False)
    assert storage.configured_dsn() == f"chdb://{tmp_path / 'chdb'}"
    monkeypatch.setenv("OTEL_EXPORTER_LLMCOST_DSN", "http://h:8123")
    monkeypatch.setenv("OTEL_EXPORTER_LLMCOST_DATABASE", "llm")
    exporter = LLMCostSpanExporter()
    assert exporter.dsn_redacted == "http://h:8123" and exporter._database == "llm"
    with pytest.raises(ValueError):
        LLMCostSpanExporter(database="bad-name")
