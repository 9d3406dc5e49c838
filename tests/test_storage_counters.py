"""storage.mongo.counters: counts kept with each write equal a recount from the articles.

Every check compares three things: the kept counts (``store_meta`` "counts"), a scan of
the articles (what ``gzarchive stats --recount`` keeps) and the counts this test derives
from the documents it wrote itself.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from storage.mongo import counters as counters_mod
from storage.mongo.articles import ArticleRepository
from storage.mongo.client import open_database
from storage.mongo.counters import LIVE_ID, STAGING_ID, Counts
from storage.mongo.ops import Op
from storage.mongo.spool import Spool
from storage.mongo.writer import BatchWriter
from tests.mongo_fixtures import (  # noqa: F401
    mongo_client,
    mongo_db,
    mongo_uri,
    store_config,
)

BJ = timezone(timedelta(hours=8))
JULY = datetime(2025, 7, 6, 16, 0, tzinfo=BJ)
NOW1 = datetime(2026, 1, 1, tzinfo=UTC)
NOW2 = datetime(2026, 1, 2, tzinfo=UTC)
NOW3 = datetime(2026, 1, 3, tzinfo=UTC)


def article(n: int, section: str = "老外在贵州", published: datetime | None = JULY,
            body: str = "正文") -> dict[str, Any]:
    url = f"https://gz.cri.cn/n/{n:05d}.html"
    return {"url": url, "urls": [url], "title": f"标题{n}", "body": body,
            "published_at": published, "sections": [section],
            "content_hash": f"h{n}-{body}-{published}", "images": []}


@pytest.fixture
def repo(mongo_db: Database[dict[str, Any]]) -> ArticleRepository:  # noqa: F811
    r = ArticleRepository(mongo_db)
    r.ensure_indexes()
    return r


def truth(repo: ArticleRepository) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Counts derived here from the stored documents (not by counters.py)."""
    months: Counter[str] = Counter()
    cells: Counter[tuple[str, str]] = Counter()
    for doc in repo.articles.find({}, {"published_at": 1, "sections": 1}):
        at = doc.get("published_at")
        month = (at.replace(tzinfo=UTC).astimezone(BJ).strftime("%Y-%m") if at
                 else "unknown")
        months[month] += 1
        for section in doc.get("sections") or []:
            cells[(month, section)] += 1
    return dict(months), dict(cells)


def assert_exact(repo: ArticleRepository) -> Counts:
    kept = repo.counts.load()
    assert kept is not None
    months, cells = truth(repo)
    assert (kept.by_month, kept.by_month_section) == (months, cells)
    scanned = repo.counts.scan()
    assert (scanned.by_month, scanned.by_month_section) == (months, cells)
    return kept


def test_counts_follow_new_articles_merges_revisions_and_date_fixes(
        repo: ArticleRepository) -> None:
    assert repo.counts.load() == Counts()  # a new store starts with empty counts
    repo.upsert_many([article(1), article(2), article(3, "Hi,贵州!"),
                      article(4, published=None)], NOW1)
    kept = assert_exact(repo)
    assert kept.total == 4 and kept.by_month == {"2025-07": 3, "unknown": 1}
    # merges: a listing of another section, a 304 with a section, late memberships
    repo.upsert_many([article(1, "Hi,贵州!")], NOW2)
    assert repo.touch(article(2)["url"], ["Hi,贵州!"], now=NOW2) == 1
    assert repo.add_sections(article(3)["url"], ["老外在贵州"]) == 1
    assert repo.add_sections(article(3)["url"], ["老外在贵州"]) == 0
    kept = assert_exact(repo)
    assert kept.by_section == {"老外在贵州": 4, "Hi,贵州!": 3}
    # a revision in the same month; a date correction into another month; one that
    # gains a date; an unchanged sighting
    august = JULY + timedelta(days=40)
    repo.upsert_many([article(1, body="改正文"), article(2, published=august),
                      article(4, published=august), article(3, "Hi,贵州!")], NOW3)
    kept = assert_exact(repo)
    assert kept.by_month == {"2025-07": 2, "2025-08": 2}
    assert repo.count_by_month() == {"2025-07": 2, "2025-08": 2}
    assert repo.count_by_section() == {"老外在贵州": 4, "Hi,贵州!": 3}
    # what the counters hold is what --recount keeps
    repo.counts.recount()
    assert repo.counts.load() == Counts(kept.by_month, kept.by_month_section, kept.writes)


