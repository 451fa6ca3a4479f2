"""AWS Bedrock (the ``bedrock-runtime`` service, through boto3/botocore).

botocore generates its client methods at run time, so there is no ``Converse.create`` to
patch: every call of every AWS service goes through ``BaseClient._make_api_call(operation,
params)``. That one method is patched, and :meth:`BedrockProvider.select` keeps the four
LLM operations of ``bedrock-runtime`` (``Converse``, ``ConverseStream``, ``InvokeModel``,
``InvokeModelWithResponseStream``); any other call (S3, DynamoDB, Bedrock's control plane)
costs one dict lookup and passes untouched. botocore has no async client (aiobotocore is
another library, not instrumented here).

Retries happen inside ``Endpoint._send_request``: each attempt's response goes through
``Endpoint._needs_retry`` (the hook below), which says whether it is retried; the final
failure is read from the ``ClientError`` (``response["ResponseMetadata"]``, and
``Error.Code`` ``ThrottlingException`` on a 429). Bedrock sends no rate-limit headroom
headers (its quotas are per account and region, visible in Service Quotas and CloudWatch
only) and no ``retry-after``: the spans carry retries, throttling and status, no
``llmcost.ratelimit.*``.

Usage:

- Converse / ConverseStream ``usage`` (the stream's last ``metadata`` event):
  ``inputTokens`` EXCLUDES ``cacheReadInputTokens`` and ``cacheWriteInputTokens`` (as
  Anthropic's API does; ``totalTokens`` counts them), so input = the three summed. A usage
  whose ``totalTokens`` is exactly input + output while it names cache tokens counted
  them in ``inputTokens`` already, and is read that way. ``cacheDetails`` splits the writes
  by TTL (``5m``, ``1h``), priced apart where genai-prices has a 1-hour write price. No
  reasoning count is reported.
- InvokeModel: the body is each model family's own JSON. It is a ``StreamingBody`` read
  once by us and replaced by a fresh one over the same bytes, so the caller reads what it
  would have. Anthropic: the Messages API ``usage`` (:func:`.anthropic.parse_usage`);
  Nova: ``usage`` as in Converse; Titan: ``inputTextTokenCount`` and
  ``results[].tokenCount``; Meta: ``prompt_token_count`` / ``generation_token_count``;
  others (Mistral, Cohere): the ``x-amzn-bedrock-input-token-count`` /
  ``-output-token-count`` headers every InvokeModel response carries.
- InvokeModelWithResponseStream: ``chunk.bytes`` holds the family's stream events
  (Anthropic's ``message_start``/``message_delta``, Nova's Converse-like events, Titan's
  and Meta's counts); the last chunk's ``amazon-bedrock-invocationMetrics`` counts what
  the family's own events did not.

Prices: genai-prices' ``aws`` provider matches Bedrock model ids as sent, with their
inference-profile prefix (``us.``, ``eu.``, ``apac.``, ``global.``: a global profile may
be priced apart from a regional one), so the id is kept as is; an ARN is reduced to the
id it names (``.../inference-profile/us.anthropic.claude-...``). An application inference
profile or provisioned model ARN names no model: unpriced, never $0.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from .. import semconv
from ..pricing.usage import Usage
from .anthropic import AnthropicProvider
from .anthropic import parse_usage as parse_anthropic_usage
from .base import Api, Attempt, ErrorReport, Hook, PromptView, Provider, Request, ResponseRecord, ResultKind, Selected
from .fields import as_float, as_int

logger = logging.getLogger(__name__)

SERVICE = "bedrock-runtime"
PRICING_PROVIDER = "aws"  # genai-prices' provider id for Bedrock
_CHAT = semconv.OPERATION_CHAT
_CONVERSE = "converse"
_CONVERSE_STREAM = "converse_stream"
_INVOKE = "invoke"
_INVOKE_STREAM = "invoke_stream"
_STREAMING = frozenset({_CONVERSE_STREAM, _INVOKE_STREAM})

# The one patched method, and the operations of bedrock-runtime it instruments (kind: which).
_MODULE, _METHOD = "botocore.client", "BaseClient._make_api_call"
OPERATIONS: dict[str, Api] = {
    operation: Api(_MODULE, _METHOD, _CHAT, False, kind)
    for operation, kind in (
        ("Converse", _CONVERSE),
        ("ConverseStream", _CONVERSE_STREAM),
        ("InvokeModel", _INVOKE),
        ("InvokeModelWithResponseStream", _INVOKE_STREAM),
    )
}

# Error codes that mean throttled, in a ClientError or an error event mid-stream.
_THROTTLE_CODES = frozenset({"throttlingexception", "toomanyrequestsexception"})
# The token counts every InvokeModel response carries in its headers.
_HEADER_INPUT = "x-amzn-bedrock-input-token-count"
_HEADER_OUTPUT = "x-amzn-bedrock-output-token-count"
_HEADER_CACHE_READ = "x-amzn-bedrock-cache-read-input-token-count"
_HEADER_CACHE_WRITE = "x-amzn-bedrock-cache-write-input-token-count"
_METRICS = "amazon-bedrock-invocationMetrics"


def model_id(value: Any) -> str:
    """The model id of a ``modelId``: as sent, or the id an ARN names after its resource type
    (``arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-...`` -> ``anthropic.claude-...``)."""
    if not isinstance(value, str):
        return ""
    if value.startswith("arn:"):
        resource = value.split(":", 5)[-1]
        kind, _, name = resource.partition("/")
        if kind in ("foundation-model", "inference-profile") and name:
            return name
    return value


def parse_converse_usage(usage: Any) -> Usage | None:
    """Converse usage (also Nova's InvokeModel ``usage``): input excludes cache reads and writes."""
    if not isinstance(usage, dict):
        return None
    reported = as_int(usage.get("inputTokens"))
    output = as_int(usage.get("outputTokens"))
    read = as_int(usage.get("cacheReadInputTokens") or usage.get("cacheReadInputTokenCount"))
    write = as_int(usage.get("cacheWriteInputTokens") or usage.get("cacheWriteInputTokenCount"))
    # cacheDetails splits the writes by TTL ("5m", "1h"); the split, when larger, wins, as at Anthropic.
    write_1h = split = 0
    details = usage.get("cacheDetails")
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict):
            count = as_int(detail.get("inputTokens"))
            split += count
            write_1h += count if detail.get("ttl") == "1h" else 0
    write = max(write, split)
    total = usage.get("totalTokens")
    uncached = reported
    if (read or write) and type(total) is int and total == reported + output and reported >= read + write:
        uncached = reported - read - write  # this total left the cache out: inputTokens counted it
    if "inputTokens" not in usage and "outputTokens" not in usage:
        return None
    return Usage(
        input_tokens=uncached + read + write,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
    )


