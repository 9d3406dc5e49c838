"""The crawl state's listing-walk progress (storage.walks through storage.crawlstate):
frontier moves, complete-walk records, atomicity, and what survives a SIGKILL."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.crawlstate import CrawlState
from storage.walks import FrontierPage, WalkRecord

ROOT = Path(__file__).resolve().parent.parent
L1, L2, L3 = (f"http://portal.test/lw/index{s}.html" for s in ("", "_2", "_3"))


@pytest.fixture
def state(tmp_path: Path) -> Iterator[CrawlState]:
    with CrawlState(tmp_path / "state" / "crawl.sqlite") as opened:
        yield opened


def test_a_section_never_walked_has_an_empty_record(state: CrawlState) -> None:
    record = state.walks.record("老外在贵州")
    assert record == WalkRecord("老外在贵州")
    assert not record.complete and not record.may_stop_at(1)
    assert state.walks.frontiers() == []


def test_a_walked_page_leaves_the_frontier_and_its_next_page_joins(state: CrawlState) -> None:
    walks = state.walks
    walks.schedule("s", L1, 1)
    walks.schedule("s", L1, 1)  # scheduling twice is one frontier entry
    assert walks.record("s").frontier == (FrontierPage("s", L1, 1),)
    walks.page_walked("s", L1, 1, links=10, next_url=L2)
    record = walks.record("s")
    assert record.frontier == (FrontierPage("s", L2, 2),)
    assert record.links_found == 10 and not record.complete
    walks.page_walked("s", L2, 2, links=7, next_url=L3)
    assert walks.record("s").links_found == 17
    assert walks.frontiers() == [FrontierPage("s", L3, 3)]


def test_reaching_the_end_records_a_complete_walk_and_its_depth(state: CrawlState) -> None:
    walks = state.walks
    walks.schedule("s", L1, 1)
    walks.page_walked("s", L1, 1, links=10, next_url=L2)
    walks.page_walked("s", L2, 2, links=10, next_url=L3)
    walks.page_walked("s", L3, 3, links=4, end=True)
    record = walks.record("s")
    assert record.complete and record.complete_pages == 3 and record.complete_last_url == L3
    assert record.frontier == ()
    assert record.may_stop_at(1) and record.may_stop_at(3) and not record.may_stop_at(4)
    # A later walk stopped early keeps the record; a deeper walk to the end replaces it.
    walks.schedule("s", L1, 1)
    walks.page_walked("s", L1, 1, links=10)
    assert walks.record("s").complete_pages == 3
    walks.page_walked("s", "http://portal.test/lw/index_5.html", 5, links=2, end=True)
    assert walks.record("s").complete_pages == 5


def test_sections_are_independent_and_gone_pages_are_dropped(state: CrawlState) -> None:
    walks = state.walks
    walks.schedule("a", L1, 1)
    walks.schedule("b", L1, 1)
    walks.page_walked("a", L1, 1, links=3, next_url=L2)
    assert walks.record("b").frontier == (FrontierPage("b", L1, 1),)
    assert walks.record("a").frontier == (FrontierPage("a", L2, 2),)
    walks.drop("a", L2)
    assert walks.record("a").frontier == () and not walks.record("a").complete
    assert {p.section for p in walks.frontiers()} == {"b"}


def test_a_page_walked_is_all_or_nothing(state: CrawlState) -> None:
    walks = state.walks
    walks.schedule("s", L1, 1)
    # The frontier insert of the next page fails inside the transaction ...
    state.db.execute("CREATE TRIGGER boom BEFORE INSERT ON listing_frontier "
                     "WHEN NEW.url = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END")
    with pytest.raises(sqlite3.IntegrityError):
        walks.page_walked("s", L1, 1, links=10, next_url="boom")
    # ... so the page it came from is still to walk and nothing was counted.
    record = walks.record("s")
    assert record.frontier == (FrontierPage("s", L1, 1),) and record.links_found == 0
    walks.page_walked("s", L1, 1, links=10, next_url=L2)
    assert walks.record("s").frontier == (FrontierPage("s", L2, 2),)


CHILD = """
import os, signal, sys
from pathlib import Path
from storage.crawlstate import CrawlState
state = CrawlState(Path(sys.argv[1])).open()
walks = state.walks
walks.schedule("s", "L1", 1)
walks.page_walked("s", "L1", 1, links=10, next_url="L2")
walks.page_walked("s", "L2", 2, links=10, next_url="L3")
walks.schedule("t", "T1", 1)
walks.page_walked("t", "T1", 1, links=5, end=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_walk_progress_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "state" / "crawl.sqlite"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with CrawlState(path) as reopened:
        cut = reopened.walks.record("s")
        assert cut.frontier == (FrontierPage("s", "L3", 3),) and cut.links_found == 20
        assert not cut.complete
        done = reopened.walks.record("t")
        assert done.complete and done.complete_pages == 1 and done.frontier == ()


def test_pending_articles_keep_every_url_they_were_linked_at(tmp_path: Path) -> None:
    path = tmp_path / "crawl.sqlite"
    old = sqlite3.connect(path)  # a state file written before pending kept URLs
    old.execute("CREATE TABLE pending (url TEXT PRIMARY KEY, sections TEXT NOT NULL, "
                "added TEXT NOT NULL)")
    old.execute("INSERT INTO pending VALUES ('http://p/a.html', '[\"s\"]', '2026-01-01')")
    old.commit()
    old.close()
    with CrawlState(path) as state:
        assert state.pending() == [("http://p/a.html", ["s"])]
        state.add_pending("http://p/b.html", ["s"], ["http://p/b.html?utm_source=x"])
        assert state.merge_pending("http://p/b.html", ["t"], ["http://gate/p/b.html"])
        assert not state.merge_pending("http://p/c.html", ["t"], ["http://p/c.html"])
        left = {p.url: p for p in state.pending_articles()}
        assert set(left) == {"http://p/a.html", "http://p/b.html"}
        assert left["http://p/a.html"].urls == []
        assert left["http://p/b.html"].sections == ["s", "t"]
        assert left["http://p/b.html"].urls == ["http://gate/p/b.html",
                                                "http://p/b.html?utm_source=x"]


def test_a_state_file_of_an_earlier_version_gains_the_entry_column(tmp_path: Path) -> None:
    path = tmp_path / "crawl.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE listing_walks (section TEXT PRIMARY KEY, complete_at TEXT,
            complete_pages INTEGER NOT NULL DEFAULT 0, complete_last_url TEXT,
            links_found INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL);
        INSERT INTO listing_walks VALUES ('s', '2026-01-01T00:00:00Z', 3, 'L3', 24, 'x');
    """)
    old.commit()
    old.close()
    with CrawlState(path) as state:
        record = state.walks.record("s")
        assert (record.complete_pages, record.entry_url) == (3, None)
        assert state.walks.entries() == {}
        state.walks.set_entry("s", L1)
        assert state.walks.record("s").complete_pages == 3  # the walk record is kept
    with CrawlState(path) as state:
        assert state.walks.entries() == {"s": L1}
