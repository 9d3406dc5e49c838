"""install_file_logging: a rotating, timestamped log under DATA/logs, installed once."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path

import pytest

from crawler.logfile import install_file_logging, remove_file_logging


@pytest.fixture(autouse=True)
def clean_root() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    remove_file_logging()
    root.setLevel(level)


def ours() -> list[RotatingFileHandler]:
    return [h for h in logging.getLogger().handlers
            if isinstance(h, RotatingFileHandler) and h.baseFilename.endswith("gzarchive.log")]


def test_creates_timestamped_log(tmp_path: Path) -> None:
    path = install_file_logging(tmp_path, "INFO")
    assert path == tmp_path.resolve() / "logs" / "gzarchive.log"
    assert path.exists()
    logging.getLogger("crawler.test").info("hello %s", "world")
    logging.getLogger("crawler.test").debug("not at INFO")
    for handler in ours():
        handler.flush()
    text = path.read_text("utf-8")
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \d+ INFO crawler.test: "
                     r"hello world$", text, re.M), text
    assert "not at INFO" not in text


def test_idempotent(tmp_path: Path) -> None:
    first = install_file_logging(tmp_path, "INFO")
    second = install_file_logging(tmp_path, logging.DEBUG)
    assert first == second
    [handler] = ours()
    assert handler.level == logging.DEBUG
    logging.getLogger("crawler.test").warning("once")
    handler.flush()
    assert first.read_text().count("once") == 1


def test_other_data_dir_replaces_handler(tmp_path: Path) -> None:
    install_file_logging(tmp_path / "a")
    path_b = install_file_logging(tmp_path / "b")
    [handler] = ours()
    assert handler.baseFilename == str(path_b)


def test_rotates(tmp_path: Path) -> None:
    path = install_file_logging(tmp_path, "INFO", max_bytes=2000, backup_count=2)
    log = logging.getLogger("crawler.test")
    for i in range(200):
        log.info("line %d %s", i, "x" * 50)
    logs = sorted(p.name for p in path.parent.iterdir())
    assert logs == ["gzarchive.log", "gzarchive.log.1", "gzarchive.log.2"]
    assert all(p.stat().st_size <= 2100 for p in path.parent.iterdir())
    assert "line 199" in path.read_text()


def test_default_size_limits(tmp_path: Path) -> None:
    install_file_logging(tmp_path)
    [handler] = ours()
    assert handler.maxBytes == 5 * 1024 * 1024
    assert handler.backupCount == 5


def test_bad_level(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        install_file_logging(tmp_path, "LOUD")


@pytest.mark.parametrize(("levels", "expected"), [
    (("INFO", "INFO"), logging.INFO),
    (("INFO", "WARNING"), logging.INFO),        # --quiet: the file still wants INFO
    (("DEBUG", "INFO"), logging.DEBUG),         # --log-level DEBUG keeps every record
    (("INFO", "NOPE"), logging.DEBUG),          # an unknown name: left as Scrapy set it
])
def test_scrapy_debug_records_are_skipped_below_every_handler(
        levels: tuple[str, str], expected: int) -> None:
    from logging.config import dictConfig

    from scrapy.utils.log import DEFAULT_LOGGING

    from crawler.logfile import skip_scrapy_debug

    scrapy_logger = logging.getLogger("scrapy")
    before = scrapy_logger.level
    try:
        dictConfig(DEFAULT_LOGGING)                   # what Scrapy's configure_logging applies
        assert scrapy_logger.level == logging.DEBUG   # Scrapy's default, whatever LOG_LEVEL
        skip_scrapy_debug(*levels)
        assert scrapy_logger.level == expected
        assert logging.getLogger("scrapy.core.engine").isEnabledFor(logging.DEBUG) == (
            expected == logging.DEBUG)
        scrapy_logger.setLevel(logging.WARNING)       # a level someone chose: kept
        skip_scrapy_debug("INFO")
        assert scrapy_logger.level == logging.WARNING
    finally:
        scrapy_logger.setLevel(before)
