"""Where the search index lives, and which store it belongs to.

``DATA/search/`` (beside the embedded store; the same place when the store is a real
MongoDB given by MONGODB_URI) holds index directories ``index-<id>`` and a ``CURRENT``
file naming the live one (replaced atomically: a rebuild builds a new directory and
swaps it in at the end). The store records the name of its index in ``store_meta``
``{_id: "search", index: <name>}``: an index directory that is not the one its store
names (another database, a store rebuilt from scratch, a data directory copied from
elsewhere) is not used, and searches fall back to reading every article.

One writer per index directory (tantivy's lock file, held across processes): a process
that cannot take it skips (``writer(..., wait=0)``) or waits a bounded time.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy
from pymongo.collection import Collection

from storage.search.schema import SCHEMA

logger = logging.getLogger(__name__)

META_ID = "search"
CURRENT = "CURRENT"
#: Memory tantivy's writer buffers before it writes a segment (its minimum is 15 MB a
#: thread); one indexing thread: the crawl has the other core.
WRITER_HEAP = 64_000_000
WRITER_THREADS = 1


class IndexBusy(Exception):
    """Another process holds the index directory's writer lock."""


def registered(meta: Collection[dict[str, Any]]) -> str | None:
    """The name of the index the store says is its own (None: it has none yet)."""
    doc = meta.find_one({"_id": META_ID}, {"index": 1})
    name = doc.get("index") if doc else None
    return str(name) if name else None


def register(meta: Collection[dict[str, Any]], name: str) -> None:
    meta.update_one({"_id": META_ID}, {"$set": {"index": name}}, upsert=True)


@dataclass(frozen=True)
class SearchDir:
    """The ``DATA/search`` directory."""

    root: Path

    def current_name(self) -> str | None:
        try:
            name = (self.root / CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name if name and (self.root / name / "meta.json").exists() else None

    def current(self, meta: Collection[dict[str, Any]]) -> Path | None:
        """The live index directory, if it is the one the store names."""
        name = self.current_name()
        if name is None or name != registered(meta):
            return None
        return self.root / name

    def new_index(self) -> Path:
        path = self.root / f"index-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def publish(self, path: Path) -> None:
        """Make *path* the live index (atomic: a reader sees the old or the new name)."""
        tmp = self.root / f".{CURRENT}.{os.getpid()}"
        tmp.write_text(path.name + "\n", encoding="utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / CURRENT)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def others(self) -> list[Path]:
        """Index directories other than the live one (builds, superseded indexes)."""
        live = self.current_name()
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("index-*") if p.is_dir() and p.name != live)


def open_index(path: Path) -> tantivy.Index:
    """The index in *path* (created empty when the directory holds none)."""
    path.mkdir(parents=True, exist_ok=True)
    return tantivy.Index(SCHEMA, path=str(path), reuse=True)


def writer(index: tantivy.Index, wait: float = 0.0) -> tantivy.IndexWriter:
    """The index's writer; raises IndexBusy if another holds it after *wait* seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return index.writer(heap_size=WRITER_HEAP, num_threads=WRITER_THREADS)
        except ValueError as exc:
            if "LockBusy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise IndexBusy(str(exc).splitlines()[0]) from exc
        time.sleep(0.2)


def release(index_writer: tantivy.IndexWriter) -> None:
    """Let the writer's merges finish and drop its lock."""
    index_writer.wait_merging_threads()
