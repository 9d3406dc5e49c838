"""Near-duplicate index: MinHash LSH over character shingles, persisted in MongoDB.

A republished story (a title suffix such as （更新）, one paragraph changed) gets a
MinHash signature close to the earlier one. The signature is cut into LSH bands;
each band hash is one document in ``neardup_bands`` (indexed on ``key``), so finding
candidates is a single ``find({"key": {"$in": keys}})`` whatever the index size,
and the index is shared across runs and workers. Candidates are then verified by
the Jaccard similarity estimated from their full signatures (``neardup_sigs``).

The caller passes *folded* text (simplified script, no whitespace or punctuation:
``pipelines.fingerprint.fold_text``), so a gateway twin and its simplified page
have one signature. Plain object over a pymongo database; no Scrapy here.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH
from numpy.typing import NDArray
from pymongo import ASCENDING, ReplaceOne
from pymongo.database import Database

BANDS_COLLECTION = "neardup_bands"
SIGS_COLLECTION = "neardup_sigs"

#: Defaults chosen on generated Chinese news text (tests/test_storage_neardup.py):
#: with 4-character shingles a republished story with one of 6-10 paragraphs
#: rewritten keeps a Jaccard similarity of 0.65-0.9 (title suffix alone: > 0.97),
#: while unrelated stories built from the same phrase bank stay below 0.25.
DEFAULT_NUM_PERM = 128
DEFAULT_THRESHOLD = 0.5
DEFAULT_SHINGLE = 4
#: LSH optimiser weights (false positive, false negative). Candidates are verified
#: on their full signature, so a bucket false positive costs one small read while a
#: false negative loses a duplicate: favour recall (30 bands x 4 rows at 0.5).
LSH_WEIGHTS = (0.2, 0.8)

_SCHEME = "affine32"
#: ``(url, folded_text, published_at)`` or ``(url, folded_text, published_at, original)``
Article = tuple[str, str, datetime | None] | tuple[str, str, datetime | None, str | None]
_FAR_FUTURE = datetime(9999, 12, 31)


def _crc32(data: bytes) -> int:
    # Stable across processes and machines (Python's hash() is salted per process).
    return zlib.crc32(data)


@functools.lru_cache(maxsize=16)
def lsh_params(threshold: float, num_perm: int,
               weights: tuple[float, float] = LSH_WEIGHTS) -> tuple[int, int]:
    """(bands, rows) minimising weighted LSH false positives + negatives (datasketch)."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    return int(lsh.b), int(lsh.r)


@functools.lru_cache(maxsize=16)
def _permutations(num_perm: int) -> NDArray[Any]:
    perms: NDArray[Any] = MinHash(num_perm=num_perm, hashfunc=_crc32,
                                  scheme=_SCHEME).permutations
    return perms


def shingles(text: str, size: int) -> set[bytes]:
    """Character *size*-grams of *text* (the whole text when it is shorter)."""
    if len(text) <= size:
        return {text.encode("utf-8")} if text else set()
    return {text[i:i + size].encode("utf-8") for i in range(len(text) - size + 1)}


def _utc_naive(value: datetime | None) -> datetime | None:
    # BSON dates come back naive (UTC) or aware, as the client is configured:
    # compare everything as naive UTC.
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Signature:
    """A MinHash signature and its LSH band keys."""

    hashvalues: NDArray[np.uint32]
    keys: list[str]

    def similarity(self, other: NDArray[np.uint32]) -> float:
        """Estimated Jaccard similarity with another signature of the same length."""
        return float(np.count_nonzero(self.hashvalues == other)) / len(self.hashvalues)


