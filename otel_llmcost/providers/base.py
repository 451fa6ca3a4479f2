"""What a provider module declares, and the typed records it fills.

A provider is the only code that knows an SDK's shapes. It answers, in these types
and nothing else (it never sees the span or the call record):

- which callables to patch (:class:`Api`) and which SDK internals report the HTTP
  attempts of a call (:class:`Hook`);
- what a request says (:meth:`Provider.read_request` -> :class:`Request`, with a
  :class:`PromptView` of the prompt's system, tools and messages);
- what a response, a stream event or a set of headers says
  (:meth:`Provider.read_response`, :meth:`Provider.read_chunk` fill a
  :class:`ResponseRecord`; :meth:`Provider.read_headers` -> :class:`HeaderReport`);
- what kind of object an SDK method returned (:meth:`Provider.classify`), so the
  instrumentation knows how to see it to its end;
- for batch jobs (:class:`BatchApi`): what a batch object says (:meth:`Provider.read_batch`
  -> :class:`BatchJob`) and what a batch's output file billed
  (:meth:`Provider.read_batch_output` -> :class:`BatchOutput`).

The call lifecycle, spans, pricing and metrics live in ``otel_llmcost.instrumentation``.
Every reader here tolerates any shape: a field of the wrong type is skipped, never an
exception (the instrumentation guards each call anyway).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..pricing.usage import Usage
from .headers import HeaderSpec, parse_retry_after, ratelimit_values, reported_cost_from_headers


@dataclass(frozen=True, slots=True)
class Api:
    """One patched SDK method that makes a call: ``module`` / ``attribute`` as wrapt takes them."""

    module: str
    attribute: str
    operation: str
    is_async: bool
    kind: str = ""  # provider-specific flavour, e.g. "chat" or "responses"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What an SDK-internal hook saw of one HTTP attempt of the current call."""

    retries_taken: int | None = None  # the SDK's count of retries so far
    status: int | None = None
    headers: Any = None
    hop_usage: Usage | None = None  # one billed request of a call that sends several
    failed: bool = False  # this attempt raised; counted as a retry only if another follows
    starting: bool = False  # an attempt is about to be sent


BATCH_CREATE = "create"
BATCH_RETRIEVE = "retrieve"
BATCH_OUTPUT = "output"


@dataclass(frozen=True, slots=True)
class BatchApi:
    """One patched SDK method about batch jobs, which is not an LLM call itself: ``kind`` is
    :data:`BATCH_CREATE` or :data:`BATCH_RETRIEVE` (returns a batch object) or
    :data:`BATCH_OUTPUT` (reads a file, which may be a batch's output)."""

    module: str
    attribute: str
    kind: str
    is_async: bool


@dataclass(frozen=True, slots=True)
class BatchJob:
    """What a batch object says (every field may be missing)."""

    id: str | None = None
    endpoint: str | None = None
    status: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    requests_total: int | None = None
    requests_completed: int | None = None
    requests_failed: int | None = None


@dataclass(slots=True)
class BatchModelUsage:
    """The summed usage of one model's lines in a batch output file."""

    model: str
    usage: Usage
    endpoint: str | None = None
    lines: int = 0  # lines whose request succeeded (billed); failed ones are not counted


@dataclass(frozen=True, slots=True)
class BatchOutput:
    """A batch output file's spend by model; ``usable`` False: the file looked like a batch
    output but a line could not be read, so nothing in it is priced."""

    models: tuple[BatchModelUsage, ...]
    usable: bool = True


# What a dispatching provider selected: the call's Api and its request parameters.
Selected = tuple[Api, dict[str, Any]]

# A hook reader: (args, kwargs, result or error or None) -> what it saw, or None.
HookReader = Callable[[tuple[Any, ...], dict[str, Any], Any], "Attempt | None"]


@dataclass(frozen=True, slots=True)
class Hook:
    """An SDK-internal method that reports on the attempts of the call running in this context.

    ``before`` reads the arguments, ``after`` the result, ``on_error`` the exception; the
    instrumentation wraps the method and hands what they return to the current call. The
    method's own result or exception passes through unchanged.
    """

    module: str
    attribute: str
    is_async: bool
    before: HookReader | None = None
    after: HookReader | None = None
    on_error: HookReader | None = None


class ResultKind(enum.Enum):
    """How a call's result has to be followed to the call's end."""

    PLAIN = "plain"  # read now, the call ends
    RAW = "raw"  # with_raw_response / with_streaming_response: read on parse()
    STREAM = "stream"  # iterator of events
    ASYNC_STREAM = "async_stream"
    # An async iterator closed by ``aclose()`` whose ``close()`` is plain (LiteLLM's CustomStreamWrapper).
    ASYNC_ITERATOR = "async_iterator"
    GENERATOR = "generator"  # lazy: the request is sent on the first next()
    ASYNC_GENERATOR = "async_generator"
    STREAM_MANAGER = "stream_manager"  # a context manager that sends on enter
    ASYNC_STREAM_MANAGER = "async_stream_manager"
    # A plain result holding an event stream in one of its fields (botocore's EventStream
    # under converse_stream's ``stream``): the field is swapped for an observed stream.
    FIELD_STREAM = "field_stream"


