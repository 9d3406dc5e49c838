"""Rendering listings in a real browser through scrapy-playwright.

`configure(settings, mode)` installs scrapy-playwright's download handler when the
render mode may need it and a Chromium executable exists, bounds the browser
(PLAYWRIGHT_MAX_CONTEXTS, PLAYWRIGHT_MAX_PAGES_PER_CONTEXT) and aborts the requests
the archive does not need (:class:`AbortPolicy`, RENDER_ABORT_RESOURCE_TYPES and
RENDER_ABORT_HOSTS). `listing_meta(crawler)` is the per-request meta of a rendered
listing: it waits for the network to go quiet (:class:`NetworkQuiet`: no request in
flight for RENDER_QUIET_MS after the load event) and archives every exchange the browser
made (crawler/archive/browser.py). Pages are closed by scrapy-playwright after each
response (no ``playwright_include_page``). Requests without ``meta["playwright"]``
still go through Scrapy's plain HTTP handler: articles are never rendered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

from crawler.config import ConfigError

if TYPE_CHECKING:
    from playwright.async_api import Page
    from playwright.async_api import Request as PlaywrightRequest
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# scrapy-playwright's handler, its driver started beside the first plain fetches instead
# of before them (crawler/browser_handler.py).
HANDLER = "crawler.browser_handler.BackgroundPlaywrightHandler"
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
# Debian's `chromium-headless-shell` (the same Blink as `chromium`, without the desktop
# browser around it; what Playwright itself runs for headless Chromium): half the CPU a
# rendered listing costs in the full browser's headless mode (118 vs 251 ms a page,
# benchmarks/README.md, "Chromium headless shell"). Preferred when headless.
HEADLESS_CANDIDATES = ("/usr/bin/chromium-headless-shell",
                       "/usr/lib/chromium/chromium-headless-shell")
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
# What a replay needs once however many rendered pages show it (the site's stylesheet
# and logo on every listing page): once the browser has archived such a URL in this run,
# later pages do not fetch it again (scrapy-playwright routes every request through
# Python, so Chromium's own cache never serves them).
ONCE_RESOURCE_TYPES = frozenset({"image", "stylesheet"})
DEFAULT_QUIET_MS = 250
DEFAULT_QUIET_TIMEOUT = 30.0


class BrowserNotFound(RuntimeError):
    """Rendering is required but no Chromium executable was found."""


def find_chromium(configured: str | None = None, headless: bool = True) -> str | None:
    """The Chromium executable to launch: *configured* (PLAYWRIGHT_LAUNCH_OPTIONS
    ``executable_path``), else $GZARCHIVE_CHROMIUM, else the headless shell when
    *headless*, else the full browser."""
    shell: tuple[str | None, ...] = (
        (*HEADLESS_CANDIDATES, shutil.which("chromium-headless-shell")) if headless else ())
    for path in (configured, os.environ.get("GZARCHIVE_CHROMIUM"), *shell, *CANDIDATES,
                 shutil.which("chromium"), shutil.which("chromium-browser")):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


@dataclass
class AbortPolicy:
    """PLAYWRIGHT_ABORT_REQUEST: abort by resource type, or by host (trackers), and
    images and stylesheets the browser already archived in this run (:meth:`archived`).

    Documents, scripts, XHR and fetch of the portal are never aborted by type:
    a listing's script and its data are what the archive must keep.
    """

    resource_types: frozenset[str]
    hosts: tuple[str, ...]
    # URLs of ONCE_RESOURCE_TYPES archived from the browser in this process (~100 bytes
    # each; one or two per rendered page).
    done: set[str] = field(default_factory=set, compare=False, repr=False)
    stats: Any = field(default=None, compare=False, repr=False)

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
        if request.resource_type in ONCE_RESOURCE_TYPES and request.url in self.done:
            if self.stats is not None:
                self.stats.inc_value("render/aborted/archived_before")
            return True
        host = (urlsplit(request.url).hostname or "").lower()
        return any(host == h or host.endswith("." + h) for h in self.hosts)

    def archived(self, url: str, resource_type: str) -> None:
        """The browser archived *url* (a 2xx or 304 answer to a GET)."""
        if resource_type in ONCE_RESOURCE_TYPES:
            self.done.add(url)


def configure(settings: BaseSettings, mode: str) -> str | None:
    """Install the playwright handler unless *mode* is "never" or no browser exists.

    Returns the browser path used, or None. With mode "always" and no browser,
    raises BrowserNotFound. RENDER_* settings that cannot work raise ConfigError.
    """
    if mode == "never":
        return None
    launch = dict(settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS"))
    launch.setdefault("headless", True)
    browser = find_chromium(launch.get("executable_path"), headless=bool(launch["headless"]))
    if browser is None:
        if mode == "always":
            raise BrowserNotFound(
                "--render always needs Chromium: install it with `apt-get install -y "
                "chromium-headless-shell chromium` or set GZARCHIVE_CHROMIUM to its path")
        return None
    launch["executable_path"] = browser
    _amend(settings, "PLAYWRIGHT_LAUNCH_OPTIONS", launch)
    _amend(settings, "DOWNLOAD_HANDLERS",
           {**settings.getdict("DOWNLOAD_HANDLERS"), "http": HANDLER, "https": HANDLER})
    # Bounded browser: without these scrapy-playwright allows CONCURRENT_REQUESTS
    # pages per context and any number of contexts.
    for name, default in (("PLAYWRIGHT_MAX_CONTEXTS", 2), ("PLAYWRIGHT_MAX_PAGES_PER_CONTEXT", 4)):
        if settings.getint(name) <= 0:
            _amend(settings, name, default)
    if not settings.get("PLAYWRIGHT_ABORT_REQUEST"):
        _amend(settings, "PLAYWRIGHT_ABORT_REQUEST", AbortPolicy.from_settings(settings))
    return browser


def _amend(settings: BaseSettings, name: str, value: Any) -> None:
    # At the priority the value already has: a user's ``-s PLAYWRIGHT_LAUNCH_OPTIONS=...``
    # (cmdline) would otherwise keep its value and silently lose the browser path.
    settings.set(name, value, priority=max(settings.getpriority(name) or 0,
                                           SETTINGS_PRIORITIES["project"]))


def is_enabled(settings: BaseSettings) -> bool:
    handlers = settings.getdict("DOWNLOAD_HANDLERS")
    return handlers.get("http") == HANDLER


class NetworkQuiet:
    """Wait until a page has had no request in flight for *quiet* seconds.

    Playwright's ``networkidle`` is the same rule with a fixed 500 ms, which was 0.75 s
    of every rendered listing page on the replica (1.09 s a page, 0.45 s with this at
    250 ms), and the pages of a JavaScript pager are rendered one after the other. The
    page's ``request``/``requestfinished``/``requestfailed`` events are counted from
    before navigation, so the data a listing script fetches, and the images it then
    inserts, are all waited for. After *timeout* s without quiet (a page that polls)
    the DOM is taken as it is, counted (``render/quiet_timeout``) and logged.
    """

    def __init__(self, quiet: float, timeout: float = DEFAULT_QUIET_TIMEOUT,
                 stats: Any = None) -> None:
        self.quiet = quiet
        self.timeout = timeout
        self.stats = stats
        self._inflight: set[int] = set()
        self._last = 0.0

    def handlers(self) -> dict[str, Any]:
        """``playwright_page_event_handlers`` entries (attached before navigation)."""
        return {"request": self._started, "requestfinished": self._ended,
                "requestfailed": self._ended}

    def _touch(self) -> None:
        self._last = asyncio.get_running_loop().time()

    def _started(self, request: PlaywrightRequest) -> None:
        self._inflight.add(id(request))
        self._touch()

    def _ended(self, request: PlaywrightRequest) -> None:
        self._inflight.discard(id(request))
        self._touch()

    async def wait(self, page: Page | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        self._last = max(self._last, loop.time())  # quiet counts from the load event
        while True:
            now = loop.time()
            if not self._inflight and now - self._last >= self.quiet:
                if page is None or await self._settled(page):
                    return
                continue
            if now >= deadline:
                if self.stats is not None:
                    self.stats.inc_value("render/quiet_timeout")
                logger.warning("rendered page %s: network not quiet after %.0f s (%d "
                               "request(s) in flight); its DOM is taken as it is",
                               getattr(page, "url", "?"), self.timeout, len(self._inflight))
                return
            left = self.quiet - (now - self._last)
            await asyncio.sleep(min(0.05, left) if not self._inflight and left > 0 else 0.02)


    async def _settled(self, page: Page) -> bool:
        """Whether the quiet holds once every event the browser sent so far is handled.

        Events wait in the event loop while it is busy (several pages rendering on a
        loaded machine): a request they would show in flight could be missed, and its
        response read after the page is closed. A round trip to the page comes back
        after every event sent before it.
        """
        from playwright.async_api import Error as PlaywrightError

        before = self._last
        try:
            await page.evaluate("0")
        except PlaywrightError:  # the page is gone: its DOM is read (or fails) as it is
            return True
        return not self._inflight and self._last == before


def quiet_seconds(settings: BaseSettings | None) -> float:
    """RENDER_QUIET_MS as seconds (ConfigError below 0)."""
    value = DEFAULT_QUIET_MS if settings is None else settings.getint(
        "RENDER_QUIET_MS", DEFAULT_QUIET_MS)
    if value < 0:
        raise ConfigError(f"RENDER_QUIET_MS must be >= 0, got {value}")
    return value / 1000


def _on_archived(crawler: Crawler) -> Callable[[str, str], None]:
    """What to do once the browser archived a URL: an image is marked as requested for
    the spider (crawler/archive/browser.py), an image or stylesheet is not fetched again
    by later pages (:class:`AbortPolicy`, when it is the policy in use)."""
    from crawler.archive.browser import mark_requested

    mark = mark_requested(crawler)
    policy = crawler.settings.get("PLAYWRIGHT_ABORT_REQUEST")
    if isinstance(policy, AbortPolicy):
        policy.stats = crawler.stats

    def archived(url: str, resource_type: str) -> None:
        if resource_type == "image":
            mark(url)
        if isinstance(policy, AbortPolicy):
            policy.archived(url, resource_type)
    return archived


def listing_meta(crawler: Crawler | None = None) -> dict[str, Any]:
    """request.meta of a listing rendered in the browser; with *crawler*, every
    exchange the page makes is archived into the crawl's WARC files."""
    from scrapy_playwright.page import PageMethod

    from crawler.archive.browser import BrowserCapture, find_archive

    settings = crawler.settings if crawler is not None else None
    timeout = (settings.getfloat("PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT", 30_000) / 1000
               if settings is not None else DEFAULT_QUIET_TIMEOUT)
    quiet = NetworkQuiet(quiet_seconds(settings), timeout or DEFAULT_QUIET_TIMEOUT,
                         crawler.stats if crawler is not None else None)
    handlers = quiet.handlers()
    methods = [PageMethod(quiet.wait)]
    meta: dict[str, Any] = {"playwright": True, "playwright_context": CONTEXT}
    archive = find_archive(crawler) if crawler is not None else None
    if crawler is not None and archive is not None:
        capture = BrowserCapture(archive, crawler.stats, _on_archived(crawler))
        capture_meta = capture.meta()
        handlers.update(capture_meta.pop("playwright_page_event_handlers"))
        meta.update(capture_meta)
        methods.append(capture.drain_method())
    meta["playwright_page_event_handlers"] = handlers
    meta["playwright_page_methods"] = methods
    return meta
