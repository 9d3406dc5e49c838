"""Section listing pages: article links in page order, the next listing page, JS hints.

Site selectors (``div.list-box ul li``) first; when they match nothing, every link
shaped like an article URL outside the page chrome.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from parsel import Selector

from crawler.extract.dom import absolute, is_chrome, node_text, parse_html, tag_of
from crawler.extract.errors import ExtractionError
from crawler.extract.models import Listing, ListingEntry
from crawler.textnorm import clean_text

logger = logging.getLogger(__name__)

_UUID = r"[0-9a-fA-F][0-9a-fA-F-]{19,}"
ARTICLE_PATH_RE = re.compile(
    rf"^(?:/gate/big5/[^/]+)?(?:/n/\d{{8}}|/\d{{4}}-\d{{2}}-\d{{2}})/{_UUID}(?:_\d+)?\.html?$")
NEXT_TEXTS = {"下一页", "下一頁", "下页", "下頁", "next", "next page", "›", ">", "»", "›>",
              "后页", "後頁"}
_NEXT_TRIM = re.compile(r"^[\s<>›»]+|[\s<>›»]+$")
_NON_JS_TYPES = ("application/ld+json", "application/json", "text/template", "text/html",
                 "text/x-template")


def is_article_url(url: str) -> bool:
    """Whether *url* is shaped like a portal article (newer, older or gateway form)."""
    try:
        path = urlsplit(url.strip()).path
    except (ValueError, AttributeError):
        return False
    return bool(ARTICLE_PATH_RE.match(path))


def parse_listing(html: str, base_url: str) -> Listing:
    """Article links of a listing page; never raises on bad markup (an empty Listing)."""
    try:
        sel = parse_html(html, base_url)
        return _parse(sel, base_url)
    except ExtractionError:
        logger.warning("listing %s is unparseable", base_url)
    except (ValueError, TypeError, AttributeError):
        logger.warning("cannot read listing %s", base_url, exc_info=True)
    return Listing(entries=[], next_page=None, has_scripts=False, method="fallback")


def _parse(sel: Selector, base_url: str) -> Listing:
    entries = _site_entries(sel, base_url)
    method = "site-selectors"
    if not entries:
        entries = _fallback_entries(sel, base_url)
        method = "fallback"
    return Listing(entries=entries, next_page=find_next_page(sel, base_url),
                   has_scripts=has_scripts(sel), method=method)


def _site_entries(sel: Selector, base_url: str) -> list[ListingEntry]:
    found: list[ListingEntry] = []
    for li in sel.css("div.list-box ul li"):
        link = li.css(".title a[href]") or li.css("a[href]")
        if not link:
            continue
        url = absolute(base_url, link[0].attrib.get("href"))
        if url is None:
            continue
        title = clean_text(node_text(link[0].root)) or clean_text(link[0].attrib.get("title", ""))
        img = li.css(".pic a img") or li.css("img")
        image = _img_src(img[0].root, base_url) if img else None
        found.append(ListingEntry(url=url, title=title or None, image=image))
    return _dedupe(found)


def _fallback_entries(sel: Selector, base_url: str) -> list[ListingEntry]:
    found: list[ListingEntry] = []
    for a in sel.xpath("//a[@href]"):
        url = absolute(base_url, a.attrib.get("href"))
        if url is None or not is_article_url(url) or is_chrome(a.root):
            continue
        title = clean_text(node_text(a.root)) or clean_text(a.attrib.get("title", ""))
        img = a.css("img")
        image = _img_src(img[0].root, base_url) if img else None
        found.append(ListingEntry(url=url, title=title or None, image=image))
    return _dedupe(found)


def _img_src(img: Any, base_url: str) -> str | None:
    for attr in ("src", "data-src", "data-original", "data-lazy-src"):
        url = absolute(base_url, img.get(attr))
        if url:
            return url
    return None


def _dedupe(entries: list[ListingEntry]) -> list[ListingEntry]:
    """One entry per URL at its first position; title/image filled from later links."""
    merged: dict[str, ListingEntry] = {}
    for entry in entries:
        old = merged.get(entry.url)
        if old is None:
            merged[entry.url] = entry
        elif old.title is None or old.image is None:
            merged[entry.url] = ListingEntry(entry.url, old.title or entry.title,
                                             old.image or entry.image)
    return list(merged.values())


def is_next_text(text: str) -> bool:
    """Whether a link text means "next page" (下一页, 下一頁, Next, ›, > …)."""
    text = clean_text(text).casefold()
    if not text or len(text) > 12:
        return False
    return text in NEXT_TEXTS or _NEXT_TRIM.sub("", text) in NEXT_TEXTS


def find_next_page(sel: Selector, base_url: str) -> str | None:
    """Absolute URL of the "next page" link (text or rel=next), never the page itself."""
    current = base_url.split("#", 1)[0]
    for node in sel.xpath("//a[@href] | //link[@href]"):
        el = node.root
        rel = (el.get("rel") or "").lower().split()
        if "next" not in rel and not (tag_of(el) == "a" and is_next_text(node_text(el))):
            continue
        url = absolute(base_url, el.get("href"))
        if url and url != current:
            return url
    return None


def has_scripts(sel: Selector) -> bool:
    """Whether the page runs JavaScript (src= or non-empty inline code)."""
    for script in sel.xpath("//script"):
        kind = (script.attrib.get("type") or "").strip().lower()
        if kind in _NON_JS_TYPES:
            continue
        if script.attrib.get("src", "").strip() or "".join(script.xpath("text()").getall()).strip():
            return True
    return False


__all__ = ["Listing", "ListingEntry", "find_next_page", "has_scripts", "is_article_url",
           "is_next_text", "parse_listing"]
