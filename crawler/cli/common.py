"""Options and helpers shared by the sub-commands: data directory, store, exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

# Exit codes: one table for every command (crawler/run/exits.py, the README).
from crawler.run import exits as _exits

EXIT_ARCHIVE = _exits.EXIT_ARCHIVE
EXIT_ERROR = _exits.EXIT_ERROR
EXIT_INTERRUPTED = _exits.EXIT_INTERRUPTED
EXIT_LOCKED = _exits.EXIT_LOCKED
EXIT_OK = _exits.EXIT_OK
EXIT_PARTIAL = _exits.EXIT_PARTIAL
EXIT_SECTION = _exits.EXIT_SECTION
EXIT_STORE = _exits.EXIT_STORE
EXIT_UNREACHABLE = _exits.EXIT_UNREACHABLE
EXIT_USAGE = _exits.EXIT_USAGE


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


def search_dir(args: argparse.Namespace) -> Path:
    """The search index beside the store (storage.search): DATA/search, also when the
    store is a real MongoDB (MONGODB_URI): it is a cache, rebuilt by `search reindex`."""
    return Path(args.data_dir) / "search"


@contextmanager
def open_store(args: argparse.Namespace) -> Iterator[Any]:
    """Yield an ArticleRepository on the configured store (embedded when no URI)."""
    from storage.mongo.articles import ArticleRepository
    from storage.mongo.client import open_database
    from storage.mongo.errors import StoreUnavailable

    try:
        with open_database(args.mongodb_uri, Path(args.data_dir)) as (_client, db):
            repo = ArticleRepository(db, search_dir=search_dir(args))
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
            names = set(db.list_collection_names())
            where = redact(args.mongodb_uri) if args.mongodb_uri else str(data_dir)
            if "articles" not in names:
                raise CliError(f"no archive at {where} (database {db.name!r} holds no "
                               "articles)", EXIT_USAGE)
            # Searched through DATA/search when its index is this store's; else (not built
            # yet, a store being upgraded) by reading every article: exact, slower.
            yield ArticleRepository(db, search_dir=search_dir(args))
    except NoStore as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    except StoreUnavailable as exc:
        raise CliError(f"database unavailable: {exc}", EXIT_STORE) from exc
