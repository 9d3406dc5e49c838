"""Search and listing by publication-date windows: same rows as a full sort, any filters.

The oracle is a plain Python sort of every stored article with the words checked as
substrings of the simplified text; the store is searched through postings and windows.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymongo import ASCENDING, MongoClient, WriteConcern
from pymongo.database import Database

from storage.mongo.articles import ArticleRepository
from storage.mongo.terms import terms_for, to_simplified
from storage.mongo.timeline import Timeline, Windows
from tests.mongo_fixtures import mongo_client, mongo_db, mongo_uri  # noqa: F401

T0 = datetime(2016, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
COMMON, MEDIUM, RARE = "贵州", "苗族", "蜡染"
SECTIONS = ["老外在贵州", "Hi,贵州!"]
FILLER = "山水之间人们生活安宁游客来往络绎不绝城市发展迅速乡村振兴稳步推进"
_T2S = opencc.OpenCC("s2t")


# -- windows: a pure property ------------------------------------------------------
def _in(cond: dict[str, Any] | None, value: datetime | None) -> bool:
    if cond is None:
        return value is None
    if value is None:
        return False
    return ("$gte" not in cond or value >= cond["$gte"]) and ("$lt" not in cond or value < cond["$lt"])


dates = st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2040, 1, 1),
                     timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), dates), max_size=30),
       newest=st.one_of(st.none(), dates), oldest=st.one_of(st.none(), dates),
       count=st.integers(0, 10**6), since=st.one_of(st.none(), dates),
       until=st.one_of(st.none(), dates), newest_first=st.booleans(),
       weight=st.integers(0, 5000))
def test_windows_tile_the_range_exactly_once(values: list[datetime | None],
                                             newest: datetime | None,
                                             oldest: datetime | None, count: int,
                                             since: datetime | None,
                                             until: datetime | None, newest_first: bool,
                                             weight: int) -> None:
    """Whatever the (possibly stale) timeline: each date in [since, until) falls in
    exactly one window, in order; nothing outside does. Each value stands for *weight*
    articles at that instant (a dense burst shrinks the windows, empty ones regrow)."""
    windows = Windows(Timeline(newest, oldest, count), since, until,
                      newest_first=newest_first, target=100, now=NOW)
    conds = []
    for cond in windows:
        conds.append(cond)
        windows.observed(weight * sum(_in(cond, v) for v in values))
        assert len(conds) < 5_000
    for value in values:
        wanted = (value is None and since is None and until is None) or (
            value is not None and (since is None or value >= since)
            and (until is None or value < until))
        hits = [i for i, cond in enumerate(conds) if _in(cond, value)]
        assert len(hits) == (1 if wanted else 0), (value, conds)
    dated = [c for c in conds if c is not None]
    for a, b in zip(dated, dated[1:], strict=False):  # consecutive, ordered, no overlap
        if newest_first:
            assert a.get("$gte") == b.get("$lt")
        else:
            assert a.get("$lt") == b.get("$gte")


# -- the store ---------------------------------------------------------------------
def _corpus(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        words = [FILLER[rng.randrange(len(FILLER) - 6):][:6] for _ in range(4)]
        if rng.random() < 0.8:
            words.append(COMMON)
        if rng.random() < 0.2:
            words.append(MEDIUM)
        if rng.random() < 0.03:
            words.append(RARE)
        if rng.random() < 0.1:
            words.append("Guizhou")
        rng.shuffle(words)
        body = "，".join(words) + "。"
        if rng.random() < 0.3:  # some articles are stored in traditional script
            body = _T2S.convert(body)
        published = None if rng.random() < 0.03 else T0 + timedelta(
            minutes=rng.randrange(10 * 365 * 24 * 60))
        url = f"https://gz.cri.cn/n/{i:05d}.html"
        docs.append({
            "url": url, "urls": [url], "title": f"第{i}篇", "body": body,
            "published_at": published, "sections": rng.sample(SECTIONS, rng.choice((1, 1, 2))),
            "near_duplicate_of": "https://gz.cri.cn/n/00000.html" if rng.random() < 0.1 else None,
            "content_hash": f"h{i}", "images": [],
        })
    return docs


def _oracle(docs: list[dict[str, Any]], words: list[str], section: str | None = None,
            since: datetime | None = None, until: datetime | None = None,
            include_near_duplicates: bool = True, newest_first: bool = True,
            limit: int | None = None) -> list[str]:
    keep = []
    for d in docs:
        text = to_simplified(f"{d['title']}\n{d['body']}").lower()
        if not all(to_simplified(w).lower() in text for w in words):
            continue
        if section and section not in d["sections"]:
            continue
        if not include_near_duplicates and d["near_duplicate_of"]:
            continue
        p = d["published_at"]
        if (since or until) and p is None:
            continue
        if (since and p < since) or (until and p >= until):
            continue
        keep.append(d)
    stamp = [(-1 if newest_first else 1) * (d["published_at"].timestamp() if d["published_at"]
                                            else float("-inf")) for d in keep]
    order = sorted(range(len(keep)), key=lambda i: (stamp[i], keep[i]["url"]))
    urls = [keep[i]["url"] for i in order]
    return urls[:limit] if limit else urls


@pytest.fixture(scope="module", params=["index", "no-index"])
def store(mongo_uri: str, request: pytest.FixtureRequest,  # noqa: F811
          tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[tuple[ArticleRepository, list[dict[str, Any]]]]:
    """400 articles; "index": searched through the search index (half of them caught
    up, half still pending), "no-index": a repository without a search directory."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    name = f"test_search_{uuid.uuid4().hex[:8]}"
    search_dir = tmp_path_factory.mktemp("search") if request.param == "index" else None
    repo = ArticleRepository(client.get_database(name, write_concern=WriteConcern(w=1, j=True)),
                             search_dir=search_dir)
    repo.ensure_indexes()
    docs = _corpus(400, seed=7)
    for i in range(0, len(docs), 50):
        repo.upsert_many(docs[i:i + 50], NOW)
        if i == 150 and search_dir is not None:
            assert repo.catch_up().indexed == 200
    try:
        yield repo, docs
    finally:
        client.drop_database(name)
        client.close()


