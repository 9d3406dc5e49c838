"""The run lock of fleet mode: a per-frontier lease in Redis (crawler.run.lifecycle).

A data directory's run lock (crawler.runlock) would let one worker per machine; in
fleet mode workers share a data directory (each writes its own WARC files) and the
frontier is what must not be crawled twice at once. The seeding crawl takes the
frontier's lease (SET NX with a TTL, renewed by the heartbeat): a second ``gzarchive
crawl`` of the same frontier is refused (exit 6) while the first is alive. Taking it
starts a new crawl of the frontier: its duplicate filter is emptied (a recrawl fetches
again; requests still queued from a killed crawl stay queued), the workers' settings
are published, the fleet's copy of robots.txt is dropped (crawler.fleet.robots), and
the frontier is marked *seeding* until the seeds are queued.
Workers take no lease: they join (crawler.fleet.extension).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from crawler.fleet.context import fleet_context
from crawler.runlock import LockHeld

logger = logging.getLogger(__name__)

#: Settings the seeding crawl publishes for its workers (``gzarchive worker``).
PUBLISHED = ("PORTAL_URL", "PORTAL_SECTIONS", "PORTAL_ALL_SECTIONS", "PORTAL_RENDER",
             "PORTAL_MAX_ARTICLES")

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class FrontierLeaseHeld(LockHeld):
    """Another live seeding crawl holds the frontier's lease (exit 6, as a run lock)."""

    def __init__(self, message: str) -> None:  # noqa: D107 - not RunLock's (path, holder)
        Exception.__init__(self, message)
        self.path = None  # type: ignore[assignment]
        self.holder = None


class FrontierLease:
    """acquire()/release() and ``path`` like crawler.runlock.RunLock."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.context = fleet_context(crawler)
        config = self.context.config
        self.path = f"{config.redis_url} {config.keys.key('crawl')}"
        self._key = config.keys.key("crawl")
        self._renew = self.context.client.register_script(RENEW)
        self._release = self.context.client.register_script(RELEASE)
        self.held = False

    def acquire(self) -> None:
        config = self.context.config
        client = self.context.client
        if config.role != "crawl":
            return
        ms = int(config.lease_seconds * 1000)
        if not client.set(self._key, config.worker_id, nx=True, px=ms):
            holder = client.get(self._key)
            name = holder.decode() if isinstance(holder, bytes) else holder
            raise FrontierLeaseHeld(f"frontier {config.name!r} is being crawled by {name} (its lease "
                           f"{self._key} is renewed while it runs; workers join it with "
                           "`gzarchive worker`)")
        self.held = True
        self.context.lease = self
        settings = self.crawler.settings
        published = {name: settings.get(name) for name in PUBLISHED}
        pipe = client.pipeline(transaction=True)
        pipe.delete(config.keys.dupefilter, config.keys.key("robots"))
        pipe.set(config.keys.key("seeding"), config.worker_id, px=max(ms * 4, 60_000))
        pipe.set(config.keys.key("config"), json.dumps(published, ensure_ascii=False))
        pipe.execute()

    def renew(self) -> None:
        if self.held:
            config = self.context.config
            self._renew(keys=[self._key], args=[config.worker_id,
                                                int(config.lease_seconds * 1000)])

    def release(self) -> None:
        if self.held:
            self._release(keys=[self._key], args=[self.context.config.worker_id])
            self.held = False


def published_settings(client: Any, name: str) -> dict[str, Any] | None:
    """The settings the seeding crawl of frontier *name* published (None: never seeded)."""
    from storage.redis_frontier import FleetKeys

    raw = client.get(FleetKeys(name).key("config"))
    return json.loads(raw) if raw else None
