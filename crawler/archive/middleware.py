"""Downloader middleware that archives every HTTP exchange of the crawl into WARC files.

Install it at priority 950 (see crawler/settings.py)::

    DOWNLOADER_MIDDLEWARES = {"crawler.archive.middleware.WarcArchiveMiddleware": 950}

At 950 its ``process_request`` runs *last* among request middlewares (so the headers it
records are the final ones, Accept-Encoding and User-Agent included) and its
``process_response`` runs *first*, before HttpCompressionMiddleware (590) decodes the
body and before Redirect/Retry act: robots.txt, 3xx, 4xx and 5xx are archived exactly
as received (still content-encoded; de-chunked by Twisted, so Transfer-Encoding is
renamed by the writer).

What each response becomes:
- ``request`` + ``response`` records (WARC-Concurrent-To both ways);
- a 304 -> ``request`` + ``revisit`` (server-not-modified, refers to the last capture);
- a 2xx whose payload digest was already archived for that URL (DigestIndex, sqlite,
  kept across crawls) -> ``request`` + ``revisit`` (identical-payload-digest);
- a response rendered by scrapy-playwright (``"playwright"`` in flags: a DOM, not
  server bytes) -> a ``conversion`` record referring to the page's archived response;
  skipped (and counted) when no such response exists;
- responses flagged ``"cached"`` (HTTP cache) and requests with
  ``meta["warc_skip"]`` are not archived; images neither when WARC_ARCHIVE_IMAGES=False.

How a request and its response become an exchange (headers as sent, truncation) is
crawler/archive/capture.py; the warcinfo fields are crawler/archive/warcinfo.py;
recovery of crashed files and indexing of closed ones, crawler/archive/upkeep.py.

Exchanges made outside the downloader (the sub-requests of a page rendered in the
browser, crawler/archive/browser.py) come in through :meth:`archive_exchange`, under
the same revisit and digest-index rules.

After writing, ``request.meta["warc_record"] = {"file": NAME.warc.gz, "offset": N}``
points at the response (or revisit) record. For a rendered page it points at the
response the conversion refers to, and ``meta["warc_conversion"]`` at the conversion.

Metadata: spiders call :func:`crawler.archive.signals.archive_outlinks`; this
middleware writes one ``metadata`` record (``outlink: URL`` lines) per call.

Settings: WARC_ENABLED (True; False raises NotConfigured), WARC_DIR ("data/warc"),
WARC_PREFIX ("gzarchive"), WARC_MAX_SIZE (1_000_000_000), WARC_OPERATOR (""),
WARC_ARCHIVE_IMAGES (True), WARC_DIGEST_DB (WARC_DIR/../state/warc-digests.sqlite3).
Stats: archive/warc/records, archive/warc/bytes, archive/warc/files, archive/warc/revisits,
archive/warc/conversions, archive/warc/metadata, archive/warc/skipped/{why},
archive/warc/errors/write (a record not archived: an OSError writing it or closing a
file, logged, and the crawl stopped; or another failure, also counted under its class),
archive/warc/errors/{ExceptionClass}, archive/warc/errors/index, archive/warc/recovered,
archive/warc/recovery/in_use.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future

from storage.warc.digests import DigestIndex
from storage.warc.exchange import HttpExchange, RecordLocation
from storage.warc.writer import (
    PROFILE_IDENTICAL_PAYLOAD,
    PROFILE_SERVER_NOT_MODIFIED,
    WarcWriter,
    sha1_digest,
)

from .capture import META_DATE, exchange_of, skip_reason, stamp_request
from .config import WarcConfig
from .signals import outlinks_found
from .upkeep import ClosedFileIndexer, recover_at_start
from .warcinfo import warcinfo_fields

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

# Where the record of a page just archived is, for its outlinks' metadata record (asked
# for while its response is in the spider; older ones fall back to the digest index).
# 20,000 held ~9 MB in a long crawl; the responses in flight at once are a few hundred.
_RECENT_MAX = 4_096


class WarcArchiveMiddleware:
    """Archive raw request/response pairs (see the module docstring)."""

    def __init__(self, crawler: Crawler, config: WarcConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.stats = crawler.stats
        self.writer: WarcWriter | None = None
        self.digests: DigestIndex | None = None
        self._recent: OrderedDict[str, RecordLocation] = OrderedDict()
        self.indexer = ClosedFileIndexer(self.stats)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = WarcConfig.from_settings(crawler.settings)
        if not config.enabled:
            raise NotConfigured("WARC archiving disabled by WARC_ENABLED=False")
        mw = cls(crawler, config)
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(mw.on_outlinks_found, signal=outlinks_found)
        return mw

    # ------------------------------------------------------------ lifecycle
    def warcinfo(self) -> dict[str, str]:
        """Fields of the warcinfo record that starts each file (crawler/archive/warcinfo.py)."""
        return warcinfo_fields(self.crawler, self.config)

    def open(self) -> None:
        """Recover crashed files, open the digest index and the (lazy) writer."""
        if self.writer is not None:
            return
        directory = self.config.directory
        directory.mkdir(parents=True, exist_ok=True)
        self.digests = DigestIndex(self.config.digest_db)
        recover_at_start(directory, self.digests, self.stats)
        self.writer = WarcWriter(directory, self.config.prefix, self.config.max_size,
                                 self.warcinfo(), on_close=self.indexer.file_closed)

    def close(self) -> None:
        """Close the current file (renamed, indexed) and the digest index."""
        writer, self.writer = self.writer, None
        try:
            if writer is not None:
                try:
                    writer.close()
                except OSError as exc:
                    self._write_failed(exc, "the last WARC file")
                self._update_stats(writer)
        finally:
            if self.digests is not None:
                self.digests.close()
                self.digests = None

    def spider_opened(self, spider: Any = None) -> None:
        self.open()

    async def spider_closed(self, spider: Any = None, reason: str = "") -> None:
        self.close()
        # Indexing of closed files runs in threads; wait for it before the crawl ends.
        await maybe_deferred_to_future(self.indexer.wait())

    def _write_failed(self, exc: OSError, what: str) -> None:
        """A WARC write failed (disk full, I/O error): counted (exit code 8, see
        crawler/run), logged, and the crawl stopped: crawling on would fetch pages we
        cannot keep."""
        self.stats.inc_value("archive/warc/errors/write")
        logger.error("could not write %s to the WARC archive (%s: %s)", what,
                     type(exc).__name__, exc, exc_info=True)
        try:
            engine = self.crawler.engine
        except RuntimeError:  # no crawl running (Scrapy raises until the engine exists)
            return
        if engine is not None and getattr(engine, "running", False):
            deferred_from_coro(engine.close_spider_async(reason="warc_write_error"))

    def _update_stats(self, writer: WarcWriter) -> None:
        self.stats.set_value("archive/warc/records", writer.records_written)
        self.stats.set_value("archive/warc/bytes", writer.bytes_written)

    # -------------------------------------------------------------- requests
    def process_request(self, request: Request) -> None:
        stamp_request(request)
        return None

    def process_exception(self, request: Request, exception: BaseException) -> None:
        if not isinstance(exception, IgnoreRequest):
            self.stats.inc_value(f"archive/warc/errors/{type(exception).__name__}")
        return None

    def process_response(self, request: Request, response: Response) -> Response:
        if self.writer is None:
            return response
        why = skip_reason(request, response, self.config.archive_images)
        if why:
            self.stats.inc_value(f"archive/warc/skipped/{why}")
            return response
        try:
            if "playwright" in response.flags:
                self._archive_rendering(request, response)
            else:
                self._archive_exchange(request, response)
        except OSError as exc:
            self._write_failed(exc, response.url)
        except Exception as exc:
            # not archived either (a bug, not the disk): counted the same for the exit code
            self.stats.inc_value(f"archive/warc/errors/{type(exc).__name__}")
            self.stats.inc_value("archive/warc/errors/write")  # exit code 8 (crawler/run/exits)
            logger.error("could not archive %s", response.url, exc_info=True)
        finally:
            self._update_stats(self.writer)
        return response

    def _remember(self, url: str, location: RecordLocation) -> None:
        self._recent[url] = location
        self._recent.move_to_end(url)
        while len(self._recent) > _RECENT_MAX:
            self._recent.popitem(last=False)

    def archive_exchange(self, ex: HttpExchange) -> RecordLocation | None:
        """Archive an exchange made outside Scrapy's downloader (e.g. by the browser that
        renders a page: crawler/archive/browser.py), with the same revisit and digest-index
        rules as a downloaded response. None when the archive is not open."""
        if self.writer is None or self.digests is None:
            return None
        try:
            return self._write(ex)
        except OSError as exc:
            self._write_failed(exc, ex.url)
            raise
        finally:
            self._update_stats(self.writer)

    def _archive_exchange(self, request: Request, response: Response) -> None:
        location = self._write(exchange_of(request, response))
        request.meta["warc_record"] = location.as_meta()

    def _write(self, ex: HttpExchange) -> RecordLocation:
        assert self.writer is not None and self.digests is not None
        if ex.status == 304:
            prior = self.digests.latest(ex.url)
            location = self.writer.write_revisit(
                ex, prior.uri if prior else None, prior.date if prior else None,
                PROFILE_SERVER_NOT_MODIFIED,
                payload_digest=prior.payload_digest if prior else None,
                refers_to_record_id=prior.record_id if prior else None)
            self.stats.inc_value("archive/warc/revisits")
        else:
            digest = sha1_digest(ex.body)
            prior = None
            if 200 <= ex.status < 300 and ex.body and not ex.truncated:
                prior = self.digests.lookup(ex.url, digest)
            if prior is not None:
                location = self.writer.write_revisit(
                    ex, prior.uri, prior.date, PROFILE_IDENTICAL_PAYLOAD,
                    payload_digest=digest, refers_to_record_id=prior.record_id)
                self.stats.inc_value("archive/warc/revisits")
            else:
                location = self.writer.write_exchange(ex)
                if 200 <= ex.status < 300 and not ex.truncated:
                    self.digests.add(ex.url, digest, location.record_id, location.date,
                                     location.file, location.offset, ex.status)
        self._remember(ex.url, location)
        return location

    def _archive_rendering(self, request: Request, response: Response) -> None:
        assert self.writer is not None and self.digests is not None
        prior = self.digests.latest(response.url)
        if prior is None:
            self.stats.inc_value("archive/warc/skipped/unlinked_conversion")
            logger.warning("rendered page %s not archived: no archived response to refer to",
                           response.url)
            return
        location = self.writer.write_conversion(
            response.url, response.body, "text/html", prior.record_id,
            date=request.meta.get(META_DATE))
        self.stats.inc_value("archive/warc/conversions")
        request.meta["warc_record"] = {"file": prior.file, "offset": prior.offset}
        request.meta["warc_conversion"] = location.as_meta()

    # -------------------------------------------------------------- metadata
    def on_outlinks_found(self, url: str, outlinks: list[str]) -> None:
        """Write a ``metadata`` record listing ``outlinks`` of page ``url``."""
        if self.writer is None or self.digests is None:
            return
        concerning = self._recent.get(url)
        concerning_id = concerning.record_id if concerning else None
        if concerning_id is None:
            prior = self.digests.latest(url)
            concerning_id = prior.record_id if prior else None
        try:
            self.writer.write_metadata(url, [("outlink", link) for link in outlinks],
                                       concerning=concerning_id)
        except OSError as exc:
            self._write_failed(exc, f"the outlinks of {url}")
            return
        self.stats.inc_value("archive/warc/metadata")
        self._update_stats(self.writer)
