"""Article body: paragraphs, images and their captions, without boilerplate.

The body element is walked into *blocks* (a ``<p>``, a bare text run between ``<br>``s,
an image); blocks then become paragraphs, images or captions. A caption is the short
line right after an image that is centred, classed as a caption or carries a photo
credit (攝影 …). The CRI copyright notice and everything after it is dropped.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from crawler.extract.dom import absolute, is_chrome, node_text, tag_of
from crawler.extract.meta import looks_like_meta_line
from crawler.extract.models import ImageRef
from crawler.textnorm import clean_text

logger = logging.getLogger(__name__)

SKIP_TAGS = {"script", "style", "noscript", "template", "iframe", "video", "audio", "object",
             "embed", "form", "button", "input", "select", "textarea", "head", "title", "svg"}
BLOCK_TAGS = {"p", "div", "section", "article", "center", "figure", "figcaption", "table",
              "tbody", "thead", "tfoot", "tr", "td", "th", "ul", "ol", "li", "dl", "dd", "dt",
              "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "main", "hr", "address",
              "caption"}
MAX_DEPTH = 120
MAX_CAPTION = 80
_BOILER_BOX = re.compile(r"^(page|pages|pager|paging|page-?box|pagination|autopage|"
                         r"b?d?share.*|bshare.*|qrcode.*|.*copyright.*)$", re.IGNORECASE)
_CENTER_STYLE = re.compile(r"text-align\s*:\s*center", re.IGNORECASE)
_CAPTION_CLASS = re.compile(r"caption|pic-?info|picinfo|img-?desc|pic-?txt|pic-?text|imgtxt",
                            re.IGNORECASE)
_CREDIT = re.compile(r"摄影|攝影|图片来源|圖片來源|圖片来源|供图|供圖|图为|圖為|"
                     r"[图圖]\s*[/／:：]|[摄攝]\s*$|\(图\)|（图）|photo", re.IGNORECASE)
COPYRIGHT_RE = re.compile(r"[国國][际際]在[线線]\s*版[权權]\s*[与與]\s*信息\s*[产産產]品\s*"
                          r"[内內]容\s*[销銷]售\s*的?\s*[声聲]明")
_TRAILER = re.compile(r"^[\[【(（]?\s*(责任编辑|責任編輯|责编|責編|编辑|編輯|编审|編審)\s*[:：]")
_PAGER = re.compile(r"^(?:[上下]一?[页頁]|首[页頁]|尾[页頁]|末[页頁]|共\s*\d+\s*[页頁]|"
                    r"第\s*\d+\s*[页頁]|\d{1,3}|[<>«»‹›|/…\s.\[\]])+$")
_WIDGETS = ("分享到", "扫一扫", "掃一掃", "返回顶部", "返回頂部", "打印本页", "关闭窗口", "【纠错】")


@dataclass
class Block:
    """A run of body content between block boundaries."""

    text: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    centered: bool = False
    caption_class: bool = False


class _Walker:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.blocks: list[Block] = []
        self.current = Block()

    def flush(self) -> None:
        if "".join(self.current.text).strip() or self.current.images:
            self.blocks.append(self.current)
        self.current = Block()

    def add_text(self, text: str | None, centered: bool, caption: bool) -> None:
        if text:
            self.current.text.append(text)
            if text.strip():
                self.current.centered |= centered
                self.current.caption_class |= caption

    def walk(self, el: Any, centered: bool, caption: bool, depth: int) -> None:
        self.add_text(el.text, centered, caption)
        for child in el:
            tag = tag_of(child)
            if not tag or tag in SKIP_TAGS or _is_boilerplate_box(child):
                pass
            elif tag in ("br", "hr"):
                self.flush()
            elif tag == "img":
                src = image_url(child, self.base_url)
                if src:
                    self.current.images.append(src)
                    self.current.centered |= centered
            else:
                c2 = centered or _is_centered(child)
                k2 = (caption or tag == "figcaption"
                      or bool(_CAPTION_CLASS.search(_names(child))))
                block = tag in BLOCK_TAGS
                if block:
                    self.flush()
                if depth >= MAX_DEPTH:
                    self.add_text(node_text(child), c2, k2)
                else:
                    self.walk(child, c2, k2, depth + 1)
                if block:
                    self.flush()
            self.add_text(child.tail, centered, caption)


def _names(el: Any) -> str:
    return f"{el.get('class') or ''} {el.get('id') or ''}"


def _is_boilerplate_box(el: Any) -> bool:
    return any(_BOILER_BOX.match(name) for name in _names(el).split())


def _is_centered(el: Any) -> bool:
    return (tag_of(el) == "center" or (el.get("align") or "").lower() == "center"
            or bool(_CENTER_STYLE.search(el.get("style") or ""))
            or "center" in (el.get("class") or "").lower())


def image_url(img: Any, base_url: str) -> str | None:
    """Absolute URL of an ``<img>`` (lazy-loading attributes too); None for pixels."""
    for attr in ("data-original", "data-src", "src", "data-lazy-src"):
        url = absolute(base_url, img.get(attr))
        if url:
            return url
    return None


def is_boilerplate(text: str) -> bool:
    """Editor trailers, share widgets, pager text: never body text."""
    if len(text) < 60 and (_TRAILER.match(text) or _PAGER.match(text)):
        return True
    return len(text) < 60 and any(w in text for w in _WIDGETS)


def is_caption(text: str, block: Block) -> bool:
    """Whether *text*, right after an image, is that image's caption."""
    if len(text) >= MAX_CAPTION:
        return False
    return block.centered or block.caption_class or bool(_CREDIT.search(text))


