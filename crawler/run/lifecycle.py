"""CrawlLifecycle: what belongs to a crawl rather than to one entry point.

A Scrapy extension (added by :class:`crawler.addon.PortalAddon`, so ``gzarchive crawl``,
``scrapy crawl section`` and any script using the project's settings get it). Built
before any middleware or pipeline, it checks the data directory, starts the log file
``DATA/logs/gzarchive.log`` and takes the run lock (``crawler.runlock``), so WARC
recovery and the store only ever open under the lock. When the engine stops it decides
the exit code (:func:`crawler.run.exits.decide`), prints the summary, stores the
``crawl_runs`` document with the same code and releases the lock. ``finish()`` may be
called again by the runner after a forced stop (second Ctrl-C): it does the same once.

Settings (:class:`LifecycleConfig`): RUN_LIFECYCLE_ENABLED (True), RUN_ENTRY_POINT
("scrapy crawl"), RUN_SUMMARY (True: print the summary on stdout), RUN_RECORD (True:
write ``crawl_runs``), RUN_STORE_PRESTART (True: the embedded store's server starts as
soon as the lock is held, crawler/run/prestart.py). Reads DATA_DIR, MONGODB_URI,
MONGODB_DATABASE, LOG_LEVEL.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings

from crawler.fleet.lease import FrontierLease
from crawler.fleet.setup import build_run_lock
from crawler.logfile import install_file_logging, skip_scrapy_debug
from crawler.run.errors import DataDirError, RunError
from crawler.run.exits import EXIT_INTERRUPTED, EXIT_LOCKED, Outcome, decide
from crawler.run.prestart import StorePrestart
from crawler.run.record import record_run
from crawler.run.summary import format_summary
from crawler.runlock import LockHeld, RunLock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LifecycleConfig:
    data_dir: Path
    entry: str
    summary: bool
    record: bool
    log_level: str

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> LifecycleConfig:
        if not settings.getbool("RUN_LIFECYCLE_ENABLED", True):
            raise NotConfigured("RUN_LIFECYCLE_ENABLED is False")
        level = str(settings.get("LOG_LEVEL") or "INFO").upper()
        return cls(data_dir=Path(settings.get("DATA_DIR") or "data").resolve(),
                   entry=str(settings.get("RUN_ENTRY_POINT") or "scrapy crawl"),
                   summary=settings.getbool("RUN_SUMMARY", True),
                   record=settings.getbool("RUN_RECORD", True),
                   log_level="DEBUG" if level == "DEBUG" else "INFO")


def prepare_data_dir(path: Path) -> None:
    """Create the data directory if needed and check it can be written (one-line error)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create the data directory {path}: "
                           f"{exc.strerror or exc}") from exc
    if not path.is_dir():
        raise DataDirError(f"data directory {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(f"data directory {path} is not writable (read-only file system "
                           "or permissions)")


class CrawlLifecycle:
    """Run lock, log file, exit code, summary and ``crawl_runs`` of one crawl."""

    def __init__(self, crawler: Crawler, config: LifecycleConfig) -> None:
        self.crawler = crawler
        self.config = config
        # In fleet mode (FLEET_REDIS_URL) the lock is the frontier's lease in Redis.
        self.lock: RunLock | FrontierLease = build_run_lock(crawler, config.data_dir)
        self.started = datetime.now(UTC)
        self.log_file: Path | None = None
        self.outcome: Outcome | None = None
        self.close_reason: str | None = None
        self.signal_name: str | None = None
        self.prestart: StorePrestart | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlLifecycle:
        ext = cls(crawler, LifecycleConfig.from_settings(crawler.settings))
        ext.begin()
        crawler.signals.connect(ext.engine_started, signal=signals.engine_started)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    # ------------------------------------------------------------------ start
    def begin(self) -> None:
        """Data directory, log file, lock: raises RunError (with its exit code)."""
        prepare_data_dir(self.config.data_dir)
        try:
            self.log_file = install_file_logging(self.config.data_dir, self.config.log_level)
        except OSError as exc:
            raise DataDirError(f"cannot write the log file under {self.config.data_dir}: "
                               f"{exc.strerror or exc}") from exc
        skip_scrapy_debug(self.config.log_level, self.crawler.settings.get("LOG_LEVEL") or "DEBUG")
        try:
            self.lock.acquire()
        except LockHeld as exc:
            logger.error("%s: %s", self.config.entry, exc, extra={"file_only": True})
            raise RunError(str(exc), EXIT_LOCKED) from exc
        except OSError as exc:
            raise DataDirError(f"cannot take the run lock {self.lock.path}: "
                               f"{exc.strerror or exc}") from exc
        logger.info("%s: run lock %s taken (pid %d)", self.config.entry, self.lock.path,
                    os.getpid())
        if StorePrestart.wanted(self.crawler.settings):
            # The store's server starts while the crawl is built (crawler/run/prestart.py).
            self.prestart = StorePrestart(self.config.data_dir)
            self.prestart.start()

    def engine_started(self) -> None:
        # Scrapy's shutdown handlers are installed by now; note the signal, then let
        # Scrapy stop the crawl (gracefully the first time, at once the second).
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            if callable(previous):
                signal.signal(signum, self._noting(previous))

    def _noting(self, previous: Any) -> Any:
        def handler(signum: int, frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self.signal_name is None:
                logger.warning("%s interrupted by %s: stopping (send it again to stop at "
                               "once)", self.config.entry, name)
            self.signal_name = name
            previous(signum, frame)
        return handler

    def spider_closed(self, spider: Any, reason: str) -> None:
        self.close_reason = reason

    def engine_stopped(self) -> None:
        self.finish()

    # ----------------------------------------------------------------- finish
    def finish(self) -> Outcome:
        """Decide, print, record, release: once (later calls return the same outcome)."""
        if self.outcome is not None:
            return self.outcome
        stats: dict[str, Any] = self.crawler.stats.get_stats() if self.crawler.stats else {}
        reason = self.close_reason or stats.get("finish_reason")
        if self.signal_name is not None and reason in (None, "shutdown"):
            reason = "interrupted"
            stats.setdefault("finish_reason", reason)
        report = getattr(self.crawler.spider, "report", None)
        outcome = decide(report, stats, reason)
        if outcome.code == EXIT_INTERRUPTED and self.signal_name:
            outcome = replace(outcome, reason=f"interrupted by {self.signal_name}: the crawl "
                              "stopped early; the next run resumes it")
        self.outcome = outcome
        try:
            self._report(outcome, report, stats)
        finally:
            self._release_store()
            self.lock.release()
        return outcome

    def _release_store(self) -> None:
        if self.prestart is not None:
            self.prestart.release()

    def _report(self, outcome: Outcome, report: Any, stats: dict[str, Any]) -> None:
        if outcome.code == EXIT_INTERRUPTED:
            logger.warning("crawl %s", outcome.reason, extra={"file_only": self.config.summary})
        elif outcome.ok:
            logger.info("crawl finished: ok")
        else:
            # The same line goes to stderr below: once on the terminal is enough.
            logger.error("crawl finished with exit %d (%s): %s", outcome.code, outcome.status,
                         outcome.reason, extra={"file_only": self.config.summary})
        logger.info("summary:%s", format_summary(outcome, report, stats, self.crawler.settings),
                    extra={"file_only": True})
        self._record(outcome, report, stats)
        if self.config.summary:
            text = format_summary(outcome, report, stats, self.crawler.settings,
                                  str(self.log_file) if self.log_file else None)
            print(text, file=sys.stdout, flush=True)
            if not outcome.ok and outcome.reason:
                # Last on stderr: the line cron mails and a person reads first.
                print(f"{self.config.entry}: {outcome.reason}", file=sys.stderr, flush=True)

    def _record(self, outcome: Outcome, report: Any, stats: dict[str, Any]) -> None:
        if not self.config.record:
            return
        if (getattr(report, "fatal_kind", None) == "store-unavailable"
                or stats.get("archive/mongo/errors/unavailable")):
            # Another server-selection timeout would only delay the exit: spooled.
            record_run(self.crawler.settings, self.config.entry, self.started, stats, report,
                       outcome, reachable=False)
            return
        record_run(self.crawler.settings, self.config.entry, self.started, stats, report,
                   outcome)

    def release(self) -> None:
        """Drop the lock without a summary (the crawl never started)."""
        self._release_store()
        self.lock.release()


__all__ = ["CrawlLifecycle", "LifecycleConfig", "prepare_data_dir"]
