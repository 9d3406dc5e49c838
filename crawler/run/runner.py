"""Run one crawl in a Scrapy crawler process and return its exit code.

Shared by ``gzarchive crawl`` and the project's ``scrapy crawl`` command
(crawler/commands/crawl.py): a crawl that cannot start (lock held, bad setting,
unusable data directory, a component that failed to build) is one line on stderr and
its exit code, with the traceback in the log file; a crawl that ran ends with the code
:class:`~crawler.run.lifecycle.CrawlLifecycle` decided, also after a forced stop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from scrapy.crawler import Crawler
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from crawler.config import ConfigError
from crawler.run.errors import RunError
from crawler.run.exits import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_SECTION, EXIT_USAGE, decide
from crawler.run.lifecycle import CrawlLifecycle

logger = logging.getLogger(__name__)


def _bootstrap_error(exc: BaseException) -> RunError:
    """The one-line error (and exit code) of a crawl that failed to start."""
    from crawler.rendering import BrowserNotFound

    if isinstance(exc, RunError):
        return exc
    if isinstance(exc, BrowserNotFound):
        return RunError(str(exc), EXIT_SECTION)
    if isinstance(exc, (ConfigError, ValueError, TypeError)):
        # A setting of the wrong type reaching a component: bad settings, not a crash.
        return RunError(f"bad setting: {exc}", EXIT_USAGE)
    if isinstance(exc, KeyboardInterrupt):
        return RunError("interrupted", EXIT_INTERRUPTED)
    if isinstance(exc, OSError):
        return RunError(f"{exc.strerror or exc}"
                        + (f": {exc.filename}" if exc.filename else ""), EXIT_USAGE)
    return RunError(f"the crawl could not start: {type(exc).__name__}: {exc}", EXIT_ERROR)


def drive(process: Any, spider: type | str, entry: str, **spider_kwargs: Any) -> int:
    """Crawl *spider* in *process* (a Scrapy CrawlerProcess) to the end; its exit code.

    Raises RunError when the crawl could not start.
    """
    crawler: Crawler = process.create_crawler(spider)
    crawler.settings.set("RUN_ENTRY_POINT", entry, priority="cmdline")
    errors: list[BaseException] = []
    started = process.crawl(crawler, **spider_kwargs)
    if isinstance(started, Deferred):
        def on_error(failure: Failure) -> None:
            errors.append(failure.value or RuntimeError(str(failure)))
        started.addErrback(on_error)
    else:
        def on_done(task: asyncio.Task[None]) -> None:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                errors.append(error)
        started.add_done_callback(on_done)
    lifecycle: CrawlLifecycle | None = None
    try:
        process.start()
    finally:
        lifecycle = _lifecycle(crawler)
        if errors and lifecycle is not None:
            lifecycle.release()
    if errors:
        exc = errors[0]
        error = _bootstrap_error(exc)
        if error is not exc:
            logger.error("%s could not start: %s", entry, exc,
                         exc_info=(type(exc), exc, exc.__traceback__))
        raise error
    if lifecycle is None:
        # RUN_LIFECYCLE_ENABLED=False: decide anyway, without lock, summary or record.
        stats = crawler.stats.get_stats() if crawler.stats else {}
        return decide(getattr(crawler.spider, "report", None), stats,
                      stats.get("finish_reason")).code
    return lifecycle.finish().code


def _lifecycle(crawler: Crawler) -> CrawlLifecycle | None:
    try:
        return crawler.get_extension(CrawlLifecycle)
    except (KeyError, RuntimeError, AttributeError):
        return None


def print_error(entry: str, error: RunError) -> int:
    """Print *error* as one line on stderr; return its exit code."""
    print(f"{entry}: {error}", file=sys.stderr, flush=True)
    return error.exit_code


__all__ = ["drive", "print_error"]
