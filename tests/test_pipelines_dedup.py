"""NearDuplicatePipeline built with get_crawler against a SecantusDB server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import opencc
import pytest
from pymongo import MongoClient
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from crawler.items import ArticleItem, SectionLinkItem
from pipelines.dedup import NearDuplicatePipeline
from tests.test_storage_neardup import make_story, republish

_counter = iter(range(10_000))


@pytest.fixture
def settings(mongo_uri: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    name = f"dedup_test_{next(_counter)}"
    yield {"MONGODB_URI": mongo_uri, "DATA_DIR": str(tmp_path), "MONGODB_DATABASE": name}
    client: MongoClient[Any] = MongoClient(mongo_uri)
    client.drop_database(name)
    client.close()


def build(settings: dict[str, Any]) -> NearDuplicatePipeline:
    crawler = get_crawler(settings_dict=settings)
    pipeline = NearDuplicatePipeline.from_crawler(crawler)
    return pipeline


T0 = datetime(2025, 7, 6, 8, 0, tzinfo=UTC)


def article(n: int, title: str, body: list[str], published: datetime | None) -> ArticleItem:
    return ArticleItem(url=f"https://gz.cri.cn/n/20250706/{n:04d}.html", title=title,
                       body="\n".join(body), published_at=published, near_duplicate_of=None)


def run(pipeline: NearDuplicatePipeline, *items: Any) -> list[Any]:
    async def go() -> list[Any]:
        return [await pipeline.process_item(item) for item in items]
    return asyncio.run(go())


def stats(pipeline: NearDuplicatePipeline) -> dict[str, Any]:
    assert pipeline.crawler.stats is not None
    return pipeline.crawler.stats.get_stats()


def test_disabled_raises_not_configured(settings: dict[str, Any]) -> None:
    with pytest.raises(NotConfigured):
        build({**settings, "DEDUP_ENABLED": False})


def test_bad_threshold_rejected_at_start(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="DEDUP_THRESHOLD"):
        build({**settings, "DEDUP_THRESHOLD": 1.5})


def test_settings_read(settings: dict[str, Any]) -> None:
    pipeline = build({**settings, "DEDUP_THRESHOLD": 0.6, "DEDUP_NUM_PERM": 64})
    pipeline.open_spider()
    try:
        assert pipeline.index is not None
        assert (pipeline.index.threshold, pipeline.index.num_perm) == (0.6, 64)
    finally:
        pipeline.close_spider()


def test_republished_story_points_to_first_version(settings: dict[str, Any]) -> None:
    title, body = make_story(1)
    first = article(1, title, body, T0)
    again = article(2, *republish(title, body, 1, suffix="（更新）", change=1),
                    T0 + timedelta(days=1))
    other = article(3, *make_story(2), T0 + timedelta(days=1))
    pipeline = build(settings)
    pipeline.open_spider()
    try:
        out = run(pipeline, first, again, other)
    finally:
        pipeline.close_spider()
    assert [item["near_duplicate_of"] for item in out] == [None, first["url"], None]
    assert stats(pipeline)["dedup/checked"] == 3
    assert stats(pipeline)["dedup/near_duplicates"] == 1


def test_index_persists_across_runs_and_traditional_twin_matches(
        settings: dict[str, Any]) -> None:
    title, body = make_story(3)
    pipeline = build(settings)
    pipeline.open_spider()
    try:
        run(pipeline, article(10, title, body, T0))
    finally:
        pipeline.close_spider()
    # next run: the traditional-script text of a republication (as the gateway
    # serves it) folds to the same simplified text
    trad = opencc.OpenCC("s2t")
    title2, body2 = republish(title, body, 3, suffix="（更新）")
    later = article(11, trad.convert(title2), [trad.convert(p) for p in body2],
                    T0 + timedelta(days=1))
    pipeline = build(settings)
    pipeline.open_spider()
    try:
        (out,) = run(pipeline, later)
    finally:
        pipeline.close_spider()
    assert out["near_duplicate_of"] == "https://gz.cri.cn/n/20250706/0010.html"


def test_recrawl_of_same_url_and_other_items_pass(settings: dict[str, Any]) -> None:
    title, body = make_story(4)
    link = SectionLinkItem(url="https://gz.cri.cn/n/x.html")
    pipeline = build(settings)
    pipeline.open_spider()
    try:
        out = run(pipeline, article(20, title, body, T0), article(20, title, body, T0), link)
    finally:
        pipeline.close_spider()
    assert out[0]["near_duplicate_of"] is None and out[1]["near_duplicate_of"] is None
    assert out[2] is link and "near_duplicate_of" not in out[2].fields
    assert stats(pipeline).get("dedup/near_duplicates", 0) == 0
    assert stats(pipeline)["dedup/checked"] == 2


def test_concurrent_copies_of_one_story(settings: dict[str, Any]) -> None:
    title, body = make_story(5)
    items = [article(30 + i, title + ("（更新）" if i else ""), body, T0 + timedelta(hours=i))
             for i in range(4)]
    pipeline = build(settings)
    pipeline.open_spider()

    async def go() -> list[Any]:
        return list(await asyncio.gather(*(pipeline.process_item(i) for i in items)))
    try:
        out = asyncio.run(go())
    finally:
        pipeline.close_spider()
    originals = [item["near_duplicate_of"] for item in out]
    assert originals.count(None) == 1
    assert len({o for o in originals if o}) == 1


def test_embedded_store_when_no_uri(tmp_path: Path) -> None:
    pipeline = build({"MONGODB_URI": "", "DATA_DIR": str(tmp_path)})
    pipeline.open_spider()
    try:
        assert pipeline.index is not None
        (out,) = run(pipeline, article(40, *make_story(6), T0))
        assert out["near_duplicate_of"] is None
    finally:
        pipeline.close_spider()


def test_unreachable_store_passes_items_unchecked(tmp_path: Path) -> None:
    pipeline = build({"MONGODB_URI": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300",
                      "DATA_DIR": str(tmp_path)})
    pipeline.open_spider()
    try:
        (out,) = run(pipeline, article(50, *make_story(7), T0))
    finally:
        pipeline.close_spider()
    assert out["near_duplicate_of"] is None
    assert stats(pipeline)["dedup/errors/unavailable"] == 1


@pytest.mark.parametrize("dates", ["equal", "second_earlier"])
def test_two_workers_with_twins_at_once(settings: dict[str, Any], dates: str) -> None:
    """Two pipelines (two crawl processes) on one database get twin copies at the
    same moment: one copy is the original, the other points to it, directly or by
    the relink the store pipeline applies (near_duplicates_found)."""
    title, body = make_story(8)
    second = T0 if dates == "equal" else T0 - timedelta(hours=1)
    items = [article(60, title, body, T0),
             article(61, *republish(title, body, 8, suffix="（更新）"), second)]
    pipelines = [build(settings), build(settings)]
    for pipeline in pipelines:
        pipeline.open_spider()

    async def go() -> list[Any]:
        return list(await asyncio.gather(*(p.process_item(i) for p, i in
                                           zip(pipelines, items, strict=True))))
    try:
        out = asyncio.run(go())
    finally:
        for pipeline in pipelines:
            pipeline.close_spider()
    stored = {item["url"]: item["near_duplicate_of"] for item in out}
    for item in out:
        for later in item.get("near_duplicates_found") or ():
            stored[later] = item["url"]
    originals = [u for u, o in stored.items() if o is None]
    assert len(originals) == 1
    assert set(stored.values()) == {None, originals[0]}
    if dates == "second_earlier":
        assert originals == [items[1]["url"]]
