"""Listing-walk progress that survives a crash: per section, the last complete walk and
the frontier of listing pages still to walk.

A *walk* of a section's listing starts at page 1 and follows "next page" links. Each
listing page the crawl schedules joins the section's **frontier**; once its article
links are all scheduled (and so pending in the article frontier), it leaves the
frontier and the next page joins it in one transaction. A walk that was cut (killed,
interrupted, ``--max-articles``, a failed listing page, an empty rendering) therefore
leaves exactly the pages not yet walked, and the next run resumes from them. A walk
that reaches the end of the listing records a **complete walk** (when, how many pages
deep, its last page). Crawls may stop walking early at pages of known articles only
once a complete walk is on record, and only down to the depth that walk reached.
The listing's first page as the home navigation last linked it is kept too (``entry``),
so a later run can start walking before the home page has answered.

:class:`WalkState` is the interface; :class:`SqliteWalkState` keeps it in the crawl
state file (storage.crawlstate). A shared-frontier backend (Redis, MongoDB) for many
workers implements the same protocol: ``page_walked`` must be atomic.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS listing_walks (
    section TEXT PRIMARY KEY,
    complete_at TEXT,
    complete_pages INTEGER NOT NULL DEFAULT 0,
    complete_last_url TEXT,
    links_found INTEGER NOT NULL DEFAULT 0,
    updated TEXT NOT NULL,
    entry_url TEXT
);
CREATE TABLE IF NOT EXISTS listing_frontier (
    section TEXT NOT NULL,
    url TEXT NOT NULL,
    page INTEGER NOT NULL,
    added TEXT NOT NULL,
    PRIMARY KEY (section, url)
);
"""


@dataclass(frozen=True)
class FrontierPage:
    """A listing page scheduled but not yet walked (``page`` counts from 1 at the top)."""

    section: str
    url: str
    page: int


@dataclass(frozen=True)
class WalkRecord:
    """What is known of one section's listing walks."""

    section: str
    complete_at: str | None = None      # ISO 8601 (UTC): the last complete walk ended
    complete_pages: int = 0             # how many pages deep it reached
    complete_last_url: str | None = None  # its last listing page
    links_found: int = 0                # article links found by every walk so far
    frontier: tuple[FrontierPage, ...] = ()
    entry_url: str | None = None        # page 1, as the home navigation last linked it

    @property
    def complete(self) -> bool:
        """Whether a walk of this listing has ever reached its end."""
        return self.complete_at is not None

    def may_stop_at(self, page: int) -> bool:
        """Whether a walk may stop early at *page* (it holds only known articles)."""
        return self.complete and page <= self.complete_pages


class WalkState(Protocol):
    """Walk progress of section listings; implementations must survive a crash."""

    def record(self, section: str) -> WalkRecord:
        """The walk record of *section* (an empty one when it was never walked)."""
        ...

    def frontiers(self) -> list[FrontierPage]:
        """Every listing page not yet walked, of every section, oldest first."""
        ...

    def schedule(self, section: str, url: str, page: int) -> None:
        """*url* (page *page* of *section*) joins the frontier (no-op if already in)."""
        ...

    def page_walked(self, section: str, url: str, page: int, *, links: int,
                    next_url: str | None = None, end: bool = False) -> None:
        """Atomically: *url* leaves the frontier, *next_url* (page + 1) joins it, *links*
        are counted; with *end*, *url* is the listing's last page: a complete walk
        *page* pages deep is recorded."""
        ...

    def drop(self, section: str, url: str) -> None:
        """*url* leaves the frontier without being walked (it no longer exists)."""
        ...

    def set_entry(self, section: str, url: str) -> None:
        """*url* is page 1 of *section*'s listing, as the home navigation links it."""
        ...

    def entries(self) -> dict[str, str]:
        """Every section's page 1 on record (``set_entry``), by section."""
        ...


class SqliteWalkState:
    """:class:`WalkState` in the crawl state's SQLite file (shares its connection)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 lock: threading.Lock) -> None:
        self._connect = connect
        self._lock = lock

    @staticmethod
    def create_schema(db: sqlite3.Connection) -> None:
        db.executescript(SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(listing_walks)")}
        if "entry_url" not in columns:  # a state file of an earlier version
            db.execute("ALTER TABLE listing_walks ADD COLUMN entry_url TEXT")

    def record(self, section: str) -> WalkRecord:
        with self._lock:
            db = self._connect()
            row = db.execute(
                "SELECT complete_at, complete_pages, complete_last_url, links_found, "
                "entry_url FROM listing_walks WHERE section=?", (section,)).fetchone()
            pages = db.execute(
                "SELECT url, page FROM listing_frontier WHERE section=? ORDER BY page, added",
                (section,)).fetchall()
        frontier = tuple(FrontierPage(section, url, page) for url, page in pages)
        if row is None:
            return WalkRecord(section, frontier=frontier)
        return WalkRecord(section, row[0], int(row[1]), row[2], int(row[3]), frontier,
                          row[4])

    def frontiers(self) -> list[FrontierPage]:
        with self._lock:
            rows = self._connect().execute(
                "SELECT section, url, page FROM listing_frontier ORDER BY added, page"
            ).fetchall()
        return [FrontierPage(section, url, page) for section, url, page in rows]

    def schedule(self, section: str, url: str, page: int) -> None:
        with self._lock:
            self._connect().execute(
                "INSERT OR IGNORE INTO listing_frontier(section, url, page, added) "
                "VALUES(?,?,?,?)", (section, url, page, _now()))

    def page_walked(self, section: str, url: str, page: int, *, links: int,
                    next_url: str | None = None, end: bool = False) -> None:
        now = _now()
        with self._lock:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM listing_frontier WHERE section=? AND url=?",
                           (section, url))
                if next_url is not None:
                    db.execute("INSERT OR IGNORE INTO listing_frontier(section, url, page, "
                               "added) VALUES(?,?,?,?)", (section, next_url, page + 1, now))
                db.execute(
                    "INSERT INTO listing_walks(section, links_found, updated) VALUES(?,?,?) "
                    "ON CONFLICT(section) DO UPDATE SET "
                    "links_found=listing_walks.links_found+excluded.links_found, "
                    "updated=excluded.updated", (section, links, now))
                if end:
                    db.execute("UPDATE listing_walks SET complete_at=?, complete_pages=?, "
                               "complete_last_url=? WHERE section=?",
                               (now, page, url, section))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def drop(self, section: str, url: str) -> None:
        with self._lock:
            self._connect().execute(
                "DELETE FROM listing_frontier WHERE section=? AND url=?", (section, url))

    def set_entry(self, section: str, url: str) -> None:
        with self._lock:
            self._connect().execute(
                "INSERT INTO listing_walks(section, updated, entry_url) VALUES(?,?,?) "
                "ON CONFLICT(section) DO UPDATE SET entry_url=excluded.entry_url",
                (section, _now(), url))

    def entries(self) -> dict[str, str]:
        with self._lock:
            rows = self._connect().execute(
                "SELECT section, entry_url FROM listing_walks WHERE entry_url IS NOT NULL "
                "ORDER BY section").fetchall()
        return dict(rows)


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = ["FrontierPage", "SqliteWalkState", "WalkRecord", "WalkState"]
