"""The search index beside the store (storage.search): exact against a brute-force scan.

10,000 synthetic articles (bulk-written as the write path leaves them, then indexed),
a tail of new and revised ones still pending, queries in both scripts with section and
date filters compared with a scan of every article in Python; a rewrite during a
catch-up stays pending; two processes writing and indexing at once; a rebuild and a
migration from the ``search_postings`` layout killed mid-way, then resumed.
"""

from __future__ import annotations

import functools
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import opencc
import pytest
from pymongo import MongoClient, WriteConcern
from pymongo.database import Database

import storage.search.indexer as indexer
from crawler.cli import main
from storage.mongo.articles import ArticleRepository
from storage.mongo.client import open_database
from storage.mongo.terms import to_simplified
from storage.search.layout import SearchDir, open_index
from storage.search.progress import Progress
from tests.mongo_fixtures import mongo_uri  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2016, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SECTIONS = ["老外在贵州", "Hi,贵州!", "贵州新闻"]
WORDS = ["贵州", "老外", "蜡染", "苗族", "瀑布", "梵净山", "茅台", "黄果树", "侗族大歌", "春节",
         "国际友好城市", "绿色发展", "大数据", "山地旅游", "贵阳", "遵义", "凯里", "安顺"]
ENGLISH = ["guizhou", "guiyang", "tea", "bigdata", "festival"]
FILLER = "的一是在了不和有大这主中人上为们地个用工时要动国产以我到他会作来分生对于学下级就年阶义发成部民可出能方进同行面说种过命度革而多子后自社加小机也经力线本电高量长党得实家定深法表着水理化争现所二起政三好十战无农使性前等反体合斗路图把结第里正新开论之物从当两些还天资事队批如应形想制心样干都向变关点育重其思与间内去因件日利相由压员气业代全组数果期导平各基或月毛然问比展那它最及外没看治提五解系林者米群头意只明四道马认次文通但条较克又公孔领军流入接席位情运器并飞原油放立题质指建区验活众很教决特此常石强极土少已根共直团统式转别造切九你取西持总料连任志观调七么山程百报更见必真保热委手改管处己将修支识病象几先老光专什六型具示复安带每东增则完风回南广劳轮科北打积车计给节做务被整联步类集号列温装即毫知轴研单色坚据速防史拉世设达尔场织历花受求传口断况采精金界品判参层止边清至万确究书术状厂须离再目海交权且儿青才证低越际八试规斯近注办布门铁需走议县兵固除般引齿千胜细影济白格效置推空配刀叶率述今选养德话查差半敌始片施响收华觉备名红续均药标记难存测士身紧液派准斤角降维板许破述技消底床田势端感往神便贺村构照容非搞亚磨族火段算适讲按值美态黄易彪服早班麦削信排台声该击素张密害侯草何树肥继右属市严径螺检左页抗苏显苦英快称坏移约巴材省黑武培著河帝仅针怎植京助升王眼她抓含苗副杂普谈围食射源例致酸旧却充足短划剂宣环落首尺波承粉践府鱼随考刻靠够满夫失包住促枝局菌杆周护岩师举曲春元超负砂封换太模贫减阳扬江析亩木言球朝医校古呢稻宋听唯输滑站另卫字鼓刚写刘微略范供阿块某功套友限项余倒卷创律雨让骨远帮初皮播优占死毒圈伟季训控激找叫云互跟裂粮粒母练塞钢顶策双留误础吸阻故寸盾晚丝女散焊功株亲院冷彻弹错散商视艺灭版烈零室轻血倍缺厘泵察绝富城冲喷壤简否柱李望盘磁雄似困巩益洲脱投送奴侧润盖挥距触星松送获兴独官混纪依未突架宽冬章湿偏纹吃执阀矿寨责熟稳夺硬价努翻奇甲预职评读背协损棉侵灰虽矛厚罗泥辟告卵箱掌氧恩爱停曾溶营终纲孟钱待尽俄缩沙退陈讨奋械载胞幼哪剥迫旋征槽倒握担仍呀鲜吧卡粗介钻逐弱脚怕盐末阴丰雾冠丙街莱贝辐肠付吉渗瑞惊顿挤秒悬姆烂森糖圣凹陶词迟蚕亿矩"
_S2T = opencc.OpenCC("s2t")


