"""``scrapy crawl``: Scrapy's command, with gzarchive's checks and exit codes.

The same crawl as ``gzarchive crawl`` (crawler/run): every ``-s NAME=VALUE`` is checked
against its setting's type before anything starts (a bad one is a usage error, exit 2),
the lock, log file, summary and ``crawl_runs`` come from the lifecycle extension, and
the exit status is the one :func:`crawler.run.exits.decide` gives, and glibc's malloc
arenas are capped as for ``gzarchive`` (crawler/run/malloc.py).
"""

from __future__ import annotations

import argparse

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.exceptions import UsageError

from crawler.fleet.setup import check_redis, scrapy_fleet
from crawler.run.errors import RunError
from crawler.run.malloc import limit_arenas
from crawler.run.runner import drive, print_error
from crawler.run.settings_check import check_components, check_settings, parse_pairs


class Command(ScrapyCrawl):
    def short_desc(self) -> str:
        return "Run a spider of the project (gzarchive: lock, summary, exit codes)"

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        limit_arenas()  # before the crawl's threads start, as gzarchive's entry point does
        try:
            checked = check_settings(parse_pairs(opts.set), self.settings)
        except RunError as exc:
            raise UsageError(str(exc), print_help=False) from exc
        opts.set = []
        super().process_options(args, opts)
        self.settings.setdict(checked, priority="cmdline")
        try:
            check_components(self.settings)
            scrapy_fleet(self.settings)  # fleet mode: -s FLEET_REDIS_URL=redis://…
        except RunError as exc:
            raise UsageError(str(exc), print_help=False) from exc

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) < 1:
            raise UsageError
        if len(args) > 1:
            raise UsageError("running 'scrapy crawl' with more than one spider is not supported")
        assert self.crawler_process is not None
        try:
            check_redis(self.crawler_process.settings)
            self.exitcode = drive(self.crawler_process, args[0], "scrapy crawl", **opts.spargs)
        except RunError as exc:
            self.exitcode = print_error("scrapy crawl", exc)
