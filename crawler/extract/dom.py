"""Small DOM helpers shared by the extractors (parsing, text, links, page chrome)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from parsel import Selector

from crawler.extract.errors import ExtractionError

logger = logging.getLogger(__name__)

# Characters XML (and so lxml) refuses in text; garbage pages carry them.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_CHROME_RE = re.compile(r"(^|[\s_-])(nav|navbar|menu|header|footer|foot|crumbs?|breadcrumbs?|"
                        r"copyright|share|sidebar|topbar)($|[\s_-])", re.IGNORECASE)
_SKIP_SCHEMES = ("javascript:", "mailto:", "tel:", "data:", "about:", "vbscript:")


def parse_html(html: str, url: str) -> Selector:
    """A parsel Selector over *html*; ExtractionError("unparseable") if lxml gives up."""
    if not isinstance(html, str):
        raise ExtractionError(url, "unparseable", f"expected str, got {type(html).__name__}")
    try:
        return Selector(text=_INVALID_XML.sub("", html) or "<html/>", type="html")
    except (etree.LxmlError, ValueError, TypeError) as exc:
        logger.debug("lxml cannot parse %s", url, exc_info=True)
        raise ExtractionError(url, "unparseable", str(exc)[:200]) from exc


def tag_of(el: Any) -> str:
    """Lower-case tag name; '' for comments and processing instructions."""
    tag = getattr(el, "tag", None)
    return tag.lower() if isinstance(tag, str) else ""


def node_text(el: Any) -> str:
    """Text content of an lxml element, without script/style/noscript."""
    if el is None or not tag_of(el):
        return ""
    parts: list[str] = []
    for node in el.iter():
        tag = tag_of(node)
        if tag and tag not in ("script", "style", "noscript", "template") and node.text:
            if not _inside_skipped(node, el):
                parts.append(node.text)
        if node is not el and node.tail and not _inside_skipped(node.getparent(), el):
            parts.append(node.tail)
    return "".join(parts)


_BLOCKS = {"div", "p", "table", "ul", "ol", "dl", "section", "article", "header", "footer",
           "nav", "aside", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "form", "main"}
_HIDDEN = {"script", "style", "noscript", "template"}


def inline_text(el: Any, depth: int = 0) -> str:
    """Text of *el* without nested block elements: what a title or a span itself says.

    Broken markup (an unclosed ``<span>`` swallowing the article) then does not leak
    the body into a metadata field.
    """
    if el is None or not tag_of(el):
        return ""
    parts = [el.text or ""]
    for child in el:
        tag = tag_of(child)
        if tag and tag not in _BLOCKS and tag not in _HIDDEN and depth < 30:
            parts.append(inline_text(child, depth + 1))
        elif tag == "br":
            parts.append(" ")
        parts.append(child.tail or "")
    return "".join(parts)


def _inside_skipped(node: Any, stop: Any) -> bool:
    while node is not None:
        if tag_of(node) in ("script", "style", "noscript", "template"):
            return True
        if node is stop:
            return False
        node = node.getparent()
    return False


def absolute(base_url: str, href: str | None) -> str | None:
    """Absolute http(s) URL of *href* on *base_url*; None for scripts, anchors, junk."""
    if not href:
        return None
    href = href.strip().replace("\n", "").replace("\r", "").replace("\t", "")
    if not href or href.startswith("#") or href.lower().startswith(_SKIP_SCHEMES):
        return None
    try:
        joined = urljoin(base_url, href)
        parts = urlsplit(joined)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return joined.split("#", 1)[0]


def is_chrome(el: Any) -> bool:
    """Whether *el* is, or sits in, page chrome: nav, header, footer, menus, share bars."""
    node = el
    while node is not None:
        tag = tag_of(node)
        if tag in ("nav", "header", "footer", "aside"):
            return True
        if tag:
            names = f"{node.get('class') or ''} {node.get('id') or ''}"
            if _CHROME_RE.search(names):
                return True
        node = node.getparent()
    return False


def css_first(sel: Selector, *queries: str) -> Selector | None:
    """The first element matched by the first query that matches anything."""
    for query in queries:
        found = sel.css(query)
        if found:
            return found[0]
    return None


_XML_SPACE = re.compile("[ \t\r\n]+")


class ElementIndex:
    """A page's elements by ``id`` and by class name, in document order.

    One pass over the tree answers every ``#id`` and ``.class`` query of the article
    extractor; each ``Selector.css`` call would walk the whole document again (they were
    half of the extraction time). Matches what cssselect's XPath does: ids compared
    exactly, class names split on XML whitespace (``normalize-space``), case kept.
    """

    def __init__(self, root: Any) -> None:
        self._ids: dict[str, list[Any]] = {}
        self._classes: dict[str, list[Any]] = {}
        for el in root.iter(etree.Element):
            attrib = el.attrib
            ident = attrib.get("id")
            if ident is not None:
                self._ids.setdefault(ident, []).append(el)
            names = attrib.get("class")
            if names:
                for name in dict.fromkeys(_XML_SPACE.split(names.strip(" \t\r\n"))):
                    if name:
                        self._classes.setdefault(name, []).append(el)

    def find(self, query: str) -> list[Any]:
        """Elements matching ``#id`` or ``.class`` (nothing else is supported)."""
        if query[:1] == "#":
            return self._ids.get(query[1:], [])
        if query[:1] == ".":
            return self._classes.get(query[1:], [])
        raise ValueError(f"ElementIndex supports #id and .class only, not {query!r}")

    def first(self, *queries: str) -> Any | None:
        """The first element matched by the first query that matches anything."""
        for query in queries:
            found = self.find(query)
            if found:
                return found[0]
        return None
