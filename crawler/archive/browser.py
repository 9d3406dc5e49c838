"""Archive what the browser did while scrapy-playwright rendered a page.

A rendered response (``"playwright"`` in its flags) holds the DOM, not what the server
sent; the WARC middleware stores it as a ``conversion`` record that refers to the page's
archived ``response``. That response, and every sub-request the page made (the JSON a
listing script fetched, stylesheets, images), are captured here from the browser's own
``response`` events and written as ``request``/``response`` records through
:meth:`WarcArchiveMiddleware.archive_exchange` (same revisit and digest-index rules as
a plain download), so a replay of the rendered page finds everything the script asked for.

One :class:`BrowserCapture` per rendered request::

    capture = BrowserCapture(archive, stats)
    meta = {"playwright": True, **capture.meta()}

``meta()`` hooks the page's ``response`` event, an init callback that records the HTTP
version from the DevTools protocol, and a final page method that waits until every
capture is written, before scrapy-playwright reads the DOM and closes the page (the
conversion record must find the page's response in the digest index).

Each GET archived with a 2xx or 304 answer is told to the capture's *archived*
callback (url, resource type). crawler.rendering marks an image as requested in the
crawl's duplicate filter (:func:`mark_requested`): a listing's thumbnail is usually its
article's first image, and the spider then does not fetch it a second time (30 of 265
requests of a crawl of the 72-article replica, 883 of 7,073 at 2,000). Only images: a
document, script or data URL the browser loaded may be one the spider must parse, and
a URL whose fetch failed in the browser is left to the spider (its failure is counted
there).

Stats: archive/browser/exchanges, archive/browser/resource_type/{type},
archive/browser/errors/{ExceptionClass}, archive/browser/protocol_unknown (HTTP version
not reported by DevTools: recorded as HTTP/1.1), archive/browser/images_marked (images
marked as requested), archive/browser/errors/mark (the duplicate filter failed: the
image is only fetched again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from scrapy import Request
from scrapy_playwright.page import PageMethod

from storage.warc.exchange import HttpExchange, RecordLocation

if TYPE_CHECKING:
    from playwright.async_api import Page
    from playwright.async_api import Request as PlaywrightRequest
    from playwright.async_api import Response as PlaywrightResponse
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# Playwright hands over the decoded body; the original values stay visible under these
# names so that a replay does not try to decode it again.
_DECODED_HEADERS = {"content-encoding", "content-length"}
_ORIG_PREFIX = "X-Archive-Orig-"
_REDIRECTS = (301, 302, 303, 307, 308)
_PROTOCOLS = {"h2": "HTTP/2", "h3": "HTTP/3", "http/1.0": "HTTP/1.0", "http/1.1": "HTTP/1.1"}


class ExchangeArchive(Protocol):
    """What the capture needs of the WARC layer (WarcArchiveMiddleware provides it)."""

    def archive_exchange(self, ex: HttpExchange) -> RecordLocation | None: ...


def find_archive(crawler: Crawler) -> ExchangeArchive | None:
    """The crawl's WARC middleware, or None when WARC archiving is off."""
    from crawler.archive.middleware import WarcArchiveMiddleware

    engine = getattr(crawler, "engine", None)
    downloader = getattr(engine, "downloader", None)
    manager = getattr(downloader, "middleware", None)
    for mw in getattr(manager, "middlewares", ()):
        if isinstance(mw, WarcArchiveMiddleware):
            return mw
    return None


def mark_requested(crawler: Crawler) -> Callable[[str], None]:
    """A function that marks a URL as requested in the crawl's duplicate filter (the
    scheduler's ``df``: in memory, or the fleet's Redis set, so other workers skip it
    too). A filter that fails is counted and logged; the URL is then just fetched again."""
    def mark(url: str) -> None:
        scheduler = crawler.engine.scheduler if crawler.engine is not None else None
        dupefilter = getattr(scheduler, "df", None)
        if dupefilter is None:
            return
        try:
            dupefilter.request_seen(Request(url))
        except Exception as exc:
            crawler.stats.inc_value("archive/browser/errors/mark")
            logger.warning("could not mark %s as requested (%s: %s); the spider may "
                           "fetch it again", url, type(exc).__name__, exc)
            return
        crawler.stats.inc_value("archive/browser/images_marked")
    return mark


def _http_version(protocol: str | None) -> str:
    if not protocol:
        return "HTTP/1.1"
    return _PROTOCOLS.get(protocol.lower(), protocol.upper())


