"""ArticleRepository: the ``articles`` and ``revisions`` collections.

One document per canonical URL (schema: README.md of this package). Writes are
batched: a batch costs at most three round trips (existing hashes by ``$in``, the
superseded versions into ``revisions``, one unordered ``bulk_write`` of upserts). Dates are stored as BSON dates (UTC) and exported with +08:00.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne, ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, OperationFailure

from storage.mongo import search as _search
from storage.mongo.counters import Counters, Counts, Tally, delta
from storage.mongo.postings import COLLECTION as POSTINGS_COLLECTION
from storage.mongo.postings import Postings
from storage.mongo.terms import terms_for, to_simplified
from storage.mongo.timeline import META_COLLECTION, Timeline

logger = logging.getLogger(__name__)

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
DUPLICATE_KEY = 11000

#: The article as exported (design.md), in this order.
EXPORT_FIELDS = ("url", "urls", "title", "published_at", "source", "editor", "chief_editor",
                 "sections", "body", "images", "near_duplicate_of", "first_seen", "last_seen",
                 "content_hash", "warc")
_LIST_FIELDS = ("urls", "sections", "images")
#: Kept from the previous version in ``revisions``.
REVISION_FIELDS = ("url", "content_hash", "title", "body", "published_at", "warc")
#: Managed here, never taken from the caller's document.
_MANAGED = ("_id", "first_seen", "last_seen", "search_terms", "revision_count", "revised_at")
#: Fields and indexes of the first schema, removed by ``ensure_indexes``.
_LEGACY_FIELDS = ("search_terms", "dedup_keys")

ARTICLE_INDEXES = [
    IndexModel([("url", ASCENDING)], name="url_unique", unique=True),
    IndexModel([("urls", ASCENDING)], name="urls"),
    IndexModel([("sections", ASCENDING), ("published_at", DESCENDING)], name="sections_published"),
    IndexModel([("published_at", DESCENDING)], name="published_at"),
    IndexModel([("content_hash", ASCENDING)], name="content_hash"),
    IndexModel([("near_duplicate_of", ASCENDING)], name="near_duplicate_of"),
]
REVISION_INDEXES = [
    # Unique so that a retried batch does not record the same superseded version twice.
    IndexModel([("url", ASCENDING), ("content_hash", ASCENDING), ("archived_at", ASCENDING)],
               name="url_hash_archived_unique", unique=True),
    IndexModel([("url", ASCENDING), ("superseded_at", DESCENDING)], name="url_superseded"),
]


@dataclass
class UpsertResult:
    """What a batch did: counts per outcome, and the URLs that could not be written."""

    new: int = 0
    updated: int = 0       # same content, new sections or URLs merged
    unchanged: int = 0     # same content: only last_seen moved
    revised: int = 0       # content changed: previous version kept in ``revisions``
    errors: int = 0        # documents refused by the server (see ``failed``)
    spooled: int = 0       # documents sent to the spool (BatchWriter only)
    failed: list[str] = field(default_factory=list)

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(*(getattr(self, f.name) + getattr(other, f.name)
                              for f in fields(self)))

    def counts(self) -> dict[str, int]:
        """The counters as a dict (for run documents and stats)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "failed"}


