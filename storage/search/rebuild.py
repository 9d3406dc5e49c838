"""Build the search index from MongoDB: ``gzarchive search reindex`` and the migration.

The build goes into a new index directory, chunk by chunk in ``_id`` order, each chunk
committed and recorded in the directory's progress file (``progress.py``): interrupted
(Ctrl-C, kill, a crash), the next build resumes after the last recorded chunk. At the
end the store is told its new index (``store_meta`` ``{_id: "search"}``), ``CURRENT``
is swapped to it, and the previous index directories are removed.

While it runs the builder holds the writer lock of the live index (and of the build),
so catch-ups of other processes skip and the marks they would clear stay: articles
written during the build are indexed by the first catch-up after the swap. Progress
and a time estimate are reported through ``report(done, total, elapsed)``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pymongo.collection import Collection

from storage.search import layout
from storage.search.indexer import CatchUp, add, catch_up
from storage.search.layout import IndexBusy, SearchDir
from storage.search.progress import NAME as PROGRESS_FILE
from storage.search.progress import Progress, in_progress
from storage.search.schema import SOURCE_FIELDS

logger = logging.getLogger(__name__)

CHUNK = 2_000
REPORT_EVERY = 2.0  # seconds between progress reports
#: ``report(done, total, elapsed, done_this_run)``: the rate (and estimate) is this run's.
Reporter = Callable[[int, int, float, int], None]


@dataclass
class Rebuilt:
    """What a build did."""

    path: Path
    indexed: int          # articles indexed by this run (a resumed build: the rest)
    total: int            # articles in the index at the end
    resumed: bool
    seconds: float
    caught_up: CatchUp


def log_progress(done: int, total: int, elapsed: float, this_run: int) -> None:
    """The default reporter: one log line with the rate and an estimate of the rest."""
    logger.warning("search index: %s", describe(done, total, elapsed, this_run))


def describe(done: int, total: int, elapsed: float, this_run: int) -> str:
    rate = this_run / elapsed if elapsed > 0 else 0.0
    left = max(0, total - done)
    eta = f", about {left / rate:.0f} s left" if rate > 0 and left else ""
    share = f" ({100 * done / total:.0f} %)" if total else ""
    return f"{done:,}/{total:,} articles indexed{share}, {rate:,.0f}/s{eta}"


def unfinished(root: Path) -> list[Path]:
    """Builds left unfinished in *root* (resumed by the next build)."""
    return [p for p in SearchDir(root).others() if in_progress(p)]


def rebuild(articles: Collection[dict[str, Any]], root: Path, *, fresh: bool = False,
            report: Reporter = log_progress, wait: float = 0.0,
            chunk: int | None = None) -> Rebuilt:
    """Build (or resume building) the index of every article, then swap it in.

    *fresh*: start over even when an unfinished build is there. Raises IndexBusy when
    another process is building (or holds the live index's writer past *wait*).
    """
    meta = articles.database["store_meta"]
    where = SearchDir(root)
    chunk = chunk or CHUNK
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with ExitStack() as stack:
        try:
            stack.enter_context(FileLock(str(root / "build.lock"), timeout=wait))
        except Timeout as exc:
            raise IndexBusy(f"another process is building the search index in {root}") from exc
        live = where.current_name()
        if live is not None:  # catch-ups skip while we build: their marks stay
            held = layout.writer(layout.open_index(root / live), wait)
            stack.callback(layout.release, held)
        builds = unfinished(root)
        if fresh:
            for old in builds:
                shutil.rmtree(old)
            builds = []
        path = builds[-1] if builds else where.new_index()
        state = Progress.load(path) or Progress()
        resumed = state.done > 0 or state.finished
        index_writer = layout.writer(layout.open_index(path), wait)
        stack.callback(layout.release, index_writer)
        indexed = 0
        if not state.finished:
            state.total = articles.estimated_document_count()
            state.save(path)
            indexed = _scan(articles, path, state, index_writer, chunk, report, started)
            state.finished = True
            state.save(path)
        # The swap: the store names its new index, then CURRENT points at it.
        layout.register(meta, path.name)
        where.publish(path)
        (path / PROGRESS_FILE).unlink(missing_ok=True)
    for old in where.others():
        if not in_progress(old):
            shutil.rmtree(old, ignore_errors=True)
    caught = catch_up(articles, root, wait=max(wait, 5.0))
    seconds = time.monotonic() - started
    logger.warning("search index built in %s: %d article(s) (%d this run%s) in %.0f s",
                   path, state.done, indexed, ", resumed" if resumed else "", seconds)
    return Rebuilt(path, indexed, state.done, resumed, seconds, caught)


def _scan(articles: Collection[dict[str, Any]], path: Path, state: Progress,
          index_writer: Any, chunk: int, report: Reporter, started: float) -> int:
    """Index every article after ``state.after`` in ``_id`` order, chunk by chunk."""
    query = {"_id": {"$gt": state.after}} if state.after is not None else {}
    indexed, last_report = 0, time.monotonic()
    docs: list[dict[str, Any]] = []
    cursor = articles.find(query, SOURCE_FIELDS).sort("_id", 1).batch_size(500)

    def commit() -> None:
        nonlocal indexed
        add([index_writer], docs)
        state.after, state.done = docs[-1]["_id"], state.done + len(docs)
        state.save(path)
        indexed += len(docs)
        docs.clear()

    for doc in cursor:
        docs.append(doc)
        if len(docs) >= chunk:
            commit()
            if time.monotonic() - last_report >= REPORT_EVERY:
                last_report = time.monotonic()
                report(state.done, max(state.total, state.done), last_report - started, indexed)
    if docs:
        commit()
    report(state.done, max(state.total, state.done), time.monotonic() - started, indexed)
    return indexed
