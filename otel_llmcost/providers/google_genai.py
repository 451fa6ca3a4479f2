"""Google Gen AI (the ``google-genai`` SDK: Gemini Developer API and Vertex AI).

Patched: ``models.generate_content``, ``models.generate_content_stream`` and
``models.embed_content``, sync (``client.models``) and async (``client.aio.models``).
``chats`` sessions call these same methods, so they are covered too.

``embed_content`` reports its input tokens where the API says them: ``usage_metadata``
(``prompt_token_count``) when present, else Vertex AI's per-embedding
``statistics.token_count``. The Gemini API's ``batchEmbedContents`` returns no count at
all: the contents' text is then counted offline (``llmcost.usage.estimated``). Vertex's
``metadata.billable_character_count`` is recorded as it is (characters, not tokens).

``generate_content_stream`` is a generator function: calling it sends nothing, the
request goes out on the first ``next()``, so its result is classified as a generator
(the instrumentation makes the call current around each step). The async variant is
a coroutine that returns an async generator.

Usage: ``usage_metadata``: ``prompt_token_count`` INCLUDES
``cached_content_token_count``; ``thoughts_token_count`` is billed as output. In a
stream each chunk's usage is the running total (the SDK already adds up the hops of
automatic continuation), so the last one wins; when it lacks ``candidates_token_count``
(as streamed function calls can), the visible output (text, and each ``function_call``'s
name and args as JSON) is counted locally beside the reported thoughts. Automatic
function calling sends one request per round and returns the last response, whose usage
covers only the last round: ``Models._generate_content`` sends exactly one request in
every SDK version, so a hook there reports each round's usage and the call sums them.

No rate-limit headers of the OpenAI/Anthropic kind; quota errors are HTTP 429
``RESOURCE_EXHAUSTED`` (``google.genai.errors.ClientError``, ``code == 429``). With
``HttpOptions(retry_options=...)`` the SDK retries through tenacity; the
``_request_once`` hooks report each attempt, and a failed one counts as a retry when
another attempt follows.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from .. import semconv
from ..pricing.usage import Usage
from .base import Api, Attempt, Hook, PromptView, Provider, Request, ResponseRecord, ResultKind
from .fields import as_float, as_int, field, plain
from .hosts import describe_base_url

_MODELS = "google.genai.models"
_API_CLIENT = "google.genai._api_client"
_GENERATE = "generate"
_STREAM = "stream"
_EMBED = "embed"
_OPERATION = semconv.OPERATION_GENERATE_CONTENT
GEMINI = "gcp.gemini"
VERTEX = "gcp.vertex_ai"
PRICING_PROVIDER = "google"


def parse_usage(usage_metadata: Any) -> Usage | None:
    """google-genai usage_metadata; thoughts are billed as output."""
    if usage_metadata is None:
        return None
    prompt = as_int(field(usage_metadata, "prompt_token_count"))
    tool_prompt = as_int(field(usage_metadata, "tool_use_prompt_token_count"))
    cached = as_int(field(usage_metadata, "cached_content_token_count"))
    candidates = as_int(field(usage_metadata, "candidates_token_count"))
    thoughts = as_int(field(usage_metadata, "thoughts_token_count"))
    input_tokens = max(prompt + tool_prompt, cached)
    prompt_modes = _modalities(field(usage_metadata, "prompt_tokens_details"))
    cache_modes = _modalities(field(usage_metadata, "cache_tokens_details"))
    output_modes = _modalities(field(usage_metadata, "candidates_tokens_details"))
    input_audio = min(prompt_modes.get("AUDIO", 0), input_tokens)
    input_image = min(prompt_modes.get("IMAGE", 0), input_tokens - input_audio)
    output_audio = min(output_modes.get("AUDIO", 0), candidates)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=candidates + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
        input_audio_tokens=input_audio,
        cache_audio_read_tokens=min(cache_modes.get("AUDIO", 0), input_audio, cached),
        output_audio_tokens=output_audio,
        input_image_tokens=input_image,
        cache_image_read_tokens=min(cache_modes.get("IMAGE", 0), input_image, cached),
        output_image_tokens=min(output_modes.get("IMAGE", 0), candidates - output_audio),
    )


def _modalities(details: Any) -> dict[str, int]:
    """``[ModalityTokenCount(modality=AUDIO, token_count=n), ...]`` as ``{"AUDIO": n}``."""
    counts: dict[str, int] = {}
    if not isinstance(details, (list, tuple)):
        return counts
    for item in details:
        modality = field(item, "modality")
        name = getattr(modality, "value", modality)  # an enum in the SDK, a string in dicts
        if isinstance(name, str):
            counts[name.upper()] = counts.get(name.upper(), 0) + as_int(field(item, "token_count"))
    return counts


def normalize_model(model: Any) -> str:
    """'models/gemini-2.5-flash', 'publishers/google/models/x', 'google/x', full Vertex resource -> bare id."""
    if not isinstance(model, str):
        return ""
    if "models/" in model and not model.startswith("tunedModels/"):
        return model.rsplit("models/", 1)[1]
    if model.startswith("google/"):
        return model[len("google/") :]
    return model


# --- hooks: SDK retries (HttpOptions.retry_options), their 429s, and the rounds of one call ---


def _attempt_starting(args: tuple[Any, ...], kwargs: dict[str, Any], _result: Any) -> Attempt:
    return Attempt(starting=True)


def _attempt_failed(args: tuple[Any, ...], kwargs: dict[str, Any], error: Any) -> Attempt:
    code = getattr(error, "code", None)
    response = getattr(error, "response", None)
    return Attempt(failed=True, status=code if type(code) is int else None, headers=getattr(response, "headers", None))


def _round_done(args: tuple[Any, ...], kwargs: dict[str, Any], response: Any) -> Attempt | None:
    usage = parse_usage(field(response, "usage_metadata"))
    return Attempt(hop_usage=usage) if usage is not None else None


class GoogleGenAIProvider(Provider):
    name = GEMINI
    apis = (
        Api(_MODELS, "Models.generate_content", _OPERATION, False, _GENERATE),
        Api(_MODELS, "Models.generate_content_stream", _OPERATION, False, _STREAM),
        Api(_MODELS, "AsyncModels.generate_content", _OPERATION, True, _GENERATE),
        Api(_MODELS, "AsyncModels.generate_content_stream", _OPERATION, True, _STREAM),
        Api(_MODELS, "Models.embed_content", semconv.OPERATION_EMBEDDINGS, False, _EMBED),
        Api(_MODELS, "AsyncModels.embed_content", semconv.OPERATION_EMBEDDINGS, True, _EMBED),
    )
    hooks = (
        Hook(_API_CLIENT, "BaseApiClient._request_once", False, before=_attempt_starting, on_error=_attempt_failed),
        Hook(
            _API_CLIENT, "BaseApiClient._async_request_once", True, before=_attempt_starting, on_error=_attempt_failed
        ),
        Hook(_MODELS, "Models._generate_content", False, after=_round_done),
        Hook(_MODELS, "AsyncModels._generate_content", True, after=_round_done),
    )

    # --- request ------------------------------------------------------------------

    def read_request(self, api: Api, instance: Any, kwargs: dict[str, Any], *, inject_include_usage: bool) -> Request:
        client = getattr(instance, "_api_client", None)
        config = kwargs.get("config")
        contents = kwargs.get("contents")
        embed = api.kind == _EMBED
        if embed:
            # The whole input is one message: hashed for repeats, no prefix, no anatomy.
            prompt = PromptView(messages=[plain(contents)])
        else:
            if contents is None:
                contents = []
            elif not isinstance(contents, (list, tuple)):
                contents = [contents]
            prompt = PromptView(
                system=plain(field(config, "system_instruction")),
                tools=plain(field(config, "tools")),
                messages=[plain(item) for item in contents],
                temperature=field(config, "temperature"),
            )
        max_tokens = field(config, "max_output_tokens")
        request = Request(
            operation=api.operation,
            provider_name=VERTEX if getattr(client, "vertexai", False) is True else GEMINI,
            model=normalize_model(kwargs.get("model")),
            prompt=prompt,
            stream=api.kind == _STREAM,
            max_tokens=max_tokens if type(max_tokens) is int else None,
            temperature=as_float(field(config, "temperature")),
            top_p=as_float(field(config, "top_p")),
            pricing_provider=PRICING_PROVIDER,
        )
        if request.stream:  # keep what is generated, to count it if the usage lacks the output
            request.collect_output = request.estimate_usage = True
        if embed:
            request.estimate_usage = True  # the Gemini API reports no tokens: count the input then
            dimensions = field(config, "output_dimensionality")
            if type(dimensions) is int:
                request.attributes = {semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: dimensions}
        base_url = field(getattr(client, "_http_options", None), "base_url")
        if isinstance(base_url, str) and base_url:
            _name, host, port = describe_base_url(base_url, request.provider_name)
            request.server_address = host
            request.server_port = port if host else None
        return request

    # --- response -----------------------------------------------------------------

    def read_response(self, record: ResponseRecord, response: Any) -> None:
        embeddings = field(response, "embeddings")
        if isinstance(embeddings, list):
            _read_embeddings(record, response, embeddings)
            return
        usage_metadata = field(response, "usage_metadata")
        usage = parse_usage(usage_metadata)
        if usage is not None:
            record.usage = usage
            # Streamed function calls can come with no candidates count (thoughts, if any, still counted).
            record.output_partial = field(usage_metadata, "candidates_token_count") is None
        model = field(response, "model_version")
        if isinstance(model, str) and model:
            record.model = normalize_model(model)
        response_id = field(response, "response_id")
        if isinstance(response_id, str) and response_id:
            record.id = response_id
        candidates = field(response, "candidates")
        if not isinstance(candidates, list):
            return
        for candidate in candidates:
            reason = field(candidate, "finish_reason")
            if reason is not None:
                record.add_finish_reason(_reason_text(reason))
            if record.output_parts is not None:
                parts = field(field(candidate, "content"), "parts")
                if isinstance(parts, list):
                    for part in parts:
                        if not field(part, "thought"):
                            record.add_output(field(part, "text"))
                        elif record.reasoning_parts is not None:
                            record.add_reasoning(field(part, "text"))
                        if record.generated_parts is not None:
                            _read_function_call(record, field(part, "function_call"))

    def read_chunk(self, record: ResponseRecord, chunk: Any) -> None:
        # Every chunk is a GenerateContentResponse; usage on a later chunk is a running
        # total that replaces the earlier one.
        self.read_response(record, chunk)

    def classify(self, result: Any, request: Request) -> ResultKind:
        if inspect.isgenerator(result):
            return ResultKind.GENERATOR
        if inspect.isasyncgen(result):
            return ResultKind.ASYNC_GENERATOR
        if request.stream and hasattr(result, "__anext__"):
            return ResultKind.ASYNC_GENERATOR
        if request.stream and hasattr(result, "__next__"):
            return ResultKind.GENERATOR
        return ResultKind.PLAIN


def _read_embeddings(record: ResponseRecord, response: Any, embeddings: list[Any]) -> None:
    """An EmbedContentResponse: usage_metadata, else the sum of Vertex's per-embedding
    ``statistics.token_count``; neither (the Gemini API): no usage, counted offline."""
    usage = parse_usage(field(response, "usage_metadata"))
    if usage is None:
        counts = [field(field(item, "statistics"), "token_count") for item in embeddings]
        if any(count is not None for count in counts):
            usage = Usage(input_tokens=sum(as_int(count) for count in counts))
    if usage is not None:
        record.usage = Usage(input_tokens=usage.input_tokens, cache_read_tokens=usage.cache_read_tokens)
    characters = field(field(response, "metadata"), "billable_character_count")
    if type(characters) is int:
        record.set_attribute(semconv.USAGE_BILLABLE_CHARACTERS, characters)


def _read_function_call(record: ResponseRecord, call: Any) -> None:
    """A ``function_call`` part's generated text: its name and its args as JSON (a stream
    delivers each call whole)."""
    if call is None:
        return
    record.add_generated(field(call, "name"))
    args = field(call, "args")
    if args:
        record.add_generated(json.dumps(args, ensure_ascii=False, separators=(",", ":"), default=str))


def _reason_text(reason: Any) -> str | None:
    value = getattr(reason, "value", reason)
    return value.lower() if isinstance(value, str) and value else None
