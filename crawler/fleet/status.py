"""What ``gzarchive frontier status`` shows: queued, in flight, reclaimed, per host and
per worker (plain data; crawler/cli/frontier.py prints it)."""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis

from storage.redis_frontier import FleetKeys, Frontier, entries_of

#: Requests decoded to count them per host (the queue itself is counted in full).
SAMPLE = 20_000


@dataclass
class WorkerStatus:
    worker: str
    role: str
    state: str
    alive: bool
    in_flight: int
    held: int
    done: int
    reclaimed: int


@dataclass
class FrontierStatus:
    name: str
    queued: int
    in_flight: int
    held: int
    reclaimed: int
    seeded: bool
    crawl_lease: str | None
    hosts: Counter[str] = field(default_factory=Counter)
    workers: list[WorkerStatus] = field(default_factory=list)
    pending_articles: int = 0


def _host(data: bytes) -> str:
    try:
        url = pickle.loads(data).get("url", "")  # noqa: S301 - our own queue's records
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        return "?"
    return urlsplit(url).netloc or "?"


def frontier_status(client: redis.Redis, name: str) -> FrontierStatus:
    keys = FleetKeys(name)
    view = Frontier(client, keys, worker="")
    reclaimed = view.reclaimed()
    done = {(k.decode() if isinstance(k, bytes) else k): int(v)
            for k, v in client.hgetall(keys.key("done")).items()}
    hosts: Counter[str] = Counter()
    for data in client.zrange(keys.queue, 0, SAMPLE - 1):
        if isinstance(data, bytes):
            hosts[_host(data)] += 1
    workers = []
    for worker, info in sorted(view.workers().items(), key=lambda kv: kv[1].get("started", 0)):
        flying = entries_of(client, keys.inflight(worker))
        held = entries_of(client, keys.held(worker))
        for data in flying + held:
            hosts[_host(data)] += 1
        workers.append(WorkerStatus(worker, str(info.get("role", "?")),
                                    str(info.get("state", "?")),
                                    bool(client.exists(keys.alive(worker))), len(flying),
                                    len(held), done.get(worker, 0), reclaimed.get(worker, 0)))
    lease = client.get(keys.key("crawl"))
    return FrontierStatus(
        name=name, queued=int(client.zcard(keys.queue)),
        in_flight=sum(w.in_flight for w in workers), held=sum(w.held for w in workers),
        reclaimed=reclaimed.get("*total", 0), seeded=bool(client.exists(keys.key("config"))),
        crawl_lease=lease.decode() if isinstance(lease, bytes) else lease, hosts=hosts,
        workers=workers, pending_articles=int(client.zcard(keys.key("pending"))))


def as_dict(status: FrontierStatus) -> dict[str, Any]:
    return {"frontier": status.name, "queued": status.queued, "in_flight": status.in_flight,
            "held": status.held, "reclaimed": status.reclaimed, "seeded": status.seeded,
            "crawl_lease": status.crawl_lease, "pending_articles": status.pending_articles,
            "hosts": dict(status.hosts),
            "workers": [vars(w) for w in status.workers]}
