"""Shared fixtures: an instrumented process with in-memory span and metric readers,
the fake provider that the real SDKs talk to (no network, no keys), and migrated
embedded ClickHouse databases (chdb)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llmcost import LLMCostInstrumentor, runtime
from otel_llmcost.demo.fakes import FakeLLMServer
from otel_llmcost.pricing import Pricer
from tests.helpers.chdb import copy_migrated, fresh_client

# pytest-xdist workers inherit COLUMNS=80, and rich fixes a console's width from COLUMNS
# when it is created (the CLI's, at import): tests that set COLUMNS for one command
# would then get 80 under -n and their own width without it.
os.environ.pop("COLUMNS", None)
# LiteLLM (optional) fetches its model price map from GitHub when imported unless told to use its
# bundled copy: tests never touch the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run long soaks and benchmarks")


# Modules whose tests take the longest (each benchmark runs subprocesses for minutes on a
# slow machine): run first, so that under -n the workers end on short tests together
# instead of one worker finishing a benchmark alone while the other has nothing left.
# A stable sort: each module's tests stay together and in their order.
_RUN_FIRST = ("tests/test_benchmarks_", "tests/reliability/")


def _run_order(item: pytest.Item) -> int:
    path = item.nodeid.replace("\\", "/")
    return next((i for i, prefix in enumerate(_RUN_FIRST) if path.startswith(prefix)), len(_RUN_FIRST))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_run_order)
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The data directory (chdb database, tiktoken vocab) never lands in the real home.
    home = os.environ.get("OTEL_LLMCOST_TEST_HOME") or str(tmp_path_factory.getbasetemp() / "llmcost-home")
    monkeypatch.setenv("OTEL_LLMCOST_HOME", home)
    # Tests ingest in-process where they read; the tests of the on-demand ingester turn it on.
    monkeypatch.setenv("OTEL_EXPORTER_LLMCOST_INGESTER", "off")
    # Code that records without instrument() uses a runtime built from the environment
    # once per process: rebuild it for each test, which sets its own environment.
    runtime.reset_default()
    yield
    runtime.reset_default()


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


# --- embedded ClickHouse ------------------------------------------------------------------
# chdb holds one data path per process at a time: every client below is closed when its
# test (or module) ends, so the next one can open its own path. Migration options come
# from the closest `chdb` marker, e.g. `pytestmark = pytest.mark.chdb(ttl_days=3650)`
# for data dated further back than the default 180-day TTL.


def _migrate_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("chdb")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def chdb_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh migrated database (``otel``) for one test, for tests that read every row."""
    with fresh_client(tmp_path, **_migrate_options(request)) as client:
        yield client


@pytest.fixture(scope="module")
def chdb_module_client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One migrated database shared by a module's tests (opening and migrating takes ~0.5 s);
    the tests keep apart by each using its own ServiceName."""
    with fresh_client(tmp_path_factory.mktemp("chdb"), **_migrate_options(request)) as client:
        yield client


@pytest.fixture(scope="module")
def chdb_module_dsn(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The DSN of a migrated database shared by a module, with no client left open: for
    modules whose code under test opens the path itself (the CLI)."""
    return copy_migrated(tmp_path_factory.mktemp("chdb"), **_migrate_options(request))
