"""Which URLs the crawl may fetch: the portal's hosts for pages, asset hosts for images."""

from __future__ import annotations

from fnmatch import fnmatch
from urllib.parse import urlsplit

from crawler.config import PortalConfig


class Scope:
    """Host allow-lists built from PortalConfig; anything else is logged and skipped."""

    def __init__(self, config: PortalConfig) -> None:
        self.page_hosts = {config.portal_host, *config.extra_hosts}
        if config.archive_both_scripts:
            self.page_hosts.update(config.gateway_hosts)
        self.asset_patterns = (*config.asset_hosts, *self.page_hosts)

    @staticmethod
    def _host(url: str) -> str | None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return None
        return (parts.hostname or "").lower() or None

    def allows_page(self, url: str) -> bool:
        return self._host(url) in self.page_hosts

    def allows_asset(self, url: str) -> bool:
        host = self._host(url)
        return host is not None and any(fnmatch(host, p) for p in self.asset_patterns)

    def allowed_domains(self) -> list[str]:
        """Domains for Scrapy's OffsiteMiddleware (wildcards reduced to their suffix)."""
        domains = {p[2:] if p.startswith("*.") else p for p in self.asset_patterns}
        return sorted(domains)
