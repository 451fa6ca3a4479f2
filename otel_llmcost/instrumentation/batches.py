"""Batch jobs (the OpenAI Batch API): where their spend becomes visible.

A batch's requests never pass through the SDK's ``create`` methods in the application,
so no call span sees them. What the application does see:

- ``batches.create`` / ``batches.retrieve``: a light span each (``batch.create``,
  ``batch.retrieve``) with the batch's id, endpoint, status and request counts. These
  spans carry no ``gen_ai.operation.name`` and no cost, so ``llm_calls`` does not count
  them as calls.
- reading the batch's output file (``files.content(file_id)`` or the deprecated
  ``files.retrieve_content``): the file's lines carry each request's ``usage``. When the
  file is a batch output (checked on its first line; any other file passes untouched),
  one span per model in the file records the summed usage of that model's lines,
  priced at the batch price variant (``processing=batch``), with operation ``batch``,
  ``llmcost.batch.file_id`` and, when this process retrieved the batch, ``llmcost.batch.id``.

Counted once: the spend of a file is recorded on its first read in the process; reading
it again records nothing (a bounded set of file ids, :class:`BatchLedger`). The limit:
two processes that each read the same file record it twice. ``llm_calls.BatchFileId``
keeps the file id, so a query can keep one read per file
(``LIMIT 1 BY BatchFileId, RequestModel``); the stored views do not dedupe.

What the user's call returns is never changed, and the body is never read here: only a
body the SDK already holds in memory is parsed (``content()``, ``retrieve_content()``
and ``with_raw_response``); ``with_streaming_response`` leaves the body to the
application and its spend is not recorded. A file that looks like a batch output but
has a line that cannot be read gets one ``batch.output`` span marked
``llmcost.batch.unusable`` and nothing priced. Batch spend is not charged to budgets
(it was spent when the batch ran, not when the file is read), and it is priced at the
price in force when the file is read.

Cost of the check: a file that is no batch output costs one line's ``json.loads`` at most.
A batch output costs one ``json.loads`` per line, in the caller's thread (for
``AsyncFiles.content``, on the event loop), line by line over the bytes the SDK already
holds: the file is never copied whole.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import semconv
from ..providers.base import (
    BATCH_CREATE,
    BATCH_OUTPUT,
    BatchApi,
    BatchJob,
    BatchModelUsage,
    PromptView,
    Provider,
    Request,
)
from ..providers.hosts import describe_base_url, url_string
from ..signals import attribution
from .attributes import request_attributes
from .call import CURRENT_CALL, LLMCall
from .telemetry import Telemetry

logger = logging.getLogger(__name__)

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
_LEDGER_SIZE = 4096
_BATCH_PRICE_CONTEXT = {semconv.PRICE_CONTEXT_PROCESSING: semconv.PROCESSING_BATCH}


class BatchLedger:
    """What this process saw of batch jobs: the batch behind each output file it retrieved,
    and the output files already recorded. Bounded (oldest forgotten first); thread-safe."""

    def __init__(self, size: int = _LEDGER_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._batches: OrderedDict[str, BatchJob] = OrderedDict()
        self._recorded: OrderedDict[str, None] = OrderedDict()

    def saw(self, job: BatchJob) -> None:
        if job.output_file_id:
            with self._lock:
                self._batches[job.output_file_id] = job
                self._batches.move_to_end(job.output_file_id)
                if len(self._batches) > self._size:
                    self._batches.popitem(last=False)

    def batch_of(self, file_id: str) -> BatchJob | None:
        with self._lock:
            return self._batches.get(file_id)

    def recorded(self, file_id: str) -> bool:
        with self._lock:
            return file_id in self._recorded

    def claim(self, file_id: str) -> bool:
        """True the first time ``file_id`` is claimed (its spend is to be recorded now)."""
        with self._lock:
            if file_id in self._recorded:
                return False
            self._recorded[file_id] = None
            if len(self._recorded) > self._size:
                self._recorded.popitem(last=False)
            return True


def batch_wrapper(telemetry: Telemetry, provider: Provider, api: BatchApi, ledger: BatchLedger) -> Wrapper:
    """The wrapt wrapper of one batch method (sync or async, as ``api`` says)."""
    output = api.kind == BATCH_OUTPUT

    def before(instance: Any) -> Any:
        if output:
            return None
        try:
            return _start_lifecycle(telemetry, provider, api, instance)
        except Exception:
            logger.debug("otel-llmcost: could not start a span for %s", api.attribute, exc_info=True)
            return None

    def after(span: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        try:
            if output:
                _record_output(telemetry, provider, ledger, instance, _file_id(args, kwargs), result)
            elif span is not None:
                _end_lifecycle(span, provider, ledger, result)
        except Exception:
            logger.debug("otel-llmcost: could not record %s", api.attribute, exc_info=True)

    if api.is_async:

        async def async_wrapper(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            if not is_instrumentation_enabled() or CURRENT_CALL.get() is not None:
                return await wrapped(*args, **kwargs)
            span = before(instance)
            try:
                with _current(span):
                    result = await wrapped(*args, **kwargs)
            except BaseException as error:
                _fail(span, provider, error)
                raise
            after(span, instance, args, kwargs, result)
            return result

        return async_wrapper

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not is_instrumentation_enabled() or CURRENT_CALL.get() is not None:
            return wrapped(*args, **kwargs)
        span = before(instance)
        try:
            with _current(span):
                result = wrapped(*args, **kwargs)
        except BaseException as error:
            _fail(span, provider, error)
            raise
        after(span, instance, args, kwargs, result)
        return result

    return wrapper


class _NoSpan:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _current(span: Any) -> Any:
    """Make the lifecycle span current while the SDK sends (HTTP client spans nest under it)."""
    if span is None:
        return _NoSpan()
    return trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)


def _host(provider: Provider, instance: Any) -> tuple[str, str | None, int | None, str | None]:
    """(gen_ai.provider.name, server address, port, base URL) of the SDK resource's client."""
    base_url = getattr(getattr(instance, "_client", None), "base_url", None)
    if base_url is None:
        return provider.name, None, None, None
    url = url_string(base_url)
    name, host, port = describe_base_url(url, provider.name)
    return name, host or None, port if host else None, url


