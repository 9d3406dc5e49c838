"""The store as the reading room reads it: the article repository's own reads, plus
the counts the pages show, cached until the store changes.

Nothing here writes. Aggregates that scan every article (counts per section and month)
are computed once per *version* of the store: its article and revision counts, its
timeline document and its newest run, four small reads per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from storage.mongo.articles import ArticleRepository
from storage.mongo.runs import RunRepository
from storage.mongo.timeline import META_ID

T = TypeVar("T")


class Reader:
    """Reads for the pages (see the module doc)."""

    def __init__(self, repo: ArticleRepository) -> None:
        self.repo = repo
        self.runs = RunRepository(repo.db)
        self._cache: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def version(self) -> tuple[Any, ...]:
        meta = self.repo.meta.find_one({"_id": META_ID}, {"_id": 0}) or {}
        last = self.runs.runs.find_one({}, {"started_at": 1, "finished_at": 1},
                                       sort=[("started_at", -1)]) or {}
        return (self.repo.articles.estimated_document_count(),
                self.repo.revisions.estimated_document_count(),
                tuple(sorted((k, str(v)) for k, v in meta.items())),
                str(last.get("_id")), str(last.get("finished_at")))

    def cached(self, name: str, compute: Callable[[], T]) -> T:
        version = self.version()
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] == version:
                return hit[1]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            self._cache[name] = (version, value)
        return value

    # -- counts -------------------------------------------------------------------
    def total(self) -> int:
        return self.repo.articles.estimated_document_count()

    def sections(self) -> dict[str, int]:
        """Articles per section, most first."""
        return self.cached("sections", self.repo.count_by_section)

    def per_month_section(self) -> dict[tuple[str, str], int]:
        """(month YYYY-MM Beijing time, section) -> articles published."""
        def compute() -> dict[tuple[str, str], int]:
            rows = self.repo.articles.aggregate([
                {"$project": {"sections": 1, "published_at": 1}},
                {"$unwind": "$sections"},
                {"$group": {"_id": {"s": "$sections", "m": {"$dateToString": {
                    "format": "%Y-%m", "date": "$published_at", "timezone": "+08:00"}}},
                    "n": {"$sum": 1}}}])
            return {(row["_id"].get("m") or "unknown", row["_id"]["s"]): row["n"]
                    for row in rows}
        return self.cached("per_month_section", compute)

    # -- articles -----------------------------------------------------------------
    def newest(self, section: str, n: int = 5) -> list[dict[str, Any]]:
        return [self.repo.to_export(d) for d in self.repo.find(section=section, limit=n)]

    def article(self, url: str) -> dict[str, Any] | None:
        from crawler.urls import canonicalize

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
