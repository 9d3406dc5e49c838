"""Crash recovery of ``.warc.gz.open`` files left by a writer that did not close.

Each record is its own gzip member, so the last whole record is the last member that
decompresses to its end (gzip trailer and CRC included) *and* holds one WARC record
whose block is as long as its Content-Length says. The writer puts a ``response`` (or
``revisit``) and then its ``request``; when the file ends with a whole response whose
request never reached the disk (the buffer was flushed between the two, then the
process was killed), that response goes too, so a recovered file ends with a whole
exchange and ``warc verify`` finds every response paired. Everything after the cut is
cut off and the file renamed to ``.warc.gz``; a file without one whole record is deleted.

Only files whose writer is gone are touched: a live writer holds a ``flock`` on its
``.open`` file (storage/warc/openlock.py), and such a file is reported ``in-use`` and
left alone, so recovery is safe beside a running crawl in the same directory.
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from .index import INDEX_NAME, remove_from_index, update_index
from .openlock import lock_if_abandoned
from .records import RESPONSE_TYPES
from .writer import OPEN_SUFFIX

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
IN_USE = "in-use"


@dataclass(frozen=True)
class RecoveryReport:
    """What recovery did to one ``.open`` file."""

    path: Path              # the .open file found
    final: Path | None      # the .warc.gz it became, None when deleted
    action: str             # "renamed" (was whole) | "truncated" | "deleted" | "in-use"
    records: int            # whole records kept
    bytes_kept: int
    bytes_dropped: int

    @property
    def recovered(self) -> bool:
        """False for a file left alone because its writer is still alive."""
        return self.action != IN_USE

    @property
    def final_name(self) -> str:
        return self.path.name[: -len(OPEN_SUFFIX)]


@dataclass(frozen=True)
class _Record:
    type: str
    record_id: str
    concurrent_to: str


def _whole_record(member: bytes) -> _Record | None:
    """The record in one gzip member, or None when it is not whole."""
    try:
        it = ArchiveIterator(BytesIO(member), no_record_parse=True)
        record = next(iter(it))
        headers = record.rec_headers
        length = int(headers.get_header("Content-Length") or -1)
        block = record.raw_stream.read()
    except Exception:  # noqa: BLE001 - any parse failure means "not a whole record"
        logger.debug("unparsable WARC member", exc_info=True)
        return None
    if len(block) != length or not member.endswith(b"\r\n\r\n"):
        return None
    return _Record(str(record.rec_type), str(headers.get_header("WARC-Record-ID") or ""),
                   str(headers.get_header("WARC-Concurrent-To") or ""))


class _Cut:
    """The safe cut point so far: after the last whole record that does not leave a
    response waiting for its request."""

    def __init__(self) -> None:
        self.end = self.count = 0
        self._waiting: tuple[str, int] | None = None   # a response's id and end

    def add(self, record: _Record, end: int) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            response_id, response_end = waiting
            if record.type == "request" and record.concurrent_to == response_id:
                self.end, self.count = end, self.count + 2
                return
            # not followed by its request (another tool's file): it stands alone
            self.end, self.count = response_end, self.count + 1
        if record.type in RESPONSE_TYPES:
            self._waiting = (record.record_id, end)
        else:
            self.end, self.count = end, self.count + 1


def scan_whole_records(path: Path) -> tuple[int, int]:
    """Return ``(end offset of the last whole exchange or lone record, number of
    records up to it)``: a trailing response without its request is not counted."""
    cut = _Cut()
    consumed = 0
    decomp = zlib.decompressobj(zlib.MAX_WBITS + 16)
    parts: list[bytes] = []
    with open(path, "rb") as fh:
        while True:
            data = fh.read(_CHUNK)
            if not data:
                return cut.end, cut.count
            while data:
                try:
                    parts.append(decomp.decompress(data))
                except zlib.error:
                    return cut.end, cut.count
                if not decomp.eof:
                    consumed += len(data)
                    break
                used = len(data) - len(decomp.unused_data)
                member_end = consumed + used
                record = _whole_record(b"".join(parts))
                if record is None:
                    return cut.end, cut.count
                cut.add(record, member_end)
                consumed = member_end
                data = decomp.unused_data
                decomp = zlib.decompressobj(zlib.MAX_WBITS + 16)
                parts = []


def recover_open_file(path: Path) -> RecoveryReport | None:
    """Truncate one ``.open`` file to its last whole exchange (or lone record) and rename
    (or delete) it, if its writer is gone; an ``in-use`` report when a live writer holds
    it; None when the file vanished meanwhile (its writer finished it)."""
    path = Path(path)
    fd = lock_if_abandoned(path)
    if fd is None:
        if not path.exists():
            return None
        logger.info("left %s alone: its writer is still running", path.name)
        return RecoveryReport(path, None, IN_USE, 0, 0, 0)
    try:
        return _recover_locked(path)
    finally:
        os.close(fd)  # after the rename: the lock covers the whole repair


def _recover_locked(path: Path) -> RecoveryReport:
    size = path.stat().st_size
    end, count = scan_whole_records(path)
    final = path.with_name(path.name[: -len(OPEN_SUFFIX)])
    if count == 0:
        path.unlink()
        logger.warning("deleted %s: no whole WARC record in %d bytes", path, size)
        return RecoveryReport(path, None, "deleted", 0, 0, size)
    if final.exists():
        raise FileExistsError(f"cannot recover {path}: {final} already exists")
    action = "renamed"
    if end < size:
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
        action = "truncated"
    os.replace(path, final)
    logger.warning("recovered %s -> %s: %d records kept, %d bytes dropped",
                   path.name, final.name, count, size - end)
    return RecoveryReport(path, final, action, count, end, size - end)


def recover_open_files(directory: Path) -> list[RecoveryReport]:
    """Recover every abandoned ``*.warc.gz.open`` in ``directory`` (oldest name first);
    files still being written come back as ``in-use`` reports, untouched."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    reports = (recover_open_file(p) for p in sorted(directory.glob("*.warc.gz" + OPEN_SUFFIX)))
    return [r for r in reports if r is not None]


def recover_and_reindex(directory: Path) -> list[RecoveryReport]:
    """:func:`recover_open_files`, then bring ``index.cdxj`` in line with what each
    recovered file became (indexed when kept, its lines dropped when deleted)."""
    reports = recover_open_files(directory)
    for report in reports:
        if not report.recovered:
            continue
        if report.final is not None:
            update_index(report.final)
        else:
            remove_from_index(report.final_name, Path(directory) / INDEX_NAME)
    return reports
