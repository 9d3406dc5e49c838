"""End to end: crawl the offline replica with `gzarchive crawl`, read MongoDB back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from tests.helpers import crawl, export
from tests.test_replica import _not_gb2312

pytestmark = pytest.mark.slow

FIELDS = ("title", "published_at", "source", "editor", "chief_editor", "sections", "body",
          "images", "near_duplicate_of")


def _by_url(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["url"]: row for row in rows}


@pytest.fixture(scope="module")
def first_crawl(replica: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("e2e")
    proc = crawl(replica.url, data)
    return {"data": data, "proc": proc, "export": export(data)}


def test_crawl_exits_zero_and_prints_summary(first_crawl: dict[str, Any]) -> None:
    proc = first_crawl["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "gzarchive crawl summary" in proc.stdout
    assert "老外在贵州" in proc.stdout and "Hi,贵州!" in proc.stdout


def test_every_article_matches_ground_truth(first_crawl: dict[str, Any], replica: Any) -> None:
    truth = _by_url(replica.ground_truth())
    got = _by_url(first_crawl["export"])
    assert sorted(got) == sorted(truth), (
        f"missing {sorted(set(truth) - set(got))[:5]}, extra {sorted(set(got) - set(truth))[:5]}")
    mismatches = []
    for url, expected in truth.items():
        for name in FIELDS:
            if got[url].get(name) != expected[name]:
                mismatches.append((url, name, got[url].get(name), expected[name]))
    assert not mismatches, mismatches[:3]


def test_ground_truth_covers_hard_cases(replica: Any) -> None:
    truth = replica.ground_truth()
    assert {t["template"] for t in truth} == {"new", "old"}
    assert any(t["pages"] > 1 for t in truth)
    assert any(len(t["sections"]) == 2 for t in truth)
    assert any(_not_gb2312(t["title"] + (t["editor"] or "")) for t in truth)


def test_exported_article_shape(first_crawl: dict[str, Any]) -> None:
    for article in first_crawl["export"]:
        assert article["published_at"].endswith("+08:00")
        assert article["url"] in article["urls"]
        assert article["content_hash"]
        assert article["first_seen"] and article["last_seen"]
        assert "国际在线版权与信息产品内容销售的声明" not in article["body"]
        assert "摄影" not in article["body"]


def test_second_crawl_updates_rather_than_duplicates(first_crawl: dict[str, Any],
                                                     replica: Any) -> None:
    data: Path = first_crawl["data"]
    proc = crawl(replica.url, data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = export(data)
    assert len(again) == len(first_crawl["export"])
    assert len({a["url"] for a in again}) == len(again)
    assert "0 new" in proc.stdout


def test_external_mongodb_uri(replica: Any, mongo_uri: str, tmp_path: Path) -> None:
    dbname = f"e2e_ext_{tmp_path.name}"
    proc = crawl(replica.url, tmp_path, "--max-articles", "5", "--set",
                 f"MONGODB_DATABASE={dbname}", mongodb_uri=mongo_uri)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    try:
        docs = list(client[dbname]["articles"].find({}))
        client.drop_database(dbname)
    finally:
        client.close()
    assert len(docs) >= 5
    assert all(doc["title"] and doc["body"] for doc in docs)
    assert not (tmp_path / "db").exists() or not any((tmp_path / "db").iterdir())


def test_unreachable_portal_exits_with_clear_message(tmp_path: Path) -> None:
    # Nothing listens there: retrying only adds RETRY_BACKOFF_* pauses to the same answer.
    proc = crawl("http://127.0.0.1:9", tmp_path, "--set", "RETRY_TIMES=0")
    assert proc.returncode == 3
    assert "portal unreachable" in proc.stderr


def test_unknown_section_exits_with_clear_message(replica: Any, tmp_path: Path) -> None:
    proc = crawl(replica.url, tmp_path, "不存在的栏目")
    assert proc.returncode == 4
    assert "not found in the navigation" in proc.stderr