def _counts_usage(uncached: Any, output: Any, read: Any = 0, write: Any = 0) -> Usage:
    read_n, write_n = as_int(read), as_int(write)
    return Usage(
        input_tokens=as_int(uncached) + read_n + write_n,
        output_tokens=as_int(output),
        cache_read_tokens=read_n,
        cache_write_tokens=write_n,
    )


def parse_header_usage(headers: Any) -> Usage | None:
    """The token counts of an InvokeModel response's headers (strings), None when absent."""
    if not isinstance(headers, dict) or _HEADER_INPUT not in headers:
        return None
    return _counts_usage(
        *(
            _header_int(headers.get(name))
            for name in (_HEADER_INPUT, _HEADER_OUTPUT, _HEADER_CACHE_READ, _HEADER_CACHE_WRITE)
        )
    )


def _header_int(value: Any) -> int:
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def parse_invoke_usage(body: Any) -> Usage | None:
    """Usage in an InvokeModel body, by model family; None for a family that reports none."""
    if not isinstance(body, dict):
        return None
    usage = body.get("usage")
    if isinstance(usage, dict):
        if "inputTokens" in usage or "outputTokens" in usage:  # Nova
            return parse_converse_usage(usage)
        if "input_tokens" in usage or "output_tokens" in usage:  # Anthropic
            return parse_anthropic_usage(usage)
        if "prompt_tokens" in usage:  # OpenAI-style chat bodies (Mistral's chat format, gpt-oss)
            return _counts_usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    if "inputTextTokenCount" in body:  # Titan text (results[].tokenCount) and embeddings (no output)
        results = body.get("results")
        output = (
            sum(as_int(result.get("tokenCount")) for result in results if isinstance(result, dict))
            if isinstance(results, list)
            else 0
        )
        return _counts_usage(body.get("inputTextTokenCount"), output)
    if "prompt_token_count" in body or "generation_token_count" in body:  # Meta
        return _counts_usage(body.get("prompt_token_count"), body.get("generation_token_count"))
    return None


def _json(data: Any) -> Any:
    """JSON bytes or text parsed, or None (not JSON, or not bytes or text: a file-like body)."""
    if not isinstance(data, (bytes, bytearray, str)) or not data:
        return None
    try:
        return json.loads(data)
    except ValueError:  # UnicodeDecodeError included
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _metadata(response: Any) -> dict[str, Any]:
    return _mapping(response.get("ResponseMetadata")) if isinstance(response, dict) else {}


