"""scrapy-playwright's download handler, started without holding up the crawl.

scrapy-playwright starts its Playwright driver (a node process) on ``engine_started``,
and Scrapy waits for that signal's handlers before the first request goes out: ~0.5 s of
every crawl's start, twice (one handler per URL scheme, each with its own driver).
:class:`BackgroundPlaywrightHandler` is built only when the first request of its scheme
comes (``lazy``), starts the driver in the background from there, and makes only the
requests that need the browser (``meta["playwright"]``) wait for it. Plain requests go
through Scrapy's HTTP handler at once, as before. Chromium itself is launched by
scrapy-playwright at the first rendered request, as before.

A driver that fails to start fails the rendered requests (each one, with the error);
closing waits for a start still in progress so no node process is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from scrapy.crawler import Crawler
from scrapy.http import Request, Response
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

logger = logging.getLogger(__name__)


class BackgroundPlaywrightHandler(ScrapyPlaywrightDownloadHandler):  # type: ignore[misc]
    """Built at the first request of its scheme; the driver starts beside plain fetches."""

    lazy = True

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._launching: asyncio.Future[None] | None = None
        # Built lazily, so normally after engine_started (whose handler is then a no-op).
        with contextlib.suppress(RuntimeError):  # no running loop: at engine_started
            asyncio.get_running_loop()
            self._start()

    def _start(self) -> asyncio.Future[None]:
        if self._launching is None:
            self._launching = asyncio.ensure_future(self._maybe_future_from_coro(
                self._launch()))
            self._launching.add_done_callback(self._launched)
        return self._launching

    @staticmethod
    def _launched(future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            logger.error("the Playwright driver did not start: %s", future.exception())

    async def _maybe_launch_in_thread(self) -> None:
        # engine_started (a handler built before it): start, but do not hold the engine.
        self._start()

    async def download_request(self, request: Request) -> Response:
        if request.meta.get("playwright"):
            await asyncio.shield(self._start())
        response: Response = await super().download_request(request)
        return response

    async def close(self) -> None:
        launching = self._launching
        if launching is not None and not launching.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await launching
        if launching is not None and (launching.cancelled()
                                      or launching.exception() is not None):
            # The driver never started: only the plain HTTP side has something to close.
            await super(ScrapyPlaywrightDownloadHandler, self).close()
            return
        await super().close()


__all__ = ["BackgroundPlaywrightHandler"]
