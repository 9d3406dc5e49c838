"""`gzarchive crawl`: run the section spider in this process and print a summary."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler.cli.common import (
    EXIT_ERROR,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_SECTION,
    EXIT_STORE,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    add_common,
    open_store,
)

DEFAULT_SECTIONS = ("老外在貴州", "Hi,貴州!")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("crawl", help="crawl sections of the portal into WARC + MongoDB")
    parser.add_argument("sections", nargs="*", metavar="SECTION",
                        help="navigation label in either script (default: 老外在貴州 Hi,貴州!)")
    parser.add_argument("--all", action="store_true", help="every section of the navigation")
    parser.add_argument("--portal-url", default="https://gz.cri.cn")
    parser.add_argument("--max-articles", type=int, default=0, metavar="N")
    parser.add_argument("--render", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--quiet", action="store_true", help="only warnings and the summary")
    parser.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                        help="live progress bar (default on a terminal) or log lines")
    parser.add_argument("--log-level", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a Scrapy setting (repeatable)")
    add_common(parser)
    parser.set_defaults(func=run)


def build_settings(args: argparse.Namespace) -> Any:
    from scrapy.settings import Settings

    from crawler import rendering
    from crawler.config import ConfigError, PortalConfig

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
    }
    if args.quiet:
        overrides["LOG_LEVEL"] = "WARNING"
    progress = getattr(args, "progress", "auto")
    bar = progress == "bar" or (progress == "auto" and sys.stderr.isatty())
    if bar and not args.quiet:
        # The live bar replaces the console's INFO lines (the log file keeps them).
        overrides["PROGRESS_BAR"] = True
        overrides["LOG_LEVEL"] = "WARNING"
    if args.log_level:
        overrides["LOG_LEVEL"] = args.log_level.upper()
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--set expects NAME=VALUE, got {item!r}", EXIT_USAGE)
        overrides[name.strip()] = value
    settings.setdict(overrides, priority="cmdline")
    try:
        PortalConfig.from_settings(settings)
        rendering.configure(settings, args.render)
    except (ConfigError, rendering.BrowserNotFound) as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return settings


def run(args: argparse.Namespace) -> int:
    from scrapy.crawler import CrawlerProcess

    from crawler.spiders.section import SectionSpider

    settings = build_settings(args)
    from crawler.logfile import install_file_logging
    from crawler.runlock import LockHeld, RunLock

    data_dir = Path(settings["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    # The file log stays at INFO under --quiet: it is where unattended runs leave details.
    install_file_logging(data_dir, "DEBUG" if settings.get("LOG_LEVEL") == "DEBUG" else "INFO")
    lock = RunLock(data_dir)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise CliError(str(exc), EXIT_LOCKED) from exc
    try:
        started = datetime.now(UTC)
        if not args.log_level:
            # Scrapy's start-up dumps (settings, middlewares, stats) drown the progress
            # lines; our own summary replaces them. --log-level brings them back.
            logging.getLogger("scrapy").setLevel(logging.WARNING)
        process = CrawlerProcess(settings)
        crawler = process.create_crawler(SectionSpider)
        process.crawl(crawler)
        process.start()
        stats: dict[str, Any] = crawler.stats.get_stats() if crawler.stats else {}
        spider = crawler.spider
        report = getattr(spider, "report", None)
        if report is None:
            raise CliError("the crawl did not start (see the log above)", EXIT_ERROR)
        code = exit_code(report, stats)
        print_summary(report, stats, settings, code, quiet=args.quiet)
        record_run(args, settings, started, stats, report, code)
    finally:
        lock.release()
    return code


def record_run(args: argparse.Namespace, settings: Any, started: datetime,
               stats: dict[str, Any], report: Any, code: int) -> None:
    """Store the run's summary in `crawl_runs` (a failure here is logged, not fatal)."""
    from storage.mongo.errors import StoreUnavailable
    from storage.mongo.runs import RunRepository

    counts = {key.split("/", 2)[-1]: value for key, value in stats.items()
              if key.startswith("archive/mongo/") and isinstance(value, int)}
    counts.update({
        "pages": stats.get("downloader/response_count", 0),
        "articles": stats.get("item_scraped_count", 0),
        "warc_records": stats.get("archive/warc/records", 0),
    })
    run_settings = {
        "portal_url": settings["PORTAL_URL"],
        "sections": settings.getlist("PORTAL_SECTIONS"),
        "all": settings.getbool("PORTAL_ALL_SECTIONS"),
        "render": settings["PORTAL_RENDER"],
        "max_articles": settings.getint("PORTAL_MAX_ARTICLES"),
        "data_dir": settings["DATA_DIR"],
    }
    try:
        with open_store(args) as repo:
            runs = RunRepository(repo.db)
            run_id = runs.start(run_settings, now=started)
            errors = report.as_dict()
            runs.finish(run_id, counts=counts, errors=errors["failures"] | {
                "fatal": errors["fatal"], "needs_rendering": errors["needs_rendering"]},
                exit_status=code)
    except (CliError, StoreUnavailable) as exc:
        logging.getLogger(__name__).warning("could not record the run in crawl_runs: %s", exc)


