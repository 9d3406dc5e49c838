"""The offline replica itself: pages, encodings, gateway, validators, API, log, faults."""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import opencc
import pytest

from tests.replica import HI_GZ, LAOWAI, Replica, ReplicaConfig
from tests.replica.bench import serve_from_memory

NAV = ["要闻", "城市远洋", "原创", "视频", "直观中国", "老外在贵州", "热点专题", "Hi,贵州!"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(url: str, headers: dict[str, str] | None = None,
          follow: bool = True) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=15) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def hrefs(html: str, cls: str = "title") -> list[str]:
    return re.findall(rf'<div class="{cls}"><a href="([^"]+)"', html)


def nav_url(rep: Replica, label: str) -> str:
    html = fetch(rep.url + "/")[2].decode("utf-8")
    path = re.search(rf'<a href="([^"]+)">{re.escape(label)}</a>', html)
    assert path
    return urljoin(rep.url + "/", path.group(1).replace("&amp;", "&"))


def walk(rep: Replica, label: str) -> list[str]:
    """All article links of a plain-HTML section, following 下一页."""
    url: str | None = nav_url(rep, label)
    out: list[str] = []
    while url:
        html = fetch(url)[2].decode("utf-8")
        out += [urljoin(url, h.replace("&amp;", "&")) for h in hrefs(html)]
        nxt = re.search(r'<a href="([^"]+)">下一页</a>', html)
        url = urljoin(url, nxt.group(1)) if nxt else None
    return out


def canonical(rep: Replica, link: str) -> str:
    link = link.split("?", 1)[0].replace(f"/gate/big5/{rep.url.split('//')[1]}", "")
    if "/old/" in link:
        return fetch(link, follow=False)[1]["Location"]
    return link


def test_home_has_all_nav_labels(replica: Replica) -> None:
    status, headers, body = fetch(replica.url + "/")
    assert status == 200 and "charset=utf-8" in headers["Content-Type"]
    html = body.decode("utf-8")
    nav = re.search(r'<div class="nav"><ul>(.*?)</ul></div>', html)
    assert nav
    assert re.findall(r">([^<>]+)</a></li>", nav.group(1))[1:] == NAV


def test_pagination_walks_every_target_article(replica: Replica) -> None:
    truth = {t["url"]: t for t in replica.ground_truth()}
    seen: dict[str, set[str]] = {}
    for label in (LAOWAI, HI_GZ):
        links = walk(replica, label)
        assert len(links) == 24  # 23 + one republished near-duplicate
        for link in links:
            seen.setdefault(canonical(replica, link), set()).add(label)
    assert set(seen) == set(truth)
    assert all(sorted(seen[u]) == truth[u]["sections"] for u in truth)
    assert sum(len(t["sections"]) == 2 for t in truth.values()) == 2


def test_listing_markup_and_last_page(replica: Replica) -> None:
    html = fetch(nav_url(replica, LAOWAI))[2].decode("utf-8")
    assert '<div class="list-box"><ul>' in html and 'href="index_2.html">下一页' in html
    assert re.search(r'<div class="time">\d{4}-\d{2}-\d{2}</div>', html)
    last = fetch(nav_url(replica, LAOWAI).replace("index.html", "index_3.html"))[2].decode("utf-8")
    assert "下一页" not in last and len(hrefs(last)) == 4  # 24 entries, 10 a page


def test_listing_link_variants(replica: Replica) -> None:
    links = walk(replica, LAOWAI) + walk(replica, HI_GZ)
    assert any("/gate/big5/" in x for x in links)
    assert any("utm_source=" in x and "spm=" in x for x in links)
    assert any("/old/" in x for x in links)


