"""NearDuplicatePipeline: mark a republished story with the URL of its first version.

Sits between normalise (100) and store (500). For every ArticleItem it folds title +
body (simplified script, no whitespace or punctuation), asks the persistent
``storage.neardup.NearDuplicateIndex`` for an earlier article of nearly the same
text, sets ``near_duplicate_of`` (canonical URL or None) and indexes the article.
The index lives in MongoDB, so it spans runs and workers. Index work runs in a
thread. Between workers, ``NearDuplicateIndex.check_in`` (add first, then look up,
one total order of copies) makes two processes handling twins agree on the original;
within this process a lock still runs check-ins one at a time.

Settings: DEDUP_ENABLED, DEDUP_THRESHOLD, DEDUP_NUM_PERM, DEDUP_SHINGLE (production
values and the measurements behind them: crawler/settings.py; the same values are
storage.neardup's defaults); MONGODB_URI ('' = embedded store under DATA_DIR),
DATA_DIR, MONGODB_DATABASE. At start-up, signatures stored with other DEDUP_* values
are rebuilt from the stored articles' text (storage.neardup_migrate). Stats:
``dedup/checked``, ``dedup/near_duplicates``, ``dedup/errors/{kind}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from pymongo.database import Database
from pymongo.errors import PyMongoError
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings

from crawler.items import ArticleItem
from pipelines.fingerprint import item_text
from storage.mongo.client import open_database
from storage.mongo.errors import StoreUnavailable
from storage.neardup import (
    DEFAULT_NUM_PERM,
    DEFAULT_SHINGLE,
    DEFAULT_STOP_AFTER,
    DEFAULT_THRESHOLD,
    NearDuplicateIndex,
    TextSource,
)

logger = logging.getLogger(__name__)


BREAKER_SECONDS = 60.0


@dataclass(frozen=True)
class DedupConfig:
    """The DEDUP_* (and MongoDB) settings, checked at start-up."""

    threshold: float
    num_perm: int
    shingle: int
    uri: str | None
    data_dir: Path
    database: str
    stop_share: float = 0.0
    stop_after: int = DEFAULT_STOP_AFTER

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> DedupConfig:
        threshold = settings.getfloat("DEDUP_THRESHOLD", DEFAULT_THRESHOLD)
        num_perm = settings.getint("DEDUP_NUM_PERM", DEFAULT_NUM_PERM)
        shingle = settings.getint("DEDUP_SHINGLE", DEFAULT_SHINGLE)
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"DEDUP_THRESHOLD must be in (0, 1], got {threshold}")
        if num_perm < 16:
            raise ValueError(f"DEDUP_NUM_PERM must be >= 16, got {num_perm}")
        if shingle < 1:
            raise ValueError(f"DEDUP_SHINGLE must be >= 1, got {shingle}")
        stop_share = settings.getfloat("DEDUP_STOP_SHARE", 0.0)
        if not 0.0 <= stop_share < 1.0:
            raise ValueError(f"DEDUP_STOP_SHARE must be in [0, 1), got {stop_share}")
        stop_after = settings.getint("DEDUP_STOP_AFTER", DEFAULT_STOP_AFTER)
        return cls(threshold=threshold, num_perm=num_perm, shingle=shingle,
                   stop_share=stop_share, stop_after=stop_after,
                   uri=settings.get("MONGODB_URI") or None,
                   data_dir=Path(settings.get("DATA_DIR", "data")),
                   database=settings.get("MONGODB_DATABASE", "gzarchive"))


ARTICLES_COLLECTION = "articles"


def stored_texts(db: Database[Any]) -> TextSource:
    """The folded texts of stored articles, as the index compares them (for migrations)."""
    def texts(urls: list[str]) -> Mapping[str, str]:
        found = db[ARTICLES_COLLECTION].find({"url": {"$in": urls}},
                                             {"_id": 0, "url": 1, "title": 1, "body": 1})
        return {str(doc["url"]): item_text(doc.get("title"), doc.get("body")) for doc in found}
    return texts


def _published(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


class NearDuplicatePipeline:
    """Sets ``near_duplicate_of`` on ArticleItems from a persistent MinHash LSH index."""

    _down_until = 0.0

    def __init__(self, crawler: Crawler, config: DedupConfig) -> None:
        self.crawler = crawler
        self.config = config
        self._stack = ExitStack()
        self.index: NearDuplicateIndex | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NearDuplicatePipeline:
        if not crawler.settings.getbool("DEDUP_ENABLED", True):
            raise NotConfigured("near-duplicate detection is off (DEDUP_ENABLED=False)")
        return cls(crawler, DedupConfig.from_settings(crawler.settings))

    def _inc(self, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(key)

    def open_spider(self) -> None:
        config = self.config
        try:
            _client, db = self._stack.enter_context(
                open_database(config.uri, config.data_dir, db_name=config.database))
            index = NearDuplicateIndex(db, num_perm=config.num_perm,
                                       threshold=config.threshold, shingle=config.shingle,
                                       stop_share=config.stop_share,
                                       stop_after=config.stop_after)
            index.ensure_indexes(stored_texts(db))
        except (StoreUnavailable, PyMongoError) as exc:
            # The store pipeline spools articles in this case; they pass through here
            # unmarked, and the error is logged and counted rather than fatal.
            logger.error("near-duplicate index unavailable (%s): articles pass unchecked", exc)
            self._inc("dedup/errors/unavailable")
            self._stack.close()
            return
        self.index = index
        logger.info("near-duplicate index: threshold %.2f, %d-char shingles, %d bands x %d rows",
                    index.threshold, index.shingle, index.bands, index.rows)

    def _check_and_add(self, url: str, text: str,
                       published_at: datetime | None) -> tuple[str | None, list[str]]:
        assert self.index is not None
        return self.index.check_in(url, text, published_at)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, ArticleItem):
            return item
        adapter = ItemAdapter(item)
        if self.index is None or time.monotonic() < self._down_until:
            adapter["near_duplicate_of"] = None
            adapter["near_duplicate_unchecked"] = True  # the store keeps it pending
            self._inc("dedup/errors/unchecked")
            return item
        url = str(adapter["url"])
        text = item_text(adapter.get("title"), adapter.get("body"))
        published_at = _published(adapter.get("published_at"))
        try:
            # check_in is safe between processes; in turn within this one, each copy of
            # a story processed together sees every copy checked in before it.
            async with self._lock:
                if time.monotonic() < self._down_until:  # paused while we waited
                    adapter["near_duplicate_of"] = None
                    adapter["near_duplicate_unchecked"] = True
                    self._inc("dedup/errors/unchecked")
                    return item
                original, later = await asyncio.to_thread(self._check_and_add, url, text,
                                                          published_at)
        except PyMongoError:
            logger.error("near-duplicate check failed for %s; stored unmarked, checks paused "
                         "for %.0f s", url, BREAKER_SECONDS, exc_info=True)
            self._inc("dedup/errors/mongo")
            # A dead database would otherwise cost a server-selection timeout per item.
            self._down_until = time.monotonic() + BREAKER_SECONDS
            original, later = None, []
            adapter["near_duplicate_unchecked"] = True
        adapter["near_duplicate_of"] = original
        if later:
            # Republications crawled before this original: the store re-points them.
            adapter["near_duplicates_found"] = later
            self._inc("dedup/relinked")
        self._inc("dedup/checked")
        if original is not None:
            self._inc("dedup/near_duplicates")
            logger.debug("%s is a near-duplicate of %s", url, original)
        return item

    def close_spider(self) -> None:
        self.index = None
        self._stack.close()
