"""Article assembly for the section spider: one article from all its pages and redirects.

An article is scheduled once per canonical URL (:meth:`ArticleAssembly.follow_article`),
whatever form or section links it. Its continuation pages are fetched in turn and joined
into one :class:`~crawler.items.ArticleItem`; redirects are followed here rather than by
RedirectMiddleware, so that an old URL and its target end as one article whatever order
they are met in. In an incremental crawl an article is fetched conditionally (its stored
ETag / Last-Modified) and a 304 becomes an unchanged :class:`SectionLinkItem`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from parsel import Selector
from scrapy import Item, Request
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.archive.signals import archive_outlinks
from crawler.config import PortalConfig
from crawler.extract.article import parse_article
from crawler.extract.errors import ExtractionError
from crawler.items import ArticleItem, SectionLinkItem
from crawler.report import CrawlReport
from crawler.scope import Scope
from crawler.spiders.registry import ArticleRegistry
from crawler.urls import canonicalize, is_gateway
from storage.crawlstate import CrawlState

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

MAX_ARTICLE_PAGES = 30
MAX_REDIRECTS = 5
REDIRECT_CODES = (301, 302, 303, 307, 308)


@dataclass
class ArticleState:
    """One article being assembled from its pages; shared by all requests of it. Kept
    while the article is in flight only (crawler/spiders/registry.py)."""

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


class ArticleAssembly:
    """The article callbacks of :class:`crawler.spiders.section.SectionSpider`.

    A mixin rather than a helper object: the callbacks must stay methods of the spider
    so that requests queued in a shared frontier (crawler/fleet) name them.
    """

    # Provided by the spider (crawler/spiders/section.py).
    crawler: Crawler
    config: PortalConfig
    scope: Scope
    report: CrawlReport
    articles: ArticleRegistry
    article_requests: int
    incremental: bool
    crawl_state: CrawlState

    def page_text(self, response: Response) -> str:
        raise NotImplementedError

    def on_error(self, failure: Failure) -> None:
        raise NotImplementedError

    # -- scheduling -----------------------------------------------------------------
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
        target = self.articles.redirect_target(url)
        if target is not None and target != url:
            yield from self.follow_article(href, target, section)
            return
        state = self.articles.get(url)
        if state is not None:  # in flight: merged into its item
            news = section not in state.sections or href not in state.urls
            state.urls.add(href)
            state.sections.add(section)
            if news:
                self.crawl_state.merge_pending(url, [section], [href])
            return
        if self.articles.is_done(url):
            if not self.articles.link(url, section, href):
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
        self.articles.add(state)
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

    # -- assembly -------------------------------------------------------------------
    def parse_article(self, response: Response) -> Iterator[Request | Item]:
        state: ArticleState = response.meta["portal_article"]
        if response.status == 304:
            self.crawler.stats.inc_value("portal/not_modified")
            state.emitted = True
            self.articles.done(state)
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
                "etag": header(response, "ETag"),
                "last_modified": header(response, "Last-Modified"),
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
        location = header(response, "Location")
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
        self.articles.redirected(state, canonical)
        canonical = self.articles.redirect_target(canonical) or canonical
        existing = self.articles.get(canonical)
        if existing is not None and existing is not state:  # in flight: merged into its item
            existing.urls.update(state.urls)
            existing.sections.update(state.sections)
            return
        if self.articles.is_done(canonical):
            before = self.articles.merge(canonical, state.sections, state.urls)
            if state.sections - before or state.urls - {canonical}:
                yield SectionLinkItem(url=canonical, sections=sorted(before | state.sections),
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
        self.articles.done(state)
        first = state.pages[0]
        if partial:
            self.report.fail("article-incomplete", state.url, self.crawler.stats)
        item = ArticleItem(
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
        # Done: the registry keeps a compact trace (later links merge sections through
        # it). The pages are in the item now; the state itself lives on only as long as
        # the last response that refers to it.
        state.pages, state.page_urls, state.warc, state.validators = [], set(), None, {}
        yield item

    def on_continuation_error(self, failure: Failure) -> Iterator[ArticleItem]:
        self.on_error(failure)
        state: ArticleState = failure.request.meta["portal_article"]  # type: ignore[attr-defined]
        yield from self._emit(state, partial=True)


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


def header(response: Response, name: str) -> str | None:
    """A response header as text (latin-1, as sent), or None when absent."""
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None