QUERIES: list[dict[str, Any]] = [
    {"words": [COMMON]},
    {"words": [COMMON], "limit": 20},
    {"words": ["貴州"], "limit": 5},
    {"words": [COMMON, RARE], "limit": 20},
    {"words": [RARE, COMMON]},
    {"words": [MEDIUM, "蠟染"]},
    {"words": [MEDIUM], "limit": 7, "newest_first": False},
    {"words": [COMMON, MEDIUM], "section": "Hi,贵州!", "limit": 15},
    {"words": [COMMON], "include_near_duplicates": False, "limit": 30},
    {"words": [COMMON], "since": datetime(2020, 1, 1, tzinfo=UTC),
     "until": datetime(2021, 6, 1, tzinfo=UTC)},
    {"words": ["guizhou"], "limit": 10},
    {"words": ["水", "之间"], "limit": 10},   # a lone character is checked on the text
    {"words": ["乡"], "limit": 10},           # nothing indexable at all
    {"words": ["不存在的词"]},
    {"words": []},
    {"words": [], "limit": 25},
    {"words": [], "section": "老外在贵州", "limit": 25, "newest_first": False},
    {"words": [], "until": datetime(2018, 1, 1, tzinfo=UTC), "limit": 10},
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q)[:70])
def test_find_equals_a_full_sort(store: tuple[ArticleRepository, list[dict[str, Any]]],
                                 query: dict[str, Any]) -> None:
    repo, docs = store
    kw = {k: v for k, v in query.items() if k != "words"}
    got = [d["url"] for d in repo.find(search=query["words"] or None, **kw)]
    assert got == _oracle(docs, query["words"], **kw)
    if not kw.get("limit"):
        assert len(got) > 0 or query["words"] == ["不存在的词"]


def test_revised_article_is_searched_on_its_new_text(mongo_db: Database[dict[str, Any]],  # noqa: F811
                                                     tmp_path: Path) -> None:
    repo = ArticleRepository(mongo_db, search_dir=tmp_path / "search")
    repo.ensure_indexes()
    url = "https://gz.cri.cn/n/1.html"
    doc = {"url": url, "title": "旧标题", "body": "黄果树瀑布", "content_hash": "a",
           "published_at": T0, "sections": ["老外在贵州"]}
    repo.upsert_many([doc], NOW)
    assert [d["url"] for d in repo.find(search="瀑布")] == [url]
    repo.upsert_many([{**doc, "body": "梵净山云海", "content_hash": "b"}], NOW)
    assert list(repo.find(search="瀑布")) == []
    assert [d["url"] for d in repo.find(search="梵淨山")] == [url]
    assert repo.catch_up().indexed == 1  # the index now holds the new text only
    assert list(repo.find(search="瀑布")) == []
    assert [d["url"] for d in repo.find(search="梵淨山")] == [url]
    assert mongo_db["articles"].count_documents({"search_pending": {"$exists": True}}) == 0


def test_legacy_store_is_migrated(mongo_db: Database[dict[str, Any]]) -> None:  # noqa: F811
    """A store of the first schema (search_terms on the articles) is searchable after
    ensure_indexes, and its old field and indexes are gone."""
    old = mongo_db["articles"]
    old.create_index([("search_terms", ASCENDING)], name="search_terms")
    old.create_index([("dedup_keys", ASCENDING)], name="dedup_keys")
    for i, body in enumerate(["老外在贵州过春节", "黄果树瀑布", "貴州苗族蠟染"]):
        old.insert_one({"url": f"https://gz.cri.cn/n/{i}.html", "title": f"t{i}", "body": body,
                        "published_at": T0 + timedelta(days=i), "sections": ["老外在贵州"],
                        "search_terms": terms_for(body), "content_hash": f"h{i}"})
    repo = ArticleRepository(mongo_db)
    repo.ensure_indexes()
    assert not {"search_terms", "dedup_keys"} & set(old.index_information())
    assert old.count_documents({"search_terms": {"$exists": True}}) == 0
    assert [d["url"][-6:] for d in repo.find(search="贵州")] == ["2.html", "0.html"]
    assert [d["url"][-6:] for d in repo.find(limit=1)] == ["2.html"]
    assert Timeline.load(repo.meta).count == 3
    repo.ensure_indexes()  # idempotent
    assert [d["url"][-6:] for d in repo.find(search="蜡染")] == ["2.html"]
