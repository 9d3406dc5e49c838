"""Rendering listings in a real browser through scrapy-playwright.

`configure(settings, mode)` installs scrapy-playwright's download handler when the
render mode may need it and a Chromium executable exists; `listing_meta()` is the
per-request meta of a rendered listing. Requests without ``meta["playwright"]``
still go through Scrapy's plain HTTP handler.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from scrapy.settings import BaseSettings

HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


class BrowserNotFound(RuntimeError):
    """Rendering is required but no Chromium executable was found."""


def find_chromium(configured: str | None = None) -> str | None:
    for path in (configured, os.environ.get("GZARCHIVE_CHROMIUM"), *CANDIDATES):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found


def configure(settings: BaseSettings, mode: str) -> str | None:
    """Install the playwright handler unless *mode* is "never" or no browser exists.

    Returns the browser path used, or None. With mode "always" and no browser,
    raises BrowserNotFound.
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
    settings.set("PLAYWRIGHT_LAUNCH_OPTIONS", launch)
    settings.set("DOWNLOAD_HANDLERS", {"http": HANDLER, "https": HANDLER})
    return browser


def is_enabled(settings: BaseSettings) -> bool:
    handlers = settings.getdict("DOWNLOAD_HANDLERS")
    return handlers.get("http") == HANDLER


def listing_meta() -> dict[str, Any]:
    from scrapy_playwright.page import PageMethod

    return {
        "playwright": True,
        "playwright_context": "listings",
        "playwright_page_methods": [PageMethod("wait_for_load_state", "networkidle")],
    }
