"""`gzarchive` command line (also `python -m crawler`).

Each sub-command lives in its own module and registers itself through
``add_parser(subparsers)``; every command takes --data-dir and --mongodb-uri.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from crawler.archive import cli as warc
from crawler.cli import (
    crawl,
    export,
    frontier,
    query,
    schedule,
    search,
    serve,
    stats,
    store,
    worker,
)
from crawler.cli.common import EXIT_USAGE, CliError

COMMANDS = (crawl, export, query, stats, schedule, warc, serve, worker, frontier, store, search)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gzarchive",
        description="Archive 國際在線 貴州頻道 (gz.cri.cn) into WARC files and MongoDB.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad arguments
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"gzarchive {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (`gzarchive export | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"gzarchive {args.command}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    from crawler.run.malloc import limit_arenas

    limit_arenas()  # before any thread starts: see crawler/run/malloc.py
    sys.exit(main())


__all__ = ["main", "entry", "EXIT_USAGE"]
