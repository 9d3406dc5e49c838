"""Options and helpers shared by the sub-commands: data directory, store, exit codes."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_ERROR = 1            # unexpected internal error
EXIT_USAGE = 2            # bad arguments
EXIT_UNREACHABLE = 3      # portal unreachable
EXIT_SECTION = 4          # section not found / needs a browser that is not allowed
EXIT_PARTIAL = 5          # crawl finished with failures (listed in the summary)
EXIT_LOCKED = 6           # another crawl holds the lock on the data directory
EXIT_STORE = 7            # MongoDB unreachable and nothing could be spooled


class CliError(Exception):
    """An error to print as one line, with the exit code to return."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=os.environ.get("GZARCHIVE_DATA_DIR", "data"),
                        type=Path, help="data directory (default ./data)")
    parser.add_argument("--mongodb-uri", default=os.environ.get("MONGODB_URI") or None,
                        help="MongoDB URI (default: env MONGODB_URI, else the embedded "
                             "store under the data directory)")


@contextmanager
def open_store(args: argparse.Namespace) -> Iterator[Any]:
    """Yield an ArticleRepository on the configured store (embedded when no URI)."""
    from storage.mongo.articles import ArticleRepository
    from storage.mongo.client import open_database
    from storage.mongo.errors import StoreUnavailable

    try:
        with open_database(args.mongodb_uri, Path(args.data_dir)) as (_client, db):
            repo = ArticleRepository(db)
            repo.ensure_indexes()
            yield repo
    except StoreUnavailable as exc:
        raise CliError(f"database unavailable: {exc}", EXIT_STORE) from exc
