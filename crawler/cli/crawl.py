"""`gzarchive crawl`: options to settings, then the crawl lifecycle (crawler/run).

The run lock, the summary, the ``crawl_runs`` record and the exit code belong to the
crawl (crawler.run.lifecycle, installed by the add-on), so ``scrapy crawl section`` gets
the same; this module only turns options into settings, checked before anything starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from crawler.cli.common import EXIT_STORE, EXIT_USAGE, CliError, add_common

DEFAULT_SECTIONS = ("老外在貴州", "Hi,貴州!")
ENTRY = "gzarchive crawl"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("crawl", help="crawl sections of the portal into WARC + MongoDB")
    parser.add_argument("sections", nargs="*", metavar="SECTION",
                        help="navigation label in either script (default: 老外在貴州 Hi,貴州!)")
    parser.add_argument("--all", action="store_true", help="every section of the navigation")
    parser.add_argument("--portal-url", default="https://gz.cri.cn",
                        help="the portal's home page (default https://gz.cri.cn)")
    parser.add_argument("--max-articles", type=int, default=0, metavar="N",
                        help="stop after N articles (default 0: no limit)")
    parser.add_argument("--render", choices=("auto", "always", "never"), default="auto",
                        help="render JavaScript listings in Chromium: when needed (auto), "
                             "always, or never")
    parser.add_argument("--quiet", action="store_true", help="only warnings and the summary")
    parser.add_argument("--verbose", action="store_true",
                        help="Scrapy's own log on the terminal too (banners, stats, tracebacks)")
    parser.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                        help="live progress bar (default on a terminal) or log lines")
    parser.add_argument("--log-level", default=None, help="console and log file level")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a Scrapy setting (repeatable; checked against the "
                             "setting's type)")
    add_fleet_options(parser)
    add_common(parser)
    parser.set_defaults(func=run)


def add_fleet_options(parser: Any) -> None:
    """--redis-url and --frontier: many workers on one frontier (crawler/fleet)."""
    parser.add_argument("--redis-url", default=None, metavar="URL",
                        help="share the frontier in Redis (redis://host:port/db) with "
                             "`gzarchive worker`s; needs --mongodb-uri (default: one process)")
    parser.add_argument("--frontier", default="default", metavar="NAME",
                        help="the frontier's name in Redis (default: default)")


def with_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """*args* completed with the parser's defaults: programmatic callers (tests, the
    benchmarks) may pass a Namespace that lacks options added since they were written."""
    from crawler.cli import build_parser

    merged = vars(build_parser().parse_args(["crawl"]))
    merged.update(vars(args))
    return argparse.Namespace(**merged)


def build_settings(args: argparse.Namespace) -> Any:
    """The crawl's settings; a bad option or setting is a CliError (exit 2)."""
    from scrapy.settings import Settings

    from crawler import rendering
    from crawler.config import ConfigError
    from crawler.run.errors import SettingsError
    from crawler.run.settings_check import check_components, check_settings, parse_pairs

    args = with_defaults(args)
    if args.max_articles < 0:
        raise CliError("--max-articles must be >= 0", EXIT_USAGE)
    if args.all and args.sections:
        raise CliError("give SECTION names or --all, not both", EXIT_USAGE)
    data_dir = Path(args.data_dir).resolve()
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    overrides: dict[str, Any] = {
        "DATA_DIR": str(data_dir),
        "WARC_DIR": str(data_dir / "warc"),
        "MONGODB_URI": args.mongodb_uri or "",
        "PORTAL_URL": args.portal_url,
        "PORTAL_SECTIONS": list(args.sections or DEFAULT_SECTIONS),
        "PORTAL_ALL_SECTIONS": bool(args.all),
        "PORTAL_MAX_ARTICLES": args.max_articles,
        "PORTAL_RENDER": args.render,
        "RUN_ENTRY_POINT": ENTRY,
        "LOG_INSTALL_ROOT_HANDLER": bool(args.verbose),
    }
    bar = args.progress == "bar" or (args.progress == "auto" and sys.stderr.isatty())
    if bar and not args.quiet and not args.verbose:
        overrides["PROGRESS_BAR"] = True   # replaces the console's INFO lines
    if args.log_level:
        overrides["LOG_LEVEL"] = args.log_level.upper()
    try:
        overrides.update(check_settings(parse_pairs(args.set), settings))
    except SettingsError as exc:
        raise CliError(f"--set {exc}", EXIT_USAGE) from exc
    settings.setdict(overrides, priority="cmdline")
    if getattr(args, "redis_url", None):
        from crawler.fleet.setup import fleet_overrides

        if not args.mongodb_uri:
            raise CliError("--redis-url needs --mongodb-uri (MONGODB_URI): every worker "
                           "writes to one MongoDB", EXIT_USAGE)
        settings.setdict(fleet_overrides(settings, args.redis_url, getattr(
            args, "fleet_role", "crawl"), args.frontier, getattr(args, "wait", False)),
            priority="cmdline")
        check_fleet(settings)
    try:
        check_components(settings)
        rendering.configure(settings, args.render)
    except SettingsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    except (ConfigError, rendering.BrowserNotFound) as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return settings


def check_fleet(settings: Any) -> None:
    """FLEET_* settings make sense and Redis answers (exit 2 / 7 otherwise)."""
    import redis

    from crawler.config import ConfigError
    from crawler.fleet.config import FleetConfig

    try:
        config = FleetConfig.from_settings(settings)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    try:
        redis.Redis.from_url(config.redis_url, socket_connect_timeout=5).ping()
    except (redis.RedisError, ValueError) as exc:
        raise CliError(f"redis unreachable at {config.redis_url}: {exc}", EXIT_STORE) from exc


def console_level(args: argparse.Namespace, settings: Any) -> str:
    if args.log_level:
        return str(args.log_level).upper()
    if args.quiet or settings.getbool("PROGRESS_BAR"):
        return "WARNING"
    return "INFO"


def run(args: argparse.Namespace) -> int:
    from scrapy.crawler import AsyncCrawlerProcess

    from crawler.run.console import install_console
    from crawler.run.errors import RunError
    from crawler.run.runner import drive
    from crawler.spiders.section import SectionSpider

    settings = build_settings(args)
    # Without --verbose the console gets our own lines (crawler.run.console), one each;
    # Scrapy's banners, stats dumps and tracebacks go to the log file only.
    if not args.verbose:
        install_console(console_level(args, settings))
    try:
        process = AsyncCrawlerProcess(settings)
        return drive(process, SectionSpider, ENTRY)
    except RunError as exc:
        raise CliError(str(exc), exc.exit_code) from exc
