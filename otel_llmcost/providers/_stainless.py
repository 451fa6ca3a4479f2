"""What the openai and anthropic SDKs share: one generated base client.

Rate-limit headers and SDK retries never reach the parsed response object. Every
attempt is built by ``BaseClient._build_request(options, retries_taken=N)``; a
failed attempt that will be retried passes through ``BaseClient._should_retry``;
the final response passes through ``{Sync,Async}APIClient._process_response``.
The hooks below read (never alter) what passes; outside an instrumented call they
cost the instrumentation one contextvar read.

Both SDKs name their stream and raw-response classes alike; a provider lists where
they live and they are looked up when first needed, so that instrumenting imports no
SDK the application does not use.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from .base import Api, Attempt, Hook, Provider, Request, ResultKind
from .fields import as_float
from .hosts import LOCAL_PROVIDERS, describe_base_url, url_string


def _retries_before(args: tuple[Any, ...], kwargs: dict[str, Any], _result: Any) -> Attempt | None:
    retries = kwargs.get("retries_taken")
    return Attempt(retries_taken=retries) if type(retries) is int and retries > 0 else None


def _status_and_headers(response: Any) -> tuple[int | None, Any]:
    status = getattr(response, "status_code", None)
    return (status if type(status) is int else None), getattr(response, "headers", None)


def _retried_after(args: tuple[Any, ...], kwargs: dict[str, Any], will_retry: Any) -> Attempt | None:
    # Only attempts that are retried are reported here; the final failure is read from the
    # exception, so nothing is counted twice.
    if not will_retry:
        return None
    status, headers = _status_and_headers(args[0] if args else kwargs.get("response"))
    return Attempt(status=status, headers=headers)


def _final_before(args: tuple[Any, ...], kwargs: dict[str, Any], _result: Any) -> Attempt:
    status, headers = _status_and_headers(kwargs.get("response"))
    retries = kwargs.get("retries_taken")
    return Attempt(status=status, headers=headers, retries_taken=retries if type(retries) is int else None)


def base_client_hooks(package: str) -> tuple[Hook, ...]:
    module = f"{package}._base_client"
    return (
        Hook(module, "BaseClient._build_request", False, before=_retries_before),
        Hook(module, "BaseClient._should_retry", False, after=_retried_after),
        Hook(module, "SyncAPIClient._process_response", False, before=_final_before),
        Hook(module, "AsyncAPIClient._process_response", True, before=_final_before),
    )


def _resolve(names: tuple[str, ...]) -> tuple[type, ...]:
    """Classes named ``"module:Class"`` that exist in the installed SDK version."""
    found = []
    for name in names:
        module_name, _, class_name = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name, None)
        except ImportError:
            continue
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


class StainlessProvider(Provider):
    """Result classification and request basics for the SDKs generated from this base client."""

    # "module:Class" names, resolved on first use (see the module docstring).
    raw_classes: tuple[str, ...] = ()
    stream_classes: tuple[str, ...] = ()
    async_stream_classes: tuple[str, ...] = ()
    manager_classes: tuple[str, ...] = ()
    async_manager_classes: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._classes: tuple[tuple[tuple[type, ...], ResultKind], ...] | None = None

    def _classification(self) -> tuple[tuple[tuple[type, ...], ResultKind], ...]:
        classes = self._classes
        if classes is None:
            classes = self._classes = tuple(
                (resolved, kind)
                for names, kind in (
                    (self.raw_classes, ResultKind.RAW),
                    (self.async_stream_classes, ResultKind.ASYNC_STREAM),
                    (self.stream_classes, ResultKind.STREAM),
                    (self.manager_classes, ResultKind.STREAM_MANAGER),
                    (self.async_manager_classes, ResultKind.ASYNC_STREAM_MANAGER),
                )
                if (resolved := _resolve(names))
            )
        return classes

    def classify(self, result: Any, request: Request) -> ResultKind:
        for classes, kind in self._classification():
            if isinstance(result, classes):
                return kind
        return ResultKind.PLAIN

    def raw_body(self, raw: Any) -> Any:
        http = getattr(raw, "http_response", None)
        if http is None or not getattr(http, "is_stream_consumed", False):
            return None
        try:
            return json.loads(http.content)
        except Exception:
            return None

    def base_request(self, api: Api, instance: Any, kwargs: dict[str, Any], prompt: Any) -> Request:
        """The request fields both SDKs share: model, sampling, stream, and the host."""
        model = kwargs.get("model")
        request = Request(
            operation=api.operation,
            provider_name=self.name,
            model=model if isinstance(model, str) else "",
            prompt=prompt,
            stream=kwargs.get("stream") is True,
            temperature=as_float(kwargs.get("temperature")),
            top_p=as_float(kwargs.get("top_p")),
        )
        base_url = getattr(getattr(instance, "_client", None), "base_url", None)
        if base_url is not None:
            url = url_string(base_url)
            name, host, port = describe_base_url(url, self.name)
            request.api_url = url
            request.provider_name = name
            request.server_address = host
            request.server_port = port if host else None
            if name in LOCAL_PROVIDERS:  # models on your own hardware: unpriced unless overridden
                request.pricing_provider = name
        return request
