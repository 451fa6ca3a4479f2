"""Shared fixtures: an instrumented process with in-memory span and metric readers,
and the fake provider that the real SDKs talk to (no network, no keys)."""

from __future__ import annotations

import os

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llmcost import LLMCostInstrumentor
from otel_llmcost.demo.fakes import FakeLLMServer
from otel_llmcost.pricing import Pricer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run long soaks and benchmarks")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def require_binary(name: str) -> str:
    """Path of a system binary a test drives for real (redis-server, chromium).

    Missing on a developer machine: the test is skipped with the install hint.
    Missing under CI (CI=true): the test fails, so a broken install never passes silently.
    """
    import shutil

    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (see .ci/system-packages.txt; apt-get install it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # The data directory (chdb database, tiktoken vocab) never lands in the real home.
    home = os.environ.get("OTEL_LLMCOST_TEST_HOME") or str(tmp_path_factory.getbasetemp() / "llmcost-home")
    monkeypatch.setenv("OTEL_LLMCOST_HOME", home)


class EndCounter(SpanProcessor):
    """Counts span ends per span id: a span must end exactly once."""

    def __init__(self) -> None:
        self.ends: dict[int, int] = {}

    def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
        key = span.context.span_id
        self.ends[key] = self.ends.get(key, 0) + 1


class Instrumented:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.ends = EndCounter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer_provider.add_span_processor(self.ends)
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])

    def spans(self):  # type: ignore[no-untyped-def]
        return self.exporter.get_finished_spans()

    def only_span(self):  # type: ignore[no-untyped-def]
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        assert self.ends.ends == {spans[0].context.span_id: 1}
        return spans[0]

    def clear(self) -> None:
        self.exporter.clear()
        self.ends.ends.clear()

    def metrics(self) -> dict[str, list]:
        data = self.metric_reader.get_metrics_data()
        out: dict[str, list] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out


@pytest.fixture
def otel() -> Instrumented:
    return Instrumented()


@pytest.fixture
def instrument(otel: Instrumented):  # type: ignore[no-untyped-def]
    """Instrument with fresh providers; yields a function to re-instrument with options."""
    instrumentor = LLMCostInstrumentor()

    def apply(**options: object) -> LLMCostInstrumentor:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        options.setdefault("pricer", Pricer(overrides_path=""))
        instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, **options)
        return instrumentor

    apply()
    yield apply
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture
def fake() -> FakeLLMServer:
    return FakeLLMServer()