def test_a_replayed_spool_op_changes_nothing(repo: ArticleRepository, tmp_path: Path,
                                             mongo_uri: str) -> None:  # noqa: F811
    config = store_config(mongo_uri)
    spool = Spool(tmp_path / "spool.jsonl")
    writer = BatchWriter(repo, spool, batch_size=config.batch_size, retries=config.retries)
    ops = [Op.upsert(article(1)), Op.upsert(article(2, published=None)),
           Op.touch(article(1)["url"], ["Hi,贵州!"]),
           Op.upsert(article(2, published=JULY, body="新")),
           Op.relink(article(2)["url"], article(1)["url"])]
    for op in ops:
        writer.add(op)
    report = writer.flush()
    assert len(report.written) == len(ops)
    before = assert_exact(repo)
    # The same ops, as a run killed before it knew they were written would spool them.
    spool.append(report.written)
    replayed = spool.replay(repo)
    assert replayed.written == len(ops)
    after = assert_exact(repo)
    assert (after.by_month, after.by_month_section) == (before.by_month,
                                                        before.by_month_section)


def test_two_writers_at_once(repo: ArticleRepository, tmp_path: Path,
                             mongo_uri: str) -> None:  # noqa: F811
    """Two processes' writers (own clients) on the same articles at once: each new
    article counted once, each section merge once."""
    config = store_config(mongo_uri)
    errors: list[BaseException] = []

    def crawl(section: str, now: datetime, spool_name: str) -> None:
        try:
            with open_database(mongo_uri, tmp_path, write_concern=config.write_concern) as (
                    client, _db):
                mine = ArticleRepository(client.get_database(repo.db.name))
                writer = BatchWriter(mine, Spool(tmp_path / spool_name), batch_size=10,
                                     retries=config.retries, sleep=lambda _s: None)
                for n in range(60):
                    writer.add(article(n, section, JULY + timedelta(days=n % 50)))
                    if n % 10 == 9:
                        report = writer.flush()
                        assert not report.spooled and not report.lost, report
                        writer.add(Op.touch(article(n - 5)["url"], [f"{section}-304"]))
                writer.flush()
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=crawl, args=(s, now, f"{s}.jsonl"))
               for s, now in (("老外在贵州", NOW1), ("Hi,贵州!", NOW2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    kept = assert_exact(repo)
    assert kept.total == 60
    assert kept.by_section["老外在贵州"] == 60 and kept.by_section["Hi,贵州!"] == 60


def test_migration_of_a_store_without_counts_interrupted_and_resumed(
        repo: ArticleRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.upsert_many([article(n, ("老外在贵州", "Hi,贵州!")[n % 2],
                              JULY + timedelta(days=7 * n)) for n in range(25)], NOW1)
    repo.meta.delete_one({"_id": LIVE_ID})  # the previous layout: no counts
    monkeypatch.setattr(counters_mod, "CHUNK", 10)
    seen: list[int] = []

    def interrupt(done: int, expected: int, seconds: float) -> None:
        seen.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        repo.counts.recount(resume=True, progress=interrupt)
    staging = repo.meta.find_one({"_id": STAGING_ID})
    assert staging is not None and staging["done"] == 10 == seen[0]
    assert repo.counts.load() is None  # still building: stats falls back to a scan
    assert repo.count_by_month() == truth(repo)[0]
    # the next start resumes from the staging document, not from the first article
    resumed: list[int] = []
    repo.counts.recount(resume=True, progress=lambda d, e, s: resumed.append(d))
    assert resumed == [20, 25]
    assert repo.meta.find_one({"_id": STAGING_ID}) is None
    assert_exact(repo)
    # ensure_indexes on a store without counts builds them itself
    repo.meta.delete_one({"_id": LIVE_ID})
    ArticleRepository(repo.db).ensure_indexes()
    assert_exact(repo)
