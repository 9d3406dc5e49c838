"""storage.mongo: schema, upserts and revisions, search, spool, embedded server sharing."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from storage.mongo.articles import ArticleRepository, UpsertResult
from storage.mongo.client import open_database
from storage.mongo.embedded import EmbeddedServer, Paths, process_alive, read_state
from storage.mongo.errors import StoreUnavailable
from storage.mongo.ops import Op
from storage.mongo.runs import RunRepository
from storage.mongo.server import CACHE_ENV, default_cache_size
from storage.mongo.spool import Spool
from storage.mongo.terms import query_terms, terms_for
from storage.mongo.writer import BatchWriter
from tests.mongo_fixtures import (  # noqa: F401
    mongo_client,
    mongo_db,
    mongo_uri,
    store_config,
    store_server,
)

ROOT = Path(__file__).resolve().parents[1]
BJ = timezone(timedelta(hours=8))
T0 = datetime(2025, 7, 6, 16, 21, 55, tzinfo=BJ)
NOW1 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
NOW2 = datetime(2026, 1, 2, 0, 0, tzinfo=UTC)


def article(n: int, body: str = "正文", section: str = "老外在贵州", **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "url": f"https://gz.cri.cn/n/20250706/{n:04d}.html",
        "urls": [f"https://gz.cri.cn/n/20250706/{n:04d}.html"],
        "title": f"标题{n}", "published_at": T0 + timedelta(days=n), "source": "国际在线",
        "editor": "张三", "chief_editor": None, "sections": [section], "body": body,
        "images": [], "near_duplicate_of": None, "content_hash": f"h{n}-{body}",
        "warc": {"file": "a.warc.gz", "offset": n},
    }
    doc.update(kw)
    return doc


@pytest.fixture
def repo(mongo_db: Database[dict[str, Any]]) -> ArticleRepository:  # noqa: F811
    r = ArticleRepository(mongo_db)
    r.ensure_indexes()
    return r


# -- schema -----------------------------------------------------------------------
def test_indexes_idempotent(repo: ArticleRepository) -> None:
    repo.ensure_indexes()
    repo.ensure_indexes()
    names = set(repo.articles.index_information())
    assert {"url_unique", "urls", "sections_published", "published_at", "content_hash",
            "near_duplicate_of"} <= names
    assert "search_terms" not in names  # the keyword index lives beside the store
    assert repo.articles.index_information()["search_pending"].get("sparse")
    assert repo.articles.index_information()["url_unique"].get("unique")
    assert "url_hash_archived_unique" in repo.revisions.index_information()


def test_open_database_durable_write_concern(mongo_uri: str, tmp_path: Path) -> None:  # noqa: F811
    with open_database(mongo_uri, tmp_path) as (client, db):
        assert db.write_concern.document == {"w": 1, "j": True}
        assert client.write_concern.document == {"w": 1, "j": True}
    assert not (tmp_path / "db").exists()  # an external URI leaves no embedded files


def test_server_selection_timeout_of_the_uri_is_kept(mongo_uri: str,  # noqa: F811
                                                     tmp_path: Path) -> None:
    sep = "&" if "?" in mongo_uri else "?"
    with open_database(f"{mongo_uri}{sep}serverSelectionTimeoutMS=1234", tmp_path) as (c, _db):
        assert c.options.server_selection_timeout == 1.234
    with open_database(mongo_uri, tmp_path, server_selection_timeout_ms=4321) as (c, _db):
        assert c.options.server_selection_timeout == 4.321


def test_open_database_unreachable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as info:
        with open_database("mongodb://u:secret@127.0.0.1:9/", tmp_path,
                           server_selection_timeout_ms=300):
            pass
    message = str(info.value)
    assert "\n" not in message and "secret" not in message and "127.0.0.1:9" in message


# -- upserts ----------------------------------------------------------------------
def test_upsert_new_unchanged_updated_revised(repo: ArticleRepository) -> None:
    first = repo.upsert_many([article(1), article(2), article(3)], NOW1)
    assert (first.new, first.unchanged, first.updated, first.revised) == (3, 0, 0, 0)
    twin = "https://big5.cri.cn/gate/big5/gz.cri.cn/n/20250706/0002.html"
    second = repo.upsert_many([
        article(1),                                                  # unchanged
        article(2, section="Hi,贵州!", urls=[twin]),                  # new section + url
        article(3, body="改过的正文"),                                 # revised
        article(4),                                                  # new
    ], NOW2)
    assert (second.new, second.unchanged, second.updated, second.revised, second.errors) == \
        (1, 1, 1, 1, 0)
    a1 = repo.get(article(1)["url"])
    assert a1 is not None and a1["first_seen"] == NOW1 and a1["last_seen"] == NOW2
    a2 = repo.get(twin)  # found by any alias
    assert a2 is not None and a2["url"] == article(2)["url"]
    assert a2["sections"] == ["老外在贵州", "Hi,贵州!"] and twin in a2["urls"]
    a3 = repo.get(article(3)["url"])
    assert a3 is not None and a3["body"] == "改过的正文" and a3["revision_count"] == 1
    assert a3["first_seen"] == NOW1
    revs = repo.revisions_of(article(3)["url"])
    assert len(revs) == 1 and revs[0]["body"] == "正文" and revs[0]["superseded_at"] == NOW2
    assert revs[0]["archived_at"] == NOW1
    assert repo.count() == 4
    # a retried batch changes nothing and records no second revision
    again = repo.upsert_many([article(3, body="改过的正文")], NOW2)
    assert again.unchanged == 1 and len(repo.revisions_of(article(3)["url"])) == 1


def test_dates_are_bson_utc_and_exported_in_beijing_time(repo: ArticleRepository) -> None:
    repo.upsert_many([article(1)], NOW1)
    raw = repo.articles.find_one({"url": article(1)["url"]})
    assert raw is not None and raw["published_at"] == T0 + timedelta(days=1)
    assert raw["published_at"].utcoffset() == timedelta(0)
    exported = repo.to_export(raw)
    assert exported["published_at"] == "2025-07-07T16:21:55+08:00"
    assert exported["first_seen"] == "2026-01-01T08:00:00+08:00"
    assert "_id" not in exported and "search_terms" not in exported
    json.dumps(exported, ensure_ascii=False)
    with pytest.raises(ValueError):
        repo.upsert_many([article(5, published_at=datetime(2025, 1, 1))], NOW1)


def test_add_sections_and_counts(repo: ArticleRepository) -> None:
    repo.upsert_many([article(1), article(40, section="Hi,贵州!")], NOW1)
    assert repo.add_sections(article(1)["url"], ["Hi,贵州!"]) == 1
    assert repo.add_sections(article(1)["url"], ["Hi,贵州!"]) == 0
    assert repo.count_by_section() == {"Hi,贵州!": 2, "老外在贵州": 1}
    assert repo.count_by_month() == {"2025-07": 1, "2025-08": 1}


# -- queries ----------------------------------------------------------------------
def test_terms() -> None:
    assert terms_for("Hi,貴州! 老外") == ["贵州", "老外", "hi"]
    assert query_terms(["貴州"]) == query_terms(["贵州"]) == ["贵州"]


def test_search_either_script(repo: ArticleRepository) -> None:
    repo.upsert_many([
        article(1, body="老外在贵州的生活"),          # simplified
        article(2, body="老外在貴州的生活"),          # traditional
        article(3, body="贵阳的州人"),                # both bigrams of 贵州人, no 贵州人
        article(4, body="贵州人热情好客 Guizhou"),
        article(5, body="无关内容"),
    ], NOW1)

    def urls(**kw: Any) -> set[int]:
        return {int(d["url"][-9:-5]) for d in repo.find(**kw)}

    assert urls(search="貴州") == urls(search="贵州") == {1, 2, 4}
    assert urls(search="贵州人") == {4}
    assert urls(search="贵州 guizhou") == {4}
    assert urls(search="GUIZHOU") == {4}
    assert urls(search="老外 貴州") == {1, 2}
    assert len(list(repo.find(search="贵州", limit=2))) == 2
    newest = next(repo.find(search="贵州"))
    assert newest["url"].endswith("0004.html") and "search_terms" not in newest


def test_search_pending_set_uses_index(repo: ArticleRepository) -> None:
    """What a search reads from MongoDB besides its hits: the articles the search index
    has not caught up on, one range of the sparse ``search_pending`` index."""
    repo.upsert_many([article(i, body=f"第{i}篇 贵州 新闻 {i}") for i in range(1, 60)], NOW1)
    assert repo.articles.count_documents({"search_pending": {"$exists": True}}) == 59
    explained = repo.db.command("explain", {"find": "articles",
                                            "filter": {"search_pending": {"$exists": True}}})
    text = json.dumps(explained, default=str)
    assert "IXSCAN" in text and "search_pending" in text, text[:2000]
    assert "COLLSCAN" not in text


def test_filters(repo: ArticleRepository) -> None:
    repo.upsert_many([article(1), article(2, section="Hi,贵州!"),
                      article(3, near_duplicate_of=article(1)["url"])], NOW1)

    def nums(**kw: Any) -> list[int]:
        return [int(d["url"][-9:-5]) for d in repo.find(**kw)]

    assert nums() == [3, 2, 1]
    assert nums(section="老外在貴州") == [3, 1]
    assert nums(section="Hi,贵州!") == [2]
    assert nums(since=T0 + timedelta(days=2)) == [3, 2]
    assert nums(until=T0 + timedelta(days=2)) == [1]
    assert nums(since=T0 + timedelta(days=2), until=T0 + timedelta(days=3)) == [2]
    assert nums(include_near_duplicates=False) == [2, 1]
    assert nums(limit=1) == [3]
    assert nums(section="老外在贵州", search="正文", limit=1) == [3]


def test_runs(mongo_db: Database[dict[str, Any]]) -> None:  # noqa: F811
    runs = RunRepository(mongo_db)
    runs.ensure_indexes()
    run_id = runs.start({"PORTAL_URL": "http://x", "DOWNLOADER_MIDDLEWARES": {"a.b.C": 10},
                         "DATA_DIR": Path("/tmp/d")})
    runs.finish(run_id, {"new": 3}, {"timeout": 1}, 5)
    last = runs.last(1)[0]
    assert last["id"] == run_id and last["exit_status"] == 5 and last["status"] == "failed"
    assert last["counts"] == {"new": 3} and last["finished_at"] >= last["started_at"]
    assert last["settings"]["DATA_DIR"] == "/tmp/d"


# -- spool and outage ---------------------------------------------------------------
def test_spool_round_trip(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool" / "a.jsonl")
    spool.append([Op.upsert(article(1), NOW1), Op.upsert(article(2), NOW1)])
    with open(spool.path, "a") as f:
        f.write('{"torn')  # a crash mid-append
    assert spool.count() == 2
    spool.append([Op.relink(article(2)["url"], article(1)["url"], NOW2)])
    ops = spool.read()
    assert [op.kind for op in ops] == ["upsert", "upsert", "relink"]  # none glued to the tear
    assert ops[0].doc["published_at"] == article(1)["published_at"]
    assert ops[0].now == NOW1 and ops[2].now == NOW2


def _writer(repo: ArticleRepository | None, spool: Spool, uri: str,
            **options: Any) -> tuple[BatchWriter, list[float]]:
    """A BatchWriter as the store pipeline builds it (MONGODB_BATCH_SIZE,
    MONGODB_RETRIES, the default backoff), with its pauses recorded, not slept."""
    config = store_config(uri)
    waits: list[float] = []
    writer = BatchWriter(repo, spool, batch_size=config.batch_size, retries=config.retries,
                         sleep=waits.append, **options)
    return writer, waits


def test_outage_mid_crawl_loses_nothing(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    server = store_server(store)
    server.start()
    spool = Spool(tmp_path / "spool.jsonl")
    uri = f"{server.uri}?directConnection=true"
    # A short server selection: each attempt on the stopped server waits this long.
    with open_database(uri, tmp_path, server_selection_timeout_ms=300,
                       write_concern=store_config(uri).write_concern) as (_c, db):
        repo = ArticleRepository(db)
        repo.ensure_indexes()
        writer, waits = _writer(repo, spool, uri)
        for n in range(1, 5):
            writer.add(article(n))
        assert writer.flush().result.new == 4
        server.stop()  # the database goes away mid-crawl
        for n in range(5, 10):
            writer.add(article(n))
        writer.add(article(2, body="新版本"))
        down = writer.flush().result
        assert down.spooled == 6 and down.new == 0 and spool.count() == 6
        assert writer.totals.new == 4 and writer.totals.spooled == 6
        # MONGODB_RETRIES retries, each after twice the pause before, then the spool
        retries = store_config(uri).retries
        assert waits == [0.5 * 2 ** n for n in range(retries)]
    server = store_server(store)
    server.start()
    try:
        with open_database(f"{server.uri}?directConnection=true", tmp_path) as (_c, db):
            repo = ArticleRepository(db)
            repo.ensure_indexes()
            assert spool.replay(repo).written == 6
            assert spool.count() == 0 and not spool.path.exists()
            assert spool.replay(repo).written == 0
            urls = [d["url"] for d in repo.articles.find()]
            assert len(urls) == len(set(urls)) == 9
            a2 = repo.get(article(2)["url"])
            assert a2 is not None and a2["body"] == "新版本" and a2["revision_count"] == 1
    finally:
        server.stop()


def test_writer_without_store_spools(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.jsonl")
    writer, waits = _writer(None, spool, "mongodb://127.0.0.1:9/")
    batch = writer.batch_size  # MONGODB_BATCH_SIZE: add() says when a batch is waiting
    assert [writer.add(article(n)) for n in range(1, batch + 1)] == [False] * (batch - 1) + [True]
    report = writer.flush()
    urls = [article(n)["url"] for n in range(1, batch + 1)]
    assert report.result == UpsertResult(errors=batch, spooled=batch, failed=urls)
    assert report.spooled and not report.written and not report.lost
    assert spool.count() == batch and not waits  # no store: nothing to retry


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_journal_keeps_every_kind_of_write_in_order(tmp_path: Path) -> None:
    """Merges, relinks and run records spooled behind the articles they follow; the
    server back, the probe replays them before any new write; replay is idempotent."""
    port, store = _free_port(), str(tmp_path / "store")

    def server() -> Any:
        srv = store_server(store, port)  # restarted where the writer's client reconnects
        srv.start()
        return srv

    srv = server()
    spool = Spool(tmp_path / "spool.jsonl")
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        # A short server selection: each attempt on the stopped server waits this long.
        with open_database(uri, tmp_path, server_selection_timeout_ms=300,
                           write_concern=store_config(uri).write_concern) as (_c, db):
            repo = ArticleRepository(db)
            repo.ensure_indexes()
            # probe_interval 0: the restarted server is probed at the next flush, not
            # 30 s later as in a crawl (the probe's timing is not what this tests).
            writer, _waits = _writer(repo, spool, uri, probe_interval=0.0)
            writer.add(article(1))
            assert [op.kind for op in writer.flush().written] == ["upsert"]
            srv.stop()
            run = RunRepository.document({"portal_url": "http://x"}, NOW1, {"new": 2}, {}, 7)
            for op in (Op.upsert(article(2)), Op.touch(article(1)["url"], ["Hi,贵州!"]),
                       Op.relink(article(2)["url"], article(1)["url"]), Op.run(run)):
                writer.add(op)
            down = writer.flush()
            assert not down.written and len(down.durable) == 4 and not down.lost
            assert [op.kind for op in spool.read()] == ["upsert", "touch", "relink", "run"]
            srv = server()
            # A new write waits for the journal: the probe replays it first, in order.
            writer.add(Op.touch(article(2)["url"], ["老外在贵州", "Hi,贵州!"]))
            back = writer.flush()
            assert [r.written for r in back.replayed] == [4]
            assert [op.kind for op in back.written] == ["touch"] and not spool.path.exists()
            a1, a2 = repo.get(article(1)["url"]), repo.get(article(2)["url"])
            assert a1 is not None and a2 is not None
            assert sorted(a1["sections"]) == ["Hi,贵州!", "老外在贵州"]
            assert a2["near_duplicate_of"] == article(1)["url"]
            assert sorted(a2["sections"]) == ["Hi,贵州!", "老外在贵州"]
            assert RunRepository(db).last(1)[0]["counts"] == {"new": 2}
            # Replaying the same journal again changes nothing.
            spool.append(down.spooled)
            again = spool.replay(repo)
            assert again.written == 4 and again.result.unchanged == 1
            assert repo.count() == 2 and len(RunRepository(db).last(5)) == 1
            assert repo.get(article(2)["url"])["near_duplicate_of"] == article(1)["url"]  # type: ignore[index]
    finally:
        srv.stop()


def test_spool_of_the_first_format_still_replays(tmp_path: Path, repo: ArticleRepository,
                                                 ) -> None:
    from bson import json_util
    from bson.json_util import JSONMode, JSONOptions

    spool = Spool(tmp_path / "articles.jsonl")
    options = JSONOptions(json_mode=JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)
    with open(spool.path, "w", encoding="utf-8") as f:  # as the articles-only spool wrote
        for n in (1, 2):
            f.write(json_util.dumps({"now": NOW1, "doc": article(n)}, json_options=options,
                                    ensure_ascii=False) + "\n")
    spool.append([Op.relink(article(2)["url"], article(1)["url"], NOW2)])
    replayed = spool.replay(repo)
    assert replayed.by_kind == {"upsert": 2, "relink": 1} and replayed.result.new == 2
    stored = repo.get(article(2)["url"])
    assert stored is not None and stored["first_seen"] == NOW1
    assert stored["near_duplicate_of"] == article(1)["url"] and not spool.path.exists()


def test_unwritable_spool_is_counted_and_logged(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    from types import SimpleNamespace

    from crawler.items import ArticleItem
    from crawler.report import CrawlReport
    from pipelines.store import MongoStorePipeline
    from tests.helpers import project_crawler

    (tmp_path / "spool").write_text("a file where the spool directory should be")
    crawler = project_crawler(DATA_DIR=str(tmp_path), MONGODB_URI="mongodb://127.0.0.1:9/")
    crawler.spider = SimpleNamespace(report=CrawlReport())  # type: ignore[assignment]
    pipeline = MongoStorePipeline.from_crawler(crawler)
    pipeline.open_spider()  # the store is unreachable: every write goes to the spool
    report = crawler.spider.report
    assert report.fatal_kind == "store-unavailable"
    assert "cannot reach MongoDB at mongodb://127.0.0.1:9/" in report.fatal
    assert "spool" in report.fatal and "\n" not in report.fatal

    async def crawl() -> None:
        await pipeline.process_item(ArticleItem(**article(1)))
        await pipeline.close_spider()

    asyncio.run(crawl())
    assert crawler.stats is not None
    assert crawler.stats.get_value("archive/spool/errors") == 1
    assert not crawler.stats.get_value("archive/mongo/spooled")
    assert "neither written" in caplog.text and "nor spooled" in caplog.text


def test_run_record_spooled_when_the_store_is_down(tmp_path: Path,
                                                   repo: ArticleRepository) -> None:
    from storage.mongo.record import write_or_spool
    from storage.mongo.spool import spool_path

    doc = RunRepository.document({"portal_url": "http://x"}, NOW1, {"new": 1}, {}, 7)
    report = write_or_spool([Op.run(doc)], None, tmp_path, try_store=False)
    assert report.spooled and not report.written
    assert Spool(spool_path(tmp_path)).replay(repo).by_kind == {"run": 1}
    last = RunRepository(repo.db).last(1)[0]
    assert last["id"] == str(doc["_id"]) and last["exit_status"] == 7
    assert last["started_at"] == NOW1


# -- embedded server ---------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys
    from storage.mongo.embedded import EmbeddedServer
    lease = EmbeddedServer.acquire(sys.argv[1], idle_seconds=1)
    print(lease.uri, flush=True)
    sys.stdin.readline()
    lease.release()
""")


