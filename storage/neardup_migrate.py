"""Migrations of the near-duplicate index (``storage.neardup``) to its current layout
and settings; run by ``NearDuplicateIndex.ensure_indexes`` at every start.

Two of them, both idempotent and safe to interrupt:

- **band documents** (the layout before one document per article: 30 ``neardup_bands``
  documents per article): band keys are derived from the stored hashvalues, then the
  bands collection is dropped.
- **settings**: the ``store_meta`` document ``{_id: "neardup", num_perm, shingle, bands,
  rows}`` records what the signatures and band keys were made with. When the index's
  settings differ (DEDUP_SHINGLE went from 4 to 12 characters and the LSH bands from
  30 x 4 to 42 x 3 in this version), every signature is brought to them: band keys
  again from the stored hashvalues when the permutations and shingles are the same;
  otherwise the signature is computed anew from the article's text, which the caller
  gives (``texts``: urls -> folded text; the pipeline reads the ``articles``
  collection). A signature whose text cannot be had is kept, counted and logged: it is
  never compared (other settings), and the next crawl of its article re-indexes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pymongo import UpdateOne

from storage.minhash import band_keys, decode_hashvalues, lsh_params
from storage.mongo.timeline import META_COLLECTION

if TYPE_CHECKING:
    from storage.neardup import NearDuplicateIndex

logger = logging.getLogger(__name__)

#: The layout before one document per article.
LEGACY_BANDS_COLLECTION = "neardup_bands"
META_ID = "neardup"
MIGRATION_BATCH = 500
#: ``texts(urls)``: the folded text (``pipelines.fingerprint.item_text``) of those
#: articles that the store holds.
TextSource = Callable[[list[str]], Mapping[str, str]]


def migrate_bands(index: NearDuplicateIndex) -> None:
    """Fill ``keys`` from the hashvalues of a ``neardup_bands`` store, then drop it."""
    sigs, db = index.collection, index.collection.database
    # One scan per pass (SecantusDB scans for ``$exists: false`` whatever the filter),
    # updates in batches while the cursor runs.
    filled, started = 0, time.monotonic()
    for _ in range(3):
        updates: list[UpdateOne] = []
        for doc in sigs.find({"keys": {"$exists": False}},
                             {"hashvalues": 1}).batch_size(MIGRATION_BATCH):
            raw = doc.get("hashvalues")
            values = decode_hashvalues(raw) if isinstance(raw, bytes) else None
            keys = [] if values is None else band_keys(
                values, *lsh_params(index.threshold, len(values)))
            updates.append(UpdateOne({"_id": doc["_id"]}, {"$set": {"keys": keys}}))
            if len(updates) >= MIGRATION_BATCH:
                filled += sigs.bulk_write(updates, ordered=False).modified_count
                updates = []
        if updates:
            filled += sigs.bulk_write(updates, ordered=False).modified_count
        if sigs.find_one({"keys": {"$exists": False}}, {"_id": 1}) is None:
            break
    else:
        logger.warning("near-duplicate index: signatures still without band keys after "
                       "3 passes; %s kept, migration retried at the next start",
                       LEGACY_BANDS_COLLECTION)
        return
    backfilled = time.monotonic()
    # SecantusDB drops a collection row by row under its storage lock: ~2 ms per band
    # document, ~1 min per 1,000 articles (benchmarks/neardup.py --migrate), during
    # which the server answers nobody. One-off, so said in the log.
    logger.info("near-duplicate index: %d band key lists backfilled in %.0f s; dropping "
                "%s (old layout)", filled, backfilled - started, LEGACY_BANDS_COLLECTION)
    db.drop_collection(LEGACY_BANDS_COLLECTION)
    logger.info("near-duplicate index migrated to one document per article (%s dropped "
                "in %.0f s)", LEGACY_BANDS_COLLECTION, time.monotonic() - backfilled)


def settings_of(index: NearDuplicateIndex) -> dict[str, int]:
    """What the index's signatures and band keys are made with."""
    return {"num_perm": index.num_perm, "shingle": index.shingle,
            "bands": index.bands, "rows": index.rows}


def migrate_settings(index: NearDuplicateIndex, texts: TextSource | None) -> None:
    """Bring every stored signature to the index's settings (see the module docstring)."""
    meta = index.collection.database[META_COLLECTION]
    want = settings_of(index)
    recorded = meta.find_one({"_id": META_ID}) or {}
    if all(recorded.get(name) == value for name, value in want.items()):
        return
    started = time.monotonic()
    rekeyed, resigned, missing = 0, 0, 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal rekeyed, resigned, missing
        counts = _migrate_batch(index, batch, texts)
        rekeyed, resigned, missing = (rekeyed + counts[0], resigned + counts[1],
                                      missing + counts[2])
        batch.clear()

    for doc in index.collection.find({}, {"url": 1, "hashvalues": 1, "num_perm": 1,
                                          "shingle": 1}).batch_size(MIGRATION_BATCH):
        batch.append(doc)
        if len(batch) >= MIGRATION_BATCH:
            flush()
    flush()
    if missing and texts is None:
        logger.warning("near-duplicate index: %d signatures were made with other settings "
                       "and no article texts were given to rebuild them; migration retried "
                       "at the next start", missing)
        return
    if rekeyed or resigned or missing:
        logger.info("near-duplicate index brought to %s in %.0f s: %d band key lists from "
                    "stored signatures, %d signatures from article texts, %d without a "
                    "stored text (kept, not compared until re-crawled)", want,
                    time.monotonic() - started, rekeyed, resigned, missing)
    meta.replace_one({"_id": META_ID}, {"_id": META_ID, **want}, upsert=True)


def _migrate_batch(index: NearDuplicateIndex, docs: list[dict[str, Any]],
                   texts: TextSource | None) -> tuple[int, int, int]:
    """(re-keyed, re-signed, without text) for one batch of stored signatures."""
    updates: list[UpdateOne] = []
    same: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    for doc in docs:
        raw = doc.get("hashvalues")
        comparable = (isinstance(raw, bytes) and len(raw) == 4 * index.num_perm
                      and doc.get("num_perm", index.num_perm) == index.num_perm
                      and doc.get("shingle", index.shingle) == index.shingle)
        (same if comparable else other).append(doc)
    for doc in same:
        keys = band_keys(decode_hashvalues(doc["hashvalues"]), index.bands, index.rows)
        updates.append(UpdateOne({"_id": doc["_id"]}, {"$set": {"keys": keys}}))
    found: Mapping[str, str] = {}
    if other and texts is not None:
        found = texts([str(doc["url"]) for doc in other])
    resigned = 0
    for doc in other:
        text = found.get(str(doc["url"]))
        if not text:
            continue
        sig = index.signature(text)
        updates.append(UpdateOne({"_id": doc["_id"]}, {"$set": {
            "keys": sig.keys, "hashvalues": sig.hashvalues.astype("<u4").tobytes(),
            "num_perm": index.num_perm, "shingle": index.shingle}}))
        resigned += 1
    if updates:
        index.collection.bulk_write(updates, ordered=False)
    return len(same), resigned, len(other) - resigned
