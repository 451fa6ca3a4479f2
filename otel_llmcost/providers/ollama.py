"""Ollama, through the ``ollama`` Python library (its native API: ``/api/chat``,
``/api/generate``, ``/api/embed``, ``/api/embeddings``).

Every method of ``Client`` and ``AsyncClient`` (and the module-level ``ollama.chat`` and
friends, bound to a default ``Client``) sends through ``_request(cls, method, path, json=...,
stream=...)``. That one method is patched, and :meth:`OllamaProvider.select` keeps the four
model calls by their path (any other call, ``pull``, ``list``, ``show``, passes untouched).
So the model may be given positionally (``ollama.chat("llama3.2", messages)``), and the
request read is the JSON body the library is about to send. ``stream=True`` returns a
generator (async: an async generator) that sends the request on its first step.

Usage is in the response, or in a stream's last chunk (``done: true``):
``prompt_eval_count`` is the prompt tokens Ollama evaluated and ``eval_count`` the tokens
it generated (thinking included; no separate reasoning count). A prompt prefix that Ollama
reused from its KV cache may be left out of ``prompt_eval_count``, and no cached count is
reported, so none is claimed. ``/api/embed`` reports ``prompt_eval_count``; the older
``/api/embeddings`` reports nothing, and its input is counted locally.

Prices: models run on the user's own hardware, so a call is priced under the provider id
``ollama``, which genai-prices does not list: unpriced (``llmcost.unpriced``, never $0)
unless the price override file prices the model. The same holds for Ollama's
OpenAI-compatible endpoint (``http://localhost:11434/v1``) reached through the openai SDK
(:mod:`.hosts`). There are no SDK retries and no rate-limit headers; an error is a
``ResponseError`` with the HTTP status (``-1`` for an error reported mid-stream).
"""

from __future__ import annotations

from typing import Any

from .. import semconv
from ..pricing.usage import Usage
from .base import Api, ErrorReport, PromptView, Provider, Request, ResponseRecord, ResultKind, Selected
from .fields import as_float, as_int, field, fields_of, to_json
from .hosts import describe_base_url, url_string

NAME = "ollama"  # gen_ai.provider.name, and the (unlisted) pricing provider id: unpriced unless overridden
_CHAT = "chat"
_GENERATE = "generate"
_EMBED = "embed"
_EMBEDDINGS = "embeddings"  # the older /api/embeddings: one prompt, no token count

_MODULE = "ollama._client"
# The patched methods; the kind of each model call is chosen by its path.
_SYNC = Api(_MODULE, "Client._request", semconv.OPERATION_CHAT, False, "dispatch")
_ASYNC = Api(_MODULE, "AsyncClient._request", semconv.OPERATION_CHAT, True, "dispatch")
_PATHS: dict[str, tuple[str, str]] = {
    "/api/chat": (semconv.OPERATION_CHAT, _CHAT),
    "/api/generate": (semconv.OPERATION_TEXT_COMPLETION, _GENERATE),
    "/api/embed": (semconv.OPERATION_EMBEDDINGS, _EMBED),
    "/api/embeddings": (semconv.OPERATION_EMBEDDINGS, _EMBEDDINGS),
}
_SELECTED: dict[tuple[bool, str], Api] = {
    (is_async, path): Api(_MODULE, (_ASYNC if is_async else _SYNC).attribute, operation, is_async, kind)
    for is_async in (False, True)
    for path, (operation, kind) in _PATHS.items()
}


def parse_usage(response: Any) -> Usage | None:
    """``prompt_eval_count`` (input) and ``eval_count`` (output, thinking included); None when
    the response reports neither (a stream chunk before the last, ``/api/embeddings``)."""
    fields = fields_of(response)
    prompt = fields.get("prompt_eval_count")
    generated = fields.get("eval_count")
    if prompt is None and generated is None:
        return None
    return Usage(input_tokens=as_int(prompt), output_tokens=as_int(generated))


