"""Where budget counters live: in this process (:class:`MemoryStore`) or in Redis
(:class:`RedisStore`), shared by every process and host.

Counters are integer nano-USD (exact, so a reserve and its release always cancel). A
reservation is a lease: one whose process died is dropped after its deadline. In Redis
both operations are one Lua script each (``reserve.lua``, ``settle.lua``), so a
reservation against several budgets is all or nothing; every key shares one hash tag,
so Redis Cluster works.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LUA_DIR = Path(__file__).parent
NANO = 1_000_000_000  # counters hold integer nano-USD
KEY_PREFIX = "llmcost:{budgets}:"  # one hash tag: every key in one Redis Cluster slot


@dataclass(frozen=True)
class Counter:
    key: str
    limit: int  # nano-USD
    ttl_s: int


class MemoryStore:
    """Counters in this process (a lock around plain dicts); the default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # key -> [used, reserved, {lease member: (deadline_ms, amount)}, expires_at_ms]
        self._counters: dict[str, list[Any]] = {}

    def _entry(self, key: str, now_ms: int) -> list[Any]:
        entry = self._counters.get(key)
        if entry is None or entry[3] <= now_ms:
            entry = self._counters[key] = [0, 0, {}, math.inf]
        leases = entry[2]
        if leases:
            for member in [m for m, (deadline, _) in leases.items() if deadline <= now_ms]:
                entry[1] -= leases.pop(member)[1]
        return entry

    def reserve(
        self, counters: list[Counter], amount: int, member: str, now_ms: int, deadline_ms: int
    ) -> tuple[int, list[int], list[int]]:
        with self._lock:
            entries = [self._entry(c.key, now_ms) for c in counters]
            used = [e[0] for e in entries]
            reserved = [e[1] for e in entries]
            for index, (counter, entry) in enumerate(zip(counters, entries, strict=True)):
                if entry[0] + entry[1] + amount > counter.limit:
                    return index + 1, used, reserved
            for counter, entry in zip(counters, entries, strict=True):
                entry[1] += amount
                entry[2][member] = (deadline_ms, amount)
                entry[3] = now_ms + counter.ttl_s * 1000
            if len(self._counters) > 10_000:
                for key in [k for k, e in self._counters.items() if e[3] <= now_ms]:
                    del self._counters[key]
            return 0, used, reserved

    def settle(self, keys: list[str], member: str, amount: int, actual: int | None) -> None:
        with self._lock:
            for key in keys:
                entry = self._counters.get(key)
                if entry is None:
                    continue
                if entry[2].pop(member, None) is not None:
                    entry[1] -= amount
                if actual:
                    entry[0] += actual

    def read(self, key: str, now_ms: int) -> tuple[int, int]:
        with self._lock:
            entry = self._counters.get(key)
            if entry is None or entry[3] <= now_ms:
                return 0, 0
            entry = self._entry(key, now_ms)
            return entry[0], entry[1]

    def keys(self, prefix: str) -> list[str]:
        with self._lock:
            return [k for k in self._counters if k.startswith(prefix)]


_RESERVE_LUA = (_LUA_DIR / "reserve.lua").read_text(encoding="utf-8")
_SETTLE_LUA = (_LUA_DIR / "settle.lua").read_text(encoding="utf-8")


class RedisStore:
    """Counters in Redis, shared by every process and host; atomic by Lua scripts."""

    def __init__(self, client: Any) -> None:
        if isinstance(client, str):
            import redis

            client = redis.Redis.from_url(client)
        self.client = client
        self._reserve = client.register_script(_RESERVE_LUA)
        self._settle = client.register_script(_SETTLE_LUA)

    def reserve(
        self, counters: list[Counter], amount: int, member: str, now_ms: int, deadline_ms: int
    ) -> tuple[int, list[int], list[int]]:
        args: list[Any] = [now_ms, deadline_ms, member, amount]
        for counter in counters:
            args += [counter.limit, counter.ttl_s]
        failed, used, reserved = self._reserve(keys=[c.key for c in counters], args=args)
        return int(failed), [int(u) for u in used], [int(r) for r in reserved]

    def settle(self, keys: list[str], member: str, amount: int, actual: int | None) -> None:
        self._settle(keys=keys, args=[member, amount, "" if actual is None else actual])

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


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def open_store(url: str) -> MemoryStore | RedisStore:
    if not url or url == "memory":
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url)
    raise ValueError(f"unknown budget store {url!r}: use 'memory' or redis://host:port/db")
