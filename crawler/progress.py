"""ProgressLog extension: a progress line every PROGRESS_INTERVAL seconds, or a live
rich progress display on a terminal (PROGRESS_BAR; the CLI turns it on when stderr is a
terminal and --quiet is not given)."""

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

    def __init__(self, crawler: Crawler, interval: float, bar: bool = False) -> None:
        self.crawler = crawler
        self.interval = interval
        self.bar = bar
        self._task: task.LoopingCall | None = None
        self._progress: Any = None
        self._task_id: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressLog:
        interval = crawler.settings.getfloat("PROGRESS_INTERVAL", 10.0)
        if interval <= 0:
            raise NotConfigured("PROGRESS_INTERVAL <= 0")
        ext = cls(crawler, interval, crawler.settings.getbool("PROGRESS_BAR", False))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        if self.bar:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                      TimeElapsedColumn(), console=Console(stderr=True),
                                      transient=True)
            self._progress.start()
            self._task_id = self._progress.add_task("starting", total=None)
            self._task = task.LoopingCall(self.update_bar)
            self._task.start(0.5, now=True)
            return
        self._task = task.LoopingCall(self.log)
        self._task.start(self.interval, now=False)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self._task is not None and self._task.running:
            self._task.stop()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def update_bar(self) -> None:
        snap = self.snapshot()
        self._progress.update(
            self._task_id,
            description=(f"{snap['pages']} pages · {snap['articles']} articles · "
                         f"{snap['stored_new']} new in store · {snap['failures']} failures"))

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
