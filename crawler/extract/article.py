"""Article pages: title, metadata, body, images and the link to a continuation page.

Site selectors of the newer template (ids ``#atitle``, ``#abody`` …) and of the older
one (classes ``.atitle``, ``.abody`` …) come first; generic fallbacks (``<h1>``,
``og:title``, ``<title>``, the element with the most paragraph text) keep the crawl
going when the site changes, and every fallback is named in ``warnings``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from parsel import Selector

from crawler.extract.body import body_from_element, readability_body
from crawler.extract.dom import (
    ElementIndex,
    absolute,
    inline_text,
    is_chrome,
    node_text,
    parse_html,
)
from crawler.extract.errors import ExtractionError
from crawler.extract.listing import is_next_text
from crawler.extract.meta import extract_meta
from crawler.extract.models import ArticlePage, ImageRef
from crawler.textnorm import clean_text, fold_label

logger = logging.getLogger(__name__)

_SITE_RE = re.compile(r"国际在线|國際在線|频道|頻道|广播电台|廣播電臺|\bcri\b", re.IGNORECASE)
_SUFFIX = re.compile(r"\s*[_|｜\-–—－]+\s*([^_|｜\-–—－]*)$")
MAX_TITLE = 300
MAX_PAGES = 50
_TOTAL_KEYS = ("total", "pages", "totalPage", "pageCount", "count")
_PAGE_NAME = re.compile(r"^(?P<stem>.+?)(?:_(?P<n>\d+))?\.s?html?$", re.IGNORECASE)


def parse_article(html: str, url: str) -> ArticlePage:
    """Extract one article page; raises only ExtractionError (missing-title/-body,
    unparseable)."""
    try:
        return _parse(parse_html(html, url), url)
    except ExtractionError:
        raise
    except (etree.LxmlError, RecursionError, UnicodeError) as exc:
        logger.debug("cannot parse %s", url, exc_info=True)
        raise ExtractionError(url, "unparseable", type(exc).__name__) from exc
    except Exception as exc:
        # The contract is "ExtractionError or a page"; an unexpected error is a bug,
        # logged loudly, and still reported to the spider as an extraction failure.
        logger.warning("unexpected error extracting %s", url, exc_info=True)
        raise ExtractionError(url, "unparseable", repr(exc)[:200]) from exc


def _parse(sel: Selector, url: str) -> ArticlePage:
    warnings: list[str] = []
    index = ElementIndex(sel.root)
    if index.find("#atitle") or index.find("#abody"):
        template = "new"
    elif index.find(".atitle") or index.find(".abody"):
        template = "old"
    else:
        template = "fallback"

    title_el = index.first("#atitle", ".atitle")
    title = clean_text(inline_text(title_el)) if title_el is not None else ""
    if not title or len(title) > MAX_TITLE:
        title = fallback_title(sel)
        warnings.append("title")
    if not title:
        raise ExtractionError(url, "missing-title")

    paragraphs: list[str] = []
    images: list[ImageRef] = []
    body_el = index.first("#abody", ".abody")
    if body_el is not None:
        paragraphs, images = body_from_element(body_el, url)
    if not paragraphs:
        warnings.append("body")
        for candidate in readability_body(sel.root):
            paragraphs, images = body_from_element(candidate, url)
            paragraphs = [p for p in paragraphs if p != title]
            if paragraphs:
                break
    if not paragraphs:
        raise ExtractionError(url, "missing-body")

    meta = extract_meta(sel, exclude=body_el, index=index)
    for name in ("published_at", "source", "editor"):
        if not meta.values.get(name):
            warnings.append(f"missing-{name}")
        elif meta.found_by.get(name) != "site" and template != "fallback":
            warnings.append(name)
    return ArticlePage(
        title=title,
        published_at=meta.values["published_at"],
        source=meta.values["source"],
        editor=meta.values["editor"],
        chief_editor=meta.values["chief_editor"],
        paragraphs=paragraphs,
        images=images,
        next_page=find_continuation(sel, url),
        template=template,
        warnings=warnings,
    )


def strip_site_suffix(title: str) -> str:
    """``标题 _ 国际在线`` -> ``标题``: drop trailing parts that name the site."""
    title = clean_text(title)
    while True:
        match = _SUFFIX.search(title)
        if match is None or match.start() == 0 or not _SITE_RE.search(match.group(1)):
            return title
        title = clean_text(title[: match.start()])


def _is_site_name(text: str) -> bool:
    folded = fold_label(text)
    return not folded or folded in ("国际在线", "cri", "国际在线贵州频道", "贵州频道")


def fallback_title(sel: Selector) -> str:
    """Title from ``<h1>`` (outside the page chrome), ``og:title``, then ``<title>``."""
    for h1 in sel.css("h1"):
        text = clean_text(inline_text(h1.root))
        if text and len(text) <= MAX_TITLE and not _is_site_name(text) and not is_chrome(h1.root):
            return text
    for query in ('meta[property="og:title"]::attr(content)',
                  'meta[name="og:title"]::attr(content)', "title::text"):
        text = strip_site_suffix(sel.css(query).get() or "")
        if text and len(text) <= MAX_TITLE and not _is_site_name(text):
            return text
    return ""


def _page_key(url: str) -> tuple[str, int] | None:
    try:
        name = urlsplit(url).path.rsplit("/", 1)[-1]
    except ValueError:
        return None
    match = _PAGE_NAME.match(name)
    if match is None:
        return None
    return match["stem"], int(match["n"] or 1)


def find_continuation(sel: Selector, url: str) -> str | None:
    """The next page of a split article: ``<uuid>_N.html`` with N above this page's."""
    here = _page_key(url)
    if here is None:
        return None
    stem, number = here
    numbered: dict[int, str] = {}
    for a in sel.root.iter("a"):
        raw = a.get("href")
        # Only an href naming the stem can lead to another page of it (an empty or
        # query-only href resolves to this very page): skip the rest before urljoin.
        if raw is None or stem not in raw.replace("\n", "").replace("\r", "").replace("\t", ""):
            continue
        href = absolute(url, raw)
        key = _page_key(href) if href else None
        if href is None or key is None or key[0] != stem or key[1] <= number:
            continue
        if is_next_text(node_text(a)) or "next" in (a.get("rel") or "").lower():
            return href
        numbered.setdefault(key[1], href)
    if numbered:
        return numbered[min(numbered)]
    return _from_page_data(sel, url, stem, number)


def _from_page_data(sel: Selector, url: str, stem: str, number: int) -> str | None:
    """``<div id="abody" pageData='{"total": 3}'>`` with no pager links (JS pager)."""
    raw = (sel.css("#abody::attr(pagedata), .abody::attr(pagedata)").get() or "").strip()
    total: Any = None
    if raw.isdigit():
        total = int(raw)
    elif raw.startswith("{"):
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if isinstance(data, dict):
            total = next((data[k] for k in _TOTAL_KEYS if isinstance(data.get(k), int)), None)
    if not isinstance(total, int) or not number < total <= MAX_PAGES:
        return None
    return absolute(url, f"{stem}_{number + 1}.html")


__all__ = ["ArticlePage", "ImageRef", "fallback_title", "find_continuation", "parse_article",
           "strip_site_suffix"]

