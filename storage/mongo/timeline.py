"""Publication-date windows: how queries read a date-ordered slice without a full sort.

SecantusDB materialises and sorts every document a ``find`` matches before it applies
``limit`` (measured: ``find({}).sort("published_at", -1).limit(20)`` reads all 3,000
articles of a store, ~1 s), so "the newest 20" must not be asked that way. Queries
instead walk ``published_at`` in windows, newest first (or oldest first): each window
is an index range, small enough to be cheap and sized from what the previous one
held, and the walk stops as soon as the caller has enough. On MongoDB the same walk
costs a few more round trips and nothing else.

The ``store_meta`` document ``{_id: "articles", newest, oldest, count}`` (kept by
``ArticleRepository.upsert_many`` with ``$max``/``$min``/``$inc``) tells the walk where
the dates are and how dense they are. It only steers window sizes: a stale or missing
document costs time, never a result, because the last window is open-ended and
articles without a date come in a window of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.collection import Collection

META_COLLECTION = "store_meta"
META_ID = "articles"
#: Windows never reach below this date; one open-ended window takes whatever is older.
FLOOR = datetime(1990, 1, 1, tzinfo=UTC)
MIN_SPAN = timedelta(minutes=10)
MAX_SPAN = timedelta(days=3650)
#: A window grows at most this much (and shrinks at most by its inverse) per step.
MAX_GROWTH = 4.0


@dataclass(frozen=True)
class Timeline:
    """Where stored articles' publication dates lie (approximate, see module doc)."""

    newest: datetime | None = None
    oldest: datetime | None = None
    count: int = 0

    @classmethod
    def load(cls, meta: Collection[dict[str, Any]]) -> Timeline:
        doc = meta.find_one({"_id": META_ID}) or {}
        return cls(_utc(doc.get("newest")), _utc(doc.get("oldest")), int(doc.get("count") or 0))

    @staticmethod
    def record(meta: Collection[dict[str, Any]], dates: list[datetime], new: int) -> None:
        """Widen the stored range to *dates* and count *new* articles (one round trip)."""
        update: dict[str, Any] = {"$inc": {"count": new}}
        if dates:
            update["$max"] = {"newest": max(dates)}
            update["$min"] = {"oldest": min(dates)}
        meta.update_one({"_id": META_ID}, update, upsert=True)

    @staticmethod
    def rebuild(meta: Collection[dict[str, Any]], articles: Collection[dict[str, Any]]) -> None:
        """Recompute the document from the articles (one pass over ``published_at``)."""
        dates = [d["published_at"] for d in articles.find({}, {"published_at": 1, "_id": 0})
                 if isinstance(d.get("published_at"), datetime)]
        count = articles.estimated_document_count()
        doc: dict[str, Any] = {"count": count}
        if dates:
            doc.update(newest=max(dates), oldest=min(dates))
        meta.replace_one({"_id": META_ID}, doc, upsert=True)

    def density_span(self, target: int) -> timedelta:
        """The span that holds about *target* articles at the store's average density."""
        if self.count > 1 and self.newest and self.oldest and self.newest > self.oldest:
            return _clamp((self.newest - self.oldest) * (target / self.count))
        return timedelta(days=1)


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _clamp(span: timedelta) -> timedelta:
    return max(MIN_SPAN, min(MAX_SPAN, span))


class Windows:
    """Conditions on ``published_at`` that tile ``[since, until)`` in date order.

    Iterate to get each window's condition (a range dict, or ``None`` for the window
    of articles without a date, which comes last newest-first and first oldest-first,
    as MongoDB sorts null lowest). After each window call ``observed(n)`` with the
    number of candidates it held: the next window is resized towards *target*.
    """

    def __init__(self, timeline: Timeline, since: datetime | None = None,
                 until: datetime | None = None, *, newest_first: bool = True,
                 target: int = 200, now: datetime | None = None) -> None:
        self.since = _utc(since)
        self.until = _utc(until)
        self.newest_first = newest_first
        self.target = max(1, target)
        self.span = timeline.density_span(self.target)
        now = _utc(now) or datetime.now(UTC)
        # Unknown (empty or pre-timeline store): from now down to FLOOR, growing fast.
        newest = (timeline.newest or now) + timedelta(seconds=1)
        oldest = timeline.oldest or FLOOR
        # Where the walk starts and ends: the data's range, clipped to since/until.
        self.top = min(newest, self.until) if self.until else newest
        self.bottom = max(oldest, FLOOR, self.since) if self.since else max(
            min(oldest, self.top), FLOOR)
        self.with_null = since is None and until is None
        self._last = 0

    def observed(self, candidates: int) -> None:
        """Tell the walk how many candidates the last window held."""
        self._last = candidates
        factor = self.target / candidates if candidates else MAX_GROWTH
        factor = max(1 / MAX_GROWTH, min(MAX_GROWTH, factor))
        self.span = _clamp(self.span * factor)

    def _range(self, lo: datetime | None, hi: datetime | None) -> dict[str, Any]:
        cond: dict[str, Any] = {}
        lo = max(lo, self.since) if lo and self.since else (lo or self.since)
        hi = min(hi, self.until) if hi and self.until else (hi or self.until)
        if lo is not None:
            cond["$gte"] = lo
        if hi is not None:
            cond["$lt"] = hi
        # An unbounded window still needs a condition that excludes null dates.
        return cond or {"$gte": datetime.min.replace(tzinfo=UTC)}

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        if not self.newest_first and self.with_null:
            yield None
        if self.newest_first:
            yield from self._descending()
        else:
            yield from self._ascending()
        if self.newest_first and self.with_null:
            yield None

    def _descending(self) -> Iterator[dict[str, Any]]:
        hi = self.top
        lo = hi - self.span
        yield self._range(lo if lo > self.bottom else None, None)  # open above
        while lo > self.bottom:
            hi, lo = lo, lo - self.span
            yield self._range(lo if lo > self.bottom else None, hi)

    def _ascending(self) -> Iterator[dict[str, Any]]:
        lo = self.bottom
        hi = lo + self.span
        yield self._range(None, hi if hi < self.top else None)  # open below
        while hi < self.top:
            lo, hi = hi, hi + self.span
            yield self._range(lo, hi if hi < self.top else None)

