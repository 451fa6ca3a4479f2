"""Cost per *successful* task: tie the LLM calls of a task to its outcome.

A task is a unit of work your product cares about (answer a ticket, fix a build);
it may take several LLM calls, retries and failed attempts. Calls inside
``with llmcost.task("ticket-42"):`` carry ``llmcost.task.id``; the outcome is one
span named ``llmcost.task`` with ``llmcost.task.success``. The views join both
(falling back to the trace id for calls with no task id) to report cost per
successful task and the share of spend lost to failures::

    with llmcost.task("ticket-42") as t:
        answer = agent.run(ticket)
        t.success = answer.resolved      # recorded when the block exits

    # or, where the outcome is known later (a user's thumbs-up):
    llmcost.record_outcome(True, task="ticket-42")
"""

from __future__ import annotations

import uuid
from typing import Any

from .. import runtime, semconv
from .attribution import attributes


def record_outcome(success: bool, *, task: str | None = None, **extra: str | int | float | bool) -> None:
    """Record the outcome of a task: one ``llmcost.task`` span.

    Without ``task``, the outcome belongs to the current trace (the calls made in it).
    Never raises.
    """
    try:
        attrs: dict[str, Any] = {semconv.TASK_SUCCESS: bool(success)}
        if task is not None:
            attrs[semconv.TASK_ID] = str(task)
        for key, value in extra.items():
            attrs[f"llmcost.task.{key}"] = value
        runtime.current().tracer.start_span(semconv.TASK_SPAN_NAME, attributes=attrs).end()
    except Exception:  # pragma: no cover - recording an outcome must never fail the task
        pass


class task:  # noqa: N801 - used like a function: ``with llmcost.task(...)``
    """Attribute the calls in the block to a task and record its outcome on exit.

    ``success`` defaults to "no exception escaped the block"; set ``.success`` to
    override it (for example when the task completed but the answer was rejected).
    """

    def __init__(self, task_id: str | None = None, **extra: str | int | float | bool) -> None:
        self.task_id = task_id or uuid.uuid4().hex
        self.success: bool | None = None
        self._extra = extra
        self._attributes = attributes(task=self.task_id)

    def __enter__(self) -> task:
        self._attributes.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._attributes.__exit__(exc_type, exc, tb)
        success = self.success if self.success is not None else exc_type is None
        record_outcome(success, task=self.task_id, **self._extra)
