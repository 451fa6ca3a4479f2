"""The wrapt wrappers otel-llmcost installs: one around each SDK method that makes a call,
and one around each SDK internal that reports on the call's HTTP attempts.

A call wrapper starts an :class:`~.call.LLMCall`, runs the SDK method with the call
current (so the internal hooks can report into it and HTTP client spans nest under it),
then hands the result to :meth:`Telemetry.complete`. The user's exception is re-raised
unchanged; only :class:`~otel_llmcost.budgets.BudgetExceeded` is raised on purpose.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..budgets import BudgetExceeded
from ..providers.base import Api, Hook, Provider, Selected
from .call import CURRENT_CALL, LLMCall
from .telemetry import Telemetry

logger = logging.getLogger(__name__)

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _start(telemetry: Telemetry, provider: Provider, api: Api, instance: Any, kwargs: dict[str, Any]) -> LLMCall | None:
    try:
        return telemetry.start_call(provider, api, instance, kwargs)
    except BudgetExceeded:
        raise  # ours, on purpose: the budget refused the call before it was sent
    except Exception:
        logger.debug("otel-llmcost: could not start a span for %s", api.attribute, exc_info=True)
        return None


async def _start_async(
    telemetry: Telemetry, provider: Provider, api: Api, instance: Any, kwargs: dict[str, Any]
) -> LLMCall | None:
    try:
        return await telemetry.start_call_async(provider, api, instance, kwargs)
    except BudgetExceeded:
        raise
    except Exception:
        logger.debug("otel-llmcost: could not start a span for %s", api.attribute, exc_info=True)
        return None


def call_wrapper(telemetry: Telemetry, provider: Provider, api: Api) -> Wrapper:
    """The wrapt wrapper of one SDK method that makes a call (sync or async, as ``api`` says)."""
    if api.is_async:
        select = provider.select if provider.dispatches else None

        async def async_wrapper(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            call_api, params = api, kwargs
            if select is not None:  # a method that makes more than LLM calls (ollama's AsyncClient._request)
                selected = _select(provider, select, api, instance, args, kwargs)
                if selected is None:
                    return await wrapped(*args, **kwargs)
                call_api, params = selected
            call = await _start_async(telemetry, provider, call_api, instance, params)
            if call is None:
                return await wrapped(*args, **kwargs)
            token = call.attach()
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as error:
                call.detach(token)
                call.fail(error)
                raise
            call.detach(token)
            return telemetry.complete(call, result)

        return async_wrapper

    if provider.dispatches:
        return _dispatch_wrapper(telemetry, provider, api)

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _start(telemetry, provider, api, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        return _run(telemetry, call, wrapped, args, kwargs)

    return wrapper


def _run(
    telemetry: Telemetry, call: LLMCall, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    token = call.attach()
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        call.detach(token)
        call.fail(error)
        raise
    call.detach(token)
    return telemetry.complete(call, result)


def _select(
    provider: Provider,
    select: Callable[..., Selected | None],
    api: Api,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Selected | None:
    """The provider's choice of the call to instrument, or None (also when choosing failed)."""
    try:
        return select(api, instance, args, kwargs)
    except Exception:
        logger.debug("otel-llmcost: could not select a %s call", provider.name, exc_info=True)
        return None


def _dispatch_wrapper(telemetry: Telemetry, provider: Provider, api: Api) -> Wrapper:
    """The wrapper of a method that makes every call of an SDK (botocore's ``_make_api_call``,
    ollama's ``Client._request``): the provider selects the LLM calls; any other call costs one
    lookup and passes untouched. (The async twin is in :func:`call_wrapper`.)"""
    select = provider.select

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        selected = _select(provider, select, api, instance, args, kwargs)
        if selected is None:
            return wrapped(*args, **kwargs)
        call = _start(telemetry, provider, selected[0], instance, selected[1])
        if call is None:
            return wrapped(*args, **kwargs)
        return _run(telemetry, call, wrapped, args, kwargs)

    return wrapper


def hook_wrapper(hook: Hook) -> Wrapper:
    """The wrapt wrapper of an SDK internal: outside an instrumented call it costs one
    contextvar read; inside one it reports what ``hook``'s readers see, never altering it."""
    before, after, on_error = hook.before, hook.after, hook.on_error
    if hook.is_async:

        async def async_wrapper(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            call = CURRENT_CALL.get()
            if call is None:
                return await wrapped(*args, **kwargs)
            if before is not None:
                call.report(before, args, kwargs, None)
            try:
                result = await wrapped(*args, **kwargs)
            except Exception as error:
                if on_error is not None:
                    call.report(on_error, args, kwargs, error)
                raise
            if after is not None:
                call.report(after, args, kwargs, result)
            return result

        return async_wrapper

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = CURRENT_CALL.get()
        if call is None:
            return wrapped(*args, **kwargs)
        if before is not None:
            call.report(before, args, kwargs, None)
        try:
            result = wrapped(*args, **kwargs)
        except Exception as error:
            if on_error is not None:
                call.report(on_error, args, kwargs, error)
            raise
        if after is not None:
            call.report(after, args, kwargs, result)
        return result

    return wrapper