@dataclass(slots=True)
class PromptView:
    """The prompt of a request in the provider's own shapes, split the same way for all.

    ``system`` is the system prompt given apart from the messages (Anthropic ``system=``,
    the Responses API's ``instructions``, Gemini's ``system_instruction``), None when the
    system prompt is a message (OpenAI chat) or absent; ``messages`` never repeat it.
    ``temperature`` is the value as sent (part of the request hash).
    """

    system: Any = None
    tools: Any = None
    messages: list[Any] = field(default_factory=list)
    temperature: Any = None


@dataclass(slots=True)
class Request:
    """What a provider read from a request, before it is sent."""

    operation: str
    provider_name: str  # gen_ai.provider.name
    model: str
    prompt: PromptView
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    server_address: str | None = None
    server_port: int | None = None
    api_url: str | None = None  # the client's base URL, for price lookup by host
    pricing_provider: str | None = None  # genai-prices provider id, when the host does not say
    attributes: dict[str, Any] | None = None  # provider-specific request attributes (semconv names)
    # The response text is collected (content capture, or a local token count when the
    # stream may end without usage); ``estimate_usage`` says the latter applies: everything
    # the stream generates is kept (text, tool calls, refusals, reasoning), to be counted
    # only if its usage is missing or counts no output (see ``ResponseRecord.output_partial``).
    collect_output: bool = False
    estimate_usage: bool = False
    # The response may report nothing we can price (a dall-e image, speech audio, a text-format
    # transcription): a call that succeeds without a usage is then recorded as unpriced, never as free.
    unpriced_without_usage: bool = False
    # What the request alone bills, for a response that reports no usage (speech: the characters
    # sent, priced per character): the call's usage when it succeeds and its response has none.
    billed_usage: Usage | None = None


@dataclass(slots=True)
class ResponseRecord:
    """What the response and its stream events said; filled by a provider, read at the call's end."""

    usage: Usage | None = None
    model: str | None = None
    id: str | None = None
    finish_reasons: list[str] | None = None
    output_parts: list[str] | None = None  # None: not collected
    # Kept only for a local estimate (``Request.estimate_usage``), never captured as content:
    # the other text the model generated (tool-call names and JSON arguments, refusals, code),
    # and its reasoning text, counted apart because providers may report reasoning alone.
    generated_parts: list[str] | None = None
    reasoning_parts: list[str] | None = None
    # The usage's output count is missing or provisional (Gemini without
    # candidates_token_count; Anthropic before message_delta's total): an estimate may raise it.
    output_partial: bool = False
    price_context: dict[str, str] | None = None  # a price variant the response named (service_tier=flex)
    attributes: dict[str, Any] | None = None  # provider-specific response attributes (semconv names)
    reported_cost: tuple[float, str] | None = None  # (USD, where it was read) billed by the host
    # The request's gen_ai.operation.name, for a provider whose response shapes differ by operation.
    operation: str = ""

    def add_finish_reason(self, reason: Any) -> None:
        if isinstance(reason, str) and reason:
            if self.finish_reasons is None:
                self.finish_reasons = [reason]
            elif reason not in self.finish_reasons:
                self.finish_reasons.append(reason)

    def add_output(self, text: Any) -> None:
        if self.output_parts is not None and isinstance(text, str) and text:
            self.output_parts.append(text)

    def add_generated(self, text: Any) -> None:
        if self.generated_parts is not None and isinstance(text, str) and text:
            self.generated_parts.append(text)

    def add_reasoning(self, text: Any) -> None:
        if self.reasoning_parts is not None and isinstance(text, str) and text:
            self.reasoning_parts.append(text)

    def set_attribute(self, name: str, value: Any) -> None:
        if self.attributes is None:
            self.attributes = {}
        self.attributes[name] = value


@dataclass(frozen=True, slots=True)
class HeaderReport:
    """What the headers of one HTTP response said."""

    ratelimits: dict[str, int | float]  # llmcost.ratelimit.* attribute -> value
    retry_after_s: float | None = None
    reported_cost: tuple[float, str] | None = None


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """The HTTP status and headers an SDK exception carries (either may be missing)."""

    status: int | None
    headers: Any
    throttled: bool = False  # the error says "throttled" without a throttling status (an error event mid-stream)