def test_ground_truth_shape(replica: Replica) -> None:
    truth = replica.ground_truth()
    assert len(truth) == 46  # 44 + two republished near-duplicates
    assert {t["template"] for t in truth} == {"new", "old"}
    for label in (LAOWAI, HI_GZ):
        assert sum(t["pages"] > 1 for t in truth if label in t["sections"]) >= 2
    assert any(t["chief_editor"] is None for t in truth)
    for t in truth:
        assert t["url"].startswith(replica.url) and "?" not in t["url"] and "/gate/" not in t["url"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", t["published_at"])
        assert "摄影" not in t["body"] and "版权" not in t["body"] and "\u3000" not in t["body"]
        assert all(p == p.strip() for p in t["body"].split("\n"))


def test_seed_article_is_present(replica: Replica) -> None:
    seed = [t for t in replica.ground_truth() if t["title"].startswith("贵州省国际友好城市绿色发展与产业")]
    assert len(seed) == 1
    s = seed[0]
    assert (s["template"], s["editor"], s["chief_editor"]) == ("old", "杨展凌", "王悦阳")
    assert s["published_at"] == "2025-07-06T16:21:55+08:00" and s["sections"] == [LAOWAI]
    assert [i["caption"] for i in s["images"]][:2] == [None, "论坛现场 摄影 罗淼"]
    html = fetch(s["url"])[2].decode("utf-8")
    assert "2025-07-06 16:21:55来源:中央广电总台国际在线编辑:杨展凌责编:王悦阳" in html
    assert "国际在线版权与信息产品内容销售的声明" in html and 'class="crumbs"' in html


def test_text_round_trips_through_gateway_scripts(replica: Replica) -> None:
    t2s, s2t = opencc.OpenCC("t2s"), opencc.OpenCC("s2t")
    for t in replica.ground_truth():
        for text in (t["title"], t["body"], t["editor"]):
            assert t2s.convert(s2t.convert(text).replace("產", "産")) == text


def test_new_template_is_gb18030_with_non_gb2312_chars(replica: Replica) -> None:
    new = [t for t in replica.ground_truth() if t["template"] == "new"]
    odd = [t for t in new if _not_gb2312(t["title"] + t["editor"])]
    assert odd
    status, headers, body = fetch(odd[0]["url"])
    assert b"charset=gb2312" in body[:300]
    with pytest.raises(UnicodeDecodeError):
        body.decode("gb2312")
    html = body.decode("gb18030")
    assert odd[0]["title"] in html and 'id="abody" pageData' in html
    assert any(_not_gb2312(ch) for ch in odd[0]["title"] + odd[0]["editor"])


def _not_gb2312(text: str) -> bool:
    try:
        text.encode("gb2312")
    except UnicodeEncodeError:
        return True
    return False


def test_multi_page_article_concatenates(replica: Replica) -> None:
    t = next(t for t in replica.ground_truth() if t["pages"] == 3)
    paras: list[str] = []
    url: str | None = t["url"]
    while url:
        html = fetch(url)[2].decode("gb18030")
        body = html.split('id="abody"', 1)[1].split("</div>", 1)[0]
        paras += [p.strip("\u3000") for p in re.findall(r"<p>([^<]*)</p>", body)]
        nxt = re.search(r'<a href="([^"]+)">下一页</a>', html)
        url = urljoin(url, nxt.group(1)) if nxt else None
    assert "\n".join(paras) == t["body"]


def test_gateway_twin_is_traditional(replica: Replica) -> None:
    t = next(t for t in replica.ground_truth() if "产" in t["body"] and t["template"] == "new")
    status, headers, body = fetch(replica.gateway_url(t["url"]))
    assert status == 200 and "charset=utf-8" in headers["Content-Type"]
    html = body.decode("utf-8")
    assert "産" in html and "产" not in html and "產" not in html
    assert opencc.OpenCC("s2t").convert(t["title"]).replace("產", "産") in html
    assert 'href="/gate/big5/' in html
    home = fetch(replica.gateway_url(replica.url + "/"))[2].decode("utf-8")
    assert "老外在貴州" in home and "Hi,貴州!" in home


def test_conditional_requests(replica: Replica) -> None:
    url = replica.ground_truth()[0]["url"]
    status, headers, body = fetch(url)
    assert headers["ETag"] and headers["Last-Modified"]
    assert fetch(url, {"If-None-Match": headers["ETag"]})[0] == 304
    assert fetch(url, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
    assert fetch(url, {"If-None-Match": '"other"'})[0] == 200
    assert fetch(url, {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})[0] == 200


def test_log_records_exact_bytes(replica: Replica) -> None:
    url = replica.ground_truth()[1]["url"]
    body = fetch(url + "?utm_source=log-test")[2]
    entry = [e for e in replica.log if e.path.endswith("?utm_source=log-test")][-1]
    assert entry.method == "GET" and entry.status == 200 and entry.bytes_sent == len(body)
    assert entry.body_sha1 == hashlib.sha1(body).hexdigest()
    assert "user-agent" in entry.headers and entry.time <= time.time()


def test_redirect_and_images(replica: Replica) -> None:
    link = next(x for x in walk(replica, LAOWAI) if "/old/" in x)
    status, headers, _ = fetch(link, follow=False)
    assert status == 301 and headers["Location"].startswith(replica.url + "/")
    assert fetch(link)[0] == 200
    img = next(t for t in replica.ground_truth() if t["images"])["images"][0]["url"]
    status, headers, body = fetch(img)
    assert status == 200 and headers["Content-Type"].startswith("image/")
    assert body[:2] == b"\xff\xd8" or body[:4] == b"\x89PNG"
    assert fetch(replica.url + "/robots.txt")[2].startswith(b"User-agent: *\nDisallow: /private/")


def test_js_listing_and_api(replica_factory: Callable[..., Replica]) -> None:
    rep = replica_factory(js_section=HI_GZ, page_size=10)
    html = fetch(nav_url(rep, HI_GZ))[2].decode("utf-8")
    assert '<ul id="list"></ul>' in html and "fetch(" in html and "<li><div" not in html
    items: list[dict[str, Any]] = []
    page: int | None = 1
    while page:
        data = json.loads(fetch(f"{rep.url}/api/list?section=hi&page={page}")[2])
        items += data["items"]
        page = page + 1 if data["next"] else None
    assert len(items) == 24 and all(i["url"].startswith("http") for i in items)
    hi = {canonical(rep, i["url"]) for i in items}
    assert hi == {t["url"] for t in rep.ground_truth() if HI_GZ in t["sections"]}
    home = fetch(rep.url + "/")[2].decode("utf-8")
    only_hi = [u for u in hi if u.removeprefix(rep.url) in home]
    assert not [u for u in only_hi if u not in {canonical(rep, x) for x in walk(rep, LAOWAI)}]


def test_publish_and_edit(replica_factory: Callable[..., Replica]) -> None:
    rep = replica_factory()
    listed_before = walk(rep, LAOWAI)  # the site indexes its listings: publishing must refresh them
    new = rep.publish_new(2, section=LAOWAI)
    listed_after = walk(rep, LAOWAI)
    assert len(listed_after) == len(listed_before) + 2
    first = [canonical(rep, x) for x in listed_after[:2]]
    assert first == [t["url"] for t in sorted(new, key=lambda t: t["published_at"], reverse=True)]
    assert len(rep.ground_truth()) == 48
    url = new[0]["url"]
    _, headers, before = fetch(url)
    edited = rep.edit_article(url)
    assert edited["body"] != new[0]["body"] and edited["title"] == new[0]["title"]
    status, headers2, after = fetch(url, {"If-None-Match": headers["ETag"]})
    assert status == 200 and after != before and headers2["ETag"] != headers["ETag"]
    assert headers2["Last-Modified"] != headers["Last-Modified"]


def test_faults(replica_factory: Callable[..., Replica]) -> None:
    rep = replica_factory(faults=True, slow_seconds=1.0)
    faults = rep.fault_urls()
    assert fetch(faults["error-500"])[0] == 500 and fetch(faults["error-500"])[0] == 200
    status, headers, _ = fetch(faults["429"])
    assert status == 429 and headers["Retry-After"] == "1" and fetch(faults["429"])[0] == 200
    start = time.monotonic()
    fetch(faults["slow"])
    assert time.monotonic() - start >= 1.0
    start = time.monotonic()
    fetch(faults["slow"])
    assert time.monotonic() - start < 0.5
    assert len(fetch(faults["huge"])[2]) > 3_000_000
    lying = fetch(faults["lying-charset"])[2]
    assert b"charset=utf-8" in lying[:300] or b'charset="utf-8"' in lying[:300]
    with pytest.raises(UnicodeDecodeError):
        lying.decode("utf-8")
    assert "</div></span>" in fetch(faults["malformed"])[2].decode("gb18030", "replace")
    kinds = {f["kind"] for f in rep.expected_failures()}
    assert kinds == {"not-found", "no-body", "robots-disallowed"}
    for f in rep.expected_failures():
        if f["kind"] == "not-found":
            assert fetch(f["url"])[0] == 404
    links = walk(rep, LAOWAI)
    assert any(x.startswith("http://example.com/") for x in links)
    assert any(x.startswith("http://other.invalid/") for x in links)
    assert any("/private/" in x for x in links)
    truth_urls = {t["url"] for t in rep.ground_truth()}
    assert not truth_urls & {f["url"] for f in rep.expected_failures()}
    assert set(faults.values()) - {f["url"] for f in rep.expected_failures()} <= truth_urls


def test_memory_router_serves_what_the_replica_serves(replica_factory: Callable[..., Replica]) -> None:
    """serve_from_memory (the benchmarks' replica) reaches every page and answers byte for byte."""
    rep = replica_factory(js_section=HI_GZ, articles_per_section=40)
    assert rep._server is not None
    plain = rep._server.router
    router = serve_from_memory(rep)
    cached = set(router._cache)
    # listings link some stories only as a gateway twin, with tracking parameters or by a redirect
    reached = {canonical(rep, rep.url + t).removeprefix(rep.url) for t in cached if "/api/" not in t}
    for t in rep.ground_truth():
        path = t["url"].removeprefix(rep.url)
        pages = [path] + [path.replace(".html", f"_{n}.html") for n in range(2, t["pages"] + 1)]
        assert set(pages) <= reached, path
    last = -(-len(rep.ground_truth([HI_GZ])) // 10)
    assert last >= 4 and {f"/api/list?section=hi&page={n}" for n in range(1, last + 1)} <= cached
    assert router._cache[f"/api/list?section=hi&page={last + 1}"].status == 404
    for target in sorted(cached):
        want, got = plain.respond("GET", target, {}), router.respond("GET", target, {})
        assert (got.status, got.headers, got.body) == (want.status, want.headers, want.body), target


def test_config_is_deterministic() -> None:
    a = Replica(ReplicaConfig(seed=3)).site.ground_truth()
    b = Replica(ReplicaConfig(seed=3)).site.ground_truth()
    c = Replica(ReplicaConfig(seed=4)).site.ground_truth()
    assert a == b and a != c


def _extract(rep: Replica, url: str) -> dict[str, Any]:
    """A minimal reference extractor (parsel): proves the truth is derivable from the HTML."""
    from parsel import Selector

    paras: list[str] = []
    images: list[dict[str, Any]] = []
    title = ""
    next_url: str | None = url
    while next_url:
        for _ in range(3):  # transient faults (500, 429) clear on the next try
            status, _, raw = fetch(next_url)
            if status == 200:
                break
        try:
            html = raw.decode("utf-8")
        except UnicodeDecodeError:
            html = raw.decode("gb18030")
        sel = Selector(text=html)
        title = title or sel.css("#atitle::text, .atitle::text").get("").strip()
        ps = sel.css("div.abody > p")
        for i, p in enumerate(ps):
            if p.css("img"):
                nxt = ps[i + 1] if i + 1 < len(ps) else None
                cap = None
                if nxt is not None and "center" in (nxt.attrib.get("style") or "") and not nxt.css("img"):
                    cap = "".join(nxt.css("::text").getall()).strip()
                images.append({"url": urljoin(next_url, p.css("img::attr(src)").get()), "caption": cap})
            elif "center" not in (p.attrib.get("style") or ""):
                paras.append("".join(p.css("::text").getall()).strip("\u3000 \n"))
        link = sel.xpath('//div[@class="page"]/a[text()="下一页"]/@href').get()
        next_url = urljoin(next_url, link) if link else None
    return {"title": title, "body": "\n".join(paras), "images": images}


@pytest.mark.parametrize("faults", [False, True])
def test_truth_is_derivable_from_pages(replica_factory: Callable[..., Replica], faults: bool) -> None:
    rep = replica_factory(faults=faults)
    for t in rep.ground_truth():
        got = _extract(rep, t["url"])
        assert got == {k: t[k] for k in ("title", "body", "images")}, t["url"]
