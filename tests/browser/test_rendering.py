"""JavaScript-filled listings: rendering in a real Chromium, the archive of what the
browser did, and the honest failure when rendering is not allowed.

The replica's ``Hi,贵州!`` listing is an empty ``<ul>`` filled by ``fetch("/api/list?…")``.
The crawls run ``python -m crawler crawl`` in a subprocess (tests/helpers.py).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler import rendering
from crawler.cli.common import EXIT_USAGE, CliError
from crawler.spiders.listings import guess_pages
from crawler.urls import canonicalize
from storage.crawlstate import CrawlState
from tests.helpers import crawl, export, project_settings
from tests.replica.config import HI_GZ, LAOWAI
from tests.replica.fixtures import running_replica
from tests.replica.replica import Replica

pytestmark = pytest.mark.browser

needs_chromium = pytest.mark.skipif(rendering.find_chromium() is None,
                                    reason="no Chromium executable")


# -- helpers -----------------------------------------------------------------------------
def _stats(data_dir: Path) -> dict[str, Any]:
    """The stats dict Scrapy dumps when the spider closes, from the run's log file
    (the console no longer carries Scrapy's dumps unless --verbose)."""
    log = (data_dir / "logs" / "gzarchive.log").read_text(encoding="utf-8")
    dumps = re.findall(r"Dumping Scrapy stats:\n(\{.*?\})\n", log, re.S)
    assert dumps, log[-3000:]
    text = re.sub(r"datetime\.datetime\([^)]*\)", "None", dumps[-1])
    stats: dict[str, Any] = ast.literal_eval(text)
    return stats


def _records(data_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((data_dir / "warc").glob("*.warc.gz")):
        with path.open("rb") as fh:
            for rec in ArchiveIterator(fh):
                out.append({
                    "type": rec.rec_type,
                    "id": rec.rec_headers.get_header("WARC-Record-ID"),
                    "uri": rec.rec_headers.get_header("WARC-Target-URI") or "",
                    "refers_to": rec.rec_headers.get_header("WARC-Refers-To"),
                    "concurrent_to": rec.rec_headers.get_header("WARC-Concurrent-To"),
                    "http": rec.http_headers,
                    "body": rec.content_stream().read(),
                })
    return out


def _js_only(replica: Replica) -> set[str]:
    """Articles linked only from the JavaScript listing (no plain HTML path to them)."""
    hi = {a["url"] for a in replica.ground_truth([HI_GZ])}
    laowai = {a["url"] for a in replica.ground_truth([LAOWAI])}
    return hi - laowai


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def js_replica() -> Iterator[Replica]:
    with running_replica(js_section=HI_GZ) as rep:
        yield rep


@pytest.fixture(scope="module")
def auto_crawl(js_replica: Replica, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("render-auto")
    proc = crawl(js_replica.url, data, "--render", "auto")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return {"data": data, "proc": proc, "stats": _stats(data),
            "export": export(data), "records": _records(data), "log": list(js_replica.log)}


# -- --render auto in a real Chromium -------------------------------------------------------
@needs_chromium
def test_auto_render_finds_every_js_only_article(auto_crawl: dict[str, Any],
                                                 js_replica: Replica) -> None:
    got = {row["url"] for row in auto_crawl["export"]}
    truth = {row["url"] for row in js_replica.ground_truth()}
    js_only = _js_only(js_replica)
    assert len(js_only) >= 10
    assert js_only <= got, sorted(js_only - got)[:5]
    assert got == truth, (sorted(truth - got)[:5], sorted(got - truth)[:5])
    stats = auto_crawl["stats"]
    assert stats.get("portal/listing_pages/rendered", 0) >= 3  # 23 articles, 10 a page
    assert "NEEDS RENDERING" not in auto_crawl["proc"].stdout


@needs_chromium
def test_rendered_listing_articles_are_fetched_by_plain_http(auto_crawl: dict[str, Any],
                                                             js_replica: Replica) -> None:
    js_paths = {url.removeprefix(js_replica.url) for url in _js_only(js_replica)}
    by_browser: dict[str, bool] = {}
    for entry in auto_crawl["log"]:
        by_browser[entry.path] = by_browser.get(entry.path, False) or entry.from_browser
    assert any(p.startswith("/api/list") and b for p, b in by_browser.items())
    fetched = {p for p in by_browser if p in js_paths}
    assert fetched == js_paths
    assert not [p for p in fetched if by_browser[p]], "articles must not go through the browser"


@needs_chromium
def test_browser_pages_closed_and_contexts_bounded(auto_crawl: dict[str, Any]) -> None:
    stats = auto_crawl["stats"]
    assert stats["playwright/page_count"] >= 3
    assert stats["playwright/page_count/closed"] == stats["playwright/page_count"]
    assert stats["playwright/context_count/max_concurrent"] <= 2
    assert stats["playwright/page_count/max_concurrent"] <= 4
    assert not any(k.startswith("archive/browser/errors/") for k in stats), stats
    assert "archive/browser/protocol_unknown" not in stats  # DevTools gave every version
    assert stats["archive/browser/exchanges"] == stats["playwright/response_count"]
    assert "archive/warc/skipped/unlinked_conversion" not in stats


@needs_chromium
def test_images_and_stylesheets_shown_by_rendered_listings_are_fetched_once(
        auto_crawl: dict[str, Any], js_replica: Replica) -> None:
    """A thumbnail on a rendered listing is its article's first image, and every listing
    page shows the site's stylesheet and logo: the browser's fetch is archived, the spider
    does not fetch the image again for the article, later pages do not fetch them again,
    and every image of every JavaScript-only article is in the WARC."""
    log = auto_crawl["log"]
    stats = auto_crawl["stats"]
    browser_images = [e.path for e in log if e.from_browser
                      and e.response_headers.get("Content-Type", "").startswith("image/")]
    assert len(set(browser_images)) >= 10, browser_images
    assert stats["archive/browser/images_marked"] == len(set(browser_images))
    # The spider does not fetch them again for their articles. (One may still be: an
    # article reached earlier through another article's links has its image queued
    # before the browser shows it.)
    again = {e.path for e in log if not e.from_browser} & set(browser_images)
    assert len(again) <= len(set(browser_images)) // 4, (browser_images, again)
    for path in ("/css/style.css", "/img/logo.png"):
        assert _browser_fetched(log, path) == [True], path  # 3 rendered pages, one fetch
    assert stats["render/aborted/archived_before"] >= 4
    captured = {r["uri"].removeprefix(js_replica.url) for r in auto_crawl["records"]
                if r["type"] in ("response", "revisit")}
    js_only = _js_only(js_replica)
    images = {im["url"].removeprefix(js_replica.url) for row in auto_crawl["export"]
              if row["url"] in js_only for im in row["images"]}
    assert images and images <= captured, sorted(images - captured)[:5]
    assert set(browser_images) & images  # the case this is about happened


# -- several listing pages rendered at once (PORTAL_LISTING_LOOKAHEAD) ---------------------
def _browser_fetched(log: list[Any], path: str) -> list[bool]:
    """For each time the replica served *path*: whether the browser asked for it."""
    return [e.from_browser for e in log if e.path == path]


@needs_chromium
def test_guessed_listing_pages_render_at_once_and_the_walk_ends_clean(
        auto_crawl: dict[str, Any], js_replica: Replica) -> None:
    stats = auto_crawl["stats"]
    # page 1 leads to page 2; pages 3 and 4 are guessed from the numbered URLs
    assert stats["portal/listing/lookahead/guessed"] == 2, stats
    assert stats["portal/listing/lookahead/hit"] == 1          # page 3: page 2 links it
    assert stats["portal/listing/lookahead/forgotten"] == 1    # page 4: past the end
    assert stats["playwright/page_count/max_concurrent"] >= 2  # 2 and 3 rendered together
    assert stats["portal/listing_pages/rendered"] == 3
    # the page past the end was a plain 404, never rendered; page 3 rendered once
    log = auto_crawl["log"]
    assert _browser_fetched(log, "/higz/index_4.html") == [False]
    assert [e.status for e in log if e.path == "/higz/index_4.html"] == [404]
    assert _browser_fetched(log, "/higz/index_3.html").count(True) == 1
    # a failed guess is no failure of the crawl, and the walk state is as page by page
    assert "failures        : none" in auto_crawl["proc"].stdout
    assert not any(k.startswith("portal/failures/") for k in stats), stats
    with CrawlState(auto_crawl["data"] / "state" / "crawl.sqlite") as state:
        assert state.walks.frontiers() == []
        record = state.walks.record(HI_GZ)
    assert record.complete and record.complete_pages == 3
    assert record.complete_last_url == js_replica.url + "/higz/index_3.html"


@needs_chromium
def test_without_lookahead_pages_render_one_after_the_other(js_replica: Replica,
                                                            tmp_path: Path,
                                                            auto_crawl: dict[str, Any]) -> None:
    proc = crawl(js_replica.url, tmp_path, "--set", "PORTAL_LISTING_LOOKAHEAD=0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stats = _stats(tmp_path)
    assert stats["playwright/page_count/max_concurrent"] == 1
    assert not any(k.startswith("portal/listing/lookahead/") for k in stats), stats
    assert ({row["url"] for row in export(tmp_path)}
            == {row["url"] for row in auto_crawl["export"]})


def test_guess_pages_only_from_a_pager_that_numbers_its_pages() -> None:
    base = "http://h/higz/"
    assert guess_pages(base + "index.html", 1, base + "index_2.html", 2) == [
        (3, base + "index_3.html"), (4, base + "index_4.html")]
    assert guess_pages(base + "index_7.html", 7, base + "index_8.html", 1) == [
        (9, base + "index_9.html")]
    assert guess_pages("http://h/list?s=4&page=2", 2, "http://h/list?s=4&page=3", 1) == [
        (4, "http://h/list?s=4&page=4")]
    # the next link's number is not the next page, or page N's URL is not N: no guess
    assert guess_pages(base + "index.html", 1, base + "a9f3.html", 2) == []
    assert guess_pages(base + "index_2.html", 2, base + "index_5.html", 2) == []
    assert guess_pages(base + "p_2.html", 2, base + "index_3.html", 2) == []
    assert guess_pages(base + "index.html", 1, base + "more", 2) == []


# -- the WARC of a rendered listing ---------------------------------------------------------
@needs_chromium
def test_warc_holds_json_subrequests_of_rendered_listing(auto_crawl: dict[str, Any],
                                                         js_replica: Replica) -> None:
    records = auto_crawl["records"]
    api = [r for r in records if "/api/list?section=hi&page=" in r["uri"]]
    responses = {r["uri"]: r for r in api if r["type"] in ("response", "revisit")}
    requests = {r["uri"]: r for r in api if r["type"] == "request"}
    pages = sorted(int(u.rsplit("=", 1)[1]) for u in responses)
    assert pages == [1, 2, 3], sorted(responses)
    found: set[str] = set()
    for uri, rec in responses.items():
        assert rec["type"] == "response"
        assert rec["http"].get_statuscode() == "200"
        assert rec["http"].get_header("Content-Type").startswith("application/json")
        found.update(item["url"] for item in json.loads(rec["body"])["items"])
        req = requests[uri]
        assert req["concurrent_to"] == rec["id"]
        assert req["http"].protocol == "GET"
        assert req["http"].get_header("Host") == f"127.0.0.1:{js_replica.port}"
    # the JSON lists the section's articles (some under a gateway twin or tracking URL)
    hi = {a["url"] for a in js_replica.ground_truth([HI_GZ])}
    assert {canonicalize(url) for url in found} == hi


@needs_chromium
def test_rendered_dom_is_a_conversion_of_the_archived_page(auto_crawl: dict[str, Any],
                                                           js_replica: Replica) -> None:
    records = auto_crawl["records"]
    by_id = {r["id"]: r for r in records}
    conversions = [r for r in records if r["type"] == "conversion"]
    listing_urls = {js_replica.url + p for p in
                    ("/higz/index.html", "/higz/index_2.html", "/higz/index_3.html")}
    assert {c["uri"] for c in conversions} == listing_urls
    for conv in conversions:
        target = by_id[conv["refers_to"]]
        assert target["type"] == "response" and target["uri"] == conv["uri"]
        # the page as served is the empty list; the conversion is the filled-in DOM
        assert b"/n/" not in target["body"] and b"/api/list" in target["body"]
        assert b'<ul id="list"><li>' in conv["body"]


# -- --render never: report, do not pretend --------------------------------------------------
def test_render_never_reports_needs_rendering(js_replica: Replica, tmp_path: Path) -> None:
    proc = crawl(js_replica.url, tmp_path, "--render", "never")
    assert proc.returncode == 4, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next((x for x in proc.stdout.splitlines() if x.startswith("NEEDS RENDERING")), "")
    assert HI_GZ in line and "/higz/index.html" in line, proc.stdout[-3000:]
    assert "Traceback" not in proc.stderr
    assert not any(k.startswith("playwright/") for k in _stats(tmp_path))


# -- configuration (no browser needed) ---------------------------------------------------------
def test_configure_never_installs_no_handler() -> None:
    settings = project_settings()
    assert rendering.configure(settings, "never") is None
    assert not rendering.is_enabled(settings)


def test_configure_without_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rendering, "find_chromium", lambda configured=None, headless=True: None)
    settings = project_settings()
    assert rendering.configure(settings, "auto") is None
    assert not rendering.is_enabled(settings)
    with pytest.raises(rendering.BrowserNotFound, match="apt-get install -y chromium"):
        rendering.configure(project_settings(), "always")


def test_cli_always_without_browser_is_a_usage_error(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    from crawler.cli.crawl import build_settings

    monkeypatch.setattr(rendering, "find_chromium", lambda configured=None, headless=True: None)
    args = argparse.Namespace(max_articles=0, all=False, sections=[], data_dir=str(tmp_path),
                              mongodb_uri=None, portal_url="http://127.0.0.1:9",
                              render="always", quiet=False, log_level=None, set=[])
    with pytest.raises(CliError) as info:
        build_settings(args)
    assert info.value.exit_code == EXIT_USAGE
    assert "Chromium" in str(info.value)


@needs_chromium
def test_configure_bounds_the_browser_and_aborts_unneeded_requests() -> None:
    settings = project_settings()
    settings.set("PLAYWRIGHT_MAX_PAGES_PER_CONTEXT", 0)
    assert rendering.configure(settings, "auto") is not None
    assert rendering.is_enabled(settings)
    assert settings["PLAYWRIGHT_LAUNCH_OPTIONS"]["executable_path"]
    assert settings.getint("PLAYWRIGHT_MAX_CONTEXTS") == 2
    assert settings.getint("PLAYWRIGHT_MAX_PAGES_PER_CONTEXT") == 4
    assert isinstance(settings["PLAYWRIGHT_ABORT_REQUEST"], rendering.AbortPolicy)


def test_find_chromium_prefers_the_headless_shell_when_headless(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def exe(name: str) -> str:
        path = tmp_path / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
        return str(path)

    shell, full, mine = exe("chromium-headless-shell"), exe("chromium"), exe("my-chrome")
    monkeypatch.setattr(rendering, "HEADLESS_CANDIDATES", (shell,))
    monkeypatch.setattr(rendering, "CANDIDATES", (full,))
    monkeypatch.delenv("GZARCHIVE_CHROMIUM", raising=False)
    assert rendering.find_chromium() == shell
    assert rendering.find_chromium(headless=False) == full
    assert rendering.find_chromium(mine) == mine          # executable_path wins
    monkeypatch.setenv("GZARCHIVE_CHROMIUM", mine)
    assert rendering.find_chromium() == mine              # then the environment
    monkeypatch.delenv("GZARCHIVE_CHROMIUM")
    settings = project_settings()
    assert rendering.configure(settings, "auto") == shell
    assert settings["PLAYWRIGHT_LAUNCH_OPTIONS"]["executable_path"] == shell
    settings = project_settings()
    settings.set("PLAYWRIGHT_LAUNCH_OPTIONS",
                 {**settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS"), "headless": False})
    assert rendering.configure(settings, "auto") == full  # a headed browser: the full one
    # Launch options given on the command line (-s, "cmdline" priority) keep their flags
    # and still get the browser's path and the handler.
    settings = project_settings()
    options = {**settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS"), "args": ["--mute-audio"]}
    settings.set("PLAYWRIGHT_LAUNCH_OPTIONS", options, priority="cmdline")
    assert rendering.configure(settings, "auto") == shell
    assert settings["PLAYWRIGHT_LAUNCH_OPTIONS"]["executable_path"] == shell
    assert settings["PLAYWRIGHT_LAUNCH_OPTIONS"]["args"] == ["--mute-audio"]
    assert rendering.is_enabled(settings)


class _Req:
    def __init__(self, url: str, resource_type: str) -> None:
        self.url, self.resource_type = url, resource_type


def test_abort_policy() -> None:
    policy = rendering.AbortPolicy.from_settings(project_settings())
    page = "http://gz.cri.cn/higz/index.html"
    assert policy(_Req("http://gz.cri.cn/f/a.woff2", "font"))  # type: ignore[arg-type]
    assert policy(_Req("http://gz.cri.cn/v/a.mp4", "media"))  # type: ignore[arg-type]
    assert policy(_Req("https://hm.baidu.com/hm.js?x", "script"))  # type: ignore[arg-type]
    assert policy(_Req("https://www.google-analytics.com/collect", "xhr"))  # type: ignore[arg-type]
    for kind in ("document", "script", "xhr", "fetch", "stylesheet", "image"):
        assert not policy(_Req(page, kind)), kind  # type: ignore[arg-type]
    # What the browser archived in this run: images and stylesheets are not fetched
    # again; documents, scripts and data always are.
    stats = _Stats()
    policy.stats = stats
    for kind in ("document", "script", "xhr", "fetch", "stylesheet", "image"):
        policy.archived(page, kind)
    for kind in ("document", "script", "xhr", "fetch"):
        assert not policy(_Req(page, kind)), kind  # type: ignore[arg-type]
    assert policy(_Req(page, "stylesheet")) and policy(_Req(page, "image"))  # type: ignore[arg-type]
    assert not policy(_Req(page + "?v=2", "image"))  # type: ignore[arg-type]
    assert stats.values == {"render/aborted/archived_before": 2}
    settings = project_settings()
    settings.set("RENDER_ABORT_RESOURCE_TYPES", ["font", "fetch"])
    from crawler.config import ConfigError

    with pytest.raises(ConfigError, match="fetch"):
        rendering.AbortPolicy.from_settings(settings)


# -- when a rendered listing is read (crawler.rendering.NetworkQuiet) ----------------------
class _Stats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + count


def test_network_quiet_waits_for_late_requests_then_the_quiet_window() -> None:
    import asyncio

    async def scenario() -> float:
        quiet = rendering.NetworkQuiet(0.1, timeout=5.0)
        handlers = quiet.handlers()
        data, image = object(), object()
        loop = asyncio.get_running_loop()
        start = loop.time()
        handlers["request"](data)  # the listing's data, in flight at the load event
        loop.call_later(0.15, handlers["requestfinished"], data)
        # The script inserts an image 50 ms later: shorter than the quiet window.
        loop.call_later(0.2, handlers["request"], image)
        loop.call_later(0.3, handlers["requestfailed"], image)
        await quiet.wait()
        return loop.time() - start

    took = asyncio.run(scenario())
    assert 0.4 <= took < 1.5, took  # the last request ended at 0.3 s, + 0.1 s quiet


def test_network_quiet_handles_events_held_in_a_busy_loop_before_calling_it_quiet() -> None:
    import asyncio

    class HeldEvents:
        """A page whose browser sent a ``request`` event the busy loop has not handled
        yet: it is handled before the answer to the next round trip (as Playwright's
        connection delivers them, in order)."""

        def __init__(self, handlers: dict[str, Any]) -> None:
            self.handlers = handlers
            self.held: list[object] = [object()]
            self.calls = 0

        async def evaluate(self, expression: str) -> int:
            self.calls += 1
            loop = asyncio.get_running_loop()
            for request in self.held:
                self.handlers["request"](request)
                loop.call_later(0.2, self.handlers["requestfinished"], request)
            self.held = []
            return 0

    async def scenario() -> tuple[float, int]:
        quiet = rendering.NetworkQuiet(0.1, timeout=5.0)
        page = HeldEvents(quiet.handlers())
        loop = asyncio.get_running_loop()
        start = loop.time()
        await quiet.wait(page)  # type: ignore[arg-type]
        return loop.time() - start, page.calls

    took, calls = asyncio.run(scenario())
    # quiet at 0.1 s, then the held image request: in flight to 0.3 s, + 0.1 s quiet
    assert 0.4 <= took < 1.5, took
    assert calls == 2  # asked again once the image was done: nothing held any more


def test_network_quiet_gives_up_counted_on_a_page_that_never_settles() -> None:
    import asyncio

    stats = _Stats()

    async def scenario() -> float:
        quiet = rendering.NetworkQuiet(0.05, timeout=0.3, stats=stats)
        quiet.handlers()["request"](object())  # a long poll: never finishes
        loop = asyncio.get_running_loop()
        start = loop.time()
        await quiet.wait()
        return loop.time() - start

    took = asyncio.run(scenario())
    assert 0.3 <= took < 1.5, took
    assert stats.values == {"render/quiet_timeout": 1}
    settings = project_settings()
    assert rendering.quiet_seconds(settings) == 0.25  # RENDER_QUIET_MS of crawler/settings.py
    settings.set("RENDER_QUIET_MS", -1)
    from crawler.config import ConfigError

    with pytest.raises(ConfigError, match="RENDER_QUIET_MS"):
        rendering.quiet_seconds(settings)
