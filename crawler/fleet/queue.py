"""scrapy-redis's scheduler, queue and duplicate filter, adapted to the fleet.

- :class:`LeasedQueue`: scrapy-redis's priority queue whose ``pop`` moves the request
  into this worker's in-flight hash (storage.redis_frontier) instead of dropping it; the
  request carries its entry id in ``meta["fleet_entry"]``.
  A rendered request (``meta["playwright"]``) carries this process's browser capture
  (callbacks bound to its WARC writer, crawler.archive.browser), which neither pickles
  nor belongs to the worker that will render it: it is queued without them, marked,
  and the popping worker hooks in its own (crawler.rendering.listing_meta).
- :class:`FleetDupeFilter`: scrapy-redis's filter fingerprinting with the project's
  fingerprinter (canonical URLs: twins and tracked links are one request), not its own.
- :class:`FleetScheduler`: a re-scheduled request (a retry) lets go of its old entry;
  the seeding crawl says when its seeds are queued.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from scrapy import Request
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler

from crawler.fleet.context import FleetContext, fleet_context
from storage.redis_frontier import entry_id

logger = logging.getLogger(__name__)

ENTRY = "fleet_entry"
RENDER = "fleet_render"
#: request.meta of a rendered request that is bound to the process that made it.
PROCESS_BOUND = ("playwright_page_init_callback", "playwright_page_event_handlers",
                 "playwright_page_methods")


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

    def _encode_request(self, request: Request) -> bytes:
        if request.meta.get("playwright"):
            meta = {k: v for k, v in request.meta.items() if k not in PROCESS_BOUND}
            meta[RENDER] = True
            request = request.replace(meta=meta)
        return bytes(super()._encode_request(request))

    def _decode_request(self, data: bytes) -> Request:
        request: Request = super()._decode_request(data)
        if request.meta.pop(RENDER, False):
            from crawler import rendering

            request.meta.update(rendering.listing_meta(self.spider.crawler))
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
        try:
            queued = bool(super().enqueue_request(request))
        except (TypeError, AttributeError, pickle.PicklingError, ValueError) as exc:
            # Not lost silently in a task nobody awaits: counted and said.
            logger.error("fleet: %s cannot be queued in the shared frontier: %s",
                         request.url, exc)
            self.stats.inc_value("fleet/errors/unqueueable")
            if old is not None:
                request.meta[ENTRY] = old
            return False
        if old is not None:  # re-scheduled (a retry): the new copy carries the work
            self.context.frontier.ack(old)
        if self.seeding and queued:
            self.seeding = False
            self.context.client.delete(self.context.config.keys.key("seeding"))
        return queued
