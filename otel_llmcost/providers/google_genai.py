"""Google Gen AI (the ``google-genai`` SDK: Gemini Developer API and Vertex AI).

Wrapped: ``models.generate_content`` and ``models.generate_content_stream``, sync
(``client.models``) and async (``client.aio.models``). ``chats`` sessions call these
same methods, so they are covered too.

``generate_content_stream`` is a generator function: calling it sends nothing, the
request goes out on the first ``next()``. Its result is wrapped in a
:class:`~otel_llmcost.streams.GeneratorProxy`, which makes the call current around
each step (so the request hooks below see it) and ends the span when the generator
is exhausted, fails, is closed or is abandoned. The async variant is a coroutine
that returns an async generator: awaited by the async wrapper, then proxied.

Usage: ``usage_metadata``: ``prompt_token_count`` INCLUDES
``cached_content_token_count``; ``thoughts_token_count`` is billed as output (see
``Usage.from_gemini``). In a stream each chunk's usage is the running total (the SDK
already adds up the hops of automatic continuation), so the last one wins.

No rate-limit headers of the OpenAI/Anthropic kind; quota errors are HTTP 429
``RESOURCE_EXHAUSTED`` (``google.genai.errors.ClientError``, ``code == 429``), read
from the error when the call fails. With ``HttpOptions(retry_options=...)`` the SDK
retries through tenacity; the ``_request_once`` hooks count those attempts.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Callable
from typing import Any

from .. import semconv
from ..calls import CURRENT_CALL
from ..streams import AsyncGeneratorProxy, GeneratorProxy
from ..usage import Usage, field
from .base import Api, Hook, Provider, append_finish_reason, describe_base_url, set_max_tokens

logger = logging.getLogger(__name__)

_MODELS = "google.genai.models"
_API_CLIENT = "google.genai._api_client"
_GENERATE = "generate"
_STREAM = "stream"
_OPERATION = semconv.OPERATION_GENERATE_CONTENT
GEMINI = "gcp.gemini"
VERTEX = "gcp.vertex_ai"
PRICING_PROVIDER = "google"

# (call, status, headers) of an attempt that failed in this context: counted as a
# retry (and a throttle, for 429) only when the SDK does send another attempt, so a
# final failure is read once, from the exception, by LLMCall.fail.
_FAILED_ATTEMPT: contextvars.ContextVar[tuple[Any, int | None, Any] | None] = contextvars.ContextVar(
    "otel_llmcost_genai_failed_attempt", default=None
)


class GoogleGenAIProvider(Provider):
    name = GEMINI
    package = "google-genai"
    apis = (
        Api(_MODELS, "Models.generate_content", _OPERATION, False, _GENERATE),
        Api(_MODELS, "Models.generate_content_stream", _OPERATION, False, _STREAM),
        Api(_MODELS, "AsyncModels.generate_content", _OPERATION, True, _GENERATE),
        Api(_MODELS, "AsyncModels.generate_content_stream", _OPERATION, True, _STREAM),
    )

    def __init__(self) -> None:
        self.hooks = (
            Hook(_API_CLIENT, "BaseApiClient._request_once", _request_once_hook),
            Hook(_API_CLIENT, "BaseApiClient._async_request_once", _async_request_once_hook),
            # Automatic function calling (and automatic continuation) send one request per
            # round and return the last response, whose usage covers only the last round.
            # _generate_content sends exactly one request in every SDK version: sum them.
            Hook(_MODELS, "Models._generate_content", _hop_hook),
            Hook(_MODELS, "AsyncModels._generate_content", _async_hop_hook),
        )

    # --- request ------------------------------------------------------------------

    def read_request(self, call: Any, api: Api, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        client = getattr(instance, "_api_client", None)
        provider_name = VERTEX if getattr(client, "vertexai", False) is True else GEMINI
        call.provider_name = provider_name
        call.pricing_provider = PRICING_PROVIDER
        model = normalize_model(kwargs.get("model"))
        call.model = model
        call.stream = api.kind == _STREAM
        attrs: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: api.operation,
            semconv.GEN_AI_PROVIDER_NAME: provider_name,
            semconv.GEN_AI_REQUEST_STREAM: call.stream,
        }
        if model:
            attrs[semconv.GEN_AI_REQUEST_MODEL] = model
        config = kwargs.get("config")
        set_max_tokens(attrs, field(config, "max_output_tokens"))
        for name, attribute in (
            ("temperature", semconv.GEN_AI_REQUEST_TEMPERATURE),
            ("top_p", semconv.GEN_AI_REQUEST_TOP_P),
        ):
            value = field(config, name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attrs[attribute] = float(value)
        base_url = _base_url(client)
        if base_url:
            _name, host, port = describe_base_url(base_url, provider_name)
            if host:
                call.server_address = host
                attrs[semconv.SERVER_ADDRESS] = host
                if port:
                    attrs[semconv.SERVER_PORT] = port
        if call.telemetry.capture_content:
            call.output_parts = []
        return attrs

    def request_messages(self, kwargs: dict[str, Any]) -> Any:
        contents = kwargs.get("contents")
        if contents is None:
            return kwargs.get("messages")
        if not isinstance(contents, (list, tuple)):
            contents = [contents]
        return [_plain(item) for item in contents]

    def prompt_hashes(self, kwargs: dict[str, Any]) -> tuple[str | None, str | None]:
        config = kwargs.get("config")
        return super().prompt_hashes(
            {
                "model": normalize_model(kwargs.get("model")),
                "system": _plain(field(config, "system_instruction")),
                "tools": _plain(field(config, "tools")),
                "temperature": field(config, "temperature"),
                "contents": kwargs.get("contents"),
            }
        )

    # --- response -----------------------------------------------------------------

    def read_response(self, call: Any, response: Any) -> None:
        usage = Usage.from_gemini(field(response, "usage_metadata"))
        if call.hops > 1 and call.hop_usage is not None:
            usage = call.hop_usage
        if usage is not None:
            call.usage = usage
        model = field(response, "model_version")
        if isinstance(model, str) and model:
            call.response_model = normalize_model(model)
        response_id = field(response, "response_id")
        if isinstance(response_id, str) and response_id:
            call.response_id = response_id
        candidates = field(response, "candidates")
        if not isinstance(candidates, list):
            return
        for candidate in candidates:
            reason = field(candidate, "finish_reason")
            if reason is not None:
                append_finish_reason(call, _reason_text(reason))
            if call.output_parts is not None:
                parts = field(field(candidate, "content"), "parts")
                if isinstance(parts, list):
                    for part in parts:
                        text = field(part, "text")
                        if isinstance(text, str) and not field(part, "thought"):
                            call.output_parts.append(text)

    def read_chunk(self, call: Any, chunk: Any) -> None:
        # Every chunk is a GenerateContentResponse; usage on a later chunk is a running
        # total that replaces the earlier one.
        self.read_response(call, chunk)

    # --- result classification ------------------------------------------------------

    def wrap_other(self, call: Any, result: Any) -> Any:
        if inspect.isgenerator(result):
            return GeneratorProxy(result, call)
        if inspect.isasyncgen(result):
            return AsyncGeneratorProxy(result, call)
        if call.stream and hasattr(result, "__anext__"):
            return AsyncGeneratorProxy(result, call)
        if call.stream and hasattr(result, "__next__"):
            return GeneratorProxy(result, call)
        return None


def normalize_model(model: Any) -> str:
    """'models/gemini-2.5-flash', 'publishers/google/models/x', 'google/x', full Vertex resource -> bare id."""
    if not isinstance(model, str):
        return ""
    if "models/" in model and not model.startswith("tunedModels/"):
        return model.rsplit("models/", 1)[1]
    if model.startswith("google/"):
        return model[len("google/") :]
    return model


def _base_url(client: Any) -> str | None:
    options = getattr(client, "_http_options", None)
    url = field(options, "base_url")
    return url if isinstance(url, str) else None


def _reason_text(reason: Any) -> str | None:
    value = getattr(reason, "value", reason)
    return value.lower() if isinstance(value, str) and value else None


def _plain(value: Any) -> Any:
    """Pydantic SDK objects as JSON-able dicts (for hashes and content capture)."""
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        try:
            return dump(exclude_none=True, mode="json")
        except Exception:
            return repr(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# --- request hooks: SDK retries (HttpOptions.retry_options) and their 429s -------------


def _attempt_starts() -> Any:
    call = CURRENT_CALL.get()
    if call is None:
        return None
    failed = _FAILED_ATTEMPT.get()
    if failed is not None:
        _FAILED_ATTEMPT.set(None)
        if failed[0] is call:  # the SDK is retrying the attempt that failed
            call.on_retry(call.retries + 1)
            call.on_headers(failed[2], failed[1])
    return call


def _attempt_failed(call: Any, error: BaseException) -> None:
    code = getattr(error, "code", None)
    response = getattr(error, "response", None)
    _FAILED_ATTEMPT.set((call, code if type(code) is int else None, getattr(response, "headers", None)))


def _count_hop(response: Any) -> None:
    call = CURRENT_CALL.get()
    if call is None:
        return
    usage = Usage.from_gemini(field(response, "usage_metadata"))
    if usage is not None:
        call.hop_usage = usage if call.hop_usage is None else call.hop_usage.plus(usage)
        call.hops += 1


def _hop_hook(_telemetry: Any) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        response = wrapped(*args, **kwargs)
        try:
            _count_hop(response)
        except Exception:
            logger.debug("otel-llmcost: unreadable generate_content hop", exc_info=True)
        return response

    return wrapper


def _async_hop_hook(_telemetry: Any) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        response = await wrapped(*args, **kwargs)
        try:
            _count_hop(response)
        except Exception:
            logger.debug("otel-llmcost: unreadable generate_content hop", exc_info=True)
        return response

    return wrapper


def _request_once_hook(_telemetry: Any) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            call = _attempt_starts()
        except Exception:
            call = None
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            return wrapped(*args, **kwargs)
        except Exception as error:
            try:
                _attempt_failed(call, error)
            except Exception:
                logger.debug("otel-llmcost: could not read a failed attempt", exc_info=True)
            raise

    return wrapper


def _async_request_once_hook(_telemetry: Any) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            call = _attempt_starts()
        except Exception:
            call = None
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            return await wrapped(*args, **kwargs)
        except Exception as error:
            try:
                _attempt_failed(call, error)
            except Exception:
                logger.debug("otel-llmcost: could not read a failed attempt", exc_info=True)
            raise

    return wrapper
