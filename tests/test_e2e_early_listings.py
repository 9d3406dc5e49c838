"""End to end: a recrawl walks the sections it already knows beside the home page
(PORTAL_EARLY_LISTINGS), and the home page still decides: a slow home answer no longer
holds up the crawl, a section that moved is walked where the home page now points with
nothing reported for its old address, and a known listing that fails is reported
exactly as when the home page is waited for."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage.crawlstate import CrawlState
from tests.helpers import crawl, export
from tests.replica import Replica
from tests.replica.config import HI_GZ, LAOWAI, section_by_label
from tests.replica.server import Response

pytestmark = pytest.mark.slow

HOME = re.compile(r"^/(?:index\.html)?$")
LAOWAI_1 = section_by_label(LAOWAI).page_path(1)
HI_1 = section_by_label(HI_GZ).page_path(1)
MOVED_1 = LAOWAI_1.replace("index.html", "list.html")
VOLATILE = ("first_seen", "last_seen", "warc")
SMALL = {"articles_per_section": 12, "page_size": 4}


def _rewire(rep: Replica, answer: Callable[[Callable[..., Response], str, str,
                                            dict[str, str]], Response]) -> None:
    """Route every request of *rep* through ``answer(inner, method, target, headers)``."""
    server = rep._server
    assert server is not None
    inner = server.router.respond
    server.router.respond = (  # type: ignore[method-assign]
        lambda method, target, headers: answer(inner, method, target, headers))


def _comparable(articles: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    urls = [a["url"] for a in articles]
    assert len(urls) == len(set(urls)), "an article is stored twice"
    return {a["url"]: {k: sorted(v) if k == "urls" else v for k, v in a.items()
                       if k not in VOLATILE} for a in articles}


def _served_at(rep: Replica, path: str) -> float:
    times = [e.time for e in rep.log if e.path == path and e.method == "GET"]
    assert times, f"{path} was not requested"
    return min(times)


def _log(data: Path) -> str:
    return (data / "logs" / "gzarchive.log").read_text(encoding="utf-8")


def test_a_slow_home_page_does_not_hold_up_the_known_sections(
        replica_factory: Any, tmp_path: Path) -> None:
    rep = replica_factory(**SMALL)
    first = crawl(rep.url, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    clean = _comparable(export(tmp_path))

    slow = 6.0

    def late_home(inner: Callable[..., Response], method: str, target: str,
                  headers: dict[str, str]) -> Response:
        resp = inner(method, target, headers)
        if HOME.match(target.split("?")[0]):
            return dataclasses.replace(resp, delay=resp.delay + slow)
        return resp

    _rewire(rep, late_home)
    rep.clear_log()
    second = crawl(rep.url, tmp_path)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    home = _served_at(rep, "/")
    # Both known listings (and what they link) answered while the home page was late.
    assert _served_at(rep, LAOWAI_1) < home - slow / 2
    assert _served_at(rep, HI_1) < home - slow / 2
    assert [e for e in rep.log if e.time < home and e.status == 304], \
        "no article was rechecked before the home page answered"
    assert "0 new" in second.stdout and "0 revised" in second.stdout, second.stdout[-1500:]
    assert "portal/listing/early" in _log(tmp_path)
    assert _comparable(export(tmp_path)) == clean


def test_a_moved_section_is_walked_where_the_home_page_now_points(
        replica_factory: Any, tmp_path: Path) -> None:
    rep = replica_factory(**SMALL)
    assert crawl(rep.url, tmp_path).returncode == 0
    clean = _comparable(export(tmp_path))

    def moved(inner: Callable[..., Response], method: str, target: str,
              headers: dict[str, str]) -> Response:
        path = target.split("?")[0]
        if path == LAOWAI_1:
            return inner(method, "/no-such-page.html", headers)  # the replica's own 404
        if path == MOVED_1:
            return inner(method, LAOWAI_1, headers)
        resp = inner(method, target, headers)
        if HOME.match(path) and resp.status == 200:
            return dataclasses.replace(
                resp, body=resp.body.replace(LAOWAI_1.encode(), MOVED_1.encode()),
                headers={k: v for k, v in resp.headers.items()
                         if k.lower() not in ("etag", "last-modified")})
        return resp

    _rewire(rep, moved)
    rep.clear_log()
    second = crawl(rep.url, tmp_path)
    # The old address answered 404 (it was requested early), and nothing is reported.
    assert [e.status for e in rep.log if e.path == LAOWAI_1] == [404]
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    assert [e.status for e in rep.log if e.path == MOVED_1] == [200]
    log = _log(tmp_path)
    assert "no longer links its listing at" in log
    assert _comparable(export(tmp_path)) == clean
    with CrawlState(tmp_path / "state" / "crawl.sqlite") as state:
        assert [p.url for p in state.walks.frontiers()] == []
        assert state.walks.entries()[LAOWAI] == rep.url + MOVED_1

    # The next run starts from the new address and never asks the old one.
    rep.clear_log()
    third = crawl(rep.url, tmp_path)
    assert third.returncode == 0, third.stdout[-2000:] + third.stderr[-3000:]
    assert not [e for e in rep.log if e.path == LAOWAI_1]
    assert _served_at(rep, MOVED_1) < _served_at(rep, "/") + 1


@pytest.mark.parametrize("early", ["True", "False"])
def test_a_failing_known_listing_is_reported_as_without_early_walks(
        replica_factory: Any, tmp_path: Path, early: str) -> None:
    rep = replica_factory(**SMALL)
    assert crawl(rep.url, tmp_path).returncode == 0

    def broken(inner: Callable[..., Response], method: str, target: str,
               headers: dict[str, str]) -> Response:
        path = target.split("?")[0]
        if path == LAOWAI_1:
            return inner(method, "/no-such-page.html", headers)
        resp = inner(method, target, headers)
        if HOME.match(path):  # the early request fails before the home page answers
            return dataclasses.replace(resp, delay=resp.delay + 2.0)
        return resp

    _rewire(rep, broken)
    second = crawl(rep.url, tmp_path, "--set", f"PORTAL_EARLY_LISTINGS={early}")
    assert second.returncode == 5, second.stdout[-2000:] + second.stderr[-3000:]
    assert rep.url + LAOWAI_1 in second.stdout, second.stdout[-2000:]
    log = _log(tmp_path)
    assert re.search(r"listing page 1 \(\S+" + re.escape(LAOWAI_1) + r"\) failed \(http-404\)"
                     r": the section's listing is gone", log)
    assert "listing-gone" in second.stdout
    with CrawlState(tmp_path / "state" / "crawl.sqlite") as state:
        # Left on the frontier: the next run walks it again.
        assert [p.url for p in state.walks.frontiers()] == [rep.url + LAOWAI_1]
