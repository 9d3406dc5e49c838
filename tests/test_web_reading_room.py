"""The reading room (`gzarchive serve`, crawler/web) on a crawled replica, through
Starlette's TestClient: search in either script, the article page with its images from
the WARC, a revision diff after an edited recrawl, replay of the archived page (through
the managed pywb, and through the built-in viewer that stands in without it), the run
charts, an article of hostile markup shown as text, and a store left untouched.

The archive: the replica crawled through the CLI, one article edited, crawled again; a
hostile article (``HOSTILE``) is then written straight into the store (the replica's
ground truth stays as other tests know it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from crawler.cli.common import open_reader
from crawler.extract.article import parse_article
from crawler.extract.charset import decode_html
from crawler.textnorm import clean_text
from crawler.web.app import close_app, create_app
from storage.mongo.articles import ArticleRepository
from storage.mongo.client import open_database
from storage.warc.errors import ToolNotFound
from storage.warc.replay import find_pywb_tool
from tests.helpers import crawl, run_cli

pytestmark = pytest.mark.slow

#: Markup that must never become markup: quote-breaking, a script, an event handler.
HOSTILE_TITLE = '贵州 "><script>window.__pwned="title"</script>\' onmouseover="alert(1)'
HOSTILE_BODY = ('黔东南 <script>window.__pwned="body"</script> 贵州\n'
                '"><img src=x onerror="window.__pwned=\'img\'"></textarea><b>bold?</b>')
HOSTILE_CAPTION = '<img src=x onerror="window.__pwned=\'caption\'">说明'


def build_archive(data: Path) -> dict[str, Any]:
    """Crawl the replica, edit an article with images, recrawl; add the hostile article."""
    from tests.replica import Replica, ReplicaConfig

    rep = Replica(ReplicaConfig(js_section=None)).start()
    try:
        proc = crawl(rep.url, data)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        truth = rep.ground_truth()
        target = next(t for t in truth if t["pages"] == 1 and t["images"]
                      and any(i["caption"] for i in t["images"]))
        images = {i["url"]: urllib.request.urlopen(i["url"], timeout=10).read()
                  for i in target["images"]}
        edited = rep.edit_article(target["url"])
        assert edited["body"] != target["body"]
        proc = crawl(rep.url, data)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        truth = rep.ground_truth()
        hostile_url = f"{rep.url}/n/20250101/hostile.html"
    finally:
        rep.stop()
    with open_database(None, data) as (_client, db):
        ArticleRepository(db).upsert_many([{
            "url": hostile_url, "title": HOSTILE_TITLE, "body": HOSTILE_BODY,
            "published_at": datetime(2025, 1, 1, 4, tzinfo=UTC), "source": "<i>src</i>",
            "editor": "e", "chief_editor": None, "sections": ["老外在贵州"],
            "images": [{"url": "javascript:alert(3)", "caption": HOSTILE_CAPTION}]}],
            now=datetime.now(UTC))
    return {"data": data, "truth": truth, "old": target, "edited": edited,
            "images": images, "hostile": hostile_url}


def snapshot(data: Path) -> str:
    """A digest of every collection the app could touch."""
    digest = hashlib.sha256()
    with open_database(None, data) as (_client, db):
        for name in sorted(db.list_collection_names()):
            for doc in db[name].find().sort("_id", 1):
                digest.update(json.dumps(doc, sort_keys=True, default=str).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_archive(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def client(archive: dict[str, Any]) -> Iterator[TestClient]:
    args = argparse.Namespace(data_dir=archive["data"], mongodb_uri=None, command="serve")
    with open_reader(args) as repo:
        yield TestClient(create_app(repo, archive["data"] / "warc", replay="builtin"))


def has_pywb() -> bool:
    try:
        find_pywb_tool("wayback")
    except ToolNotFound:
        return False
    return True


@pytest.fixture(scope="module")
def pywb_app(archive: dict[str, Any]) -> Iterator[Any]:
    """The app as `gzarchive serve` builds it by default (pywb, with a token)."""
    if not has_pywb():
        pytest.skip("pywb not installed (.venv-pywb, see storage/warc/replay.py)")
    args = argparse.Namespace(data_dir=archive["data"], mongodb_uri=None, command="serve")
    with open_reader(args) as repo:
        app = create_app(repo, archive["data"] / "warc", token="s3cret", replay="pywb")
        try:
            yield app
        finally:
            close_app(app)


def get(client: TestClient, path: str, **params: str) -> Any:
    response = client.get(path + ("?" + urlencode(params) if params else ""))
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    return response


def text_of(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


# -- search ------------------------------------------------------------------------------
def test_search_in_traditional_script_finds_simplified_stories(
        client: TestClient, archive: dict[str, Any]) -> None:
    proc = run_cli("query", "--search", "貴州 老外", "--limit", "0", "--format", "jsonl",
                   "--data-dir", str(archive["data"]))
    assert proc.returncode == 0, proc.stderr
    expected = [json.loads(line)["url"] for line in proc.stdout.splitlines()]
    assert expected, "the replica's stories mention 贵州 and 老外"
    page = get(client, "/search", q="貴州 老外")
    assert page.status_code == 200
    count = re.search(r'id="result-count"><strong>(\d+)</strong>', page.text)
    assert count and int(count[1]) == len(expected)
    shown = [unescape(u) for u in re.findall(r'class="title" href="/article\?url=([^"]+)"',
                                             page.text)]
    from urllib.parse import unquote_plus
    assert [unquote_plus(u) for u in shown] == expected[:20]
    assert "<mark>贵州</mark>" in page.text  # the simplified text, marked for 貴州
    # the whole result as JSONL, as `gzarchive query` gives it
    jsonl = get(client, "/export.jsonl", q="貴州 老外")
    assert [json.loads(line)["url"] for line in jsonl.text.splitlines()] == expected
    csv_text = get(client, "/export.csv", q="貴州 老外").text
    assert csv_text.startswith("url,title,published_at") and len(csv_text.splitlines()) > 1


def test_search_filters_and_pages(client: TestClient, archive: dict[str, Any]) -> None:
    hi = get(client, "/search", q="贵州", section="Hi,貴州!")
    assert hi.status_code == 200
    hi_truth = {t["url"] for t in archive["truth"] if "Hi,贵州!" in t["sections"]}
    urls = {unescape(u) for u in re.findall(r'href="/article\?url=([^"]+)"', hi.text)}
    from urllib.parse import unquote_plus
    assert {unquote_plus(u) for u in urls} <= hi_truth
    page2 = get(client, "/search", section="老外在贵州", page="2")
    assert page2.status_code == 200 and 'start="21"' in page2.text
    bad = get(client, "/search", section="没有这个")
    assert bad.status_code == 400 and "known sections" in bad.text
    assert get(client, "/search", since="yesterday").status_code == 400


def test_listing_count_is_exact_and_its_last_page_holds_the_last_rows(
        client: TestClient, archive: dict[str, Any]) -> None:
    """A listing of one section is counted by the store's kept counts: the same number
    of rows as `gzarchive query --section`, the last page showing the last of them."""
    from urllib.parse import unquote_plus

    proc = run_cli("query", "--section", "老外在贵州", "--limit", "0", "--format", "jsonl",
                   "--data-dir", str(archive["data"]))
    assert proc.returncode == 0, proc.stderr
    expected = [json.loads(line)["url"] for line in proc.stdout.splitlines()]
    assert expected
    first = get(client, "/search", section="老外在貴州")  # either script
    count = re.search(r'id="result-count"><strong>([^<]+)</strong>', first.text)
    assert count and count[1] == str(len(expected))  # no "more than": exact
    last = (len(expected) + 19) // 20
    page = get(client, "/search", section="老外在贵州", page=str(last))
    shown = re.findall(r'class="title" href="/article\?url=([^"]+)"', page.text)
    assert [unquote_plus(unescape(u)) for u in shown] == expected[(last - 1) * 20:]


def test_page_links_show_the_ends_and_a_window_around_the_current_page() -> None:
    from crawler.web.search import page_links

    assert page_links(1, 3) == [1, 2, 3]
    assert page_links(10, 40) == [1, None, *range(5, 16), None, 40]
    assert page_links(2, 400)[-2:] == [None, 400] and page_links(2, 400)[:8] == [*range(1, 8), None]


# -- article -----------------------------------------------------------------------------
def test_article_page_shows_every_field_and_images_from_the_archive(
        client: TestClient, archive: dict[str, Any]) -> None:
    truth = archive["edited"]
    page = get(client, "/article", url=truth["url"])
    assert page.status_code == 200
    html = page.text
    for name in ("url", "urls", "title", "published_at", "source", "editor", "chief_editor",
                 "sections", "body", "images", "near_duplicate_of", "first_seen",
                 "last_seen", "content_hash", "warc"):
        assert name in html or name == "body"
    assert truth["title"] in html and truth["source"] in html
    body = text_of(html.split('id="article-body">', 1)[1].split("</div>", 1)[0])
    for para in truth["body"].split("\n"):
        assert para in body
    for image in truth["images"]:
        src = "/archived?" + urlencode({"url": image["url"]})
        assert f'src="{src.replace("&", "&amp;")}"' in html
        if image["caption"]:
            assert f"<figcaption>{image['caption']}</figcaption>" in html
        served = client.get(src)
        assert served.status_code == 200
        assert served.headers["content-type"].startswith("image/")
        assert served.content == archive["images"][image["url"]]  # from the WARC, same bytes
    assert "/replay?" in html  # the link to the archived page


def test_near_duplicates_both_ways(client: TestClient, archive: dict[str, Any]) -> None:
    dup = next(t for t in archive["truth"] if t["near_duplicate_of"])
    page = get(client, "/article", url=dup["url"])
    assert "/article?" + urlencode({"url": dup["near_duplicate_of"]}) in unescape(page.text)
    original = get(client, "/article", url=dup["near_duplicate_of"])
    back = original.text.split("republished as", 1)[1].split("</dd>", 1)[0]
    assert urlencode({"url": dup["url"]}) in unescape(back)


def test_revision_diff_after_an_edited_recrawl(client: TestClient,
                                               archive: dict[str, Any]) -> None:
    old, new = archive["old"]["body"].split("\n"), archive["edited"]["body"].split("\n")
    changed = [(a, b) for a, b in zip(old, new, strict=False) if a != b]
    assert changed
    page = get(client, "/article", url=archive["edited"]["url"])
    revisions = page.text.split('id="revisions"', 1)[1]
    rows = re.findall(r'<tr class="diff-(\w+)"><td>(.*?)</td><td>(.*?)</td></tr>', revisions, re.S)
    assert rows and any(kind != "equal" for kind, _, _ in rows)
    lefts = [text_of(left) for _, left, _ in rows]
    rights = [text_of(right) for _, _, right in rows]
    for a, b in changed:
        assert a in lefts and b in rights
    assert "<del>" in revisions or "<ins>" in revisions  # the changed characters marked


# -- replay ------------------------------------------------------------------------------
def _paragraphs(html: str, url: str) -> str:
    return "\n".join(p for p in (clean_text(p) for p in parse_article(html, url).paragraphs) if p)


def test_replay_shows_the_archived_page_and_earlier_captures(
        client: TestClient, archive: dict[str, Any]) -> None:
    url = archive["edited"]["url"]
    viewer = get(client, "/replay", url=url)
    assert viewer.status_code == 200
    frame = re.search(r'<iframe id="replay-frame"[^>]*sandbox="allow-same-origin"[^>]*src="([^"]+)"',
                      viewer.text)
    assert frame and "allow-scripts" not in viewer.text
    latest = client.get(unescape(frame[1]))
    assert latest.status_code == 200
    assert "sandbox" in latest.headers["content-security-policy"]
    assert _paragraphs(latest.text, url) == archive["edited"]["body"]
    stamps = re.findall(r'href="/replay\?url=[^"]*?ts=(\d{14})"', viewer.text)
    assert len(stamps) >= 2, "the first capture and the edited one"
    earliest = client.get("/archived?" + urlencode({"url": url, "ts": min(stamps)}))
    assert _paragraphs(earliest.text, url) == archive["old"]["body"]
    # an unchanged article whose latest capture is an identical-payload revisit
    other = next(t for t in archive["truth"] if t["pages"] == 1 and t["url"] != url)
    shown = client.get("/archived?" + urlencode({"url": other["url"]}))
    assert _paragraphs(shown.text, other["url"]) == other["body"]
    # images inside the archived page come from the archive, never the portal
    assert 'src="http' not in latest.text


def _decoded(response: Any) -> str:
    """The page as a browser decodes it (pywb passes the archived bytes and charset on)."""
    ctype = response.headers.get("content-type", "")
    charset = ctype.split("charset=", 1)[1].strip() if "charset=" in ctype else None
    return decode_html(response.content, charset).text


def test_replay_through_pywb_at_the_latest_and_an_earlier_capture(
        pywb_app: Any, archive: dict[str, Any]) -> None:
    """The default engine: pywb, a child of the app, reached only through the app (its
    key-named prefixes need no cookie: the sandboxed frame sends none), its answers
    under a CSP sandbox with scripts but without the app's origin."""
    client = TestClient(pywb_app, headers={"Authorization": "Bearer s3cret"})
    url = archive["edited"]["url"]
    viewer = get(client, "/replay", url=url)
    assert viewer.status_code == 200 and "Replayed by pywb" in viewer.text
    frame = re.search(r'<iframe id="replay-frame"[^>]*sandbox="([^"]*)"[^>]*src="([^"]+)"',
                      viewer.text)
    assert frame and frame[1] == "allow-scripts"  # never with allow-same-origin
    stamps = re.findall(r'href="/replay\?url=[^"]*?ts=(\d{14})"', viewer.text)
    latest = unescape(frame[2])
    assert latest.startswith("/pywb-") and f"/{max(stamps)}/{url}" in latest
    anonymous = TestClient(pywb_app)  # no token, no cookie: what the frame's requests carry
    assert anonymous.get("/").status_code == 401
    shown = anonymous.get(latest)
    assert shown.status_code == 200, shown.text[:300]
    csp = shown.headers["content-security-policy"]
    assert csp.endswith("sandbox allow-scripts") and "allow-same-origin" not in csp
    assert "set-cookie" not in shown.headers
    assert b"wombat.js" in shown.content  # pywb's own rewriting, not ours
    assert _paragraphs(_decoded(shown), url) == archive["edited"]["body"]
    # an earlier capture, as the capture list opens it
    earlier = get(client, "/replay", url=url, ts=min(stamps))
    src = unescape(re.findall(r'<iframe id="replay-frame"[^>]*src="([^"]+)"', earlier.text)[0])
    assert _paragraphs(_decoded(anonymous.get(src)), url) == archive["old"]["body"]
    # an unchanged article, its latest capture an identical-payload revisit
    other = next(t for t in archive["truth"] if t["pages"] == 1 and t["url"] != url)
    src = unescape(re.findall(r'<iframe id="replay-frame"[^>]*src="([^"]+)"',
                              get(client, "/replay", url=other["url"]).text)[0])
    assert _paragraphs(_decoded(anonymous.get(src)), other["url"]) == other["body"]
    # the key is the capability: another key is an app path, which needs the token
    assert anonymous.get("/pywb-0000/" + latest.split("/", 2)[2]).status_code == 401
    assert anonymous.post(latest).status_code == 405


