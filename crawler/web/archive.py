"""The WARC side of the reading room: captures from ``DATA/warc/index.cdxj`` and its
segments (storage/warc/index.py), records read with warcio.

Only files the index names are ever opened, each resolved under ``DATA/warc`` (a name
with a path separator or ``..`` is refused), so no route can read a file outside the
archive. The index is the replay index (storage/warc/index.py): 304 revisits are not in
it; an identical-payload revisit is followed to its original here.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator
from warcio.timeutils import iso_date_to_timestamp

from storage.warc.index import INDEX_NAME, index_stamp, iter_index

logger = logging.getLogger(__name__)

#: An archived body served to the viewer is at most this big.
MAX_BODY = 32 * 2**20


class ArchiveError(Exception):
    """A capture that cannot be read (unknown file, bad offset, not a response)."""


@dataclass(frozen=True)
class Capture:
    """One line of the replay index."""

    url: str
    timestamp: str  # 14 digits, UTC
    status: str
    mime: str
    digest: str
    filename: str
    offset: int
    length: int

    @property
    def is_revisit(self) -> bool:
        return self.mime == "warc/revisit"

    @property
    def when(self) -> str:
        t = self.timestamp
        return f"{t[0:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:14]} UTC"


@dataclass(frozen=True)
class Payload:
    """What an archived response carried."""

    capture: Capture
    status: str
    content_type: str
    body: bytes


def safe_name(name: str) -> bool:
    """A bare WARC file name: no directory part, no ``..``, no NUL."""
    return bool(name) and "/" not in name and "\\" not in name and "\x00" not in name \
        and name not in (".", "..") and not name.startswith("..")


class Archive:
    """Captures by URL (from the index, re-read when it changes) and their payloads."""

    def __init__(self, warc_dir: Path) -> None:
        self.warc_dir = Path(warc_dir).resolve()
        self.index_path = self.warc_dir / INDEX_NAME
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._by_url: dict[str, list[Capture]] = {}
        self._files: frozenset[str] = frozenset()

    # -- the index ----------------------------------------------------------------
    def _load(self) -> None:
        stamp = index_stamp(self.index_path)  # main and segments (storage/warc/index.py)
        if not stamp:
            self._by_url, self._files, self._stamp = {}, frozenset(), None
            return
        if stamp == self._stamp:
            return
        by_url: dict[str, list[Capture]] = {}
        files: set[str] = set()
        for line in iter_index(self.index_path):
            capture = _parse(line)
            if capture is None:
                continue
            by_url.setdefault(capture.url, []).append(capture)
            files.add(capture.filename)
        for captures in by_url.values():
            captures.sort(key=lambda c: c.timestamp)
        self._by_url, self._files, self._stamp = by_url, frozenset(files), stamp

    def captures(self, url: str) -> list[Capture]:
        """Every indexed capture of ``url``, oldest first."""
        with self._lock:
            self._load()
            return list(self._by_url.get(url, ()))

    def known_file(self, name: str) -> bool:
        with self._lock:
            self._load()
            return name in self._files

    # -- records ------------------------------------------------------------------
    def path_of(self, name: str) -> Path:
        """The path of an indexed WARC file, refused unless it lies in the WARC directory."""
        if not safe_name(name) or not self.known_file(name):
            raise ArchiveError(f"not a WARC file of this archive: {name!r}")
        path = (self.warc_dir / name).resolve()
        if path.parent != self.warc_dir:
            raise ArchiveError(f"not a WARC file of this archive: {name!r}")
        return path

    def read(self, filename: str, offset: int) -> Any:
        """The record at ``offset`` of an indexed file, its content read (warcio)."""
        if offset < 0:
            raise ArchiveError(f"bad offset {offset}")
        path = self.path_of(filename)
        with path.open("rb") as fh:
            fh.seek(offset)
            for record in ArchiveIterator(fh):
                body = record.content_stream().read(MAX_BODY + 1)
                if len(body) > MAX_BODY:
                    raise ArchiveError(f"record at {filename}@{offset} is over {MAX_BODY} bytes")
                return record, body
        raise ArchiveError(f"no record at {filename}@{offset}")

    def payload(self, capture: Capture) -> Payload:
        """The response a capture carried; a revisit is followed to its original."""
        record, body = self.read(capture.filename, capture.offset)
        if record.rec_type == "revisit":
            original = self._original(capture, record)
            if original is None:
                raise ArchiveError(f"the original of the revisit of {capture.url} at "
                                   f"{capture.timestamp} is not in the archive")
            record_o, body = self.read(original.filename, original.offset)
            if record_o.rec_type != "response":
                raise ArchiveError(f"revisit of {capture.url} refers to a {record_o.rec_type}")
            record = record_o
        elif record.rec_type != "response":
            raise ArchiveError(f"{capture.url} at {capture.timestamp} is a {record.rec_type} record")
        http = record.http_headers
        status = http.get_statuscode() if http else capture.status
        ctype = (http.get_header("Content-Type") if http else None) or capture.mime
        return Payload(capture, str(status), ctype, body)

    def _original(self, capture: Capture, record: Any) -> Capture | None:
        target = record.rec_headers.get_header("WARC-Refers-To-Target-URI") or capture.url
        date = record.rec_headers.get_header("WARC-Refers-To-Date")
        ts = iso_date_to_timestamp(date) if date else None
        candidates = [c for c in self.captures(target) if not c.is_revisit]
        for c in candidates:
            if ts and c.timestamp == ts:
                return c
        same = [c for c in candidates if c.digest == capture.digest
                and c.timestamp <= capture.timestamp]
        return same[-1] if same else None

    def latest_good(self, url: str, before: str | None = None) -> Capture | None:
        """The newest capture of ``url`` (at or before ``before``) that answered 200."""
        for capture in reversed(self.captures(url)):
            if before and capture.timestamp > before:
                continue
            if capture.status == "200" or (capture.is_revisit and capture.status in ("", "-")):
                return capture
        return None

    def at(self, url: str, timestamp: str | None) -> Capture | None:
        """The capture of ``url`` at ``timestamp`` exactly, else the latest good one."""
        if timestamp:
            for capture in self.captures(url):
                if capture.timestamp == timestamp:
                    return capture
            return None
        return self.latest_good(url)


def _parse(line: str) -> Capture | None:
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) != 3 or not parts[2].startswith("{"):
        return None
    try:
        fields: dict[str, Any] = json.loads(parts[2])
        if "url" not in fields:  # warcinfo and other records of no URL
            return None
        return Capture(url=str(fields["url"]), timestamp=parts[1],
                       status=str(fields.get("status", "")), mime=str(fields.get("mime", "")),
                       digest=str(fields.get("digest", "")),
                       filename=str(fields["filename"]), offset=int(fields["offset"]),
                       length=int(fields.get("length", 0)))
    except (ValueError, KeyError) as exc:
        logger.warning("skipping a bad index line (%s): %.120s", exc, line)
        return None
