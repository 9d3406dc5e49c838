"""Spider `section`: home navigation -> section listings -> articles (all their pages).

Sections are found by their navigation label in either script, never by path.
Listings filled in by JavaScript are rendered with scrapy-playwright when the
render mode allows it (see crawler.rendering). Every failure is recorded in the
crawl report with its URL; nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import scrapy
from parsel import Selector
from scrapy import Item, Request, signals
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler import rendering
from crawler.archive.signals import archive_outlinks
from crawler.config import PortalConfig
from crawler.extract.article import parse_article
from crawler.extract.charset import decode_html
from crawler.extract.errors import ExtractionError
from crawler.extract.listing import is_article_url
from crawler.extract.nav import find_nav_links, find_section
from crawler.failures import classify_failure
from crawler.fleet.setup import build_crawl_state
from crawler.items import ArticleItem, SectionLinkItem
from crawler.report import CrawlReport
from crawler.scope import Scope
from crawler.spiders.listings import ListingWalker, WalkConfig
from crawler.textnorm import fold_label, to_simplified
from crawler.urls import canonicalize, is_gateway
from storage.crawlstate import CrawlState

logger = logging.getLogger(__name__)

MAX_ARTICLE_PAGES = 30
MAX_REDIRECTS = 5
REDIRECT_CODES = (301, 302, 303, 307, 308)
PERMANENT_FAILURES = frozenset({"http-404", "http-410", "robots-disallowed", "offsite-skipped"})


@dataclass
class ArticleState:
    """One article being assembled from its pages; shared by all requests of it."""

    url: str
    sections: set[str]
    urls: set[str] = field(default_factory=set)
    pages: list[Any] = field(default_factory=list)
    page_urls: set[str] = field(default_factory=set)
    warc: dict[str, Any] | None = None
    validators: dict[str, str | None] = field(default_factory=dict)
    fetched_url: str = ""
    emitted: bool = False
    redirected_to: str | None = None  # canonical URL of the article it redirects to


class SectionSpider(scrapy.Spider):
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
        spider.articles = {}
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
    articles: dict[str, ArticleState]
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

    def on_home_error(self, failure: Failure) -> None:
        kind = classify_failure(failure)
        url = failure.request.url if hasattr(failure, "request") else self.config.portal_url
        self.report.fail(kind, url, self.crawler.stats)
        self.report.set_fatal(
            "portal-unreachable",
            f"portal unreachable: {url} ({kind}: {failure.getErrorMessage()})",
        )

    def parse_home(self, response: Response) -> Iterator[Request]:
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
        for _, link in wanted:
            section = to_simplified(link.label.strip())
            self.report.sections[section] = link.url
            logger.info("section %s -> %s", section, link.url)
            yield from self.walker.start(section, link.url)

    # -- listings (crawler/spiders/listings.py) -----------------------------------------
    def parse_listing(self, response: Response) -> Iterator[Request | SectionLinkItem]:
        yield from self.walker.parse(response)

    def on_listing_error(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        self.report.fail(classify_failure(failure), request.url, self.crawler.stats)
        self.walker.on_error(failure)

    def at_article_limit(self) -> bool:
        """Whether --max-articles articles are scheduled already."""
        return bool(self.config.max_articles
                    and self.article_requests >= self.config.max_articles)

    def follow_article(self, href: str, url: str,
                        section: str) -> Iterator[Request | SectionLinkItem]:
        """Schedule the article at *href* (canonical *url*) once, whatever its form."""
        if not self.scope.allows_page(href):
            self.report.fail("offsite-skipped", href, self.crawler.stats)
            return
        state = self.articles.get(url)
        if state is not None:
            if state.redirected_to is not None and state.redirected_to != url:
                yield from self.follow_article(href, state.redirected_to, section)
                return
            news = section not in state.sections or href not in state.urls
            state.urls.add(href)
            state.sections.add(section)
            if not news:
                return
            if not state.emitted:
                self.crawl_state.merge_pending(url, [section], [href])
                return
            # Already on its way to the store (e.g. resumed from the pending frontier
            # before this listing linked it): pending again until the merge is stored.
            self.crawl_state.add_pending(url, [section], [href])
            yield SectionLinkItem(url=url, sections=[section], urls=[href], unchanged=False)
            return
        if self.at_article_limit():
            return
        self.report.articles_found[section] += 1
        yield from self._article_request(url, {section}, href)

    def _article_request(self, url: str, sections: set[str], href: str,
                         hops: int = 0, aliases: set[str] | None = None) -> Iterator[Request]:
        state = ArticleState(url=url, sections=set(sections), urls={href, url, *(aliases or ())})
        self.articles[url] = state
        self.article_requests += 1
        self.crawl_state.add_pending(url, sections, state.urls)
        fetch = href if self.config.archive_both_scripts else url
        # Redirects are followed here, not by RedirectMiddleware, so that an old URL and
        # its target end as one article whatever order they are met in.
        meta: dict[str, Any] = {"portal_kind": "article", "portal_article": state,
                                "portal_section": sorted(sections)[0] if sections else None,
                                "portal_hops": hops, "dont_redirect": True,
                                "handle_httpstatus_list": list(REDIRECT_CODES)}
        headers: dict[str, str] = {}
        known = self.crawl_state.validators(url) if self.incremental else None
        if known is not None:
            if known.etag:
                headers["If-None-Match"] = known.etag
            if known.last_modified:
                headers["If-Modified-Since"] = known.last_modified
            if headers:
                meta["handle_httpstatus_list"] = [*REDIRECT_CODES, 304]
                meta["portal_conditional"] = True
                self.crawler.stats.inc_value("portal/conditional_requests")
        yield Request(fetch, callback=self.parse_article, errback=self.on_error,
                      meta=meta, headers=headers or None)

    # -- articles -------------------------------------------------------------
    def parse_article(self, response: Response) -> Iterator[Request | Item]:
        state: ArticleState = response.meta["portal_article"]
        if response.status == 304:
            self.crawler.stats.inc_value("portal/not_modified")
            state.emitted = True
            yield SectionLinkItem(url=state.url, sections=sorted(state.sections),
                                  urls=sorted(state.urls), unchanged=True)
            return
        if response.status in REDIRECT_CODES:
            yield from self._follow_redirect(state, response)
            return
        for redirected in response.meta.get("redirect_urls", []):
            state.urls.add(redirected)
        if not state.pages:
            state.fetched_url = response.url
            state.warc = response.meta.get("warc_record")
            state.validators = {
                "etag": _header(response, "ETag"),
                "last_modified": _header(response, "Last-Modified"),
            }
            final = canonicalize(response.url, self.config.tracking_params)
            if final != state.url:
                state.urls.add(response.url)
        text = self.page_text(response)
        archive_outlinks(self.crawler, response.url, _outlinks(text, response.url))
        try:
            page = parse_article(text, response.url)
        except ExtractionError as exc:
            self.report.fail(f"extraction-{exc.reason}", response.url, self.crawler.stats)
            logger.warning("extraction failed: %s", exc)
            if state.pages:  # a continuation page failed: keep the pages we have
                yield from self._emit(state, partial=True)
            return
        for warning in page.warnings:
            self.crawler.stats.inc_value(f"portal/extract/fallback/{warning}")
        state.pages.append(page)
        state.page_urls.add(canonicalize(response.url, self.config.tracking_params))
        yield from self._image_requests(page, response)
        nxt = page.next_page
        if nxt and self.scope.allows_page(nxt) and len(state.pages) < MAX_ARTICLE_PAGES:
            canonical_next = canonicalize(nxt, self.config.tracking_params)
            if canonical_next not in state.page_urls:
                yield Request(canonical_next, callback=self.parse_article,
                              errback=self.on_continuation_error,
                              meta={"portal_kind": "page", "portal_article": state,
                                    "portal_section": response.meta.get("portal_section")})
                return
        yield from self._emit(state)

    def _follow_redirect(self, state: ArticleState,
                         response: Response) -> Iterator[Request | SectionLinkItem]:
        location = _header(response, "Location")
        hops = response.meta.get("portal_hops", 0) + 1
        self.crawler.stats.inc_value("portal/redirects")
        if not location or hops > MAX_REDIRECTS:
            self.report.fail("redirect-broken" if not location else "redirect-loop",
                             response.url, self.crawler.stats)
            return
        target = response.urljoin(location)
        if not self.scope.allows_page(target):
            self.report.fail("offsite-skipped", target, self.crawler.stats)
            return
        canonical = canonicalize(target, self.config.tracking_params)
        # The alias is done: the article lives on under its target's URL.
        self.crawl_state.mark_done([state.url])
        state.emitted = True
        state.redirected_to = canonical
        existing = self.articles.get(canonical)
        if existing is not None and existing is not state:
            existing.urls.update(state.urls)
            new_sections = state.sections - existing.sections
            existing.sections.update(state.sections)
            if existing.emitted and (new_sections or state.urls - {canonical}):
                yield SectionLinkItem(url=canonical, sections=sorted(existing.sections),
                                      urls=sorted(state.urls), unchanged=False)
            return
        yield from self._article_request(canonical, state.sections, target, hops=hops,
                                         aliases=state.urls)

    def _image_requests(self, page: Any, response: Response) -> Iterator[Request]:
        if not self.config.download_images:
            return
        for image in page.images:
            if self.scope.allows_asset(image.url):
                yield Request(image.url, callback=self.parse_image, errback=self.on_error,
                              priority=-10, meta={"portal_kind": "image"})
            else:
                self.report.fail("offsite-skipped", image.url, self.crawler.stats)

    def parse_image(self, response: Response) -> None:
        self.crawler.stats.inc_value("portal/images")

    def _emit(self, state: ArticleState, partial: bool = False) -> Iterator[ArticleItem]:
        if state.emitted:
            return
        state.emitted = True
        first = state.pages[0]
        if partial:
            self.report.fail("article-incomplete", state.url, self.crawler.stats)
        yield ArticleItem(
            url=state.url,
            urls=sorted(state.urls),
            title=first.title,
            published_at=first.published_at,
            source=first.source,
            editor=first.editor,
            chief_editor=first.chief_editor,
            sections=sorted(state.sections),
            paragraphs=[p for pg in state.pages for p in pg.paragraphs],
            images=[{"url": im.url, "caption": im.caption} for pg in state.pages
                    for im in pg.images],
            warc=state.warc,
            fetched_at=datetime.now(UTC),
            template=first.template,
            pages=len(state.pages),
            script="traditional" if is_gateway(state.fetched_url) else "simplified",
            http_validators=state.validators,
        )

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

    def on_continuation_error(self, failure: Failure) -> Iterator[ArticleItem]:
        self.on_error(failure)
        state: ArticleState = failure.request.meta["portal_article"]  # type: ignore[attr-defined]
        yield from self._emit(state, partial=True)

    # -- helpers ------------------------------------------------------------------
    def page_text(self, response: Response) -> str:
        """The page as text: the rendered DOM, or the body decoded by its real charset."""
        if "playwright" in response.flags:
            return response.text
        charset = None
        content_type = _header(response, "Content-Type") or ""
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


def _outlinks(text: str, base_url: str) -> list[str]:
    """Every link and embedded resource of a page, absolute, in page order."""
    try:
        selector = Selector(text=text)
        hrefs = selector.css("a::attr(href), img::attr(src), link::attr(href), "
                             "script::attr(src)").getall()
    except (ValueError, TypeError):
        return []
    seen: dict[str, None] = {}
    for href in hrefs:
        href = href.strip()
        if href and not href.startswith(("javascript:", "mailto:", "#", "data:")):
            seen[urljoin(base_url, href)] = None
    return list(seen)


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _split_sections(arg: str) -> list[str]:
    """``-a section=A`` or ``-a section=A|B`` (labels themselves may contain commas)."""
    return [s.strip() for s in arg.split("|") if s.strip()]


__all__ = ["SectionSpider", "is_article_url"]