def _holder(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _wait_stopped(data_dir: Path, pid: int, within: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < within:
        if not process_alive(pid):
            assert read_state(Paths.of(data_dir)) is None
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"embedded server {pid} still running after {within} s")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    state = read_state(Paths.of(tmp_path))
    if state is not None and process_alive(state["pid"]):  # never leave one behind
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(state["pid"]).terminate()


def test_embedded_shared_by_two_processes(data_dir: Path) -> None:
    mine = EmbeddedServer.acquire(data_dir, idle_seconds=1)
    proc, uri = _holder(data_dir)
    assert uri == mine.uri  # the second process joined the first one's server
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=2000)
    client.gz.x.insert_one({"a": 1})
    client.close()
    mine.release()
    time.sleep(2.5)  # the other lease keeps it alive past idle_seconds
    assert process_alive(mine.server_pid) and read_state(Paths.of(data_dir)) is not None
    # a second server on the same files refuses to start
    refused = subprocess.run([sys.executable, "-m", "storage.mongo.server", "--data-dir",
                              str(data_dir)], cwd=ROOT, capture_output=True, timeout=60)
    assert refused.returncode == 3
    proc.communicate("\n", timeout=30)
    _wait_stopped(data_dir, mine.server_pid, within=8)
    # the data survived the stop, and a new server reopens it
    with open_database(None, data_dir, db_name="gz", idle_seconds=1) as (_c, db):
        assert db.x.count_documents({}) == 1


