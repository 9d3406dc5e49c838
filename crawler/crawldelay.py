"""robots.txt ``Crawl-delay``: a floor under each host's download delay, throttle on or off.

``CrawlDelayFloors`` reads the Crawl-delay for our user agent from the parser that
Scrapy's RobotsTxtMiddleware announces on ``robots_parsed`` and keeps it per downloader
slot; every request reaching the downloader re-applies it to its slot (also a slot that
Scrapy collected and re-created): the slot's delay becomes at least the Crawl-delay and
its jitter 0, so no two requests to that host start closer than the Crawl-delay (Scrapy
starts one request per delay on a slot with a delay, whatever its concurrency).
``crawler.throttle.RecoveringThrottle`` owns one and never sets a delay below it; with
``AUTOTHROTTLE_ENABLED`` off the ``CrawlDelay`` extension owns it instead, so the delay
asked for holds whatever the other politeness settings. It is honoured when
``ROBOTSTXT_OBEY`` and ``AUTOTHROTTLE_OBEY_CRAWL_DELAY`` are on, capped at
``AUTOTHROTTLE_MAX_DELAY`` (a warning and ``throttle/robots/crawl_delay_capped``).
Stats: ``throttle/robots/crawl_delay_ms`` (the largest honoured).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings
from scrapy.utils.conf import build_component_list

if TYPE_CHECKING:
    from scrapy.core.downloader import Downloader, Slot
    from scrapy.crawler import Crawler
    from scrapy.robotstxt import RobotParser

logger = logging.getLogger(__name__)

THROTTLE = "crawler.throttle.RecoveringThrottle"


@dataclass(frozen=True)
class CrawlDelayConfig:
    obey: bool
    user_agent: str
    max_delay: float            # AUTOTHROTTLE_MAX_DELAY caps what robots.txt may ask

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> CrawlDelayConfig:
        return cls(
            obey=(settings.getbool("ROBOTSTXT_OBEY")
                  and settings.getbool("AUTOTHROTTLE_OBEY_CRAWL_DELAY")),
            user_agent=str(settings.get("ROBOTSTXT_USER_AGENT") or settings.get("USER_AGENT")),
            max_delay=settings.getfloat("AUTOTHROTTLE_MAX_DELAY"),
        )


class CrawlDelayFloors:
    """Crawl-delay per downloader slot, applied to the slot as a floor (see module doc)."""

    def __init__(self, crawler: Crawler, config: CrawlDelayConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.floors: dict[str, float] = {}      # slot key -> robots.txt Crawl-delay
        if config.obey:
            crawler.signals.connect(self._robots_parsed, signal=signals.robots_parsed)
            crawler.signals.connect(self._request_reached,
                                    signal=signals.request_reached_downloader)

    def get(self, key: str) -> float:
        return self.floors.get(key, 0.0)

    @property
    def downloader(self) -> Downloader:
        assert self.crawler.engine is not None
        return self.crawler.engine.downloader

    def _robots_parsed(self, robotparser: RobotParser, request: Request) -> None:
        asked = robotparser.crawl_delay(self.config.user_agent)
        if asked is None or asked <= 0:
            return
        key = self.downloader.get_slot_key(request)
        floor = min(float(asked), self.config.max_delay)
        stats: Any = self.crawler.stats
        if floor < asked:
            logger.warning("robots.txt of %s asks a Crawl-delay of %.1f s; "
                           "AUTOTHROTTLE_MAX_DELAY caps it at %.1f s", key, asked, floor)
            stats.inc_value("throttle/robots/crawl_delay_capped")
        self.floors[key] = max(floor, self.floors.get(key, 0.0))
        logger.info("robots.txt of %s: Crawl-delay %.1f s honoured", key, self.floors[key])
        stats.max_value("throttle/robots/crawl_delay_ms", int(self.floors[key] * 1000))
        slot = self.downloader.slots.get(key)
        if slot is not None:
            self.apply(key, slot)

    def _request_reached(self, request: Request, spider: Any = None) -> None:
        key = request.meta.get("download_slot")
        if key in self.floors:
            slot = self.downloader.slots.get(key)
            if slot is not None:
                self.apply(key, slot)

    def apply(self, key: str, slot: Slot) -> None:
        slot.jitter = 0.0
        slot.delay = max(slot.delay, self.floors[key])


class CrawlDelay:
    """Extension: the Crawl-delay floor when no RecoveringThrottle runs (throttle off)."""

    def __init__(self, floors: CrawlDelayFloors) -> None:
        self.floors = floors

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlDelay:
        settings = crawler.settings
        config = CrawlDelayConfig.from_settings(settings)
        if not config.obey:
            raise NotConfigured("ROBOTSTXT_OBEY or AUTOTHROTTLE_OBEY_CRAWL_DELAY is off")
        if settings.getbool("AUTOTHROTTLE_ENABLED") and THROTTLE in build_component_list(
                settings.getwithbase("EXTENSIONS")):
            raise NotConfigured("RecoveringThrottle holds the Crawl-delay")
        return cls(CrawlDelayFloors(crawler, config))
