"""Keyword search and date-ordered listing of articles, index-backed on both servers.

A search walks publication-date windows (``timeline.Windows``) newest first. In each
window it reads the postings (``postings.Postings``) of its *driving* term, fetches
those articles by URL (the ``url_unique`` index) in date order and keeps those whose
text contains every word (bigrams can all occur without the word: 贵州 + 州人 without
贵州人). It stops as soon as it has the caller's limit, so a common word costs one
small window, and a rare word costs its own few postings.

The driving term is the rarest: while the windows seen so far hold fewer than
``PROBE_POSTINGS`` postings of every term (at most ``PROBE_WINDOWS`` windows), each
window reads all the terms and intersects them (exact, and a sample of how often each
occurs); then the least frequent one drives alone. Terms are simplified bigrams and ASCII words, so 貴州 and
贵州 search alike; a query of lone CJK characters has no term and walks the
articles' own date windows, checking the text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.collection import Collection

from storage.mongo.postings import Postings
from storage.mongo.terms import ASCII_WORD, CJK_RUN, query_terms, to_simplified
from storage.mongo.timeline import Timeline, Windows

#: Probe every term until one of them has this many postings in the windows seen, or
#: for this many windows (rare terms all: then the longest drives).
PROBE_POSTINGS = 200
PROBE_WINDOWS = 3
#: Candidates fetched per round trip to the articles.
FETCH_CHUNK = 50


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


@dataclass
class _Driver:
    """Chooses the term that drives the walk, from the postings seen so far."""

    terms: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    chosen: str | None = None
    probed: int = 0

    def __post_init__(self) -> None:
        self.counts = dict.fromkeys(self.terms, 0)
        if len(self.terms) == 1:
            self.chosen = self.terms[0]

    def candidates(self, postings: Postings,
                   window: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
        """(url -> published_at of the candidates, postings read) in one window."""
        if self.chosen is not None:
            found = postings.window(self.chosen, window)
            return found, len(found)
        per_term = {t: postings.window(t, window) for t in self.terms}
        for term, found in per_term.items():
            self.counts[term] += len(found)
        self.probed += 1
        if max(self.counts.values()) >= PROBE_POSTINGS or self.probed >= PROBE_WINDOWS:
            self.chosen = min(self.terms, key=lambda t: (self.counts[t], self.terms.index(t)))
        first, *others = per_term.values()
        common = {url: published for url, published in first.items()
                  if all(url in other for other in others)}
        return common, max(len(f) for f in per_term.values())


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
    """Date-ordered reads of the articles: listings and keyword searches."""

    def __init__(self, articles: Collection[dict[str, Any]], postings: Postings,
                 meta: Collection[dict[str, Any]]) -> None:
        self.articles = articles
        self.postings = postings
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

    def search(self, words: Sequence[str], filters: Filters, newest_first: bool = True,
               limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Articles containing every word, in date order."""
        terms = index_terms(words)
        if not terms:  # lone CJK characters only: nothing indexable, check the text
            needles = Needles.of(words)
            yield from (d for d in self.listing(filters, newest_first) if matches(d, needles))
            return
        driver = _Driver(terms)
        needles = Needles.of(words)  # folded once, not per candidate
        # Postings per window: a common word fills the limit in the first window.
        windows = self._windows(filters, newest_first, max(2 * limit, 50) if limit else 500)
        key = _order_key(newest_first)
        for window in windows:
            found, read = driver.candidates(self.postings, window)
            windows.observed(read)
            ordered = [url for url, _ in sorted(found.items(), key=key)]
            for start in range(0, len(ordered), FETCH_CHUNK):
                chunk = ordered[start:start + FETCH_CHUNK]
                by_url = {d["url"]: d for d in self.articles.find({"url": {"$in": chunk}})}
                for url in chunk:
                    doc = by_url.get(url)
                    if doc is not None and filters.accepts(doc) and matches(doc, needles):
                        yield doc

    def explain(self, words: Sequence[str], filters: Filters) -> dict[str, Any]:
        """The server's explain of the first postings query a search issues."""
        terms = index_terms(words)
        if not terms:
            raise ValueError(f"no indexable term in {list(words)!r}")
        window = next(iter(self._windows(filters, True, 50)))
        return self.postings.explain(terms[0], window)
