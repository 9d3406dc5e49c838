"""Near-duplicate lookup time per article and memory at 10k, 100k and 1M stored
fingerprints (synthetic), on SecantusDB (or MONGODB_URI).

Stored fingerprints are inserted directly as ``neardup_bands``/``neardup_sigs``
documents with random band hashes (what real signatures look like to the index),
plus a few hundred real generated stories so that lookups also exercise the
candidate-verification path. Each level times ``find_original`` for unrelated new
stories and for republished versions of stored ones (MinHash + one bands query
+ the signature read when there are candidates).

    .venv/bin/python benchmarks/neardup.py [--levels 10000,100000,1000000]
        [--queries 200] [--budget 1500]

``--budget`` bounds the seconds spent inserting: levels not reached within it are
reported as skipped (SecantusDB inserts a few thousand small documents a second).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.neardup import BANDS_COLLECTION, SIGS_COLLECTION, NearDuplicateIndex  # noqa: E402
from tests.test_storage_neardup import folded, make_story, republish  # noqa: E402

T0 = datetime(2025, 1, 1)
PLANTED = 300
CHUNK = 20_000


@contextmanager
def database(uri: str | None) -> Iterator[Any]:
    server = None
    tmp = None
    if uri is None:
        from secantus import SecantusDBServer
        tmp = tempfile.TemporaryDirectory(prefix="neardup-bench-")
        server = SecantusDBServer(storage_path=tmp.name)
        server.start()
        uri = server.uri
    client: MongoClient[Any] = MongoClient(uri)
    name = "neardup_bench"
    client.drop_database(name)
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()


def synthetic(index: NearDuplicateIndex, start: int, stop: int) -> Iterator[
        tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Band and signature documents of fake articles start..stop-1, in chunks."""
    per_chunk = max(1, CHUNK // index.bands)
    for first in range(start, stop, per_chunk):
        bands: list[dict[str, Any]] = []
        sigs: list[dict[str, Any]] = []
        for n in range(first, min(stop, first + per_chunk)):
            url = f"https://gz.cri.cn/n/synthetic/{n:08d}.html"
            published = T0 + timedelta(minutes=n)
            raw = os.urandom(8 * index.bands)
            bands.extend({"key": f"{b}:{raw[8 * b:8 * b + 8].hex()}", "url": url,
                          "published_at": published, "added": published}
                         for b in range(index.bands))
            sigs.append({"url": url, "hashvalues": os.urandom(4 * index.num_perm),
                         "published_at": published, "added": published, "original": None})
        yield bands, sigs


def coll_stats(db: Any, name: str) -> dict[str, float]:
    stats = db.command("collStats", name)
    return {key: float(stats.get(key, 0) or 0) for key in
            ("count", "size", "storageSize", "totalIndexSize")}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(index: NearDuplicateIndex, queries: int, level: int) -> dict[str, float]:
    later = T0 + timedelta(days=3650)
    times_new: list[float] = []
    times_dup: list[float] = []
    times_minhash: list[float] = []
    hits = 0
    for q in range(10):   # warm caches and the query plan
        index.find_original("https://gz.cri.cn/n/warm.html", folded(*make_story(q)), later)
    for q in range(queries):
        if q % 5 == 0:   # one in five is a republication of a stored story
            i = (q * 7) % PLANTED
            title, body = republish(*make_story(500_000 + i), q, change=1, suffix="（更新）")
            text, bucket = folded(title, body), times_dup
        else:
            text, bucket = folded(*make_story(10_000_000 + level + q)), times_new
        started = time.perf_counter()
        index.signature(text)
        times_minhash.append(time.perf_counter() - started)
        started = time.perf_counter()
        original = index.find_original(f"https://gz.cri.cn/n/query/{q}.html", text, later)
        bucket.append(time.perf_counter() - started)
        hits += bucket is times_dup and original is not None
    both = times_new + times_dup
    return {
        "median_ms": 1000 * statistics.median(both),
        "p95_ms": 1000 * percentile(both, 0.95),
        "new_median_ms": 1000 * statistics.median(times_new),
        "dup_median_ms": 1000 * statistics.median(times_dup),
        "minhash_median_ms": 1000 * statistics.median(times_minhash),
        "dup_found": hits / max(1, len(times_dup)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--budget", type=float, default=1500.0,
                        help="seconds allowed for inserting synthetic fingerprints")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    process = psutil.Process()
    with database(os.environ.get("MONGODB_URI") or None) as db:
        index = NearDuplicateIndex(db)
        index.ensure_indexes()
        print(f"index: threshold {index.threshold}, {index.shingle}-char shingles, "
              f"{index.num_perm} perms = {index.bands} bands x {index.rows} rows; "
              f"server: {'MONGODB_URI' if os.environ.get('MONGODB_URI') else 'SecantusDB'} "
              f"(in-process: its memory is in the RSS)")
        planted = [(f"https://gz.cri.cn/n/planted/{i}.html", folded(*make_story(500_000 + i)),
                    T0) for i in range(PLANTED)]
        index.add_many(planted)
        stored, insert_seconds, last_rate = PLANTED, 0.0, 0.0
        print(f"{'stored':>9} {'band docs':>10} {'median ms':>9} {'p95 ms':>7} "
              f"{'new ms':>7} {'dup ms':>7} {'minhash':>7} {'found':>5} "
              f"{'RSS MB':>7} {'data MB':>8} {'index MB':>8} {'disk MB':>8} {'ins/s':>7}")
        for level in levels:
            target = level
            remaining = args.budget - insert_seconds
            if target > stored and last_rate:
                projected = (target - stored) * (index.bands + 1) / last_rate
                if projected > remaining:
                    print(f"{level:>9}: skipped: inserting {(target - stored) * (index.bands + 1)} "
                          f"documents at the measured {last_rate:.0f} docs/s (indexes "
                          f"rebuilt included) would take ~{projected / 60:.0f} min, over the "
                          f"{remaining / 60:.0f} min left of --budget")
                    break
            if target > stored:
                started = time.perf_counter()
                inserted = 0
                # Bulk load without the secondary indexes, then rebuild them: ~4x
                # faster than maintaining them per insert on SecantusDB.
                db[BANDS_COLLECTION].drop_indexes()
                db[SIGS_COLLECTION].drop_indexes()
                for bands, sigs in synthetic(index, stored, target):
                    db[BANDS_COLLECTION].insert_many(bands, ordered=False)
                    db[SIGS_COLLECTION].insert_many(sigs, ordered=False)
                    inserted += len(sigs)
                    if insert_seconds + time.perf_counter() - started > args.budget:
                        break
                index.ensure_indexes()
                elapsed = time.perf_counter() - started
                insert_seconds += elapsed
                stored += inserted
                rate = inserted * (index.bands + 1) / elapsed if elapsed else 0.0
                last_rate = rate or last_rate
                if stored < target:
                    print(f"{level:>9}: insert budget of {args.budget:.0f} s spent at "
                          f"{stored} fingerprints ({rate:.0f} docs/s); measuring there")
            else:
                rate = 0.0
            figures = measure(index, args.queries, level)
            bands_s, sigs_s = coll_stats(db, BANDS_COLLECTION), coll_stats(db, SIGS_COLLECTION)
            mb = 1024 * 1024
            print(f"{stored:>9} {int(bands_s['count']):>10} {figures['median_ms']:>9.2f} "
                  f"{figures['p95_ms']:>7.2f} {figures['new_median_ms']:>7.2f} "
                  f"{figures['dup_median_ms']:>7.2f} {figures['minhash_median_ms']:>7.2f} "
                  f"{figures['dup_found']:>5.2f} {process.memory_info().rss / mb:>7.0f} "
                  f"{(bands_s['size'] + sigs_s['size']) / mb:>8.1f} "
                  f"{(bands_s['totalIndexSize'] + sigs_s['totalIndexSize']) / mb:>8.1f} "
                  f"{(bands_s['storageSize'] + sigs_s['storageSize'] + bands_s['totalIndexSize'] + sigs_s['totalIndexSize']) / mb:>8.1f} "
                  f"{rate:>7.0f}", flush=True)
            if stored < target:
                print(f"stopped: levels above {stored} need more insert time than the budget")
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
