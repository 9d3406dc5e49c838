"""Spool: articles that could not be written to MongoDB, kept on disk until replayed.

One JSON line per article, ``{"now": <when it was seen>, "doc": <article>}``, in MongoDB
Extended JSON (``bson.json_util``) so datetimes come back as aware datetimes (the
``{"$date": ...}`` marker). Every append is fsynced before it returns. ``replay()``
writes the spooled articles and then replaces the file atomically by what is left.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bson import json_util
from bson.json_util import JSONMode, JSONOptions
from filelock import FileLock

from storage.mongo.errors import SpoolError

if TYPE_CHECKING:
    from storage.mongo.articles import ArticleRepository

logger = logging.getLogger(__name__)

_WRITE = JSONOptions(json_mode=JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)
_READ = JSONOptions(tz_aware=True, tzinfo=UTC)


class Spool:
    """An append-only file of articles waiting for the database (safe across processes)."""

    def __init__(self, path: Path | str, replay_batch: int = 100) -> None:
        self.path = Path(path)
        self.replay_batch = replay_batch
        self._lock = FileLock(str(self.path) + ".lock")

    def append(self, docs: Iterable[Mapping[str, Any]], now: datetime | None = None) -> int:
        """Add articles (seen at ``now``); durable when this returns. Returns how many."""
        seen = now or datetime.now(UTC)
        lines = [json_util.dumps({"now": seen, "doc": dict(d)}, json_options=_WRITE,
                                 ensure_ascii=False) + "\n" for d in docs]
        if not lines:
            return 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, open(self.path, "a", encoding="utf-8") as f:
                f.write("".join(lines))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise SpoolError(f"cannot append to spool {self.path}: {exc}") from exc
        return len(lines)

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        entries = []
        with open(self.path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    entries.append(json_util.loads(line, json_options=_READ))
                except ValueError:
                    # A torn last line from a crash mid-append (never acknowledged).
                    logger.warning("spool %s line %d unreadable, skipped", self.path, number)
        return entries

    def count(self) -> int:
        """Number of spooled articles."""
        with self._lock:
            return len(self._read())

    def replay(self, repo: ArticleRepository) -> int:
        """Write spooled articles through ``repo``; returns how many were written.

        Articles the server refuses stay in the spool (and are logged); a connection
        error stops the replay, leaving the unwritten rest in the spool, and propagates.
        """
        written = 0
        processed = 0
        with self._lock:
            entries = self._read()
            remaining: list[dict[str, Any]] = []
            try:
                for start in range(0, len(entries), self.replay_batch):
                    chunk = entries[start:start + self.replay_batch]
                    for now, docs in _group_by_now(chunk):
                        result = repo.upsert_many(docs, now)
                        failed = set(result.failed)
                        remaining += [{"now": now, "doc": d} for d in docs if d["url"] in failed]
                        written += len(docs) - len(failed)
                        processed += len(docs)
            except BaseException:
                self._rewrite(remaining + entries[processed:])
                raise
            self._rewrite(remaining)
        if remaining:
            logger.error("%d spooled article(s) refused by the database stay in %s",
                         len(remaining), self.path)
        return written

    def _rewrite(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for entry in entries:
                f.write(json_util.dumps(entry, json_options=_WRITE, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def _group_by_now(entries: list[dict[str, Any]]) -> list[tuple[datetime, list[dict[str, Any]]]]:
    groups: list[tuple[datetime, list[dict[str, Any]]]] = []
    for entry in entries:
        if groups and groups[-1][0] == entry["now"]:
            groups[-1][1].append(entry["doc"])
        else:
            groups.append((entry["now"], [entry["doc"]]))
    return groups
