"""LLMCall.fail reads the status of every error shape the SDKs raise."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llmcost import semconv
from otel_llmcost.config import Settings
from otel_llmcost.instrumentation.call import LLMCall
from otel_llmcost.instrumentation.telemetry import Telemetry
from otel_llmcost.pricing import Pricer
from otel_llmcost.providers.base import PromptView, Provider, Request
from otel_llmcost.runtime import Runtime


class _AiohttpResponse:
    status = 429
    headers = {"retry-after": "2"}


class _ErrorWithResponse(Exception):
    response = _AiohttpResponse()


class _ErrorWithCode(Exception):
    code = 429


def _failed_span(error: BaseException):  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    runtime = Runtime(Settings(), tracer_provider=tracer_provider, meter_provider=MeterProvider())
    telemetry = Telemetry(runtime, pricer=Pricer(""))
    request = Request(operation="chat", provider_name="test", model="", prompt=PromptView())
    call = LLMCall(telemetry, Provider(), request, collect_output=False)
    call.begin({})
    call.fail(error)
    (span,) = exporter.get_finished_spans()
    return span


def test_aiohttp_style_status_is_read_as_throttled():
    attrs = _failed_span(_ErrorWithResponse()).attributes
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert attrs[semconv.THROTTLED] is True
    assert attrs[semconv.RETRY_AFTER_S] == 2.0


def test_error_code_attribute_is_read_as_status():
    attrs = _failed_span(_ErrorWithCode()).attributes
    assert attrs[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert attrs[semconv.THROTTLED] is True
