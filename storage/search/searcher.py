"""Exact keyword search: the tantivy index, the pending articles, MongoDB's word.

A search reads, in this order (the order matters: an article indexed and cleared
between the two reads is then in the index the search opens):

1. the pending articles (``search_pending``, a sparse index range: the writes the
   index has not caught up on), each checked by brute force (``matches``, filters);
2. the live index, reloaded: the hits of every term of the words, the section and the
   date range, newest (or oldest) first by the ``published`` fast field, page by page,
   pending URLs left out (their index document may be stale).

Each index hit is then confirmed on the article as MongoDB has it now, by the same
check (bigrams can all occur without the word; an article deleted or rewritten since
it was indexed), and the two ordered streams are merged by (date, URL). Results are
the rows a brute-force scan of every article would give, however far behind the index
is. Without a usable index (none built yet, another store's, unreadable) the search
reads every article in date order (``scan``): exact, slow, and said in the log.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import tantivy
from pymongo.collection import Collection

from storage.mongo import pending
from storage.mongo.search import Filters, Needles, index_terms, matches
from storage.search import layout
from storage.search.layout import SearchDir
from storage.search.schema import SCHEMA, UNDATED, date_key

logger = logging.getLogger(__name__)

#: Index hits confirmed per round trip to MongoDB.
CONFIRM_CHUNK = 50
Scan = Callable[[Filters, bool], Iterator[dict[str, Any]]]
Key = tuple[int, str]


def in_dates(doc: Mapping[str, Any], filters: Filters) -> bool:
    """``since <= published_at < until`` (an undated article is outside any range)."""
    if filters.since is None and filters.until is None:
        return True
    key = date_key(doc.get("published_at"))
    if key == UNDATED:
        return False
    return ((filters.since is None or key >= date_key(filters.since))
            and (filters.until is None or key < date_key(filters.until)))


class IndexSearch:
    """Searches of one store with its index directory (``root``; None: no index)."""

    def __init__(self, articles: Collection[dict[str, Any]], root: Path | None,
                 scan: Scan) -> None:
        self.articles = articles
        self.root = root
        self.scan = scan
        self._indexes: dict[Path, tantivy.Index] = {}
        self._warned = False

    def _index(self) -> tantivy.Index | None:
        if self.root is None:
            return None
        path = SearchDir(self.root).current(self.articles.database["store_meta"])
        if path is None:
            self._warn(f"no search index for this store in {self.root}")
            return None
        index = self._indexes.get(path)
        if index is None:
            try:
                index = layout.open_index(path)
            except (OSError, ValueError) as exc:
                self._warn(f"search index {path} unreadable ({exc})")
                return None
            self._indexes = {path: index}
        index.reload()
        return index

    def _warn(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("%s: searches read every article (`gzarchive search reindex` "
                           "builds the index)", why)

    def search(self, words: Sequence[str], filters: Filters, newest_first: bool = True,
               limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Articles containing every word and passing the filters, in date order."""
        needles = Needles.of(words)

        def keep(doc: Mapping[str, Any]) -> bool:
            return filters.accepts(doc) and in_dates(doc, filters) and matches(doc, needles)

        if self.root is None:
            yield from (d for d in self.scan(filters, newest_first) if matches(d, needles))
            return
        sign = -1 if newest_first else 1

        def key(doc: Mapping[str, Any]) -> Key:
            return (sign * date_key(doc.get("published_at")), str(doc["url"]))

        waiting = list(self.articles.find(pending.PENDING))  # before the index: see above
        index = self._index()
        if index is None:
            yield from (d for d in self.scan(filters, newest_first) if matches(d, needles))
            return
        fresh = sorted((d for d in waiting if keep(d)), key=key)
        skip = {str(d["url"]) for d in waiting}
        hits = self._confirmed(self._hits(index, words, filters, newest_first, limit, skip),
                               keep)
        yield from heapq.merge(fresh, hits, key=key)

    def _query(self, words: Sequence[str], filters: Filters) -> tantivy.Query:
        must = [tantivy.Query.term_query(SCHEMA, "terms", term) for term in index_terms(words)]
        if filters.section:
            must.append(tantivy.Query.term_query(SCHEMA, "sections", filters.section))
        if filters.since is not None or filters.until is not None:
            low = date_key(filters.since) if filters.since is not None else UNDATED + 1
            high = date_key(filters.until) if filters.until is not None else 2**62
            must.append(tantivy.Query.range_query(SCHEMA, "published", tantivy.FieldType.Integer,
                                                  low, high, include_lower=True,
                                                  include_upper=False))
        if not must:
            return tantivy.Query.all_query()
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in must])

    def _hits(self, index: tantivy.Index, words: Sequence[str], filters: Filters,
              newest_first: bool, limit: int | None, skip: set[str]) -> Iterator[Key]:
        """(order key, url) of the index's hits in exact (date, URL) order."""
        searcher = index.searcher()
        query = self._query(words, filters)
        order = tantivy.Order.Desc if newest_first else tantivy.Order.Asc
        sign = -1 if newest_first else 1
        page = max(2 * limit, 64) if limit else 1_000
        offset, held = 0, []
        while True:
            result = searcher.search(query, limit=page, offset=offset, count=False,
                                     order_by_field="published", order=order)
            got = [(sign * int(value), str(searcher.doc(address)["url"][0]))
                   for value, address in result.hits]
            offset += len(got)
            last = len(got) < page
            held += [hit for hit in got if hit[1] not in skip]
            if last:
                yield from sorted(held)
                return
            # Hits of the page's last date may go on in the next page: held back.
            boundary = got[-1][0]
            ready = sorted(hit for hit in held if hit[0] != boundary)
            held = [hit for hit in held if hit[0] == boundary]
            yield from ready
            page = min(page * 2, 10_000)

    def _confirmed(self, hits: Iterator[Key],
                   keep: Callable[[Mapping[str, Any]], bool]) -> Iterator[dict[str, Any]]:
        """The articles of the hits as MongoDB has them now, those that still match."""
        chunk: list[str] = []
        seen: set[str] = set()

        def fetch() -> list[dict[str, Any]]:
            by_url = {d["url"]: d for d in self.articles.find({"url": {"$in": chunk}})}
            return [by_url[url] for url in chunk if url in by_url and keep(by_url[url])]

        for _key, url in hits:
            if url in seen:  # a document replaced meanwhile is in two segments once
                continue
            seen.add(url)
            chunk.append(url)
            if len(chunk) >= CONFIRM_CHUNK:
                yield from fetch()
                chunk = []
        if chunk:
            yield from fetch()
