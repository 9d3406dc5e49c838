"""Scrapy add-on: settings that depend on other settings, for `scrapy crawl` too.

`gzarchive crawl` configures the same things; the add-on makes
``scrapy crawl section -a section=…`` from the project root behave alike (rendering
through Chromium when PORTAL_RENDER allows it and a browser exists; WARC_DIR under
DATA_DIR unless set).
"""

from __future__ import annotations

from pathlib import Path

from scrapy.settings import BaseSettings

from crawler import rendering


class PortalAddon:
    """Derive WARC_DIR and the download handlers from DATA_DIR and PORTAL_RENDER."""

    def update_settings(self, settings: BaseSettings) -> None:
        if settings.getpriority("WARC_DIR") == settings.getpriority("BOT_NAME"):
            settings.set("WARC_DIR", str(Path(settings.get("DATA_DIR", "data")) / "warc"),
                         priority="project")
        if not rendering.is_enabled(settings):
            rendering.configure(settings, settings.get("PORTAL_RENDER", "auto"))
