"""Spider `section`: home navigation -> section listings -> articles (all their pages).

Sections are found by their navigation label in either script, never by path.
Listings filled in by JavaScript are rendered with scrapy-playwright when the
render mode allows it (see crawler.rendering). Every failure is recorded in the
crawl report with its URL; nothing is dropped silently.

This module is the Scrapy entry (seeds, home navigation, errors); listings are walked
by crawler/spiders/listings.py and articles assembled by crawler/spiders/articles.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import scrapy
from scrapy import Request, signals
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler import rendering
from crawler.config import PortalConfig
from crawler.extract.charset import decode_html
from crawler.extract.listing import is_article_url
from crawler.extract.models import NavLink
from crawler.extract.nav import find_nav_links, find_section
from crawler.failures import classify_failure
from crawler.fleet.setup import build_crawl_state
from crawler.items import SectionLinkItem
from crawler.report import CrawlReport
from crawler.scope import Scope
from crawler.spiders.articles import (
    MAX_ARTICLE_PAGES,
    MAX_REDIRECTS,
    REDIRECT_CODES,
    ArticleAssembly,
    ArticleState,
    header,
)
from crawler.spiders.listings import ListingWalker, WalkConfig
from crawler.spiders.registry import ArticleRegistry
from crawler.textnorm import fold_label, to_simplified
from storage.crawlstate import CrawlState

logger = logging.getLogger(__name__)

PERMANENT_FAILURES = frozenset({"http-404", "http-410", "robots-disallowed", "offsite-skipped"})


class SectionSpider(ArticleAssembly, scrapy.Spider):
    """Crawl the given sections of the portal (``-a section=老外在貴州[,Hi,貴州!]``)."""

    name = "section"

    def __init__(self, section: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._section_arg = section

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> SectionSpider:
        spider: SectionSpider = super().from_crawler(crawler, *args, **kwargs)
        if spider._section_arg:
            # The spider is built before the settings are frozen (Scrapy 2.13+).
            crawler.settings.set("PORTAL_SECTIONS", _split_sections(spider._section_arg),
                                 priority="spider")
        spider.config = PortalConfig.from_settings(crawler.settings)
        spider.scope = Scope(spider.config)
        spider.allowed_domains = spider.scope.allowed_domains()  # type: ignore[attr-defined]
        spider.report = CrawlReport()
        spider.articles = ArticleRegistry()
        spider.article_requests = 0
        spider.render_sections = set()
        walk_config = WalkConfig.from_settings(crawler.settings)
        spider.incremental = walk_config.incremental
        state_path = Path(crawler.settings.get("DATA_DIR", "data")) / "state" / "crawl.sqlite"
        # Shared in Redis when many workers crawl one frontier (FLEET_REDIS_URL).
        spider.crawl_state = build_crawl_state(crawler, state_path)
        spider.walker = ListingWalker(spider, spider.crawl_state.walks, walk_config)
        crawler.signals.connect(spider._open_state, signal=signals.spider_opened)
        crawler.signals.connect(spider._close_state, signal=signals.spider_closed)
        return spider

    def _open_state(self, spider: Any) -> None:
        self.crawl_state.open()

    def _close_state(self, spider: Any, reason: str) -> None:
        try:
            self.walker.close()
        finally:
            self.crawl_state.close()

    config: PortalConfig
    scope: Scope
    report: CrawlReport
    articles: ArticleRegistry
    article_requests: int
    render_sections: set[str]
    incremental: bool
    crawl_state: CrawlState
    walker: ListingWalker

    @property
    def render_available(self) -> bool:
        # Read when used: the add-on installs the browser handler after the spider is
        # built (Scrapy 2.13+), so a value taken in from_crawler is always False there.
        return rendering.is_enabled(self.crawler.settings)

    # -- entry --------------------------------------------------------------
    async def start(self) -> AsyncIterator[Request]:
        if self.config.render == "auto":
            # Sections found to need a browser in earlier runs go straight to it.
            self.render_sections.update(self.crawl_state.rendered_sections())
        # Articles linked but not stored when a previous run stopped come first.
        resumed = self.crawl_state.pending_articles()
        if resumed:
            logger.info("resuming: %d article(s) pending from an interrupted run", len(resumed))
            self.crawler.stats.set_value("portal/resumed", len(resumed))
        for left in resumed:
            for request in self._article_request(left.url, set(left.sections), left.url,
                                                 aliases=set(left.urls)):
                yield request
        yield Request(
            self.config.portal_url + "/",
            callback=self.parse_home,
            errback=self.on_home_error,
            meta={"portal_kind": "nav"},
        )
        # Sections found on the home page by earlier runs are walked beside it; the home
        # page then confirms them (crawler/spiders/listings.py, PORTAL_EARLY_LISTINGS).
        for request in self.walker.start_early():
            yield request

    def on_home_error(self, failure: Failure) -> None:
        kind = classify_failure(failure)
        url = failure.request.url if hasattr(failure, "request") else self.config.portal_url
        self.report.fail(kind, url, self.crawler.stats)
        self.report.set_fatal(
            "portal-unreachable",
            f"portal unreachable: {url} ({kind}: {failure.getErrorMessage()})",
        )
        self.walker.confirm(None)

    def known_sections(self, entries: dict[str, str]) -> list[tuple[str, str]]:
        """The wanted sections among *entries* (section -> page 1 on record), matched
        by label as the home navigation is."""
        if self.config.all_sections:
            return sorted(entries.items())
        links = [NavLink(section, url) for section, url in entries.items()]
        found = (find_section(links, label) for label in self.config.sections)
        return list(dict.fromkeys((link.label, link.url) for link in found if link))

    def parse_home(self, response: Response) -> Iterator[Request]:
        found: dict[str, str] | None = None
        try:
            wanted = self._wanted_sections(response)
            found = {to_simplified(link.label.strip()): link.url for _, link in wanted}
        finally:
            self.walker.confirm(found)
        for _, link in wanted:
            section = to_simplified(link.label.strip())
            self.report.sections[section] = link.url
            logger.info("section %s -> %s", section, link.url)
            yield from self.walker.start(section, link.url)

    def _wanted_sections(self, response: Response) -> list[tuple[str, Any]]:
        text = self.page_text(response)
        links = find_nav_links(text, response.url)
        wanted: list[tuple[str, Any]] = []
        if self.config.all_sections:
            seen: set[str] = set()
            for link in links:
                if fold_label(link.label) not in seen and self.scope.allows_page(link.url):
                    seen.add(fold_label(link.label))
                    wanted.append((link.label, link))
        else:
            for label in self.config.sections:
                found = find_section(links, label)
                if found is None:
                    self.report.fail("section-not-found", label, self.crawler.stats)
                    self.report.set_fatal(
                        "section-not-found",
                        f"section {label!r} not found in the navigation of {response.url} "
                        f"(labels seen: {', '.join(sorted({n.label for n in links})) or 'none'})",
                    )
                    continue
                wanted.append((label, found))
        return wanted

    # -- listings (crawler/spiders/listings.py) -----------------------------------------
    def parse_listing(self, response: Response) -> Iterator[Request | SectionLinkItem]:
        yield from self.walker.parse(response)

    def on_listing_error(self, failure: Failure) -> None:
        # The walker reports it (a failed guess of the lookahead is not a failure).
        self.walker.on_error(failure)

    # -- errors -----------------------------------------------------------------
    def on_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        kind = classify_failure(failure)
        self.report.fail(kind, url, self.crawler.stats)
        state = request.meta.get("portal_article") if request is not None else None
        if state is not None and kind in PERMANENT_FAILURES:
            # Retrying these next run would fail the same way; others stay pending.
            self.crawl_state.mark_done([state.url])
        level = logging.INFO if kind in ("robots-disallowed", "offsite-skipped") else logging.WARNING
        logger.log(level, "%s: %s (%s)", kind, url, failure.getErrorMessage())

    # -- helpers ------------------------------------------------------------------
    def page_text(self, response: Response) -> str:
        """The page as text: the rendered DOM, or the body decoded by its real charset."""
        if "playwright" in response.flags:
            return response.text
        charset = None
        content_type = header(response, "Content-Type") or ""
        for part in content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip("\"' ")
        decoded = decode_html(response.body, charset)
        if decoded.lied:
            self.crawler.stats.inc_value("portal/charset/mislabelled")
            logger.info("charset label %s of %s was wrong; decoded as %s",
                        decoded.declared, response.url, decoded.encoding)
        return decoded.text


def _split_sections(arg: str) -> list[str]:
    """``-a section=A`` or ``-a section=A|B`` (labels themselves may contain commas)."""
    return [s.strip() for s in arg.split("|") if s.strip()]


__all__ = [
    "MAX_ARTICLE_PAGES",
    "MAX_REDIRECTS",
    "REDIRECT_CODES",
    "ArticleState",
    "SectionSpider",
    "is_article_url",
]