def _path_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``_request(cls, method, path, ...)``: the path, positional as the library passes it."""
    if len(args) > 2:
        return args[2]
    return kwargs.get("url")


class OllamaProvider(Provider):
    name = NAME
    apis = (_SYNC, _ASYNC)
    dispatches = True

    # --- request ------------------------------------------------------------------

    def select(self, api: Api, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Selected | None:
        path = _path_of(args, kwargs)
        selected = _SELECTED.get((api.is_async, path)) if isinstance(path, str) else None
        body = kwargs.get("json")
        if selected is None or not isinstance(body, dict):
            return None
        return selected, body

    def read_request(self, api: Api, instance: Any, kwargs: dict[str, Any], *, inject_include_usage: bool) -> Request:
        body = kwargs  # the JSON body about to be sent
        options = body.get("options")
        options = options if isinstance(options, dict) else {}
        if api.kind == _CHAT:
            messages = body.get("messages")
            prompt = PromptView(
                tools=body.get("tools") or None,
                messages=messages if isinstance(messages, list) else [],
                temperature=options.get("temperature"),
            )
        elif api.kind == _GENERATE:
            text = body.get("prompt")
            prompt = PromptView(
                system=body.get("system"),
                messages=[{"role": "user", "content": text}] if isinstance(text, str) and text else [],
                temperature=options.get("temperature"),
            )
        else:  # the whole input is one message, as for the other providers' embeddings
            prompt = PromptView(messages=[body.get("input", body.get("prompt"))])
        model = body.get("model")
        max_tokens = options.get("num_predict")
        request = Request(
            operation=api.operation,
            provider_name=self.name,
            model=model if isinstance(model, str) else "",
            prompt=prompt,
            stream=body.get("stream") is True,
            max_tokens=max_tokens if type(max_tokens) is int and max_tokens > 0 else None,
            temperature=as_float(options.get("temperature")),
            top_p=as_float(options.get("top_p")),
            pricing_provider=NAME,
        )
        base_url = getattr(getattr(instance, "_client", None), "base_url", None)
        if base_url is not None:
            url = url_string(base_url)
            _name, host, port = describe_base_url(url, self.name)
            request.api_url = url
            request.server_address = host
            request.server_port = port if host else None
        if request.stream or api.kind == _EMBEDDINGS:
            # Usage arrives last (or never, for /api/embeddings): keep what is generated, to count it then.
            request.collect_output = request.estimate_usage = True
        return request

    def classify(self, result: Any, request: Request) -> ResultKind:
        if request.stream:
            if hasattr(result, "__anext__"):
                return ResultKind.ASYNC_GENERATOR
            if hasattr(result, "__next__"):
                return ResultKind.GENERATOR
        return ResultKind.PLAIN

    def read_error(self, error: BaseException) -> ErrorReport:
        """``ResponseError(error, status_code)``: -1 when the error came inside a stream."""
        status = getattr(error, "status_code", None)
        if type(status) is int and 100 <= status < 600:
            return ErrorReport(status, None)
        if type(error).__name__ == "ResponseError":
            return ErrorReport(None, None)
        return super().read_error(error)  # httpx's own errors

    # --- response -----------------------------------------------------------------

    def read_response(self, record: ResponseRecord, response: Any) -> None:
        self.read_chunk(record, response)

    def read_chunk(self, record: ResponseRecord, chunk: Any) -> None:
        fields = fields_of(chunk)
        usage = parse_usage(fields)
        if usage is not None:
            record.usage = usage
        model = fields.get("model")
        if isinstance(model, str) and model:
            record.model = model
        record.add_finish_reason(fields.get("done_reason"))
        if record.output_parts is not None or record.generated_parts is not None:
            message = fields.get("message")
            if message is not None:  # /api/chat
                record.add_output(field(message, "content"))
                record.add_reasoning(field(message, "thinking"))
                for tool_call in field(message, "tool_calls") or ():
                    function = field(tool_call, "function")
                    record.add_generated(field(function, "name"))
                    arguments = field(function, "arguments")
                    if arguments:
                        record.add_generated(
                            arguments if isinstance(arguments, str) else to_json(arguments, fallback="")
                        )
            else:  # /api/generate
                record.add_output(fields.get("response"))
                record.add_reasoning(fields.get("thinking"))
