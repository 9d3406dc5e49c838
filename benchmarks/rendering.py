"""Rendered listing pages per second and peak memory over N rendered pages.

Starts the offline replica with its JavaScript-filled section (``Hi,贵州!``) spread
over N listing pages, then runs one Scrapy crawl in this process that renders every
page in headless Chromium through scrapy-playwright with the crawler's own settings,
``crawler.rendering.configure`` and ``listing_meta`` (so the WARC capture of the
browser's exchanges and the conversion records are part of the cost). Articles are
not fetched. Prints pages/s and the peak RSS of this process and of the browser's
process tree, plus RSS every 50 pages so a growth would show.

    .venv/bin/python benchmarks/rendering.py [--pages 200] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scrapy  # noqa: E402
from scrapy.crawler import CrawlerProcess  # noqa: E402
from scrapy.http import Response  # noqa: E402
from scrapy.settings import Settings  # noqa: E402

from crawler import rendering  # noqa: E402
from crawler.extract.listing import parse_listing  # noqa: E402
from tests.replica.config import HI_GZ, ReplicaConfig, section_by_label  # noqa: E402
from tests.replica.replica import Replica  # noqa: E402

PAGE_SIZE = 2


class MemorySampler(threading.Thread):
    """Sample RSS of this process and of its children (the Playwright driver and
    Chromium) every ``interval`` seconds; keep the peaks."""

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.interval = interval
        self.me = psutil.Process()
        self.peak_self = self.peak_browser = self.peak_total = 0
        self.last = (0, 0)
        self.cpu: dict[int, tuple[str, float]] = {}  # pid -> (name, last user+system s)
        self._stop = threading.Event()

    def sample(self) -> tuple[int, int]:
        own = self.me.memory_info().rss
        children = 0
        for child in self.me.children(recursive=True):
            try:
                children += child.memory_info().rss
                times = child.cpu_times()
                self.cpu[child.pid] = (child.name(), times.user + times.system)
            except psutil.Error:
                continue
        self.peak_self = max(self.peak_self, own)
        self.peak_browser = max(self.peak_browser, children)
        self.peak_total = max(self.peak_total, own + children)
        self.last = (own, children)
        return self.last

    def browser_cpu(self) -> dict[str, float]:
        """CPU seconds of the browser's processes (sampled; by process name)."""
        by_name: dict[str, float] = {}
        for name, seconds in self.cpu.values():
            by_name[name] = by_name.get(name, 0.0) + seconds
        return by_name

    def browser_pss(self) -> int:
        """Proportional set size of the browser tree: shared pages counted once."""
        total = 0
        for child in self.me.children(recursive=True):
            try:
                total += child.memory_full_info().pss
            except (psutil.Error, AttributeError):
                continue
        return total

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()


