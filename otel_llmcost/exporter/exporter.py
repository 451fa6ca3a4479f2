"""Span exporter writing the collector's ``otel_traces`` table, embedded (chdb) or remote.

Embedded (``chdb://path``, the default)
---------------------------------------
chdb lets one process at a time open a path, and the app must never hold it, or
``otel-llmcost report`` (or the other workers of a multi-process server) could not run
next to it. So ``export`` first appends the batch to the spool (:mod:`.spool`), then, at
most every ``ingest_interval_s``, tries to ingest it (:mod:`.ingest`) without waiting for
the path's turn. Whoever holds the turn ingests *every* process's files, so with N
worker processes sharing one path, each batch is stored by exactly one of them. If the
turn is busy, the files wait for the next flush, for shutdown, or for whoever ingests
next (every ``otel-llmcost`` read ingests first). Without chdb installed (the
``embedded`` extra) batches stay in the spool, with one log line saying what to install.

Guarantees (checked by ``tests/reliability``):

- a span whose batch ``export`` accepted (returned SUCCESS) is stored exactly once, by
  whichever process ingests next, whatever happens to the app afterwards (kill -9 during
  the insert included);
- spans a process had not yet handed to ``export`` when it died (a
  ``BatchSpanProcessor`` queue: at most ``max_queue_size``, 2048 by default) are lost and
  cannot be counted. What the exporter *can* count it does: the next exporter or CLI run
  that finds the liveness marker of a dead process logs a warning with the size of the
  batch it was writing, removes its half-written temp file and counts the spans in
  ``llmcost.exporter.dropped_spans`` (reason ``process_crash``).

Remote (``http(s)://``)
-----------------------
Rows are inserted directly, ``max_retries`` attempts with exponential backoff (from
``retry_backoff_s``, doubling, plus up to 10% jitter) within ``timeout_s``; each HTTP
request is bounded by the time left. A batch that still fails is dropped and counted;
the remote then gets a cool-down (``retry_backoff_s`` doubling up to 30 s) during which
batches are dropped and counted at once instead of stalling the exporting thread, so a
``BatchSpanProcessor`` queue never backs up behind a dead server and shutdown is never
held for long.

With a ``BatchSpanProcessor`` (what ``opentelemetry-instrument`` installs) none of this
runs on the application's threads: an instrumented call only appends the ended span to
the processor's bounded queue. With a ``SimpleSpanProcessor``, each span end waits for
at most one export: ``timeout_s`` remote, one spool write (+ at most one ingest every
``ingest_interval_s``) embedded.

``export`` never raises. Spans that never reach storage are counted in
``dropped_spans``, exported as the OTel counter ``llmcost.exporter.dropped_spans``
(attribute ``reason``) through ``meter_provider`` (default: the global one), and logged
once per reason and in total at shutdown. Attribute values above the size limit are cut
(see ``rows.py``) and counted in ``llmcost.exporter.truncated_attributes``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import semconv, storage
from ..config import Settings
from .ingest import IngestStats, ensure_schema, ingest_pending, insert_rows
from .rows import Truncations, span_to_row
from .spool import Liveness, pending_files, recover_abandoned, spool_dir, write_spool

logger = logging.getLogger(__name__)

MAX_COOLDOWN_S = 30.0

# Reasons for dropped spans (the ``reason`` attribute of llmcost.exporter.dropped_spans).
DROP_REMOTE_FAILED = "remote_failed"
DROP_REMOTE_COOLDOWN = "remote_cooldown"
DROP_SPOOL_WRITE = "spool_write_failed"
DROP_UNCONVERTIBLE = "unconvertible_span"
DROP_REJECTED = "rejected_by_database"
DROP_CRASH = "process_crash"
DROP_AFTER_SHUTDOWN = "after_shutdown"
DROP_UNEXPECTED = "unexpected_error"


class LLMCostSpanExporter(SpanExporter):
    """Export spans to ClickHouse's ``otel_traces`` (embedded chdb by default).

    Configured by arguments or, for ``opentelemetry-instrument --traces_exporter llmcost``
    (no arguments), by $OTEL_EXPORTER_LLMCOST_DSN, $OTEL_EXPORTER_LLMCOST_DATABASE,
    $OTEL_EXPORTER_LLMCOST_TTL_DAYS and $OTEL_EXPORTER_LLMCOST_MAX_ATTRIBUTE_BYTES.

    ``ingest_interval_s`` bounds how often ``export`` opens chdb (a few hundred ms each):
    in between, batches only go to the spool; ``force_flush`` and ``shutdown`` always
    ingest. Remote inserts make ``max_retries`` attempts within ``timeout_s``. See the
    module docstring for what is guaranteed and what is counted.
    """

    def __init__(
        self,
        dsn: str | None = None,
        database: str | None = None,
        *,
        ttl_days: int | None = None,
        ingest_interval_s: float = 1.0,
        max_retries: int = 3,
        retry_backoff_s: float = 0.2,
        timeout_s: float = 10.0,
        shutdown_wait_s: float = 5.0,
        max_attribute_bytes: int | None = None,
        meter_provider: Any = None,
    ) -> None:
        settings = Settings.load()
        self._dsn = dsn or settings.resolved_dsn
        self._database = database or settings.database
        self._ttl_days = ttl_days or settings.ttl_days
        storage.render("", database=self._database, cluster=None, ttl_days=self._ttl_days)  # validates
        self._embedded = storage.is_chdb(self._dsn)
        # Without chdb the spool still takes every batch; a later `otel-llmcost` run ingests it.
        self._can_ingest = self._embedded and storage.embedded_available()
        self._ingest_interval_s = ingest_interval_s
        self._max_retries = max(1, max_retries)
        self._retry_backoff_s = retry_backoff_s
        self._timeout_s = timeout_s
        self._shutdown_wait_s = shutdown_wait_s
        self._max_value_bytes = (
            settings.max_attribute_bytes if max_attribute_bytes is None else max(max_attribute_bytes, 0)
        )
        self._last_ingest = 0.0
        self._dropped = 0
        self._truncated = 0
        self._counts_lock = threading.Lock()
        self._remote_client: Any = None
        self._remote_lock = threading.Lock()
        self._cooldown_until = 0.0
        self._cooldown_s = 0.0
        self._shutdown = False
        self._warned: set[str] = set()
        self._liveness: Liveness | None = None
        self._liveness_lock = threading.Lock()
        self._dropped_counter: Any = None
        self._truncated_counter: Any = None
        self._init_metrics(meter_provider)
        if self._embedded and not self._can_ingest:
            logger.warning(
                "otel-llmcost: the llmcost exporter writes to embedded ClickHouse, which needs chdb: %s. "
                "Until then spans wait in %s (or set OTEL_EXPORTER_LLMCOST_DSN=http://...)",
                storage.connection.EMBEDDED_INSTALL,
                spool_dir(self._dsn),
            )
        if self._embedded:
            # A previous run that died leaves a marker: report what it lost, now.
            with contextlib.suppress(Exception):
                crashed = recover_abandoned(self._dsn)
                if crashed:
                    self._count_drop(crashed, DROP_CRASH, log=False)

    def _init_metrics(self, meter_provider: Any) -> None:
        try:
            from opentelemetry import metrics

            from ..version import __version__

            meter = (
                meter_provider.get_meter(__name__, __version__)
                if meter_provider is not None
                else metrics.get_meter(__name__, __version__)
            )
            self._dropped_counter = meter.create_counter(
                semconv.METRIC_EXPORTER_DROPPED_SPANS,
                unit="{span}",
                description="Spans the llmcost exporter could not store (attribute reason)",
            )
            self._truncated_counter = meter.create_counter(
                semconv.METRIC_EXPORTER_TRUNCATED_ATTRIBUTES,
                unit="{attribute}",
                description="Attribute values the llmcost exporter cut to its size limit",
            )
        except Exception:
            logger.debug("otel-llmcost: exporter metrics unavailable", exc_info=True)

    @property
    def dsn_redacted(self) -> str:
        return storage.redact_dsn(self._dsn)

    @property
    def dropped_spans(self) -> int:
        """Spans that will never reach storage (failed remote batches, rejected files,
        spans a crashed predecessor was writing, spans exported after shutdown)."""
        return self._dropped

    @property
    def truncated_attributes(self) -> int:
        """Attribute values cut to the size limit so far."""
        return self._truncated

    def _count_drop(self, count: int, reason: str, detail: str = "", log: bool = True) -> None:
        with self._counts_lock:
            self._dropped += count
        if self._dropped_counter is not None:
            with contextlib.suppress(Exception):
                self._dropped_counter.add(count, {"reason": reason})
        if log and reason not in self._warned:
            self._warned.add(reason)
            logger.warning(
                "otel-llmcost: dropping spans (%s%s); further drops are counted quietly",
                reason,
                f": {detail}" if detail else "",
            )

    # --- SpanExporter ------------------------------------------------------------
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            return self._export(spans)
        except Exception as exc:  # never let storage trouble reach the application
            self._count_drop(len(spans), DROP_UNEXPECTED, type(exc).__name__)
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if not self._can_ingest:
            return True  # remote batches are sent synchronously; without chdb the spool holds them
        try:
            self._ingest(wait_s=min(timeout_millis / 1000.0, self._shutdown_wait_s))
        except Exception:
            return False
        return not self._own_pending()

    def shutdown(self, timeout_millis: float | None = None) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        wait_s = self._shutdown_wait_s
        if timeout_millis is not None:
            wait_s = min(wait_s, max(timeout_millis / 1000.0, 0.0))
        if self._embedded:
            if self._can_ingest:
                with contextlib.suppress(Exception):
                    self._ingest(wait_s=wait_s)
            with contextlib.suppress(Exception):
                left = len(pending_files(self._dsn))
                if left:
                    logger.info(
                        "otel-llmcost: %d spool file(s) left in %s; they are ingested on next use",
                        left,
                        spool_dir(self._dsn),
                    )
            with self._liveness_lock:
                if self._liveness is not None:
                    self._liveness.close()
                    self._liveness = None
        with self._remote_lock:
            if self._remote_client is not None:
                with contextlib.suppress(Exception):
                    self._remote_client.close()
                self._remote_client = None
        if self._dropped:
            logger.warning(
                "otel-llmcost: %d span(s) were dropped by the exporter (%s)",
                self._dropped,
                ", ".join(sorted(self._warned)) or "see earlier warnings",
            )

    # --- internals ---------------------------------------------------------------
    def _own_pending(self) -> bool:
        marker = f"-{os.getpid()}-"
        return any(marker in p.name for p in pending_files(self._dsn))

    def _rows(self, spans: Sequence[ReadableSpan]) -> list[list[Any]]:
        rows = []
        cuts = Truncations()
        for span in spans:
            try:
                rows.append(span_to_row(span, self._max_value_bytes, cuts))
            except Exception as exc:
                self._count_drop(1, DROP_UNCONVERTIBLE, type(exc).__name__)
        if cuts.count:
            with self._counts_lock:
                self._truncated += cuts.count
            if self._truncated_counter is not None:
                with contextlib.suppress(Exception):
                    self._truncated_counter.add(cuts.count)
        return rows

    def _live(self) -> Liveness:
        with self._liveness_lock:
            live = self._liveness
            if live is None or live.pid != os.getpid():  # first export, or a forked child
                if live is not None and live.fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(live.fd)  # the parent's: its flock stays with the parent
                live = self._liveness = Liveness(spool_dir(self._dsn))
            return live

    def _export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            self._count_drop(len(spans), DROP_AFTER_SHUTDOWN)
            return SpanExportResult.FAILURE
        if not self._embedded:
            rows = self._rows(spans)
            return self._export_remote(rows) if rows else SpanExportResult.SUCCESS
        live = self._live()
        live.in_flight(len(spans))
        rows = self._rows(spans)
        if not rows:
            live.in_flight(0)
            return SpanExportResult.SUCCESS
        try:
            write_spool(self._dsn, rows, owner=live.owner)
        except Exception as exc:
            live.in_flight(0)
            self._count_drop(len(rows), DROP_SPOOL_WRITE, type(exc).__name__)
            return SpanExportResult.FAILURE
        live.in_flight(0)
        if self._can_ingest and time.monotonic() - self._last_ingest >= self._ingest_interval_s:
            try:
                self._ingest(wait_s=0.0)
            except storage.StorageBusy:
                pass  # spooled: the next flush, shutdown or CLI run ingests it
            except Exception as exc:
                key = f"ingest:{exc.__class__.__name__}"
                if key not in self._warned:
                    self._warned.add(key)
                    logger.warning("otel-llmcost: ingest deferred: %s", storage.redact_text(str(exc), self._dsn))
        return SpanExportResult.SUCCESS

    def _ingest(self, *, wait_s: float) -> int:
        self._last_ingest = time.monotonic()
        stats = IngestStats()
        try:
            return ingest_pending(self._dsn, self._database, wait_s=wait_s, ttl_days=self._ttl_days, stats=stats)
        finally:
            if stats.quarantined_rows:
                self._count_drop(stats.quarantined_rows, DROP_REJECTED)
            if stats.crashed_spans:
                self._count_drop(stats.crashed_spans, DROP_CRASH, log=False)

    def _remote(self, request_timeout_s: int) -> Any:
        with self._remote_lock:
            if self._remote_client is None:
                client = storage.connect(
                    self._dsn,
                    connect_timeout=min(request_timeout_s, 5),
                    send_receive_timeout=request_timeout_s,
                )
                try:
                    ensure_schema(client, storage.redact_dsn(self._dsn), self._database, self._ttl_days)
                except Exception as exc:
                    # The collector may own the schema and we may lack DDL rights: insert anyway.
                    if "schema" not in self._warned:
                        self._warned.add("schema")
                        logger.warning(
                            "otel-llmcost: migrations not applied on %s: %s",
                            self.dsn_redacted,
                            storage.redact_text(str(exc), self._dsn),
                        )
                self._remote_client = client
            return self._remote_client

    def _set_request_timeout(self, client: Any, seconds: int) -> None:
        with contextlib.suppress(Exception):
            from urllib3 import Timeout

            client.timeout = Timeout(connect=min(seconds, 5), read=seconds)

    def _export_remote(self, rows: list[list[Any]]) -> SpanExportResult:
        now = time.monotonic()
        if now < self._cooldown_until:
            self._count_drop(len(rows), DROP_REMOTE_COOLDOWN, f"{self.dsn_redacted} failed recently")
            return SpanExportResult.FAILURE
        deadline = now + self._timeout_s
        token = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(6)}"
        delay = self._retry_backoff_s
        error: Exception | None = None
        for attempt in range(self._max_retries):
            request_timeout = max(1, math.ceil(deadline - time.monotonic()))
            try:
                client = self._remote(request_timeout)
                self._set_request_timeout(client, request_timeout)
                insert_rows(client, self._database, rows, token=token)
                self._cooldown_s = 0.0
                return SpanExportResult.SUCCESS
            except Exception as exc:
                error = exc
                with self._remote_lock:
                    client, self._remote_client = self._remote_client, None
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
                sleep = delay * (1.0 + 0.1 * random.random())
                if attempt + 1 >= self._max_retries or time.monotonic() + sleep >= deadline:
                    break
                time.sleep(sleep)
                delay *= 2
        self._cooldown_s = min(max(self._cooldown_s * 2, self._retry_backoff_s), MAX_COOLDOWN_S)
        self._cooldown_until = time.monotonic() + self._cooldown_s
        detail = self.dsn_redacted
        if error is not None:
            detail += f": {type(error).__name__}: {storage.redact_text(str(error), self._dsn)[:300]}"
        self._count_drop(len(rows), DROP_REMOTE_FAILED, detail)
        return SpanExportResult.FAILURE