def _error_code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    error_info = response.get("Error") if isinstance(response, dict) else None
    code = error_info.get("Code") if isinstance(error_info, dict) else None
    return code if isinstance(code, str) else ""


def _retry_decision(args: tuple[Any, ...], kwargs: dict[str, Any], will_retry: Any) -> Attempt | None:
    """``Endpoint._needs_retry(attempts, operation_model, request_dict, response, caught_exception)``:
    an attempt that is retried (its status and headers), or the final one when it succeeded.
    A final failure is read from the exception, so nothing is counted twice."""
    response = args[3] if len(args) > 3 else kwargs.get("response")
    http = response[0] if isinstance(response, tuple) and response else None
    status = getattr(http, "status_code", None)
    status = status if type(status) is int else None
    headers = getattr(http, "headers", None)
    if will_retry:
        attempts = args[0] if args else kwargs.get("attempts")
        return Attempt(retries_taken=attempts if type(attempts) is int else None, status=status, headers=headers)
    if status is not None and status < 300:
        return Attempt(status=status, headers=headers)
    return None


class _ReplayBody:
    """What an InvokeModel body read by us gives back when reading it failed: the same error."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def read(self, *_args: Any, **_kwargs: Any) -> bytes:
        raise self._error

    # StreamingBody's other ways to read it.
    readlines = iter_lines = iter_chunks = __iter__ = read

    def close(self) -> None:
        pass


class BedrockProvider(Provider):
    name = "aws.bedrock"
    apis = (Api(_MODULE, _METHOD, _CHAT, False, "dispatch"),)
    hooks = (Hook("botocore.endpoint", "Endpoint._needs_retry", False, after=_retry_decision),)
    dispatches = True

    def __init__(self) -> None:
        # Anthropic's stream events inside InvokeModelWithResponseStream chunks: read with its provider.
        self._anthropic = AnthropicProvider()

    # --- request ------------------------------------------------------------------

    def select(self, api: Api, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Selected | None:
        operation = args[0] if args else kwargs.get("operation_name")
        selected = OPERATIONS.get(operation) if isinstance(operation, str) else None
        if selected is None:
            return None
        service = getattr(getattr(getattr(instance, "meta", None), "service_model", None), "service_name", None)
        if service != SERVICE:
            return None
        params = args[1] if len(args) > 1 else kwargs.get("api_params")
        if not isinstance(params, dict):
            return None
        return selected, params

    def read_request(self, api: Api, instance: Any, kwargs: dict[str, Any], *, inject_include_usage: bool) -> Request:
        model = model_id(kwargs.get("modelId"))
        request = Request(operation=api.operation, provider_name=self.name, model=model, prompt=PromptView())
        request.pricing_provider = PRICING_PROVIDER
        if api.kind in (_CONVERSE, _CONVERSE_STREAM):
            _read_converse_request(request, kwargs)
        else:
            _read_invoke_request(request, kwargs.get("body"))
        if api.kind in _STREAMING:
            request.stream = True
            # usage arrives in the last event: keep what is generated, to count it if it never does
            request.collect_output = request.estimate_usage = True
        if "embed" in model:
            request.operation = semconv.OPERATION_EMBEDDINGS
        endpoint = getattr(getattr(instance, "meta", None), "endpoint_url", None)
        if isinstance(endpoint, str):
            request.api_url = endpoint
            try:
                parts = urlsplit(endpoint)
                request.server_address = parts.hostname
                request.server_port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                pass
        return request

    def replace_model(self, kwargs: dict[str, Any], model: str) -> None:
        kwargs["modelId"] = model

    def classify(self, result: Any, request: Request) -> ResultKind:
        if request.stream and isinstance(result, dict) and ("stream" in result or "body" in result):
            return ResultKind.FIELD_STREAM
        return ResultKind.PLAIN

    def observe_stream(self, entered: Any, wrap: Any) -> None:
        if not isinstance(entered, dict):
            return
        for key in ("stream", "body"):  # ConverseStream, InvokeModelWithResponseStream
            events = entered.get(key)
            if events is not None and not hasattr(events, "read"):
                entered[key] = wrap(events)
                return

    # --- errors -------------------------------------------------------------------

    def read_error(self, error: BaseException) -> ErrorReport:
        """A botocore ``ClientError``: status and headers in ``response["ResponseMetadata"]``; an
        error event mid-stream (``EventStreamError``) has neither, only its code."""
        metadata = _metadata(getattr(error, "response", None))
        status = metadata.get("HTTPStatusCode")
        headers = metadata.get("HTTPHeaders")
        throttled = _error_code(error).lower() in _THROTTLE_CODES
        return ErrorReport(status if type(status) is int else None, headers, throttled=throttled)

    # --- response -----------------------------------------------------------------

    def read_response(self, record: ResponseRecord, response: Any) -> None:
        if not isinstance(response, dict):
            return
        request_id = _metadata(response).get("RequestId")
        if isinstance(request_id, str) and request_id:
            record.id = request_id
        if "usage" in response or "output" in response:  # Converse
            usage = parse_converse_usage(response.get("usage"))
            if usage is not None:
                record.usage = usage
            record.add_finish_reason(response.get("stopReason"))
            if record.output_parts is not None:
                message = response.get("output")
                message = message.get("message") if isinstance(message, dict) else None
                content = message.get("content") if isinstance(message, dict) else None
                for block in content if isinstance(content, list) else ():
                    if isinstance(block, dict):
                        record.add_output(block.get("text"))
            return
        body = response.get("body")
        if body is not None and callable(getattr(body, "read", None)):  # InvokeModel
            self._read_invoke_body(record, response, body)

    def _read_invoke_body(self, record: ResponseRecord, response: dict[str, Any], body: Any) -> None:
        """Read the StreamingBody once and put a fresh one over the same bytes in its place."""
        try:
            data = body.read()
        except Exception as error:  # the caller's read() raises it, as it would have
            response["body"] = _ReplayBody(error)
            data = b""
        else:
            response["body"] = _fresh_body(data)
        usage = None
        parsed = _json(data)
        if isinstance(parsed, dict):
            usage = parse_invoke_usage(parsed)
            _read_invoke_output(record, parsed)
        if usage is None:
            usage = parse_header_usage(_metadata(response).get("HTTPHeaders"))
        if usage is not None:
            record.usage = usage

    def read_chunk(self, record: ResponseRecord, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            return
        payload = chunk.get("chunk")
        if isinstance(payload, dict):  # InvokeModelWithResponseStream: the family's own event as JSON
            event = _json(payload.get("bytes"))
            if isinstance(event, dict):
                self._read_invoke_event(record, event)
            return
        self._read_converse_event(record, chunk)

    def _read_converse_event(self, record: ResponseRecord, event: dict[str, Any]) -> None:
        """A ConverseStream event (Nova's InvokeModel stream events have the same shapes)."""
        delta = event.get("contentBlockDelta")
        if isinstance(delta, dict):
            inner = delta.get("delta")
            if isinstance(inner, dict):
                record.add_output(inner.get("text"))
                reasoning = inner.get("reasoningContent")
                if isinstance(reasoning, dict):
                    record.add_reasoning(reasoning.get("text"))
                tool = inner.get("toolUse")
                if isinstance(tool, dict):
                    record.add_generated(tool.get("input"))
            return
        start = event.get("contentBlockStart")
        if isinstance(start, dict):
            tool = (start.get("start") or {}).get("toolUse") if isinstance(start.get("start"), dict) else None
            if isinstance(tool, dict):
                record.add_generated(tool.get("name"))
            return
        stop = event.get("messageStop")
        if isinstance(stop, dict):
            record.add_finish_reason(stop.get("stopReason"))
            return
        metadata = event.get("metadata")
        if isinstance(metadata, dict):
            usage = parse_converse_usage(metadata.get("usage"))
            if usage is not None:
                record.usage = usage
                record.output_partial = False

    def _read_invoke_event(self, record: ResponseRecord, event: dict[str, Any]) -> None:
        metrics = event.get(_METRICS)
        if isinstance(event.get("type"), str):  # Anthropic's Messages stream events
            model = record.model
            self._anthropic.read_chunk(record, event)
            record.model = model  # Claude's own model name would price it apart from the Bedrock id asked for
        elif any(key in event for key in ("messageStart", "contentBlockDelta", "messageStop", "metadata")):
            self._read_converse_event(record, event)  # Nova
        else:
            _read_family_event(record, event)
        if isinstance(metrics, dict) and (
            record.usage is None or record.output_partial or not record.usage.output_tokens
        ):
            record.usage = _counts_usage(
                metrics.get("inputTokenCount"),
                metrics.get("outputTokenCount"),
                metrics.get("cacheReadInputTokenCount"),
                metrics.get("cacheWriteInputTokenCount"),
            )
            record.output_partial = False


def _fresh_body(data: bytes) -> Any:
    """A StreamingBody over ``data`` (botocore's own class, so the caller sees the same type)."""
    try:
        from botocore.response import StreamingBody

        return StreamingBody(io.BytesIO(data), len(data))
    except Exception:  # pragma: no cover - botocore is there whenever this provider runs
        return io.BytesIO(data)


def _read_converse_request(request: Request, kwargs: dict[str, Any]) -> None:
    messages = kwargs.get("messages")
    config = _mapping(kwargs.get("inferenceConfig"))
    tools = kwargs.get("toolConfig")
    request.prompt = PromptView(
        system=kwargs.get("system"),
        tools=tools.get("tools") if isinstance(tools, dict) else None,
        messages=messages if isinstance(messages, list) else [],
        temperature=config.get("temperature"),
    )
    max_tokens = config.get("maxTokens")
    request.max_tokens = max_tokens if type(max_tokens) is int else None
    request.temperature = as_float(config.get("temperature"))
    request.top_p = as_float(config.get("topP"))


def _read_invoke_request(request: Request, raw: Any) -> None:
    """The family's JSON body, read where it is bytes or text (a file-like body is left unread)."""
    body = _json(raw)
    if not isinstance(body, dict):
        return
    # Anthropic / Nova / Mistral chat: messages (+ system); Meta, Mistral text: prompt; Titan: inputText.
    nova = _mapping(body.get("inferenceConfig"))
    titan = _mapping(body.get("textGenerationConfig"))
    messages = body.get("messages")
    if not isinstance(messages, list):
        text = body.get("prompt") if isinstance(body.get("prompt"), str) else body.get("inputText")
        messages = [{"role": "user", "content": text}] if isinstance(text, str) else []
    temperature = body.get("temperature", nova.get("temperature", titan.get("temperature")))
    request.prompt = PromptView(
        system=body.get("system"), tools=body.get("tools"), messages=messages, temperature=temperature
    )
    for value in (
        body.get("max_tokens"),
        body.get("max_gen_len"),
        nova.get("maxTokens"),
        nova.get("max_new_tokens"),
        titan.get("maxTokenCount"),
    ):
        if type(value) is int:
            request.max_tokens = value
            break
    request.temperature = as_float(temperature)
    request.top_p = as_float(body.get("top_p", nova.get("topP", titan.get("topP"))))


def _read_invoke_output(record: ResponseRecord, body: dict[str, Any]) -> None:
    """Finish reasons and text of an InvokeModel body, by family."""
    if isinstance(body.get("output"), dict):  # Nova: Converse's output and stopReason
        record.add_finish_reason(body.get("stopReason"))
        message = body["output"].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict):
                record.add_output(block.get("text"))
        return
    record.add_finish_reason(body.get("stop_reason"))  # Anthropic, Meta
    content = body.get("content")
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict):
            record.add_output(block.get("text"))
    record.add_output(body.get("generation"))  # Meta
    for key in ("results", "outputs", "choices"):  # Titan, Mistral, chat-format bodies
        items = body.get(key)
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict):
                record.add_finish_reason(
                    item.get("completionReason") or item.get("stop_reason") or item.get("finish_reason")
                )
                record.add_output(item.get("outputText") or item.get("text"))


