"""Retries with exponential backoff and Retry-After, on top of Scrapy's RetryMiddleware.

Scrapy retries at once; a struggling server deserves a pause. The retried request is
released after ``RETRY_BACKOFF_BASE * 2**(n-1)`` seconds (capped by
``RETRY_BACKOFF_MAX``), or after the server's ``Retry-After`` (429/503; seconds or an
HTTP date, capped by ``RETRY_AFTER_MAX``). Replaces Scrapy's RetryMiddleware at 550.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.utils.defer import deferred_to_future
from twisted.internet.task import deferLater

logger = logging.getLogger(__name__)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header value, or None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def response_retry_after(response: Response) -> float | None:
    """Seconds a 429/503 answer asks us to wait (its Retry-After), or None.

    The one reading of Retry-After: retries wait it here, and crawler.throttle raises
    the host's delay to it.
    """
    if response.status not in (429, 503):
        return None
    header = response.headers.get("Retry-After")
    return retry_after_seconds(header.decode("latin-1") if header else None)


class BackoffRetryMiddleware(RetryMiddleware):
    """RetryMiddleware whose retries wait (exponential backoff, Retry-After honoured)."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.cap = settings.getfloat("RETRY_BACKOFF_MAX", 60.0)
        self.retry_after_cap = settings.getfloat("RETRY_AFTER_MAX", 120.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffRetryMiddleware:
        mw = cls(crawler.settings)
        mw.crawler = crawler
        return mw

    def _delay(self, retry: Request, response: Response | None) -> float:
        attempt = max(1, int(retry.meta.get("retry_times", 1)))
        delay = min(self.cap, self.base * 2 ** (attempt - 1))
        delay *= random.uniform(0.8, 1.2)  # jitter: retries of one burst spread out
        if response is not None:
            asked = response_retry_after(response)
            if asked is not None:
                delay = min(self.retry_after_cap, asked)
                assert self.crawler.stats is not None
                self.crawler.stats.inc_value("portal/retry/retry_after")
        return float(delay)

    async def _wait(self, retry: Request, response: Response | None) -> Request:
        delay = self._delay(retry, response)
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("portal/retry/waited_seconds", int(round(delay)))
        logger.debug("retrying %s in %.1f s", retry.url, delay)
        if delay > 0:
            # Imported here: importing the reactor at module level installs the default
            # one before Scrapy installs the asyncio reactor the settings ask for.
            from twisted.internet import reactor

            await deferred_to_future(deferLater(reactor, delay, lambda: None))
        return retry

    async def process_response(  # type: ignore[override]
            self, request: Request, response: Response, spider: Any = None) -> Request | Response:
        result = super().process_response(request, response)
        if isinstance(result, Request):
            return await self._wait(result, response)
        return result

    async def process_exception(  # type: ignore[override]
            self, request: Request, exception: Exception,
            spider: Any = None) -> Request | Response | None:
        result = super().process_exception(request, exception)
        if isinstance(result, Request):
            return await self._wait(result, None)
        return result
