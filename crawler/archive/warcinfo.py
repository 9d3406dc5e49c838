"""The ``warcinfo`` record that starts each WARC file: what crawl, software and settings."""

from __future__ import annotations

import socket
from importlib import metadata
from typing import TYPE_CHECKING

import scrapy
import warcio

from .config import WarcConfig

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


def software_version() -> str:
    """gzarchive's installed version (0.1.0 when run from a source tree not installed)."""
    try:
        return metadata.version("gzarchive")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def warcinfo_fields(crawler: Crawler, config: WarcConfig) -> dict[str, str]:
    """Fields of the warcinfo record, read from the crawl's settings."""
    s = crawler.settings
    spider = getattr(crawler, "spider", None)
    return {
        "software": f"gzarchive/{software_version()} (Scrapy {scrapy.__version__}; "
                    f"warcio {getattr(warcio, '__version__', '?')})",
        "format": "WARC File Format 1.0",
        "conformsTo": "http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf",
        "hostname": socket.gethostname(),
        "operator": config.operator,
        "isPartOf": str(s.get("BOT_NAME") or ""),
        "description": f"spider {getattr(spider, 'name', '?')}",
        "http-header-user-agent": str(s.get("USER_AGENT") or ""),
        "robots": "obey" if s.getbool("ROBOTSTXT_OBEY") else "ignore",
        "download-delay": str(s.get("DOWNLOAD_DELAY")),
        "concurrent-requests": str(s.get("CONCURRENT_REQUESTS")),
        "concurrent-requests-per-domain": str(s.get("CONCURRENT_REQUESTS_PER_DOMAIN")),
        "autothrottle": str(s.getbool("AUTOTHROTTLE_ENABLED")),
        "download-maxsize": str(s.get("DOWNLOAD_MAXSIZE")),
        "archive-images": str(config.archive_images),
        "portal-url": str(s.get("PORTAL_URL") or ""),
    }
