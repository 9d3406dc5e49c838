"""Article counts kept with each write: per publication month, per (month, section).

``gzarchive stats`` (totals, per section, per month) used to scan every article (14 s at
100,000). The counts now live in one ``store_meta`` document, ``{_id: "counts",
months: {"2025-07": n, "unknown": n}, cells: {"2025-07|老外在贵州": n}, writes, state}``:
per-section and total counts are sums over it (an article in two sections counts once
per month and once in each section cell). One document keeps every update atomic on
MongoDB and SecantusDB alike: each write adds its increments with one ``$inc`` (never a
read-modify-write in the client), so several crawl processes may write at once.

Increments come from each article's state before and after its write (month of
``published_at`` in Beijing time, set of sections): ``ArticleRepository`` takes the
before-image from the write itself (an insert that succeeded had none;
``find_one_and_update`` returns the document it changed). A retried or replayed write
that had already landed finds its own result as before-image and adds nothing.
Increments that could not be added (the ``$inc`` itself failed) are owed and added with
the next write of the same process. What stays open: a process killed between an
article write and its ``$inc`` (one round trip); ``gzarchive stats --recount`` rebuilds.

A recount (``--recount``, or the migration of a store without counts on the first crawl
start) scans the articles in URL order into a staging document ``counts_staging``
(``after``: the last URL counted, advanced with each chunk by compare-and-set, so an
interrupted recount resumes where it stopped), then swaps it in with one
``replace_one``, provided no write was counted meanwhile (``writes`` unchanged); else
it counts again (at most ``ATTEMPTS`` times, then swaps and says so).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import PyMongoError

logger = logging.getLogger(__name__)

LIVE_ID = "counts"
STAGING_ID = "counts_staging"
UNKNOWN = "unknown"
READY = "ready"
BUILDING = "building"
CHUNK = 2_000
ATTEMPTS = 3
REPORT_EVERY = 5.0  # seconds between progress lines in the log
_BEIJING = timezone(timedelta(hours=8))
#: Field names may not hold '.' or start with '$': full-width stand-ins (as runs.py).
_ESCAPES = {".": "\uff0e", "$": "\uff04"}

Delta = Counter[str]


def _escape(key: str) -> str:
    for char, stand_in in _ESCAPES.items():
        key = key.replace(char, stand_in)
    return key


def _unescape(key: str) -> str:
    for char, stand_in in _ESCAPES.items():
        key = key.replace(stand_in, char)
    return key


def month_of(published_at: Any) -> str:
    """YYYY-MM of a publication date in Beijing time, ``unknown`` without one."""
    if not isinstance(published_at, datetime):
        return UNKNOWN
    if published_at.tzinfo is None:  # pymongo without tz_aware: naive means UTC
        published_at = published_at.replace(tzinfo=UTC)
    return str(published_at.astimezone(_BEIJING).strftime("%Y-%m"))


@dataclass(frozen=True)
class Tally:
    """What the counts hold of one article: its month and its sections."""

    month: str
    sections: frozenset[str]

    @classmethod
    def of(cls, doc: Mapping[str, Any] | None) -> Tally | None:
        if doc is None:
            return None
        return cls.at(doc.get("published_at"), doc.get("sections") or ())

    @classmethod
    def at(cls, published_at: Any, sections: Iterable[str]) -> Tally:
        return cls(month_of(published_at), frozenset(sections))

    def fields(self) -> list[str]:
        month = _escape(self.month)
        return [f"months.{month}", *(f"cells.{month}|{_escape(s)}" for s in self.sections)]


def delta(before: Tally | None, after: Tally | None) -> Delta:
    """The increments that move an article's contribution from *before* to *after*."""
    out: Delta = Counter()
    if before == after:
        return out
    for name in before.fields() if before else ():
        out[name] -= 1
    for name in after.fields() if after else ():
        out[name] += 1
    return Counter({k: v for k, v in out.items() if v})