class RenderBench(scrapy.Spider):
    """Render the given listing URLs; count article links found in each DOM."""

    name = "render-bench"
    urls: list[str]
    sampler: MemorySampler

    async def start(self) -> AsyncIterator[scrapy.Request]:
        self.t0 = time.perf_counter()
        self.done = 0
        self.links = 0
        self.empty = 0
        self.checkpoints: list[tuple[int, float, int, int, int]] = []
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse, dont_filter=True,
                                 meta=rendering.listing_meta(self.crawler))

    def parse(self, response: Response) -> None:
        assert "playwright" in response.flags
        entries = parse_listing(response.text, response.url).entries
        self.links += len(entries)
        self.empty += not entries
        self.done += 1
        if self.done % 50 == 0 or self.done == len(self.urls):
            own, browser = self.sampler.sample()
            self.checkpoints.append((self.done, time.perf_counter() - self.t0, own, browser,
                                     self.sampler.browser_pss()))
        self.t_end = time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--keep", help="keep the WARC output in this directory")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE,
                        help=f"articles per listing page (default {PAGE_SIZE}; the crawl's "
                             "replica has 10, each with its image)")
    parser.add_argument("--pages-per-context", type=int, default=0,
                        help="PLAYWRIGHT_MAX_PAGES_PER_CONTEXT and CONCURRENT_REQUESTS_PER_DOMAIN "
                             "(default: the crawler's settings)")
    parser.add_argument("--arg", action="append", default=[], metavar="FLAG",
                        help="one more Chromium command-line flag (repeatable)")
    parser.add_argument("--drop-arg", action="append", default=[], metavar="FLAG",
                        help="leave out one of the crawler's Chromium flags (repeatable)")
    parser.add_argument("--no-warc", action="store_true",
                        help="WARC_ENABLED=False: rendering alone, no capture")
    args = parser.parse_args(argv)

    rep = Replica(ReplicaConfig(js_section=HI_GZ, page_size=args.page_size,
                                articles_per_section=args.pages * args.page_size)).start()
    sec = section_by_label(HI_GZ)
    urls = [rep.url + sec.page_path(n) for n in range(1, args.pages + 1)]
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="render-bench-"))
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.setdict({
        "DATA_DIR": str(out), "WARC_DIR": str(out / "warc"), "PORTAL_URL": rep.url,
        # No crawl lifecycle (run lock, summary): this spider is not a portal crawl, and
        # its summary would say "did not start".
        "ITEM_PIPELINES": {}, "EXTENSIONS": {"crawler.run.lifecycle.CrawlLifecycle": None},
        "ROBOTSTXT_OBEY": False,
        "AUTOTHROTTLE_ENABLED": False, "LOG_LEVEL": "WARNING",
        "LOG_INSTALL_ROOT_HANDLER": True, "WARC_ENABLED": not args.no_warc,
    }, priority="cmdline")
    if args.pages_per_context:
        settings.setdict({"PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": args.pages_per_context,
                          "CONCURRENT_REQUESTS_PER_DOMAIN": args.pages_per_context},
                         priority="cmdline")
    if args.arg or args.drop_arg:
        launch = dict(settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS"))
        launch["args"] = [a for a in launch.get("args", []) if a not in args.drop_arg]
        launch["args"] += args.arg
        settings.set("PLAYWRIGHT_LAUNCH_OPTIONS", launch, priority="cmdline")
    browser = rendering.configure(settings, "always")
    sampler = MemorySampler()
    sampler.start()
    try:
        process = CrawlerProcess(settings)
        crawler = process.create_crawler(RenderBench)
        process.crawl(crawler, urls=urls, sampler=sampler)
        process.start()
    finally:
        sampler.stop()
        rep.stop()
    spider: Any = crawler.spider
    stats = crawler.stats.get_stats() if crawler.stats else {}
    elapsed = spider.t_end - spider.t0 if spider.done else float("nan")
    mib = 1024 * 1024
    print(f"browser           : {browser}")
    print(f"rendered pages    : {spider.done}/{len(urls)} ({spider.empty} without article "
          f"links, {spider.links} links)")
    print(f"time              : {elapsed:.1f} s (browser launch included)")
    print(f"pages/s           : {spider.done / elapsed:.2f}")
    cpu = sampler.browser_cpu()
    total_cpu = sum(cpu.values())
    print(f"CPU s             : crawler {sum(psutil.Process().cpu_times()[:2]):.1f}, browser "
          f"tree {total_cpu:.1f} ({', '.join(f'{k} {v:.1f}' for k, v in sorted(cpu.items()))}); "
          f"browser {total_cpu / max(spider.done, 1) * 1000:.0f} ms CPU per page "
          f"(launch included), {len(sampler.cpu)} processes seen")
    launch_args = settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS").get("args", [])
    print(f"Chromium flags    : {' '.join(launch_args)}")
    print(f"peak RSS          : crawler {sampler.peak_self / mib:.0f} MiB, browser tree "
          f"{sampler.peak_browser / mib:.0f} MiB, total {sampler.peak_total / mib:.0f} MiB")
    for done, t, own, br, pss in spider.checkpoints:
        print(f"  after {done:>4} pages ({t:6.1f} s): crawler {own / mib:.0f} MiB, "
              f"browser tree RSS {br / mib:.0f} MiB (PSS {pss / mib:.0f} MiB)")
    print(f"contexts/pages    : {stats.get('playwright/context_count', 0)} contexts, "
          f"{stats.get('playwright/page_count', 0)} pages opened, "
          f"{stats.get('playwright/page_count/closed', 0)} closed, max concurrent "
          f"{stats.get('playwright/page_count/max_concurrent', 0)}")
    print(f"WARC              : {stats.get('archive/warc/records', 0)} records, "
          f"{stats.get('archive/browser/exchanges', 0)} browser exchanges, "
          f"{stats.get('archive/warc/conversions', 0)} conversions, aborted requests "
          f"{stats.get('playwright/request_count/aborted', 0)}")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0 if spider.done == len(urls) and not spider.empty else 1


if __name__ == "__main__":
    sys.exit(main())
