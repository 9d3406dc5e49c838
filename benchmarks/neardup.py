"""Near-duplicate lookup time per article and memory at 10k, 100k and 1M stored
fingerprints (synthetic), on a SecantusDB server in its own process.

The index is one ``neardup_sigs`` document per article (30 band keys under a
multikey index). Stored fingerprints are inserted directly with random band keys
and hashvalues (what real signatures look like to the index), plus 300 real
generated stories so that republished queries exercise candidate verification.
At each level it times, per article:

* MinHash alone (``signature()``, the same at every size);
* lookup: ``find_original`` (MinHash + the one ``$in`` query + verification),
  for unrelated new stories and for republished versions of stored ones;
* check-in: ``check_in`` as the pipeline runs it (MinHash, upsert, lookup, and the
  ``original`` update of a duplicate); those query documents are removed again;

then client RSS, the server's RSS and PSS (psutil on the server process), data and
index MB (collStats) and the server directory on disk. The server runs as in
production (``sync_on_commit=True``, journaled writes, standalone, the WiredTiger cache
sized by ``storage.mongo.server.default_cache_size``: ``GZARCHIVE_STORE_CACHE`` or half
the RAM above 1 GB).

    .venv/bin/python benchmarks/neardup.py [--levels 10000,100000,1000000]
        [--queries 200] [--budget 4500] [--load maintained|rebuild] [--store DIR]
    .venv/bin/python benchmarks/neardup.py --compare-load 10000
    .venv/bin/python benchmarks/neardup.py --migrate 5000

``--compare-load N`` loads N fingerprints twice, with the ``keys`` index maintained
and dropped-then-rebuilt, and prints both rates. ``--migrate N`` writes a store of
N articles in the old layout (``neardup_bands``: 30 indexed band documents per
article, signatures without ``keys``) and times ``ensure_indexes()`` migrating it. ``--budget`` bounds the seconds
spent loading: when it is spent the run measures the level reached and stops.
``--store DIR`` keeps the server's files in DIR, and a later run with the same DIR
resumes loading from the fingerprints already there (loading is the slow part).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
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
from pymongo.errors import BulkWriteError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.mongo.server import default_cache_size, production_server  # noqa: E402
from storage.neardup import (  # noqa: E402
    LEGACY_BANDS_COLLECTION,
    SIGS_COLLECTION,
    NearDuplicateIndex,
)
from tests.test_storage_neardup import folded, make_story, republish  # noqa: E402

T0 = datetime(2025, 1, 1)
PLANTED = 300
CHUNK = 2_000
MB = 1024 * 1024


def serve(path: str) -> None:
    """Child process: the SecantusDB server until stdin closes (as storage.mongo.server)."""
    server = production_server(path, default_cache_size())
    server.start()
    host, port = server.address
    print(f"mongodb://{host}:{port}/?directConnection=true", flush=True)
    sys.stdin.read()
    server.stop()


@contextmanager
def server_process(path: str | None = None) -> Iterator[tuple[str, psutil.Process, Path]]:
    tmp = None
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix="neardup-bench-")
        path = tmp.name
    proc = subprocess.Popen([sys.executable, __file__, "--serve", path],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        uri = proc.stdout.readline().strip()
        if not uri.startswith("mongodb://"):
            raise RuntimeError(f"server did not start: {uri!r}")
        yield uri, psutil.Process(proc.pid), Path(path)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=120)
        if tmp is not None:
            tmp.cleanup()


def synthetic(index: NearDuplicateIndex, start: int, stop: int) -> Iterator[list[dict[str, Any]]]:
    """Signature documents of fake articles start..stop-1, in chunks."""
    for first in range(start, stop, CHUNK):
        docs = []
        for n in range(first, min(stop, first + CHUNK)):
            published = T0 + timedelta(minutes=n)
            raw = os.urandom(8 * index.bands)
            docs.append({"url": f"https://gz.cri.cn/n/synthetic/{n:08d}.html",
                         "keys": [f"{b}:{raw[8 * b:8 * b + 8].hex()}" for b in range(index.bands)],
                         "hashvalues": os.urandom(4 * index.num_perm),
                         "published_at": published, "added": published, "original": None,
                         "num_perm": index.num_perm, "shingle": index.shingle})
        yield docs


def load(db: Any, index: NearDuplicateIndex, start: int, stop: int, mode: str,
         deadline: float) -> tuple[int, float, float]:
    """Insert fingerprints start..stop-1; returns (inserted, seconds, index build seconds)."""
    coll = db[SIGS_COLLECTION]
    started = time.perf_counter()
    if mode == "rebuild":
        coll.drop_index("keys")
    inserted = 0
    for docs in synthetic(index, start, stop):
        try:
            coll.insert_many(docs, ordered=False)
            inserted += len(docs)
        except BulkWriteError as exc:   # resumed after a chunk was cut short: skip its rows
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
            inserted += exc.details.get("nInserted", 0)
        if inserted % 20_000 == 0:
            elapsed = time.perf_counter() - started
            print(f"  ... {start + inserted} stored, {inserted / elapsed:.0f} docs/s", flush=True)
        if time.perf_counter() > deadline:
            break
    built = time.perf_counter()
    index.ensure_indexes()
    done = time.perf_counter()
    return inserted, done - started, done - built


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(index: NearDuplicateIndex, queries: int, level: int) -> dict[str, float]:
    later = T0 + timedelta(days=3650)
    times: dict[str, list[float]] = {"new": [], "dup": [], "minhash": [], "checkin": []}
    hits = 0
    for q in range(10):   # warm caches and the query plan
        index.find_original("https://gz.cri.cn/n/warm.html", folded(*make_story(q)), later)
    checked_in = []
    for q in range(queries):
        if q % 5 == 0:   # one in five is a republication of a stored story
            i = (q * 7) % PLANTED
            title, body = republish(*make_story(500_000 + i), level + q, change=1,
                                    suffix="（更新）")
            text, kind = folded(title, body), "dup"
        else:
            text, kind = folded(*make_story(10_000_000 + level + q)), "new"
        url = f"https://gz.cri.cn/n/query/{level}/{q}.html"
        started = time.perf_counter()
        index.signature(text)
        times["minhash"].append(time.perf_counter() - started)
        started = time.perf_counter()
        original = index.find_original(url, text, later)
        times[kind].append(time.perf_counter() - started)
        hits += kind == "dup" and original is not None
        started = time.perf_counter()
        index.check_in(url, text, later)
        times["checkin"].append(time.perf_counter() - started)
        checked_in.append(url)
    for url in checked_in:
        index.remove(url)
    both = times["new"] + times["dup"]
    return {
        "median": 1000 * statistics.median(both), "p95": 1000 * percentile(both, 0.95),
        "new": 1000 * statistics.median(times["new"]),
        "dup": 1000 * statistics.median(times["dup"]),
        "minhash": 1000 * statistics.median(times["minhash"]),
        "checkin": 1000 * statistics.median(times["checkin"]),
        "checkin_p95": 1000 * percentile(times["checkin"], 0.95),
        "found": hits / max(1, len(times["dup"])),
    }


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def memory(server: psutil.Process, path: Path, db: Any) -> dict[str, float]:
    stats = db.command("collStats", SIGS_COLLECTION)
    full = server.memory_full_info()
    return {"client_rss": psutil.Process().memory_info().rss / MB,
            "server_rss": full.rss / MB, "server_pss": getattr(full, "pss", 0) / MB,
            "data": float(stats.get("size", 0)) / MB,
            "index": float(stats.get("totalIndexSize", 0)) / MB, "disk": du(path) / MB}


def compare_load(count: int) -> None:
    for mode in ("maintained", "rebuild"):
        with server_process() as (uri, _server, _path):
            client: MongoClient[Any] = MongoClient(uri, w=1, journal=True)
            index = NearDuplicateIndex(client["neardup_bench"])
            index.ensure_indexes()
            inserted, seconds, build = load(client["neardup_bench"], index, 0, count, mode,
                                            time.perf_counter() + 3600)
            client.close()
        print(f"load {inserted} fingerprints, keys index {mode}: {seconds:.1f} s = "
              f"{inserted / seconds:.0f} docs/s (index build {build:.1f} s)", flush=True)


def migrate(count: int) -> None:
    logging.basicConfig(level=logging.INFO, format="  %(asctime)s %(message)s")
    with server_process() as (uri, _server, _path):
        client: MongoClient[Any] = MongoClient(uri, w=1, journal=True)
        db = client["neardup_bench"]
        index = NearDuplicateIndex(db)
        db[LEGACY_BANDS_COLLECTION].create_index("key", name="key")
        db[LEGACY_BANDS_COLLECTION].create_index("url", name="url")
        db[SIGS_COLLECTION].create_index("url", name="url", unique=True)
        started = time.perf_counter()
        for docs in synthetic(index, 0, count):
            bands = [{"key": key, "url": doc["url"], "published_at": doc["published_at"],
                      "added": doc["added"]} for doc in docs for key in doc.pop("keys")]
            db[LEGACY_BANDS_COLLECTION].insert_many(bands, ordered=False)
            db[SIGS_COLLECTION].insert_many(docs, ordered=False)
        print(f"old layout: {count} articles, {count * (index.bands + 1)} documents written in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        index.ensure_indexes()
        seconds = time.perf_counter() - started
        left = db[SIGS_COLLECTION].count_documents({"keys": {"$exists": False}})
        print(f"migration (ensure_indexes): {seconds:.1f} s = {count / seconds:.0f} articles/s; "
              f"{left} left without keys; bands collection dropped: "
              f"{LEGACY_BANDS_COLLECTION not in db.list_collection_names()}", flush=True)
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--levels", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--budget", type=float, default=4500.0,
                        help="seconds allowed for loading synthetic fingerprints")
    parser.add_argument("--load", choices=("maintained", "rebuild"), default="maintained",
                        help="keep the keys index during loads, or drop and rebuild it")
    parser.add_argument("--compare-load", type=int, metavar="N",
                        help="only compare the two load modes on N fingerprints")
    parser.add_argument("--migrate", type=int, metavar="N",
                        help="only time migrating an old-layout store of N articles")
    parser.add_argument("--store", metavar="DIR",
                        help="keep the server's files in DIR and resume loading from them")
    parser.add_argument("--serve", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.compare_load:
        compare_load(args.compare_load)
        return 0
    if args.migrate:
        migrate(args.migrate)
        return 0
    levels = [int(x) for x in args.levels.split(",")]
    if args.store:
        Path(args.store).mkdir(parents=True, exist_ok=True)
    with server_process(args.store) as (uri, server, path):
        client: MongoClient[Any] = MongoClient(uri, w=1, journal=True, tz_aware=True)
        db = client["neardup_bench"]
        index = NearDuplicateIndex(db)
        index.ensure_indexes()
        kept = db[SIGS_COLLECTION].estimated_document_count()
        print(f"{datetime.now():%Y-%m-%d %H:%M}; index: threshold {index.threshold}, "
              f"{index.shingle}-char shingles, {index.num_perm} perms = {index.bands} bands x "
              f"{index.rows} rows; SecantusDB server pid {server.pid} (sync_on_commit, cache "
              f"{default_cache_size()}); "
              f"load: keys index {args.load}; {args.queries} queries per level, 1 in 5 "
              f"republished", flush=True)
        if kept < PLANTED:
            index.add_many((f"https://gz.cri.cn/n/planted/{i}.html",
                            folded(*make_story(500_000 + i)), T0) for i in range(PLANTED))
        else:
            print(f"resuming: {kept} fingerprints already in {path}", flush=True)
        stored, load_seconds = max(kept, PLANTED), 0.0
        deadline = time.perf_counter() + args.budget
        rows = []
        for level in levels:
            rate = build = 0.0
            if level > stored:
                inserted, seconds, build = load(db, index, stored, level, args.load, deadline)
                stored += inserted
                load_seconds += seconds
                rate = inserted / seconds if seconds else 0.0
                print(f"  loaded to {stored}: {inserted} in {seconds:.0f} s = {rate:.0f} docs/s "
                      f"(index build {build:.0f} s)", flush=True)
            figures = {**measure(index, args.queries, level), **memory(server, path, db)}
            rows.append((stored, rate, figures))
            print(f"  {stored}: {figures}", flush=True)
            if stored < level:
                print(f"load budget of {args.budget:.0f} s spent at {stored} fingerprints "
                      f"(asked {level}); measured there and stopped", flush=True)
                break
        client.close()
    print()
    print(f"{'stored':>9} {'lookup':>7} {'p95':>6} {'new':>6} {'dup':>6} {'found':>5} "
          f"{'minhash':>7} {'checkin':>7} {'p95':>6} {'cliRSS':>6} {'srvRSS':>6} "
          f"{'srvPSS':>6} {'dataMB':>7} {'idxMB':>6} {'diskMB':>7} {'load/s':>6}")
    print(f"{'':>9} {'ms':>7} {'ms':>6} {'ms':>6} {'ms':>6} {'':>5} {'ms':>7} {'ms':>7} "
          f"{'ms':>6} {'MB':>6} {'MB':>6} {'MB':>6}")
    for stored, rate, f in rows:
        print(f"{stored:>9} {f['median']:>7.2f} {f['p95']:>6.2f} {f['new']:>6.2f} "
              f"{f['dup']:>6.2f} {f['found']:>5.2f} {f['minhash']:>7.2f} {f['checkin']:>7.2f} "
              f"{f['checkin_p95']:>6.2f} {f['client_rss']:>6.0f} {f['server_rss']:>6.0f} "
              f"{f['server_pss']:>6.0f} {f['data']:>7.1f} {f['index']:>6.1f} "
              f"{f['disk']:>7.1f} {rate:>6.0f}")
    print(f"load: {load_seconds:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
