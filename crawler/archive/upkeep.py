"""The archive's housekeeping during a crawl: start-up recovery and indexing of closed files.

- :func:`recover_at_start` cuts ``.open`` files left by a writer that died (in this
  or an earlier run, or another process) and indexes what they became. Files whose
  writer is still alive (another process writing in the same WARC directory holds
  their lock) are left alone, counted as ``archive/warc/recovery/in_use``.
- :class:`ClosedFileIndexer` merges each closed file into ``index.cdxj`` in a thread
  (never on the reactor), and lets the crawl wait for those threads before it ends.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from twisted.internet import threads
from twisted.internet.defer import Deferred, DeferredList

from storage.warc.digests import DigestIndex
from storage.warc.index import update_index
from storage.warc.recovery import recover_and_reindex

logger = logging.getLogger(__name__)


def recover_at_start(directory: Path, digests: DigestIndex, stats: Any) -> None:
    """Recover abandoned ``.open`` files of ``directory``; see the module docstring."""
    for report in recover_and_reindex(directory):
        if not report.recovered:
            stats.inc_value("archive/warc/recovery/in_use")
            logger.info("WARC recovery: %s is being written by a live process; left alone",
                        report.path.name)
            continue
        stats.inc_value("archive/warc/recovered")
        logger.warning("WARC recovery: %s %s (%d records kept, %d bytes dropped)",
                       report.action, report.path.name, report.records, report.bytes_dropped)
        # captures cut off (or in a deleted file) must not be referred to by revisits
        digests.forget(report.final_name, report.bytes_kept)


class ClosedFileIndexer:
    """``file_closed(path)`` indexes in a thread; ``wait()`` until all are done."""

    def __init__(self, stats: Any) -> None:
        self.stats = stats
        self._pending: set[Deferred[Any]] = set()

    def file_closed(self, path: Path) -> None:
        self.stats.inc_value("archive/warc/files")
        from twisted.internet import reactor

        if not getattr(reactor, "running", False):
            self._index(path)
            return
        d: Deferred[None] = threads.deferToThread(self._index, path)
        self._pending.add(d)

        def _done(result: Any) -> Any:
            self._pending.discard(d)
            return result

        d.addBoth(_done)

    def wait(self) -> Deferred[Any]:
        return DeferredList(list(self._pending), consumeErrors=True)

    def _index(self, path: Path) -> None:
        try:
            update_index(path)
        except Exception:
            self.stats.inc_value("archive/warc/errors/index")
            logger.error("could not index %s", path, exc_info=True)
            raise
