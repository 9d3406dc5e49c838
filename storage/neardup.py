"""Near-duplicate index: MinHash LSH over character shingles, persisted in MongoDB.

A republished story (a title suffix such as （更新）, one paragraph changed) gets a
MinHash signature close to the earlier one. The signature is cut into LSH bands and
each article is ONE document of ``neardup_sigs``::

    {url, keys: [42 band keys], hashvalues: bytes, published_at, added, original,
     num_perm, shingle}

with a unique index on ``url`` and a multikey index on ``keys``. Finding candidates
is one round trip, ``find({"keys": {"$in": sig.keys}})`` (projection without
``keys``), whatever the index size; candidates are then verified by the Jaccard
similarity estimated from their full signatures. (Figures on the query below were
measured with 30 keys, at the earlier defaults.) SecantusDB 0.7.0b3 answers that
``$in`` through the index (explain: ``FETCH <- IXSCAN(keys)``; at 2k articles ~4 ms,
against ~50 ms for 30 equality finds and ~4 s without the index), unlike ``$all``;
a lookup stays at 4-7 ms median from 10k to 1M articles (benchmarks/README.md). The
article's own url is left out on the client: with ``url: {$ne: …}`` added to the
filter SecantusDB scans the whole collection (explain: COLLSCAN).

SecantusDB (0.7.0b3) then checks every candidate against the whole filter in Python,
``$in`` value by value, each against each of the document's 42 keys (~2 µs a comparison:
~1 ms per candidate whose shared band comes mid-list). Texts of one site share bands
(boilerplate, generated replica text: ~35 candidates per lookup at 1,000 articles, most
below the threshold), so that check was half the store server's CPU of a crawl. The
lookup therefore lists first the keys this process has indexed most often
(:class:`KeyFrequency`): a candidate usually shares one of those, and its check stops at
the first query value (10x fewer comparisons measured on a crawl of the replica). The
order of an ``$in`` list changes no result, on any server.

Across workers the pipeline calls :meth:`NearDuplicateIndex.check_in`, which adds
the article *first* and then looks it up, and decides which copy is the original by
one total order, ``(published_at, added, url)``, read from the stored documents by
every worker alike. Whatever the interleaving of two workers' steps, the one that
looks up last sees both copies: it either points to the other or re-points the other
(it was indexed as an original) to itself. ``added`` is kept on re-indexing, so a
re-crawl does not change the order.

Signatures and band keys: ``storage.minhash``. :meth:`NearDuplicateIndex.ensure_indexes`
migrates stores of the older layout (one ``neardup_bands`` document per band) and
signatures made with other settings (``storage.neardup_migrate``).

The caller passes *folded* text (simplified script, no whitespace or punctuation:
``pipelines.fingerprint.fold_text``), so a gateway twin and its simplified page
have one signature. Plain object over a pymongo database; no Scrapy here.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from storage.minhash import Signature, decode_hashvalues, lsh_params, minhash_signature
from storage.neardup_migrate import LEGACY_BANDS_COLLECTION as LEGACY_BANDS_COLLECTION
from storage.neardup_migrate import TextSource as TextSource
from storage.neardup_migrate import migrate_bands, migrate_settings

logger = logging.getLogger(__name__)

SIGS_COLLECTION = "neardup_sigs"

#: The production settings (crawler/settings.py DEDUP_*, where the measurements that
#: chose them are): estimated Jaccard >= 0.4 of 12-character shingles, 128
#: permutations in 42 bands of 3 rows.
DEFAULT_NUM_PERM = 128
DEFAULT_THRESHOLD = 0.4
DEFAULT_SHINGLE = 12
#: ``(url, folded_text, published_at)`` or ``(url, folded_text, published_at, original)``
Article = tuple[str, str, datetime | None] | tuple[str, str, datetime | None, str | None]
_FAR_FUTURE = datetime(9999, 12, 31)
#: Stop bands (opt-in): judged once this process has indexed this many articles, and
#: never leaving fewer than this share of an article's keys in its lookup.
DEFAULT_STOP_AFTER = 1_000
MIN_QUERY_KEYS = 0.5
#: Candidates per reply of a lookup (~0.6 KB each; a reply holds at most 16 MB).
FETCH_BATCH = 5_000
#: Stored fields a lookup reads (never the band keys). Named rather than excluded:
#: SecantusDB copies the whole document to drop a field (20 % of a lookup's cost at
#: 100 candidates, measured), and picks named fields without the copy.
_PROJECTION = dict.fromkeys(("url", "hashvalues", "published_at", "added", "original",
                             "num_perm", "shingle"), 1) | {"_id": 0}


class KeyFrequency:
    """How often this process indexed each band key (bounded): the lookup's key order.

    At most *limit* keys are kept; past it, only the most frequent half stays (those
    are the ones that order the lookup; a key of one article only is forgotten).
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self.articles = 0  # articles whose keys were counted
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()  # an index may be shared by threads

    def add(self, keys: Iterable[str]) -> None:
        with self._lock:
            self.articles += 1
            self._counts.update(keys)
            if len(self._counts) > self.limit:
                self._counts = Counter(dict(self._counts.most_common(self.limit // 2)))

    def common(self, keys: list[str], share: float, after: int) -> set[str]:
        """Those of *keys* counted in more than *share* of the articles, once *after*
        articles were counted (none before: too few to tell)."""
        with self._lock:
            if share <= 0 or self.articles < after:
                return set()
            limit = share * self.articles
            return {k for k in keys if self._counts.get(k, 0) > limit}

    def most_frequent_first(self, keys: list[str]) -> list[str]:
        with self._lock:
            counts = [self._counts.get(k, 0) for k in keys]
        # Stable: keys seen equally often stay in band order.
        return [k for _, k in sorted(zip(counts, keys, strict=True), key=lambda ck: -ck[0])]


def _utc_naive(value: datetime | None) -> datetime | None:
    # BSON dates come back naive (UTC) or aware, as the client is configured:
    # compare everything as naive UTC.
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _now() -> datetime:
    # Milliseconds, as BSON stores them: a worker compares the value it wrote with
    # the one another worker reads back.
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def precedence(doc: dict[str, Any]) -> tuple[datetime, datetime, str]:
    """Total order of copies of one story: the smallest is the original.

    Published first, then indexed first, then the smaller url (a missing date sorts
    last). Every worker computes it from the same stored fields.
    """
    return (_utc_naive(doc.get("published_at")) or _FAR_FUTURE,
            _utc_naive(doc.get("added")) or _FAR_FUTURE, str(doc["url"]))


def resolve(me: dict[str, Any], group: Iterable[dict[str, Any]]) -> tuple[str | None, list[str]]:
    """``(original, later)`` for *me* among the near-duplicate documents *group*.

    *original* is None when *me* comes first in :func:`precedence`, else the first
    copy's own recorded original or the first copy. *later* lists the copies that
    come after *me* and are recorded as originals: they are to point to *me*.
    """
    others = [doc for doc in group if doc["url"] != me["url"]]
    if not others:
        return None, []
    first = min(others, key=precedence)
    if precedence(first) < precedence(me):
        # (never *me* itself: possible only if a date was edited since it was recorded)
        recorded = first.get("original")
        return str(recorded if recorded and recorded != me["url"] else first["url"]), []
    # Copies already recorded as pointing to *me* are listed again: their article's
    # relink may have died with a killed run (the index is written first), and
    # setting near_duplicate_of to the same original twice is harmless.
    return None, sorted(str(doc["url"]) for doc in others
                        if doc.get("original") in (None, doc["url"], me["url"]))


@dataclass(frozen=True)
class Decision:
    """What check_in decided: *original* of the article, the *later* copies to
    re-point to it, and the original *recorded* in its document when it looked."""

    original: str | None
    later: list[str]
    recorded: str | None


class NearDuplicateIndex:
    """Finds earlier articles whose text is nearly the same as a new one.

    *threshold* is the estimated Jaccard similarity of *shingle*-character shingle
    sets above which two texts count as the same story; *num_perm* MinHash
    permutations are split into bands x rows by datasketch's optimiser.
    """

    def __init__(self, db: Database[Any], num_perm: int = DEFAULT_NUM_PERM,
                 threshold: float = DEFAULT_THRESHOLD, shingle: int = DEFAULT_SHINGLE,
                 stop_share: float = 0.0, stop_after: int = DEFAULT_STOP_AFTER) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if shingle < 1:
            raise ValueError(f"shingle must be >= 1, got {shingle}")
        if not 0.0 <= stop_share < 1.0:
            raise ValueError(f"stop_share must be in [0, 1), got {stop_share}")
        self.stop_share = stop_share
        self.stop_after = stop_after
        self.num_perm = num_perm
        self.threshold = threshold
        self.shingle = shingle
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self._db = db
        self._sigs = db[SIGS_COLLECTION]
        self._frequency = KeyFrequency()

    @property
    def collection(self) -> Collection[dict[str, Any]]:
        """The ``neardup_sigs`` collection (for migrations and benchmarks)."""
        return self._sigs

    # -- signatures -------------------------------------------------------------

    def signature(self, text: str) -> Signature:
        """MinHash signature and band keys of folded *text*."""
        return minhash_signature(text, self.num_perm, self.shingle, self.bands, self.rows)

    # -- storage ------------------------------------------------------------------

    def ensure_indexes(self, texts: TextSource | None = None) -> None:
        """Create the indexes; migrate a store of an older layout or other settings.

        *texts* (urls -> folded text) rebuilds signatures made with another shingle
        size or number of permutations (``storage.neardup_migrate``).
        """
        self._sigs.create_index([("url", ASCENDING)], name="url", unique=True)
        self._sigs.create_index([("keys", ASCENDING)], name="keys")
        if LEGACY_BANDS_COLLECTION in self._db.list_collection_names():
            migrate_bands(self)
        migrate_settings(self, texts)

    def _fetch(self, sig: Signature) -> list[dict[str, Any]]:
        """Every stored article sharing a band with *sig*: one indexed round trip (the
        keys most often indexed first: the module docstring says why)."""
        keys = self._frequency.most_frequent_first(sig.keys)
        stop = (self._frequency.common(keys, self.stop_share, self.stop_after)
                if self.stop_share else set())   # off by default: no second count
        if stop and len(keys) - len(stop) >= MIN_QUERY_KEYS * len(keys):
            # "Stop bands" (opt-in, DEDUP_STOP_SHARE): a band key that a large share
            # of all articles hold finds hundreds of candidates and no republication
            # that another band would not find too. Left out only while most keys
            # remain; an article made mostly of such keys is looked up by all of them.
            keys = [k for k in keys if k not in stop]
        # One reply for all candidates (not 101, then a getMore per batch): an article
        # of a site's usual kind shares a band with hundreds of others (benchmarks/README).
        return list(self._sigs.find({"keys": {"$in": keys}}, _PROJECTION,
                                    batch_size=FETCH_BATCH))

    def _verified(self, sig: Signature, docs: Iterable[dict[str, Any]],
                  exclude: str | None) -> list[tuple[str, float, dict[str, Any]]]:
        found = []
        for doc in docs:
            if doc["url"] == exclude:
                continue
            values = decode_hashvalues(doc["hashvalues"])
            if len(values) != self.num_perm or doc.get("shingle", self.shingle) != self.shingle:
                continue  # indexed under other settings: not comparable
            score = sig.similarity(values)
            if score >= self.threshold:
                found.append((str(doc["url"]), score, doc))
        found.sort(key=lambda hit: (-hit[1], hit[0]))
        return found

    def _group(self, url: str, text: str, published_at: datetime | None
               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        # *url* as it would be indexed now (its stored ``added`` if it is stored),
        # and the other articles passing the threshold.
        sig = self.signature(text)
        docs = self._fetch(sig)
        return self._me(url, docs, published_at), [
            doc for _, _, doc in self._verified(sig, docs, url)]

    @staticmethod
    def _me(url: str, docs: list[dict[str, Any]],
            published_at: datetime | None) -> dict[str, Any]:
        # *url* as it is (or would be) indexed with this *published_at*: its stored
        # ``added`` and ``original`` when it is stored.
        stored = next((doc for doc in docs if doc["url"] == url), None)
        return {"added": _now(), "original": None, **(stored or {}), "url": url,
                "published_at": _utc_naive(published_at)}

    def lookup(self, text: str) -> list[tuple[str, float]]:
        """Stored urls whose estimated similarity to *text* is >= threshold, best first."""
        if not text:
            return []
        sig = self.signature(text)
        return [(url, score) for url, score, _ in self._verified(sig, self._fetch(sig), None)]

    def find_original(self, url: str, text: str,
                      published_at: datetime | None) -> str | None:
        """The canonical URL of the earlier story that *text* republishes, or None.

        The first other url passing the threshold in :func:`precedence` order (its own
        recorded original when it is itself a republication). *url* itself never
        counts: an exact re-crawl or an in-place edit is not a duplicate. None too
        when *url* itself would come first: then this is the original. Read-only;
        the pipeline uses :meth:`check_in`.
        """
        if not text:
            return None
        me, group = self._group(url, text, published_at)
        return resolve(me, group)[0]

    def adopt_later(self, url: str, text: str,
                    published_at: datetime | None) -> list[str]:
        """Articles that come after *url* but were indexed as originals: re-point them.

        Crawl order is not publication order: when the original arrives after its
        republications, those are re-pointed at it (in the index) and returned so
        the caller can correct the stored articles.
        """
        if not text:
            return []
        me, group = self._group(url, text, published_at)
        original, later = resolve(me, group)
        if original is None and later:
            self._sigs.update_many({"url": {"$in": later}}, {"$set": {"original": url}})
        return later if original is None else []

    def check_in(self, url: str, text: str,
                 published_at: datetime | None) -> tuple[str | None, list[str]]:
        """Index *url*, then decide it against every copy indexed so far.

        Returns ``(original, later)`` as :func:`resolve` does, and records both in the
        index. Safe between processes (see the module docstring): adding before
        looking up means two workers handling twins at once cannot both miss the
        other, and :func:`precedence` makes them agree on which one is the original.
        """
        if not text:
            return None, []
        sig = self.signature(text)
        self._put(url, sig, published_at)
        decision = self._decide(url, sig, published_at)
        self._record(url, decision)
        return decision.original, decision.later

    # The three steps of check_in, apart so that tests can interleave two workers.

    def _put(self, url: str, sig: Signature, published_at: datetime | None) -> None:
        self._sigs.bulk_write([self._upsert(url, sig, _utc_naive(published_at), None,
                                            keep_original=True)])
        self._frequency.add(sig.keys)

    def _decide(self, url: str, sig: Signature, published_at: datetime | None) -> Decision:
        docs = self._fetch(sig)
        me = self._me(url, docs, published_at)  # removed meanwhile: as if still there
        original, later = resolve(me, [doc for _, _, doc in self._verified(sig, docs, url)])
        return Decision(original, later, me.get("original"))

    def _record(self, url: str, decision: Decision) -> None:
        if decision.recorded != decision.original:
            self._sigs.update_one({"url": url}, {"$set": {"original": decision.original}})
        if decision.later:
            self._sigs.update_many({"url": {"$in": decision.later}}, {"$set": {"original": url}})

    def _upsert(self, url: str, sig: Signature, published: datetime | None,
                original: str | None, keep_original: bool = False) -> UpdateOne:
        # Every field is replaced (old band keys disappear with an edit) except
        # ``added``, which orders copies, and ``original`` when it is not decided yet.
        fields: dict[str, Any] = {
            "url": url, "keys": sig.keys, "hashvalues": sig.hashvalues.astype("<u4").tobytes(),
            "published_at": published, "num_perm": self.num_perm, "shingle": self.shingle}
        on_insert: dict[str, Any] = {"added": _now()}
        if keep_original:
            on_insert["original"] = None
        else:
            fields["original"] = original
        return UpdateOne({"url": url}, {"$set": fields, "$setOnInsert": on_insert}, upsert=True)

    def add(self, url: str, text: str, published_at: datetime | None,
            original: str | None = None) -> None:
        """Index (or re-index, after an edit in place) the article at *url*.

        *original* records the story it republishes, so later republications point
        to the first version rather than to a chain of versions.
        """
        self.add_many([(url, text, published_at, original)])

    def add_many(self, articles: Iterable[Article]) -> int:
        """Index many ``(url, text, published_at[, original])`` at once; returns the count."""
        latest: dict[str, Article] = {}
        for article in articles:
            if article[1]:
                latest[article[0]] = article
        if not latest:
            return 0
        ops = []
        for url, article in latest.items():
            original = article[3] if len(article) == 4 else None
            sig = self.signature(article[1])
            ops.append(self._upsert(url, sig, _utc_naive(article[2]), original))
            self._frequency.add(sig.keys)
        self._sigs.bulk_write(ops, ordered=False)
        return len(latest)

    def remove(self, url: str) -> None:
        self._sigs.delete_many({"url": url})

    def count(self) -> int:
        return self._sigs.estimated_document_count()
