"""Span exporter writing the collector's ``otel_traces`` table, embedded (chdb) or remote.

``export`` does one thing: it appends the batch to the spool (:mod:`.spool`), a local
file written atomically and fsync-ed, and returns. It never opens chdb (~400 MB, not
fork-safe) and never waits on a network: moving the spool into ClickHouse is the job of
the ingester (:mod:`.ingester`), one process per spool, which the exporter starts when
none runs (``OTEL_EXPORTER_LLMCOST_INGESTER=auto``) or which runs as a sidecar
(``otel-llmcost ingest --follow``); every ``otel-llmcost`` read ingests first, too. The
same holds for a remote DSN (``http(s)://``): a server that is down, slow or never
answers delays storage, not the app, and the spans are stored once it is back.

Guarantees (checked by ``tests/reliability``):

- a span whose batch ``export`` accepted (returned SUCCESS) is stored exactly once,
  whatever happens to the app afterwards (kill -9 included) and whatever transient fault
  the store has meanwhile (disk full, busy, a dropped table, a server down);
- spans a process had not yet handed to ``export`` when it died (a
  ``BatchSpanProcessor`` queue: at most ``max_queue_size``, 2048 by default) are lost and
  cannot be counted here; the SDK counts queue overflows itself
  (``otel.sdk.processor.span.processed`` with ``error.type``). Since ``export`` only writes
  a local file, the queue drains as fast as the disk takes batches.

Spans that never reach the spool (the spool is over ``OTEL_EXPORTER_LLMCOST_SPOOL_MAX_MB``,
the disk is full, a span cannot be converted, spans exported after shutdown, a crashed
predecessor's batch in flight) are counted in ``dropped_spans``, in the OTel counter
``llmcost.exporter.dropped_spans`` (attribute ``reason``), in the spool's drop log that
``otel-llmcost spool`` and every read report, and logged once per reason. Attribute
values above the size limit are cut (see ``rows.py``) and counted in
``llmcost.exporter.truncated_attributes``. ``export`` never raises.

Fork safety: a child made with ``os.fork()`` (gunicorn ``--preload``, a fork pool)
starts with fresh locks, its own liveness marker and its own ingester starter.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import semconv, storage
from ..config import Settings
from .ingester import Starter
from .rows import Truncations, span_to_row
from .spool import Liveness, pending_files, record_drop, recover_abandoned, spool_bytes, spool_dir, write_spool

logger = logging.getLogger(__name__)

# Reasons for dropped spans (the ``reason`` attribute of llmcost.exporter.dropped_spans).
DROP_SPOOL_FULL = "spool_full"
DROP_SPOOL_WRITE = "spool_write_failed"
DROP_UNCONVERTIBLE = "unconvertible_span"
DROP_CRASH = "process_crash"
DROP_AFTER_SHUTDOWN = "after_shutdown"
DROP_UNEXPECTED = "unexpected_error"

# How often the spool's size is measured (a directory scan); in between, own writes are added.
SPOOL_SIZE_EVERY_S = 1.0
_exporters: weakref.WeakSet[LLMCostSpanExporter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for exporter in list(_exporters):
        exporter._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class LLMCostSpanExporter(SpanExporter):
    """Export spans to ClickHouse's ``otel_traces`` (embedded chdb by default) through the spool.

    Configured by arguments or, for ``opentelemetry-instrument --traces_exporter llmcost``
    (no arguments), by the ``OTEL_EXPORTER_LLMCOST_*`` settings (docs/configuration.md):
    DSN, database, TTL, attribute size limit, spool cap, ingester mode and shutdown wait.
    See the module docstring for what is guaranteed and what is counted.
    """

    def __init__(
        self,
        dsn: str | None = None,
        database: str | None = None,
        *,
        ttl_days: int | None = None,
        max_attribute_bytes: int | None = None,
        spool_max_mb: int | None = None,
        ingester: str | None = None,
        shutdown_timeout_ms: int | None = None,
        meter_provider: Any = None,
    ) -> None:
        settings = Settings.load(environ=None)
        self._dsn = dsn or settings.resolved_dsn
        self._database = database or settings.database
        self._ttl_days = ttl_days or settings.ttl_days
        storage.render("", database=self._database, cluster=None, ttl_days=self._ttl_days)  # validates
        self._embedded = storage.is_chdb(self._dsn)
        self._max_value_bytes = (
            settings.max_attribute_bytes if max_attribute_bytes is None else max(max_attribute_bytes, 0)
        )
        self._spool_max_bytes = (spool_max_mb or settings.spool_max_mb) << 20
        mode = ingester or settings.ingester
        if mode not in ("auto", "off"):
            raise ValueError(f"ingester must be 'auto' or 'off', got {mode!r}")
        timeout_ms = settings.shutdown_timeout_ms if shutdown_timeout_ms is None else shutdown_timeout_ms
        self._shutdown_wait_s = max(timeout_ms, 0) / 1000.0
        # Without chdb an embedded spool has no one to ingest it but a later `otel-llmcost` run.
        can_ingest = not self._embedded or storage.embedded_available()
        self._starter = (
            Starter(self._dsn, self._database, self._ttl_days, settings.ingester_idle_s)
            if mode == "auto" and can_ingest
            else None
        )
        self._dropped = 0
        self._truncated = 0
        self._counts_lock = threading.Lock()
        self._unlogged: dict[str, int] = {}
        self._drops_logged = 0.0
        self._size_lock = threading.Lock()
        self._spool_size = 0
        self._size_measured = 0.0
        self._bytes_per_row = 2048.0  # until the first write says what a span takes here
        self._shutdown = False
        self._warned: set[str] = set()
        self._liveness: Liveness | None = None
        self._liveness_lock = threading.Lock()
        self._dropped_counter: Any = None
        self._truncated_counter: Any = None
        self._init_metrics(meter_provider)
        _exporters.add(self)
        if self._embedded and not can_ingest:
            logger.warning(
                "otel-llmcost: the llmcost exporter writes to embedded ClickHouse, which needs chdb: %s. "
                "Until then spans wait in %s (or set OTEL_EXPORTER_LLMCOST_DSN=http://...)",
                storage.connection.EMBEDDED_INSTALL,
                spool_dir(self._dsn),
            )
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

    def _after_fork(self) -> None:
        """In a forked child: locks no thread of the child holds, no copy of the parent's
        liveness marker (spool.py closes its descriptor), a starter of its own."""
        self._counts_lock = threading.Lock()
        self._size_lock = threading.Lock()
        self._liveness_lock = threading.Lock()
        self._liveness = None
        self._unlogged = {}  # the parent writes its own noted drops; the child must not again
        if self._starter is not None:
            self._starter.after_fork()

    @property
    def dsn_redacted(self) -> str:
        return storage.redact_dsn(self._dsn)

    @property
    def dropped_spans(self) -> int:
        """Spans that will never reach storage (see the module docstring for the reasons)."""
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
        if reason != DROP_CRASH:  # recover_abandoned logs crashes; its caller counts them
            self._note_drop(reason, count)
        if log and reason not in self._warned:
            self._warned.add(reason)
            logger.warning(
                "otel-llmcost: dropping spans (%s%s); further drops are counted quietly (`otel-llmcost spool`)",
                reason,
                f": {detail}" if detail else "",
            )

    def _note_drop(self, reason: str, count: int) -> None:
        with self._counts_lock:
            self._unlogged[reason] = self._unlogged.get(reason, 0) + count
        self._log_drops()

    def _log_drops(self, *, now: bool = False) -> None:
        """Write the drops noted so far to the spool's drop log, at most once a second per
        process unless ``now`` (a line per dropped span would grow the log as fast as the
        spool it stands in for)."""
        with self._counts_lock:
            if not self._unlogged:
                return
            clock = time.monotonic()
            if not now and clock - self._drops_logged < 1.0:
                return
            self._drops_logged = clock
            pending, self._unlogged = self._unlogged, {}
        for reason, spans in pending.items():
            record_drop(self._dsn, reason, spans)

    # --- SpanExporter ------------------------------------------------------------
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            return self._export(spans)
        except Exception as exc:  # never let storage trouble reach the application
            self._count_drop(len(spans), DROP_UNEXPECTED, type(exc).__name__)
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Every batch ``export`` accepted is already durable in the spool: nothing to flush."""
        self._poke(force=True)
        return True

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Fast: close the liveness marker, make sure an ingester will take the spool, and
        wait for it at most ``OTEL_EXPORTER_LLMCOST_SHUTDOWN_TIMEOUT_MS`` (default 0)."""
        if self._shutdown:
            return
        self._shutdown = True
        wait_s = self._shutdown_wait_s
        if timeout_millis is not None:
            wait_s = min(wait_s, max(timeout_millis / 1000.0, 0.0))
        with contextlib.suppress(Exception):
            self._poke(force=True)
            if wait_s > 0:
                self._wait_for_own_files(wait_s)
        with contextlib.suppress(Exception):
            left = len(pending_files(self._dsn))
            if left:
                logger.info("otel-llmcost: %d spool file(s) wait in %s for the ingester", left, spool_dir(self._dsn))
        with contextlib.suppress(Exception):
            self._log_drops(now=True)
        with self._liveness_lock:
            if self._liveness is not None:
                self._liveness.close()
                self._liveness = None
        if self._dropped:
            logger.warning(
                "otel-llmcost: %d span(s) were dropped by the exporter (%s)",
                self._dropped,
                ", ".join(sorted(self._warned)) or "see earlier warnings",
            )

    # --- internals ---------------------------------------------------------------
    def _poke(self, force: bool = False) -> None:
        if self._starter is not None:
            self._starter.poke(force=force)

    def _wait_for_own_files(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        marker = f"-{os.getpid()}-"
        while time.monotonic() < deadline:
            if not any(marker in p.name for p in pending_files(self._dsn)):
                return
            time.sleep(0.05)

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
                live = self._liveness = Liveness(spool_dir(self._dsn))
            return live

    def _room_for(self, rows: int) -> int:
        """Reserve room for ``rows`` under the spool cap: the bytes reserved, or 0 if they do
        not fit. The spool is measured at most every second; in between, what this process
        wrote is added (:meth:`_wrote`), so only other processes' writes within that second
        can take it past the cap."""
        with self._size_lock:
            now = time.monotonic()
            if now - self._size_measured >= SPOOL_SIZE_EVERY_S:
                self._spool_size = spool_bytes(self._dsn)
                self._size_measured = now
            estimate = max(int(rows * self._bytes_per_row), 1)
            if self._spool_size + estimate > self._spool_max_bytes:
                return 0
            self._spool_size += estimate
            return estimate

    def _wrote(self, reserved: int, rows: int, written: int) -> None:
        with self._size_lock:
            self._spool_size += written - reserved
            if rows:
                self._bytes_per_row = written / rows

    def _export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            self._count_drop(len(spans), DROP_AFTER_SHUTDOWN)
            return SpanExportResult.FAILURE
        live = self._live()
        live.in_flight(len(spans))
        try:
            rows = self._rows(spans)
            if not rows:
                return SpanExportResult.SUCCESS
            reserved = self._room_for(len(rows))
            if not reserved:
                self._count_drop(
                    len(rows), DROP_SPOOL_FULL, f"over {self._spool_max_bytes >> 20} MB in {spool_dir(self._dsn)}"
                )
                self._poke()
                return SpanExportResult.FAILURE
            try:
                path = write_spool(self._dsn, rows, owner=live.owner)
            except Exception as exc:
                self._wrote(reserved, 0, 0)
                self._count_drop(len(rows), DROP_SPOOL_WRITE, f"{type(exc).__name__}: {exc}")
                return SpanExportResult.FAILURE
            with contextlib.suppress(OSError):
                self._wrote(reserved, len(rows), path.stat().st_size)
        finally:
            live.in_flight(0)
        self._poke()
        if self._unlogged:  # drops of an earlier burst, not yet in the drop log
            self._log_drops()
        return SpanExportResult.SUCCESS