def exit_code(report: Any, stats: dict[str, Any]) -> int:
    if report.fatal_kind == "portal-unreachable":
        return EXIT_UNREACHABLE
    if report.fatal_kind == "store-unavailable":
        return EXIT_STORE
    if report.fatal_kind == "section-not-found" or report.needs_rendering:
        return EXIT_SECTION
    if stats.get("finish_reason") not in (None, "finished", "closespider_itemcount"):
        return EXIT_ERROR if report.fatal is None else EXIT_PARTIAL
    if report.hard_failures or stats.get("archive/mongo/spooled", 0):
        return EXIT_PARTIAL
    return EXIT_OK


def print_summary(report: Any, stats: dict[str, Any], settings: Any, code: int,
                  quiet: bool = False) -> None:
    out = sys.stdout
    get = stats.get
    lines = [
        "",
        "== gzarchive crawl summary ==",
        f"status          : {'ok' if code == EXIT_OK else 'exit ' + str(code)}"
        + (f" — {report.fatal}" if report.fatal else ""),
        f"finish reason   : {get('finish_reason', '?')}",
        f"pages fetched   : {get('downloader/response_count', 0)} "
        f"({get('downloader/response_bytes', 0)} bytes)",
        f"articles        : {get('item_scraped_count', 0)} extracted — "
        f"{get('archive/mongo/new', 0)} new, {get('archive/mongo/updated', 0)} updated, "
        f"{get('archive/mongo/unchanged', 0)} unchanged, "
        f"{get('archive/mongo/revised', 0)} revised, {get('archive/mongo/spooled', 0)} spooled",
    ]
    for section, url in report.sections.items():
        lines.append(f"section         : {section} — {report.articles_found.get(section, 0)} "
                     f"articles linked ({url})")
    for section, url in report.needs_rendering.items():
        lines.append(f"NEEDS RENDERING : {section} — listing {url} is filled by JavaScript; "
                     "run with --render auto and Chromium installed")
    if report.failure_counts:
        lines.append("failures        :")
        for kind, count in sorted(report.failure_counts.items()):
            examples = ", ".join(report.failures.get(kind, [])[:3])
            lines.append(f"  {kind:<22} {count:>5}  e.g. {examples}")
    else:
        lines.append("failures        : none")
    lines.append(f"WARC            : {get('archive/warc/records', 0)} records in "
                 f"{settings['WARC_DIR']}")
    store = settings["MONGODB_URI"] or f"embedded SecantusDB under {settings['DATA_DIR']}"
    lines.append(f"MongoDB         : {store}")
    print("\n".join(lines), file=out)
    out.flush()
    if code not in (EXIT_OK,) and report.fatal:
        print(f"gzarchive crawl: {report.fatal}", file=sys.stderr)
    logging.getLogger(__name__).debug("summary printed (quiet=%s)", quiet)
