"""`gzarchive worker --redis-url URL`: join a shared frontier and work until it is empty.

The frontier's seeding crawl (``gzarchive crawl --redis-url URL``) published what to
crawl (portal, sections, render mode, article limit); the worker takes those, its own
data directory options (WARC files of its own: names are unique per host and process)
and ``--mongodb-uri`` (one MongoDB for the fleet). ``--wait`` keeps it when the
frontier is empty, for the next crawl. Exit codes as ``gzarchive crawl``.
"""

from __future__ import annotations

import argparse
from typing import Any

from crawler.cli.common import EXIT_STORE, EXIT_USAGE, CliError, add_common

ENTRY = "gzarchive worker"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("worker", help="join a shared frontier (Redis) and crawl from it")
    parser.add_argument("--redis-url", required=True, metavar="URL",
                        help="the frontier's Redis (redis://host:port/db)")
    parser.add_argument("--frontier", default="default", metavar="NAME",
                        help="the frontier's name (default: default)")
    parser.add_argument("--wait", action="store_true",
                        help="stay when the frontier is empty (stop with Ctrl-C)")
    parser.add_argument("--quiet", action="store_true", help="only warnings and the summary")
    parser.add_argument("--verbose", action="store_true",
                        help="Scrapy's own log on the terminal too")
    parser.add_argument("--log-level", default=None, help="console and log file level")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a Scrapy setting (repeatable)")
    add_common(parser)
    parser.set_defaults(func=run)


def crawl_args(args: argparse.Namespace, published: dict[str, Any]) -> argparse.Namespace:
    """The options of ``gzarchive crawl`` this worker runs with."""
    sections = list(published.get("PORTAL_SECTIONS") or [])
    return argparse.Namespace(
        sections=sections, all=bool(published.get("PORTAL_ALL_SECTIONS")),
        portal_url=published.get("PORTAL_URL"),
        max_articles=int(published.get("PORTAL_MAX_ARTICLES") or 0),
        render=published.get("PORTAL_RENDER") or "auto", quiet=args.quiet,
        verbose=args.verbose, progress="lines", log_level=args.log_level, set=args.set,
        data_dir=args.data_dir, mongodb_uri=args.mongodb_uri, redis_url=args.redis_url,
        frontier=args.frontier, fleet_role="worker", wait=args.wait)


def run(args: argparse.Namespace) -> int:
    import redis
    from scrapy.crawler import AsyncCrawlerProcess

    from crawler.cli.crawl import build_settings, console_level
    from crawler.fleet.lease import published_settings
    from crawler.fleet.spider import FleetWorkerSpider
    from crawler.run.console import install_console
    from crawler.run.errors import RunError
    from crawler.run.runner import drive

    try:
        published = published_settings(redis.Redis.from_url(
            args.redis_url, socket_connect_timeout=5), args.frontier)
    except (redis.RedisError, ValueError) as exc:
        raise CliError(f"redis unreachable at {args.redis_url}: {exc}", EXIT_STORE) from exc
    if published is None:
        raise CliError(f"frontier {args.frontier!r} was never seeded: start it with "
                       f"`gzarchive crawl --redis-url {args.redis_url}`", EXIT_USAGE)
    options = crawl_args(args, published)
    if options.all:
        options.sections = []
    settings = build_settings(options)
    settings.set("RUN_ENTRY_POINT", ENTRY, priority="cmdline")
    if not args.verbose:
        install_console(console_level(options, settings))
    try:
        return drive(AsyncCrawlerProcess(settings), FleetWorkerSpider, ENTRY)
    except RunError as exc:
        raise CliError(str(exc), exc.exit_code) from exc
