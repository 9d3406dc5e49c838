"""The shared frontier's bookkeeping in Redis: who holds which request, and reclaiming.

scrapy-redis keeps the queue (a sorted set of serialised requests) and the duplicate
filter (a set of fingerprints); it pops a request when a worker takes it, so a worker
killed with requests in flight would lose them. Here a pop *moves* the request into
the worker's in-flight hash (field: SHA-1 of the serialised request) in one Lua
script. An entry leaves it when the request is done (``ack``), or moves to the
worker's *held* hash while its article waits for the store (``hold``; released by
``release(urls)`` once the article is durably stored). Each worker renews a lease
(``alive`` key with a TTL); ``reclaim`` puts every entry of a worker whose lease ran
out back into the queue, counted per worker, so another worker fetches it.

Plain redis-py; no Scrapy here (the queue class in crawler.fleet.queue adapts this).
Every key of one frontier starts with ``gzarchive:{frontier}:`` (:class:`FleetKeys`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import redis

POP = """
local item = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #item == 0 then return false end
redis.call('ZREM', KEYS[1], item[1])
redis.call('HSET', KEYS[2], redis.sha1hex(item[1]), item[2] .. '\\n' .. item[1])
redis.call('DEL', KEYS[3])
return item[1]
"""

# KEYS: inflight, done; ARGV: entry, worker. One round trip per finished request.
ACK = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
return 1
"""

HOLD = """
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], entry)
redis.call('SADD', KEYS[3], ARGV[2] .. ' ' .. ARGV[1])
return 1
"""

# KEYS: leases:{url}; ARGV: held-hash prefix. Every holder of the article lets go.
RELEASE = """
local n = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local sep = string.find(member, ' ', 1, true)
  n = n + redis.call('HDEL', ARGV[1] .. string.sub(member, 1, sep - 1),
                     string.sub(member, sep + 1))
end
redis.call('DEL', KEYS[1])
return n
"""

# KEYS: queue, inflight, held, alive, reclaimed; ARGV: worker. Only a worker whose
# lease ran out is reclaimed; run twice at once, the second finds nothing.
RECLAIM = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local n = 0
for k = 2, 3 do
  local entries = redis.call('HGETALL', KEYS[k])
  for i = 1, #entries, 2 do
    local entry = entries[i + 1]
    local sep = string.find(entry, '\\n', 1, true)
    redis.call('ZADD', KEYS[1], tonumber(string.sub(entry, 1, sep - 1)),
               string.sub(entry, sep + 1))
    n = n + 1
  end
  redis.call('DEL', KEYS[k])
end
if n > 0 then
  redis.call('HINCRBY', KEYS[5], ARGV[1], n)
  redis.call('HINCRBY', KEYS[5], '*total', n)
