"""RunRepository: one ``crawl_runs`` document per crawl (settings, counts, outcome)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.collection import Collection
from pymongo.database import Database


def _bson_safe(value: Any) -> Any:
    """Settings as BSON: keys without '.'/'$' (escaped to full-width), unknown types as str."""
    if isinstance(value, Mapping):
        return {str(k).replace(".", "\uff0e").replace("$", "\uff04"): _bson_safe(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_bson_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool, datetime)):
        return value
    if isinstance(value, PurePath):
        return str(value)
    return repr(value) if not isinstance(value, type) else f"{value.__module__}.{value.__name__}"


class RunRepository:
    """Crawl runs: ``start()`` when a crawl begins, ``finish()`` when it ends; or one
    ``document()`` saved (or spooled, see storage.mongo.ops) when it has ended."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.runs: Collection[dict[str, Any]] = db["crawl_runs"]

    def ensure_indexes(self) -> None:
        self.runs.create_index([("started_at", DESCENDING)], name="started_at")

    def start(self, settings: Mapping[str, Any], now: datetime | None = None) -> str:
        """Record a run that has begun; returns its id (a string)."""
        doc = {"started_at": now or datetime.now(UTC), "finished_at": None,
               "status": "running", "settings": _bson_safe(settings), "counts": {},
               "errors": {}, "exit_status": None, "host": socket.gethostname(),
               "pid": os.getpid()}
        return str(self.runs.insert_one(doc).inserted_id)

    def finish(self, run_id: str, counts: Mapping[str, Any], errors: Mapping[str, Any],
               exit_status: int, now: datetime | None = None) -> None:
        """Close a run with its counts, errors by kind and exit status."""
        self.runs.update_one({"_id": ObjectId(run_id)}, {"$set": {
            "finished_at": now or datetime.now(UTC),
            "status": "finished" if exit_status == 0 else "failed",
            "counts": _bson_safe(counts), "errors": _bson_safe(errors),
            "exit_status": exit_status}})

    @staticmethod
    def document(settings: Mapping[str, Any], started_at: datetime, counts: Mapping[str, Any],
                 errors: Mapping[str, Any], exit_status: int,
                 finished_at: datetime | None = None) -> dict[str, Any]:
        """A finished run's whole document, its ``_id`` made here: saving it is idempotent,
        so it can be spooled when the store is down and replayed by the next run."""
        return {"_id": ObjectId(), "started_at": started_at,
                "finished_at": finished_at or datetime.now(UTC),
                "status": "finished" if exit_status == 0 else "failed",
                "settings": _bson_safe(settings), "counts": _bson_safe(counts),
                "errors": _bson_safe(errors), "exit_status": exit_status,
                "host": socket.gethostname(), "pid": os.getpid()}

    def save(self, doc: Mapping[str, Any]) -> None:
        """Write a run document by its ``_id`` (a replay of the same one changes nothing)."""
        self.runs.replace_one({"_id": doc["_id"]}, dict(doc), upsert=True)

    def last(self, n: int = 10) -> list[dict[str, Any]]:
        """The ``n`` most recent runs, newest first (``_id`` as a string ``id``)."""
        out = []
        for doc in self.runs.find().sort("started_at", DESCENDING).limit(n):
            doc["id"] = str(doc.pop("_id"))
            out.append(doc)
        return out