class NearDuplicateIndex:
    """Finds earlier articles whose text is nearly the same as a new one.

    *threshold* is the estimated Jaccard similarity of *shingle*-character shingle
    sets above which two texts count as the same story; *num_perm* MinHash
    permutations are split into bands x rows by datasketch's optimiser.
    """

    def __init__(self, db: Database[Any], num_perm: int = DEFAULT_NUM_PERM,
                 threshold: float = DEFAULT_THRESHOLD, shingle: int = DEFAULT_SHINGLE) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if shingle < 1:
            raise ValueError(f"shingle must be >= 1, got {shingle}")
        self.num_perm = num_perm
        self.threshold = threshold
        self.shingle = shingle
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self._perms = _permutations(num_perm)
        self._bands = db[BANDS_COLLECTION]
        self._sigs = db[SIGS_COLLECTION]

    # -- signatures -------------------------------------------------------------

    def signature(self, text: str) -> Signature:
        """MinHash signature and band keys of folded *text*."""
        minhash = MinHash(num_perm=self.num_perm, hashfunc=_crc32, scheme=_SCHEME,
                          permutations=self._perms)
        minhash.update_batch(list(shingles(text, self.shingle)))
        values = np.asarray(minhash.hashvalues, dtype=np.uint32)
        keys = []
        for band in range(self.bands):
            chunk = values[band * self.rows:(band + 1) * self.rows].astype("<u4").tobytes()
            keys.append(f"{band}:{hashlib.blake2b(chunk, digest_size=8).hexdigest()}")
        return Signature(values, keys)

    @staticmethod
    def _decode(raw: bytes) -> NDArray[np.uint32]:
        return np.frombuffer(raw, dtype="<u4").astype(np.uint32)

    # -- storage ------------------------------------------------------------------

    def ensure_indexes(self) -> None:
        self._bands.create_index([("key", ASCENDING)], name="key")
        self._bands.create_index([("url", ASCENDING)], name="url")
        self._sigs.create_index([("url", ASCENDING)], name="url", unique=True)

    def _candidates(self, sig: Signature,
                    exclude: str | None) -> list[tuple[str, float, dict[str, Any]]]:
        # One round trip for the LSH buckets; a second only when something matched.
        urls = {doc["url"] for doc in self._bands.find({"key": {"$in": sig.keys}},
                                                       {"url": 1, "_id": 0})}
        urls.discard(exclude or "")
        if not urls:
            return []
        found = []
        for doc in self._sigs.find({"url": {"$in": sorted(urls)}}):
            values = self._decode(doc["hashvalues"])
            if len(values) != self.num_perm or doc.get("shingle", self.shingle) != self.shingle:
                continue  # indexed under other settings: not comparable
            score = sig.similarity(values)
            if score >= self.threshold:
                found.append((str(doc["url"]), score, doc))
        found.sort(key=lambda hit: (-hit[1], hit[0]))
        return found

    def lookup(self, text: str) -> list[tuple[str, float]]:
        """Stored urls whose estimated similarity to *text* is >= threshold, best first."""
        if not text:
            return []
        return [(url, score) for url, score, _ in self._candidates(self.signature(text), None)]

    def find_original(self, url: str, text: str,
                      published_at: datetime | None) -> str | None:
        """The canonical URL of the earlier story that *text* republishes, or None.

        The earliest-published other url passing the threshold (its own recorded
        original when it is itself a republication). *url* itself never counts: an
        exact re-crawl or an in-place edit is not a duplicate. None too when the
        earliest match was published after *published_at*: then this is the original.
        """
        if not text:
            return None
        found = self._candidates(self.signature(text), url)
        if not found:
            return None

        def order(hit: tuple[str, float, dict[str, Any]]) -> tuple[datetime, datetime, str]:
            doc = hit[2]
            return (_utc_naive(doc.get("published_at")) or _FAR_FUTURE,
                    _utc_naive(doc.get("added")) or _FAR_FUTURE, hit[0])

        earliest, _, doc = min(found, key=order)
        mine = _utc_naive(published_at)
        theirs = _utc_naive(doc.get("published_at"))
        if mine is not None and theirs is not None and theirs > mine:
            return None
        return str(doc.get("original") or earliest)

    def add(self, url: str, text: str, published_at: datetime | None,
            original: str | None = None) -> None:
        """Index (or re-index, after an edit in place) the article at *url*.

        *original* records the story it republishes, so later republications point
        to the first version rather than to a chain of versions.
        """
        self.add_many([(url, text, published_at, original)])

    def add_many(self, articles: Iterable[Article]) -> int:
        """Index many ``(url, text, published_at[, original])`` at once; returns the count."""
        now = datetime.now(UTC).replace(tzinfo=None)
        latest: dict[str, Article] = {}
        for article in articles:
            if article[1]:
                latest[article[0]] = article
        if not latest:
            return 0
        bands: list[dict[str, Any]] = []
        sigs: list[ReplaceOne[dict[str, Any]]] = []
        for url, article in latest.items():
            original = article[3] if len(article) == 4 else None
            sig = self.signature(article[1])
            published = _utc_naive(article[2])
            bands.extend({"key": key, "url": url, "published_at": published, "added": now}
                         for key in sig.keys)
            sigs.append(ReplaceOne(
                {"url": url},
                {"url": url, "hashvalues": sig.hashvalues.astype("<u4").tobytes(),
                 "published_at": published, "added": now, "original": original,
                 "num_perm": self.num_perm, "shingle": self.shingle},
                upsert=True))
        # Re-indexing replaces the old bands: an edited article must not keep
        # matching on text it no longer has.
        self._bands.delete_many({"url": {"$in": list(latest)}})
        self._bands.insert_many(bands, ordered=False)
        self._sigs.bulk_write(sigs, ordered=False)
        return len(latest)

    def adopt_later(self, url: str, text: str,
                    published_at: datetime | None) -> list[str]:
        """Articles indexed before *url* but published after it that republish it.

        Crawl order is not publication order: when the original arrives after its
        republications, those are re-pointed at it (in the index) and returned so
        the caller can correct the stored articles.
        """
        mine = _utc_naive(published_at)
        if not text or mine is None:
            return []
        later = []
        for other, _score, doc in self._candidates(self.signature(text), url):
            theirs = _utc_naive(doc.get("published_at"))
            current = doc.get("original")
            if theirs is not None and theirs > mine and current in (None, other):
                later.append(other)
        if later:
            self._sigs.update_many({"url": {"$in": later}}, {"$set": {"original": url}})
        return sorted(later)

    def remove(self, url: str) -> None:
        self._bands.delete_many({"url": url})
        self._sigs.delete_many({"url": url})

    def count(self) -> int:
        return self._sigs.estimated_document_count()
