"""Rendering listings in a real browser through scrapy-playwright.

`configure(settings, mode)` installs scrapy-playwright's download handler when the
render mode may need it and a Chromium executable exists, bounds the browser
(PLAYWRIGHT_MAX_CONTEXTS, PLAYWRIGHT_MAX_PAGES_PER_CONTEXT) and aborts the requests
the archive does not need (:class:`AbortPolicy`, RENDER_ABORT_RESOURCE_TYPES and
RENDER_ABORT_HOSTS). `listing_meta(crawler)` is the per-request meta of a rendered
listing: it waits for the network to go idle and archives every exchange the browser
made (crawler/archive/browser.py). Pages are closed by scrapy-playwright after each
response (no ``playwright_include_page``). Requests without ``meta["playwright"]``
still go through Scrapy's plain HTTP handler: articles are never rendered.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.settings import BaseSettings

from crawler.config import ConfigError

if TYPE_CHECKING:
    from playwright.async_api import Request as PlaywrightRequest
    from scrapy.crawler import Crawler

HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CONTEXT = "listings"

# What a rendered listing needs is its document, scripts, the data they fetch, and
# what a replay shows (stylesheets, images). Fonts, audio/video and trackers are not.
DEFAULT_ABORT_RESOURCE_TYPES = ("font", "media", "texttrack", "websocket", "eventsource",
                                "manifest")
DEFAULT_ABORT_HOSTS = (
    "google-analytics.com", "googletagmanager.com", "doubleclick.net", "hm.baidu.com",
    "cnzz.com", "51.la", "umeng.com", "growingio.com", "sensorsdata.cn", "tajs.qq.com",
)
KEEP_RESOURCE_TYPES = frozenset({"document", "script", "xhr", "fetch"})


class BrowserNotFound(RuntimeError):
    """Rendering is required but no Chromium executable was found."""


def find_chromium(configured: str | None = None) -> str | None:
    for path in (configured, os.environ.get("GZARCHIVE_CHROMIUM"), *CANDIDATES):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found


@dataclass(frozen=True)
class AbortPolicy:
    """PLAYWRIGHT_ABORT_REQUEST: abort by resource type, or by host (trackers).

    Documents, scripts, XHR and fetch of the portal are never aborted by type:
    a listing's script and its data are what the archive must keep.
    """

    resource_types: frozenset[str]
    hosts: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> AbortPolicy:
        types = frozenset(settings.getlist("RENDER_ABORT_RESOURCE_TYPES",
                                           list(DEFAULT_ABORT_RESOURCE_TYPES)))
        kept = types & KEEP_RESOURCE_TYPES
        if kept:
            raise ConfigError(f"RENDER_ABORT_RESOURCE_TYPES may not abort {sorted(kept)}: "
                             "a rendered listing needs them")
        hosts = tuple(h.lower().lstrip(".") for h in
                      settings.getlist("RENDER_ABORT_HOSTS", list(DEFAULT_ABORT_HOSTS)))
        return cls(types, hosts)

    def __call__(self, request: PlaywrightRequest) -> bool:
        if request.resource_type in self.resource_types:
            return True
        host = (urlsplit(request.url).hostname or "").lower()
        return any(host == h or host.endswith("." + h) for h in self.hosts)


def configure(settings: BaseSettings, mode: str) -> str | None:
    """Install the playwright handler unless *mode* is "never" or no browser exists.

    Returns the browser path used, or None. With mode "always" and no browser,
    raises BrowserNotFound. RENDER_* settings that cannot work raise ConfigError.
    """
    if mode == "never":
        return None
    launch = dict(settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS"))
    browser = find_chromium(launch.get("executable_path"))
    if browser is None:
        if mode == "always":
            raise BrowserNotFound(
                "--render always needs Chromium: install it with `apt-get install -y "
                "chromium` or set GZARCHIVE_CHROMIUM to its path")
        return None
    launch["executable_path"] = browser
    launch.setdefault("headless", True)
    settings.set("PLAYWRIGHT_LAUNCH_OPTIONS", launch)
    settings.set("DOWNLOAD_HANDLERS", {"http": HANDLER, "https": HANDLER})
    # Bounded browser: without these scrapy-playwright allows CONCURRENT_REQUESTS
    # pages per context and any number of contexts.
    for name, default in (("PLAYWRIGHT_MAX_CONTEXTS", 2), ("PLAYWRIGHT_MAX_PAGES_PER_CONTEXT", 4)):
        if settings.getint(name) <= 0:
            settings.set(name, default)
    if not settings.get("PLAYWRIGHT_ABORT_REQUEST"):
        settings.set("PLAYWRIGHT_ABORT_REQUEST", AbortPolicy.from_settings(settings))
    return browser


def is_enabled(settings: BaseSettings) -> bool:
    handlers = settings.getdict("DOWNLOAD_HANDLERS")
    return handlers.get("http") == HANDLER


def listing_meta(crawler: Crawler | None = None) -> dict[str, Any]:
    """request.meta of a listing rendered in the browser; with *crawler*, every
    exchange the page makes is archived into the crawl's WARC files."""
    from scrapy_playwright.page import PageMethod

    from crawler.archive.browser import BrowserCapture, find_archive

    methods = [PageMethod("wait_for_load_state", "networkidle")]
    meta: dict[str, Any] = {"playwright": True, "playwright_context": CONTEXT}
    archive = find_archive(crawler) if crawler is not None else None
    if crawler is not None and archive is not None:
        capture = BrowserCapture(archive, crawler.stats)
        meta.update(capture.meta())
        methods.append(capture.drain_method())
    meta["playwright_page_methods"] = methods
    return meta
