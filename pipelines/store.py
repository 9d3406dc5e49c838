"""MongoStorePipeline: batched, durable upserts of articles into MongoDB.

The store is opened in ``open_spider`` (MONGODB_URI, or the embedded SecantusDB
under DATA_DIR), articles are buffered and written by ``storage.mongo.BatchWriter``
in a worker thread so the reactor stays free; a batch that cannot be written after
retries is spooled under DATA_DIR and replayed by the next run. Counts go to the
stats as ``archive/mongo/*``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from pymongo.errors import PyMongoError
from scrapy.crawler import Crawler

from crawler.items import SectionLinkItem
from storage.mongo.articles import ArticleRepository, UpsertResult
from storage.mongo.client import open_database
from storage.mongo.errors import StoreUnavailable
from storage.mongo.spool import Spool
from storage.mongo.writer import BatchWriter

logger = logging.getLogger(__name__)

# Item fields that are not part of the stored article.
TRANSIENT_FIELDS = ("paragraphs", "fetched_at", "script", "near_duplicates_found")


class MongoStorePipeline:
    """Upsert ArticleItems by canonical URL; merge late section memberships."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.uri: str | None = settings.get("MONGODB_URI") or None
        self.data_dir = Path(settings.get("DATA_DIR", "data"))
        self.database = settings.get("MONGODB_DATABASE", "gzarchive")
        self.batch_size = settings.getint("MONGODB_BATCH_SIZE", 50)
        self.retries = settings.getint("MONGODB_RETRIES", 3)
        self._stack = ExitStack()
        self.repo: ArticleRepository | None = None
        self.writer: BatchWriter | None = None
        self._batch: list[dict[str, Any]] = []
        self._section_links: list[tuple[str, list[str], list[str], bool]] = []
        self._relinks: list[tuple[str, str]] = []
        self._relinked: dict[str, str] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MongoStorePipeline:
        return cls(crawler)

    def _stats(self) -> Any:
        return self.crawler.stats

    def open_spider(self) -> None:
        spool = Spool(self.data_dir / "spool" / "articles.jsonl")
        try:
            _client, db = self._stack.enter_context(
                open_database(self.uri, self.data_dir, db_name=self.database))
            self.repo = ArticleRepository(db)
            self.repo.ensure_indexes()
        except StoreUnavailable as exc:
            # Keep crawling: the WARC is written and every article is spooled.
            logger.error("MongoDB unavailable (%s): articles will be spooled to %s", exc,
                         spool.path)
            self._stats().inc_value("archive/mongo/errors/unavailable")
            report = getattr(self.crawler.spider, "report", None)
            if report is not None:  # exit code 7 (crawler/run/exits.py)
                report.set_fatal("store-unavailable", f"database unreachable: {exc}")
            self.repo = None
        self.writer = BatchWriter(self.repo, spool, batch_size=self.batch_size,
                                  retries=self.retries)
        if self.repo is not None and spool.count():
            replayed = spool.replay(self.repo)
            logger.info("replayed %d spooled article(s) from %s", replayed, spool.path)
            self._stats().set_value("archive/mongo/replayed", replayed)

    async def process_item(self, item: Any) -> Any:
        assert self.writer is not None
        if isinstance(item, SectionLinkItem):
            self._section_links.append((item["url"], list(item["sections"]),
                                        list(item["urls"]), bool(item.get("unchanged"))))
            if len(self._section_links) >= self.batch_size:
                await self._flush()
            return item
        adapter = ItemAdapter(item)
        doc = {k: v for k, v in adapter.items() if k not in TRANSIENT_FIELDS}
        if doc["url"] in self._relinked and not doc.get("near_duplicate_of"):
            # Its original went through deduplication first but reached us later.
            doc["near_duplicate_of"] = self._relinked[doc["url"]]
        self.writer.add(doc)
        self._batch.append(doc)
        for later in adapter.get("near_duplicates_found") or ():
            self._relinks.append((later, doc["url"]))
            self._relinked[later] = doc["url"]
        if len(self._batch) >= self.batch_size:
            await self._flush()
        return item

    async def _flush(self) -> None:
        assert self.writer is not None
        batch, self._batch = self._batch, []
        links, self._section_links = self._section_links, []
        if batch:
            result: UpsertResult = await asyncio.to_thread(self.writer.flush)
            self._count(result)
            # Written or spooled: durable either way, so the frontier can forget them.
            await asyncio.to_thread(self._remember, batch)
        if links:
            await asyncio.to_thread(self._merge_sections, links)
        relinks, self._relinks = self._relinks, []
        if relinks and self.repo is not None:
            await asyncio.to_thread(self._apply_relinks, relinks)

    def _count(self, result: UpsertResult) -> None:
        stats = self._stats()
        for name in ("new", "updated", "unchanged", "revised", "spooled", "errors"):
            value = getattr(result, name, 0)
            if value:
                stats.inc_value(f"archive/mongo/{name}", value)

    async def close_spider(self) -> None:
        try:
            await self._flush()
        finally:
            self._stack.close()

    def _state(self) -> Any:
        return getattr(self.crawler.spider, "crawl_state", None)

    def _remember(self, batch: list[dict[str, Any]]) -> None:
        state = self._state()
        if state is None:
            return
        for doc in batch:
            validators = doc.get("http_validators") or {}
            state.set_validators(doc["url"], validators.get("etag"),
                                 validators.get("last_modified"), doc.get("content_hash"))
        state.mark_done([doc["url"] for doc in batch])

    def _apply_relinks(self, relinks: list[tuple[str, str]]) -> None:
        assert self.repo is not None
        for later, original in relinks:
            try:
                self.repo.set_near_duplicate(later, original)
            except PyMongoError as exc:
                self._stats().inc_value("archive/mongo/errors/relink")
                logger.error("could not mark %s as near-duplicate of %s: %s", later, original,
                             exc)
                continue
            self._stats().inc_value("archive/mongo/near_duplicates_relinked")

    def _merge_sections(self, links: list[tuple[str, list[str], list[str], bool]]) -> None:
        stats = self._stats()
        state = self._state()
        if self.repo is None:
            stats.inc_value("archive/mongo/errors/section-merge-skipped", len(links))
            return
        for url, sections, urls, unchanged in links:
            try:
                matched = self.repo.touch(url, sections, urls)
            except PyMongoError as exc:
                # Left pending in the crawl state: the next run sees the article again.
                stats.inc_value("archive/mongo/errors/touch")
                logger.error("could not merge sections of %s (%s); retried next run", url, exc)
                continue
            if matched:
                stats.inc_value("archive/mongo/unchanged" if unchanged
                                else "archive/mongo/sections_merged")
                if state is not None:
                    state.mark_done([url])
            else:
                # Known to the crawl state but not in this store (e.g. another
                # MONGODB_URI): forget the validators so the next run refetches it.
                stats.inc_value("archive/mongo/errors/missing-on-touch")
                logger.error("article %s answered 304 but is not in the store; it will be "
                             "fetched in full next run", url)
                if state is not None:
                    state.forget(url)
