"""`gzarchive search reindex`: rebuild the search index beside the store from MongoDB.

The index (DATA/search, storage.search) is derived: this builds a new one from every
article, with progress and an estimate on stderr, and swaps it in at the end. Stopped
(Ctrl-C, a kill), the next `search reindex` -- or the next crawl start -- resumes the
build where it stopped (`--fresh` starts it over).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from crawler.cli.common import EXIT_LOCKED, EXIT_OK, EXIT_STORE, CliError, add_common, search_dir

#: Seconds to wait for the index's writer (a crawl catching up holds it briefly) or for
#: another rebuild before giving up with exit 6.
REINDEX_WAIT = 30.0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("search", help="the keyword-search index beside the store")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    reindex = actions.add_parser("reindex", help="rebuild the search index from MongoDB "
                                                 "(resumes an interrupted rebuild)")
    reindex.add_argument("--fresh", action="store_true",
                         help="start over instead of resuming an interrupted rebuild")
    add_common(reindex)
    reindex.set_defaults(func=run_reindex)


def run_reindex(args: argparse.Namespace) -> int:
    from storage.mongo.articles import ArticleRepository
    from storage.mongo.client import open_database
    from storage.mongo.errors import StoreUnavailable
    from storage.search.layout import IndexBusy
    from storage.search.migrate import upgrade
    from storage.search.rebuild import describe, rebuild, unfinished

    root = search_dir(args)
    last = [0.0]

    def report(done: int, total: int, elapsed: float, this_run: int) -> None:
        if time.monotonic() - last[0] >= 1.0 or done >= total:
            last[0] = time.monotonic()
            print(f"gzarchive search: {describe(done, total, elapsed, this_run)}",
                  file=sys.stderr, flush=True)

    try:
        with open_database(args.mongodb_uri, args.data_dir) as (_client, db):
            repo = ArticleRepository(db)  # no search_dir: ensure_indexes builds nothing
            repo.ensure_indexes()
            if unfinished(root) and not args.fresh:
                print(f"gzarchive search: resuming the rebuild in {unfinished(root)[-1]}",
                      file=sys.stderr, flush=True)
            try:
                built = rebuild(repo.articles, root, fresh=args.fresh, report=report,
                                wait=REINDEX_WAIT)
            except IndexBusy as exc:
                raise CliError(str(exc), EXIT_LOCKED) from exc
            upgrade(repo.articles, root)  # a store of the search_postings layout: dropped
    except StoreUnavailable as exc:
        raise CliError(f"database unavailable: {exc}", EXIT_STORE) from exc
    print(f"search index rebuilt: {built.total:,} articles in {built.seconds:.1f} s "
          f"({built.path}); {built.caught_up.indexed} written meanwhile caught up")
    return EXIT_OK
