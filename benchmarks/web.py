"""Reading room (`gzarchive serve`) server time per page at N stored articles.

Loads N synthetic articles (benchmarks/mongo_store.py's ArticleFactory, stored the way
``upsert_many`` stores them, postings included) into a fresh SecantusDB (or MONGODB_URI),
adds crawl runs and a small WARC archive (one capture per article of the first 50, with
a revisit each), then times every page through Starlette's TestClient, in process: the
figure is server time (the app's Server-Timing header), median and max of the repeats.

    .venv/bin/python benchmarks/web.py [--articles 2000] [--repeats 5] [--store DIR]

10,000 articles take ~6-8 minutes to load here (SecantusDB indexes ~25-30 articles/s);
``--store DIR`` keeps the store, so a later run only measures.
"""

from __future__ import annotations

import argparse
import io
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

from benchmarks.mongo_store import ArticleFactory, database, fresh, load  # noqa: E402
from crawler.web.app import create_app  # noqa: E402
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
    args = parser.parse_args()
    factory = ArticleFactory(seed=1)
    with database(args.store) as (open_db, where, _path), \
            tempfile.TemporaryDirectory(prefix="web-bench-") as tmp:
        db = open_db("web")
        repo = fresh(db)
        t0 = time.monotonic()
        have = load(repo, factory, args.articles, time.monotonic() + args.budget)
        print(f"{have:,} articles in {where} (loaded in {time.monotonic() - t0:.0f} s)")
        kept = repo.counts.load()
        if kept is None or kept.total != have:  # load() inserts without the kept counts
            print(f"kept counts recounted in {repo.counts.recount():.0f} s")
        if not db["crawl_runs"].estimated_document_count():
            add_runs(db)
        sample = list(repo.articles.find({}, {"url": 1, "title": 1, "body": 1}).limit(50))
        write_warc(Path(tmp) / "warc", sample)
        client = TestClient(create_app(repo, Path(tmp) / "warc"))
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
        client.get("/")  # warm: templates compiled, first connection made
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