def _response_headers(raw: list[Any]) -> list[tuple[str, str]]:
    pairs = [(h["name"], h["value"]) for h in raw if not h["name"].startswith(":")]
    if not any(k.lower() == "content-encoding" for k, _ in pairs):
        return pairs
    return [(_ORIG_PREFIX + k if k.lower() in _DECODED_HEADERS else k, v) for k, v in pairs]


def _request_headers(raw: list[Any], url: str, body: bytes) -> list[tuple[str, str]]:
    pairs = [(h["name"], h["value"]) for h in raw if not h["name"].startswith(":")]
    names = {k.lower() for k, _ in pairs}
    if "host" not in names:
        pairs.insert(0, ("Host", urlsplit(url).netloc.rpartition("@")[2]))
    if body and "content-length" not in names:
        pairs.append(("Content-Length", str(len(body))))
    return pairs


def _started(request: PlaywrightRequest) -> datetime:
    start = request.timing.get("startTime") if request.timing else None
    if start and start > 0:
        return datetime.fromtimestamp(start / 1000, UTC)
    return datetime.now(UTC)


class BrowserCapture:
    """Archive the HTTP exchanges of one rendered page (see the module docstring)."""

    def __init__(self, archive: ExchangeArchive, stats: Any,
                 archived: Callable[[str, str], None] | None = None) -> None:
        self.archive = archive
        self.stats = stats
        # told (url, resource type) of every 2xx or 304 answer to a GET archived
        self.archived = archived
        self.protocols: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def meta(self) -> dict[str, Any]:
        """request.meta entries that hook this capture into scrapy-playwright."""
        return {
            "playwright_page_init_callback": self.init_page,
            "playwright_page_event_handlers": {"response": self.on_response},
        }

    def drain_method(self) -> PageMethod:
        """The last page method of the request: wait for every capture to be written."""
        return PageMethod(self.drain)

    async def init_page(self, page: Page, request: Request) -> None:
        # Playwright does not expose the protocol of a response; DevTools does.
        try:
            session = await page.context.new_cdp_session(page)
            session.on("Network.responseReceived", self._on_cdp_response)
            await session.send("Network.enable")
        except Exception as exc:  # no DevTools (another browser): versions default
            self.stats.inc_value(f"archive/browser/errors/{type(exc).__name__}")
            logger.warning("no DevTools session for %s (%s); HTTP versions default to "
                           "HTTP/1.1", request.url, exc)

    def _on_cdp_response(self, params: dict[str, Any]) -> None:
        response = params.get("response") or {}
        if response.get("url") and response.get("protocol"):
            self.protocols[response["url"]] = response["protocol"]

    def on_response(self, response: PlaywrightResponse) -> None:
        task = asyncio.ensure_future(self._capture(response))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, page: Page) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _capture(self, response: PlaywrightResponse) -> None:
        request = response.request
        try:
            ex = await self._exchange(response)
            location = self.archive.archive_exchange(ex)
        except Exception as exc:
            # The page may close under a late response; the rest of the page is archived.
            self.stats.inc_value(f"archive/browser/errors/{type(exc).__name__}")
            logger.warning("could not archive browser response %s (%s: %s)", response.url,
                           type(exc).__name__, exc)
            return
        if location is None:
            return
        self.stats.inc_value("archive/browser/exchanges")
        self.stats.inc_value(f"archive/browser/resource_type/{request.resource_type}")
        if (self.archived is not None and request.method == "GET"
                and (200 <= ex.status < 300 or ex.status == 304)):
            self.archived(ex.url, request.resource_type)

    async def _exchange(self, response: PlaywrightResponse) -> HttpExchange:
        request = response.request
        body = b"" if response.status in _REDIRECTS else await response.body()
        request_body = request.post_data_buffer or b""
        addr = await response.server_addr()
        protocol = self.protocols.get(response.url)
        if protocol is None:
            self.stats.inc_value("archive/browser/protocol_unknown")
        return HttpExchange(
            url=response.url,
            method=request.method,
            request_headers=_request_headers(await request.headers_array(), request.url,
                                             request_body),
            request_body=request_body,
            http_version=_http_version(protocol),
            status=response.status,
            reason=response.status_text,
            response_headers=_response_headers(await response.headers_array()),
            body=body,
            date=_started(request),
            ip_address=addr["ipAddress"] if addr else None,
        )
