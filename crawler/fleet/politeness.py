"""One per-host delay for the whole fleet (downloader middleware).

Each worker's throttle (crawler.throttle.RecoveringThrottle: latency, backoff,
Retry-After, robots.txt Crawl-delay) sets its downloader slot's delay; with several
workers each would keep its own pace, and the host would see their sum. Here every
request first reserves a start time in Redis for its host: one Lua script reads the
host's "next allowed" time, takes max(now, next) and moves "next" on by the slot's
delay, on Redis's clock, so no two requests of the fleet to a host start closer than
the delay. The request waits (without blocking the reactor) until its time. A delay of
0 (politeness off) skips Redis. Fleet mode sets DOWNLOAD_DELAY_JITTER to 0: a local
jitter would start a request later than its reserved time, closer to the next one's.
Stats: ``fleet/politeness/waits``, ``fleet/politeness/waited_ms``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from scrapy import Request
from scrapy.exceptions import NotConfigured

from crawler.fleet.context import FleetContext, fleet_context

RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(now, nxt)
local delay = tonumber(ARGV[1])
redis.call('SET', KEYS[1], start + delay, 'PX', delay + 60000)
return start - now
"""


class SharedPoliteness:
    """Reserve each request's start time per host across the fleet."""

    def __init__(self, crawler: Any, context: FleetContext) -> None:
        self.crawler = crawler
        self.keys = context.config.keys
        self._reserve = context.client.register_script(RESERVE)
        settings = crawler.settings
        start = (settings.getfloat("AUTOTHROTTLE_START_DELAY")
                 if settings.getbool("AUTOTHROTTLE_ENABLED") else 0.0)
        self.default_delay = max(settings.getfloat("DOWNLOAD_DELAY"), start)

    @classmethod
    def from_crawler(cls, crawler: Any) -> SharedPoliteness:
        context = fleet_context(crawler)
        if not context.config.shared_throttle:
            raise NotConfigured("FLEET_SHARED_THROTTLE is off")
        return cls(crawler, context)

    def delay_for(self, key: str) -> float:
        slot = self.crawler.engine.downloader.slots.get(key)
        return float(slot.delay) if slot is not None else self.default_delay

    async def process_request(self, request: Request) -> None:
        downloader = self.crawler.engine.downloader
        key = downloader.get_slot_key(request)
        delay = self.delay_for(key)
        if delay <= 0:
            return
        wait_ms = int(self._reserve(keys=[self.keys.host_next(key)],
                                    args=[int(delay * 1000)]))
        if wait_ms > 0:
            self.crawler.stats.inc_value("fleet/politeness/waits")
            self.crawler.stats.inc_value("fleet/politeness/waited_ms", wait_ms)
            await asyncio.sleep(wait_ms / 1000)
