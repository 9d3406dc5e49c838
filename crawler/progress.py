"""ProgressLog extension: one progress line every PROGRESS_INTERVAL seconds."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

logger = logging.getLogger(__name__)


class ProgressLog:
    """Logs pages fetched, articles stored and failures while the crawl runs."""

    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self._task: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressLog:
        interval = crawler.settings.getfloat("PROGRESS_INTERVAL", 10.0)
        if interval <= 0:
            raise NotConfigured("PROGRESS_INTERVAL <= 0")
        ext = cls(crawler, interval)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        self._task = task.LoopingCall(self.log)
        self._task.start(self.interval, now=False)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self._task is not None and self._task.running:
            self._task.stop()

    def snapshot(self) -> dict[str, int]:
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        failures = sum(v for k, v in stats.items() if k.startswith("portal/failures/"))
        return {
            "pages": int(stats.get("downloader/response_count", 0)),
            "articles": int(stats.get("item_scraped_count", 0)),
            "stored_new": int(stats.get("archive/mongo/new", 0)),
            "failures": int(failures),
        }

    def log(self) -> None:
        snap = self.snapshot()
        logger.info("progress: %(pages)d pages fetched, %(articles)d articles, "
                    "%(stored_new)d new in store, %(failures)d failures", snap)
