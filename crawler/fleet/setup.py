"""What fleet mode changes in a crawl's settings, and its crawl state backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scrapy.settings import BaseSettings

from crawler.fleet.config import enabled, new_worker_id

EXTENSION = "crawler.fleet.extension.FleetExtension"
LEASES = "crawler.fleet.leases.FleetLeases"
POLITENESS = "crawler.fleet.politeness.SharedPoliteness"
SCHEDULER = "crawler.fleet.queue.FleetScheduler"
ROBOTS = "crawler.fleet.robots.FleetRobotsTxt"
ROBOTS_SCRAPY = "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"


def fleet_overrides(settings: BaseSettings, redis_url: str, role: str,
                    name: str = "default", wait: bool = False) -> dict[str, Any]:
    """Settings of a fleet crawl (``--redis-url``) on top of *settings*."""
    extensions = settings.getdict("EXTENSIONS")
    extensions[EXTENSION] = 1   # after the lifecycle (0): the lease is taken first
    spider_mw = settings.getdict("SPIDER_MIDDLEWARES")
    spider_mw[LEASES] = 10      # outermost but for Scrapy's start middleware
    downloader_mw = settings.getdict("DOWNLOADER_MIDDLEWARES")
    downloader_mw[POLITENESS] = 900
    downloader_mw[ROBOTS_SCRAPY] = None
    downloader_mw[ROBOTS] = 100     # where Scrapy's robots.txt middleware runs
    return {
        "FLEET_REDIS_URL": redis_url, "FLEET_ROLE": role, "FLEET_NAME": name,
        "FLEET_WAIT": wait,
        "FLEET_WORKER_ID": settings.get("FLEET_WORKER_ID") or new_worker_id(),
        "SCHEDULER": SCHEDULER,
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


def scrapy_fleet(settings: BaseSettings) -> None:
    """``scrapy crawl section -s FLEET_REDIS_URL=redis://…``: the settings ``gzarchive crawl
    --redis-url`` sets, on the project's command line (crawler/commands/crawl.py). It is
    the seeding crawl (workers join with ``gzarchive worker``); a fleet needs one MongoDB
    (MONGODB_URI, setting or environment). SettingsError (exit 2) otherwise."""
    import os

    from crawler.config import ConfigError
    from crawler.fleet.config import FleetConfig
    from crawler.run.errors import SettingsError

    if not enabled(settings) or settings.get("SCHEDULER") == SCHEDULER:
        return
    if (settings.get("FLEET_ROLE") or "crawl") != "crawl":
        raise SettingsError("FLEET_ROLE: `scrapy crawl` seeds the frontier; workers join "
                            "with `gzarchive worker --redis-url URL`")
    if not (settings.get("MONGODB_URI") or os.environ.get("MONGODB_URI")):
        raise SettingsError("FLEET_REDIS_URL needs MONGODB_URI (setting or environment): "
                            "every worker writes to one MongoDB")
    settings.setdict(fleet_overrides(settings, str(settings.get("FLEET_REDIS_URL")), "crawl",
                                     str(settings.get("FLEET_NAME") or "default"),
                                     settings.getbool("FLEET_WAIT")), priority="cmdline")
    try:
        FleetConfig.from_settings(settings)
    except ConfigError as exc:
        raise SettingsError(str(exc)) from exc


def check_redis(settings: BaseSettings) -> None:
    """In fleet mode, that the frontier's Redis answers (RunError, exit 7, otherwise)."""
    if not enabled(settings):
        return
    import redis

    from crawler.run.errors import RunError
    from crawler.run.exits import EXIT_STORE

    url = str(settings.get("FLEET_REDIS_URL"))
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except (redis.RedisError, ValueError) as exc:
        raise RunError(f"redis unreachable at {url}: {exc}", EXIT_STORE) from exc