def corpus(n: int, seed: int, start: int = 0) -> list[dict[str, Any]]:
    """Articles of ~300 characters: filler, a few topic words, some English, some in
    traditional script."""
    rng = random.Random(seed)
    docs = []
    for i in range(start, start + n):
        parts = ["".join(rng.choice(FILLER) for _ in range(rng.randrange(8, 30)))
                 for _ in range(10)]
        for _ in range(rng.randrange(0, 4)):
            parts.insert(rng.randrange(len(parts)), rng.choice(WORDS))
        if rng.random() < 0.3:
            parts.insert(rng.randrange(len(parts)), rng.choice(ENGLISH).capitalize())
        body = "，".join(parts) + "。"
        if rng.random() < 0.3:
            body = _S2T.convert(body)
        published = None if rng.random() < 0.02 else T0 + timedelta(
            minutes=rng.randrange(10 * 365 * 24 * 60) // 60 * 60)  # hours: date ties
        url = f"https://gz.cri.cn/n/{i:06d}.html"
        docs.append({"url": url, "urls": [url], "title": f"第{i}篇 {rng.choice(WORDS)}",
                     "body": body, "published_at": published,
                     "sections": rng.sample(SECTIONS, rng.choice((1, 1, 2))),
                     "near_duplicate_of": None, "content_hash": uuid.uuid4().hex,
                     "images": []})
    return docs


def bulk_load(db: Database[dict[str, Any]], docs: list[dict[str, Any]],
              mark: bool = True) -> None:
    """Insert articles as the write path leaves new ones (marked pending unless *mark*
    is false: a store of the previous layout), without its per-batch bookkeeping."""
    rows = [{**d, "first_seen": NOW, "last_seen": NOW, "revision_count": 0,
             "revised_at": None, **({"search_pending": "bulk"} if mark else {})} for d in docs]
    for i in range(0, len(rows), 2_000):
        db["articles"].insert_many(rows[i:i + 2_000], ordered=False)


@functools.lru_cache(maxsize=20_000)
def _folded(title: str, body: str) -> str:
    return to_simplified(f"{title}\n{body}").lower()


def oracle(docs: list[dict[str, Any]], words: list[str], section: str | None = None,
           since: datetime | None = None, until: datetime | None = None,
           newest_first: bool = True, limit: int | None = None) -> list[str]:
    """The URLs a scan of every article gives: CJK words as substrings of the simplified
    text, ASCII words whole and case-insensitive; by date then URL."""
    keep = []
    for d in docs:
        text = _folded(d["title"], d["body"])
        ok = True
        for word in words:
            folded = to_simplified(word).lower()
            if folded.isascii():
                ok = ok and re.search(rf"(?<![0-9a-z]){re.escape(folded)}(?![0-9a-z])",
                                      text) is not None
            else:
                ok = ok and folded in text
        if not ok or (section and section not in d["sections"]):
            continue
        p = d["published_at"]
        if (since or until) and p is None:
            continue
        if (since and p < since) or (until and p >= until):
            continue
        keep.append(d)
    sign = -1 if newest_first else 1
    keep.sort(key=lambda d: (sign * (d["published_at"].timestamp() if d["published_at"]
                                     else -1e18), d["url"]))
    urls = [d["url"] for d in keep]
    return urls[:limit] if limit else urls


QUERIES: list[dict[str, Any]] = [
    {"words": ["貴州"], "limit": 20},
    {"words": ["贵州"], "limit": 20, "newest_first": False},
    {"words": ["蠟染"]},
    {"words": ["苗族", "瀑布"]},
    {"words": ["黃果樹", "茅台"], "limit": 20},
    {"words": ["侗族大歌"], "limit": 20, "section": "Hi,贵州!"},
    {"words": ["老外", "春節", "Guizhou"]},
    {"words": ["guiyang"], "limit": 20},
    {"words": ["TEA", "贵阳"]},
    {"words": ["國際友好城市"], "since": datetime(2019, 1, 1, tzinfo=UTC),
     "until": datetime(2021, 1, 1, tzinfo=UTC)},
    {"words": ["大数据"], "limit": 20, "until": datetime(2018, 1, 1, tzinfo=UTC)},
    {"words": ["山地旅游", "遵义"], "section": "老外在贵州", "since": datetime(2020, 1, 1, tzinfo=UTC)},
    {"words": ["水"], "limit": 20},              # a lone character: checked on the text
    {"words": ["凯里", "安"], "limit": 20},
    {"words": ["不存在的词"]},
]


def found(repo: ArticleRepository, query: dict[str, Any]) -> list[str]:
    kw = {k: v for k, v in query.items() if k != "words"}
    return [d["url"] for d in repo.find(search=query["words"], **kw)]


def expected(docs: list[dict[str, Any]], query: dict[str, Any]) -> list[str]:
    return oracle(docs, query["words"], **{k: v for k, v in query.items() if k != "words"})


@pytest.fixture(scope="module")
def client(mongo_uri: str) -> Iterator[MongoClient[dict[str, Any]]]:  # noqa: F811
    with MongoClient(mongo_uri, tz_aware=True) as c:
        yield c


def fresh_db(client: MongoClient[dict[str, Any]]) -> Database[dict[str, Any]]:
    return client.get_database(f"test_index_{uuid.uuid4().hex[:8]}",
                               write_concern=WriteConcern(w=1, j=True))


@pytest.fixture(scope="module")
def big(client: MongoClient[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory,
        ) -> Iterator[tuple[ArticleRepository, list[dict[str, Any]]]]:
    """10,000 articles indexed, then 300 new and 200 revised ones still pending."""
    db = fresh_db(client)
    repo = ArticleRepository(db, search_dir=tmp_path_factory.mktemp("data") / "search")
    repo.ensure_indexes()  # a new store: an empty index, the store's own
    docs = corpus(10_000, seed=1)
    bulk_load(db, docs)
    done = repo.catch_up()
    assert (done.indexed, done.cleared) == (10_000, 10_000)
    new = corpus(300, seed=2, start=10_000)
    rng = random.Random(3)
    revised = [{**d, "body": d["body"] + "，瀑布蜡染" + rng.choice(WORDS),
                "content_hash": uuid.uuid4().hex} for d in rng.sample(docs, 200)]
    repo.upsert_many(new, NOW)
    repo.upsert_many(revised, NOW)
    by_url = {d["url"]: d for d in docs + new}
    by_url.update({d["url"]: d for d in revised})
    assert db["articles"].count_documents({"search_pending": {"$exists": True}}) == 500
    try:
        yield repo, list(by_url.values())
    finally:
        client.drop_database(db.name)


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q)[:60])
def test_search_equals_a_brute_force_scan(big: tuple[ArticleRepository, list[dict[str, Any]]],
                                          query: dict[str, Any]) -> None:
    repo, docs = big
    want = expected(docs, query)
    assert found(repo, query) == want
    if query["words"] != ["不存在的词"]:
        assert want, f"a query that finds nothing tests little: {query}"


