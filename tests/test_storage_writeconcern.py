"""The write concern users ask for (MONGODB_URI options, MONGODB_WRITE_CONCERN) is the one
the server receives; journaled w=1 only when none is given; a write the server cannot
acknowledge at that concern is retried, then spooled, never taken as written."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from pymongo import WriteConcern, monitoring
from scrapy.settings import Settings

from pipelines.store import MongoStorePipeline, StoreConfig
from storage.mongo import writeconcern
from storage.mongo.articles import ArticleRepository
from storage.mongo.client import open_database
from storage.mongo.errors import BadWriteConcern
from storage.mongo.ops import Op
from storage.mongo.spool import Spool
from storage.mongo.writer import BatchWriter
from tests.helpers import project_crawler
from tests.mongo_fixtures import mongo_uri  # noqa: F401
from tests.test_storage_mongo import article


class WriteCommands(monitoring.CommandListener):
    """The ``writeConcern`` of every write command the client sends."""

    WRITES = ("insert", "update", "delete")

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in self.WRITES:
            with self._lock:
                self.seen.append((event.command_name, event.command.get("writeConcern")))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def concerns(self, *names: str) -> list[Any]:
        return [wc for name, wc in self.seen if name in (names or self.WRITES)]


def _with_options(uri: str, options: str) -> str:
    base, _, query = uri.partition("?")
    if "/" not in base.split("://", 1)[1]:
        base += "/"
    return f"{base}?{'&'.join(p for p in (query, options) if p)}"


def _store_some(uri: str, tmp_path: Path, concern: str | None = None,
                ) -> tuple[dict[str, Any], dict[str, Any], WriteCommands]:
    """Upsert, touch and relink articles through the writer; what the server was sent."""
    listener = WriteCommands()
    with open_database(uri, tmp_path, db_name="wc_test", write_concern=concern,
                       event_listeners=[listener]) as (client, db):
        try:
            repo = ArticleRepository(db)
            repo.ensure_indexes()
            writer = BatchWriter(repo, Spool(tmp_path / "spool.jsonl"), batch_size=10)
            writer.add(article(1))
            writer.add(article(2))
            writer.add(Op.touch(article(1)["url"], ["Hi,贵州!"]))
            writer.add(Op.relink(article(2)["url"], article(1)["url"]))
            report = writer.flush()
            assert len(report.written) == 4 and not report.spooled
            return client.write_concern.document, db.write_concern.document, listener
        finally:
            client.drop_database("wc_test")


@pytest.mark.parametrize(("options", "expected"), [
    ("w=majority", {"w": "majority"}),
    ("w=1&journal=false", {"w": 1, "j": False}),
    ("w=majority&wtimeoutMS=4000", {"w": "majority", "wtimeout": 4000}),
])
def test_write_concern_of_the_uri_reaches_the_server(mongo_uri: str, tmp_path: Path,  # noqa: F811
                                                     options: str,
                                                     expected: dict[str, Any]) -> None:
    client_wc, db_wc, listener = _store_some(_with_options(mongo_uri, options), tmp_path)
    assert client_wc == db_wc == expected
    concerns = listener.concerns("insert", "update")
    assert listener.concerns("update") and listener.concerns("insert")
    assert all(wc == expected for wc in concerns), concerns


def test_default_is_journaled_w1(mongo_uri: str, tmp_path: Path) -> None:  # noqa: F811
    if writeconcern.from_uri(mongo_uri) is not None:
        pytest.skip("MONGODB_URI carries its own write concern")
    client_wc, db_wc, listener = _store_some(mongo_uri, tmp_path)
    assert client_wc == db_wc == {"w": 1, "j": True}
    assert listener.concerns() and all(wc == {"w": 1, "j": True}
                                       for wc in listener.concerns())


def test_setting_gives_the_write_concern(mongo_uri: str, tmp_path: Path) -> None:  # noqa: F811
    if writeconcern.from_uri(mongo_uri) is not None:
        pytest.skip("MONGODB_URI carries its own write concern")
    client_wc, db_wc, listener = _store_some(mongo_uri, tmp_path, "w=majority,j=true")
    assert client_wc == db_wc == {"w": "majority", "j": True}
    assert all(wc == {"w": "majority", "j": True} for wc in listener.concerns())


def test_write_concern_error_is_retried_then_spooled(mongo_uri: str,  # noqa: F811
                                                     tmp_path: Path) -> None:
    # w=5: no test server has five data-bearing members, so the server acknowledges
    # nothing at that concern (UnsatisfiableWriteConcern, or a wtimeout).
    sleeps: list[float] = []
    spool = Spool(tmp_path / "spool.jsonl")
    with open_database(_with_options(mongo_uri, "w=5&wtimeoutMS=300"), tmp_path,
                       db_name="wc_test") as (client, db):
        try:
            writer = BatchWriter(ArticleRepository(db), spool, batch_size=10, retries=2,
                                 backoff=0.01, sleep=sleeps.append)
            writer.add(article(1))
            writer.add(Op.touch(article(1)["url"], ["Hi,贵州!"]))
            report = writer.flush()
        finally:  # at a concern the server can satisfy
            client.get_database("wc_test", write_concern=WriteConcern(w=1)).command(
                "dropDatabase")
    assert len(sleeps) == 2  # retried before it gave up
    assert not report.written and [op.kind for op in report.spooled] == ["upsert", "touch"]
    assert [op.kind for op in spool.read()] == ["upsert", "touch"]


@pytest.mark.parametrize("value", ["w=0", "0", "x=1", "j=maybe", "wtimeout=soon", ","])
def test_bad_setting_is_a_one_line_config_error(value: str) -> None:
    crawler = project_crawler(MONGODB_WRITE_CONCERN=value)
    with pytest.raises(ValueError) as info:
        MongoStorePipeline.from_crawler(crawler)
    assert isinstance(info.value, BadWriteConcern)
    assert "MONGODB_WRITE_CONCERN" in str(info.value) and "\n" not in str(info.value)


def test_setting_and_uri_must_agree() -> None:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("MONGODB_URI", "mongodb://db.example:27017/?w=majority")
    settings.set("MONGODB_WRITE_CONCERN", "w=majority")
    assert StoreConfig.from_settings(settings).write_concern.document == {"w": "majority"}
    settings.set("MONGODB_WRITE_CONCERN", "2")
    with pytest.raises(BadWriteConcern, match="contradicts"):
        StoreConfig.from_settings(settings)
    settings.set("MONGODB_URI", "mongodb://db.example:27017/?w=0")
    settings.set("MONGODB_WRITE_CONCERN", "")
    with pytest.raises(BadWriteConcern, match="unacknowledged"):
        StoreConfig.from_settings(settings)


def test_project_default_settings_give_journaled_w1() -> None:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    assert StoreConfig.from_settings(settings).write_concern.document == {"w": 1, "j": True}
