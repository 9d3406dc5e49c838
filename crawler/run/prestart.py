"""Start the embedded store's server while the crawl is still being built.

The store pipeline opens the store in ``open_spider`` (pipelines/store.py), and starting
the embedded SecantusDB server process takes ~0.3-1 s that the crawl's first request
waits for. :class:`StorePrestart` starts it (``EmbeddedServer.acquire``) in a thread
as soon as the run lock is held, so the pipeline finds it running or starting (the
store's startup lock makes the pipeline wait for a start in progress: never two).
Its lease is given back when the crawl ends, after the run's record is written.

This only moves the start earlier: items still go through the pipeline's own client,
and a store that cannot be started fails there exactly as before (spooled, exit 7). A
crawl on MONGODB_URI or a shared frontier (FLEET_REDIS_URL), or with
RUN_STORE_PRESTART=False, starts nothing here.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

#: Seconds the end of a crawl waits for a start still in progress (then it leaves it).
JOIN_TIMEOUT = 30.0


class StorePrestart:
    """The embedded store's server started in a thread; its lease released at the end."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lease: Any = None
        self._released = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._acquire, name="store-prestart",
                                        daemon=True)

    @classmethod
    def wanted(cls, settings: BaseSettings) -> bool:
        return (settings.getbool("RUN_STORE_PRESTART", True) and not settings.get("MONGODB_URI")
                and not settings.get("FLEET_REDIS_URL")
                and "pipelines.store.MongoStorePipeline" in settings.getdict("ITEM_PIPELINES"))

    def start(self) -> None:
        self._thread.start()

    def _acquire(self) -> None:
        from storage.mongo.embedded import EmbeddedServer

        try:
            lease = EmbeddedServer.acquire(self.data_dir)
        except Exception as exc:  # the pipeline's own open reports it (exit 7)
            logger.debug("embedded store not started ahead of the crawl: %s", exc)
            return
        with self._lock:
            if self._released:
                lease.release()
            else:
                self._lease = lease

    def release(self) -> None:
        """Give the lease back (waits up to JOIN_TIMEOUT s for a start in progress)."""
        if self._thread.is_alive():
            self._thread.join(JOIN_TIMEOUT)
        with self._lock:
            self._released = True
            lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()


__all__ = ["StorePrestart"]