def _aware(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value


def _content_hash(doc: Mapping[str, Any]) -> str:
    # Only for callers that did not fingerprint the article themselves.
    text = f"{doc.get('title') or ''}\x00{doc.get('body') or ''}"
    return hashlib.sha256(to_simplified(text).encode("utf-8")).hexdigest()


def _transient(exc: OperationFailure) -> bool:
    """A failure a retry may cure (the caller retries), not a refused document."""
    return exc.has_error_label("RetryableWriteError") or exc.code in (91, 189, 11600, 11602)


def _merge_lists(*lists: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for items in lists:
        for item in items or ():
            if item not in out:
                out.append(item)
    return out


class ArticleRepository:
    """Articles keyed by canonical URL, with their revisions; queries for people."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.db = db
        self.articles: Collection[dict[str, Any]] = db["articles"]
        self.revisions: Collection[dict[str, Any]] = db["revisions"]
        self.postings = Postings(db[POSTINGS_COLLECTION])
        self.meta: Collection[dict[str, Any]] = db[META_COLLECTION]
        self.query = _search.ArticleQuery(self.articles, self.postings, self.meta)
        self.counts = Counters(self.meta, self.articles)

    def ensure_indexes(self) -> None:
        """Create the indexes (idempotent: an existing identical index is left alone).

        A store of the first schema (``search_terms`` on the articles) is migrated:
        its postings are built, the old field and indexes removed.
        """
        legacy = set(self.articles.index_information()) & set(_LEGACY_FIELDS)
        self.articles.create_indexes(ARTICLE_INDEXES)
        self.revisions.create_indexes(REVISION_INDEXES)
        self.postings.ensure_indexes()
        if legacy:
            self._migrate_postings(sorted(legacy))
        if self.meta.find_one({"_id": "articles"}) is None:
            Timeline.rebuild(self.meta, self.articles)
        self.counts.ensure()

    def _migrate_postings(self, legacy_indexes: list[str]) -> None:
        logger.warning("migrating the article store: building search_postings, dropping %s",
                       ", ".join(legacy_indexes))
        for name in legacy_indexes:
            self.articles.drop_index(name)
        batch: dict[str, tuple[datetime | None, list[str]]] = {}
        done = 0
        for doc in self.articles.find({}, {"url": 1, "title": 1, "body": 1, "published_at": 1}):
            batch[doc["url"]] = (doc.get("published_at"), self._terms(doc))
            if len(batch) >= 200:
                self.postings.replace(batch)
                done += len(batch)
                batch = {}
        self.postings.replace(batch)
        done += len(batch)
        self.articles.update_many({}, {"$unset": dict.fromkeys(_LEGACY_FIELDS, "")})
        Timeline.rebuild(self.meta, self.articles)
        logger.warning("migrated %d articles to search_postings", done)

    # -- writes ------------------------------------------------------------------
    def _prepare(self, docs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Validate, fill in derived fields and merge duplicates within the batch."""
        batch: dict[str, dict[str, Any]] = {}
        for raw in docs:
            doc = {k: v for k, v in raw.items() if k not in _MANAGED}
            url = doc.get("url")
            if not isinstance(url, str) or not url:
                raise ValueError(f"article without a url: {str(raw)[:120]}")
            doc["published_at"] = _aware(doc.get("published_at"), "published_at")
            doc["urls"] = _merge_lists([url], doc.get("urls") or [])
            doc["sections"] = _merge_lists(doc.get("sections") or [])
            doc.setdefault("images", [])
            for name in ("near_duplicate_of", "chief_editor", "editor", "source", "warc"):
                doc.setdefault(name, None)
            if not doc.get("content_hash"):
                doc["content_hash"] = _content_hash(doc)
            previous = batch.get(url)
            if previous is not None:  # the later sighting wins, memberships add up
                doc["urls"] = _merge_lists(previous["urls"], doc["urls"])
                doc["sections"] = _merge_lists(previous["sections"], doc["sections"])
            batch[url] = doc
        return batch

    def upsert_many(self, docs: Sequence[Mapping[str, Any]], now: datetime) -> UpsertResult:
        """Insert new articles, refresh seen ones, keep superseded versions.

        Raises pymongo's connection and write-concern errors (the caller retries: the
        operation is idempotent); documents the server refuses are counted in
        ``errors`` and listed in ``failed``.
        """
        now = _aware(now, "now") or now
        batch = self._prepare(docs)
        if not batch:
            return UpsertResult()
        wanted = {"url": 1, "content_hash": 1, "sections": 1, "urls": 1, "title": 1, "body": 1,
                  "published_at": 1, "warc": 1, "first_seen": 1, "revised_at": 1,
                  "near_duplicate_of": 1}
        existing = {d["url"]: d for d in self.articles.find({"url": {"$in": list(batch)}},
                                                            wanted)}
        ops: list[InsertOne[dict[str, Any]] | UpdateOne] = []
        bulk_urls: list[str] = []
        singles: list[tuple[str, dict[str, Any], Tally | None]] = []
        kinds: dict[str, str] = {}
        tallies: dict[str, Tally] = {}
        revisions: list[dict[str, Any]] = []
        postings: dict[str, tuple[datetime | None, list[str]]] = {}
        for url, doc in batch.items():
            old = existing.get(url)
            sections, urls = doc.pop("sections"), doc.pop("urls")
            add = {"sections": {"$each": sections}, "urls": {"$each": urls}}
            if old is None:
                # An insert, not an upsert: one racing with another writer's insert of
                # the same URL is refused (unique index) and retried as a known article,
                # so exactly one write counts the article.
                kinds[url] = "new"
                postings[url] = (doc["published_at"], self._terms(doc))
                tallies[url] = Tally.at(doc["published_at"], sections)
                ops.append(InsertOne({**doc, "sections": sections, "urls": urls,
                                      "first_seen": now, "last_seen": now,
                                      "revision_count": 0, "revised_at": None}))
                bulk_urls.append(url)
                continue
            if old.get("content_hash") == doc["content_hash"]:
                grows_sections = bool(set(sections) - set(old.get("sections") or []))
                grows = grows_sections or bool(set(urls) - set(old.get("urls") or []))
                same: dict[str, Any] = {"last_seen": now}
                # A copy checked for near-duplicates after one stored unchecked (the
                # index was down): its link is news; an unchecked None never erases one.
                original = doc.get("near_duplicate_of")
                if original is not None and original != old.get("near_duplicate_of"):
                    same["near_duplicate_of"] = original
                    grows = True
                kinds[url] = "updated" if grows else "unchanged"
                update: dict[str, Any] = {"$set": same, "$addToSet": add}
                if not grows_sections:  # cannot change the counts: batched
                    ops.append(UpdateOne({"url": url}, update))
                    bulk_urls.append(url)
                else:
                    singles.append((url, update, None))
                continue
            kinds[url] = "revised"
            revision = {k: old.get(k) for k in REVISION_FIELDS}
            revision["archived_at"] = old.get("revised_at") or old.get("first_seen")
            revision["superseded_at"] = now
            revisions.append(revision)
            postings[url] = (doc["published_at"], self._terms(doc))
            update = {"$set": {**doc, "last_seen": now, "revised_at": now},
                      "$inc": {"revision_count": 1}, "$addToSet": add}
            singles.append((url, update, Tally.at(doc["published_at"], ())))
        if revisions:
            self._insert_revisions(revisions)
        # Postings before articles: a retry redoes both, and an article is never
        # stored without being searchable.
        self.postings.replace(postings)
        failed = self._write_batch(ops, bulk_urls, kinds, tallies)
        # Writes that may change an article's sections or month, one by one: the
        # document each changed (its before-image) says exactly what the counts gain.
        for url, update, moved_to in singles:
            try:
                before = self.articles.find_one_and_update(
                    {"url": url}, update, projection={"_id": 0, "sections": 1,
                                                      "published_at": 1},
                    upsert=True, return_document=ReturnDocument.BEFORE)
            except OperationFailure as exc:
                if _transient(exc):
                    raise
                failed.add(url)
                logger.warning("article %s not written: %s", url, exc)
                continue
            was = Tally.of(before)
            month = moved_to.month if moved_to else (was.month if was else "unknown")
            added = set(update["$addToSet"]["sections"]["$each"])
            self.counts.owe(delta(was, Tally(month, (was.sections if was else frozenset())
                                             | added)))
        self.counts.flush()
        result = UpsertResult()
        for url, kind in kinds.items():
            if url in failed:
                result.errors += 1
                result.failed.append(url)
            else:
                setattr(result, kind, getattr(result, kind) + 1)
        dates = [doc["published_at"] for url, doc in batch.items()
                 if url in postings and doc["published_at"] is not None]
        Timeline.record(self.meta, dates, result.new)
        return result

    def _write_batch(self, ops: list[InsertOne[dict[str, Any]] | UpdateOne], urls: list[str],
                     kinds: Mapping[str, str], tallies: Mapping[str, Tally]) -> set[str]:
        """One unordered ``bulk_write``; the URLs refused. Inserts that landed are owed
        to the counts (also when the write concern failed: they are on the server, and
        their retry finds them stored)."""
        failed: set[str] = set()
        if not ops:
            return failed
        concern_failed: BulkWriteError | None = None
        try:
            self.articles.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                failed.add(urls[int(error["index"])])
                logger.warning("article %s not written: %s", urls[int(error["index"])],
                               error.get("errmsg"))
            if exc.details.get("writeConcernErrors"):
                concern_failed = exc  # not known to be durable: the batch is retried
        for url in urls:
            if kinds[url] == "new" and url not in failed:
                self.counts.owe(delta(None, tallies[url]))
        if concern_failed is not None:
            raise concern_failed
        return failed

    def _insert_revisions(self, revisions: list[dict[str, Any]]) -> None:
        try:
            self.revisions.insert_many(revisions, ordered=False)
        except BulkWriteError as exc:
            # A retried batch finds its revisions already there; anything else is real.
            others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
            if others or exc.details.get("writeConcernErrors"):
                raise

    @staticmethod
    def _terms(doc: Mapping[str, Any]) -> list[str]:
        return terms_for(f"{doc.get('title') or ''}\n{doc.get('body') or ''}")

    def set_near_duplicate(self, url: str, original: str) -> int:
        """Mark *url* as a republication of *original* (found after it was stored)."""
        return self.articles.update_one(
            {"url": url}, {"$set": {"near_duplicate_of": original}}).modified_count

    def touch(self, url: str, sections: Sequence[str], urls: Sequence[str] = (),
              now: datetime | None = None) -> int:
        """Seen again (e.g. a 304): move last_seen, merge sections and URLs.

        Returns the number of matched articles (0 when ``url`` is not stored).
        """
        update = {"$set": {"last_seen": now or datetime.now(UTC)},
                  "$addToSet": {"sections": {"$each": list(sections)},
                                "urls": {"$each": list(urls)}}}
        return 0 if self._merge(url, update, sections) is None else 1

    def add_sections(self, url: str, sections: Sequence[str],
                     urls: Sequence[str] = ()) -> int:
        """Merge late section memberships (and URLs) into an article: 1 if it changed."""
        update = {"$addToSet": {"sections": {"$each": list(sections)},
                                "urls": {"$each": list(urls)}}}
        before = self._merge(url, update, sections)
        if before is None:
            return 0
        return int(bool(set(sections) - set(before.get("sections") or [])
                        or set(urls) - set(before.get("urls") or [])))

    def _merge(self, url: str, update: Mapping[str, Any],
               sections: Sequence[str]) -> dict[str, Any] | None:
        """Apply a membership merge; the document as it was (None: no such article),
        its new sections counted."""
        before = self.articles.find_one_and_update(
            {"url": url}, update, projection={"_id": 0, "sections": 1, "urls": 1,
                                              "published_at": 1},
            return_document=ReturnDocument.BEFORE)
        if before is not None:
            was = Tally.of(before)
            assert was is not None
            self.counts.owe(delta(was, Tally(was.month, was.sections | set(sections))))
            self.counts.flush()
        return before

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
        Reads go window by window of publication date (``search.ArticleQuery``), so
        the first rows come without reading the whole collection.
        """
        filters = self.filters(section, since, until, include_near_duplicates)
        words = _search.split_words(search) if search else []
        rows = (self.query.search(words, filters, newest_first, limit) if words
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

    def explain_search(self, search: str | Sequence[str], **filters: Any) -> dict[str, Any]:
        """The server's explain of the index query a search starts with."""
        return self.query.explain(_search.split_words(search), self.filters(**filters))

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
