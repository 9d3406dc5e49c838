"""The store's two search layouts side by side on this machine (``mongo_store.py --layouts``).

- **old** (``search_postings``, before #16): each article's ~930 terms in 8 postings
  documents indexed ``{terms: 1, published_at: -1}``, written in the same batch as the
  articles (the documents and index of the removed storage/mongo/postings.py, rebuilt
  here so the write cost and the disk use can be measured today). Its search latency
  is not re-measured: its search code is gone, and loading 10k articles at ~25/s takes
  longer than this benchmark may run; the figures quoted are benchmarks/README.md's.
- **new** (tantivy beside the store, storage.search): ``upsert_many`` batches of 100
  (journaled, ``search_pending`` marks in the same write), a catch-up after each batch
  as the crawl does.

Each layout gets a fresh SecantusDB run as the embedded store runs it (synced commits,
the default cache: ``default_cache_size()``), in its own directory; disk per article
is the store directory (after a checkpoint: the server is stopped) plus DATA/search.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne

from storage.mongo.articles import ArticleRepository
from storage.mongo.client import DURABLE, open_database
from storage.mongo.server import default_cache_size, production_server
from storage.mongo.terms import terms_for

BATCH = 100
OLD_INDEXES = [IndexModel([("terms", ASCENDING), ("published_at", DESCENDING)],
                          name="terms_published"), IndexModel([("url", ASCENDING)], name="url")]


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _postings(doc: dict[str, Any]) -> list[InsertOne[dict[str, Any]]]:
    """The old layout's documents of one article (postings.documents, 8 shards)."""
    shards: list[list[str]] = [[] for _ in range(8)]
    for term in terms_for(f"{doc.get('title') or ''}\n{doc.get('body') or ''}"):
        shards[zlib.crc32(term.encode("utf-8")) % 8].append(term)
    return [InsertOne({"_id": f"{doc['url']}#{k}", "url": doc["url"],
                       "published_at": doc["published_at"], "terms": part})
            for k, part in enumerate(shards) if part]


def _ms(fn: Any, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def measure(layout: str, factory: Any, n: int, queries: list[str], limit: int) -> dict[str, Any]:
    """Load *n* articles in *layout* ("old" or "new") and measure it."""
    with tempfile.TemporaryDirectory(prefix=f"layout-{layout}-") as tmp:
        store, search = Path(tmp) / "db", Path(tmp) / "search"
        cache = default_cache_size()
        server = production_server(str(store), cache)
        server.start()
        out: dict[str, Any] = {"layout": layout, "articles": n, "cache": cache}
        try:
            with open_database(server.uri, tmp) as (client, _):
                db = client.get_database("gzarchive", write_concern=DURABLE)
                repo = ArticleRepository(db, search_dir=search if layout == "new" else None)
                repo.ensure_indexes()
                if layout == "old":
                    db["search_postings"].create_indexes(OLD_INDEXES)
                now = datetime.now(UTC)
                start = time.perf_counter()
                tail_from, tail = int(n * 0.8), (start, 0)
                done = 0
                while done < n:
                    if done >= tail_from and tail[1] == 0:
                        tail = (time.perf_counter(), done)
                    docs = [factory.article() for _ in range(min(BATCH, n - done))]
                    if layout == "old":  # postings first, as the old upsert_many did
                        db["search_postings"].bulk_write(
                            [op for d in docs for op in _postings(d)], ordered=False)
                    repo.upsert_many(docs, now)
                    if layout == "new":
                        repo.catch_up()
                    done += len(docs)
                secs = time.perf_counter() - start
                out["write_rate"] = n / secs
                out["tail_rate"] = (n - tail[1]) / max(1e-9, time.perf_counter() - tail[0])
                if layout == "new":
                    lat = []
                    for q in queries:
                        t = time.perf_counter()
                        list(repo.find(search=q, limit=limit))
                        lat.append(1000 * (time.perf_counter() - t))
                    lat.sort()
                    out["search"] = (statistics.median(lat), lat[int(0.95 * (len(lat) - 1))],
                                     lat[-1])
                out["stats_ms"] = _ms(lambda: repo.kept_counts())
                since = datetime.now(UTC) - timedelta(days=30 * 365)
                out["listing_ms"] = (
                    _ms(lambda: list(repo.find(limit=limit))),
                    _ms(lambda: list(repo.find(section="老外在贵州", limit=limit))),
                    _ms(lambda: list(repo.find(since=since, limit=limit))))
        finally:
            server.stop()
        out["store_kb"] = _size(store) / n / 1024
        out["search_kb"] = (_size(search) / n / 1024) if search.exists() else 0.0
        return out


def report(results: list[dict[str, Any]]) -> list[str]:
    lines = [f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} "
             f"{os.getloadavg()[2]:.1f} (2 cores)",
             f"{'layout':<6} {'articles':>8} {'KB/article store+index':>24} "
             f"{'writes/s (last 20 %)':>22} {'search ms med/p95/max':>22} "
             f"{'stats ms':>8} {'listing ms newest/section/since':>32}"]
    for r in results:
        kb = f"{r['store_kb'] + r['search_kb']:.1f} ({r['store_kb']:.1f}+{r['search_kb']:.1f})"
        rate = f"{r['write_rate']:.0f} ({r['tail_rate']:.0f})"
        search = ("/".join(f"{v:.0f}" for v in r["search"]) if "search" in r
                  else "README: 88/720/2600 @100k")
        listing = "/".join(f"{v:.0f}" for v in r["listing_ms"])
        lines.append(f"{r['layout']:<6} {r['articles']:>8,} {kb:>24} {rate:>22} {search:>22} "
                     f"{r['stats_ms']:>8.1f} {listing:>32}")
    return lines
