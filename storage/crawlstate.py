"""Crawl state that survives a crash: the article frontier, HTTP validators, listing walks.

One SQLite file under DATA/state. An article URL is *pending* from the moment a
listing links to it until its record is durably stored (MongoDB acknowledged with a
journaled write, or spooled); a run that was killed leaves its pending URLs here and
the next run fetches them first. Validators (ETag, Last-Modified) of every article
fetched make recrawls conditional. How far each section's listing has been walked
lives in the same file (:attr:`CrawlState.walks`, see storage.walks).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.walks import SqliteWalkState

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    url TEXT PRIMARY KEY,
    sections TEXT NOT NULL,
    added TEXT NOT NULL,
    urls TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS rendered_sections (
    section TEXT PRIMARY KEY,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS validators (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    content_hash TEXT,
    checked TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class PendingArticle:
    """An article linked but not durably stored yet: its sections and every URL it was
    linked at (aliases a resumed fetch would not see again)."""

    url: str
    sections: list[str]
    urls: list[str]


@dataclass(frozen=True)
class Validators:
    etag: str | None
    last_modified: str | None
    content_hash: str | None


class CrawlState:
    """Thread-safe SQLite-backed frontier and validator store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.walks = SqliteWalkState(lambda: self.db, self._lock)

    def open(self) -> CrawlState:
        if self._db is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit is durable once in the WAL, which a SIGKILL cannot undo
        # (only a power loss may roll back the last commits, and then as a prefix: a page
        # walked never survives the pending rows added before it). FULL cost an fsync per
        # statement on the reactor thread (several per article).
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(pending)")}
        if "urls" not in columns:  # a state file of an earlier version
            db.execute("ALTER TABLE pending ADD COLUMN urls TEXT NOT NULL DEFAULT '[]'")
        SqliteWalkState.create_schema(db)
        self._db = db
        return self

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> CrawlState:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.open()
        assert self._db is not None
        return self._db

    # -- frontier -----------------------------------------------------------------
    def add_pending(self, url: str, sections: Iterable[str], urls: Iterable[str] = ()) -> None:
        """*url* is pending (linked from *sections*, seen at *urls*); merges with a row."""
        with self._lock:
            self._merge_pending(url, sections, urls, insert=True)

    def merge_pending(self, url: str, sections: Iterable[str], urls: Iterable[str]) -> bool:
        """Add sections and URLs to *url*'s row if it is still pending; whether it was."""
        with self._lock:
            return self._merge_pending(url, sections, urls, insert=False)

    def _merge_pending(self, url: str, sections: Iterable[str], urls: Iterable[str],
                       insert: bool) -> bool:
        row = self.db.execute("SELECT sections, urls FROM pending WHERE url=?",
                              (url,)).fetchone()
        if row is None and not insert:
            return False
        merged = sorted(set(json.loads(row[0]) if row else []) | set(sections))
        seen = sorted(set(json.loads(row[1]) if row else []) | set(urls))
        self.db.execute(
            "INSERT INTO pending(url, sections, urls, added) VALUES(?,?,?,?) "
            "ON CONFLICT(url) DO UPDATE SET sections=excluded.sections, urls=excluded.urls",
            (url, json.dumps(merged, ensure_ascii=False), json.dumps(seen, ensure_ascii=False),
             datetime.now(UTC).isoformat()))
        return True

    def mark_done(self, urls: Iterable[str]) -> None:
        with self._lock:
            self.db.executemany("DELETE FROM pending WHERE url=?", [(u,) for u in urls])

    def pending(self) -> list[tuple[str, list[str]]]:
        """Pending articles as (url, sections), oldest first."""
        return [(p.url, p.sections) for p in self.pending_articles()]

    def pending_articles(self) -> list[PendingArticle]:
        """Pending articles with every URL they were linked at, oldest first."""
        with self._lock:
            rows = self.db.execute(
                "SELECT url, sections, urls FROM pending ORDER BY added").fetchall()
        return [PendingArticle(url, json.loads(sections), json.loads(urls))
                for url, sections, urls in rows]

    # -- validators -----------------------------------------------------------------
    def validators(self, url: str) -> Validators | None:
        with self._lock:
            row = self.db.execute(
                "SELECT etag, last_modified, content_hash FROM validators WHERE url=?",
                (url,)).fetchone()
        return Validators(*row) if row else None

    def set_validators(self, url: str, etag: str | None, last_modified: str | None,
                       content_hash: str | None = None) -> None:
        now = datetime.now(UTC).isoformat()
        with self._lock:
            self.db.execute(
                "INSERT INTO validators(url, etag, last_modified, content_hash, checked) "
                "VALUES(?,?,?,?,?) ON CONFLICT(url) DO UPDATE SET etag=excluded.etag, "
                "last_modified=excluded.last_modified, "
                "content_hash=COALESCE(excluded.content_hash, validators.content_hash), "
                "checked=excluded.checked",
                (url, etag, last_modified, content_hash, now))

    # -- sections whose listings need a browser ---------------------------------------
    def rendered_sections(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self.db.execute("SELECT section FROM rendered_sections")}

    def remember_rendered(self, section: str) -> None:
        with self._lock:
            self.db.execute("INSERT OR IGNORE INTO rendered_sections(section, since) "
                            "VALUES(?, ?)", (section, datetime.now(UTC).isoformat()))

    def forget(self, url: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM validators WHERE url=?", (url,))

    def known(self, url: str) -> bool:
        return self.validators(url) is not None
