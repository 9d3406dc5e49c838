"""MongoStorePipeline: every store write of a crawl, in order, durable or spooled.

The store is opened in ``open_spider`` (MONGODB_URI, or the embedded SecantusDB under
DATA_DIR) at the write concern asked for (MONGODB_WRITE_CONCERN, else the URI's, else
journaled w=1), and the spool of earlier runs is replayed first. Article upserts,
section merges and 304 touches (SectionLinkItem), near-duplicate relinks go to one
``storage.mongo.BatchWriter`` queue, flushed in a worker thread so the reactor stays
free; what cannot be written after retries is journaled in the spool under DATA_DIR and
replayed, in order, by the next run. The crawl state forgets a pending article only once
its write is durable (written at the write concern, or spooled); an article the
near-duplicate pipeline could not check stays pending and is fetched again in full.

Stats: ``archive/mongo/{new,updated,unchanged,revised,sections_merged,
near_duplicates_relinked,replayed}``, ``archive/mongo/spooled`` (writes journaled),
``archive/mongo/errors/{kind}``, ``archive/spool/errors`` (writes neither written nor
spooled: data at risk, exit 8), ``archive/search/{indexed,skipped,errors}`` (the search
index's catch-up after each batch and at the end, storage.search.indexer).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from pymongo import WriteConcern
from pymongo.errors import PyMongoError
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings

from crawler.items import SectionLinkItem
from storage.mongo import writeconcern
from storage.mongo.articles import ArticleRepository
from storage.mongo.client import open_database
from storage.mongo.errors import StoreUnavailable
from storage.mongo.ops import RELINK, TOUCH, UPSERT, Op
from storage.mongo.runs import RunRepository
from storage.mongo.spool import Replayed, Spool, spool_path
from storage.mongo.writer import BatchWriter, FlushReport

logger = logging.getLogger(__name__)

#: Seconds the end of a crawl waits for the search index's writer lock (another process
#: indexing): that process then indexes what this one wrote.
FINAL_CATCHUP_WAIT = 30.0
# Item fields that are not part of the stored article.
TRANSIENT_FIELDS = ("paragraphs", "fetched_at", "script", "near_duplicates_found",
                    "near_duplicate_unchecked")


@dataclass(frozen=True)
class StoreConfig:
    """The MONGODB_* settings of the store pipeline, checked at start-up."""

    uri: str | None
    data_dir: Path
    database: str
    batch_size: int
    retries: int
    write_concern: WriteConcern

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> StoreConfig:
        uri = settings.get("MONGODB_URI") or None
        batch_size = settings.getint("MONGODB_BATCH_SIZE", 25)
        retries = settings.getint("MONGODB_RETRIES", 3)
        if batch_size < 1:
            raise ValueError(f"MONGODB_BATCH_SIZE must be >= 1, got {batch_size}")
        if retries < 0:
            raise ValueError(f"MONGODB_RETRIES must be >= 0, got {retries}")
        # BadWriteConcern (a ValueError): a one-line "bad setting" before the crawl starts.
        concern = writeconcern.resolve(uri, settings.get("MONGODB_WRITE_CONCERN") or None)
        return cls(uri=uri, data_dir=Path(settings.get("DATA_DIR", "data")),
                   database=settings.get("MONGODB_DATABASE", "gzarchive"),
                   batch_size=batch_size, retries=retries, write_concern=concern)


class MongoStorePipeline:
    """Upsert ArticleItems by canonical URL; merge sections, touch and relink, in order."""

    def __init__(self, crawler: Crawler, config: StoreConfig | None = None) -> None:
        self.crawler = crawler
        self.config = config or StoreConfig.from_settings(crawler.settings)
        self._stack = ExitStack()
        self.repo: ArticleRepository | None = None
        self.writer: BatchWriter | None = None
        self._stored: set[str] = set()        # articles queued for upsert in this run
        self._touched: set[str] = set()       # articles answered 304 in this run
        # Section merges that arrived before their article: sections, URLs, items.
        self._parked: dict[str, tuple[list[str], list[str], int]] = {}
        self._relinked: dict[str, str] = {}
        self._unchecked: set[str] = set()     # stored without a near-duplicate check

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MongoStorePipeline:
        return cls(crawler, StoreConfig.from_settings(crawler.settings))

    def _stats(self) -> Any:
        return self.crawler.stats

    def _state(self) -> Any:
        return getattr(self.crawler.spider, "crawl_state", None)

    def open_spider(self) -> None:
        config = self.config
        spool = Spool(spool_path(config.data_dir))
        try:
            _client, db = self._stack.enter_context(open_database(
                config.uri, config.data_dir, db_name=config.database,
                write_concern=config.write_concern))
            repo = ArticleRepository(db, search_dir=config.data_dir / "search")
            repo.ensure_indexes()
            RunRepository(db).ensure_indexes()
            self.repo = repo
        except (StoreUnavailable, PyMongoError) as exc:
            # Keep crawling: the WARC is written and every write is spooled.
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.error("MongoDB unavailable (%s): writes will be spooled to %s", reason,
                         spool.path)
            self._stats().inc_value("archive/mongo/errors/unavailable")
            report = getattr(self.crawler.spider, "report", None)
            if report is not None:  # exit code 7 (crawler/run/exits.py)
                report.set_fatal("store-unavailable",
                                 f"{reason}; writes spooled to {spool.path}")
            self._stack.close()
            self.repo = None
        self.writer = BatchWriter(self.repo, spool, batch_size=config.batch_size,
                                  retries=config.retries)
        if self.repo is not None and spool.path.exists():
            try:
                replayed = self.writer.replay()
            except PyMongoError as exc:
                self._stats().inc_value("archive/mongo/errors/replay")
                logger.error("spool %s not fully replayed (%s): the rest stays spooled, "
                             "new writes queue behind it", spool.path, exc)
            else:
                if replayed is not None:
                    logger.info("replayed %d spooled operation(s) from %s", replayed.written,
                                spool.path)
                    self._settle_replay(replayed)

    # -- items ------------------------------------------------------------------------
    async def process_item(self, item: Any) -> Any:
        assert self.writer is not None
        if isinstance(item, SectionLinkItem):
            self._link(item["url"], list(item["sections"]), list(item["urls"]),
                       bool(item.get("unchanged")))
        else:
            self._article(ItemAdapter(item))
        if self.writer.pending() >= self.config.batch_size:
            await self._flush()
        return item

    def _link(self, url: str, sections: list[str], urls: list[str], unchanged: bool) -> None:
        assert self.writer is not None
        if unchanged:
            self._touched.add(url)
        elif url not in self._stored and url not in self._touched:
            # Emitted by the spider but still in an earlier pipeline (the near-duplicate
            # check): merged into the article when it arrives, so it is never lost.
            old_sections, old_urls, items = self._parked.get(url, ([], [], 0))
            self._parked[url] = (_merge(old_sections, sections), _merge(old_urls, urls),
                                 items + 1)
            return
        self.writer.add(Op.touch(url, sections, urls, unchanged=unchanged))

    def _article(self, adapter: ItemAdapter) -> None:
        assert self.writer is not None
        doc = {k: v for k, v in adapter.items() if k not in TRANSIENT_FIELDS}
        url = doc["url"]
        parked = self._parked.pop(url, None)
        if parked is not None:
            doc["sections"] = _merge(doc.get("sections") or [], parked[0])
            doc["urls"] = _merge(doc.get("urls") or [], parked[1])
            # The section link items parked for it land with it.
            self._stats().inc_value("archive/mongo/sections_merged", parked[2])
        if url in self._relinked and not doc.get("near_duplicate_of"):
            # Its original went through deduplication first but reached us later.
            doc["near_duplicate_of"] = self._relinked[url]
        if adapter.get("near_duplicate_unchecked"):
            self._unchecked.add(url)
        self._stored.add(url)
        self.writer.add(Op.upsert(doc))
        for later in adapter.get("near_duplicates_found") or ():
            self._relinked[later] = url
            self.writer.add(Op.relink(later, url))

    async def _flush(self) -> None:
        assert self.writer is not None
        report = await asyncio.to_thread(self.writer.flush)
        await asyncio.to_thread(self._settle, report)
        await asyncio.to_thread(self._index, 0.0)

    def _index(self, wait: float) -> None:
        """Search-index catch-up after a durable batch (storage.search.indexer): skipped
        when another process holds the index; a failure leaves the marks for later."""
        if self.repo is None:
            return
        try:
            done = self.repo.catch_up(wait=wait)
        except (PyMongoError, OSError, ValueError) as exc:
            self._stats().inc_value("archive/search/errors")
            logger.error("search index not brought up to date (%s): the articles stay "
                         "marked pending and are indexed by a later catch-up", exc)
            return
        if done.indexed:
            self._stats().inc_value("archive/search/indexed", done.indexed)
        elif done.skipped and wait:
            self._stats().inc_value("archive/search/skipped")
            logger.info("search index: final catch-up skipped (%s)", done.skipped)

    async def close_spider(self) -> None:
        try:
            if self.writer is not None:
                # Merges whose article never reached this pipeline (dropped, or stored
                # by an earlier run): applied as they are.
                parked, self._parked = self._parked, {}
                for url, (sections, urls, _items) in parked.items():
                    self.writer.add(Op.touch(url, sections, urls))
                await self._flush()
                # The last process to finish indexes what every writer left pending.
                await asyncio.to_thread(self._index, FINAL_CATCHUP_WAIT)
        finally:
            self._stack.close()

    # -- bookkeeping --------------------------------------------------------------------
    def _settle(self, report: FlushReport) -> None:
        """Stats, and what the crawl state may forget: only durable writes."""
        stats = self._stats()
        result = report.result
        for name in ("new", "updated", "unchanged", "revised"):
            if getattr(result, name):
                stats.inc_value(f"archive/mongo/{name}", getattr(result, name))
        if report.spooled:
            stats.inc_value("archive/mongo/spooled", len(report.spooled))
            for op in report.spooled:
                stats.inc_value(f"archive/mongo/spooled_ops/{op.kind}")
        if result.errors:
            stats.inc_value("archive/mongo/errors", result.errors)
        if report.lost:
            stats.inc_value("archive/spool/errors", len(report.lost))
            logger.error("%d write(s) neither written nor spooled (spool %s): their articles "
                         "stay pending for the next run", len(report.lost),
                         self.writer.spool.path if self.writer else "?")
        for replayed in report.replayed:
            self._settle_replay(replayed)
        missing = {id(op) for op in report.missing}
        for op in report.written:
            if op.kind == TOUCH and id(op) not in missing:
                stats.inc_value("archive/mongo/unchanged" if op.payload["unchanged"]
                                else "archive/mongo/sections_merged")
            elif op.kind == RELINK and id(op) not in missing:
                stats.inc_value("archive/mongo/near_duplicates_relinked")
        self._forget_missing(report.missing)
        self._remember(report.durable, missing)

    def _settle_replay(self, replayed: Replayed) -> None:
        self._stats().inc_value("archive/mongo/replayed", replayed.written)
        self._forget_missing(replayed.missing)

    def _forget_missing(self, ops: list[Op]) -> None:
        state = self._state()
        for op in ops:
            if op.kind == TOUCH and op.payload["unchanged"]:
                # Known to the crawl state but not in this store (e.g. another
                # MONGODB_URI): forget the validators so the next run refetches it.
                self._stats().inc_value("archive/mongo/errors/missing-on-touch")
                logger.error("article %s answered 304 but is not in the store; it will be "
                             "fetched in full next run", op.url)
                if state is not None:
                    state.forget(op.url)
            elif op.kind == TOUCH:
                self._stats().inc_value("archive/mongo/errors/missing-on-merge")
                logger.warning("sections %s of %s not merged: the article is not stored",
                               op.payload["sections"], op.url)
            elif op.kind == RELINK:
                logger.debug("relink of %s: not stored (yet)", op.url)

    def _remember(self, ops: list[Op], missing: set[int]) -> None:
        state = self._state()
        if state is None:
            return
        done: list[str] = []
        for op in ops:
            url = op.url
            if url is None:
                continue
            if op.kind == UPSERT:
                doc = op.doc
                if url in self._unchecked:
                    # Its near_duplicate_of is unknown: fetched again in full next run.
                    state.forget(url)
                    continue
                validators = doc.get("http_validators") or {}
                state.set_validators(url, validators.get("etag"),
                                     validators.get("last_modified"), doc.get("content_hash"))
                done.append(url)
            elif op.kind == TOUCH and id(op) not in missing:
                done.append(url)
        state.mark_done(done)


def _merge(first: list[Any], second: list[Any]) -> list[Any]:
    return first + [x for x in second if x not in first]