@dataclass
class Counts:
    """The counts as ``stats`` shows them."""

    by_month: dict[str, int] = field(default_factory=dict)
    by_month_section: dict[tuple[str, str], int] = field(default_factory=dict)
    writes: int = 0
    state: str = READY

    @property
    def total(self) -> int:
        return sum(self.by_month.values())

    @property
    def by_section(self) -> dict[str, int]:
        """Articles per section, most first (then by name)."""
        out: Counter[str] = Counter()
        for (_month, section), n in self.by_month_section.items():
            out[section] += n
        return {k: v for k, v in sorted(out.items(), key=lambda kv: (-kv[1], kv[0])) if v}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Counts:
        months = {_unescape(k): int(v) for k, v in (doc.get("months") or {}).items() if v}
        cells: dict[tuple[str, str], int] = {}
        for key, n in (doc.get("cells") or {}).items():
            if n:
                month, _, section = key.partition("|")
                cells[(_unescape(month), _unescape(section))] = int(n)
        return cls(dict(sorted(months.items())), cells, int(doc.get("writes") or 0),
                   str(doc.get("state") or READY))

    def to_doc(self) -> dict[str, Any]:
        return {"months": {_escape(m): n for m, n in self.by_month.items()},
                "cells": {f"{_escape(m)}|{_escape(s)}": n
                          for (m, s), n in self.by_month_section.items()},
                "writes": self.writes, "state": self.state}

    def add(self, doc: Mapping[str, Any]) -> None:
        tally = Tally.of(doc)
        assert tally is not None
        self.by_month[tally.month] = self.by_month.get(tally.month, 0) + 1
        for section in tally.sections:
            key = (tally.month, section)
            self.by_month_section[key] = self.by_month_section.get(key, 0) + 1


