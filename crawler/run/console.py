"""What a crawl prints on the terminal: our own lines, one line each, no tracebacks.

Without ``--verbose`` Scrapy's start-up banners, its stats dump, Twisted's and the
libraries' messages go to the log file only (``DATA/logs/gzarchive.log``, with full
tracebacks); the terminal gets the crawler's own messages at the console level, one
line each (a record logged with ``extra={"file_only": True}`` stays in the file). With
``--verbose`` Scrapy's own root handler prints everything, as usual.
"""

from __future__ import annotations

import logging
import sys

# Loggers whose records stay in the log file unless --verbose.
FILE_ONLY = ("scrapy", "twisted", "asyncio", "scrapy-playwright", "scrapy_playwright", "playwright",
             "py.warnings", "filelock", "pymongo", "urllib3", "protego", "charset_normalizer")


class _FileOnlyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "file_only", False):
            return False
        return record.name.split(".", 1)[0] not in FILE_ONLY


class OneLineFormatter(logging.Formatter):
    """``LEVEL: message`` on one line; a traceback becomes a pointer to the log file."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().splitlines()[0] if record.getMessage() else ""
        if record.exc_info and record.exc_info[1] is not None:
            detail = str(record.exc_info[1]).splitlines()
            message += f": {detail[0] if detail else type(record.exc_info[1]).__name__}"
            message += " (traceback in the log file)"
        elif record.exc_text:
            message += " (traceback in the log file)"
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed."""


def install_console(level: int | str) -> logging.Handler:
    """One stderr handler on the root logger (replacing an earlier one of ours)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ConsoleHandler):
            root.removeHandler(handler)
    handler = _ConsoleHandler(sys.stderr)
    handler.setLevel(level if isinstance(level, int) else level.upper())
    handler.addFilter(_FileOnlyFilter())
    handler.setFormatter(OneLineFormatter())
    root.addHandler(handler)
    numeric = handler.level
    if root.level == logging.NOTSET or root.level > numeric:
        root.setLevel(numeric)
    return handler


__all__ = ["FILE_ONLY", "OneLineFormatter", "install_console"]
