"""ArticleRepository: the ``articles`` and ``revisions`` collections.

One document per canonical URL (schema: README.md of this package). Writes are
batched: a batch costs at most three round trips (existing hashes by ``$in``, the
superseded versions into ``revisions``, one unordered ``bulk_write`` of upserts). Dates are stored as BSON dates (UTC) and exported with +08:00.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.database import Database

from storage.mongo import pending
from storage.mongo import search as _search
from storage.mongo.counters import Counters, Counts
from storage.mongo.terms import to_simplified
from storage.mongo.timeline import META_COLLECTION, Timeline
from storage.mongo.writes import REVISION_FIELDS as REVISION_FIELDS
from storage.mongo.writes import ArticleWrites
from storage.mongo.writes import UpsertResult as UpsertResult
from storage.mongo.writes import aware as _aware

logger = logging.getLogger(__name__)

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

#: The article as exported (design.md), in this order.
EXPORT_FIELDS = ("url", "urls", "title", "published_at", "source", "editor", "chief_editor",
                 "sections", "body", "images", "near_duplicate_of", "first_seen", "last_seen",
                 "content_hash", "warc")
_LIST_FIELDS = ("urls", "sections", "images")
#: Fields and indexes of the first schema, removed by ``ensure_indexes``.
_LEGACY_FIELDS = ("search_terms", "dedup_keys")

ARTICLE_INDEXES = [
    IndexModel([("url", ASCENDING)], name="url_unique", unique=True),
    IndexModel([("urls", ASCENDING)], name="urls"),
    IndexModel([("sections", ASCENDING), ("published_at", DESCENDING)], name="sections_published"),
    IndexModel([("published_at", DESCENDING)], name="published_at"),
    IndexModel([("content_hash", ASCENDING)], name="content_hash"),
    IndexModel([("near_duplicate_of", ASCENDING)], name="near_duplicate_of"),
    pending.INDEX,
]
REVISION_INDEXES = [
    # Unique so that a retried batch does not record the same superseded version twice.
    IndexModel([("url", ASCENDING), ("content_hash", ASCENDING), ("archived_at", ASCENDING)],
               name="url_hash_archived_unique", unique=True),
    IndexModel([("url", ASCENDING), ("superseded_at", DESCENDING)], name="url_superseded"),
]


class ArticleRepository(ArticleWrites):
    """Articles keyed by canonical URL, with their revisions; queries for people.

    *search_dir*: the search index beside the store (``DATA/search``); None (a
    repository opened without a data directory) searches by reading every article.
    """

    def __init__(self, db: Database[dict[str, Any]], search_dir: Path | None = None) -> None:
        from storage.search.searcher import IndexSearch

        self.db = db
        self.articles: Collection[dict[str, Any]] = db["articles"]
        self.revisions: Collection[dict[str, Any]] = db["revisions"]
        self.meta: Collection[dict[str, Any]] = db[META_COLLECTION]
        self.query = _search.ArticleQuery(self.articles, self.meta)
        self.counts = Counters(self.meta, self.articles)
        self.search_dir = search_dir
        self.index = IndexSearch(self.articles, search_dir,
                                 lambda filters, newest: self.query.listing(filters, newest))

    def ensure_indexes(self) -> None:
        """Create the indexes (idempotent: an existing identical index is left alone),
        and bring a store of an earlier layout to this one.

        A store of the first schema (``search_terms`` on the articles) loses the old
        field and indexes; one of the ``search_postings`` layout (or without a search
        index yet) gets its index built beside it, then ``search_postings`` is dropped
        (``storage.search.migrate``: progress, resumable).
        """
        from storage.search.migrate import upgrade

        legacy = set(self.articles.index_information()) & set(_LEGACY_FIELDS)
        self.articles.create_indexes(ARTICLE_INDEXES)
        self.revisions.create_indexes(REVISION_INDEXES)
        if legacy:
            self._migrate_first_schema(sorted(legacy))
        if self.meta.find_one({"_id": "articles"}) is None:
            Timeline.rebuild(self.meta, self.articles)
        self.counts.ensure()
        if self.search_dir is not None:
            upgrade(self.articles, self.search_dir)

    def _migrate_first_schema(self, legacy_indexes: list[str]) -> None:
        logger.warning("migrating the article store: dropping %s", ", ".join(legacy_indexes))
        for name in legacy_indexes:
            self.articles.drop_index(name)
        self.articles.update_many({}, {"$unset": dict.fromkeys(_LEGACY_FIELDS, "")})
        Timeline.rebuild(self.meta, self.articles)

    def catch_up(self, wait: float = 0.0) -> Any:
        """Index the articles written since the last catch-up (storage.search.indexer);
        skipped (not waiting longer than *wait*) when another process is indexing."""
        from storage.search.indexer import CatchUp, catch_up

        if self.search_dir is None:
            return CatchUp(skipped="no search directory")
        return catch_up(self.articles, self.search_dir, wait=wait)

    # -- reads -------------------------------------------------------------------
    def get(self, url: str) -> dict[str, Any] | None:
        """The article whose canonical URL, or any URL it was seen at, is ``url``."""
        return self.articles.find_one({"url": url}) or self.articles.find_one({"urls": url})

    def find(self, section: str | None = None, since: datetime | None = None,
             until: datetime | None = None, search: str | Sequence[str] | None = None,
             limit: int | None = None, include_near_duplicates: bool = True,
             newest_first: bool = True) -> Iterator[dict[str, Any]]:
        """Articles matching all the filters, by publication date (then URL).

        ``since`` is inclusive, ``until`` exclusive; ``section`` and the search words
        are accepted in either script; ``search`` words must all occur (title or body).
        Listings go window by window of publication date (``search.ArticleQuery``), so
        the first rows come without reading the whole collection; searches ask the
        search index (``storage.search.searcher``), exact even when it is behind.
        """
        filters = self.filters(section, since, until, include_near_duplicates)
        words = _search.split_words(search) if search else []
        rows = (self.index.search(words, filters, newest_first, limit) if words
                else self.query.listing(filters, newest_first, limit))
        yield from (rows if not limit else itertools.islice(rows, limit))

    @staticmethod
    def filters(section: str | None = None, since: datetime | None = None,
                until: datetime | None = None,
                include_near_duplicates: bool = True) -> _search.Filters:
        """The non-search filters, checked and folded to simplified script."""
        return _search.Filters(
            section=to_simplified(section.strip()) if section else None,
            since=_aware(since, "since"), until=_aware(until, "until"),
            include_near_duplicates=include_near_duplicates)

    def revisions_of(self, url: str) -> list[dict[str, Any]]:
        """Superseded versions of an article, newest first."""
        return list(self.revisions.find({"url": url}, {"_id": 0}).sort("superseded_at", -1))

    def count(self) -> int:
        return self.articles.count_documents({})

    def kept_counts(self) -> Counts:
        """The counts per month and (month, section): the kept ones (counters.py),
        or, while a store has none yet (being migrated), counted by a scan."""
        return self.counts.load() or self.counts.scan()

    def count_by_month_section(self) -> dict[tuple[str, str], int]:
        """(month YYYY-MM Beijing time or "unknown", section) -> articles."""
        return self.kept_counts().by_month_section

    def count_by_section(self) -> dict[str, int]:
        """Number of articles per section label (an article may be in several)."""
        kept = self.counts.load()
        if kept is not None:
            return kept.by_section
        rows = self.articles.aggregate([
            {"$unwind": "$sections"},
            {"$group": {"_id": "$sections", "n": {"$sum": 1}}},
            {"$sort": {"n": -1, "_id": 1}}])
        return {row["_id"]: row["n"] for row in rows}

    def count_by_month(self) -> dict[str, int]:
        """Number of articles per publication month (YYYY-MM, Beijing time; "unknown")."""
        kept = self.counts.load()
        if kept is not None:
            return kept.by_month
        rows = self.articles.aggregate([
            {"$group": {"_id": {"$dateToString": {"format": "%Y-%m", "date": "$published_at",
                                                  "timezone": "+08:00"}},
                        "n": {"$sum": 1}}},
            {"$sort": {"_id": 1}}])
        return {row["_id"] or "unknown": row["n"] for row in rows}

    @staticmethod
    def to_export(doc: Mapping[str, Any]) -> dict[str, Any]:
        """The exported form (design.md): those fields only, dates ISO 8601 in +08:00."""
        out: dict[str, Any] = {}
        for name in EXPORT_FIELDS:
            value = doc.get(name)
            if isinstance(value, datetime):
                if value.tzinfo is None:  # pymongo without tz_aware: naive means UTC
                    value = value.replace(tzinfo=UTC)
                value = value.astimezone(BEIJING).isoformat()
            elif value is None and name in _LIST_FIELDS:
                value = []
            out[name] = value
        # Stable order whatever order runs merged them in: sections sorted, the
        # canonical URL first among the URLs.
        out["sections"] = sorted(out.get("sections") or [])
        urls = sorted(set(out.get("urls") or []) - {out.get("url")})
        out["urls"] = ([out["url"]] if out.get("url") else []) + urls
        return out
