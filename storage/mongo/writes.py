"""The article write path: batched upserts, revisions, merges (``ArticleRepository``).

A batch costs at most three round trips (existing hashes by ``$in``, the superseded
versions into ``revisions``, one unordered ``bulk_write``), plus one
``find_one_and_update`` per write that may change an article's sections or month (its
before-image feeds the kept counts, counters.py). Every write that changes what a
search finds in an article sets its ``search_pending`` marker in the same write
(pending.py): the search index (storage.search) catches up from those.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, OperationFailure

from storage.mongo import pending
from storage.mongo.counters import Counters, Tally, delta
from storage.mongo.terms import to_simplified
from storage.mongo.timeline import Timeline

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
#: Kept from the previous version in ``revisions``.
REVISION_FIELDS = ("url", "content_hash", "title", "body", "published_at", "warc")
#: Managed here, never taken from the caller's document.
_MANAGED = ("_id", "first_seen", "last_seen", "search_terms", "revision_count", "revised_at",
            pending.FIELD)


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


def aware(value: Any, name: str) -> datetime | None:
    """A timezone-aware datetime (ISO strings parsed), or None; anything else refused."""
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


def prepare(docs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Validate, fill in derived fields and merge duplicates within the batch."""
    batch: dict[str, dict[str, Any]] = {}
    for raw in docs:
        doc = {k: v for k, v in raw.items() if k not in _MANAGED}
        url = doc.get("url")
        if not isinstance(url, str) or not url:
            raise ValueError(f"article without a url: {str(raw)[:120]}")
        doc["published_at"] = aware(doc.get("published_at"), "published_at")
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


class ArticleWrites:
    """The write methods of ``ArticleRepository`` (mixed in: same collections)."""

    articles: Collection[dict[str, Any]]
    revisions: Collection[dict[str, Any]]
    meta: Collection[dict[str, Any]]
    counts: Counters

    def upsert_many(self, docs: Sequence[Mapping[str, Any]], now: datetime) -> UpsertResult:
        """Insert new articles, refresh seen ones, keep superseded versions.

        Raises pymongo's connection and write-concern errors (the caller retries: the
        operation is idempotent); documents the server refuses are counted in
        ``errors`` and listed in ``failed``.
        """
        now = aware(now, "now") or now
        batch = prepare(docs)
        if not batch:
            return UpsertResult()
        wanted = {"url": 1, "content_hash": 1, "sections": 1, "urls": 1, "title": 1, "body": 1,
                  "published_at": 1, "warc": 1, "first_seen": 1, "revised_at": 1,
                  "near_duplicate_of": 1}
        existing = {d["url"]: d for d in self.articles.find({"url": {"$in": list(batch)}},
                                                            wanted)}
        mark = pending.token()  # one per batch: a later write of any of these differs
        ops: list[InsertOne[dict[str, Any]] | UpdateOne] = []
        bulk_urls: list[str] = []
        singles: list[tuple[str, dict[str, Any], Tally | None]] = []
        kinds: dict[str, str] = {}
        tallies: dict[str, Tally] = {}
        revisions: list[dict[str, Any]] = []
        dated: set[str] = set()
        for url, doc in batch.items():
            old = existing.get(url)
            sections, urls = doc.pop("sections"), doc.pop("urls")
            add = {"sections": {"$each": sections}, "urls": {"$each": urls}}
            if old is None:
                # An insert, not an upsert: one racing with another writer's insert of
                # the same URL is refused (unique index) and retried as a known article,
                # so exactly one write counts the article.
                kinds[url] = "new"
                dated.add(url)
                tallies[url] = Tally.at(doc["published_at"], sections)
                ops.append(InsertOne({**doc, "sections": sections, "urls": urls,
                                      "first_seen": now, "last_seen": now,
                                      "revision_count": 0, "revised_at": None,
                                      pending.FIELD: mark}))
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
                if not grows_sections:  # cannot change the counts nor a search: batched
                    ops.append(UpdateOne({"url": url}, update))
                    bulk_urls.append(url)
                else:
                    same[pending.FIELD] = mark  # a section filter finds it from now on
                    singles.append((url, update, None))
                continue
            kinds[url] = "revised"
            dated.add(url)
            revision = {k: old.get(k) for k in REVISION_FIELDS}
            revision["archived_at"] = old.get("revised_at") or old.get("first_seen")
            revision["superseded_at"] = now
            revisions.append(revision)
            update = {"$set": {**doc, "last_seen": now, "revised_at": now, pending.FIELD: mark},
                      "$inc": {"revision_count": 1}, "$addToSet": add}
            singles.append((url, update, Tally.at(doc["published_at"], ())))
        if revisions:
            self._insert_revisions(revisions)
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
                 if url in dated and doc["published_at"] is not None]
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
        its new sections counted. An article that already has all the sections (a 304
        of a recrawl, the usual case) is written without a search marker in one round
        trip; one that gains a section is marked in the same write as the section."""
        projection = {"_id": 0, "sections": 1, "urls": 1, "published_at": 1}
        before = None
        if sections:
            before = self.articles.find_one_and_update(
                {"url": url, "sections": {"$all": list(sections)}}, update,
                projection=projection, return_document=ReturnDocument.BEFORE)
        if before is None:
            marked = {**update, "$set": {**update.get("$set", {}),
                                         pending.FIELD: pending.token()}}
            before = self.articles.find_one_and_update(
                {"url": url}, marked if sections else update, projection=projection,
                return_document=ReturnDocument.BEFORE)
        if before is not None:
            was = Tally.of(before)
            assert was is not None
            self.counts.owe(delta(was, Tally(was.month, was.sections | set(sections))))
            self.counts.flush()
        return before
