"""NormalisePipeline: clean whitespace and indents, one script, ISO dates, a content hash.

Drops (with a reason, counted) an item whose title or body is empty after cleaning:
an empty article is an extraction failure, never a stored record.
"""

from __future__ import annotations

import logging
from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from crawler.items import SectionLinkItem
from crawler.textnorm import clean_text, parse_cn_datetime, to_simplified
from pipelines.fingerprint import content_hash

logger = logging.getLogger(__name__)

TEXT_FIELDS = ("title", "source", "editor", "chief_editor")


class NormalisePipeline:
    """Turns raw extracted fields into the exported article shape (design.md)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NormalisePipeline:
        return cls(crawler)

    def _stat(self, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(key)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, SectionLinkItem):
            return item
        adapter = ItemAdapter(item)
        traditional = adapter.get("script") == "traditional"

        def norm(value: Any) -> str | None:
            if value is None:
                return None
            text = clean_text(str(value))
            if traditional:
                text = to_simplified(text)
            return text or None

        for name in TEXT_FIELDS:
            adapter[name] = norm(adapter.get(name))
        paragraphs = [norm(p) for p in adapter.get("paragraphs") or []]
        adapter["body"] = "\n".join(p for p in paragraphs if p)
        adapter.pop("paragraphs", None)
        adapter["images"] = _dedupe_images(adapter.get("images") or [], norm)
        raw_date = adapter.get("published_at")
        published = parse_cn_datetime(raw_date) if isinstance(raw_date, str) else raw_date
        if published is None:
            self._stat("portal/normalise/missing-date")
            logger.warning("no publication date for %s (raw %r)", adapter.get("url"), raw_date)
        adapter["published_at"] = published
        if not adapter.get("title") or not adapter.get("body"):
            missing = "title" if not adapter.get("title") else "body"
            self._stat(f"portal/failures/extraction-empty-{missing}")
            spider = self.crawler.spider
            report = getattr(spider, "report", None)
            if report is not None:
                report.fail(f"extraction-empty-{missing}", str(adapter.get("url")))
            raise DropItem(f"empty {missing} after normalisation: {adapter.get('url')}")
        adapter["content_hash"] = content_hash(adapter["title"], adapter["body"])
        adapter.setdefault("near_duplicate_of", None)
        return item


def _dedupe_images(images: list[dict[str, Any]], norm: Any) -> list[dict[str, Any]]:
    seen: set[str] = set()
    result: list[dict[str, Any]] = []
    for image in images:
        url = image.get("url")
        if not url or url in seen:
            continue
        seen.add(url)
        result.append({"url": url, "caption": norm(image.get("caption"))})
    return result