def _header_getter(headers: Any, get: Callable[[str], Any]) -> Callable[[str], Any]:
    """``headers.get``, or for httpx/httpx2 ``Headers`` the same lookups from one pass over
    their raw bytes: their ``get`` scans every header for each name asked (and raises and
    catches a KeyError for each absent one). As httpx does: the name lowercased and encoded
    with the headers' encoding, repeated headers joined with ", ", the value decoded."""
    cls = type(headers)
    if cls.__name__ != "Headers" or not cls.__module__.startswith("httpx"):
        return get
    try:
        raw = headers.raw
        encoding = headers.encoding
    except Exception:
        return get
    values: dict[bytes, bytes] = {}
    for key, value in raw:
        key = key.lower()
        seen = values.get(key)
        values[key] = value if seen is None else seen + b", " + value

    def lookup(name: str) -> str | None:
        value = values.get(name.lower().encode(encoding))
        return None if value is None else value.decode(encoding)

    return lookup


class Provider:
    """Defaults shared by every provider; a provider module subclasses it."""

    name = ""  # gen_ai.provider.name of the provider's own API
    apis: tuple[Api, ...] = ()
    batch_apis: tuple[BatchApi, ...] = ()
    hooks: tuple[Hook, ...] = ()
    header_specs: tuple[HeaderSpec, ...] = ()
    # Statuses that mean "throttled": 429 everywhere, 529 ("overloaded") at Anthropic.
    throttle_statuses: frozenset[int] = frozenset({429})
    # The patched method serves more than LLM calls (botocore's ``_make_api_call`` makes every
    # AWS call): :meth:`select` picks the calls to instrument; the others pass untouched.
    dispatches = False

    def select(self, api: Api, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Selected | None:
        """For a dispatching method: the :class:`Api` this call is and its request parameters
        (the dict the SDK sends, so that a budget downgrade reaches it), or None to pass it on."""
        return None

    def read_request(self, api: Api, instance: Any, kwargs: dict[str, Any], *, inject_include_usage: bool) -> Request:
        raise NotImplementedError

    def read_response(self, record: ResponseRecord, response: Any) -> None:
        raise NotImplementedError

    def read_chunk(self, record: ResponseRecord, chunk: Any) -> None:
        raise NotImplementedError

    def read_headers(self, headers: Any, status: int | None) -> HeaderReport | None:
        """Rate-limit headroom (this provider's header table); retry-after when ``status``
        says throttled; a billed cost when it says success."""
        get = getattr(headers, "get", None)
        if get is None:
            return None
        get = _header_getter(headers, get)
        ratelimits = ratelimit_values(get, self.header_specs) if self.header_specs else {}
        retry_after = parse_retry_after(headers) if status in self.throttle_statuses else None
        cost = reported_cost_from_headers(get) if status is not None and status < 400 else None
        return HeaderReport(ratelimits, retry_after, cost)

    def read_error(self, error: BaseException) -> ErrorReport:
        """Status and headers of an SDK exception: ``status_code`` (openai, anthropic), the
        response's ``status_code`` (httpx) or ``status`` (aiohttp), or google-genai's ``code``."""
        response = getattr(error, "response", None)
        status = getattr(error, "status_code", None)
        if response is not None and status is None:
            status = getattr(response, "status_code", None)
            if status is None:
                status = getattr(response, "status", None)
        if type(status) is not int:
            code = getattr(error, "code", None)
            status = code if type(code) is int and 100 <= code < 600 else None
        return ErrorReport(status, getattr(response, "headers", None) if response is not None else None)

    def classify(self, result: Any, request: Request) -> ResultKind:
        return ResultKind.PLAIN

    def raw_body(self, raw: Any) -> Any:
        """The parsed body of a raw response whose body was already read, else None."""
        return None

    def replace_model(self, kwargs: dict[str, Any], model: str) -> None:
        """Send the request with another model (a budget downgrade)."""
        kwargs["model"] = model

    # The messages.stream()-style helpers: a manager that sends the request on enter; and
    # results that hold their stream in a field (ResultKind.FIELD_STREAM).
    def observe_stream(self, entered: Any, wrap: Callable[[Any], Any]) -> None:
        """Put ``wrap(event iterator)`` under the object a stream manager's enter returned,
        or in the field of a result that holds the stream."""

    def stream_snapshot(self, entered: Any) -> Any:
        """What the helper accumulated so far (a final message), or None."""
        return None

    # Batch jobs (only providers that declare ``batch_apis``).
    def read_batch(self, batch: Any) -> BatchJob | None:
        """What a batch object (create/retrieve's result) says, or None when it is not one."""
        return None

    def file_content(self, result: Any) -> bytes | str | None:
        """The body a file read returned, only when it is already in memory (never read here:
        a lazily read or streamed body is left to the application), else None."""
        return None

    def read_batch_output(self, content: bytes | str) -> BatchOutput | None:
        """A batch output file's spend; None when ``content`` is not a batch output file."""
        return None
