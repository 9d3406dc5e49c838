"""What fleet mode changes in a crawl's settings, and its crawl state backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scrapy.settings import BaseSettings

from crawler.fleet.config import enabled, new_worker_id

EXTENSION = "crawler.fleet.extension.FleetExtension"
LEASES = "crawler.fleet.leases.FleetLeases"
POLITENESS = "crawler.fleet.politeness.SharedPoliteness"


def fleet_overrides(settings: BaseSettings, redis_url: str, role: str,
                    name: str = "default", wait: bool = False) -> dict[str, Any]:
    """Settings of a fleet crawl (``--redis-url``) on top of *settings*."""
    extensions = settings.getdict("EXTENSIONS")
    extensions[EXTENSION] = 1   # after the lifecycle (0): the lease is taken first
    spider_mw = settings.getdict("SPIDER_MIDDLEWARES")
    spider_mw[LEASES] = 10      # outermost but for Scrapy's start middleware
    downloader_mw = settings.getdict("DOWNLOADER_MIDDLEWARES")
    downloader_mw[POLITENESS] = 900
    return {
        "FLEET_REDIS_URL": redis_url, "FLEET_ROLE": role, "FLEET_NAME": name,
        "FLEET_WAIT": wait,
        "FLEET_WORKER_ID": settings.get("FLEET_WORKER_ID") or new_worker_id(),
        "SCHEDULER": "crawler.fleet.queue.FleetScheduler",
        "DUPEFILTER_CLASS": "crawler.fleet.queue.FleetDupeFilter",
        "REDIS_URL": redis_url,
        "DOWNLOAD_DELAY_JITTER": 0,
        "EXTENSIONS": extensions, "SPIDER_MIDDLEWARES": spider_mw,
        "DOWNLOADER_MIDDLEWARES": downloader_mw,
    }


def build_crawl_state(crawler: Any, default_path: Path) -> Any:
    """The spider's crawl state: shared in Redis in fleet mode, else DATA/state's file."""
    if enabled(crawler.settings):
        from crawler.fleet.context import fleet_context

        return fleet_context(crawler).state
    from storage.crawlstate import CrawlState

    return CrawlState(default_path)


def build_run_lock(crawler: Any, data_dir: Path) -> Any:
    """The crawl's run lock: the frontier's lease in fleet mode, else DATA's lock file."""
    if enabled(crawler.settings):
        from crawler.fleet.lease import FrontierLease

        return FrontierLease(crawler)
    from crawler.runlock import RunLock

    return RunLock(data_dir)