def test_embedded_killed_holder_and_stale_state(data_dir: Path) -> None:
    proc, uri = _holder(data_dir)
    server_pid = read_state(Paths.of(data_dir))["pid"]  # type: ignore[index]
    proc.kill()  # a crashed client never releases: its dead lease must not count
    proc.wait()
    _wait_stopped(data_dir, server_pid, within=8)
    # stale server.json: a dead pid and a port nobody listens on
    dead = subprocess.Popen(["true"])
    dead.wait()
    paths = Paths.of(data_dir)
    paths.state.write_text(json.dumps({"pid": dead.pid, "port": 9,
                                       "uri": "mongodb://127.0.0.1:9/", "started": "x"}))
    with EmbeddedServer.acquire(data_dir, idle_seconds=1) as lease:
        assert lease.server_pid != dead.pid
        client: MongoClient[dict[str, Any]] = MongoClient(lease.uri, serverSelectionTimeoutMS=2000)
        assert client.admin.command("ping")["ok"] == 1
        client.close()
    _wait_stopped(data_dir, lease.server_pid, within=8)
    assert not os.listdir(paths.leases)


def test_embedded_acknowledged_writes_survive_sigkill(data_dir: Path) -> None:
    with open_database(None, data_dir, db_name="gz", idle_seconds=1) as (_c, db):
        repo = ArticleRepository(db)
        repo.ensure_indexes()
        for n in range(1, 41):  # single small batches: the case that lost writes
            repo.upsert_many([article(n)], NOW1)
        pid = read_state(Paths.of(data_dir))["pid"]  # type: ignore[index]
        psutil.Process(pid).kill()
    _wait_stopped_pid(pid)
    with open_database(None, data_dir, db_name="gz", idle_seconds=1) as (_c, db):
        assert db.articles.count_documents({}) == 40


def _wait_stopped_pid(pid: int) -> None:
    for _ in range(200):
        if not process_alive(pid):
            return
        time.sleep(0.05)


def test_embedded_cache_size(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    assert default_cache_size() == f"{max(256, (ram_mb - 1024) // 2)}M"  # as mongod does
    monkeypatch.setenv(CACHE_ENV, "300M")  # the server inherits the caller's environment
    with EmbeddedServer.acquire(data_dir, idle_seconds=1) as lease:
        client: MongoClient[dict[str, Any]] = MongoClient(lease.uri, serverSelectionTimeoutMS=2000)
        client.gz.x.insert_one({"a": 1})
        client.close()
    _wait_stopped(data_dir, lease.server_pid, within=8)
    assert f"on {lease.uri} (cache 300M)" in Paths.of(data_dir).log.read_text()
