"""Token waste in retrieval-augmented apps: how much retrieved evidence the answer used.

The app declares the evidence it retrieved before the call and, once the answer is
known, which items it cited::

    ev = llmcost.evidence({"kb-12": doc12_text, "kb-40": doc40_text})  # or {"kb-12": 830} (tokens)
    reply = client.chat.completions.create(model=..., messages=...)   # this call carries the evidence
    ev.record_citations(["kb-40"])                                     # after the answer

The next LLM call started in the same context (thread, or asyncio task) takes the set:
its span gets ``llmcost.evidence.set_id``, the item ids and each item's tokens (counted
offline with the call's tiktoken encoding, by the instrumentation that claims the set), and the
evidence counts as the prompt-anatomy ``context`` component. The LLM span has ended
by the time citations are known, so they are their own small span, ``llmcost.citations``,
carrying the same set id (and a link to the call's span); SQL joins the two on the set
id (``v_evidence_calls`` and ``v_evidence_waste_hourly``, ``storage/sql/011_opportunities.sql``).

Privacy: evidence text is only counted, in process, when the call starts, and then
dropped; spans carry ids and counts, never text, whatever the content-capture setting.
Ids longer than :data:`MAX_ID_CHARS` (a URL, a chunk of text used as its own key) are
recorded as a hash, on both sides alike, so they still match. At most :data:`MAX_ITEMS`
items are listed per call (keeps the span small); the total covers them all.

Used as a context manager (``with llmcost.evidence(...) as ev:``) the declaration ends
with the block, so a set no call took never attaches to a later, unrelated call.
Nothing here raises into the app.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.trace import Link

from .. import runtime, semconv

logger = logging.getLogger(__name__)

MAX_ITEMS = 100
MAX_ID_CHARS = 64

_CLAIM_LOCK = threading.Lock()
_PENDING: contextvars.ContextVar[EvidenceSet | None] = contextvars.ContextVar("otel_llmcost_evidence", default=None)


def item_id(value: Any) -> str:
    """The recorded form of an evidence id: as given, or a hash when it is long."""
    text = str(value)
    if len(text) <= MAX_ID_CHARS:
        return text
    return "h:" + hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


class EvidenceSet:
    """Evidence declared for one LLM call; :meth:`record_citations` once the answer is known."""

    __slots__ = ("set_id", "_items", "_token", "span_context", "claimed")

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.set_id = uuid.uuid4().hex
        self._items: list[tuple[str, Any]] | None = items  # (id, text or token count) until claimed
        self._token: contextvars.Token[EvidenceSet | None] | None = None
        self.span_context: Any = None  # the LLM call's, once claimed
        self.claimed = False

    def __enter__(self) -> EvidenceSet:
        return self

    def __exit__(self, *exc: object) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                _PENDING.reset(token)
            except Exception:  # reset from another context: leave that context's value alone
                pass

    def record_citations(self, cited_ids: Iterable[Any]) -> None:
        record_citations(cited_ids, evidence=self)

    def bind(self, span: Any) -> None:
        """Remember the call's span, so the citations span can link to it. Never raises."""
        try:
            self.span_context = span.get_span_context()
        except Exception:
            logger.debug("otel-llmcost: no span context to link citations to", exc_info=True)

    def claim(self, count_tokens: Callable[[str, str], int], model: str) -> tuple[dict[str, Any], int] | None:
        """Span attributes and total tokens, text counted by ``count_tokens(text, model)``
        (the call's encoding); the text is dropped."""
        with _CLAIM_LOCK:  # calls started at once from a copied context: only one takes the set
            items, self._items = self._items, None
            if self.claimed or items is None:
                return None
            self.claimed = True
        ids: list[str] = []
        counts: list[int] = []
        total = 0
        for key, value in items:
            if isinstance(value, str):
                n = count_tokens(value, model) if value else 0
            elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                n = value
            else:
                n = 0
            total += n
            if len(ids) < MAX_ITEMS:
                ids.append(key)
                counts.append(n)
        attributes = {
            semconv.EVIDENCE_SET_ID: self.set_id,
            semconv.EVIDENCE_IDS: ids,
            semconv.EVIDENCE_TOKENS: counts,
            semconv.EVIDENCE_TOTAL_TOKENS: total,
        }
        return attributes, total


def evidence(items: Mapping[Any, str | int] | Iterable[tuple[Any, str | int]]) -> EvidenceSet:
    """Declare retrieved evidence for the next LLM call in this context.

    ``items``: id -> text (counted with the call's model encoding) or token count, as a
    mapping or as (id, value) pairs. Returns the set; call its ``record_citations``
    with the ids the answer used. Never raises: bad input gives an empty set.
    """
    try:
        pairs = items.items() if isinstance(items, Mapping) else items
        evidence_set = EvidenceSet([(item_id(key), value) for key, value in pairs])
        evidence_set._token = _PENDING.set(evidence_set)
        return evidence_set
    except Exception:
        logger.debug("otel-llmcost: unreadable evidence items", exc_info=True)
        return EvidenceSet([])


def claim_pending(
    count_tokens: Callable[[str, str], int], model: str
) -> tuple[EvidenceSet, dict[str, Any], int] | None:
    """For the instrumentation: the evidence set the starting call takes, if one is pending."""
    try:
        pending = _PENDING.get()
        if pending is None or pending.claimed:
            return None
        claimed = pending.claim(count_tokens, model)
        if claimed is None:
            return None
        return pending, claimed[0], claimed[1]
    except Exception:
        logger.debug("otel-llmcost: could not count the evidence", exc_info=True)
        return None


def record_citations(cited_ids: Iterable[Any], *, evidence: EvidenceSet | None = None) -> None:
    """Record which evidence items the answer cited: one ``llmcost.citations`` span.

    ``evidence`` defaults to the set last declared in this context. An empty list is a
    real answer ("nothing cited": all of that evidence was waste); never calling this
    leaves the set's citations unknown, which the views keep apart. Never raises.
    """
    try:
        target = evidence if evidence is not None else _PENDING.get()
        if target is None:
            logger.debug("otel-llmcost: record_citations() without declared evidence")
            return
        cited = list(dict.fromkeys(item_id(i) for i in cited_ids))
        links = [Link(target.span_context)] if target.span_context is not None else None
        attributes = {semconv.EVIDENCE_SET_ID: target.set_id, semconv.EVIDENCE_CITED_IDS: cited}
        tracer = runtime.current().tracer
        tracer.start_span(semconv.CITATIONS_SPAN_NAME, attributes=attributes, links=links).end()
    except Exception:  # pragma: no cover - recording citations must never fail the app
        logger.debug("otel-llmcost: could not record citations", exc_info=True)
