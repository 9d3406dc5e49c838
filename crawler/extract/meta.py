"""Article metadata: publication time, source, editor, chief editor.

Reads the labelled spans of both templates (``#apublishtime``/``.acreatedtime``,
``#asource``, ``#aeditor``, ``.achiefeditor``) and the run-together line the portal
also writes, in either script and with ASCII or full-width colons::

    2025-07-06 16:21:55來源:中央廣電總臺國際在線編輯:楊展淩責編:王悅陽
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from parsel import Selector

from crawler.extract.dom import ElementIndex, inline_text, node_text, tag_of
from crawler.textnorm import clean_text, find_cn_datetime

FIELDS = ("published_at", "source", "editor", "chief_editor")
_LABELS: dict[str, str] = {
    "来源": "source", "來源": "source", "稿源": "source",
    "责任编辑": "chief_editor", "責任編輯": "chief_editor", "责编": "chief_editor",
    "責編": "chief_editor", "编辑": "editor", "編輯": "editor",
}
_LABEL_RE = re.compile(
    "(" + "|".join(sorted(map(re.escape, _LABELS), key=len, reverse=True)) + r")\s*[:：]\s*")
_BRACKETS = "[]【】()（）「」"
MAX_META_LINE = 200
MAX_FIELD = 60
_SPAN_TAGS = {"span", "div", "p", "em", "i", "li", "font", "b", "strong", "td"}

SELECTORS: dict[str, tuple[str, ...]] = {
    "published_at": ("#apublishtime", ".apublishtime", "#acreatedtime", ".acreatedtime",
                     ".pubtime", ".time"),
    "source": ("#asource", ".asource"),
    "editor": ("#aeditor", ".aeditor"),
    "chief_editor": ("#achiefeditor", ".achiefeditor", "#achiefEditor"),
}
LINE_SELECTORS = (".acreatedtime", ".list-brief", ".info", ".ainfo", ".article-info",
                  ".source")


@dataclass
class Meta:
    """Metadata found so far; ``found_by`` says which fields came from the site spans."""

    values: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(FIELDS))
    found_by: dict[str, str] = field(default_factory=dict)

    def offer(self, name: str, value: str | None, how: str) -> None:
        if value and not self.values.get(name) and len(value) <= MAX_FIELD:
            self.values[name] = value
            self.found_by[name] = how


def parse_meta_line(text: str) -> dict[str, str]:
    """Split a metadata line into fields; any of them may be missing."""
    text = clean_text(text)
    result: dict[str, str] = {}
    labels = list(_LABEL_RE.finditer(text))
    head = text[: labels[0].start()] if labels else text
    date = find_cn_datetime(head) or (find_cn_datetime(text) if labels else None)
    if date is not None:
        result["published_at"] = date.group(0).strip()
    for i, label in enumerate(labels):
        end = labels[i + 1].start() if i + 1 < len(labels) else len(text)
        value = _clean_value(text[label.end():end])
        name = _LABELS[label.group(1)]
        if value and name not in result:
            result[name] = value
    return result


def _clean_value(value: str) -> str:
    value = clean_text(value).strip(_BRACKETS + " \u3000|｜,，;；")
    # A time written after the label ("来源：新华网 2025-07-06") is not part of it.
    date = find_cn_datetime(value)
    if date is not None and date.start() > 0:
        value = value[: date.start()]
    return clean_text(value)


def _span_value(el: Any, name: str) -> str | None:
    if name == "source":
        link = next(el.iter("a"), None)
        linked = clean_text(inline_text(link)) if link is not None else ""
        if linked and len(linked) <= MAX_FIELD:
            return linked
    text = clean_text(inline_text(el))
    if not text or len(text) > MAX_META_LINE:
        return None
    parsed = parse_meta_line(text)
    if name in parsed:
        return parsed[name]
    if name == "published_at":
        return None  # a time span without a time
    if _LABEL_RE.search(text):
        return None  # labelled as some other field
    return _clean_value(text) or None


def extract_meta(sel: Selector, exclude: Any = None, index: ElementIndex | None = None) -> Meta:
    """Metadata from site spans, then metadata lines, then any short matching text.

    ``index``: the page's ElementIndex when the caller has one (it answers SELECTORS).
    """
    meta = Meta()
    index = index if index is not None else ElementIndex(sel.root)
    for name, queries in SELECTORS.items():
        for query in queries:
            for el in index.find(query)[:3]:
                meta.offer(name, _span_value(el, name), "site")
    for query in LINE_SELECTORS:
        for el in index.find(query)[:5]:
            text = node_text(el)
            if len(text) > 2 * MAX_META_LINE:
                continue
            for name, value in parse_meta_line(text).items():
                meta.offer(name, value, "site")
    if not all(meta.values.get(n) for n in ("published_at", "source")):
        best = _best_line(sel, exclude)
        for name, value in best.items():
            meta.offer(name, value, "line")
    if not all(meta.values.get(n) for n in ("source", "editor", "chief_editor")):
        for name, value in _labelled_spans(sel, exclude).items():
            meta.offer(name, value, "line")
    if not meta.values.get("published_at"):
        for query in ('meta[name="publishdate"]::attr(content)',
                      'meta[property="article:published_time"]::attr(content)',
                      'meta[name="pubdate"]::attr(content)'):
            raw = sel.css(query).get()
            date = find_cn_datetime(raw or "")
            if date is not None:
                meta.offer("published_at", date.group(0).strip(), "meta")
                break
    return meta


def _best_line(sel: Selector, exclude: Any) -> dict[str, str]:
    """The short element text, starting with a time, that yields the most fields."""
    best: dict[str, str] = {}
    best_len = 0
    for root in _body_elements(sel):
        if exclude is not None and _within(root, exclude):
            continue
        if len(root.text_content()) > 4 * MAX_META_LINE:  # cheap pre-check
            continue
        text = clean_text(node_text(root))
        if not text or len(text) > MAX_META_LINE:
            continue
        date = find_cn_datetime(text)
        if date is None or date.start() > 10 or not _LABEL_RE.search(text):
            continue
        parsed = parse_meta_line(text)
        if len(parsed) > len(best) or (len(parsed) == len(best) and len(text) < best_len):
            best, best_len = parsed, len(text)
    return best


def _labelled_spans(sel: Selector, exclude: Any) -> dict[str, str]:
    """Short elements that start with a label, e.g. ``<span>責編：王悅陽</span>``."""
    found: dict[str, str] = {}
    for root in _body_elements(sel):
        if tag_of(root) not in _SPAN_TAGS or len(root.text_content()) > MAX_FIELD + 10:
            continue
        text = clean_text(inline_text(root))
        match = _LABEL_RE.match(text)
        if match is None or (exclude is not None and _within(root, exclude)):
            continue
        for name, value in parse_meta_line(text).items():
            found.setdefault(name, value)
    return found


def looks_like_meta_line(text: str) -> bool:
    """Whether a short text is a metadata line (time first, then labelled fields)."""
    if len(text) > MAX_META_LINE or not _LABEL_RE.search(text):
        return False
    date = find_cn_datetime(text)
    return date is not None and date.start() <= 10 and len(parse_meta_line(text)) >= 2


def _body_elements(sel: Selector) -> Any:
    """Elements under <body> (lxml, not parsel: this runs over every element)."""
    for body in sel.root.iter("body"):
        for el in body.iterdescendants():
            if tag_of(el) and tag_of(el) not in ("script", "style"):
                yield el
        return


def _within(node: Any, ancestor: Any) -> bool:
    while node is not None:
        if node is ancestor:
            return True
        node = node.getparent()
    return False
