"""``search_postings``: the keyword index of the articles, kept beside them.

An article's search terms (``terms.terms_for``: ~900 simplified bigrams and ASCII
words for a 1,500-character story) are split by a stable hash into ``SHARDS`` small
documents ``{_id: "URL#k", url, published_at, terms: [...]}``, indexed on
``{terms: 1, published_at: -1}``. A search asks for one term in one publication-date
window (``timeline.Windows``), an index range, and reads back only small documents:
~100 terms each instead of the whole term list, and never the article bodies.

Why not a ``search_terms`` array on the articles themselves (the first design):
every read of an article then carried its ~900 terms (SecantusDB decodes whole
documents: 0.4 ms an article instead of 0.07 ms, for every listing and export), and
a term cannot be combined with a date range there without the same cost per
candidate. Why shards rather than one document per (term, article): ~900 documents
an article cost more to insert than ~900 keys in a few documents (measured 44 vs
38 ms an article on SecantusDB for 16 vs 4 shards; 930 single documents far more).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

COLLECTION = "search_postings"
SHARDS = 8
DUPLICATE_KEY = 11000
INDEXES = [
    IndexModel([("terms", ASCENDING), ("published_at", DESCENDING)], name="terms_published"),
    IndexModel([("url", ASCENDING)], name="url"),
]


def shard_of(term: str) -> int:
    """The shard a term lives in (stable across processes: crc32, not ``hash``)."""
    return zlib.crc32(term.encode("utf-8")) % SHARDS


def documents(url: str, published_at: datetime | None,
              terms: Iterable[str]) -> list[dict[str, Any]]:
    """The postings documents of one article (empty shards are left out)."""
    shards: list[list[str]] = [[] for _ in range(SHARDS)]
    for term in terms:
        shards[shard_of(term)].append(term)
    return [{"_id": f"{url}#{k}", "url": url, "published_at": published_at, "terms": part}
            for k, part in enumerate(shards) if part]


class Postings:
    """Write and read the postings of articles."""

    def __init__(self, collection: Collection[dict[str, Any]]) -> None:
        self.collection = collection

    def ensure_indexes(self) -> None:
        self.collection.create_indexes(INDEXES)

    def replace(self, articles: Mapping[str, tuple[datetime | None, list[str]]]) -> None:
        """Set the postings of each ``url -> (published_at, terms)`` to exactly those.

        Idempotent (a retried batch rewrites the same documents): the old postings of
        these urls are deleted first, so an edited article stops matching text it no
        longer has. Raises pymongo errors other than duplicate keys (a concurrent
        writer inserting the same article) for the caller to retry.
        """
        if not articles:
            return
        self.collection.delete_many({"url": {"$in": list(articles)}})
        docs = [doc for url, (published, terms) in articles.items()
                for doc in documents(url, published, terms)]
        if not docs:
            return
        try:
            self.collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            others = [e for e in exc.details.get("writeErrors", [])
                      if e.get("code") != DUPLICATE_KEY]
            if others or exc.details.get("writeConcernErrors"):
                raise

    def query(self, term: str, published: dict[str, Any] | None) -> dict[str, Any]:
        """The ``find`` filter of one term in one date window (``None``: undated)."""
        return {"terms": term, "published_at": published}

    def window(self, term: str, published: dict[str, Any] | None) -> dict[str, Any]:
        """``url -> published_at`` of the articles carrying *term* in the window."""
        cursor = self.collection.find(self.query(term, published),
                                      {"url": 1, "published_at": 1, "_id": 0})
        return {doc["url"]: doc.get("published_at") for doc in cursor}

    def explain(self, term: str, published: dict[str, Any] | None) -> dict[str, Any]:
        """The server's ``explain`` of one window query (to show it uses the index)."""
        result: dict[str, Any] = self.collection.database.command(
            "explain", {"find": self.collection.name, "filter": self.query(term, published)})
        return result
