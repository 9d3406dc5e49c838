"""The WARC_* settings, read and checked once per crawl."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scrapy.settings import BaseSettings

DEFAULT_MAX_SIZE = 1_000_000_000


class WarcConfigError(ValueError):
    """WARC_* settings that cannot work together."""


@dataclass(frozen=True)
class WarcConfig:
    """Typed view of the WARC_* settings (see crawler/archive/middleware.py)."""

    enabled: bool
    directory: Path
    prefix: str
    max_size: int
    operator: str
    archive_images: bool
    digest_db: Path

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> WarcConfig:
        directory = Path(settings.get("WARC_DIR") or "data/warc")
        prefix = str(settings.get("WARC_PREFIX") or "gzarchive")
        if "-" in prefix or "/" in prefix:
            raise WarcConfigError(f"WARC_PREFIX must not contain '-' or '/': {prefix!r}")
        max_size = settings.getint("WARC_MAX_SIZE", DEFAULT_MAX_SIZE)
        if max_size <= 0:
            raise WarcConfigError(f"WARC_MAX_SIZE must be positive, got {max_size}")
        digest_db = settings.get("WARC_DIGEST_DB") or ""
        return cls(
            enabled=settings.getbool("WARC_ENABLED", True),
            directory=directory,
            prefix=prefix,
            max_size=max_size,
            operator=str(settings.get("WARC_OPERATOR") or ""),
            archive_images=settings.getbool("WARC_ARCHIVE_IMAGES", True),
            digest_db=Path(digest_db) if digest_db
            else directory.parent / "state" / "warc-digests.sqlite3",
        )
