"""Scrapy add-on: what every crawl of the project gets, whatever started it.

``gzarchive crawl`` and ``scrapy crawl section -a section=…`` (from the project root)
both go through it:
- the crawl lifecycle extension (crawler/run/lifecycle.py: run lock, log file, summary,
  ``crawl_runs``, exit code);
- DATA_DIR from the environment (GZARCHIVE_DATA_DIR) and MONGODB_URI (MONGODB_URI), as
  the ``gzarchive`` options default to, unless a setting gives them;
- WARC_DIR under DATA_DIR unless set;
- rendering through Chromium when PORTAL_RENDER allows it and a browser exists.

Add-ons run after the spider is built (Scrapy 2.13+), so the spider reads whether
rendering is on when it uses it, not in ``from_crawler``.
"""

from __future__ import annotations

import os
from pathlib import Path

from scrapy.settings import BaseSettings

from crawler import rendering

LIFECYCLE = "crawler.run.lifecycle.CrawlLifecycle"
# First of the extensions: the lock is held before any other component is built.
LIFECYCLE_ORDER = 0


class PortalAddon:
    """Derive the run's settings from DATA_DIR, PORTAL_RENDER and the environment."""

    def update_settings(self, settings: BaseSettings) -> None:
        project = settings.getpriority("BOT_NAME")
        for name, env in (("DATA_DIR", "GZARCHIVE_DATA_DIR"), ("MONGODB_URI", "MONGODB_URI"),
                          ("MONGODB_WRITE_CONCERN", "MONGODB_WRITE_CONCERN")):
            value = os.environ.get(env)
            if value and settings.getpriority(name) == project:
                settings.set(name, value, priority="project")
        if settings.getpriority("WARC_DIR") == project:
            settings.set("WARC_DIR", str(Path(settings.get("DATA_DIR", "data")) / "warc"),
                         priority="project")
        extensions = settings.getdict("EXTENSIONS")
        if LIFECYCLE not in extensions:
            extensions[LIFECYCLE] = LIFECYCLE_ORDER
            settings.set("EXTENSIONS", extensions, priority=settings.getpriority("EXTENSIONS")
                         or "project")
        if not rendering.is_enabled(settings):
            rendering.configure(settings, settings.get("PORTAL_RENDER", "auto"))