def test_pending_found_before_the_indexer_ran_and_after(
        big: tuple[ArticleRepository, list[dict[str, Any]]]) -> None:
    repo, docs = big
    query = {"words": ["瀑布", "蜡染"]}
    before = found(repo, query)
    assert before == expected(docs, query)
    pending = {d["url"] for d in repo.articles.find({"search_pending": {"$exists": True}})}
    assert pending & set(before), "the revised (pending) articles are among the hits"


def test_a_rewrite_during_a_catch_up_stays_pending(client: MongoClient[dict[str, Any]],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    db = fresh_db(client)
    try:
        repo = ArticleRepository(db, search_dir=tmp_path / "search")
        repo.ensure_indexes()
        docs = corpus(50, seed=4)
        repo.upsert_many(docs, NOW)
        victim = {**docs[7], "body": "Zzyzx 云海", "content_hash": "rewritten"}
        real_add = indexer.add

        def add_then_rewrite(writers: Any, batch: Any) -> None:
            real_add(writers, batch)  # indexed with the old text ...
            if victim["url"] in {d["url"] for d in batch}:
                repo.upsert_many([victim], NOW)  # ... rewritten before the marks clear

        monkeypatch.setattr(indexer, "add", add_then_rewrite)
        monkeypatch.setattr(indexer, "TAIL_ROUNDS", 1)  # no second round in this catch-up
        done = repo.catch_up()
        monkeypatch.setattr(indexer, "add", real_add)
        still = [d["url"] for d in db["articles"].find({"search_pending": {"$exists": True}})]
        assert still == [victim["url"]]
        assert (done.indexed, done.cleared) == (50, 49)
        assert found(repo, {"words": ["zzyzx"]}) == [victim["url"]]
        assert repo.catch_up().cleared == 1
        assert found(repo, {"words": ["zzyzx"]}) == [victim["url"]]
        assert db["articles"].count_documents({"search_pending": {"$exists": True}}) == 0
    finally:
        client.drop_database(db.name)


WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from pymongo import MongoClient, WriteConcern
from storage.mongo.articles import ArticleRepository
from tests.test_storage_search_index import corpus
uri, name, root, seed, start = sys.argv[1:6]
db = MongoClient(uri, tz_aware=True).get_database(name, write_concern=WriteConcern(w=1, j=True))
repo = ArticleRepository(db, search_dir=Path(root))
docs = corpus(300, seed=int(seed), start=int(start))
for i in range(0, len(docs), 25):
    repo.upsert_many(docs[i:i + 25], datetime.now(UTC))
    repo.catch_up(wait=0)
print(repo.catch_up(wait=60))
"""


def test_two_processes_writing_and_indexing_at_once(client: MongoClient[dict[str, Any]],
                                                    mongo_uri: str,  # noqa: F811
                                                    tmp_path: Path) -> None:
    db = fresh_db(client)
    root = tmp_path / "search"
    try:
        ArticleRepository(db, search_dir=root).ensure_indexes()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, mongo_uri, db.name, str(root),
                                   str(seed), str(start)], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for seed, start in ((5, 0), (6, 300))]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert db["articles"].count_documents({}) == 600
        assert db["articles"].count_documents({"search_pending": {"$exists": True}}) == 0
        repo = ArticleRepository(db, search_dir=root)
        path = SearchDir(root).current(repo.meta)
        assert path is not None
        docs = corpus(300, seed=5) + corpus(300, seed=6, start=300)
        for query in QUERIES[:9]:
            assert found(repo, query) == expected(docs, query), query
    finally:
        client.drop_database(db.name)


def _kill_when(proc: subprocess.Popen[str], root: Path, at_least: int) -> None:
    """SIGKILL *proc* once a build in *root* has recorded *at_least* articles."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for build in root.glob("index-*"):
            state = Progress.load(build)
            if state is not None and state.done >= at_least and not state.finished:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the build never got far enough to be interrupted")


BUILDER = """
import sys
from pathlib import Path
from pymongo import MongoClient
import storage.search.rebuild as rebuild
rebuild.CHUNK = 100
from storage.mongo.articles import ArticleRepository
from storage.mongo.client import open_database
uri, name, root = sys.argv[1:4]
if uri == "embedded":  # the data directory's own store, as the CLI opens it
    with open_database(None, Path(root).parent) as (_client, db):
        ArticleRepository(db, search_dir=Path(root)).ensure_indexes()
else:
    db = MongoClient(uri, tz_aware=True)[name]
    ArticleRepository(db, search_dir=Path(root)).ensure_indexes()
"""


def _interrupted_build(db: Database[dict[str, Any]], mongo_uri: str, root: Path) -> None:  # noqa: F811
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", BUILDER, mongo_uri, db.name, str(root)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _kill_when(proc, root, 500)


def test_reindex_killed_then_resumed(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`gzarchive search reindex` on the embedded store, after a build killed mid-way."""
    data = tmp_path / "data"
    root = data / "search"
    docs = corpus(3_000, seed=8)
    with open_database(None, data) as (_client, db):
        bulk_load(db, docs, mark=False)  # no marks, no index: the first start builds one
        _interrupted_build(db, "embedded", root)
        assert SearchDir(root).current_name() is None
        code = main(["search", "reindex", "--data-dir", str(data)])
        out = capsys.readouterr()
        assert code == 0, out
        assert "resuming" in out.err and "3,000 articles" in out.out
        repo = ArticleRepository(db, search_dir=root)
        path = SearchDir(root).current(repo.meta)
        assert path is not None
        assert open_index(path).searcher().num_docs == 3_000  # resumed, not duplicated
        for query in QUERIES:
            assert found(repo, query) == expected(docs, query), query


def test_migration_from_search_postings_killed_then_resumed(
        client: MongoClient[dict[str, Any]], mongo_uri: str, tmp_path: Path) -> None:  # noqa: F811
    db = fresh_db(client)
    root = tmp_path / "search"
    try:
        docs = corpus(3_000, seed=9)
        bulk_load(db, docs, mark=False)
        db["search_postings"].insert_many([{"_id": f"{d['url']}#0", "url": d["url"],
                                            "terms": ["贵州"]} for d in docs[:100]])
        _interrupted_build(db, mongo_uri, root)
        assert "search_postings" in db.list_collection_names()  # dropped only at the end
        repo = ArticleRepository(db, search_dir=root)
        for query in QUERIES[:4]:  # while it is unfinished: exact, by reading every article
            assert found(repo, query) == expected(docs, query), query
        repo.ensure_indexes()  # the next start resumes the build
        assert "search_postings" not in db.list_collection_names()
        assert SearchDir(root).current(repo.meta) is not None
        for query in QUERIES:
            assert found(repo, query) == expected(docs, query), query
    finally:
        client.drop_database(db.name)


def test_a_section_merge_is_searchable_at_once_and_a_304_marks_nothing(
        client: MongoClient[dict[str, Any]], tmp_path: Path) -> None:
    db = fresh_db(client)
    try:
        repo = ArticleRepository(db, search_dir=tmp_path / "search")
        repo.ensure_indexes()
        doc = {**corpus(1, seed=10)[0], "body": "Zzyzx 苗族", "sections": ["老外在贵州"]}
        repo.upsert_many([doc], NOW)
        repo.catch_up()
        marked = {"search_pending": {"$exists": True}}
        assert repo.touch(doc["url"], ["老外在贵州"], now=NOW) == 1  # a 304: nothing new
        assert db["articles"].count_documents(marked) == 0
        query = {"words": ["zzyzx"], "section": "Hi,贵州!"}
        assert found(repo, query) == []
        assert repo.touch(doc["url"], ["Hi,贵州!"], now=NOW) == 1  # a new section: marked
        assert db["articles"].count_documents(marked) == 1
        assert found(repo, query) == [doc["url"]]  # before the index knows it
        repo.catch_up()
        assert db["articles"].count_documents(marked) == 0
        assert found(repo, query) == [doc["url"]]  # from the index
    finally:
        client.drop_database(db.name)
