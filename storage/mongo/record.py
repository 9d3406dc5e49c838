"""write_or_spool(): a few writes made outside a crawl's pipeline (the run record).

Opens the store at the write concern asked for, writes the operations through a
:class:`~storage.mongo.writer.BatchWriter` (so they take the same retry-then-spool path
as a crawl's writes, behind anything already spooled), and closes it. When the store
cannot be reached, or the caller knows it is down (``try_store=False``: another
server-selection timeout would only delay the exit), the operations go to the spool of
the data directory, replayed by the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pymongo import WriteConcern
from pymongo.errors import PyMongoError

from storage.mongo.articles import ArticleRepository
from storage.mongo.client import open_database
from storage.mongo.errors import StoreUnavailable
from storage.mongo.ops import Op
from storage.mongo.spool import Spool, spool_path
from storage.mongo.writer import BatchWriter, FlushReport

logger = logging.getLogger(__name__)


def write_or_spool(ops: Sequence[Op], uri: str | None, data_dir: Path | str,
                   db_name: str = "gzarchive", *, try_store: bool = True,
                   write_concern: str | WriteConcern | None = None, retries: int = 1,
                   server_selection_timeout_ms: int = 5000) -> FlushReport:
    """Write *ops* (or spool them); the report says which. Never raises for an outage:
    ``report.lost`` holds what could be neither written nor spooled (logged)."""
    spool = Spool(spool_path(data_dir))
    if try_store:
        try:
            with open_database(uri, data_dir, db_name=db_name, write_concern=write_concern,
                               server_selection_timeout_ms=server_selection_timeout_ms,
                               ) as (_client, db):
                return _write(BatchWriter(ArticleRepository(db), spool, retries=retries), ops)
        except (StoreUnavailable, PyMongoError) as exc:
            logger.warning("store unavailable (%s): %d write(s) spooled to %s",
                           str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                           len(ops), spool.path)
    return _write(BatchWriter(None, spool), ops)


def _write(writer: BatchWriter, ops: Sequence[Op]) -> FlushReport:
    for op in ops:
        writer.add(op)
    return writer.flush()
