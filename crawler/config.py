"""Validated, typed view of the PORTAL_* settings (built once per crawl)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from scrapy.settings import BaseSettings

RENDER_MODES = ("auto", "always", "never")


class ConfigError(ValueError):
    """A setting or a combination of settings that cannot work."""


@dataclass(frozen=True)
class PortalConfig:
    portal_url: str
    sections: tuple[str, ...]
    all_sections: bool
    max_articles: int
    render: str
    tracking_params: tuple[str, ...]
    gateway_hosts: tuple[str, ...]
    asset_hosts: tuple[str, ...]
    extra_hosts: tuple[str, ...]
    archive_both_scripts: bool
    download_images: bool

    @property
    def portal_host(self) -> str:
        return (urlsplit(self.portal_url).hostname or "").lower()

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> PortalConfig:
        url = settings.get("PORTAL_URL", "").strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"PORTAL_URL must be an http(s) URL, got {url!r}")
        render = settings.get("PORTAL_RENDER", "auto")
        if render not in RENDER_MODES:
            raise ConfigError(f"PORTAL_RENDER must be one of {RENDER_MODES}, got {render!r}")
        sections = tuple(s for s in settings.getlist("PORTAL_SECTIONS") if s.strip())
        all_sections = settings.getbool("PORTAL_ALL_SECTIONS")
        if not sections and not all_sections:
            raise ConfigError("no section to crawl: set PORTAL_SECTIONS or PORTAL_ALL_SECTIONS")
        max_articles = settings.getint("PORTAL_MAX_ARTICLES")
        if max_articles < 0:
            raise ConfigError("PORTAL_MAX_ARTICLES must be >= 0")
        return cls(
            portal_url=url,
            sections=sections,
            all_sections=all_sections,
            max_articles=max_articles,
            render=render,
            tracking_params=tuple(settings.getlist("PORTAL_TRACKING_PARAMS")),
            gateway_hosts=tuple(h.lower() for h in settings.getlist("PORTAL_GATEWAY_HOSTS")),
            asset_hosts=tuple(h.lower() for h in settings.getlist("PORTAL_ASSET_HOSTS")),
            extra_hosts=tuple(h.lower() for h in settings.getlist("PORTAL_ALLOWED_HOSTS")),
            archive_both_scripts=settings.getbool("PORTAL_ARCHIVE_BOTH_SCRIPTS"),
            download_images=settings.getbool("PORTAL_DOWNLOAD_IMAGES", True),
        )