def test_pywb_is_restarted_when_it_died_and_stopped_with_the_app(archive: dict[str, Any]) -> None:
    if not has_pywb():
        pytest.skip("pywb not installed")
    args = argparse.Namespace(data_dir=archive["data"], mongodb_uri=None, command="serve")
    with open_reader(args) as repo:
        app = create_app(repo, archive["data"] / "warc", replay="pywb")
        with TestClient(app) as client:  # the lifespan: started lazily, stopped at the end
            src = unescape(re.findall(r'<iframe id="replay-frame"[^>]*src="([^"]+)"', get(
                client, "/replay", url=archive["edited"]["url"]).text)[0])
            assert client.get(src).status_code == 200
            pywb = app.state.room.pywb
            first = pywb._proc
            first.kill()  # pywb died: the next replay request starts it again
            first.wait(timeout=10)
            assert client.get(src).status_code == 200
            proc, root = pywb._proc, pywb._root
            assert proc is not None and proc.pid != first.pid and proc.poll() is None
        assert proc.poll() is not None and not root.exists()


def test_without_pywb_the_builtin_viewer_replays_and_says_why(
        archive: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str = "wayback") -> Any:
        raise ToolNotFound(f"{name} not found: install pywb")

    monkeypatch.setattr("crawler.web.pywb.find_pywb_tool", missing)
    args = argparse.Namespace(data_dir=archive["data"], mongodb_uri=None, command="serve")
    with open_reader(args) as repo:
        client = TestClient(create_app(repo, archive["data"] / "warc"))  # replay="auto"
        viewer = get(client, "/replay", url=archive["edited"]["url"])
        assert "pywb is not installed" in viewer.text and "built-in viewer" in viewer.text
        src = re.search(r'<iframe id="replay-frame"[^>]*sandbox="allow-same-origin"[^>]*'
                        r'src="(/archived\?[^"]+)"', viewer.text)
        assert src and client.get(unescape(src[1])).status_code == 200
        assert client.get("/pywb-x/y").status_code == 404
        with pytest.raises(ValueError, match="not found"):
            create_app(repo, archive["data"] / "warc", replay="pywb")


