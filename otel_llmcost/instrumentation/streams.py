"""Proxies that end a call's span exactly once, however the caller treats the result.

A stream proxy sees every chunk (usage, model, finish reasons arrive there) and
ends the span when the stream is exhausted, raises, is closed, leaves a ``with``
block, or is garbage-collected unfinished (abandoned). ``LLMCall.finish`` is
idempotent, so overlapping endings (exhausted *and* closed) are harmless. Which proxy
a result gets is the provider's answer to :meth:`Provider.classify`; SDK specifics
(where a stream helper keeps its event iterator) stay in the provider.

The proxies subclass ``wrapt.ObjectProxy`` and define the iterator and
context-manager methods themselves: wrapt 2 stopped proxying ``__iter__`` by
default and never proxied ``__next__``/``__anext__``, so relying on either
version's defaults would break on the other.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import wrapt

from ..providers.base import ResultKind
from .call import LLMCall

logger = logging.getLogger(__name__)


class CallProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """What every proxy of a call shares: the call it ends, and ending it when abandoned."""

    def __init__(self, wrapped: Any, call: LLMCall) -> None:
        super().__init__(wrapped)
        self._self_call = call

    def _end(self, exc: BaseException | None) -> None:
        if exc is not None and not isinstance(exc, GeneratorExit):
            self._self_call.fail(exc)
        else:
            self._self_call.finish()

    def __del__(self) -> None:
        # Abandoned without being exhausted or closed: end with what we have.
        call = getattr(self, "_self_call", None)
        if call is not None and not call.ended:
            call.finish()


class SyncStreamProxy(CallProxy):
    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            self._self_call.finish()
            raise
        except BaseException as error:
            self._self_call.fail(error)
            raise
        self._self_call.on_chunk(chunk)
        return chunk

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._end(exc)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.finish()


class EventStreamProxy(SyncStreamProxy):
    """An iterable whose ``__iter__`` makes the iterator (botocore's EventStream, a generator
    method): the proxy iterates that one iterator, and ends the call as its twin does."""

    def __init__(self, wrapped: Any, call: LLMCall) -> None:
        super().__init__(wrapped, call)
        self._self_events: Any = None

    def __iter__(self) -> EventStreamProxy:
        if self._self_events is None:
            self._self_events = iter(self.__wrapped__)
        return self

    def __next__(self) -> Any:
        events = self._self_events
        if events is None:
            events = self._self_events = iter(self.__wrapped__)
        try:
            chunk = next(events)
        except StopIteration:
            self._self_call.finish()
            raise
        except BaseException as error:
            self._self_call.fail(error)
            raise
        self._self_call.on_chunk(chunk)
        return chunk


def observe_field_stream(result: Any, call: LLMCall) -> Any:
    """A result that holds its event stream in a field (:attr:`ResultKind.FIELD_STREAM`): read
    what the result itself says, then let the provider swap the field for an observed stream.
    With no stream found the call ends now."""
    provider = call.provider
    observed = False

    def wrap(events: Any) -> Any:
        nonlocal observed
        observed = True
        return events if isinstance(events, CallProxy) else EventStreamProxy(events, call)

    try:
        provider.read_response(call.record, result)
        provider.observe_stream(result, wrap)
    except Exception:
        logger.debug("otel-llmcost: could not observe the stream", exc_info=True)
    if not observed:
        call.finish()
    return result


class _AsyncIterating(CallProxy):
    """``async for`` and ``async with`` over a stream; how it closes is the subclass's."""

    def __aiter__(self) -> _AsyncIterating:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_call.finish()
            raise
        except BaseException as error:
            self._self_call.fail(error)
            raise
        self._self_call.on_chunk(chunk)
        return chunk

    async def __aenter__(self) -> _AsyncIterating:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._end(exc)


class AsyncStreamProxy(_AsyncIterating):
    """An SDK's async stream (openai's AsyncStream): ``await close()``."""

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_call.finish()


class AsyncIteratorProxy(_AsyncIterating):
    """An async iterator closed by ``await aclose()`` that also has a plain ``close()``
    (LiteLLM's CustomStreamWrapper): both are kept as they are, and both end the call."""

    async def aclose(self) -> None:
        try:
            await self.__wrapped__.aclose()
        finally:
            self._self_call.finish()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.finish()


class GeneratorProxy(CallProxy):
    """A generator an SDK method returned (google-genai ``generate_content_stream``).

    Such a generator does its work lazily: the request is sent on the first
    ``next()``. So the call is made current around each step, as the wrappers do
    around a plain call, for the hooks and for HTTP client spans to nest under it.
    The span ends when the generator is exhausted, raises, is closed, or is
    garbage-collected unfinished.
    """

    def __iter__(self) -> GeneratorProxy:
        return self

    def __next__(self) -> Any:
        call = self._self_call
        token = call.attach()
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            call.detach(token)
            call.finish()
            raise
        except BaseException as error:
            call.detach(token)
            call.fail(error)
            raise
        call.detach(token)
        call.on_chunk(chunk)
        return chunk

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.finish()


