"""A per-host throttle that recovers after a slow answer; replaces Scrapy's AutoThrottle.

Scrapy's AutoThrottle only lowers a slot's delay on a 200: after one slow answer, a
recrawl made of 304s keeps the high delay to the end (measured: 6-8 s per request
after one 12-second answer). Here every answer that is cheap for the server is
latency evidence like a 200: 2xx and 304 always, redirects and 404/410 when their
body is small (``AUTOTHROTTLE_CHEAP_STATUSES``, ``AUTOTHROTTLE_CHEAP_MAX_SIZE``). The
delay aims, as AutoThrottle's does, at ``AUTOTHROTTLE_TARGET_CONCURRENCY`` requests in
flight: after each answer it moves half-way to ``latency / target``, down at once, up by
at most ``AUTOTHROTTLE_BACKOFF_FACTOR`` per answer (from the start delay at least).
AutoThrottle jumps up at once: one 12-second answer among fast ones cost ~12 s of pauses
before the delay was back, half-way ~6 s, the bounded rise ~1 s; a server that stays slow
reaches ``latency / target`` after a few answers. It still slows down: on slow
answers as said, multiplicatively (``AUTOTHROTTLE_BACKOFF_FACTOR``,
at least ``AUTOTHROTTLE_START_DELAY``) on 408/429/5xx and on download errors
(timeouts, refused connections), and to the server's ``Retry-After`` (parsed by
``crawler.retry``, its one home). Other answers (403, large error pages) can only raise
the delay, as in Scrapy. A robots.txt ``Crawl-delay`` for our user agent is a floor
for its host (``crawler.crawldelay.CrawlDelayFloors``, which also holds it with the
throttle off); such a slot loses its jitter, so no two requests to that host start
closer than the Crawl-delay. Every delay stays within
``DOWNLOAD_DELAY``..``AUTOTHROTTLE_MAX_DELAY``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.settings import BaseSettings

from crawler.config import ConfigError
from crawler.crawldelay import CrawlDelayConfig, CrawlDelayFloors
from crawler.retry import response_retry_after

if TYPE_CHECKING:
    from scrapy.core.downloader import Downloader
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

EVIDENCE, BACKOFF, OTHER = "evidence", "backoff", "other"


@dataclass(frozen=True)
class ThrottleConfig:
    """The AUTOTHROTTLE_* settings (Scrapy's names and meaning, plus ours), checked."""

    start_delay: float
    max_delay: float
    min_delay: float            # DOWNLOAD_DELAY
    target_concurrency: float
    backoff_factor: float
    cheap_statuses: frozenset[int]
    cheap_max_size: int
    retry_after_max: float      # RETRY_AFTER_MAX, shared with crawler.retry
    debug: bool

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> ThrottleConfig:
        # defaults: Scrapy's for its AUTOTHROTTLE_* names, crawler/settings.py for ours
        cfg = cls(
            start_delay=settings.getfloat("AUTOTHROTTLE_START_DELAY"),
            max_delay=settings.getfloat("AUTOTHROTTLE_MAX_DELAY"),
            min_delay=settings.getfloat("DOWNLOAD_DELAY"),
            target_concurrency=settings.getfloat("AUTOTHROTTLE_TARGET_CONCURRENCY"),
            backoff_factor=settings.getfloat("AUTOTHROTTLE_BACKOFF_FACTOR"),
            cheap_statuses=frozenset(int(s) for s in settings.getlist(
                "AUTOTHROTTLE_CHEAP_STATUSES")),
            cheap_max_size=settings.getint("AUTOTHROTTLE_CHEAP_MAX_SIZE"),
            retry_after_max=settings.getfloat("RETRY_AFTER_MAX", 120.0),
            debug=settings.getbool("AUTOTHROTTLE_DEBUG"),
        )
        if cfg.target_concurrency <= 0:
            raise ConfigError("AUTOTHROTTLE_TARGET_CONCURRENCY must be > 0, "
                              f"got {cfg.target_concurrency}")
        if not 0 <= cfg.min_delay <= cfg.max_delay:
            raise ConfigError(f"DOWNLOAD_DELAY ({cfg.min_delay}) must be between 0 and "
                              f"AUTOTHROTTLE_MAX_DELAY ({cfg.max_delay})")
        if cfg.start_delay > cfg.max_delay:
            raise ConfigError(f"AUTOTHROTTLE_START_DELAY ({cfg.start_delay}) exceeds "
                              f"AUTOTHROTTLE_MAX_DELAY ({cfg.max_delay})")
        if cfg.backoff_factor < 1:
            raise ConfigError(f"AUTOTHROTTLE_BACKOFF_FACTOR must be >= 1, got {cfg.backoff_factor}")
        if any(s < 300 or 500 <= s or s == 429 for s in cfg.cheap_statuses):
            raise ConfigError("AUTOTHROTTLE_CHEAP_STATUSES takes 3xx/4xx codes other than "
                              f"429, got {sorted(cfg.cheap_statuses)}")
        return cfg

    def classify(self, response: Response) -> str:
        """EVIDENCE (may lower the delay), BACKOFF (raises it) or OTHER (may only raise)."""
        status = response.status
        if status in (408, 429) or status >= 500:
            return BACKOFF
        if 200 <= status < 300 or status == 304:
            return EVIDENCE
        if status in self.cheap_statuses and len(response.body) <= self.cheap_max_size:
            return EVIDENCE
        return OTHER

    def next_delay(self, current: float, latency: float | None, verdict: str,
                   retry_after: float | None = None) -> float:
        """The slot's next delay; ``latency`` None means the download failed."""
        target = (latency or 0.0) / self.target_concurrency
        # one slow answer raises the delay by BACKOFF_FACTOR at most (from the start delay
        # at least): a server that stays slow gets latency / target after a few answers,
        # one outlier (a 12-second answer among 50 ms ones) costs a second, not six
        ceiling = max(current * self.backoff_factor, self.start_delay)
        if verdict == EVIDENCE:
            new = min((current + target) / 2.0, ceiling)  # ceiling >= current
        elif verdict == BACKOFF:
            new = max(current * self.backoff_factor, self.start_delay, target,
                      min(retry_after or 0.0, self.retry_after_max))
        else:
            new = max(current, min((current + target) / 2.0, ceiling))
        return min(max(self.min_delay, new), self.max_delay)


class RecoveringThrottle:
    """Extension: adjusts each downloader slot's delay from its answers (see module doc)."""

    def __init__(self, crawler: Crawler, config: ThrottleConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.floors = CrawlDelayFloors(crawler, CrawlDelayConfig.from_settings(crawler.settings))
        self._answered: set[Request] = set()    # got a response, not yet left the downloader
        crawler.signals.connect(self._spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self._response_downloaded, signal=signals.response_downloaded)
        crawler.signals.connect(self._request_left, signal=signals.request_left_downloader)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RecoveringThrottle:
        if not crawler.settings.getbool("AUTOTHROTTLE_ENABLED"):
            raise NotConfigured("AUTOTHROTTLE_ENABLED is off")
        return cls(crawler, ThrottleConfig.from_settings(crawler.settings))

    @property
    def downloader(self) -> Downloader:
        assert self.crawler.engine is not None
        return self.crawler.engine.downloader

    def _spider_opened(self, spider: Any) -> None:
        # new slots start at the start delay, as with AutoThrottle
        self.downloader._delay = max(self.config.min_delay, self.config.start_delay)

    # ---- answers ---------------------------------------------------------------------
    def _response_downloaded(self, response: Response, request: Request,
                             spider: Any = None) -> None:
        self._answered.add(request)
        latency = request.meta.get("download_latency")
        if latency is None or request.meta.get("autothrottle_dont_adjust_delay", False) is True:
            return
        verdict = self.config.classify(response)
        if "playwright" in response.flags and verdict != BACKOFF:
            return  # a rendering's latency is the browser's work, not the server's answer
        retry_after = None
        if verdict == BACKOFF:
            self._inc(f"throttle/backoff/{response.status}")
            retry_after = response_retry_after(response)
            if retry_after is not None:
                self._inc("throttle/retry_after")
        self._adjust(request, float(latency), verdict, retry_after, response)

    def _request_left(self, request: Request, spider: Any = None) -> None:
        if request in self._answered:
            self._answered.discard(request)
            return
        # left the downloader without a response: timeout, refused or reset connection
        self._inc("throttle/backoff/error")
        self._adjust(request, None, BACKOFF, None, None)

    def _adjust(self, request: Request, latency: float | None, verdict: str,
                retry_after: float | None, response: Response | None) -> None:
        key = request.meta.get("download_slot")
        if not isinstance(key, str) or (slot := self.downloader.slots.get(key)) is None:
            return
        old = slot.delay
        new = self.config.next_delay(old, latency, verdict, retry_after)
        new = max(new, self.floors.get(key))
        slot.delay = new
        if new > old:
            self._inc("throttle/delay/raised")
        elif new < old:
            self._inc("throttle/delay/lowered")
        self._stats().max_value("throttle/delay_max_ms", int(new * 1000))
        if self.config.debug:
            logger.info("slot: %s | conc:%2d | delay:%5d ms (%+d) | latency:%5d ms | "
                        "status: %s | size:%6d bytes | %s",
                        key, len(slot.transferring), new * 1000, (new - old) * 1000,
                        (latency or 0) * 1000, response.status if response else "error",
                        len(response.body) if response else 0, verdict)

    def _stats(self) -> Any:
        assert self.crawler.stats is not None
        return self.crawler.stats

    def _inc(self, key: str) -> None:
        self._stats().inc_value(key)
