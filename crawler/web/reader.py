"""The store as the reading room reads it: the article repository's own reads, plus
the counts the pages show.

Nothing here writes. The counts per section and per (month, section) are the ones the
store keeps as it writes (``storage/mongo/counters.py``, one small ``store_meta``
read); a store that has none yet (an earlier layout being migrated) is counted by a
scan, kept here until its article and revision counts change.
"""

from __future__ import annotations

import threading
from typing import Any

from crawler.urls import canonicalize  # imports Scrapy: ~140 ms, at start, not at a request
from storage.mongo.articles import ArticleRepository
from storage.mongo.counters import Counts
from storage.mongo.runs import RunRepository


class Reader:
    """Reads for the pages (see the module doc)."""

    def __init__(self, repo: ArticleRepository) -> None:
        self.repo = repo
        self.runs = RunRepository(repo.db)
        self._scanned: tuple[tuple[int, int], Counts] | None = None
        self._lock = threading.Lock()

    # -- counts -------------------------------------------------------------------
    def counts(self) -> Counts:
        """The kept counts; while a store has none, one scan per change of the store."""
        kept = self.repo.counts.load()
        if kept is not None:
            return kept
        version = (self.repo.articles.estimated_document_count(),
                   self.repo.revisions.estimated_document_count())
        with self._lock:
            if self._scanned is not None and self._scanned[0] == version:
                return self._scanned[1]
        scanned = self.repo.counts.scan()
        with self._lock:
            self._scanned = (version, scanned)
        return scanned

    def total(self) -> int:
        """Articles stored (kept: SecantusDB's ``estimated_document_count`` counts them,
        ~55 ms at 9,000 articles)."""
        return self.counts().total

    def sections(self) -> dict[str, int]:
        """Articles per section, most first."""
        return self.counts().by_section

    def per_month_section(self) -> dict[tuple[str, str], int]:
        """(month YYYY-MM Beijing time or "unknown", section) -> articles published."""
        return self.counts().by_month_section

    # -- articles -----------------------------------------------------------------
    def newest(self, section: str, n: int = 5) -> list[dict[str, Any]]:
        return [self.repo.to_export(d) for d in self.repo.find(section=section, limit=n)]

    def article(self, url: str) -> dict[str, Any] | None:
        doc = self.repo.get(url)
        if doc is None:
            try:
                doc = self.repo.get(canonicalize(url))
            except ValueError:
                return None
        return doc

    def republished_as(self, url: str) -> list[dict[str, Any]]:
        """Articles that name ``url`` as their earlier version (the other direction)."""
        docs = self.repo.articles.find({"near_duplicate_of": url},
                                       {"url": 1, "title": 1, "published_at": 1})
        return [self.repo.to_export(d) for d in docs]

    def titles(self, urls: list[str]) -> dict[str, str]:
        docs = self.repo.articles.find({"url": {"$in": urls}}, {"url": 1, "title": 1})
        return {d["url"]: d.get("title") or d["url"] for d in docs}

    def last_runs(self, n: int) -> list[dict[str, Any]]:
        return self.runs.last(n)
