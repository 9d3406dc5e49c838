"""Walking a section's listing pages so that every walk finishes, across runs if need be.

:class:`ListingWalker` schedules listing pages for the section spider, hands their
article links to it and keeps the walk's progress in a :class:`storage.walks.WalkState`
(the crawl state). Each run walks from page 1 (new articles are at the top) *and*
resumes the frontier a cut walk left: the pages an earlier run scheduled but never
walked. A walk may stop early at pages holding only known articles
(PORTAL_STOP_AFTER_KNOWN_PAGES) only once a complete walk of that listing is on
record, and only down to the depth it reached: articles pending from a killed run
make page 1 look known, and the pages that run never reached must still be walked.

A page's walk is done once every article link on it is scheduled (so pending); a page
cut by ``--max-articles``, a failed request or a rendering without links stays on the
frontier. Counted as ``portal/listing/*``.

Listing pages are scheduled at PORTAL_LISTING_PRIORITY, below their articles and the
articles' images: the next page goes out once the page's articles are all out, so the
scheduler holds a page or two of requests per section, not a whole listing's (the peak
is counted as ``scheduler/peak_queued``, crawler/queuepeak.py).

A JavaScript pager gives only the next page's link, so rendered pages would be walked one
after the other (~1 s each in Chromium). When the pager's URLs number the pages
(``index_2.html``, ``index_3.html``; ``?page=2``), up to PORTAL_LISTING_LOOKAHEAD pages
past the next one are *guessed* and rendered at the same time. A guess is never trusted:
it is not put on the walk's frontier (the frontier still moves only by real next links,
so a cut walk resumes exactly as before). A guess is fetched plain first and rendered
only when that answers with a page to render (a guess past the listing's end is a cheap
404, not a rendering); a guess that fails, renders empty or lies past the end is
forgotten, so the real link, when it comes, requests that page again as an ordinary
one. Guesses are made only where the walk could not stop early (no complete walk on
record that deep), never with ``--max-articles`` or a shared frontier. Counted as ``portal/listing/lookahead/{guessed,hit,forgotten}``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.http import Response
from scrapy.settings import BaseSettings
from twisted.python.failure import Failure

from crawler import rendering
from crawler.config import ConfigError
from crawler.extract.listing import parse_listing
from crawler.failures import classify_failure
from crawler.items import SectionLinkItem
from crawler.urls import canonicalize
from storage.walks import WalkState

if TYPE_CHECKING:
    from crawler.spiders.section import SectionSpider

logger = logging.getLogger(__name__)

# A listing page that answers these no longer exists: the listing got shorter.
GONE = frozenset({"http-404", "http-410"})
# The page number of a pager URL: its last run of digits (index_2.html, ?page=2).
_LAST_NUMBER = re.compile(r"^(.*\D)(\d+)(\D*)$")


@dataclass(frozen=True)
class WalkConfig:
    """PORTAL_INCREMENTAL, PORTAL_STOP_AFTER_KNOWN_PAGES (0: always walk to the end),
    PORTAL_LISTING_LOOKAHEAD (rendered pages guessed past the next one; 0: none) and
    PORTAL_EARLY_LISTINGS (known sections walked before the home page answers) and
    PORTAL_LISTING_PRIORITY (the scheduler priority of listing pages)."""

    incremental: bool = True
    stop_after_known: int = 1
    lookahead: int = 2
    early_entries: bool = True
    priority: int = -20

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> WalkConfig:
        stop = settings.getint("PORTAL_STOP_AFTER_KNOWN_PAGES", cls.stop_after_known)
        if stop < 0:
            raise ConfigError("PORTAL_STOP_AFTER_KNOWN_PAGES must be >= 0")
        lookahead = settings.getint("PORTAL_LISTING_LOOKAHEAD", cls.lookahead)
        if lookahead < 0:
            raise ConfigError("PORTAL_LISTING_LOOKAHEAD must be >= 0")
        fleet = bool(settings.get("FLEET_REDIS_URL"))
        if settings.getint("PORTAL_MAX_ARTICLES") or fleet:
            # A cut walk's guesses, or a guess answered by another worker, would need
            # bookkeeping the walk state does not keep: walk page by page there.
            lookahead = 0
        # Early entries are confirmed in the seeding process; another worker answering
        # one could not tell a stale entry from a failed page.
        early = settings.getbool("PORTAL_EARLY_LISTINGS", cls.early_entries) and not fleet
        return cls(incremental=settings.getbool("PORTAL_INCREMENTAL", cls.incremental),
                   stop_after_known=stop, lookahead=lookahead, early_entries=early,
                   priority=settings.getint("PORTAL_LISTING_PRIORITY", cls.priority))


class ListingWalker:
    """Listing pages of the spider's sections: requests, parsing, walk progress."""

    def __init__(self, spider: SectionSpider, walks: WalkState, config: WalkConfig) -> None:
        self.spider = spider
        self.walks = walks
        self.config = config
        self._requested: set[tuple[str, str]] = set()
        self._sections: set[str] = set()
        self._told_unsafe: set[str] = set()
        # Guessed pages not yet confirmed by a real next link, by (section, url): page.
        self._guessed: dict[tuple[str, str], int] = {}
        # Per section: no guess at or past this page (a guess failed there, or the end).
        self._guess_limit: dict[str, int] = {}
        # Pages walked in this run: a next link to one of them (a guess walked before the
        # page that links it) does not put it back on the frontier.
        self._walked: set[tuple[str, str]] = set()
        # Early entries (see the module docstring): (section, url) -> unconfirmed,
        # confirmed or stale; and the failures of unconfirmed ones, held: kind.
        self._early: dict[tuple[str, str], str] = {}
        self._held: dict[tuple[str, str], str] = {}

    @property
    def stats(self) -> Any:
        return self.spider.crawler.stats

    # -- requests ---------------------------------------------------------------------
    def start(self, section: str, url: str) -> Iterator[Request]:
        """Page 1 of *section*, then every page a cut walk of it left on the frontier."""
        self._sections.add(section)
        yield from self._page(url, section, 1, known_run=0)
        for left in self.walks.record(section).frontier:
            if (section, left.url) in self._requested:
                continue
            logger.info("section %s: resuming the listing walk cut in an earlier run at "
                        "page %d (%s)", section, left.page, left.url)
            self.stats.inc_value("portal/listing/resumed")
            yield from self._page(left.url, section, left.page, known_run=0)

    def start_early(self) -> Iterator[Request]:
        """Page 1 of every wanted section an earlier run found on the home page, before
        the home page has answered (PORTAL_EARLY_LISTINGS)."""
        if not self.config.early_entries:
            return
        for section, url in self.spider.known_sections(self.walks.entries()):
            if not self.spider.scope.allows_page(url):
                continue
            self._early[(section, url)] = "unconfirmed"
            self.stats.inc_value("portal/listing/early")
            logger.info("section %s -> %s (as the home page linked it last run; walked "
                        "before the home page answers)", section, url)
            yield from self.start(section, url)

    def confirm(self, found: dict[str, str] | None) -> None:
        """The home page answered and links *found* (section -> page 1), or it failed
        (None: early entries are then walked as they are). Held failures of confirmed
        entries are reported now; stale entries leave the frontier."""
        for section, url in (found or {}).items():
            self.walks.set_entry(section, url)
        for key, status in list(self._early.items()):
            if status != "unconfirmed":
                continue
            section, url = key
            confirmed = found is None or found.get(section) == url
            self._early[key] = "confirmed" if confirmed else "stale"
            held = self._held.pop(key, None)
            if confirmed:
                if held is not None:
                    self._report_failed(section, url, 1, held)
                continue
            self.stats.inc_value("portal/listing/early/stale")
            logger.info("section %s: the home page no longer links its listing at %s "
                        "(now: %s)", section, url, found.get(section, "not linked")
                        if found is not None else "?")
            if held is not None:
                self.walks.drop(section, url)

    def _page(self, url: str, section: str, page: int, known_run: int) -> Iterator[Request]:
        if (section, url) in self._requested:
            return
        self._requested.add((section, url))
        self.walks.schedule(section, url, page)
        yield self.request(url, section, page, known_run=known_run)

    def request(self, url: str, section: str, page: int, known_run: int = 0,
                render: bool = False, plain: bool = False) -> Request:
        spider = self.spider
        meta: dict[str, Any] = {"portal_kind": "listing", "portal_section": section,
                                "portal_page": page, "portal_listing_url": url,
                                "portal_known_run": known_run}
        render = not plain and (render or spider.config.render == "always"
                                or section in spider.render_sections)
        if render and spider.render_available:
            meta.update(rendering.listing_meta(spider.crawler))
        # Rendered requests repeat the plain request of the same URL: not a duplicate; a
        # guess's plain fetch may be repeated by the real link once it is forgotten.
        return Request(url, callback=spider.parse_listing, errback=spider.on_listing_error,
                       meta=meta, priority=self.config.priority,
                       dont_filter=plain or bool(meta.get("playwright")))

    # -- responses --------------------------------------------------------------------
    def parse(self, response: Response) -> Iterator[Request | SectionLinkItem]:
        spider = self.spider
        meta = response.meta
        section: str = meta["portal_section"]
        page: int = meta.get("portal_page", 1)
        url: str = meta.get("portal_listing_url", response.url)
        listing = parse_listing(spider.page_text(response), response.url)
        rendered = "playwright" in response.flags
        self.stats.inc_value(f"portal/listing_pages/{'rendered' if rendered else 'html'}")
        if (section, url) in self._guessed:
            if (not rendered and not listing.entries and listing.has_scripts
                    and page < self._guess_limit.get(section, page + 1)):
                # The guessed page exists (its plain fetch answered): now render it.
                yield self.request(url, section, page, render=True)
                return
            if not listing.entries or page >= self._guess_limit.get(section, page + 1):
                self._forget(section, url, page, "no article links" if not listing.entries
                             else "past the listing's end")
                return
            del self._guessed[(section, url)]
            self.stats.inc_value("portal/listing/lookahead/hit")
        if not listing.entries and listing.has_scripts and not rendered:
            yield from self._needs_rendering(response, section, page, url)
            return
        if not listing.entries:
            self._empty(section, page, url, rendered)
            # The page stays on the frontier; a static pager may still lead on.
            if listing.next_page and spider.scope.allows_page(listing.next_page):
                yield from self._page(listing.next_page, section, page + 1, known_run=0)
            return
        known = 0
        for entry in listing.entries:
            canonical = canonicalize(entry.url, spider.config.tracking_params)
            if spider.at_article_limit() and canonical not in spider.articles:
                logger.info("section %s: --max-articles reached on listing page %d (%s); "
                            "its walk resumes there next run", section, page, url)
                self.stats.inc_value("portal/listing/cut/max-articles")
                return
            if self.config.incremental and spider.crawl_state.known(canonical):
                known += 1
            yield from spider.follow_article(entry.url, canonical, section)
        links = len(listing.entries)
        run = meta.get("portal_known_run", 0) + 1 if known == links else 0
        nxt = listing.next_page
        if nxt is not None and not spider.scope.allows_page(nxt):
            nxt = None
        self._walked.add((section, url))
        if nxt is not None and self._may_stop(section, page, run):
            self.walks.page_walked(section, url, page, links=links)
            return
        if nxt is None:
            self._guess_limit[section] = min(page + 1, self._guess_limit.get(section, page + 1))
            self.walks.page_walked(section, url, page, links=links, end=True)
            logger.info("section %s: listing walked to its end (page %d, %s)", section, page,
                        url)
            self.stats.inc_value("portal/listing/walks_completed")
            return
        walked_next = (section, nxt) in self._walked
        self.walks.page_walked(section, url, page, links=links,
                               next_url=None if walked_next else nxt)
        if self._guessed.pop((section, nxt), None) is not None:
            # Guessed and in flight: now a real page of the walk (on the frontier).
            self.stats.inc_value("portal/listing/lookahead/hit")
        yield from self._page(nxt, section, page + 1, known_run=run)
        if rendered:
            yield from self._guess_ahead(section, url, page, nxt)

    # -- lookahead (see the module docstring) ----------------------------------------------
    def _guess_ahead(self, section: str, url: str, page: int, nxt: str) -> Iterator[Request]:
        lookahead = self.config.lookahead
        if not lookahead:
            return
        record = self.walks.record(section)
        if (self.config.incremental and self.config.stop_after_known
                and record.may_stop_at(page + 2)):
            return  # the walk may stop before these pages: guessing would walk further
        limit = self._guess_limit.get(section)
        for number, guess in guess_pages(url, page, nxt, lookahead):
            if limit is not None and number >= limit:
                return
            if (section, guess) in self._requested or not self.spider.scope.allows_page(guess):
                continue
            self._requested.add((section, guess))
            self._guessed[(section, guess)] = number
            self.stats.inc_value("portal/listing/lookahead/guessed")
            # Fetched plain first (one cheap request): a guess past the listing's end is
            # then a 404 answered by the server, not a page rendered in Chromium.
            yield self.request(guess, section, number, plain=True)

    def _forget(self, section: str, url: str, page: int, why: str) -> None:
        """A guess that did not hold: no more guesses from there; the real link, if it
        ever comes, requests the page again as an ordinary one."""
        self._guessed.pop((section, url), None)
        self._requested.discard((section, url))
        self._guess_limit[section] = min(page, self._guess_limit.get(section, page))
        self.stats.inc_value("portal/listing/lookahead/forgotten")
        logger.debug("section %s: guessed listing page %d (%s) forgotten: %s", section,
                     page, url, why)

    def _may_stop(self, section: str, page: int, known_run: int) -> bool:
        stop_after = self.config.stop_after_known
        if not (self.config.incremental and stop_after and known_run >= stop_after):
            return False
        record = self.walks.record(section)
        if record.may_stop_at(page):
            logger.info("section %s: page %d holds only known articles; not walking further "
                        "(PORTAL_STOP_AFTER_KNOWN_PAGES=%d, the last complete walk reached "
                        "page %d)", section, page, stop_after, record.complete_pages)
            self.stats.inc_value("portal/listing/stopped_early")
            return True
        if section not in self._told_unsafe:
            self._told_unsafe.add(section)
            reach = (f"reached only page {record.complete_pages}" if record.complete
                     else "is not on record")
            logger.info("section %s: page %d holds only known articles, but a complete walk "
                        "of this listing %s: walking on", section, page, reach)
        self.stats.inc_value("portal/listing/walked_on_known")
        return False

    def _needs_rendering(self, response: Response, section: str, page: int,
                         url: str) -> Iterator[Request]:
        spider = self.spider
        if spider.config.render != "never" and spider.render_available:
            logger.info("listing %s has no article links but scripts: rendering", response.url)
            spider.render_sections.add(section)
            spider.crawl_state.remember_rendered(section)
            yield self.request(url, section, page,
                               known_run=response.meta.get("portal_known_run", 0), render=True)
            return
        reason = "--render never" if spider.config.render == "never" else "no browser available"
        spider.report.needs_rendering.setdefault(section, response.url)
        spider.report.fail("needs-rendering", response.url, self.stats)
        logger.error("section %s: listing %s is filled by JavaScript but %s; its articles "
                     "cannot be found", section, response.url, reason)

    def _empty(self, section: str, page: int, url: str, rendered: bool) -> None:
        spider = self.spider
        if rendered and self.walks.record(section).links_found > 0:
            # A rendering that came back without the list (script failed, data late) is
            # not an empty listing: earlier walks found links here.
            spider.report.fail("listing-empty-render", url, self.stats)
            self.stats.inc_value("portal/listing/cut/empty-render")
            logger.error("section %s: rendered listing page %d (%s) holds no article links "
                         "where earlier walks found some; its walk resumes there next run",
                         section, page, url)
            return
        spider.report.fail("empty-listing", url, self.stats)
        self.stats.inc_value("portal/listing/cut/empty")
        logger.warning("section %s: listing page %d (%s) holds no article links", section,
                       page, url)

    def on_error(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        section = request.meta.get("portal_section")
        url = request.meta.get("portal_listing_url", request.url)
        page = request.meta.get("portal_page", 1)
        kind = classify_failure(failure)
        if (section, url) in self._guessed:
            self._forget(section, url, page, kind)
            return
        early = self._early.get((section, url)) if page == 1 else None
        if early == "unconfirmed":
            self._held[(section, url)] = kind  # reported once the home page confirms it
            return
        if early == "stale":
            self.walks.drop(section, url)
            logger.info("section %s: its former listing %s failed (%s); not reported, the "
                        "home page links it elsewhere", section, url, kind)
            return
        self._report_failed(section, url, page, kind, request.url)

    def _report_failed(self, section: str, url: str, page: int, kind: str,
                       request_url: str | None = None) -> None:
        if kind in GONE and page == 1:
            # Not a listing that got shorter: the section's listing is gone, and with
            # it every way to its articles. A hard failure (exit 5), not a soft 404.
            self.spider.report.fail("listing-gone", request_url or url, self.stats)
            self.stats.inc_value("portal/listing/cut/failed")
            logger.error("section %s: listing page 1 (%s) failed (%s): the section's "
                         "listing is gone; its articles cannot be found", section, url, kind)
            return
        self.spider.report.fail(kind, request_url or url, self.stats)
        if kind in GONE:
            self.walks.drop(section, url)
            self.stats.inc_value("portal/listing/gone")
            logger.info("section %s: listing page %d (%s) is gone (%s); dropped from the "
                        "walk", section, page, url, kind)
            return
        self.stats.inc_value("portal/listing/cut/failed")
        logger.warning("section %s: listing page %d (%s) failed (%s); its walk resumes there "
                       "next run", section, page, url, kind)

    def close(self) -> None:
        """Say which walks of this run were cut (they are resumed next run)."""
        for (section, url), kind in sorted(self._held.items()):
            # The home page never answered (the run was stopped): a failure all the same.
            self._report_failed(section, url, 1, kind)
        self._held.clear()
        cut: dict[str, list[Any]] = {}
        for left in self.walks.frontiers():
            if left.section in self._sections:
                cut.setdefault(left.section, []).append(left)
        for section, pages in sorted(cut.items()):
            first = min(pages, key=lambda p: p.page)
            self.stats.inc_value("portal/listing/walks_cut")
            logger.warning("section %s: listing walk cut with %d page(s) not walked (from "
                           "page %d, %s); the next run resumes there", section, len(pages),
                           first.page, first.url)


def guess_pages(url: str, page: int, nxt: str, count: int) -> list[tuple[int, str]]:
    """Pages ``page + 2`` … ``page + 1 + count`` of a pager whose URLs number the pages.

    *url* is page *page*, *nxt* its real next link (page + 1). The pattern holds when
    *nxt*'s last number is ``page + 1`` and *url* is *nxt* with ``page`` there (page 1
    may be any URL: ``index.html`` → ``index_2.html``). Otherwise: no guesses.
    """
    match = _LAST_NUMBER.match(nxt)
    if match is None or int(match.group(2)) != page + 1:
        return []
    head, _, tail = match.groups()
    if page > 1 and url != f"{head}{page}{tail}":
        return []
    return [(n, f"{head}{n}{tail}") for n in range(page + 2, page + 2 + count)]


__all__ = ["ListingWalker", "WalkConfig", "guess_pages"]
