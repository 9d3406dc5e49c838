"""A rotating log file in the data directory, for runs nobody watches (cron).

``install_file_logging(data_dir, level)`` attaches one ``RotatingFileHandler`` writing
``DATA/logs/gzarchive.log`` (5 MB x 5 backups) to the root logger. Calling it again is
harmless: the handler for the same file is reused (its level updated), a handler for
another data directory is replaced.
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_NAME = "gzarchive.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 5
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


class _ArchiveLogHandler(RotatingFileHandler):
    """Marks the handler this module installed, so it can be found again."""


def install_file_logging(data_dir: Path | str, level: int | str = logging.INFO, *,
                         max_bytes: int = MAX_BYTES,
                         backup_count: int = BACKUP_COUNT) -> Path:
    """Log to ``DATA/logs/gzarchive.log`` from the root logger; return the file's path."""
    numeric = _level(level)
    path = Path(data_dir).resolve() / "logs" / LOG_NAME
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ArchiveLogHandler):
            if Path(handler.baseFilename) == path:
                handler.setLevel(numeric)
                _open_root_to(numeric)
                return path
            root.removeHandler(handler)
            handler.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    new = _ArchiveLogHandler(path, maxBytes=max_bytes, backupCount=backup_count,
                             encoding="utf-8")
    new.setLevel(numeric)
    new.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    root.addHandler(new)
    _open_root_to(numeric)
    return path


def remove_file_logging() -> None:
    """Detach and close the handler installed by ``install_file_logging`` (tests, embedding)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ArchiveLogHandler):
            root.removeHandler(handler)
            handler.close()


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.strip().upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}")
    return value


def _open_root_to(level: int) -> None:
    # The root logger filters before any handler sees a record; never let it hide ours.
    # (NOTSET on the root already lets everything through.)
    root = logging.getLogger()
    if root.level != logging.NOTSET and root.level > level:
        root.setLevel(level)


def skip_scrapy_debug(*handler_levels: int | str) -> None:
    """Scrapy's logging defaults set its logger to DEBUG whatever LOG_LEVEL is, so every
    ``Crawled (200)`` line becomes a record that each handler then drops (~1 % of the
    reactor's time in a crawl). Raise it to the lowest of *handler_levels* (the log
    file's, LOG_LEVEL), unless someone chose another level for it. An unknown level
    name leaves it alone."""
    scrapy_logger = logging.getLogger("scrapy")
    try:
        numeric = min(_level(level) for level in handler_levels)
    except ValueError:
        return
    if scrapy_logger.level == logging.DEBUG and numeric > logging.DEBUG:
        scrapy_logger.setLevel(numeric)


__all__ = ["install_file_logging", "remove_file_logging", "skip_scrapy_debug", "LOG_NAME"]
