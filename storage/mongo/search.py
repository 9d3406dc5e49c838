"""Date-ordered listing of articles, and the text check of keyword searches.

Listings walk publication-date windows (``timeline.Windows``) newest first, each an
index range, and stop as soon as the caller has its rows. Keyword searches are made by
the search index (``storage.search.searcher``); what they share with this module is
the exact check of a candidate: every query word occurs in the title or body, in
either script (CJK runs as substrings of the simplified text, ASCII words whole) --
terms are simplified bigrams and ASCII words, so 貴州 and 贵州 search alike, and
bigrams can all occur without the word (贵州 + 州人 without 贵州人).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.collection import Collection

from storage.mongo.terms import ASCII_WORD, CJK_RUN, query_terms, to_simplified
from storage.mongo.timeline import Timeline, Windows


def split_words(search: str | Sequence[str]) -> list[str]:
    """Query words from a string (split on whitespace) or a list of words."""
    words = search.split() if isinstance(search, str) else list(search)
    return [w for w in (w.strip() for w in words) if w]


def index_terms(words: Sequence[str]) -> list[str]:
    """Indexable terms of the words, longest first (no lone CJK characters)."""
    terms = [t for t in query_terms(words) if not (len(t) == 1 and CJK_RUN.fullmatch(t))]
    return sorted(terms, key=lambda t: (-len(t), terms.index(t)))


@dataclass(frozen=True)
class Needles:
    """The query words folded once: CJK runs (substrings) and ASCII words (whole words)."""

    runs: tuple[str, ...]
    tokens: frozenset[str]

    @classmethod
    def of(cls, words: Sequence[str]) -> Needles:
        folded = [to_simplified(word).lower() for word in words]
        return cls(tuple(run for f in folded for run in CJK_RUN.findall(f)),
                   frozenset(t for f in folded for t in ASCII_WORD.findall(f)))


def matches(doc: Mapping[str, Any], needles: Needles) -> bool:
    """Whether every word occurs in the title or body, in either script, as the index
    terms are built (CJK runs as substrings, ASCII words whole, case-insensitive)."""
    text = to_simplified(f"{doc.get('title') or ''}\n{doc.get('body') or ''}").lower()
    if not all(run in text for run in needles.runs):
        return False
    return not needles.tokens or needles.tokens <= set(ASCII_WORD.findall(text))


@dataclass
class Filters:
    """The non-search filters of a query."""

    section: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_near_duplicates: bool = True

    def accepts(self, doc: Mapping[str, Any]) -> bool:
        if self.section and self.section not in (doc.get("sections") or []):
            return False
        return self.include_near_duplicates or doc.get("near_duplicate_of") is None


def _order_key(newest_first: bool) -> Any:
    def key(item: tuple[str, Any]) -> tuple[Any, ...]:
        url, published = item
        if not isinstance(published, datetime):
            stamp = 0.0
        else:  # a client without tz_aware returns naive UTC datetimes
            stamp = (published if published.tzinfo else published.replace(tzinfo=UTC)).timestamp()
        return (-stamp if newest_first else stamp, url)
    return key


class ArticleQuery:
    """Date-ordered reads of the articles (listings)."""

    def __init__(self, articles: Collection[dict[str, Any]],
                 meta: Collection[dict[str, Any]]) -> None:
        self.articles = articles
        self.meta = meta

    def _windows(self, filters: Filters, newest_first: bool, target: int) -> Windows:
        return Windows(Timeline.load(self.meta), filters.since, filters.until,
                       newest_first=newest_first, target=target)

    def listing(self, filters: Filters, newest_first: bool = True,
                limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Articles in date order, window by window (each an index range)."""
        windows = self._windows(filters, newest_first, max(limit, 20) if limit else 500)
        key = _order_key(newest_first)
        for window in windows:
            query: dict[str, Any] = {"published_at": window}
            if filters.section:  # {sections, published_at}: the sections_published index
                query = {"sections": filters.section, "published_at": window}
            docs = list(self.articles.find(query))
            windows.observed(len(docs))
            docs.sort(key=lambda d: key((d["url"], d.get("published_at"))))
            yield from (d for d in docs if filters.accepts(d))
