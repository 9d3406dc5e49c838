"""End to end: a crawl killed (SIGKILL) at any point, then run once more to the end,
leaves the store a clean crawl leaves: every article once, every field equal, every
WARC file closed and verifying.

The replica has both target sections, ``Hi,贵州!`` filled by JavaScript (rendered in
Chromium), 4 listing pages each. Kill points are chosen by watching the crawl: the
replica's request log (the k-th static or rendered listing page served, the k-th
article served) and the MongoDB wire (an article upsert sent, its answer held back).
``MONGODB_BATCH_SIZE=5`` makes the small replica's crawl flush as often, relative to
its listing, as a real crawl of thousands of articles does with the default.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from crawler import rendering
from storage.crawlstate import CrawlState
from tests.helpers import ROOT, crawl, export, run_cli
from tests.replica.config import HI_GZ, LAOWAI, section_by_label
from tests.replica.fixtures import running_replica
from tests.replica.replica import Replica
from tests.replica.server import ARTICLE, LogEntry

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(rendering.find_chromium() is None,
                                 reason="no Chromium executable")]

SETTINGS = ("--set", "MONGODB_BATCH_SIZE=5")
VOLATILE = ("first_seen", "last_seen", "warc")
STATIC = f"/{section_by_label(LAOWAI).slug}/index"
RENDERED = f"/api/list?section={section_by_label(HI_GZ).api}&"
# An OP_MSG whose command is {insert: "articles"} or {update: "articles"}: the store's
# batched write (new articles are inserted, known ones updated).
ARTICLE_WRITES = (b"\x02insert\x00\x09\x00\x00\x00articles\x00",
                  b"\x02update\x00\x09\x00\x00\x00articles\x00")
WRITE_LEN = len(ARTICLE_WRITES[0])


def _served(prefix: str, k: int) -> Callable[[list[LogEntry]], bool]:
    return lambda log: sum(e.path.startswith(prefix) for e in log) >= k


def _articles_served(k: int) -> Callable[[list[LogEntry]], bool]:
    return lambda log: sum(bool(ARTICLE.match(e.path)) for e in log) >= k


KILL_POINTS: dict[str, Callable[[list[LogEntry]], bool]] = {
    "static-listing-page-2": _served(STATIC, 2),
    "static-listing-page-3": _served(STATIC, 3),
    "rendered-listing-page-1": _served(RENDERED, 1),
    "rendered-listing-page-3": _served(RENDERED, 3),
    "article-8": _articles_served(8),
    "article-20": _articles_served(20),
}


@pytest.fixture(scope="module")
def js_replica() -> Iterator[Replica]:
    with running_replica(articles_per_section=14, page_size=4) as rep:
        yield rep


def _comparable(articles: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Exported articles by URL without the fields that differ per run; ``urls`` (every
    URL an article was seen at) as a set: its order is the order of discovery."""
    urls = [a["url"] for a in articles]
    assert len(urls) == len(set(urls)), "an article is stored twice"
    return {a["url"]: {k: sorted(v) if k == "urls" else v for k, v in a.items()
                       if k not in VOLATILE} for a in articles}


