"""QueuePeak extension: the most requests waiting in the scheduler at once during the
run, as the stat ``scheduler/peak_queued`` (and ``counts.peak_queued`` in crawl_runs).

Scrapy's scheduler counts what it enqueues and hands out (``scheduler/enqueued``,
``scheduler/dequeued``); their difference when a request is scheduled is what waits.
A shared frontier (scrapy-redis) counts under other names: no peak there, the queue is
in Redis, not in this process's memory.
"""

from __future__ import annotations

from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

STAT = "scheduler/peak_queued"


class QueuePeak:
    """Keeps ``scheduler/peak_queued`` up to date as requests are scheduled."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> QueuePeak:
        assert crawler.stats is not None
        ext = cls(crawler.stats)
        crawler.signals.connect(ext.request_scheduled, signal=signals.request_scheduled)
        return ext

    def request_scheduled(self, request: Any, spider: Any) -> None:
        queued = (self.stats.get_value("scheduler/enqueued", 0)
                  - self.stats.get_value("scheduler/dequeued", 0))
        if queued > 0:
            self.stats.max_value(STAT, queued)