# --- batches.create / retrieve -------------------------------------------------------------


def _start_lifecycle(telemetry: Telemetry, provider: Provider, api: BatchApi, instance: Any) -> Any:
    name = semconv.BATCH_CREATE_SPAN_NAME if api.kind == BATCH_CREATE else semconv.BATCH_RETRIEVE_SPAN_NAME
    provider_name, host, port, _url = _host(provider, instance)
    attrs: dict[str, Any] = {semconv.GEN_AI_PROVIDER_NAME: provider_name}
    if host:
        attrs[semconv.SERVER_ADDRESS] = host
        if port:
            attrs[semconv.SERVER_PORT] = port
    return telemetry.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)


def _end_lifecycle(span: Any, provider: Provider, ledger: BatchLedger, result: Any) -> None:
    try:
        job = provider.read_batch(result)
        if job is not None:
            ledger.saw(job)
            span.set_attributes(_job_attributes(job))
    finally:
        span.end()


def _job_attributes(job: BatchJob) -> dict[str, Any]:
    values = (
        (semconv.BATCH_ID, job.id),
        (semconv.BATCH_ENDPOINT, job.endpoint),
        (semconv.BATCH_STATUS, job.status),
        (semconv.BATCH_INPUT_FILE_ID, job.input_file_id),
        (semconv.BATCH_OUTPUT_FILE_ID, job.output_file_id),
        (semconv.BATCH_REQUESTS_TOTAL, job.requests_total),
        (semconv.BATCH_REQUESTS_COMPLETED, job.requests_completed),
        (semconv.BATCH_REQUESTS_FAILED, job.requests_failed),
    )
    return {name: value for name, value in values if value is not None}


def _fail(span: Any, provider: Provider, error: BaseException) -> None:
    """End a lifecycle span as failed (as a call's: error.type, the HTTP status); never raises."""
    if span is None:
        return
    try:
        error_type = type(error).__qualname__
        span.set_attribute(semconv.ERROR_TYPE, error_type)
        status = provider.read_error(error).status
        if status is not None:
            span.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, status)
            if status in provider.throttle_statuses:
                span.set_attribute(semconv.THROTTLED, True)
        span.set_status(Status(StatusCode.ERROR, error_type))
    except Exception:
        logger.debug("otel-llmcost: could not read error %r", type(error), exc_info=True)
    finally:
        span.end()


# --- the output file ----------------------------------------------------------------------


def _file_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    file_id = args[0] if args else kwargs.get("file_id")
    return file_id if isinstance(file_id, str) else ""


def _record_output(
    telemetry: Telemetry, provider: Provider, ledger: BatchLedger, instance: Any, file_id: str, result: Any
) -> None:
    if not file_id or ledger.recorded(file_id):
        return  # read before in this process: counted then
    content = provider.file_content(result)
    if content is None:
        return
    output = provider.read_batch_output(content)
    if output is None or not ledger.claim(file_id):
        return  # not a batch output (left alone), or another thread recorded it meanwhile
    provider_name, host, port, url = _host(provider, instance)
    if not output.usable:
        attrs: dict[str, Any] = {
            semconv.GEN_AI_PROVIDER_NAME: provider_name,
            semconv.BATCH_FILE_ID: file_id,
            semconv.BATCH_UNUSABLE: True,
        }
        telemetry.tracer.start_span(semconv.BATCH_OUTPUT_SPAN_NAME, kind=SpanKind.CLIENT, attributes=attrs).end()
        return
    job = ledger.batch_of(file_id)
    for model_usage in output.models:
        _record_model(telemetry, provider, model_usage, file_id, job, (provider_name, host, port, url))


def _record_model(
    telemetry: Telemetry,
    provider: Provider,
    model_usage: BatchModelUsage,
    file_id: str,
    job: BatchJob | None,
    host: tuple[str, str | None, int | None, str | None],
) -> None:
    """One span for one model's lines: their summed usage at the batch price."""
    provider_name, address, port, url = host
    request = Request(
        operation=semconv.OPERATION_BATCH,
        provider_name=provider_name,
        model=model_usage.model,
        prompt=PromptView(),
        server_address=address,
        server_port=port,
        api_url=url,
    )
    call = LLMCall(telemetry, provider, request, collect_output=False)
    record = call.record
    record.usage = model_usage.usage
    record.model = model_usage.model or None
    record.price_context = dict(_BATCH_PRICE_CONTEXT)
    batch_attrs: dict[str, Any] = {
        semconv.BATCH_FILE_ID: file_id,
        semconv.BATCH_LINES: model_usage.lines,
    }
    endpoint = (job.endpoint if job is not None else None) or model_usage.endpoint
    if endpoint:
        batch_attrs[semconv.BATCH_ENDPOINT] = endpoint
    if job is not None and job.id:
        batch_attrs[semconv.BATCH_ID] = job.id
    record.attributes = batch_attrs
    attrs = request_attributes(request)
    del attrs[semconv.GEN_AI_REQUEST_STREAM]  # no request was sent from here
    for attribute, value in attribution.span_attributes(
        telemetry.settings.user_hash_key, telemetry.runtime.server_spans
    ):
        attrs[attribute] = value
    call.begin(attrs)
    call.finish()


__all__ = ["BatchLedger", "batch_wrapper"]
