"""BatchWriter: every store write of a crawl, buffered, retried, and spooled if need be.

``add()`` buffers an operation (storage.mongo.ops.Op: article upsert, touch, relink,
run record; a plain mapping is an article) cheaply from the reactor thread; ``flush()``
applies the buffer in order (from a worker thread): consecutive article upserts in
batches of ``batch_size``, the rest one by one, each retried on transient failures
(connection, write concern not satisfied) with exponential backoff. What still cannot
be written is appended, with everything after it, to the spool (fsynced); once anything
is spooled, later operations follow it there until a probe (every ``probe_interval``
seconds) has replayed the spool, so the database always receives them in order. The
flush report says which operations were written (at the database's write concern),
spooled, or lost (the spool could not be written: counted, never silent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

from storage.mongo.articles import ArticleRepository, UpsertResult
from storage.mongo.errors import SpoolError
from storage.mongo.ops import UPSERT, Applier, Op, groups
from storage.mongo.spool import Replayed, Spool

logger = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same write may succeed (idempotent operations make it safe).

    A write concern error means the write is not known durable at the concern asked
    for: it is retried (and spooled if it keeps failing), never taken as written.
    """
    if isinstance(exc, ConnectionFailure):  # AutoReconnect, ServerSelectionTimeout, timeouts
        return True
    if isinstance(exc, WriteConcernError):
        return True
    if isinstance(exc, BulkWriteError):
        return bool(exc.details.get("writeConcernErrors"))
    if isinstance(exc, OperationFailure):
        return exc.has_error_label("RetryableWriteError") or exc.code in (91, 189, 11600, 11602)
    return False


@dataclass
class FlushReport:
    """What one flush did with each operation."""

    result: UpsertResult = field(default_factory=UpsertResult)  # article counts
    written: list[Op] = field(default_factory=list)   # acknowledged at the write concern
    spooled: list[Op] = field(default_factory=list)   # journaled, replayed next time
    lost: list[Op] = field(default_factory=list)      # neither: the spool write failed
    missing: list[Op] = field(default_factory=list)   # written, matched no article
    replayed: list[Replayed] = field(default_factory=list)  # spool replays of this flush

    @property
    def durable(self) -> list[Op]:
        """Written or spooled: what the crawl may forget."""
        return self.written + self.spooled


class BatchWriter:
    """Applies operations in order, in batches; spools what cannot be written.

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
        self.applier = Applier(repo) if repo is not None else None
        self.spool = spool
        self.batch_size = batch_size
        self.retries = max(0, retries)
        self.backoff = backoff
        self.totals = UpsertResult()
        self._sleep = sleep
        self._buffer: list[Op] = []
        self._buffer_lock = threading.Lock()
        self._write_lock = threading.Lock()
        # The spool may hold operations that must reach the database before any new
        # one: until a replay has emptied it, new operations are spooled behind them.
        self._behind = spool.path.exists() and spool.count() > 0
        # While behind, the server is only probed every ``probe_interval`` seconds:
        # each probe of a dead server costs a whole server-selection timeout.
        self.probe_interval = probe_interval
        self._next_probe = 0.0

    def add(self, item: Op | Mapping[str, Any]) -> bool:
        """Buffer one operation (a mapping: an article); True when a batch is waiting."""
        op = item if isinstance(item, Op) else Op.upsert(item)
        with self._buffer_lock:
            self._buffer.append(op)
            return len(self._buffer) >= self.batch_size

    def pending(self) -> int:
        with self._buffer_lock:
            return len(self._buffer)

    def replay(self) -> Replayed | None:
        """Replay the spool now (start of a run); None when the store is unavailable.

        Raises pymongo's error when the server fails mid-replay (the rest stays spooled,
        and later operations queue behind it).
        """
        if self.repo is None:
            return None
        with self._write_lock:
            replayed = self.spool.replay(self.repo)
            self._behind = False
            return replayed

    def flush(self) -> FlushReport:
        """Write everything buffered so far, in order; returns what this flush did."""
        with self._buffer_lock:
            ops, self._buffer = self._buffer, []
        now = datetime.now(UTC)  # one instant for all attempts: retries stay idempotent
        report = FlushReport()
        with self._write_lock:
            batches = groups([op.stamped(now) for op in ops], self.batch_size)
            done = 0
            try:
                for group in batches:
                    reason = self._blocked(report)
                    left = group
                    if reason is None:
                        left, reason = self._apply(group, report)
                    if left:
                        rest = [op for later in batches[done + 1:] for op in later]
                        self._spool(left + rest, reason, report)
                        break
                    done += 1
            except BaseException:
                self._spool([op for later in batches[done:] for op in later],
                            "unexpected error", report)
                raise
            finally:
                self.totals += report.result
        return report

    close = flush

    def _blocked(self, report: FlushReport) -> str | None:
        """Why operations cannot go to the database now (None: they can)."""
        if self.repo is None:
            return "store unavailable"
        if not self._behind:
            return None
        wait = self._next_probe - time.monotonic()
        if wait > 0:
            return f"store unavailable, next probe in {wait:.0f} s"
        try:
            replayed = self.spool.replay(self.repo)
        except PyMongoError as exc:
            self._next_probe = time.monotonic() + self.probe_interval
            return f"store still unavailable ({type(exc).__name__})"
        self._behind = False
        report.replayed.append(replayed)
        logger.info("store back: %d spooled operation(s) replayed from %s", replayed.written,
                    self.spool.path)
        return None

    def _apply(self, group: list[Op], report: FlushReport) -> tuple[list[Op], str]:
        """Apply with retries; returns the operations still not written and why."""
        assert self.applier is not None
        attempts = self.retries + 1
        todo = group
        reason = ""
        for attempt in range(attempts):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                applied = self.applier.apply(todo)
            except PyMongoError as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:200]}"
                if not is_transient(exc):
                    logger.error("%d %s operation(s) not written: %s", len(todo), todo[0].kind,
                                 reason)
                    break
                logger.warning("%d %s operation(s) not written (attempt %d/%d): %s", len(todo),
                               todo[0].kind, attempt + 1, attempts, reason)
                continue
            report.result += applied.result
            report.written += applied.written
            report.missing += applied.missing
            if not applied.refused:
                return [], ""
            # Refused documents (e.g. a unique-key race) get the remaining attempts.
            todo = applied.refused
            reason = f"{len(todo)} document(s) refused by the server"
        return todo, reason

    def _spool(self, ops: list[Op], reason: str, report: FlushReport) -> None:
        if not ops:
            return
        if not self._behind or time.monotonic() >= self._next_probe:
            self._next_probe = time.monotonic() + self.probe_interval
        self._behind = True
        articles = [str(op.url) for op in ops if op.kind == UPSERT]
        report.result.errors += len(articles)
        report.result.failed += articles
        try:
            self.spool.append(ops)
        except SpoolError as exc:
            # Not written, not spooled: the caller keeps them pending and counts it.
            logger.error("%d operation(s) (%d article(s)) neither written (%s) nor spooled: "
                         "%s", len(ops), len(articles), reason, exc)
            report.lost += ops
            return
        report.spooled += ops
        report.result.spooled += len(articles)
        logger.error("%d operation(s) (%d article(s)) spooled to %s (%s)", len(ops),
                     len(articles), self.spool.path, reason)
