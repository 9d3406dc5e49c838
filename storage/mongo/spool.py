"""Spool: a journal of store operations that could not be written, replayed in order.

One line per operation (storage.mongo.ops.Op), in MongoDB Extended JSON (canonical
``bson.json_util``, so datetimes and ObjectIds come back as they were)::

    {"kind": "upsert", "now": {"$date": ...}, "payload": {"doc": {<article>}}}
    {"kind": "touch",  "now": ..., "payload": {"url", "sections", "urls", "unchanged"}}
    {"kind": "relink", "now": ..., "payload": {"url", "original"}}
    {"kind": "run",    "now": ..., "payload": {"doc": {<crawl_runs document with _id>}}}

Lines of the first format, ``{"now", "doc"}`` (articles only), replay as upserts.
Every append is fsynced before it returns (a new file's directory too). ``replay()``
applies the operations in the order they were appended, consecutive upserts of one
instant as one batch, then replaces the file atomically by what is left: operations the
server refused, and everything from the first one a connection error stopped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from bson import json_util
from bson.json_util import JSONMode, JSONOptions
from filelock import FileLock
from pymongo.errors import PyMongoError

from storage.mongo.articles import ArticleRepository, UpsertResult
from storage.mongo.errors import SpoolError
from storage.mongo.ops import Applier, Op, groups

logger = logging.getLogger(__name__)

_WRITE = JSONOptions(json_mode=JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)
_READ = JSONOptions(tz_aware=True, tzinfo=UTC)


def spool_path(data_dir: Path | str) -> Path:
    """Where a data directory's spool lives (the name kept from the articles-only spool)."""
    return Path(data_dir) / "spool" / "articles.jsonl"


@dataclass
class Replayed:
    """What a replay wrote."""

    written: int = 0                      # operations applied
    refused: int = 0                      # left in the spool: the server refused them
    result: UpsertResult = field(default_factory=UpsertResult)  # the article upserts
    by_kind: dict[str, int] = field(default_factory=dict)
    missing: list[Op] = field(default_factory=list)  # touches/relinks that matched nothing


class Spool:
    """An append-only journal of operations waiting for the database (safe across
    processes: a file lock serialises appends and replays)."""

    def __init__(self, path: Path | str, replay_batch: int = 100) -> None:
        self.path = Path(path)
        self.replay_batch = replay_batch
        self._lock = FileLock(str(self.path) + ".lock")

    def append(self, ops: Iterable[Op]) -> int:
        """Journal *ops*; durable when this returns. Returns how many.

        Raises SpoolError (with the path and the OS error) when the file cannot be written.
        """
        lines = [_dumps(op.entry()) for op in ops]
        if not lines:
            return 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                created = not self.path.exists()
                torn = not created and not _ends_with_newline(self.path)
                with open(self.path, "ab") as f:
                    if torn:
                        f.write(b"\n")  # after a torn line: never glue a good one to it
                    f.write("".join(lines).encode("utf-8"))
                    f.flush()
                    os.fsync(f.fileno())
                if created:
                    _fsync_dir(self.path.parent)
        except OSError as exc:
            raise SpoolError(f"cannot append to spool {self.path}: {exc}") from exc
        return len(lines)

    def read(self) -> list[Op]:
        """The journaled operations, oldest first (a torn last line is skipped)."""
        if not self.path.exists():
            return []
        ops = []
        with open(self.path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    ops.append(Op.from_entry(json_util.loads(line, json_options=_READ)))
                except (ValueError, KeyError, TypeError):
                    # A torn line from a crash mid-append (never acknowledged).
                    logger.warning("spool %s line %d unreadable, skipped", self.path, number)
        return ops

    def count(self) -> int:
        """Number of journaled operations."""
        with self._lock:
            return len(self.read())

    def replay(self, repo: ArticleRepository) -> Replayed:
        """Apply the journal through *repo*, in order; returns what was written.

        Operations the server refuses stay in the spool (logged); a pymongo error stops
        the replay, leaving that operation and the rest in the spool, and propagates.
        """
        applier = Applier(repo)
        out = Replayed()
        with self._lock:
            ops = self.read()
            remaining: list[Op] = []
            done = 0
            try:
                for group in groups(ops, self.replay_batch):
                    applied = applier.apply(group)
                    out.result += applied.result
                    out.missing += applied.missing
                    remaining += applied.refused
                    for op in applied.written:
                        out.by_kind[op.kind] = out.by_kind.get(op.kind, 0) + 1
                    out.written += len(applied.written)
                    done += len(group)
            except PyMongoError:
                self._rewrite(remaining + ops[done:])
                raise
            self._rewrite(remaining)
        out.refused = len(remaining)
        if remaining:
            logger.error("%d spooled operation(s) refused by the database stay in %s",
                         len(remaining), self.path)
        return out

    def _rewrite(self, ops: list[Op]) -> None:
        if not ops:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(_dumps(op.entry()) for op in ops))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)


def _dumps(entry: dict[str, Any]) -> str:
    return json_util.dumps(entry, json_options=_WRITE, ensure_ascii=False) + "\n"


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        if not f.seek(0, os.SEEK_END):
            return True  # empty
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
