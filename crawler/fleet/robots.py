"""robots.txt once per fleet (downloader middleware, in place of Scrapy's).

Scrapy's RobotsTxtMiddleware fetches a host's robots.txt once per process, so a fleet
of N workers fetched it N times. Here the first worker to fetch it keeps the body
(answers 200 only) in the frontier's ``robots`` hash; the others parse that copy, never
asking the host, and announce it on ``robots_parsed`` as Scrapy does, so the
Crawl-delay floor (crawler.crawldelay) is the same in every worker. A new crawl of the
frontier (crawler.fleet.lease) empties the hash: each crawl reads robots.txt afresh.
Stats: ``fleet/robots/shared`` (parsed from the fleet's copy).
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawler.fleet.context import fleet_context

SCRAPY = "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"


class FleetRobotsTxt(RobotsTxtMiddleware):
    """RobotsTxtMiddleware whose robots.txt bodies are shared through Redis."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        context = fleet_context(crawler)
        self._client = context.client
        self._key = context.config.keys.key("robots")

    async def robot_parser(self, request: Request) -> Any:
        url = urlparse_cached(request)
        netloc = url.netloc
        if netloc not in self._parsers:
            body = self._client.hget(self._key, netloc)
            if isinstance(body, bytes):
                self._parsers[netloc] = Deferred()
                copy = Response(f"{url.scheme}://{netloc}/robots.txt", status=200, body=body)
                self._stats.inc_value("fleet/robots/shared")
                await super()._parse_robots(copy, netloc, request)
        return await super().robot_parser(request)

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        if response.status == 200:
            self._client.hsetnx(self._key, netloc, response.body)
        await super()._parse_robots(response, netloc, request)
