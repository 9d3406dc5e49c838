"""scrapy-redis's scheduler, queue and duplicate filter, adapted to the fleet.

- :class:`LeasedQueue`: scrapy-redis's priority queue whose ``pop`` moves the request
  into this worker's in-flight hash (storage.redis_frontier) instead of dropping it; the
  request carries its entry id in ``meta["fleet_entry"]``.
- :class:`FleetDupeFilter`: scrapy-redis's filter fingerprinting with the project's
  fingerprinter (canonical URLs: twins and tracked links are one request), not its own.
- :class:`FleetScheduler`: a re-scheduled request (a retry) lets go of its old entry;
  the seeding crawl says when its seeds are queued.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler

from crawler.fleet.context import FleetContext, fleet_context
from storage.redis_frontier import entry_id

ENTRY = "fleet_entry"


class LeasedQueue(PriorityQueue):  # type: ignore[misc]
    """Priority queue whose pop keeps the request in flight until it is done."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        self.frontier = fleet_context(spider.crawler).frontier

    def pop(self, timeout: int = 0) -> Request | None:
        data = self.frontier.pop()
        if data is None:
            return None
        request: Request = self._decode_request(data)
        request.meta[ENTRY] = entry_id(data)
        return request


class FleetDupeFilter(RFPDupeFilter):  # type: ignore[misc]
    """Fingerprints by the crawler's REQUEST_FINGERPRINTER_CLASS."""

    fingerprinter: Any = None

    @classmethod
    def from_spider(cls, spider: Any) -> FleetDupeFilter:
        context = fleet_context(spider.crawler)
        dupefilter = cls(context.client, key=context.config.keys.dupefilter,
                         debug=spider.settings.getbool("DUPEFILTER_DEBUG"))
        dupefilter.fingerprinter = spider.crawler.request_fingerprinter
        return dupefilter

    def request_fingerprint(self, request: Request) -> str:
        if self.fingerprinter is None:
            return str(super().request_fingerprint(request))
        return str(self.fingerprinter.fingerprint(request).hex())

    def close(self, reason: str = "") -> None:
        """Keep the fingerprints: other workers still use them (``frontier clear``)."""


class FleetScheduler(Scheduler):  # type: ignore[misc]
    """scrapy-redis's scheduler on the fleet's keys (see the module doc)."""

    context: FleetContext
    seeding: bool = False

    @classmethod
    def from_crawler(cls, crawler: Any) -> FleetScheduler:
        context = fleet_context(crawler)
        keys = context.config.keys
        instance = cls(server=context.client, persist=True, queue_key=keys.queue,
                       queue_cls="crawler.fleet.queue.LeasedQueue",
                       dupefilter_key=keys.dupefilter,
                       dupefilter_cls="crawler.fleet.queue.FleetDupeFilter")
        instance.stats = crawler.stats
        instance.context = context
        instance.seeding = context.config.role == "crawl"
        return instance

    def enqueue_request(self, request: Request) -> bool:
        old = request.meta.pop(ENTRY, None)
        queued = bool(super().enqueue_request(request))
        if old is not None:  # re-scheduled (a retry): the new copy carries the work
            self.context.frontier.ack(old)
        if self.seeding and queued:
            self.seeding = False
            self.context.client.delete(self.context.config.keys.key("seeding"))
        return queued
