"""The reading room in a real Chromium (Playwright on /usr/bin/chromium): `gzarchive
serve` started as users start it, then search in traditional script, the article with
its images and captions, the revision diff, the replay (pywb, the command's default
engine, in a sandboxed frame of an opaque origin), the run charts; and the hostile
article, whose markup must show as text with no script run. Screenshots go to a
temporary directory; ``GZARCHIVE_SCREENSHOTS=docs`` writes them to docs/ (the README
shows them), any other value is a directory to write them to.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import opencc
import pytest

from crawler import rendering
from storage.warc.replay import free_port, wait_for_port
from tests.helpers import ROOT
from tests.test_web_reading_room import HOSTILE_TITLE, build_archive

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(rendering.find_chromium() is None, reason="no Chromium")]



@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("GZARCHIVE_SCREENSHOTS")
    if not where:
        return tmp_path_factory.mktemp("screenshots")
    path = ROOT / where if not os.path.isabs(where) else Path(where)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    archive = build_archive(tmp_path_factory.mktemp("web-browser"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "serve", "--bind", f"127.0.0.1:{port}",
         "--data-dir", str(archive["data"])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, timeout=60)
        yield archive | {"base": f"http://127.0.0.1:{port}", "proc": proc}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def page(served: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=rendering.find_chromium(), headless=True,
                                     args=["--no-sandbox", "--disable-gpu",
                                           "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        tab = context.new_page()
        tab.dialogs = []  # type: ignore[attr-defined]
        tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
        try:
            yield tab
        finally:
            browser.close()


def test_search_article_revision_replay_runs_in_chromium(served: dict[str, Any],
                                                         page: Any, shots: Path) -> None:
    base, edited = served["base"], served["edited"]
    traditional = opencc.OpenCC("s2t").convert(edited["title"])
    assert traditional != edited["title"], "the title has characters that differ by script"
    page.goto(f"{base}/search?" + urlencode({"q": traditional}))
    link = page.locator("ol.results a.title").filter(has_text=edited["title"][:6]).first
    assert link.count() == 1
    page.screenshot(path=str(shots / "reading-room-search.png"), full_page=False)
    link.click()
    page.wait_for_load_state("load")
    assert page.inner_text("#article-title") == edited["title"]
    images = page.locator("figure.image img")
    assert images.count() == len(edited["images"])
    widths = page.eval_on_selector_all("figure.image img", "els => els.map(e => e.naturalWidth)")
    assert all(w > 0 for w in widths), widths  # decoded from the archive's WARC records
    captions = [c for c in page.locator("figure.image figcaption").all_inner_texts()]
    assert [i["caption"] or "(no caption)" for i in edited["images"]] == captions
    page.screenshot(path=str(shots / "reading-room-article.png"), full_page=False)
    diff = page.locator("#revisions table.diff")
    assert diff.count() == 1 and page.locator("#revisions ins, #revisions del").count() >= 1
    diff.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "reading-room-revision.png"), full_page=False)

    page.locator("a.replay-link").click()
    page.wait_for_load_state("load")
    assert "Replayed by pywb" in page.inner_text("#replay-engine")
    assert page.get_attribute("#replay-frame", "sandbox") == "allow-scripts"
    frame = page.frame_locator("#replay-frame")
    first_paragraph = edited["body"].split("\n")[0]
    frame.locator("body").get_by_text(first_paragraph[:12]).first.wait_for(timeout=30_000)
    assert first_paragraph[:20] in frame.locator("body").inner_text()
    replayed = next(f for f in page.frames if "/pywb-" in f.url)
    assert f"/{edited['url']}" in replayed.url  # pywb's address of the archived page
    # pywb's scripts ran (wombat), in an opaque origin that cannot reach the app
    assert replayed.evaluate("() => typeof window._WBWombatInit") == "function"
    assert replayed.evaluate("() => self.origin") == "null"
    assert replayed.evaluate("""() => { try { return parent.document.title }
                                        catch (e) { return 'blocked: ' + e.name } }""") \
        == "blocked: SecurityError"
    page.screenshot(path=str(shots / "reading-room-replay.png"), full_page=False)

    page.goto(f"{base}/runs")
    bars = page.locator("figure.chart svg rect")
    assert bars.count() > 3
    box = page.locator("figure.chart svg").first.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 50
    page.screenshot(path=str(shots / "reading-room-runs.png"), full_page=False)
    page.goto(f"{base}/")
    page.screenshot(path=str(shots / "reading-room-home.png"), full_page=False)
    assert not page.dialogs


def test_hostile_article_runs_no_script_and_shows_its_text(served: dict[str, Any],
                                                           page: Any) -> None:
    page.goto(f"{served['base']}/article?" + urlencode({"url": served["hostile"]}))
    page.wait_for_load_state("load")
    assert page.inner_text("#article-title") == HOSTILE_TITLE
    assert "<script>" in page.inner_text("#article-body")
    assert "<img src=x" in page.inner_text("figure.image figcaption")
    page.locator("#article-title").hover()
    assert page.evaluate("() => window.__pwned === undefined")
    assert not page.dialogs
    page.goto(f"{served['base']}/search?" + urlencode({"q": "黔东南"}))
    assert "<script>" in page.inner_text("ol.results")
    assert page.evaluate("() => window.__pwned === undefined") and not page.dialogs


def test_serve_stops_its_pywb_when_it_is_stopped(served: dict[str, Any], page: Any) -> None:
    """Last in the module: SIGTERM to `gzarchive serve` leaves no pywb behind."""
    proc = served["proc"]
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    wayback = [int(c) for c in children
               if b"wayback" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert len(wayback) == 1, "serve started one pywb"
    proc.terminate()
    proc.wait(timeout=20)
    for _ in range(50):
        if not Path(f"/proc/{wayback[0]}").exists() or \
                "Z" in Path(f"/proc/{wayback[0]}/stat").read_text().split(")")[1][:3]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"pywb (pid {wayback[0]}) still runs after serve stopped")
