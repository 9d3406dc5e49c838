"""Which payloads are already archived: the lookup behind ``revisit`` records.

:class:`DigestIndex` is a small sqlite database (one row per archived response) that
survives across crawls, so a recrawl writes ``revisit`` records for unchanged pages
(identical-payload-digest), links 304 answers to the earlier capture
(server-not-modified) and links browser renderings (``conversion``) to their page.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS captures (
    url TEXT NOT NULL,
    payload_digest TEXT NOT NULL,
    record_id TEXT NOT NULL,
    date TEXT NOT NULL,
    file TEXT NOT NULL,
    offset INTEGER NOT NULL,
    status INTEGER NOT NULL DEFAULT 200,
    seq INTEGER PRIMARY KEY AUTOINCREMENT
);
CREATE INDEX IF NOT EXISTS captures_url_digest ON captures (url, payload_digest);
CREATE INDEX IF NOT EXISTS captures_url ON captures (url, seq);
"""


@dataclass(frozen=True)
class ArchivedCapture:
    """An archived response: enough to write a revisit or conversion that refers to it."""

    uri: str
    date: str
    record_id: str
    payload_digest: str
    file: str
    offset: int
    status: int


class DigestIndex:
    """Persistent ``(url, payload digest) -> first capture`` map in sqlite."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        with self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            # Durable against a SIGKILL without an fsync per archived response (the
            # default FULL); a power loss can only lose recent rows, and a row lost
            # means a later copy is archived in full instead of as a revisit.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def _row(self, row: tuple[object, ...] | None) -> ArchivedCapture | None:
        if row is None:
            return None
        uri, date, record_id, digest, file, offset, status = row
        return ArchivedCapture(str(uri), str(date), str(record_id), str(digest), str(file),
                               int(str(offset)), int(str(status)))

    _COLUMNS = "url, date, record_id, payload_digest, file, offset, status"

    def lookup(self, url: str, payload_digest: str) -> ArchivedCapture | None:
        """The earliest capture of ``url`` with this payload digest, or None."""
        with self._lock:
            cur = self._db.execute(
                f"SELECT {self._COLUMNS} FROM captures WHERE url = ? AND payload_digest = ?"
                " ORDER BY seq LIMIT 1", (url, payload_digest))
            return self._row(cur.fetchone())

    def latest(self, url: str) -> ArchivedCapture | None:
        """The most recent capture of ``url`` (any payload), or None."""
        with self._lock:
            cur = self._db.execute(
                f"SELECT {self._COLUMNS} FROM captures WHERE url = ? ORDER BY seq DESC LIMIT 1",
                (url,))
            return self._row(cur.fetchone())

    def add(self, url: str, payload_digest: str, record_id: str, date: str, file: str,
            offset: int, status: int = 200) -> None:
        """Remember a response record just written."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO captures (url, payload_digest, record_id, date, file, offset, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (url, payload_digest, record_id, date, file, offset, status))

    def forget(self, file: str, from_offset: int = 0) -> int:
        """Drop captures of ``file`` at or after ``from_offset``: records that crash
        recovery cut off (or a whole file it deleted) must not be referred to."""
        with self._lock, self._db:
            return int(self._db.execute(
                "DELETE FROM captures WHERE file = ? AND offset >= ?",
                (file, from_offset)).rowcount)

    def close(self) -> None:
        with self._lock:
            self._db.close()
