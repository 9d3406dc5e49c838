"""Reading room (`gzarchive serve`) server time per page at N stored articles.

Loads N synthetic articles (benchmarks/mongo_store.py's ArticleFactory) through the
store's own write path (``ArticleRepository.upsert_many``, one writer, batches of
``--batch``, the search index caught up after each as a crawl does it) into a fresh
SecantusDB (or MONGODB_URI), its tantivy search index beside it (``STORE-search``),
adds crawl runs and a small WARC archive (one capture per article of the first 50, with
a revisit each), then times every page through Starlette's TestClient, in process: the
figure is server time (the app's Server-Timing header), median and max of the repeats.

    .venv/bin/python benchmarks/web.py [--articles 2000] [--repeats 5] [--store DIR]

10,000 articles take ~70 s to load here; ``--store DIR`` keeps the store and its index
(``DIR-search``), so a later run only measures (or loads the rest). ``--cache`` is the
SecantusDB cache: at 1G the old synthetic load (insert_many of 100 term-heavy articles
with their MongoDB postings) stalled at ~8,700 articles, SecantusDB retrying one insert
on WT_ROLLBACK (cache pressure) for minutes.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.testclient import TestClient  # noqa: E402
from warcio.statusandheaders import StatusAndHeaders  # noqa: E402
from warcio.warcwriter import WARCWriter  # noqa: E402

from benchmarks.mongo_store import ArticleFactory, database  # noqa: E402
from crawler.web.app import close_app, create_app  # noqa: E402
from storage.mongo.articles import ArticleRepository  # noqa: E402
from storage.mongo.runs import RunRepository  # noqa: E402
from storage.warc.index import update_index  # noqa: E402


def write_warc(warc_dir: Path, docs: list[dict[str, Any]]) -> None:
    """One response and one identical-payload revisit per article, then the index."""
    warc_dir.mkdir(parents=True, exist_ok=True)
    path = warc_dir / "gzarchive-bench-00000.warc.gz"
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for doc in docs:
            html = (f"<html><head><meta charset='utf-8'><title>{doc['title']}</title></head>"
                    "<body>" + "".join(f"<p>{p}</p>" for p in doc["body"].split("\n"))
                    + "</body></html>").encode()
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")],
                                       protocol="HTTP/1.1")
            rec = writer.create_warc_record(doc["url"], "response", payload=io.BytesIO(html),
                                            http_headers=headers,
                                            warc_headers_dict={"WARC-Date": "2026-01-01T00:00:00Z"})
            writer.write_record(rec)
            digest = rec.rec_headers.get_header("WARC-Payload-Digest")
            revisit = writer.create_revisit_record(doc["url"], digest, doc["url"],
                                                   "2026-01-01T00:00:00Z", http_headers=headers)
            revisit.rec_headers.replace_header("WARC-Date", "2026-02-01T00:00:00Z")
            writer.write_record(revisit)
    update_index(path)


def load(repo: Any, factory: ArticleFactory, upto: int, batch: int, deadline: float) -> int:
    """Store articles with ``upsert_many`` until the store holds ``upto`` (resumable)."""
    have = repo.count()
    factory.count = max(factory.count, have)  # a kept --store: the factory skips what it holds
    now = datetime.now(UTC)
    started, last = time.monotonic(), have
    while have < upto and time.monotonic() < deadline:
        docs = [factory.article() for _ in range(min(batch, upto - have))]
        result = repo.upsert_many(docs, now)
        if result.errors:
            raise SystemExit(f"{result.errors} articles refused: {result.failed[:3]}")
        repo.catch_up(wait=60)  # the search index after each batch, as the crawl does
        have += len(docs)
        if have - last >= 1000 or have >= upto:
            rate = (have - last) / max(time.monotonic() - started, 1e-9)
            print(f"  ... {have:,} stored ({rate:.0f}/s)", file=sys.stderr, flush=True)
            started, last = time.monotonic(), have
    return have


def add_runs(db: Any, n: int = 30) -> None:
    runs = RunRepository(db)
    start = datetime(2026, 1, 1, 3, tzinfo=UTC)
    for i in range(n):
        began = start + timedelta(days=i)
        errors = {"http-404": {"count": i % 3, "examples": [f"https://gz.cri.cn/x/{i}.html"]}}
        runs.save(RunRepository.document({"PORTAL_URL": "https://gz.cri.cn"}, began,
                                         {"pages": 100 + i, "articles": 40 + i}, errors,
                                         5 if i % 3 else 0, began + timedelta(seconds=60 + i)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", type=Path, help="keep the SecantusDB store here")
    parser.add_argument("--budget", type=float, default=3600, help="seconds of loading at most")
    parser.add_argument("--batch", type=int, default=50, help="articles per upsert_many")
    parser.add_argument("--cache", default="2G", help="SecantusDB cache size")
    args = parser.parse_args()
    factory = ArticleFactory(seed=1)
    with database(args.store, args.cache) as (open_db, where, _path), \
            tempfile.TemporaryDirectory(prefix="web-bench-") as tmp:
        db = open_db("web")
        # the search index beside the store, as DATA/search beside DATA's store
        search_dir = Path(f"{args.store}-search") if args.store else Path(tmp) / "search"
        repo = ArticleRepository(db, search_dir=search_dir)
        repo.ensure_indexes()
        t0 = time.monotonic()
        have = load(repo, factory, args.articles, args.batch, time.monotonic() + args.budget)
        print(f"{have:,} articles in {where}, search index in {search_dir} "
              f"(loaded in {time.monotonic() - t0:.0f} s)")
        kept = repo.counts.load()
        if kept is None or kept.total != have:  # a store loaded by an older version
            print(f"kept counts recounted in {repo.counts.recount():.0f} s")
        if not db["crawl_runs"].estimated_document_count():
            add_runs(db)
        sample = list(repo.articles.find({}, {"url": 1, "title": 1, "body": 1}).limit(50))
        write_warc(Path(tmp) / "warc", sample)
        app = create_app(repo, Path(tmp) / "warc")  # replay: pywb when installed
        client = TestClient(app)
        queries = [factory.query() for _ in range(10)]
        url = sample[0]["url"]
        pages = {
            "home": ["/"],
            "search (1-3 words, either script)": [f"/search?{urlencode({'q': q})}" for q in queries],
            "search page 3, one section": [f"/search?{urlencode({'q': q, 'section': '要闻', 'page': 3})}"
                                           for q in queries[:3]],
            "listing (no words), one section": ["/search?section=%E8%A6%81%E9%97%BB"],
            "article": [f"/article?{urlencode({'url': d['url']})}" for d in sample[:10]],
            "runs (charts)": ["/runs"],
            "replay viewer": [f"/replay?{urlencode({'url': url})}"],
            "archived page (revisit followed)": [f"/archived?{urlencode({'url': url})}"],
        }
        pywb = app.state.room.pywb
        if pywb is not None:  # the frame of the viewer: the page as pywb replays it
            pages["pywb replay (proxied, revisit)"] = [pywb.frame_url(url, "20260201000000")]
            client.get(pages["pywb replay (proxied, revisit)"][0])  # warm: pywb started
        client.get("/")  # warm: templates compiled, first connection made
        load1, load5, _ = os.getloadavg()
        print(f"load average {load1:.2f} (1 min) {load5:.2f} (5 min), {os.cpu_count()} cores")
        print(f"{'page':36} {'median ms':>10} {'max ms':>8} {'requests':>9}")
        worst = 0.0
        for name, paths in pages.items():
            times = []
            for _ in range(args.repeats):
                for path in paths:
                    response = client.get(path)
                    assert response.status_code == 200, (path, response.status_code)
                    times.append(float(response.headers["server-timing"].split("dur=")[1]))
            worst = max(worst, max(times))
            print(f"{name:36} {statistics.median(times):10.1f} {max(times):8.1f} {len(times):9d}")
        print(f"slowest request: {worst:.1f} ms (target 200 ms)")
        close_app(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
