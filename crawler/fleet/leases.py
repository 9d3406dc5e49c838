"""When a request taken from the shared frontier is done (spider middleware).

After a callback's output has been handled (its requests queued in Redis, its walk
progress recorded), the request's in-flight entry is acked; when the output holds an
item of an article (ArticleItem, SectionLinkItem), the entry is *held* until the store
durably wrote that article (RedisCrawlState.mark_done releases it), so a worker killed
with articles in its unflushed batch loses nothing: the held request is reclaimed and
fetched again. Requests that end in an errback are acked when the worker goes idle
(crawler.fleet.extension sweeps them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from scrapy import Request
from scrapy.http import Response

from crawler.fleet.context import FleetContext, fleet_context
from crawler.fleet.queue import ENTRY


class FleetLeases:
    """Spider middleware: ack or hold each request's in-flight entry."""

    def __init__(self, context: FleetContext, stats: Any) -> None:
        self.frontier = context.frontier
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> FleetLeases:
        return cls(fleet_context(crawler), crawler.stats)

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        held: str | None = None
        for out in result:
            held = held or _article_url(out)
            yield out
        self._settle(response.request, held)

    async def process_spider_output_async(self, response: Response,
                                          result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        held: str | None = None
        async for out in result:
            held = held or _article_url(out)
            yield out
        self._settle(response.request, held)

    def process_spider_exception(self, response: Response, exception: BaseException) -> None:
        self._settle(response.request, None)

    def _settle(self, request: Request | None, held: str | None) -> None:
        entry = request.meta.get(ENTRY) if request is not None else None
        if entry is None:
            return
        if held is not None and self.frontier.hold(entry, held):
            self.stats.inc_value("fleet/requests/held")
        elif self.frontier.ack(entry):
            self.stats.inc_value("fleet/requests/acked")


def _article_url(out: Any) -> str | None:
    if isinstance(out, Request) or not hasattr(out, "get"):
        return None
    url = out.get("url")
    return url if isinstance(url, str) else None
