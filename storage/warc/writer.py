"""Rotating, crash-safe WARC writer over warcio.

A :class:`WarcWriter` owns a directory. It writes gzip-per-record WARC/1.0 files named
``PREFIX-YYYYmmddHHMMSSfff-SERIAL-HOST-PID.warc.gz`` (sortable by time, unique across
processes and hosts). A file is written as ``NAME.warc.gz.open`` and renamed only when
it is closed (flushed and fsynced), so a finished-looking file is always whole; a crash
leaves an ``.open`` file for :func:`storage.warc.recovery.recover_open_files`. The
writer holds a ``flock`` on its ``.open`` file until the rename (storage/warc/openlock.py),
so recovery never cuts a file that a live writer, in any process, is still writing.

Each file starts with a ``warcinfo`` record; the writer rotates to a new file once the
current one has reached ``max_size`` bytes (an exchange is never split across files).
Record ids and clocks can be injected so that tests get byte-identical output.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

from warcio.warcwriter import WARCWriter

from .errors import WarcWriterClosed
from .exchange import HttpExchange, RecordLocation
from .openlock import finish_cut, lock_for_writing
from .records import (
    PROFILE_IDENTICAL_PAYLOAD,
    PROFILE_SERVER_NOT_MODIFIED,
    common_extra,
    request_http_headers,
    response_http_headers,
    sha1_digest,
    warc_date,
    warc_headers,
)

logger = logging.getLogger(__name__)

__all__ = ["OPEN_SUFFIX", "PROFILE_IDENTICAL_PAYLOAD", "PROFILE_SERVER_NOT_MODIFIED",
           "WARC_SUFFIX", "WarcWriter", "sha1_digest", "warc_date"]

OPEN_SUFFIX = ".open"
WARC_SUFFIX = ".warc.gz"


def _default_record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _safe_host(name: str) -> str:
    # '-' separates the fields of the file name
    return re.sub(r"[^A-Za-z0-9.]", "_", name) or "host"


class WarcWriter:
    """Write HTTP exchanges and companion records into rotating ``.warc.gz`` files.

    Thread-safe (one lock around every write). ``on_close(path)`` is called with the
    final path of each file right after it has been renamed (e.g. to index it).
    """

    def __init__(
        self,
        directory: Path,
        prefix: str,
        max_size: int,
        warcinfo: dict[str, str],
        on_close: Callable[[Path], None] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        record_id_factory: Callable[[], str] | None = None,
        hostname: str | None = None,
        pid: int | None = None,
    ) -> None:
        if max_size <= 0:
            raise ValueError("max_size must be positive")
        self.directory = Path(directory)
        self.prefix = prefix
        self.max_size = max_size
        self.warcinfo = dict(warcinfo)
        self.on_close = on_close
        self._clock = clock or _utcnow
        self._new_id = record_id_factory or _default_record_id
        self._host = _safe_host(hostname or socket.gethostname())
        self._pid = os.getpid() if pid is None else pid
        self._lock = threading.RLock()
        self._serial = 0
        self._fh: BinaryIO | None = None
        self._warc: WARCWriter | None = None
        self._name: str | None = None  # final basename of the current file
        self._closed = False
        self.files_written: list[Path] = []
        self.records_written = 0
        self.bytes_written = 0  # compressed bytes, all files

    # ------------------------------------------------------------------ files
    @property
    def current_path(self) -> Path | None:
        """Path of the ``.open`` file being written, if any."""
        with self._lock:
            return None if self._name is None else self.directory / (self._name + OPEN_SUFFIX)

    def _file_name(self) -> str:
        now = self._clock()
        if now.tzinfo is not None:
            now = now.astimezone(UTC)
        stamp = now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}"
        return f"{self.prefix}-{stamp}-{self._serial:05d}-{self._host}-{self._pid}{WARC_SUFFIX}"

    def _ensure_file(self) -> tuple[BinaryIO, WARCWriter, str]:
        if self._closed:
            raise WarcWriterClosed("write after close")
        if self._fh is None or self._warc is None or self._name is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            while True:
                name = self._file_name()
                self._serial += 1
                path = self.directory / (name + OPEN_SUFFIX)
                try:
                    fh = open(path, "xb")  # noqa: SIM115
                except FileExistsError:
                    continue
                try:
                    locked = lock_for_writing(fh, path)
                except BaseException:
                    fh.close()
                    raise
                if locked:
                    break
                fh.close()  # a recovery took the empty file away before we locked it
            self._fh, self._name = fh, name
            self._warc = WARCWriter(fh, gzip=True)
            try:
                self._write(self._warcinfo_record(name))
            except BaseException:
                self._fh = self._warc = self._name = None
                fh.close()
                path.unlink(missing_ok=True)  # nothing but a partial warcinfo in it
                raise
            logger.info("opened WARC file %s", fh.name)
        return self._fh, self._warc, self._name

    def _finish_file(self) -> None:
        if self._fh is None or self._name is None:
            return
        fh, name = self._fh, self._name
        self._fh = self._warc = self._name = None
        final = self.directory / name
        try:
            fh.flush()
            os.fsync(fh.fileno())
            # Renamed while still locked: recovery must never see an unlocked .open
            # file whose writer is about to rename it.
            os.replace(self.directory / (name + OPEN_SUFFIX), final)
        finally:
            fh.close()
        _fsync_dir(self.directory)
        self.files_written.append(final)
        logger.info("closed WARC file %s", final)
        if self.on_close is not None:
            self.on_close(final)

    def close(self) -> None:
        """Flush, fsync and rename the current file, then refuse further writes."""
        with self._lock:
            if self._closed:
                return
            try:
                self._finish_file()
            finally:
                self._closed = True

    def rotate(self) -> None:
        """Close the current file now; the next write opens a new one."""
        with self._lock:
            self._finish_file()

    @contextmanager
    def _batch(self) -> Iterator[tuple[WARCWriter, str]]:
        """Hold the lock around records that belong together (a response and its
        request) and flush them to the file together. If that fails (disk full, I/O
        error), the file is cut back to where they began and closed, so that it ends
        with a whole exchange (the next write opens a new file), and the error re-raised.
        """
        with self._lock:
            fh, warc, name = self._ensure_file()
            start, records, size = fh.tell(), self.records_written, self.bytes_written
            try:
                yield warc, name
                if self._fh is fh:
                    fh.flush()  # on disk == fh.tell() between batches: a safe cut point
            except OSError:
                if self._fh is fh:
                    self.records_written, self.bytes_written = records, size
                    self._salvage(fh, name, start)
                raise

    def _salvage(self, fh: BinaryIO, name: str, start: int) -> None:
        self._fh = self._warc = self._name = None
        path, final = self.directory / (name + OPEN_SUFFIX), self.directory / name
        try:
            fh.close()
        except OSError as exc:
            # its buffer held the failed records only; finish_cut removes them anyway
            logger.debug("closing %s after a failed write: %s", path.name, exc)
        try:
            finished = finish_cut(path, start, final)
        except OSError:
            logger.error("cannot cut %s back to %d bytes after a failed write; left for "
                         "recovery", path.name, start, exc_info=True)
            return
        if finished:
            logger.warning("closed WARC file %s early, cut back to its last whole "
                           "exchange (%d bytes) after a failed write", final, start)
            _fsync_dir(self.directory)
            self.files_written.append(final)
            if self.on_close is not None:
                self.on_close(final)

    def _write(self, record: Any) -> tuple[int, int]:
        assert self._fh is not None and self._warc is not None
        offset = self._fh.tell()
        self._warc.write_record(record)
        length = self._fh.tell() - offset
        self.records_written += 1
        self.bytes_written += length
        return offset, length

    def _maybe_rotate(self) -> None:
        if self._fh is not None and self._fh.tell() >= self.max_size:
            self._finish_file()

    # ---------------------------------------------------------------- records
    def _warcinfo_record(self, name: str) -> Any:
        assert self._warc is not None
        body = "".join(f"{k}: {v}\r\n" for k, v in self.warcinfo.items() if v != "")
        payload = body.encode("utf-8")
        headers = warc_headers("warcinfo", "", warc_date(self._clock()), self._new_id(),
                                [("WARC-Filename", name)])
        return self._warc.create_warc_record(
            "", "warcinfo", payload=BytesIO(payload), length=len(payload),
            warc_content_type="application/warc-fields", warc_headers_dict=headers)

    def _request_record(self, ex: HttpExchange, record_id: str, date: str,
                        concurrent_to: str) -> Any:
        assert self._warc is not None
        http = request_http_headers(ex)
        headers = warc_headers("request", ex.url, date, record_id,
                                [("WARC-Concurrent-To", concurrent_to)])
        return self._warc.create_warc_record(
            ex.url, "request", payload=BytesIO(ex.request_body), length=len(ex.request_body),
            warc_headers_dict=headers, http_headers=http)

    def write_exchange(self, ex: HttpExchange) -> RecordLocation:
        """Write a ``response`` and its ``request`` record; return the response's place."""
        with self._batch() as (warc, name):
            req_id, resp_id = self._new_id(), self._new_id()
            date = warc_date(ex.date)
            digest = sha1_digest(ex.body)
            headers = warc_headers("response", ex.url, date, resp_id,
                                    common_extra(ex, req_id))
            headers["WARC-Payload-Digest"] = digest
            response = warc.create_warc_record(
                ex.url, "response", payload=BytesIO(ex.body), length=len(ex.body),
                warc_headers_dict=headers, http_headers=response_http_headers(ex))
            offset, length = self._write(response)
            self._write(self._request_record(ex, req_id, date, resp_id))
            self._maybe_rotate()
            return RecordLocation(name, offset, length, resp_id, date, digest)

    def write_revisit(self, ex: HttpExchange, refers_to_uri: str | None,
                      refers_to_date: str | None, profile: str = PROFILE_IDENTICAL_PAYLOAD,
                      *, payload_digest: str | None = None,
                      refers_to_record_id: str | None = None) -> RecordLocation:
        """Write a ``revisit`` (HTTP headers only) and its ``request`` record.

        For the identical-payload-digest profile the payload digest defaults to the
        digest of ``ex.body``; for server-not-modified it is the earlier record's, if
        known. The refers-to fields are omitted when None.
        """
        with self._batch() as (warc, name):
            req_id, rev_id = self._new_id(), self._new_id()
            date = warc_date(ex.date)
            if payload_digest is None and profile == PROFILE_IDENTICAL_PAYLOAD:
                payload_digest = sha1_digest(ex.body)
            extra = common_extra(ex, req_id)
            extra.append(("WARC-Profile", profile))
            if refers_to_record_id:
                extra.append(("WARC-Refers-To", refers_to_record_id))
            if refers_to_uri:
                extra.append(("WARC-Refers-To-Target-URI", refers_to_uri))
            if refers_to_date:
                extra.append(("WARC-Refers-To-Date", refers_to_date))
            if payload_digest:
                extra.append(("WARC-Payload-Digest", payload_digest))
            headers = warc_headers("revisit", ex.url, date, rev_id, extra)
            revisit = warc.create_warc_record(
                ex.url, "revisit", warc_headers_dict=headers,
                http_headers=response_http_headers(ex))
            offset, length = self._write(revisit)
            self._write(self._request_record(ex, req_id, date, rev_id))
            self._maybe_rotate()
            return RecordLocation(name, offset, length, rev_id, date, payload_digest)

    def _write_block(self, record_type: str, url: str, content: bytes, content_type: str,
                     extra: list[tuple[str, str]], date: datetime | None) -> RecordLocation:
        with self._batch() as (warc, name):
            rec_id = self._new_id()
            when = warc_date(date or self._clock())
            headers = warc_headers(record_type, url, when, rec_id, extra)
            digest = sha1_digest(content)
            headers["WARC-Payload-Digest"] = digest
            record = warc.create_warc_record(
                url, record_type, payload=BytesIO(content), length=len(content),
                warc_content_type=content_type, warc_headers_dict=headers)
            offset, length = self._write(record)
            self._maybe_rotate()
            return RecordLocation(name, offset, length, rec_id, when, digest)

    def write_conversion(self, url: str, content: bytes, content_type: str,
                         refers_to_record_id: str, *,
                         date: datetime | None = None) -> RecordLocation:
        """A ``conversion`` record: content derived from (WARC-Refers-To) another record,
        e.g. the DOM a browser rendered from an archived response."""
        return self._write_block("conversion", url, content, content_type,
                                 [("WARC-Refers-To", refers_to_record_id)], date)

    def write_resource(self, url: str, content: bytes, content_type: str, *,
                       date: datetime | None = None,
                       concurrent_to: str | None = None) -> RecordLocation:
        """A ``resource`` record: content obtained without an HTTP exchange to archive."""
        extra = [("WARC-Concurrent-To", concurrent_to)] if concurrent_to else []
        return self._write_block("resource", url, content, content_type, extra, date)

    def write_metadata(self, url: str, fields: list[tuple[str, str]], *,
                       concerning: str | None = None,
                       date: datetime | None = None) -> RecordLocation:
        """A ``metadata`` record of ``name: value`` lines (e.g. ``outlink: URL``) about
        ``url``; ``concerning`` is the record id it describes (WARC-Concerning)."""
        content = "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8")
        extra = [("WARC-Concerning", concerning)] if concerning else []
        return self._write_block("metadata", url, content, "application/warc-fields",
                                 extra, date)

    def __enter__(self) -> WarcWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename still happened
    finally:
        os.close(fd)
