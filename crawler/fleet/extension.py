"""A worker's life in the fleet: joining, heartbeat, idling, reclaiming, leaving.

- Joins the frontier's worker list and renews its lease every third of
  FLEET_LEASE_SECONDS (and the seeding crawl's run lease, crawler.fleet.lease).
- Idle (nothing scheduled locally, nothing downloading): its own in-flight entries are
  finished requests (errbacks do not ack), so they are swept; the leases of workers
  that went silent are reclaimed (their requests go back to the queue, counted); it
  stays while the queue has requests, while other workers still work (their requests
  may queue more) or with FLEET_WAIT, looking again every FLEET_POLL_INTERVAL;
  otherwise the frontier is empty and the worker finishes.
- Closed (after the store's last flush): section links another worker found for
  articles this fleet stored are merged into them; held requests whose article was
  never stored are dropped (``finished``) or put back in the queue (interrupted).
Stats ``fleet/*``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from twisted.internet import task

from crawler.fleet.context import FleetContext, fleet_context

logger = logging.getLogger(__name__)


class FleetExtension:
    """See the module doc; built only in fleet mode (FLEET_REDIS_URL)."""

    def __init__(self, crawler: Any, context: FleetContext) -> None:
        self.crawler = crawler
        self.context = context
        self.frontier = context.frontier
        self._beat: task.LoopingCall | None = None
        self._poll: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> FleetExtension:
        if not crawler.settings.get("FLEET_REDIS_URL"):
            raise NotConfigured("FLEET_REDIS_URL is not set")
        ext = cls(crawler, fleet_context(crawler))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    def spider_opened(self, spider: Any) -> None:
        config = self.context.config
        self.frontier.register(config.role, pid=os.getpid(), data_dir=str(
            self.crawler.settings.get("DATA_DIR")))
        logger.info("fleet: %s %s joined frontier %s", config.role, config.worker_id,
                    config.name)
        self._beat = task.LoopingCall(self._heartbeat)
        self._beat.start(config.lease_seconds / 3, now=False)
        self._poll = task.LoopingCall(self._wake)
        self._poll.start(config.poll_interval, now=False)

    def _heartbeat(self) -> None:
        self.frontier.heartbeat()
        lease = self.context.lease
        if lease is not None:
            lease.renew()

    def _wake(self) -> None:
        # Scrapy looks for work every 5 s when idle; a fleet worker looks sooner.
        slot = getattr(self.crawler.engine, "_slot", None)
        if slot is not None and getattr(slot, "nextcall", None) is not None:
            slot.nextcall.schedule()

    def spider_idle(self, spider: Any) -> None:
        config = self.context.config
        if config.role == "crawl":
            self.context.client.delete(config.keys.key("seeding"))
        swept = self.frontier.sweep_active()
        if swept:
            self.stats.inc_value("fleet/requests/acked_idle", swept)
        for worker, n in self.frontier.reclaim_dead().items():
            self.stats.inc_value("fleet/reclaimed", n)
            logger.warning("fleet: worker %s went silent; %d of its request(s) reclaimed",
                           worker, n)
        if self.frontier.queued():
            raise DontCloseSpider("requests queued in the frontier")
        self.frontier.mark_idle(True)
        if config.wait or self.frontier.must_wait():
            raise DontCloseSpider("other workers are still working")
        logger.info("fleet: frontier %s is empty: %s finishes", config.name, config.worker_id)

    def spider_closed(self, spider: Any, reason: str) -> None:
        for call in (self._beat, self._poll):
            if call is not None and call.running:
                call.stop()
        try:
            self._merge_late(spider)
        finally:
            if reason == "finished":
                dropped = self.frontier.drop_held()
                if dropped:
                    self.stats.inc_value("fleet/requests/dropped_unstored", dropped)
            else:
                back = self.frontier.requeue_own()
                if back:
                    logger.warning("fleet: %d request(s) of %s put back in the frontier "
                                   "(%s)", back, self.context.config.worker_id, reason)
                    self.stats.inc_value("fleet/requests/requeued", back)
            self.frontier.set_state(f"finished ({reason})")
            self.frontier.leave()

    def _merge_late(self, spider: Any) -> None:
        """Sections and URLs found by other workers for articles one of them stored."""
        from storage.mongo.articles import ArticleRepository
        from storage.mongo.client import open_database
        from storage.mongo.errors import StoreUnavailable

        state = self.context.state
        late = state.late()
        if not late:
            return
        settings = self.crawler.settings
        try:
            with open_database(settings.get("MONGODB_URI") or None,
                               Path(settings.get("DATA_DIR") or "data"),
                               db_name=settings.get("MONGODB_DATABASE", "gzarchive")) as (_c, db):
                repo = ArticleRepository(db)
                for url in late:
                    sections, urls = state.links(url)
                    if repo.touch(url, sections, urls):
                        state.merged(url)
                        self.stats.inc_value("fleet/links_merged")
        except StoreUnavailable as exc:
            # Left in the frontier: the next worker to stop merges them.
            logger.error("fleet: %d late section link(s) not merged (database "
                         "unreachable: %s)", len(late), exc)
            self.stats.inc_value("fleet/links_unmerged", len(late))