# -- runs and home -----------------------------------------------------------------------
def test_runs_page_draws_charts_and_lists_runs(client: TestClient) -> None:
    page = get(client, "/runs")
    assert page.status_code == 200
    svgs = re.findall(r"<svg .*?</svg>", page.text, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        assert len(re.findall(r"<rect [^>]*><title>", svg)) >= 1
    assert page.text.count('class="run"') == 2
    home = get(client, "/")
    assert home.status_code == 200
    total = re.search(r'id="total-articles">(\d+)<', home.text)
    assert total and int(total[1]) >= 47  # 46 crawled + the hostile one
    assert "finished" in home.text


# -- hostile text ------------------------------------------------------------------------
def test_hostile_markup_is_shown_as_text(client: TestClient, archive: dict[str, Any]) -> None:
    page = get(client, "/article", url=archive["hostile"])
    assert page.status_code == 200
    assert "<script>" not in page.text and "onerror=" not in page.text.replace("onerror=&#34;", "")
    assert "&lt;script&gt;" in page.text
    title = re.search(r'<h1 id="article-title">(.*?)</h1>', page.text, re.S)
    assert title and unescape(title[1]) == HOSTILE_TITLE
    assert "javascript:" not in page.text.replace("javascript:alert(3)</code>", "")
    found = get(client, "/search", q="黔东南")
    assert "<script>" not in found.text and "&lt;script&gt;" in found.text


# -- safety ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2f..%2fetc%2fpasswd", "/static/%252e%252e/etc/passwd",
    "/archived?file=../../../../etc/passwd&offset=0",
    "/archived?file=..%2F..%2Fetc%2Fpasswd&offset=0",
    "/archived?file=/etc/passwd&offset=0", "/archived?file=index.cdxj&offset=0",
])
def test_paths_outside_the_archive_are_refused(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 404)
    assert "root:" not in response.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/search", "/article", "/static/style.css", "/archived"])