def body_from_element(el: Any, base_url: str) -> tuple[list[str], list[ImageRef]]:
    """Paragraphs and images of a body element."""
    walker = _Walker(base_url)
    walker.walk(el, _is_centered(el), False, 0)
    walker.flush()
    return blocks_to_body(walker.blocks)


def blocks_to_body(blocks: list[Block]) -> tuple[list[str], list[ImageRef]]:
    """Turn walked blocks into paragraphs and captioned images."""
    paragraphs: list[str] = []
    images: list[list[Any]] = []  # [url, caption]
    awaiting: int | None = None  # index of the image a caption may still follow
    for block in blocks:
        text = clean_text("".join(block.text))
        stop = COPYRIGHT_RE.search(text)
        if stop:
            text = clean_text(text[: stop.start()])
        if block.images:
            images.extend([url, None] for url in block.images)
            awaiting = len(images) - 1
            if text and is_caption(text, block):
                images[-1][1] = text
                awaiting = None
            elif text and not is_boilerplate(text):
                paragraphs.append(text)
                awaiting = None
        elif text:
            if awaiting is not None and is_caption(text, block):
                images[awaiting][1] = text
            elif not is_boilerplate(text) and not looks_like_meta_line(text):
                paragraphs.append(text)
            awaiting = None
        if stop:
            break
    return paragraphs, [ImageRef(url=url, caption=caption) for url, caption in images]


def readability_body(root: Any) -> list[Any]:
    """Elements holding the most paragraph text outside the page chrome, best first."""
    scores: dict[Any, float] = defaultdict(float)
    for p in root.iter("p"):
        text = clean_text(node_text(p))
        if not text or COPYRIGHT_RE.search(text) or is_chrome(p):
            continue
        parent = p.getparent()
        if parent is None:
            continue
        scores[parent] += len(text)
        grand = parent.getparent()
        if grand is not None:
            scores[grand] += len(text) / 2
    if not scores:
        for el in root.iter():
            if not tag_of(el) or tag_of(el) in SKIP_TAGS:
                continue
            direct = (el.text or "") + "".join(c.tail or "" for c in el)
            if len(direct.strip()) >= 20 and not is_chrome(el):
                scores[el] = len(direct.strip())
    return sorted(scores, key=lambda el: -scores[el])[:3]
