"""Options and helpers shared by the sub-commands: data directory, store, exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


@contextmanager
def open_reader(args: argparse.Namespace) -> Iterator[Any]:
    """An ArticleRepository for reading only: never creates, migrates or indexes a store.

    A data directory without a store (a mistyped ``--data-dir``) or a database without
    articles is a usage error; an archive that cannot be written (a read-only mount) is
    read from a temporary copy, said in one line on stderr.
    """
    from storage.mongo.articles import ArticleRepository
    from storage.mongo.client import open_database, redact
    from storage.mongo.errors import NoStore, StoreUnavailable
    from storage.mongo.readonly import existing_store

    data_dir = Path(args.data_dir)

    def notice(size: int) -> None:
        print(f"gzarchive {args.command}: {data_dir} is read-only: reading a temporary copy "
              f"of its store ({size / 2**20:.0f} MB; SecantusDB cannot open a store "
              "read-only)", file=sys.stderr, flush=True)

    try:
        with ExitStack() as stack:
            uri = args.mongodb_uri or stack.enter_context(
                existing_store(data_dir, on_copy=notice))
            _client, db = stack.enter_context(open_database(uri, data_dir))
            if "articles" not in db.list_collection_names():
                where = redact(args.mongodb_uri) if args.mongodb_uri else str(data_dir)
                raise CliError(f"no archive at {where} (database {db.name!r} holds no "
                               "articles)", EXIT_USAGE)
            yield ArticleRepository(db)
    except NoStore as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    except StoreUnavailable as exc:
        raise CliError(f"database unavailable: {exc}", EXIT_STORE) from exc