@pytest.fixture(scope="module")
def clean(js_replica: Replica, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One clean crawl: the store every killed-then-finished crawl must equal."""
    data = tmp_path_factory.mktemp("clean")
    proc = crawl(js_replica.url, data, *SETTINGS)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    store = _comparable(export(data))
    assert set(store) == {t["url"] for t in js_replica.ground_truth()}
    return store


class FlushTrap:
    """TCP relay to a MongoDB server: counts the crawler's article upserts and, from
    the *trip_at*-th on, forwards them but holds every answer back (the crawler is
    killed while it waits for its write to be acknowledged)."""

    def __init__(self, target: str, trip_at: int) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 27017)
        self.trip_at = trip_at
        self.upserts = 0
        self.tripped = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.uri = f"mongodb://127.0.0.1:{self._server.getsockname()[1]}/?directConnection=true"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False),
                             daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, to_server: bool) -> None:
        tail = b""
        try:
            while data := src.recv(65536):
                if to_server and any(w in tail + data for w in ARTICLE_WRITES):
                    self.upserts += 1
                    if self.upserts >= self.trip_at:
                        self.tripped.set()
                tail = data[-WRITE_LEN:]
                if not to_server and self.tripped.is_set():
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                sock.close()

    def close(self) -> None:
        self._server.close()


def _kill_when(rep: Replica, data: Path, point: Callable[[], bool],
               mongodb_uri: str | None = None) -> None:
    args = [sys.executable, "-m", "crawler", "crawl", "--portal-url", rep.url,
            "--data-dir", str(data), "--set", "AUTOTHROTTLE_ENABLED=False", *SETTINGS]
    if mongodb_uri:
        args += ["--mongodb-uri", mongodb_uri]
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while proc.poll() is None and not point() and time.time() < deadline:
        time.sleep(0.01)
    alive = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert alive, "the crawl ended before its kill point"


def _left_behind(data: Path) -> tuple[str, bool]:
    """What the killed run left in the crawl state (printed, shown with -s), and whether
    a listing was left part-walked (a page beyond the first still to walk)."""
    with CrawlState(data / "state" / "crawl.sqlite") as state:
        frontier = [(p.section, p.page) for p in state.walks.frontiers()]
        text = f"{len(state.pending())} pending, listing frontier {frontier}"
        return text, any(page > 1 for _, page in frontier)


def _finish_and_compare(rep: Replica, data: Path, clean: dict[str, Any],
                        left: tuple[str, bool], mongodb_uri: str | None = None,
                        known_gap: str | None = None) -> None:
    """Run to the end, then compare; a difference in the field *known_gap* only (a gap
    another part of the issue closes) makes the test xfail naming it, after every other
    check passed."""
    proc = crawl(rep.url, data, *SETTINGS, mongodb_uri=mongodb_uri)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    log = (data / "logs" / "gzarchive.log").read_text(encoding="utf-8")
    resumed = len(re.findall(r"resuming the listing walk", log))
    print(f"killed run left {left[0]}; listing pages resumed: {resumed}")
    if left[1]:
        assert resumed, "a part-walked listing was not resumed"
    store = _comparable(export(data, mongodb_uri=mongodb_uri))
    assert sorted(set(clean) - set(store)) == [], "articles missing after the resumed run"
    assert sorted(set(store) - set(clean)) == []
    gaps = []
    for url, want in clean.items():
        got = store[url]
        diff = {k: (got.get(k), want.get(k)) for k in set(want) | set(got)
                if got.get(k) != want.get(k)}
        if known_gap in diff:
            gaps.append((url, diff.pop(known_gap)))
        assert not diff, (url, diff)
    warc = data / "warc"
    assert not list(warc.glob("*.open")) and list(warc.glob("*.warc.gz"))
    verify = run_cli("warc", "verify", "--data-dir", str(data))
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]
    if gaps:
        pytest.xfail(f"{known_gap} differs for {len(gaps)} article(s) (got, clean): {gaps}")


@pytest.mark.parametrize("name", list(KILL_POINTS))
def test_killed_crawl_finished_by_the_next_run_equals_a_clean_crawl(
        js_replica: Replica, clean: dict[str, Any], tmp_path: Path, name: str) -> None:
    start = len(js_replica.log)
    _kill_when(js_replica, tmp_path, lambda: KILL_POINTS[name](js_replica.log[start:]))
    _finish_and_compare(js_replica, tmp_path, clean, _left_behind(tmp_path))


def test_crawl_killed_during_a_database_flush_equals_a_clean_crawl(
        js_replica: Replica, clean: dict[str, Any], tmp_path: Path) -> None:
    from secantus import SecantusDBServer

    server = SecantusDBServer(storage_path=str(tmp_path / "mongo"), sync_on_commit=True,
                              replica_set_name=None)
    server.start()
    trap = FlushTrap(server.uri, trip_at=2)
    try:
        _kill_when(js_replica, tmp_path / "data", trap.tripped.is_set, mongodb_uri=trap.uri)
        trap.close()
        direct = f"{server.uri.rstrip('/')}/?directConnection=true"
        _finish_and_compare(js_replica, tmp_path / "data", clean,
                            _left_behind(tmp_path / "data"), mongodb_uri=direct)
    finally:
        trap.close()
        server.stop()
