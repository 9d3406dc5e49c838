"""MongoDB fixtures: the server of MONGODB_URI when set, else a session SecantusDB.

Use from a conftest or a test module: ``from tests.mongo_fixtures import mongo_db, mongo_uri``
(or ``pytest_plugins = ["tests.mongo_fixtures"]`` in the top conftest.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from pipelines.store import StoreConfig
from storage.mongo.client import open_database
from storage.mongo.server import default_cache_size, production_server
from tests.helpers import project_settings

__all__ = ["mongo_client", "mongo_db", "mongo_uri", "store_config", "store_server"]


def store_server(path: str, port: int = 0) -> Any:
    """A SecantusDB server on *path* exactly as the embedded store runs it
    (storage.mongo.server.production_server: synced commits, no test commands, the
    production cache rule), not started. *port* other than 0 lets a test stop and
    restart it where its clients reconnect (production always takes a free port)."""
    server = production_server(path, default_cache_size())
    server.port = port  # read by start(); SecantusDBServer's own constructor argument
    return server


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of the MongoDB the tests use (MONGODB_URI, else an in-process SecantusDB
    built as storage.mongo.server runs the embedded store)."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    # The server as the embedded store runs it (every commit synced, no test
    # commands, the production cache rule): no test here needs a test command.
    server = store_server(str(tmp_path_factory.mktemp("secantus")))
    server.start()
    try:
        yield f"{server.uri}?directConnection=true"
    finally:
        server.stop()


def store_config(mongo_uri: str, **overrides: Any) -> StoreConfig:
    """The store pipeline's MONGODB_* settings at the project's values for *mongo_uri*
    (its write concern: MONGODB_WRITE_CONCERN, else the URI's, else journaled w=1)."""
    return StoreConfig.from_settings(project_settings(MONGODB_URI=mongo_uri, **overrides))


@pytest.fixture
def mongo_client(mongo_uri: str, tmp_path: Path) -> Iterator[MongoClient[dict[str, Any]]]:
    """A client opened as the store pipeline opens it, at the project's write concern."""
    config = store_config(mongo_uri)
    with open_database(mongo_uri, tmp_path, write_concern=config.write_concern) as (client, _db):
        yield client


@pytest.fixture
def mongo_db(mongo_client: MongoClient[dict[str, Any]]) -> Iterator[Database[dict[str, Any]]]:
    """A fresh, uniquely named database (at the client's write concern), dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    db = mongo_client.get_database(name)
    try:
        yield db
    finally:
        mongo_client.drop_database(name)