def _read_family_event(record: ResponseRecord, event: dict[str, Any]) -> None:
    """A Titan, Meta or Mistral stream chunk: text, finish reason, counts where the family sends them."""
    record.add_output(event.get("outputText") or event.get("generation"))
    record.add_finish_reason(event.get("completionReason") or event.get("stop_reason"))
    outputs = event.get("outputs")
    for item in outputs if isinstance(outputs, list) else ():
        if isinstance(item, dict):
            record.add_output(item.get("text"))
            record.add_finish_reason(item.get("stop_reason"))
    if "inputTextTokenCount" in event or "totalOutputTextTokenCount" in event:  # Titan: cumulative counts
        previous = record.usage
        uncached = (
            event.get("inputTextTokenCount")
            if "inputTextTokenCount" in event
            else (previous.input_tokens if previous else 0)
        )
        output = (
            event.get("totalOutputTextTokenCount")
            if "totalOutputTextTokenCount" in event
            else (previous.output_tokens if previous else 0)
        )
        record.usage = _counts_usage(uncached, output)
    elif "prompt_token_count" in event or "generation_token_count" in event:  # Meta: prompt once, output cumulative
        previous = record.usage
        prompt = event.get("prompt_token_count")
        record.usage = _counts_usage(
            prompt if type(prompt) is int else (previous.input_tokens if previous else 0),
            event.get("generation_token_count"),
        )