def test_writes_are_refused(client: TestClient, method: str, path: str) -> None:
    assert client.request(method, path).status_code == 405


def test_the_app_never_writes_to_the_store(client: TestClient, archive: dict[str, Any]) -> None:
    before = snapshot(archive["data"])
    for path in ("/", "/runs", "/search?q=貴州", "/export.csv?q=貴州"):
        assert client.get(path).status_code == 200
    for truth in archive["truth"][:10]:
        assert client.get("/article?" + urlencode({"url": truth["url"]})).status_code == 200
        assert client.get("/replay?" + urlencode({"url": truth["url"]})).status_code == 200
    assert snapshot(archive["data"]) == before


def test_a_token_guards_every_request(archive: dict[str, Any]) -> None:
    args = argparse.Namespace(data_dir=archive["data"], mongodb_uri=None, command="serve")
    with open_reader(args) as repo:
        app = create_app(repo, archive["data"] / "warc", token="s3cret")
        anon = TestClient(app)
        assert anon.get("/").status_code == 401
        assert anon.get("/static/style.css").status_code == 401
        assert anon.get("/?token=wrong").status_code == 401
        assert anon.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        browser = TestClient(app)
        first = browser.get("/search?q=x&token=s3cret", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/search?q=x"
        assert "s3cret" not in first.headers["set-cookie"]
        assert browser.get("/search?q=x").status_code == 200  # the cookie now
