"""A bare Scrapy spider that follows what ``gzarchive crawl`` follows, for comparison.

Home page → the sections named by their navigation label (simplified or traditional
script) → every listing page (``index_N.html``, plain HTML only: no JavaScript) → every
article and its continuation pages. No extraction, no store; with ``--warc FILE`` every
response (and its request) is written to a gzipped WARC with warcio, as a minimal
archiving spider would. Scrapy's own defaults (16 requests, 8 per domain, no delay, no
AutoThrottle), robots.txt obeyed.

    .venv/bin/python benchmarks/bare_spider.py URL [--warc OUT.warc.gz]
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from io import BytesIO
from typing import Any, BinaryIO

import scrapy
from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

LABELS = ("老外在贵州", "Hi,贵州!", "老外在貴州", "Hi,貴州!")
ARTICLE = re.compile(r"/(?:n/\d{8}|\d{4}-\d{2}-\d{2}|old)/[0-9a-f-]{36}(?:_\d+)?\.html")
LISTING = re.compile(r"/index(?:_\d+)?\.html$")


class BareSpider(scrapy.Spider):
    name = "bare"

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = [url.rstrip("/") + "/"]

    def parse(self, response: Response) -> Iterator[scrapy.Request]:
        for link in response.css(".nav a"):
            if (link.css("::text").get() or "").strip() in LABELS:
                yield response.follow(link, self.parse_listing)

    def parse_listing(self, response: Response) -> Iterator[scrapy.Request]:
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            if ARTICLE.search(url):
                yield scrapy.Request(url, self.parse_article)
            elif LISTING.search(url.split("?")[0]) and url.startswith(response.url.rsplit("/", 1)[0]):
                yield scrapy.Request(url, self.parse_listing)

    def parse_article(self, response: Response) -> Iterator[scrapy.Request]:
        stem = response.url.split("?")[0].rsplit(".html", 1)[0].split("_")[0]
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            if url.startswith(stem + "_") and ARTICLE.search(url):
                yield scrapy.Request(url, self.parse_article)


class WarcOut:
    """Writes every response Scrapy receives, with its request, to one WARC file."""

    def __init__(self, fh: BinaryIO) -> None:
        self.writer = WARCWriter(fh, gzip=True)
        self.records = 0

    def response_received(self, response: Response, request: scrapy.Request, spider: Any) -> None:
        headers = [(k.decode("latin-1"), v.decode("latin-1"))
                   for k, vs in response.headers.items() for v in vs]
        status = StatusAndHeaders(f"{response.status} OK", headers, protocol="HTTP/1.1")
        rec = self.writer.create_warc_record(response.url, "response", payload=BytesIO(response.body),
                                             http_headers=status)
        req_headers = [(k.decode("latin-1"), v.decode("latin-1"))
                       for k, vs in request.headers.items() for v in vs]
        path = request.url.split("/", 3)[3] if request.url.count("/") >= 3 else ""
        req = self.writer.create_warc_record(
            request.url, "request", payload=BytesIO(request.body),
            http_headers=StatusAndHeaders(f"{request.method} /{path} HTTP/1.1", req_headers,
                                          is_http_request=True))
        self.writer.write_request_response_pair(req, rec)
        self.records += 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--warc", help="write every response to this .warc.gz")
    args = parser.parse_args()
    process = CrawlerProcess({"ROBOTSTXT_OBEY": True, "LOG_LEVEL": "WARNING",
                              "TELNETCONSOLE_ENABLED": False,
                              "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7"})
    crawler = process.create_crawler(BareSpider)
    fh = open(args.warc, "wb") if args.warc else None  # noqa: SIM115 (closed below)
    try:
        if fh is not None:
            out = WarcOut(fh)
            crawler.signals.connect(out.response_received, signal=signals.response_received)
        process.crawl(crawler, url=args.url)
        process.start()
    finally:
        if fh is not None:
            fh.close()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    print(f"requests: {stats.get('downloader/request_count', 0)}  "
          f"responses: {stats.get('downloader/response_count', 0)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