class AsyncGeneratorProxy(CallProxy):
    """The async twin of :class:`GeneratorProxy` (``aclose()`` instead of ``close()``)."""

    def __aiter__(self) -> AsyncGeneratorProxy:
        return self

    async def __anext__(self) -> Any:
        call = self._self_call
        token = call.attach()
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            call.detach(token)
            call.finish()
            raise
        except BaseException as error:
            call.detach(token)
            call.fail(error)
            raise
        call.detach(token)
        call.on_chunk(chunk)
        return chunk

    async def aclose(self) -> None:
        try:
            await self.__wrapped__.aclose()
        finally:
            self._self_call.finish()


class RawResponseProxy(CallProxy):
    """``with_raw_response`` / ``with_streaming_response`` results: the body is read
    (or the stream produced) only when the caller calls ``parse()``; we read usage
    there, or end the span from headers alone if the caller never parses."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        call = self._self_call
        if call.ended:
            return parsed
        if inspect.isawaitable(parsed):  # AsyncAPIResponse.parse
            return _complete_when_awaited(parsed, call)
        try:
            return call.telemetry.complete(call, parsed)
        except Exception:
            logger.debug("otel-llmcost: could not read parsed raw response", exc_info=True)
            call.finish()
            return parsed

    def close(self) -> Any:
        # with_streaming_response's context manager closes the response on exit.
        try:
            return self.__wrapped__.close()
        finally:
            self._self_call.finish()


async def _complete_when_awaited(parsed: Any, call: LLMCall) -> Any:
    result = await parsed
    try:
        return call.telemetry.complete(call, result)
    except Exception:
        call.finish()
        return result


def _read_snapshot(call: LLMCall, entered: Any) -> None:
    """If no event reached us (a helper we could not see into), read what it accumulated."""
    if call.ended or call.record.usage is not None or entered is None:
        return
    try:
        snapshot = call.provider.stream_snapshot(entered)
        if snapshot is not None:
            call.provider.read_response(call.record, snapshot)
    except Exception:
        logger.debug("otel-llmcost: could not read the stream helper's snapshot", exc_info=True)


def _wrapper_for(call: LLMCall, proxy: type[CallProxy]) -> Callable[[Any], Any]:
    def wrap(events: Any) -> Any:
        return events if isinstance(events, CallProxy) else proxy(events, call)

    return wrap


class StreamManagerProxy(CallProxy):
    """A context manager that sends the request on ``__enter__`` (anthropic's
    ``messages.stream()``): one span from the call to the end of the ``with`` block or stream."""

    def __init__(self, wrapped: Any, call: LLMCall) -> None:
        super().__init__(wrapped, call)
        self._self_entered: Any = None

    def __enter__(self) -> Any:
        call = self._self_call
        token = call.attach()
        try:
            entered = self.__wrapped__.__enter__()
        except BaseException as error:
            call.detach(token)
            call.fail(error)
            raise
        call.detach(token)
        self._self_entered = entered
        try:
            call.provider.observe_stream(entered, _wrapper_for(call, SyncStreamProxy))
        except Exception:
            logger.debug("otel-llmcost: could not observe the stream", exc_info=True)
        return entered

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        call = self._self_call
        # Before the SDK closes the stream (which ends the span as a success through our stream proxy).
        _read_snapshot(call, self._self_entered)
        if exc is not None and not isinstance(exc, GeneratorExit):
            call.fail(exc)
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            call.finish()


class AsyncStreamManagerProxy(CallProxy):
    """The async twin of :class:`StreamManagerProxy`: the request is sent in ``__aenter__``."""

    def __init__(self, wrapped: Any, call: LLMCall) -> None:
        super().__init__(wrapped, call)
        self._self_entered: Any = None

    async def __aenter__(self) -> Any:
        call = self._self_call
        token = call.attach()
        try:
            entered = await self.__wrapped__.__aenter__()
        except BaseException as error:
            call.detach(token)
            call.fail(error)
            raise
        call.detach(token)
        self._self_entered = entered
        try:
            call.provider.observe_stream(entered, _wrapper_for(call, AsyncStreamProxy))
        except Exception:
            logger.debug("otel-llmcost: could not observe the stream", exc_info=True)
        return entered

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        call = self._self_call
        _read_snapshot(call, self._self_entered)
        if exc is not None and not isinstance(exc, GeneratorExit):
            call.fail(exc)
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            call.finish()


# The proxy each kind of result gets (PLAIN and RAW are read at once when they can be).
PROXIES: dict[ResultKind, Callable[[Any, LLMCall], Any]] = {
    ResultKind.RAW: RawResponseProxy,
    ResultKind.STREAM: SyncStreamProxy,
    ResultKind.ASYNC_STREAM: AsyncStreamProxy,
    ResultKind.ASYNC_ITERATOR: AsyncIteratorProxy,
    ResultKind.GENERATOR: GeneratorProxy,
    ResultKind.ASYNC_GENERATOR: AsyncGeneratorProxy,
    ResultKind.STREAM_MANAGER: StreamManagerProxy,
    ResultKind.ASYNC_STREAM_MANAGER: AsyncStreamManagerProxy,
    ResultKind.FIELD_STREAM: observe_field_stream,
}
