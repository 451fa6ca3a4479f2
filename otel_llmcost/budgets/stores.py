"""Where budget counters live: in this process (:class:`MemoryStore`) or in Redis
(:class:`RedisStore`), shared by every process and host.

A counter holds integers in its budget's unit: nano-USD (exact, so a reserve and its
release always cancel) or tokens. A reservation is a lease: one whose process died is
dropped after its deadline. In Redis both operations are one Lua script each
(``reserve.lua``, ``settle.lua``), so a reservation against several budgets is all or
nothing; every key shares one hash tag, so Redis Cluster works.

Redis can be down, refuse connections or hang (a paused or overloaded server). Every
command is bounded by a connect and a read timeout (no retries: a budget check is on the
caller's critical path), and a :class:`Breaker` skips the store for a cool-down after a
few failures in a row, so an outage costs the first calls a timeout each and the rest
nothing. Failures surface as :class:`StoreUnavailable`; what a call then does
(``fail_open``) is the enforcement's decision.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_LUA_DIR = Path(__file__).parent
NANO = 1_000_000_000  # USD counters hold integer nano-USD
KEY_PREFIX = "llmcost:{budgets}:"  # one hash tag: every key in one Redis Cluster slot

# (failed index or 0, used per counter, reserved per counter) before this reservation
ReserveResult = tuple[int, list[int], list[int]]


@dataclass(frozen=True)
class Counter:
    key: str
    limit: int  # the cap in the counter's unit (nano-USD or tokens): a reservation past it is refused
    ttl_s: int


class StoreUnavailable(Exception):
    """The counters could not be read or written (down, timed out, or the breaker is open)."""


# --- in memory ------------------------------------------------------------------------------


class _Entry:
    __slots__ = ("used", "reserved", "leases", "expires_ms", "queued_ms", "next_deadline_ms")

    def __init__(self) -> None:
        self.used = 0
        self.reserved = 0
        self.leases: dict[str, tuple[int, int]] = {}  # lease id -> (deadline_ms, amount)
        self.expires_ms: float = math.inf
        self.queued_ms: float | None = None  # the expiry under which it sits in the sweep heap
        self.next_deadline_ms: float = math.inf  # no lease can have expired before this

    def drop_expired_leases(self, now_ms: int) -> None:
        # Only scans when the earliest lease may have expired: once per lease period, not per call.
        if now_ms < self.next_deadline_ms:
            return
        for lease, (deadline, amount) in list(self.leases.items()):
            if deadline <= now_ms:
                del self.leases[lease]
                self.reserved -= amount
        self.next_deadline_ms = min((d for d, _ in self.leases.values()), default=math.inf)


class MemoryStore:
    """Counters in this process (a lock around plain dicts); the default.

    Every operation is O(1) in the number of counters: expired counters leave through a
    heap ordered by expiry, so a service that has seen 100 000 users pays per call what
    one with 100 pays.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, _Entry] = {}
        self._expiry: list[tuple[float, str]] = []  # (expires_ms, key), lazily corrected

    def _entry(self, key: str, now_ms: int) -> _Entry:
        entry = self._counters.get(key)
        if entry is None or entry.expires_ms <= now_ms:
            entry = self._counters[key] = _Entry()
        entry.drop_expired_leases(now_ms)
        return entry

    def _sweep(self, now_ms: int) -> None:
        """Drop the counters whose expiry has passed; a heap item whose counter was renewed
        is pushed again with its new expiry (once per ttl), a stale duplicate is dropped."""
        heap = self._expiry
        while heap and heap[0][0] <= now_ms:
            expires, key = heapq.heappop(heap)
            entry = self._counters.get(key)
            if entry is None or entry.queued_ms != expires:
                continue
            if entry.expires_ms <= now_ms:
                del self._counters[key]
            else:
                entry.queued_ms = entry.expires_ms
                heapq.heappush(heap, (entry.expires_ms, key))

    def reserve(
        self, counters: Sequence[Counter], amounts: Sequence[int], lease: str, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        with self._lock:
            self._sweep(now_ms)
            entries = [self._entry(c.key, now_ms) for c in counters]
            used = [e.used for e in entries]
            reserved = [e.reserved for e in entries]
            for index, (counter, entry, amount) in enumerate(zip(counters, entries, amounts, strict=True)):
                if entry.used + entry.reserved + amount > counter.limit:
                    return index + 1, used, reserved
            for counter, entry, amount in zip(counters, entries, amounts, strict=True):
                entry.reserved += amount
                entry.leases[lease] = (deadline_ms, amount)
                entry.next_deadline_ms = min(entry.next_deadline_ms, deadline_ms)
                entry.expires_ms = now_ms + counter.ttl_s * 1000
                if entry.queued_ms is None:
                    entry.queued_ms = entry.expires_ms
                    heapq.heappush(self._expiry, (entry.expires_ms, counter.key))
            return 0, used, reserved

    async def areserve(
        self, counters: Sequence[Counter], amounts: Sequence[int], lease: str, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        return self.reserve(counters, amounts, lease, now_ms, deadline_ms)  # no I/O: never blocks

    def settle(self, keys: Sequence[str], lease: str, amounts: Sequence[int], actuals: Sequence[int] | None) -> None:
        """Drop the lease; add ``actuals`` to the used amounts (``None``: a release)."""
        with self._lock:
            for index, key in enumerate(keys):
                entry = self._counters.get(key)
                if entry is None:
                    continue
                if entry.leases.pop(lease, None) is not None:
                    entry.reserved -= amounts[index]
                if actuals is not None:
                    entry.used += actuals[index]

    def settle_later(
        self, keys: Sequence[str], lease: str, amounts: Sequence[int], actuals: Sequence[int] | None
    ) -> None:
        self.settle(keys, lease, amounts, actuals)

    def flush(self, timeout_s: float = 5.0) -> bool:
        return True

    def read(self, key: str, now_ms: int) -> tuple[int, int]:
        with self._lock:
            entry = self._counters.get(key)
            if entry is None or entry.expires_ms <= now_ms:
                return 0, 0
            entry.drop_expired_leases(now_ms)
            return entry.used, entry.reserved

    def keys(self, prefix: str) -> list[str]:
        with self._lock:
            return [k for k in self._counters if k.startswith(prefix)]


# --- the circuit breaker ----------------------------------------------------------------------


class Breaker:
    """After ``failures`` failed operations in a row the store is skipped for ``cooldown_s``;
    then one call tries it again (a success closes the breaker, a failure keeps it open).

    Logs one WARNING when it opens and one when it closes (never a traceback per call):
    an outage of an hour is two log lines, not one per request.
    """

    def __init__(
        self,
        failures: int = 3,
        cooldown_s: float = 30.0,
        *,
        consequence: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.consequence = consequence  # what calls do meanwhile, for the log line
        self._clock = clock
        self._lock = threading.Lock()
        self._failed = 0
        self._open_until: float | None = None  # None: closed

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def allow(self) -> bool:
        """Whether to try the store now (while open: one trial per cool-down)."""
        with self._lock:
            if self._open_until is None:
                return True
            now = self._clock()
            if now < self._open_until:
                return False
            self._open_until = now + self.cooldown_s  # the others keep skipping while this one tries
            return True

    def success(self) -> None:
        if self._failed == 0 and self._open_until is None:  # the hot path: no lock
            return
        with self._lock:
            was_open = self._open_until is not None
            self._failed, self._open_until = 0, None
        if was_open:
            logger.warning("otel-llmcost: the budget store is reachable again; budgets are checked again")

    def failure(self, error: BaseException) -> None:
        with self._lock:
            self._failed += 1
            opened = self._open_until is None and self._failed >= self.failures
            if opened or self._open_until is not None:
                self._open_until = self._clock() + self.cooldown_s
        if opened:
            logger.warning(
                "otel-llmcost: the budget store failed %d times in a row (%s: %s); skipping it for %gs%s",
                self._failed,
                type(error).__name__,
                error,
                self.cooldown_s,
                f"; {self.consequence}" if self.consequence else "",
            )
        else:
            logger.debug("otel-llmcost: budget store operation failed: %s: %s", type(error).__name__, error)


# --- Redis --------------------------------------------------------------------------------------

_RESERVE_LUA = (_LUA_DIR / "reserve.lua").read_text(encoding="utf-8")
_SETTLE_LUA = (_LUA_DIR / "settle.lua").read_text(encoding="utf-8")


def _redis_options(connect_timeout_ms: int, timeout_ms: int, retry: Any) -> dict[str, Any]:
    # redis-py's defaults are 5 s timeouts and 3 retries with backoff (redis-py 8), or no
    # timeout at all (redis-py 5): a hung server would stall every call that long.
    return {
        "socket_connect_timeout": connect_timeout_ms / 1000,
        "socket_timeout": timeout_ms / 1000,
        "retry": retry,
        "retry_on_timeout": False,
        "health_check_interval": 0,
    }


class RedisStore:
    """Counters in Redis, shared by every process and host; atomic by Lua scripts.

    ``client`` is a URL (``redis://host:6379/0``) or a ``redis.Redis``. With a URL, async
    callers get a ``redis.asyncio`` client of their own event loop; with a client object
    they run the sync one in a worker thread. Either way the event loop never blocks.
    """

    def __init__(
        self,
        client: Any,
        *,
        connect_timeout_ms: int = 200,
        timeout_ms: int = 250,
        breaker: Breaker | None = None,
    ) -> None:
        self.url: str | None = None
        self.connect_timeout_ms = connect_timeout_ms
        self.timeout_ms = timeout_ms
        if isinstance(client, str):
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            self.url = client
            options = _redis_options(connect_timeout_ms, timeout_ms, Retry(NoBackoff(), 0))
            client = redis.Redis.from_url(client, **options)
        self.client = client
        self.breaker = breaker or Breaker()
        self._reserve = client.register_script(_RESERVE_LUA)
        self._settle = client.register_script(_SETTLE_LUA)
        # One asyncio client per event loop: redis.asyncio connections belong to the loop that made them.
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._settler: _Settler | None = None

    # --- guarded operations -------------------------------------------------------------

    def _guard(self, operation: Callable[[], Any]) -> Any:
        if not self.breaker.allow():
            raise StoreUnavailable("the budget store is skipped for a while (circuit breaker open)")
        try:
            result = operation()
        except Exception as error:
            self.breaker.failure(error)
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        self.breaker.success()
        return result

    async def _aguard(self, operation: Callable[[], Any]) -> Any:
        if not self.breaker.allow():
            raise StoreUnavailable("the budget store is skipped for a while (circuit breaker open)")
        try:
            result = await operation()
        except Exception as error:
            self.breaker.failure(error)
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        self.breaker.success()
        return result

    # --- reserve ------------------------------------------------------------------------

    @staticmethod
    def _reserve_args(
        counters: Sequence[Counter], amounts: Sequence[int], lease: str, now_ms: int, deadline_ms: int
    ) -> tuple[list[str], list[Any]]:
        args: list[Any] = [now_ms, deadline_ms, lease]
        for counter, amount in zip(counters, amounts, strict=True):
            args += [amount, counter.limit, counter.ttl_s]
        return [c.key for c in counters], args

    @staticmethod
    def _reserve_result(raw: Any) -> ReserveResult:
        failed, used, reserved = raw
        return int(failed), [int(u) for u in used], [int(r) for r in reserved]

    def reserve(
        self, counters: Sequence[Counter], amounts: Sequence[int], lease: str, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        keys, args = self._reserve_args(counters, amounts, lease, now_ms, deadline_ms)
        return self._reserve_result(self._guard(lambda: self._reserve(keys=keys, args=args)))

    async def areserve(
        self, counters: Sequence[Counter], amounts: Sequence[int], lease: str, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        keys, args = self._reserve_args(counters, amounts, lease, now_ms, deadline_ms)
        if self.url is None:  # a sync client given: keep it off the event loop
            return self._reserve_result(
                await self._aguard(lambda: asyncio.to_thread(self._reserve, keys=keys, args=args))
            )
        script = self._async_script()
        return self._reserve_result(await self._aguard(lambda: script(keys=keys, args=args)))

    def _async_script(self) -> Any:
        loop = asyncio.get_running_loop()
        script = self._async.get(loop)
        if script is None:
            import redis.asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            assert self.url is not None
            options = _redis_options(self.connect_timeout_ms, self.timeout_ms, Retry(NoBackoff(), 0))
            script = redis.asyncio.Redis.from_url(self.url, **options).register_script(_RESERVE_LUA)
            self._async[loop] = script
        return script

    # --- settle -------------------------------------------------------------------------

    def settle(self, keys: Sequence[str], lease: str, amounts: Sequence[int], actuals: Sequence[int] | None) -> None:
        """Drop the lease, add the actual amounts; a failure leaves the lease to expire."""
        args: list[Any] = [lease]
        for index, amount in enumerate(amounts):
            args += [amount, "" if actuals is None else actuals[index]]
        try:
            self._guard(lambda: self._settle(keys=list(keys), args=args))
        except StoreUnavailable:
            pass  # logged by the breaker; the reservation expires with its lease

    def settle_later(
        self, keys: Sequence[str], lease: str, amounts: Sequence[int], actuals: Sequence[int] | None
    ) -> None:
        """Settle from a worker thread: for calls ending inside an event loop, which must not
        wait for Redis, and whose loop may be gone (``asyncio.run`` returning) before a task ran."""
        settler = self._settler
        if settler is None or not settler.alive():
            settler = self._settler = _Settler(self.settle)
        settler.put((keys, lease, amounts, actuals))

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until the settlements handed to :meth:`settle_later` are done."""
        return self._settler.flush(timeout_s) if self._settler is not None else True

    # --- status -------------------------------------------------------------------------

    def read(self, key: str, now_ms: int) -> tuple[int, int]:
        pipe = self.client.pipeline()
        pipe.hmget(key, "used", "reserved")
        pipe.zrangebyscore(key + ":leases", "-inf", now_ms)
        (used, reserved), expired = pipe.execute()
        stale = sum(int(m.rsplit(b"|", 1)[1]) for m in expired)
        return int(used or 0), max(int(reserved or 0) - stale, 0)

    def keys(self, prefix: str) -> list[str]:
        found = []
        for key in self.client.scan_iter(match=_glob_escape(prefix) + "*", count=500):
            text = key.decode() if isinstance(key, bytes) else key
            if not text.endswith(":leases"):
                found.append(text)
        return found


class _Settler:
    """One daemon thread applying settlements in order; bounded by the store's timeouts."""

    def __init__(self, settle: Callable[..., None]) -> None:
        self._settle = settle
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=100_000)
        self._thread = threading.Thread(target=self._run, name="otel-llmcost-budget-settle", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()  # False in a forked child: it starts its own

    def put(self, item: Any) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:  # the store is far behind: the lease expires instead
            logger.debug("otel-llmcost: budget settlement queue full; the reservation expires with its lease")

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                self._settle(*item)
            except Exception:  # pragma: no cover - settle() never raises
                logger.debug("otel-llmcost: budget settlement failed", exc_info=True)
            finally:
                self._queue.task_done()

    def flush(self, timeout_s: float) -> bool:
        with self._queue.all_tasks_done:
            return self._queue.all_tasks_done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout_s)


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def open_store(
    url: str,
    *,
    connect_timeout_ms: int = 200,
    timeout_ms: int = 250,
    breaker: Breaker | None = None,
) -> MemoryStore | RedisStore:
    if not url or url == "memory":
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url, connect_timeout_ms=connect_timeout_ms, timeout_ms=timeout_ms, breaker=breaker)
    raise ValueError(f"unknown budget store {url!r}: use 'memory' or redis://host:port/db")
