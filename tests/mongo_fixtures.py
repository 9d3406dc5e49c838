"""MongoDB fixtures: the server of MONGODB_URI when set, else a session SecantusDB.

Use from a conftest or a test module: ``from tests.mongo_fixtures import mongo_db, mongo_uri``
(or ``pytest_plugins = ["tests.mongo_fixtures"]`` in the top conftest.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient, WriteConcern
from pymongo.database import Database


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of the MongoDB the tests use (MONGODB_URI, else an in-process SecantusDB)."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    from secantus import SecantusDBServer

    server = SecantusDBServer(storage_path=str(tmp_path_factory.mktemp("secantus")),
                              sync_on_commit=True, replica_set_name=None)
    server.start()
    try:
        yield f"{server.uri}?directConnection=true"
    finally:
        server.stop()


@pytest.fixture
def mongo_client(mongo_uri: str) -> Iterator[MongoClient[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(
        mongo_uri, w=1, journal=True, tz_aware=True, serverSelectionTimeoutMS=5000)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def mongo_db(mongo_client: MongoClient[dict[str, Any]]) -> Iterator[Database[dict[str, Any]]]:
    """A fresh, uniquely named database, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    db = mongo_client.get_database(name, write_concern=WriteConcern(w=1, j=True))
    try:
        yield db
    finally:
        mongo_client.drop_database(name)