end
return n
"""


@dataclass(frozen=True)
class FleetKeys:
    """Key names of one frontier (one crawl shared by many workers)."""

    frontier: str = "default"

    @property
    def prefix(self) -> str:
        return f"gzarchive:{self.frontier}:"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def queue(self) -> str:
        return self.key("requests")

    @property
    def dupefilter(self) -> str:
        return self.key("dupefilter")

    def inflight(self, worker: str) -> str:
        return self.key("inflight", worker)

    def held(self, worker: str) -> str:
        return self.key("held", worker)

    def alive(self, worker: str) -> str:
        return self.key("alive", worker)

    def idle(self, worker: str) -> str:
        return self.key("idle", worker)

    def leases(self, url: str) -> str:
        return self.key("leases", url)

    def host_next(self, host: str) -> str:
        return self.key("host", host)


def entry_id(data: bytes) -> str:
    """The in-flight field of a serialised request (Lua's ``redis.sha1hex``)."""
    return hashlib.sha1(data).hexdigest()


class Frontier:
    """One worker's view of the shared frontier's leases (see the module doc)."""

    def __init__(self, client: redis.Redis, keys: FleetKeys, worker: str,
                 lease_seconds: float = 15.0) -> None:
        self.r = client
        self.keys = keys
        self.worker = worker
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self._pop = client.register_script(POP)
        self._ack = client.register_script(ACK)
        self._hold = client.register_script(HOLD)
        self._release = client.register_script(RELEASE)
        self._reclaim = client.register_script(RECLAIM)

    # -- this worker ------------------------------------------------------------------
    def register(self, role: str, **info: Any) -> None:
        doc = {"role": role, "started": time.time(), "state": "working", **info}
        self.r.hset(self.keys.key("workers"), self.worker, json.dumps(doc))
        self.heartbeat()

    def heartbeat(self) -> None:
        self.r.set(self.keys.alive(self.worker), "1", px=self.lease_ms)

    def set_state(self, state: str) -> None:
        raw = self.r.hget(self.keys.key("workers"), self.worker)
        doc = json.loads(raw) if raw else {}
        doc["state"] = state
        doc["ended" if state != "working" else "started"] = time.time()
        self.r.hset(self.keys.key("workers"), self.worker, json.dumps(doc))

    def leave(self) -> None:
        self.r.delete(self.keys.alive(self.worker), self.keys.idle(self.worker))

    def pop(self) -> bytes | None:
        """The next request, moved into this worker's in-flight hash (None: empty)."""
        data = self._pop(keys=[self.keys.queue, self.keys.inflight(self.worker),
                               self.keys.idle(self.worker)])
        return bytes(data) if data is not None else None

    def ack(self, entry: str) -> bool:
        return bool(self._ack(keys=[self.keys.inflight(self.worker), self.keys.key("done")],
                              args=[entry, self.worker]))

    def hold(self, entry: str, url: str) -> bool:
        """Keep *entry* until the article *url* is stored (``release``)."""
        return bool(self._hold(keys=[self.keys.inflight(self.worker),
                                     self.keys.held(self.worker), self.keys.leases(url)],
                               args=[entry, self.worker]))

    def release(self, urls: list[str]) -> int:
        released = 0
        for url in urls:
            released += int(self._release(keys=[self.keys.leases(url)],
                                          args=[self.keys.key("held", "")]))
        if released:
            self.r.hincrby(self.keys.key("done"), self.worker, released)
        return released

    def sweep_active(self) -> int:
        """Forget this worker's in-flight entries (call when its engine is idle: every
        request it took is finished, some through paths that do not ack)."""
        return int(self.r.delete(self.keys.inflight(self.worker)))

    def mark_idle(self, idle: bool) -> None:
        if idle:
            self.r.set(self.keys.idle(self.worker), "1", px=self.lease_ms)
        else:
            self.r.delete(self.keys.idle(self.worker))

    def requeue_own(self) -> int:
        """Put this worker's in-flight and held entries back (an interrupted worker)."""
        self.r.delete(self.keys.alive(self.worker))
        return int(self._reclaim(keys=self._reclaim_keys(self.worker), args=[self.worker]))

    def drop_held(self) -> int:
        """Forget held entries whose article was never stored (dropped or failed)."""
        n = int(self.r.hlen(self.keys.held(self.worker)))
        self.r.delete(self.keys.held(self.worker), self.keys.inflight(self.worker))
        return n

    # -- the fleet --------------------------------------------------------------------
    def workers(self) -> dict[str, dict[str, Any]]:
        raw = self.r.hgetall(self.keys.key("workers"))
        return {k.decode() if isinstance(k, bytes) else k: json.loads(v)
                for k, v in raw.items()}

    def reclaim_dead(self) -> dict[str, int]:
        """Requeue the entries of every worker whose lease ran out: {worker: n}."""
        out: dict[str, int] = {}
        for worker in self.workers():
            if worker == self.worker:
                continue
            n = int(self._reclaim(keys=self._reclaim_keys(worker), args=[worker]))
            if n:
                out[worker] = n
                self.r.hset(self.keys.key("workers"), worker, json.dumps(
                    {**self.workers().get(worker, {}), "state": "dead (reclaimed)"}))
        return out

    def must_wait(self) -> bool:
        """Whether this worker, idle, must stay: work may still come from others (their
        requests in flight, or held ones of a worker that is not idle: it may be dead
        with its lease not yet run out) or the seeding crawl has not queued its seeds."""
        if self.r.exists(self.keys.key("seeding")):
            return True
        for worker in self.workers():
            if worker == self.worker:
                continue
            if self.r.hlen(self.keys.inflight(worker)):
                return True
            if self.r.hlen(self.keys.held(worker)) and not self.r.exists(self.keys.idle(worker)):
                return True
        return False

    def queued(self) -> int:
        return int(self.r.zcard(self.keys.queue))

    def reclaimed(self) -> dict[str, int]:
        raw = self.r.hgetall(self.keys.key("reclaimed"))
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

    def _reclaim_keys(self, worker: str) -> list[str]:
        return [self.keys.queue, self.keys.inflight(worker), self.keys.held(worker),
                self.keys.alive(worker), self.keys.key("reclaimed")]

    def clear(self) -> int:
        """Delete every key of this frontier; how many."""
        keys = list(self.r.scan_iter(match=self.keys.prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            self.r.delete(*keys[i:i + 500])
        return len(keys)


def entries_of(client: redis.Redis, key: str) -> list[bytes]:
    """The serialised requests of an in-flight or held hash."""
    return [v.split(b"\n", 1)[1] for v in client.hvals(key) if isinstance(v, bytes)]


__all__ = ["FleetKeys", "Frontier", "entries_of", "entry_id"]
