"""BatchWriter: buffered, retried, durable article writes that never lose an article.

``add()`` buffers (cheap, from the reactor thread); ``flush()`` writes the buffer in
batches of ``batch_size`` (from a worker thread), retrying transient failures with
exponential backoff. Articles that still cannot be written are appended to the spool
(fsynced) and counted as ``spooled``; the next run replays them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError

from storage.mongo.articles import ArticleRepository, UpsertResult
from storage.mongo.spool import Spool

logger = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same write may succeed (idempotent upserts make it safe)."""
    if isinstance(exc, ConnectionFailure):  # AutoReconnect, ServerSelectionTimeout, timeouts
        return True
    if isinstance(exc, BulkWriteError):
        return bool(exc.details.get("writeConcernErrors"))
    if isinstance(exc, OperationFailure):
        return exc.has_error_label("RetryableWriteError") or exc.code in (91, 189, 11600, 11602)
    return False


class BatchWriter:
    """Buffers articles and writes them in batches; spools what cannot be written.

    ``repo`` may be None (store unavailable at start-up): every flush then spools.
    Thread-safe: ``add`` and ``flush`` may be called from different threads.
    """

    def __init__(self, repo: ArticleRepository | None, spool: Spool, batch_size: int = 100,
                 retries: int = 3, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep,
                 probe_interval: float = 30.0) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.repo = repo
        self.spool = spool
        self.batch_size = batch_size
        self.retries = max(0, retries)
        self.backoff = backoff
        self.totals = UpsertResult()
        self._sleep = sleep
        self._buffer: list[dict[str, Any]] = []
        self._buffer_lock = threading.Lock()
        self._write_lock = threading.Lock()
        # After a batch had to be spooled, later batches try once instead of retrying
        # (a long outage would otherwise stall every flush); a success clears it.
        self._degraded = False
        # While degraded, batches go straight to the spool and the server is only
        # probed every ``probe_interval`` seconds: each probe of a dead server costs a
        # whole server-selection timeout.
        self.probe_interval = probe_interval
        self._next_probe = 0.0

    def add(self, doc: Mapping[str, Any]) -> bool:
        """Buffer one article; True when a full batch is waiting (time to flush)."""
        with self._buffer_lock:
            self._buffer.append(dict(doc))
            return len(self._buffer) >= self.batch_size

    def pending(self) -> int:
        with self._buffer_lock:
            return len(self._buffer)

    def flush(self) -> UpsertResult:
        """Write everything buffered so far; returns what this flush did."""
        with self._buffer_lock:
            docs, self._buffer = self._buffer, []
        result = UpsertResult()
        with self._write_lock:
            for start in range(0, len(docs), self.batch_size):
                result += self._write(docs[start:start + self.batch_size])
            self.totals += result
        return result

    close = flush

    def _write(self, docs: list[dict[str, Any]]) -> UpsertResult:
        now = datetime.now(UTC)  # one instant for all attempts: retries stay idempotent
        if self.repo is None:
            return self._spool(docs, now, "store unavailable")
        if self._degraded and time.monotonic() < self._next_probe:
            return self._spool(docs, now, "store unavailable, next probe in "
                               f"{self._next_probe - time.monotonic():.0f} s")
        attempts = 1 if self._degraded else self.retries + 1
        done = UpsertResult()
        todo = docs
        reason = ""
        for attempt in range(attempts):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                result = self.repo.upsert_many(todo, now)
            except PyMongoError as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:200]}"
                if not is_transient(exc):
                    logger.error("batch of %d not written: %s", len(todo), reason)
                    break
                logger.warning("batch of %d not written (attempt %d/%d): %s", len(todo),
                               attempt + 1, attempts, reason)
                continue
            except BaseException:
                self._spool(todo, now, "unexpected error")
                raise
            failed = set(result.failed)
            result.errors, result.failed = 0, []
            done += result
            if not failed:
                self._degraded = False
                return done
            # Refused documents (e.g. a unique-key race) get the remaining attempts.
            todo = [d for d in todo if d.get("url") in failed]
            reason = f"{len(todo)} document(s) refused by the server"
        return done + self._spool(todo, now, reason)

    def _spool(self, docs: list[dict[str, Any]], now: datetime, reason: str) -> UpsertResult:
        if not self._degraded or time.monotonic() >= self._next_probe:
            self._next_probe = time.monotonic() + self.probe_interval
        self._degraded = True
        count = self.spool.append(docs, now)
        logger.error("%d article(s) spooled to %s (%s)", count, self.spool.path, reason)
        return UpsertResult(errors=count, spooled=count, failed=[str(d.get("url")) for d in docs])