class Counters:
    """The counts document of one database: increments, reads, recounts."""

    def __init__(self, meta: Collection[dict[str, Any]],
                 articles: Collection[dict[str, Any]]) -> None:
        self.meta = meta
        self.articles = articles
        self._owed: Delta = Counter()
        self._next_report = 0.0

    # -- writes --------------------------------------------------------------------
    def owe(self, inc: Delta) -> None:
        """Note the increments of a write that landed (added by the next ``flush``)."""
        self._owed.update(inc)

    def flush(self) -> None:
        """Add everything owed in one ``$inc``.

        Raises pymongo's error; the increments stay owed to the next call.
        """
        total = Counter({k: v for k, v in self._owed.items() if v})
        self._owed = Counter()
        if not total:
            return
        try:
            # No upsert: before the counts exist (a store being migrated) the recount
            # will see these articles; ``writes`` tells it something changed meanwhile.
            self.meta.update_one({"_id": LIVE_ID}, {"$inc": {**total, "writes": 1}})
        except PyMongoError:
            self._owed = total
            raise

    @property
    def owed(self) -> int:
        """Increments not yet added (the last ``$inc`` failed)."""
        return sum(abs(v) for v in self._owed.values())

    # -- reads ---------------------------------------------------------------------
    def load(self) -> Counts | None:
        """The kept counts, None while they are missing or being built."""
        doc = self.meta.find_one({"_id": LIVE_ID})
        if doc is None or doc.get("state") != READY:
            return None
        return Counts.from_doc(doc)

    def scan(self) -> Counts:
        """The counts computed from the articles (one pass; what ``--recount`` keeps)."""
        counts = Counts()
        for doc in self.articles.find({}, {"_id": 0, "sections": 1, "published_at": 1}):
            counts.add(doc)
        return counts

    # -- building ------------------------------------------------------------------
    def ensure(self) -> float | None:
        """Build the counts if this store has none (the migration of an earlier
        layout, or one interrupted): returns the seconds it took, None if nothing to do."""
        doc = self.meta.find_one({"_id": LIVE_ID}, {"state": 1})
        if doc is not None and doc.get("state") == READY:
            return None
        if doc is None and self.articles.estimated_document_count() == 0:
            empty = Counts().to_doc()
            self.meta.update_one({"_id": LIVE_ID}, {"$setOnInsert": empty}, upsert=True)
            if self.load() is not None:
                return None
        logger.warning("article counts missing (a store of an earlier version): counting "
                       "every article once; interrupted, it resumes at the next start")
        try:
            return self.recount(resume=True)
        except RecountConflict:
            return self._wait_for_other()

    def _wait_for_other(self, timeout: float = 3600.0) -> float:
        logger.warning("another process is counting the articles: waiting for it")
        start = time.monotonic()
        while self.load() is None:
            if time.monotonic() - start > timeout:
                raise RecountConflict("the article counts were not built within "
                                      f"{timeout:.0f} s by the process building them")
            time.sleep(1.0)
        return time.monotonic() - start

    def recount(self, resume: bool = False,
                progress: Callable[[int, int, float], None] | None = None) -> float:
        """Count every article again and swap the result in; returns the seconds.

        ``resume``: continue a staging count an interrupted recount left, else start
        over. ``progress(done, expected, seconds)`` is called after each chunk.
        """
        start = time.monotonic()
        self._next_report = 0.0
        self.meta.update_one({"_id": LIVE_ID},
                             {"$setOnInsert": {**Counts(state=BUILDING).to_doc()}},
                             upsert=True)
        for attempt in range(1, ATTEMPTS + 1):
            base = self._writes()
            if not resume or attempt > 1:
                self.meta.delete_one({"_id": STAGING_ID})
            staged = self._stage(base, start, progress)
            swapped = self.meta.replace_one(
                {"_id": LIVE_ID, "writes": staged.writes},
                {**staged.to_doc(), "state": READY,
                 "counted_at": datetime.now(UTC)}).matched_count
            if not swapped and attempt < ATTEMPTS:
                logger.warning("articles written during the recount: counting again "
                               "(%d/%d)", attempt + 1, ATTEMPTS)
                continue
            if not swapped:
                logger.warning("articles still written during recount %d: its counts are "
                               "kept, and may miss what was written meanwhile", attempt)
                self.meta.replace_one({"_id": LIVE_ID}, {**staged.to_doc(), "state": READY,
                                                         "counted_at": datetime.now(UTC)})
            break
        self.meta.delete_one({"_id": STAGING_ID})
        seconds = time.monotonic() - start
        logger.info("article counts rebuilt in %.1f s", seconds)
        return seconds

    def _writes(self) -> int:
        doc = self.meta.find_one({"_id": LIVE_ID}, {"writes": 1}) or {}
        return int(doc.get("writes") or 0)

    def _stage(self, base: int, start: float,
               progress: Callable[[int, int, float], None] | None) -> Counts:
        """Scan into the staging document (resuming it if it exists for *base*)."""
        staging = self.meta.find_one({"_id": STAGING_ID})
        if staging is None or int(staging.get("writes") or 0) != base:
            staging = {"_id": STAGING_ID, **Counts(writes=base, state=BUILDING).to_doc(),
                       "after": "", "done": 0}
            self.meta.replace_one({"_id": STAGING_ID}, staging, upsert=True)
        counts = Counts.from_doc(staging)
        counts.writes = base
        after, done = str(staging.get("after") or ""), int(staging.get("done") or 0)
        expected = self.articles.estimated_document_count()
        chunk = Counts()
        last = after
        cursor = self.articles.find({"url": {"$gt": after}},
                                    {"_id": 0, "url": 1, "sections": 1, "published_at": 1}
                                    ).sort("url", 1)
        for doc in cursor:
            chunk.add(doc)
            last = doc["url"]
            if sum(chunk.by_month.values()) >= CHUNK:
                after, done = self._commit(chunk, after, last, done, counts)
                chunk = Counts()
                self._report(done, expected, start, progress)
        if chunk.by_month:
            after, done = self._commit(chunk, after, last, done, counts)
            self._report(done, expected, start, progress)
        return counts

    def _commit(self, chunk: Counts, after: str, last: str, done: int,
                counts: Counts) -> tuple[str, int]:
        n = chunk.total
        inc: Delta = Counter()
        for name, value in chunk.to_doc()["months"].items():
            inc[f"months.{name}"] += value
        for name, value in chunk.to_doc()["cells"].items():
            inc[f"cells.{name}"] += value
        moved = self.meta.update_one({"_id": STAGING_ID, "after": after},
                                     {"$inc": {**inc, "done": n}, "$set": {"after": last}})
        if not moved.matched_count:
            raise RecountConflict("another process is recounting the articles")
        for month, value in chunk.by_month.items():
            counts.by_month[month] = counts.by_month.get(month, 0) + value
        for key, value in chunk.by_month_section.items():
            counts.by_month_section[key] = counts.by_month_section.get(key, 0) + value
        return last, done + n

    def _report(self, done: int, expected: int, start: float,
                progress: Callable[[int, int, float], None] | None) -> None:
        seconds = time.monotonic() - start
        if progress is not None:
            progress(done, expected, seconds)
            return
        if seconds < self._next_report and done < expected:
            return
        self._next_report = seconds + REPORT_EVERY
        rate = done / seconds if seconds else 0.0
        left = max(0, expected - done) / rate if rate else 0.0
        logger.warning("counting articles: %d of ~%d (%.0f/s, ~%.0f s left)", done,
                       expected, rate, left)


class RecountConflict(RuntimeError):
    """Two processes recounted at once: the one that lost stops (the other finishes)."""
