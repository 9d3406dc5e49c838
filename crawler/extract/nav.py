"""Home-page navigation: the section links, and finding one by its label in either script.

Section paths are unknown and never hard-coded: a section is whatever URL the link
labelled e.g. 老外在貴州 / 老外在贵州 points to.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from crawler.extract.dom import absolute, node_text, parse_html, tag_of
from crawler.extract.errors import ExtractionError
from crawler.extract.models import NavLink
from crawler.textnorm import clean_text, fold_label

logger = logging.getLogger(__name__)

SITE_SELECTORS = ("div.nav a", "ul.nav a", "#nav a", ".menu a", "header nav a", "nav a",
                  "header a", ".navbar a", ".nav-list a", ".head-nav a")
MIN_SITE_LINKS = 3
MAX_LABEL_CHARS = 16
# The fallback looks at the links at the top of the page only.
FALLBACK_LINKS = 80
_SEPARATORS = re.compile(r"^[\s|｜/·•]+|[\s|｜/·•]+$")


def find_nav_links(html: str, base_url: str) -> list[NavLink]:
    """Links of the home-page navigation in page order (site selectors, else top links)."""
    try:
        sel = parse_html(html, base_url)
    except ExtractionError:
        logger.warning("home page %s is unparseable: no navigation links", base_url)
        return []
    try:
        site = _collect((a.root for q in SITE_SELECTORS for a in sel.css(q)), base_url)
        if len(site) >= MIN_SITE_LINKS:
            return site
        top = [a.root for a in sel.xpath("//body//a[@href] | /html/a[@href]")[:FALLBACK_LINKS]]
        fallback = _collect(top, base_url)
    except (ValueError, TypeError, AttributeError):  # lxml oddities on garbage input
        logger.warning("cannot read navigation of %s", base_url, exc_info=True)
        return []
    logger.debug("navigation of %s: %d site-selector links, using %d top links",
                 base_url, len(site), len(fallback))
    merged = site + [link for link in fallback if link not in site]
    return merged


def _collect(anchors: Iterable[Any], base_url: str) -> list[NavLink]:
    links: list[NavLink] = []
    seen: set[tuple[str, str]] = set()
    for anchor in anchors:
        if tag_of(anchor) != "a":
            continue
        label = _label(anchor)
        url = absolute(base_url, anchor.get("href"))
        if not label or not url or len(label) > MAX_LABEL_CHARS:
            continue
        key = (label, url)
        if key not in seen:
            seen.add(key)
            links.append(NavLink(label=label, url=url))
    return links


def _label(anchor: Any) -> str:
    text = clean_text(node_text(anchor))
    if not text:
        text = clean_text(anchor.get("title") or "")
    return _SEPARATORS.sub("", text)


def _loose(label: str) -> str:
    """fold_label without punctuation: 'Hi 贵州' matches 'Hi,貴州!'."""
    return "".join(ch for ch in fold_label(label)
                   if not unicodedata.category(ch).startswith(("P", "S")))


def find_section(links: list[NavLink], label: str) -> NavLink | None:
    """The first link whose label equals *label* up to script, width, case and spaces."""
    wanted = fold_label(label)
    if not wanted:
        return None
    for link in links:
        if fold_label(link.label) == wanted:
            return link
    loose = _loose(label)
    if loose:
        for link in links:
            if _loose(link.label) == loose:
                return link
    return None


__all__ = ["NavLink", "find_nav_links", "find_section"]
