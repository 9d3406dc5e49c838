"""The spider of a joining worker: the section spider without seeds of its own.

A worker only takes requests from the shared frontier (queued by the seeding crawl and
by every worker's callbacks); seeding in each worker would fetch the home page and
page 1 of every listing once per worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from scrapy import Request

from crawler.spiders.section import SectionSpider


class FleetWorkerSpider(SectionSpider):
    """``gzarchive worker``: works what the frontier holds."""

    name = "section"

    async def start(self) -> AsyncIterator[Request]:
        nothing: tuple[Request, ...] = ()
        for request in nothing:
            yield request
