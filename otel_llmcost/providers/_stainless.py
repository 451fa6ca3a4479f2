"""Hooks into the generated base client that openai and anthropic share.

Rate-limit headers and SDK retries never reach the parsed response object. Every
attempt is built by ``BaseClient._build_request(options, retries_taken=N)``; a
failed attempt that will be retried passes through ``BaseClient._should_retry``;
the final response passes through ``{Sync,Async}APIClient._process_response``.
These hooks read (never alter) what passes and report it to the call running
in this context; outside an instrumented call they cost one contextvar read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..calls import CURRENT_CALL
from .base import Hook, Provider

logger = logging.getLogger(__name__)


def _build_request_hook(_telemetry: Any) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = CURRENT_CALL.get()
        if call is not None:
            retries = kwargs.get("retries_taken")
            if retries:
                call.on_retry(retries)
        return wrapped(*args, **kwargs)

    return wrapper


def _should_retry_hook(_telemetry: Any) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        will_retry = wrapped(*args, **kwargs)
        call = CURRENT_CALL.get()
        # Only attempts that are retried are reported here; the final failure is read
        # from the exception, so nothing is counted twice.
        if call is not None and will_retry:
            response = args[0] if args else kwargs.get("response")
            status = getattr(response, "status_code", None)
            call.on_headers(getattr(response, "headers", None), status if type(status) is int else None)
        return will_retry

    return wrapper


def _report_final(kwargs: dict[str, Any]) -> None:
    call = CURRENT_CALL.get()
    if call is None:
        return
    response = kwargs.get("response")
    status = getattr(response, "status_code", None)
    call.on_headers(getattr(response, "headers", None), status if type(status) is int else None)
    retries = kwargs.get("retries_taken")
    if retries:
        call.on_retry(retries)


def _process_response_hook(_telemetry: Any) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            _report_final(kwargs)
        except Exception:
            logger.debug("otel-llmcost: could not read final response", exc_info=True)
        return wrapped(*args, **kwargs)

    return wrapper


def _async_process_response_hook(_telemetry: Any) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            _report_final(kwargs)
        except Exception:
            logger.debug("otel-llmcost: could not read final response", exc_info=True)
        return await wrapped(*args, **kwargs)

    return wrapper


def base_client_hooks(package: str) -> tuple[Hook, ...]:
    module = f"{package}._base_client"
    return (
        Hook(module, "BaseClient._build_request", _build_request_hook),
        Hook(module, "BaseClient._should_retry", _should_retry_hook),
        Hook(module, "SyncAPIClient._process_response", _process_response_hook),
        Hook(module, "AsyncAPIClient._process_response", _async_process_response_hook),
    )


class StainlessProvider(Provider):
    """Result classification for the SDKs generated from this base client: each sets
    its own raw-response, stream and async-stream classes in ``__init__``."""

    _raw_cls: tuple[type, ...] = ()
    _stream_cls: type | tuple[type, ...] = ()
    _async_stream_cls: type | tuple[type, ...] = ()

    def is_raw_response(self, result: Any) -> bool:
        return isinstance(result, self._raw_cls)

    def is_sync_stream(self, result: Any) -> bool:
        return isinstance(result, self._stream_cls)

    def is_async_stream(self, result: Any) -> bool:
        return isinstance(result, self._async_stream_cls)
