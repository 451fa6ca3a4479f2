"""The OpenAI Batch API's shapes: batch objects, and the output files that say what a batch billed.

A batch is billed as its results are produced, at the batch price (genai-prices' price
variant ``processing=batch``: half the standard price for most models). The results are
a JSONL file (``output_file_id``) of one line per request::

    {"id": "batch_req_...", "custom_id": "request-1",
     "response": {"status_code": 200, "request_id": "...", "body": {"model": ..., "usage": ...}},
     "error": null}

``body`` is what the endpoint returns on its own (a chat completion, a Responses API
response, an embeddings list), so its ``usage`` is read by :func:`.openai.parse_usage`.

A file is taken for a batch output only if its first line is a JSON object with
``custom_id`` and ``response`` (a batch's *input* file has ``custom_id`` and ``body`` but
no ``response``; any other file fails the first check, which reads at most one line). A
file that passes it but has a line that is not such an object is unusable: nothing in it
is priced (a partial sum would look like the whole batch's spend).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..pricing.usage import Usage
from .base import BATCH_CREATE, BATCH_OUTPUT, BATCH_RETRIEVE, BatchApi, BatchJob, BatchModelUsage, BatchOutput
from .fields import field

_BATCHES = "openai.resources.batches"
_FILES = "openai.resources.files"
APIS = (
    BatchApi(_BATCHES, "Batches.create", BATCH_CREATE, False),
    BatchApi(_BATCHES, "AsyncBatches.create", BATCH_CREATE, True),
    BatchApi(_BATCHES, "Batches.retrieve", BATCH_RETRIEVE, False),
    BatchApi(_BATCHES, "AsyncBatches.retrieve", BATCH_RETRIEVE, True),
    BatchApi(_FILES, "Files.content", BATCH_OUTPUT, False),
    BatchApi(_FILES, "AsyncFiles.content", BATCH_OUTPUT, True),
    BatchApi(_FILES, "Files.retrieve_content", BATCH_OUTPUT, False),
    BatchApi(_FILES, "AsyncFiles.retrieve_content", BATCH_OUTPUT, True),
)

# The endpoint a result body came from, by its ``object`` (when the batch itself was not seen).
_ENDPOINTS = {
    "chat.completion": "/v1/chat/completions",
    "response": "/v1/responses",
    "list": "/v1/embeddings",
    "text_completion": "/v1/completions",
}
_FIRST_LINE_PROBE = 64 * 1024  # bytes of the first line read to decide; a longer line is not a batch result


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def read_batch(batch: Any) -> BatchJob | None:
    """A ``Batch`` (or its JSON as a dict) as a :class:`BatchJob`; None when it has no id."""
    batch_id = _str(field(batch, "id"))
    if batch_id is None:
        return None
    counts = field(batch, "request_counts")
    return BatchJob(
        id=batch_id,
        endpoint=_str(field(batch, "endpoint")),
        status=_str(field(batch, "status")),
        input_file_id=_str(field(batch, "input_file_id")),
        output_file_id=_str(field(batch, "output_file_id")),
        requests_total=_count(field(counts, "total")),
        requests_completed=_count(field(counts, "completed")),
        requests_failed=_count(field(counts, "failed")),
    )


def _lines(content: bytes | str) -> Iterator[bytes | str]:
    """The lines of ``content`` one at a time (no second copy of the whole file)."""
    newline: Any = b"\n" if isinstance(content, bytes) else "\n"
    start, size = 0, len(content)
    while start < size:
        end = content.find(newline, start)
        if end < 0:
            end = size
        yield content[start:end]
        start = end + 1


def _result_line(line: bytes | str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if isinstance(value, dict) and "custom_id" in value and "response" in value:
        return value
    return None


def looks_like_output(content: bytes | str) -> bool:
    """The cheap check: the first non-blank line is a batch result (reads one line at most)."""
    head = content[:_FIRST_LINE_PROBE].lstrip()
    if head[:1] not in (b"{", "{"):
        return False
    newline: Any = b"\n" if isinstance(head, bytes) else "\n"
    end = head.find(newline)
    first = head if end < 0 else head[:end]
    if end < 0 and len(head) == _FIRST_LINE_PROBE:
        return False
    return _result_line(first) is not None


def read_output(content: bytes | str, parse_usage: Any) -> BatchOutput | None:
    """The spend of a batch output file by model, or None when ``content`` is not one.

    ``parse_usage`` reads a result body's ``usage`` (OpenAI's :func:`.openai.parse_usage`).
    """
    if not content or not looks_like_output(content):
        return None
    models: dict[str, BatchModelUsage] = {}
    for line in _lines(content):
        if not line.strip():
            continue
        result = _result_line(line)
        if result is None:
            return BatchOutput(models=(), usable=False)
        response = result.get("response")
        status = field(response, "status_code")
        if type(status) is not int or not 200 <= status < 300:
            continue  # a failed request is not billed (and its error body names no model)
        body = field(response, "body")
        model = _str(field(body, "model")) or ""
        entry = models.get(model)
        if entry is None:
            entry = models[model] = BatchModelUsage(model=model, usage=Usage())
        entry.lines += 1
        if entry.endpoint is None:
            entry.endpoint = _ENDPOINTS.get(field(body, "object"))  # type: ignore[arg-type]
        usage = parse_usage(field(body, "usage"))
        if usage is not None:
            entry.usage = entry.usage.plus(usage)
    return BatchOutput(models=tuple(models.values()))


def file_content(result: Any) -> bytes | str | None:
    """The body of ``files.content()`` / ``retrieve_content()`` when it is already in memory.

    ``content()`` returns ``HttpxBinaryResponseContent`` (its ``response`` read in full by
    the SDK), ``retrieve_content()`` a ``str``, ``with_raw_response`` a ``LegacyAPIResponse``
    whose ``http_response`` is read. ``with_streaming_response`` returns an ``APIResponse``
    whose body is the application's to stream: it is skipped (its spend is not recorded),
    and so is any body not read yet (reading ``.content`` of an unread httpx response
    raises rather than reading it).
    """
    if isinstance(result, (str, bytes)):
        return result
    kind = type(result).__name__
    if kind == "HttpxBinaryResponseContent":
        http = getattr(result, "response", None)
    elif kind == "LegacyAPIResponse":
        http = getattr(result, "http_response", None)
    else:
        return None
    try:
        content = http.content  # type: ignore[union-attr]
    except Exception:  # not read (a streamed body): never read it here
        return None
    return content if isinstance(content, (bytes, str)) else None
