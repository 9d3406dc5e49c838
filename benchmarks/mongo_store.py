"""Article store figures: write throughput and keyword-search latency.

Runs against a fresh SecantusDB in a temporary directory (``sync_on_commit=True``, as the
embedded store runs), or against ``MONGODB_URI`` when it is set (a throwaway database,
dropped at the end). The client comes from ``storage.mongo.client.open_database``, so
every write is journaled (``w=1, j=True``) as in a crawl.

1. Writes: N synthetic Chinese articles (~1,500-character body, title, sections,
   dates, images) through ``ArticleRepository.upsert_many`` in batches of 50 and 200,
   beside one ``insert_one`` per article of the same document as upsert_many stores
   it. Both timings include preparing the documents (validation, search terms), whose
   cost alone is printed too. Each method writes into its own empty database with the
   production indexes.
2. Search: the collection is bulk-loaded (``insert_many`` of articles prepared the way
   ``upsert_many`` stores them, their ``search_postings`` written by the repository's
   own code) up to each size, then ~50 queries of 1-3 words (a third in traditional
   script) go through ``ArticleRepository.find(search=..., limit=20)`` as ``gzarchive
   query`` does; then three listings (newest, one section, ``--since``). Prints median,
   p95 and max latency, and the ``explain()`` of the first postings query (it must be an
   IXSCAN of ``terms_published``, not a COLLSCAN).

    .venv/bin/python benchmarks/mongo_store.py [--articles 500] [--sizes 2000]
        [--queries 50] [--limit 20] [--budget 600] [--query-budget 90] [--seed 1]
        [--store DIR] [--skip-writes] [--skip-search] [--verbose]
        [--stats-sizes 10000,100000]

The default run takes ~5 minutes on 2 busy cores: SecantusDB indexes ~20-30 articles/s
here, because each carries ~930 postings keys (~35-45 ms per article; without them
~1,000/s). Bigger run: ``--skip-writes --sizes 10000,100000 --budget 7200`` (``--budget``
bounds the seconds spent bulk-loading; search is then measured at the size reached;
100k takes over an hour of loading). ``--store DIR`` keeps the SecantusDB store, so a
later run with ``--skip-writes`` measures search without reloading (it resumes loading
where the store stopped). ``--query-budget`` bounds the seconds of queries per size.
3. Stats (``--stats-sizes``): articles without postings are bulk-loaded (~1,500/s) into
   their own database, then ``count_by_section`` + ``count_by_month`` are timed by
   scanning (the counts document removed: the previous layout), the recount a migration
   runs, and the same reads from the kept counts (checked equal to the scan).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import opencc
import psutil
from pymongo.errors import BulkWriteError, DuplicateKeyError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.mongo.articles import ARTICLE_INDEXES, BEIJING, ArticleRepository  # noqa: E402
from storage.mongo.client import DURABLE, open_database  # noqa: E402
from storage.mongo.counters import LIVE_ID, STAGING_ID  # noqa: E402
from storage.mongo.search import index_terms  # noqa: E402
from storage.mongo.server import production_server  # noqa: E402
from storage.mongo.timeline import Timeline  # noqa: E402
from tests.replica import phrases as ph  # noqa: E402

LOAD_CHUNK = 100  # bigger insert_many batches of term-heavy documents get slower per article on SecantusDB
SECTIONS = ["老外在贵州", "Hi,贵州!", "要闻", "原创", "直观中国"]
T0 = datetime(2023, 1, 1, tzinfo=BEIJING)
CJK = re.compile(r"[\u4e00-\u9fff]+")


# -- synthetic articles -------------------------------------------------------------
class ArticleFactory:
    """Deterministic, realistic-looking Chinese articles.

    Sentences of the replica's phrase banks (the portal's topics) mixed with words drawn
    from a Zipf-distributed vocabulary of ~30,000 two- and three-character words built
    from the same characters, so some query words are in most articles and others in
    very few, as in a real news corpus.
    """

    def __init__(self, seed: int, vocabulary: int = 30_000) -> None:
        self.seed = seed
        self.query_rng = random.Random(seed)
        self.rng = self.query_rng  # each article reseeds it (see article())
        chars = sorted({c for text in self._bank_texts() for run in CJK.findall(text)
                        for c in run})
        words: dict[str, None] = {}
        # Phrase-bank words first: the most frequent ranks, as on the real portal.
        for text in self._bank_texts():
            for run in CJK.findall(text):
                if 2 <= len(run) <= 4:
                    words[run] = None
        vocab_rng = random.Random(seed + 1)
        while len(words) < vocabulary:
            n = 2 if vocab_rng.random() < 0.7 else 3
            words["".join(vocab_rng.choice(chars) for _ in range(n))] = None
        self.words = list(words)
        weights = [1.0 / (rank + 1) ** 1.05 for rank in range(len(self.words))]
        total = 0.0
        self.cum: list[float] = []
        for w in weights:
            total += w
            self.cum.append(total)
        self.count = 0

    @staticmethod
    def _bank_texts() -> Iterator[str]:
        for value in vars(ph).values():
            items = value if isinstance(value, list) else []
            for item in items:
                for part in item if isinstance(item, tuple) else (item,):
                    if isinstance(part, str):
                        yield part

    def _ctx(self, published: datetime) -> dict[str, Any]:
        rng = self.rng
        spot, region = rng.choice(ph.SPOTS)
        return {"person": rng.choice(ph.PEOPLE), "local": rng.choice(ph.LOCALS),
                "nation": rng.choice(ph.NATIONS), "spot": spot, "region": region,
                "activity": rng.choice(ph.ACTIVITIES), "culture": rng.choice(ph.CULTURE),
                "event": rng.choice(ph.EVENTS), "city": rng.choice(ph.CITIES),
                "topic": rng.choice(ph.TOPICS), "count": rng.randint(3, 30),
                "num": rng.randint(10, 500), "guests": rng.randint(40, 300),
                "pct": rng.randint(8, 60), "k": rng.randint(2, 9),
                "reporter": rng.choice(ph.REPORTERS),
                "md": f"{published.month}月{published.day}日"}

    def _filler(self, chars: int) -> str:
        out: list[str] = []
        size = 0
        while size < chars:
            n = self.rng.randint(4, 12)
            clause = "".join(self.rng.choices(self.words, cum_weights=self.cum, k=n))
            out.append(clause + self.rng.choice("，，，。"))
            size += len(out[-1])
        return "".join(out)

    def article(self) -> dict[str, Any]:
        """One article as the store pipeline hands it to ``upsert_many``: article n is
        the same whatever came before, so a resumed load starts at n without replaying."""
        self.count += 1
        rng = self.rng = random.Random(self.seed * 1_000_003 + self.count)
        published = T0 + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        ctx = self._ctx(published)
        target = rng.randint(1300, 1700)
        paras = [rng.choice(ph.LEADS).format(**ctx)]
        size = len(paras[0])
        while size < target:
            para = "".join(s.format(**ctx) for s in rng.sample(ph.SENTENCES, 2))
            para += self._filler(rng.randint(60, 200))
            paras.append(para)
            size += len(para)
        body = "\n".join(paras)
        title = rng.choice(ph.TITLES).format(**ctx)
        day = f"{published:%Y%m%d}"
        images = [{"url": f"https://gz.cri.cn/photoAlbum/page/performance/img/"
                          f"{published:%Y/%-m/%-d}/{rng.getrandbits(64):016x}.jpg",
                   "caption": rng.choice(ph.CAPTIONS).format(**ctx) if rng.random() < 0.7
                   else None} for _ in range(rng.randint(0, 3))]
        url = f"https://gz.cri.cn/{day}/{uuid.UUID(int=rng.getrandbits(128))}.html"
        source = rng.choice(ph.SOURCES)[0]
        return {
            "url": url, "urls": [url], "title": title, "body": body,
            "published_at": published, "source": source, "editor": rng.choice(ph.EDITORS),
            "chief_editor": rng.choice(ph.CHIEF_EDITORS) if rng.random() < 0.6 else None,
            "sections": rng.sample(SECTIONS, 1 if rng.random() < 0.85 else 2),
            "images": images,
            "content_hash": hashlib.sha256(f"{title}\x00{body}".encode()).hexdigest(),
            "warc": {"file": f"gzarchive-{day}-00000.warc.gz",
                     "offset": rng.randrange(10**8)},
            "template": "new",
        }

    def query(self) -> str:
        """1-3 words in either script, each from a real article or the vocabulary."""
        rng = self.query_rng
        n = rng.choice((1, 1, 2, 2, 3))
        words = []
        for _ in range(n):
            if rng.random() < 0.5:  # topic words of the portal: frequent
                pick = rng.choice([*ph.CITIES, *ph.NATIONS, *ph.CULTURE, *ph.TOPICS,
                                   *(s for s, _ in ph.SPOTS)])
            else:  # vocabulary words, ranks 50-20,000: from common to rare
                pick = self.words[int(50 * (400 ** rng.random()))]
            words.append(pick)
        return " ".join(words)


def stored_form(repo: ArticleRepository, docs: list[dict[str, Any]], now: datetime
                ) -> tuple[list[dict[str, Any]], dict[str, tuple[datetime | None, list[str]]]]:
    """Documents as ``upsert_many`` leaves new articles, and their postings (its own
    preparation and search terms)."""
    from storage.mongo import pending
    from storage.mongo.writes import prepare

    out = []
    postings: dict[str, tuple[datetime | None, list[str]]] = {}
    for doc in prepare(docs).values():
        doc.update(first_seen=now, last_seen=now, revision_count=0, revised_at=None)
        doc[pending.FIELD] = "bench"  # indexed by the next catch-up (storage.search)
        out.append(doc)
    return out, postings


def insert_new(repo: ArticleRepository, docs: list[dict[str, Any]], now: datetime) -> None:
    """Store new articles the way upsert_many does, with plain inserts (postings first)."""
    stored, _ = stored_form(repo, docs, now)
    try:
        if len(stored) == 1:
            repo.articles.insert_one(stored[0])
        else:
            repo.articles.insert_many(stored, ordered=False)
    except DuplicateKeyError:  # resuming after a kill mid-batch: already there
        pass
    except BulkWriteError as exc:
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
            raise
    Timeline.record(repo.meta, [d["published_at"] for d in stored if d["published_at"]],
                    len(stored))
    repo.catch_up()


def insert_plain(repo: ArticleRepository, docs: list[dict[str, Any]], now: datetime) -> None:
    """Store new articles as upsert_many leaves them, without their search postings
    (what ``stats`` reads needs none: loading is then ~50x faster)."""
    stored = []
    from storage.mongo.writes import prepare

    for doc in prepare(docs).values():
        doc.update(first_seen=now, last_seen=now, revision_count=0, revised_at=None)
        stored.append(doc)
    try:
        repo.articles.insert_many(stored, ordered=False)
    except BulkWriteError as exc:
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
            raise


def load_plain(repo: ArticleRepository, factory: ArticleFactory, upto: int) -> int:
    """Insert postings-less articles until the collection holds ``upto`` (resumable)."""
    have = repo.articles.estimated_document_count()
    factory.count = max(factory.count, have)
    now = datetime.now(UTC)
    while have < upto:
        k = min(500, upto - have)
        insert_plain(repo, [factory.article() for _ in range(k)], now)
        have += k
        if have % 10_000 < k:
            print(f"  ... {have:,} loaded", file=sys.stderr, flush=True)
    return have


# -- database ------------------------------------------------------------------------
@contextmanager
def database(store: Path | None = None, cache_size: str = "1G") -> Iterator[tuple[Callable[[str], Any], str, str | None]]:
    """(open(suffix) -> journaled database, description, store path) on MONGODB_URI or
    on a fresh SecantusDB.

    Each test gets its own database instead of dropping collections in between:
    dropping a collection of term-heavy articles on SecantusDB deletes every index
    entry one by one (minutes for a few thousand articles). The databases are dropped
    at the end on MONGODB_URI; a SecantusDB store is simply deleted.
    """
    uri = os.environ.get("MONGODB_URI")
    server = None
    tmp = None
    if uri:
        prefix = f"bench_store_{uuid.uuid4().hex[:8]}"
        where = f"MONGODB_URI, databases {prefix}_*"
        path = None
    else:
        if store is None:
            tmp = tempfile.TemporaryDirectory(prefix="mongo-store-bench-")
        path = str(store) if store is not None else tmp.name  # type: ignore[union-attr]
        server = production_server(path, cache_size)  # as the embedded store runs it
        server.start()
        uri = server.uri
        prefix = "bench_store"
        where = f"SecantusDB (sync_on_commit=True, cache {cache_size}) in {path}"
    names: list[str] = []
    try:
        with open_database(uri, ".", f"{prefix}_first") as (client, _):
            def open_db(suffix: str) -> Any:
                names.append(f"{prefix}_{suffix}")
                return client.get_database(names[-1], write_concern=DURABLE)
            try:
                yield open_db, where, path if server is not None else None
            finally:
                if server is None:
                    for name in names:
                        client.drop_database(name)
    finally:
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()


def fresh(db: Any) -> ArticleRepository:
    # Its own search index beside it (storage.search), as a crawl's DATA/search.
    repo = ArticleRepository(db, search_dir=Path(tempfile.mkdtemp(prefix="bench-search-")))
    repo.ensure_indexes()
    return repo


def disk_mb(path: str | None) -> float | None:
    if path is None:
        return None
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6


# -- 1. writes -----------------------------------------------------------------------
def bench_writes(open_db: Callable[[str], Any], factory: ArticleFactory, n: int) -> list[tuple[str, float, float]]:
    docs = [factory.article() for _ in range(n)]
    now = datetime.now(UTC)
    rows: list[tuple[str, float, float]] = []

    repo = ArticleRepository(open_db("prepare"))
    start = time.perf_counter()
    stored_form(repo, docs, now)
    prep = time.perf_counter() - start
    rows.append(("prepare only (no database)", n / prep, 1000 * prep / n))

    for batch in (50, 200):
        repo = fresh(open_db(f"upsert{batch}"))
        start = time.perf_counter()
        for i in range(0, n, batch):
            result = repo.upsert_many(docs[i:i + batch], now)
            assert result.new == len(docs[i:i + batch]), result
        secs = time.perf_counter() - start
        assert repo.count() == n
        rows.append((f"upsert_many, batch {batch}", n / secs, 1000 * secs / n))

    repo = fresh(open_db("insert_one"))
    start = time.perf_counter()
    for doc in docs:
        insert_new(repo, [doc], now)
    secs = time.perf_counter() - start
    assert repo.count() == n
    rows.append(("insert_one per article", n / secs, 1000 * secs / n))
    return rows


# -- 2. search -----------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def load(repo: ArticleRepository, factory: ArticleFactory, upto: int, deadline: float) -> int:
    """Insert articles until the collection holds ``upto`` (or the deadline passes)."""
    have = repo.count()
    factory.count = max(factory.count, have)  # resuming a kept --store: skip what it holds
    now = datetime.now(UTC)
    while have < upto and time.monotonic() < deadline:
        k = min(LOAD_CHUNK, upto - have)
        insert_new(repo, [factory.article() for _ in range(k)], now)
        have += k
        if have % 2_000 < k:  # crossed a multiple of 2,000 (resumed loads start anywhere)
            print(f"  ... {have:,} loaded", file=sys.stderr, flush=True)
    return have


def winning_plan(repo: ArticleRepository, words: str) -> tuple[str, Any]:
    """A one-line summary of the stages of the winning plan, and the plan itself."""
    explained = repo.explain_search(words)
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if "winningPlan" in node:
                found.append(node["winningPlan"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(explained)
    plan = found[0] if found else explained

    stages: list[str] = []

    def stages_of(node: Any) -> None:
        if isinstance(node, Mapping):
            if "stage" in node:
                extra = f"({node['indexName']})" if "indexName" in node else ""
                stages.append(f"{node['stage']}{extra}")
            for key in ("queryPlan", "inputStage", "inputStages"):
                if key in node:
                    stages_of(node[key])
        elif isinstance(node, list):
            for value in node:
                stages_of(value)

    stages_of(plan)
    return " <- ".join(stages) or "?", plan


def bench_search(open_db: Callable[[str], Any], factory: ArticleFactory, sizes: list[int],
                 queries: int, limit: int, budget: float, query_budget: float,
                 data_path: str | None, verbose: bool = False) -> list[str]:
    repo = fresh(open_db("search"))
    qs = [factory.query() for _ in range(queries)]
    t2s = opencc.OpenCC("s2t")
    qs = [t2s.convert(q) if i % 3 == 2 else q for i, q in enumerate(qs)]
    deadline = time.monotonic() + budget
    lines: list[str] = []
    plan_shown = False
    for size in sizes:
        start = time.perf_counter()
        before = repo.count()
        have = load(repo, factory, size, deadline)
        secs = time.perf_counter() - start
        rate = (have - before) / secs if secs else 0.0
        label = f"{have:>8,}"
        if have < size:  # out of budget: measure what was loaded, then stop
            label += f" (of {size:,}: --budget reached)"
        if have < size and have == before:  # budget already spent: nothing new to measure
            break
        list(repo.find(search=qs[0], limit=limit))  # warm-up, not timed
        times: list[float] = []
        hits: list[int] = []
        query_deadline = time.monotonic() + query_budget
        for q in qs:
            if time.monotonic() > query_deadline:
                break
            t = time.perf_counter()
            hits.append(len(list(repo.find(search=q, limit=limit))))
            times.append(1000 * (time.perf_counter() - t))
            if verbose:
                print(f"    {times[-1]:9.1f} ms  {hits[-1]:3d} hits  {q}", file=sys.stderr,
                      flush=True)
        if len(times) < len(qs):
            label += f" ({len(times)} of {len(qs)} queries in --query-budget)"
        listing = []
        for kw in ({}, {"section": SECTIONS[1]}, {"since": T0 + timedelta(days=400)}):
            t = time.perf_counter()
            rows = len(list(repo.find(limit=limit, **kw)))
            listing.append(f"{1000 * (time.perf_counter() - t):.0f} ms ({rows})")
        t = time.perf_counter()
        repo.count_by_section()
        repo.count_by_month()
        stats_ms = 1000 * (time.perf_counter() - t)
        mb = disk_mb(data_path)
        lines.append(f"{label}  median {statistics.median(times):7.1f} ms  "
                     f"p95 {percentile(times, 0.95):7.1f} ms  max {max(times):7.1f} ms  "
                     f"(hits/query: median {statistics.median(hits):.0f}, "
                     f"{sum(h == 0 for h in hits)} with none"
                     + (f"; loaded {rate:,.0f} art/s" if have > before else "")
                     + (f", store {mb:,.0f} MB)" if mb is not None else ")"))
        print(lines[-1], flush=True)
        print(f"           listing find(limit={limit}): newest {listing[0]}, one section "
              f"{listing[1]}, --since {listing[2]}; counts per section and month "
              f"(gzarchive stats) {stats_ms:.0f} ms", flush=True)
        if not plan_shown and hasattr(repo, "explain_search"):  # the postings layout only
            plan_shown = True
            words = next((q for q in qs if len(q.split()) > 1), qs[0])
            summary, plan = winning_plan(repo, words)
            terms = index_terms(words.split())
            print(f"\nexplain() of the first postings query of find(search={words!r}) "
                  f"(terms: {terms}):")
            print(f"  winning plan: {summary}")
            print("  " + json.dumps(plan, ensure_ascii=False, default=str)[:1500])
            verdict = ("uses the terms_published index" if "IXSCAN(terms_published)" in summary
                       else "does NOT use the terms_published index")
            print(f"  -> {verdict}" + (" (COLLSCAN!)" if "COLLSCAN" in summary else ""),
                  flush=True)
            print()
        if have < size:
            break
    return lines


# -- 3. stats -------------------------------------------------------------------------
def bench_stats(open_db: Callable[[str], Any], factory: ArticleFactory,
                sizes: list[int]) -> list[str]:
    """``gzarchive stats`` the previous way (aggregates over every article) and from the
    kept counts, on articles without postings (stats reads none; loading is ~50x faster)."""
    repo = ArticleRepository(open_db("stats"))
    repo.articles.create_indexes(ARTICLE_INDEXES)
    lines = []
    for size in sizes:
        have = load_plain(repo, factory, size)
        repo.meta.delete_many({"_id": {"$in": [LIVE_ID, STAGING_ID]}})  # previous layout
        t = time.perf_counter()
        scanned = (repo.count_by_section(), repo.count_by_month())
        scan_ms = 1000 * (time.perf_counter() - t)
        t = time.perf_counter()
        repo.counts.recount(progress=lambda *_: None)  # what the migration does
        recount_s = time.perf_counter() - t
        times = []
        for _ in range(7):
            t = time.perf_counter()
            kept = (repo.count_by_section(), repo.count_by_month())
            times.append(1000 * (time.perf_counter() - t))
        assert kept == scanned, "kept counts differ from the scan"
        lines.append(f"{have:>8,}  stats by scanning {scan_ms:7.0f} ms; from kept counts "
                     f"median {statistics.median(times):5.1f} ms, max {max(times):5.1f} ms; "
                     f"recount (migration) {recount_s:.1f} s")
        print(lines[-1], flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=500, help="articles per write test")
    parser.add_argument("--sizes", default="2000",
                        help="collection sizes for search, comma-separated (e.g. 10000,100000)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--limit", type=int, default=20, help="rows per query (gzarchive query)")
    parser.add_argument("--budget", type=float, default=600,
                        help="seconds allowed for bulk-loading the search collection")
    parser.add_argument("--query-budget", type=float, default=90,
                        help="seconds of queries per size (figures over those done)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", type=Path,
                        help="SecantusDB directory to use and keep (e.g. one loaded by an "
                             "earlier run: loading is the slow part)")
    parser.add_argument("--cache-size", default="1G",
                        help="SecantusDB WiredTiger cache, e.g. 8G (the embedded store: half the RAM above 1 GB); "
                             "WiredTiger options may follow: 19G,eviction_dirty_target=40")
    parser.add_argument("--verbose", action="store_true", help="print each query's time")
    parser.add_argument("--skip-writes", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--layouts", default="",
                        help="compare the old (search_postings) and new (tantivy) layouts: "
                             "OLD_SIZE,NEW_SIZE[,NEW_SIZE...] (benchmarks/search_layouts.py)")
    parser.add_argument("--stats-sizes", default="",
                        help="also time gzarchive stats (scan vs kept counts) at these "
                             "sizes, e.g. 10000,100000 (articles without postings)")
    args = parser.parse_args()
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip())

    factory = ArticleFactory(args.seed)
    sample = factory.article()
    from storage.mongo.terms import terms_for

    print(f"synthetic article: title {len(sample['title'])} chars, body "
          f"{len(sample['body'])} chars, "
          f"{len(terms_for(sample['title'] + chr(10) + sample['body']))} search terms; "
          f"e.g. {sample['title']!r}")
    if args.layouts:
        from benchmarks.search_layouts import measure, report

        old_size, *new_sizes = (int(v.replace("_", "")) for v in args.layouts.split(","))
        results = [measure("old", ArticleFactory(args.seed), old_size, [], args.limit)]
        for size in new_sizes:
            qf = ArticleFactory(args.seed)
            t2s = opencc.OpenCC("s2t")
            qs = [qf.query() for _ in range(args.queries)]
            qs = [t2s.convert(q) if i % 3 == 2 else q for i, q in enumerate(qs)]
            results.append(measure("new", ArticleFactory(args.seed), size, qs, args.limit))
            print("\n".join(report(results)), flush=True)
        return 0
    if args.store is not None:
        args.store.mkdir(parents=True, exist_ok=True)
    with database(args.store, args.cache_size) as (open_db, where, data_path):
        print(f"store: {where}; journaled writes (w=1, j=True); "
              f"load average {os.getloadavg()[0]:.1f} on {psutil.cpu_count()} CPUs\n")
        write_rows: list[tuple[str, float, float]] = []
        if not args.skip_writes:
            print(f"1. writes of {args.articles:,} new articles (each from an empty collection)")
            write_rows = bench_writes(open_db, factory, args.articles)
            print(f"  {'method':<28} {'articles/s':>10} {'ms/article':>10}")
            for name, rate, ms in write_rows:
                print(f"  {name:<28} {rate:>10,.0f} {ms:>10.2f}")
            print(flush=True)
        if not args.skip_search:
            print(f"2. search: {args.queries} queries of 1-3 words (every third in traditional "
                  f"script), find(search=..., limit={args.limit})")
            bench_search(open_db, factory, sizes, args.queries, args.limit, args.budget,
                         args.query_budget, data_path, args.verbose)
        stats_sizes = sorted(int(s.replace("_", "")) for s in args.stats_sizes.split(",")
                             if s.strip())
        if stats_sizes:
            print("3. gzarchive stats: counts per section and month (by scanning, as "
                  "before; from the kept counts)")
            bench_stats(open_db, ArticleFactory(args.seed), stats_sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
