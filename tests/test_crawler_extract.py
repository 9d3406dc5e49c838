"""Extractors (crawler.extract, crawler.textnorm) on saved pages, plus a fuzz test."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.extract.article import parse_article, strip_site_suffix
from crawler.extract.charset import decode_html, normalize_label
from crawler.extract.errors import ExtractionError
from crawler.extract.listing import is_article_url, parse_listing
from crawler.extract.meta import parse_meta_line
from crawler.extract.models import ImageRef, ListingEntry, NavLink
from crawler.extract.nav import find_nav_links, find_section
from crawler.textnorm import clean_text, fold_label, parse_cn_datetime, to_simplified

PAGES = Path(__file__).parent / "pages"
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_02f6932fd5a00f96.txt"
CST = timezone(timedelta(hours=8))
NEW_URL = "https://gz.cri.cn/n/20250722/c3454b1a-5f9e-11f8-4679-bfd1f116995f.html"
OLD_URL = ("https://big5.cri.cn/gate/big5/gz.cri.cn/2025-07-06/"
           "20546f75-2754-9e74-dbb8-6c42f3c23bee.html")
MULTI_URL = "https://gz.cri.cn/n/20250801/8e1f2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7.html"
IMG = "https://p2crires.cri.cn/photoworkspace/cri/contentimg/2025/07/06/"


def page_text(name: str) -> str:
    return decode_html((PAGES / name).read_bytes()).text


# -- textnorm -------------------------------------------------------------------

def test_to_simplified_and_fold_label() -> None:
    assert to_simplified("國際在線貴州頻道 産業") == "国际在线贵州频道 产业"
    assert fold_label("Hi,貴州!") == fold_label("Hi，贵州！") == fold_label("hi,贵州!")
    assert fold_label(" 老外在貴州 ") == "老外在贵州"
    assert fold_label("要聞") != fold_label("要闻x")


def test_clean_text() -> None:
    assert clean_text("\u3000\u3000正文\xa0 ") == "正文"
    assert clean_text("a \n\t b\u3000c") == "a b\u3000c"
    assert clean_text("") == ""


@pytest.mark.parametrize(("raw", "expected"), [
    ("2025-07-06 16:21:55", datetime(2025, 7, 6, 16, 21, 55, tzinfo=CST)),
    ("2025-07-06 16:21", datetime(2025, 7, 6, 16, 21, tzinfo=CST)),
    ("2025年07月06日 16:21", datetime(2025, 7, 6, 16, 21, tzinfo=CST)),
    ("2025-07-06", datetime(2025, 7, 6, tzinfo=CST)),
    ("发布时间：2025-07-06T08:00:00", datetime(2025, 7, 6, 8, tzinfo=CST)),
    ("2025-13-40 10:00", None),
    ("no date", None),
    ("", None),
])
def test_parse_cn_datetime(raw: str, expected: datetime | None) -> None:
    parsed = parse_cn_datetime(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(hours=8)


# -- charset --------------------------------------------------------------------

def test_decode_gb2312_label_as_gb18030() -> None:
    decoded = decode_html((PAGES / "new_template.html").read_bytes())
    assert (decoded.encoding, decoded.declared, decoded.lied) == ("gb18030", "gb2312", False)
    assert "编辑：李堃" in decoded.text and "刘䶮" in decoded.text


def test_decode_lying_meta() -> None:
    decoded = decode_html((PAGES / "lying_charset.html").read_bytes())
    assert (decoded.encoding, decoded.declared, decoded.lied) == ("gb18030", "utf-8", True)
    assert "黄果树瀑布迎来丰水期" in decoded.text


def test_decode_header_wins_and_bom_wins() -> None:
    body = "<meta charset=gb2312><p>贵州</p>".encode()
    assert decode_html(body, "utf-8").encoding == "utf-8"
    assert decode_html(body, "text/html; charset=UTF-8").lied is False
    # gb2312 label over UTF-8 bytes: valid multi-byte UTF-8 is a lie detector
    lied = decode_html(body)
    assert (lied.encoding, lied.lied, lied.text.endswith("贵州</p>")) == ("utf-8", True, True)
    bom = decode_html(b"\xef\xbb\xbf" + "<p>貴州</p>".encode(), "gbk")
    assert (bom.encoding, bom.text, bom.lied) == ("utf-8", "<p>貴州</p>", True)


def test_decode_sniffs_without_label() -> None:
    big5 = "<p>國際在線貴州頻道報道，論壇現場攝影</p>".encode("big5")
    assert decode_html(big5).encoding == "big5hkscs"
    gb = "<p>国际在线贵州频道报道，论坛现场摄影</p>".encode("gb18030")
    assert decode_html(gb).encoding == "gb18030"
    assert decode_html(b"").text == ""


def test_decode_stray_bad_byte_is_not_a_lie() -> None:
    body = ("<meta charset=gb2312>" + "贵州新闻" * 400).encode("gb18030") + b"\xff"
    decoded = decode_html(body)
    assert (decoded.encoding, decoded.lied) == ("gb18030", False)


@pytest.mark.parametrize(("label", "codec"), [
    ("gb2312", "gb18030"), ("GBK", "gb18030"), ("x-gbk", "gb18030"), ("gb_2312-80", "gb18030"),
    ("big5", "big5hkscs"), ("UTF8", "utf-8"), ("base64", None), ("nonsense", None),
])
def test_normalize_label(label: str, codec: str | None) -> None:
    assert normalize_label(label) == codec


# -- navigation -----------------------------------------------------------------

TRAD_LABELS = ["要聞", "城市遠洋", "原創", "視頻", "直觀中國", "老外在貴州", "熱點專題", "Hi,貴州!"]


def test_nav_traditional_site_selectors() -> None:
    base = "https://big5.cri.cn/gate/big5/gz.cri.cn/"
    links = find_nav_links(page_text("home_trad.html"), base)
    assert [link.label for link in links] == TRAD_LABELS
    assert links[5] == NavLink("老外在貴州", base + "foreigners/index.html")
    assert find_section(links, "老外在贵州") == links[5]
    assert find_section(links, "Hi,贵州!") == links[7]
    assert find_section(links, "HI，貴州！") == links[7]
    assert find_section(links, "不存在") is None


def test_nav_simplified_fallback() -> None:
    links = find_nav_links(page_text("home_simp.html"), "https://gz.cri.cn/")
    labels = [link.label for link in links]
    assert labels == ["要闻", "城市远洋", "原创", "视频", "直观中国", "老外在贵州", "热点专题",
                      "Hi，贵州！"]
    assert find_section(links, "老外在貴州") == NavLink("老外在贵州", "https://gz.cri.cn/foreigners/")
    assert find_section(links, "Hi,貴州!") == NavLink("Hi，贵州！", "https://gz.cri.cn/hi/")
    assert find_section(links, "Hi 贵州") == NavLink("Hi，贵州！", "https://gz.cri.cn/hi/")


# -- listings -------------------------------------------------------------------

def test_listing_site_selectors() -> None:
    listing = parse_listing(page_text("listing.html"), "https://gz.cri.cn/foreigners/index.html")
    assert listing.method == "site-selectors"
    assert listing.entries == [
        ListingEntry(MULTI_URL, "老外在贵州｜英国小伙安迪的苗寨一年",
                     "https://p3crires.cri.cn/photoworkspace/cri/contentimg/2025/08/01/andy_s.jpg"),
        ListingEntry(NEW_URL + "?spm=list", "贵州榕江：“村超”带火乡村游 暑期客流同比增长三成", None),
        ListingEntry("https://gz.cri.cn/2025-07-06/20546f75-2754-9e74-dbb8-6c42f3c23bee.html",
                     "贵州省国际友好城市绿色发展与产业合作主题论坛举行",
                     "https://gz.cri.cn/photoworkspace/cri/contentimg/2025/07/06/forum_s.jpg"),
    ]
    assert listing.next_page == "https://gz.cri.cn/foreigners/index_2.html"
    assert listing.has_scripts is False


def test_listing_filled_by_javascript() -> None:
    listing = parse_listing(page_text("listing_js.html"), "https://gz.cri.cn/hi/")
    assert (listing.entries, listing.next_page, listing.has_scripts, listing.method) == (
        [], None, True, "fallback")


def test_listing_fallback_gateway_links() -> None:
    base = "https://big5.cri.cn/gate/big5/gz.cri.cn/"
    listing = parse_listing(page_text("listing_fallback.html"), base + "news/index.html")
    assert listing.method == "fallback"
    assert [e.url for e in listing.entries] == [
        base + "n/20250722/c3454b1a-5f9e-11f8-4679-bfd1f116995f.html",
        base + "2025-07-06/20546f75-2754-9e74-dbb8-6c42f3c23bee.html",
        base + "n/20250801/8e1f2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7_2.html",
    ]
    assert listing.entries[0].title == "貴州榕江：“村超”帶火鄉村遊"
    assert listing.entries[0].image == base + "img/cunchao.jpg"
    assert listing.next_page == base + "news/index_2.html"


@pytest.mark.parametrize(("url", "expected"), [
    (NEW_URL, True), (OLD_URL, True), (MULTI_URL.replace(".html", "_3.html"), True),
    ("https://gz.cri.cn/n/20250722/c3454b1a-5f9e-11f8-4679-bfd1f116995f.html?spm=x", True),
    ("https://gz.cri.cn/news/index.html", False), ("https://gz.cri.cn/n/2025/abc.html", False),
    ("not a url", False),
])
def test_is_article_url(url: str, expected: bool) -> None:
    assert is_article_url(url) is expected


# -- articles -------------------------------------------------------------------

def test_new_template() -> None:
    page = parse_article(page_text("new_template.html"), NEW_URL)
    assert page.template == "new" and page.warnings == []
    assert page.title == "贵州榕江：“村超”带火乡村游 暑期客流同比增长三成"
    assert (page.published_at, page.source, page.editor, page.chief_editor) == (
        "2025-07-22 09:15:30", "新华网", "李堃", None)
    assert len(page.paragraphs) == 5
    assert page.paragraphs[0].startswith("国际在线贵州消息：7月20日晚")
    assert page.paragraphs[2] == "“村超”带动乡村旅游"
    assert "刘䶮" in page.paragraphs[3]
    assert page.paragraphs[-1].endswith("为乡村振兴注入新动能。")
    assert page.images == [
        ImageRef("https://gz.cri.cn/photoworkspace/cri/contentimg/2025/07/22/"
                 "2025072209153012345.jpg", "7月20日，榕江县“村超”比赛现场。（图片来源：新华网）"),
        ImageRef("https://p5crires.cri.cn/photoworkspace/cri/contentimg/2025/07/22/"
                 "2025072209153012346.jpg", None),
    ]
    assert not any("责任编辑" in p or "图片来源" in p for p in page.paragraphs)
    assert page.next_page is None


def _seed_paragraphs() -> list[str]:
    lines = SEED.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.startswith("\u3000\u3000")
            or (line.startswith("  ") and line.strip())]


def test_old_template_matches_seed() -> None:
    page = parse_article(page_text("old_template.html"), OLD_URL)
    assert page.template == "old" and page.warnings == []
    assert page.title == "貴州省國際友好城市綠色發展與産業合作主題論壇舉行 7對省市級友城簽署友好協議文本"
    assert (page.published_at, page.source, page.editor, page.chief_editor) == (
        "2025-07-06 16:21:55", "中央廣電總臺國際在線", "楊展淩", "王悅陽")
    assert len(page.paragraphs) == 9
    assert page.paragraphs[0].startswith("國際在線貴州消息(記者 羅淼):7月5日")
    assert page.paragraphs[-1].endswith("並探討了城市間綠色産業的合作機遇和前景。")
    if SEED.exists():
        assert page.paragraphs == _seed_paragraphs()
    assert [(im.url.rsplit("_fororder_", 1)[-1], im.caption) for im in page.images] == [
        ("未命名__2023-07-06+11_44_35.jpg", None),
        ("IMG_5579.JPG", "論壇現場 攝影 羅淼"),
        ("IMG_5638.JPG", "貴州省國際友城“留學貴州”項目正式啟動\xa0攝影 羅淼"),
        ("IMG_5643.JPG", "主題演講環節 攝影 羅淼"),
    ]
    assert page.images[0].url.startswith("https://big5.cri.cn/gate/big5/gz.cri.cn/photoworkspace/")
    assert page.images[2].url == IMG + "2025070616215513003_fororder_IMG_5638.JPG"
    body = "\n".join(page.paragraphs)
    for boilerplate in ("版權與信息", "國廣國際在線網絡", "攝影", "責任編輯", "分享到"):
        assert boilerplate not in body
    assert page.next_page is None


def test_multipage_article() -> None:
    first = parse_article(page_text("multipage_1.html"), MULTI_URL)
    assert first.next_page == MULTI_URL.replace(".html", "_2.html")
    assert first.paragraphs == [
        "一年前，来自英国曼彻斯特的安迪第一次走进黔东南雷山县的西江千户苗寨。",
        "“我原本只打算待两个星期。”安迪笑着说，“结果一住就是一年。”",
    ]
    assert first.images == [ImageRef(
        "https://p3crires.cri.cn/photoworkspace/cri/contentimg/2025/08/01/andy1.jpg",
        "安迪在西江千户苗寨 摄影 陈思")]
    second = parse_article(page_text("multipage_2.html"), first.next_page or "")
    assert second.next_page is None
    assert second.title == first.title and second.published_at == "2025-08-01 10:00:00"
    assert second.paragraphs[-1] == "“贵州就是我的第二故乡。”安迪说。"


def test_no_site_selectors_falls_back() -> None:
    url = "https://gz.cri.cn/n/20250710/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9.html"
    page = parse_article(page_text("no_selectors.html"), url)
    assert page.template == "fallback"
    assert page.warnings == ["title", "body"]
    assert page.title == "贵州茶产业：从一片叶子到一条产业链"
    assert (page.published_at, page.source, page.editor) == ("2025年07月10日 10:30", "国际在线",
                                                             "张三")
    assert page.paragraphs[0].startswith("贵州是全国茶园面积最大的省份")
    assert page.paragraphs[-1].endswith("“贵州绿茶”品牌影响力不断提升。")
    assert len(page.paragraphs) == 3
    assert page.images == [ImageRef("https://gz.cri.cn/img/2025/07/tea-garden.jpg", "湄潭县的一处茶园")]


def test_malformed_markup_still_extracts() -> None:
    url = "https://gz.cri.cn/n/20250715/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9.html"
    page = parse_article(page_text("malformed.html"), url)
    assert page.title == "贵州遵义：红色旅游持续升温"
    assert (page.published_at, page.source, page.editor) == ("2025-07-15 08:00", "多彩贵州网", "王五")
    assert page.paragraphs[0] == "暑期以来，遵义会议会址每天接待游客上万人次。"
    assert "脚本里的段落" not in "".join(page.paragraphs)
    assert page.images == [ImageRef("https://gz.cri.cn/img/zunyi.jpg", "遵义会议会址 摄影 王五")]


def test_lying_charset_article() -> None:
    page = parse_article(page_text("lying_charset.html"), OLD_URL)
    assert (page.title, page.editor) == ("贵州安顺：黄果树瀑布迎来丰水期", "赵堃")
    assert len(page.paragraphs) == 2


@pytest.mark.parametrize(("html", "reason"), [
    ("", "missing-title"),
    ("<html><body><div id='abody'><p>正文</p></div></body></html>", "missing-title"),
    ("<html><head><title>标题</title></head><body><div>  </div></body></html>", "missing-body"),
    ("<title>" + "x" * 500, "missing-title"),
])
def test_article_errors(html: str, reason: str) -> None:
    with pytest.raises(ExtractionError) as info:
        parse_article(html, NEW_URL)
    assert (info.value.url, info.value.reason) == (NEW_URL, reason)
    assert NEW_URL in str(info.value) and reason in str(info.value)


@pytest.mark.parametrize(("line", "expected"), [
    ("2025-07-06 16:21:55來源:中央廣電總臺國際在線編輯:楊展淩責編:王悅陽",
     {"published_at": "2025-07-06 16:21:55", "source": "中央廣電總臺國際在線",
      "editor": "楊展淩", "chief_editor": "王悅陽"}),
    ("2025-07-06 16:21来源：国际在线　编辑：张三",
     {"published_at": "2025-07-06 16:21", "source": "国际在线", "editor": "张三"}),
    ("編輯:楊展淩", {"editor": "楊展淩"}),
    ("2025年07月06日", {"published_at": "2025年07月06日"}),
])
def test_parse_meta_line(line: str, expected: dict[str, str]) -> None:
    assert parse_meta_line(line) == expected


@pytest.mark.parametrize(("title", "expected"), [
    ("贵州茶产业 _ 国际在线", "贵州茶产业"), ("宜可城-地方协会_國際在線", "宜可城-地方协会"),
    ("标题 - 国际在线贵州频道", "标题"), ("没有后缀", "没有后缀"),
])
def test_strip_site_suffix(title: str, expected: str) -> None:
    assert strip_site_suffix(title) == expected


# -- fuzz -------------------------------------------------------------------------

SAVED = sorted(p.read_bytes() for p in PAGES.glob("*.html"))
TAGS = ["<p>", "</p>", "<div id='abody'>", "</div>", "<img src='x'>", "<a href='_2.html'>",
        "<!--", "<script>", "<table>", "&nbsp;", "\x00", "\ufffd", "<h1>", "<br>", "]]>"]


@st.composite
def mutated_pages(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAVED)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["slice", "insert", "delete", "tag", "byte"]))
        i = draw(st.integers(0, len(data)))
        j = draw(st.integers(i, min(len(data), i + 400)))
        if op == "slice":
            data = data[i:] if draw(st.booleans()) else data[:i]
        elif op == "insert":
            data[i:i] = draw(st.binary(max_size=40))
        elif op == "delete":
            del data[i:j]
        elif op == "tag":
            data[i:i] = draw(st.sampled_from(TAGS)).encode("utf-8", "surrogatepass")
        else:
            data[i:i] = bytes([draw(st.integers(0, 255))])
    return bytes(data)


def _exercise(body: bytes, header: str | None, caplog: pytest.LogCaptureFixture) -> None:
    decoded = decode_html(body, header)
    assert isinstance(decoded.text, str)
    for text in (decoded.text, body.decode("latin-1")):
        try:
            parse_article(text, NEW_URL)
        except ExtractionError:
            pass
        parse_listing(text, "https://gz.cri.cn/news/")
        find_nav_links(text, "https://gz.cri.cn/")
    unexpected = [r for r in caplog.records if r.levelno >= logging.WARNING
                  and "unexpected" in r.getMessage()]
    assert not unexpected, unexpected[0].exc_text


# EXTRACT_FUZZ_EXAMPLES=5000 for a long run.
FUZZ = settings(max_examples=int(os.environ.get("EXTRACT_FUZZ_EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(body=mutated_pages(), header=st.sampled_from([None, "gb2312", "utf-8", "big5", "bogus"]))
def test_fuzz_mutated_pages(body: bytes, header: str | None,
                            caplog: pytest.LogCaptureFixture) -> None:
    _exercise(body, header, caplog)


@FUZZ
@given(body=st.one_of(st.binary(max_size=2000),
                      st.text(max_size=2000).map(lambda s: s.encode("utf-8", "surrogatepass"))),
       header=st.one_of(st.none(), st.text(max_size=20)))
def test_fuzz_random_input(body: bytes, header: str | None,
                           caplog: pytest.LogCaptureFixture) -> None:
    _exercise(body, header, caplog)


@FUZZ
@given(text=st.text(max_size=3000))
def test_fuzz_random_text(text: str, caplog: pytest.LogCaptureFixture) -> None:
    try:
        parse_article(text, "not a url")
    except ExtractionError:
        pass
    parse_listing(text, "")
    find_nav_links(text, "::")
    assert not [r for r in caplog.records if "unexpected" in r.getMessage()]


# -- smaller cases --------------------------------------------------------------------

def test_loose_metadata_and_pager_text() -> None:
    html = """<html><body><h1 class="atitle">標題</h1>
    <div class="meta"><span>2025-07-06 16:21:55</span><span>來源：國際在線</span></div>
    <div class="side"><span>責編：王悅陽</span> <span>編輯：楊展淩</span></div>
    <div class="abody"><p>　　第一段。</p><p>上一頁 1 2 下一頁</p><p>掃一掃，分享到微信</p>
    <p>（責任編輯：王悅陽）</p></div></body></html>"""
    page = parse_article(html, OLD_URL)
    assert (page.published_at, page.source, page.editor, page.chief_editor) == (
        "2025-07-06 16:21:55", "國際在線", "楊展淩", "王悅陽")
    assert page.paragraphs == ["第一段。"]
    assert page.warnings == ["published_at", "source", "editor"]


def test_bare_text_body_and_caption_class() -> None:
    html = """<html><head><meta property="og:title" content="标题 _ 国际在线"></head><body>
    <div id="abody">　　第一段文字。<br/><br/>　　第二段文字。<br/>
    <img src="a.jpg"/><div class="img-desc">一张图</div>第三段。</div></body></html>"""
    page = parse_article(html, NEW_URL)
    assert page.title == "标题" and page.template == "new"
    assert page.paragraphs == ["第一段文字。", "第二段文字。", "第三段。"]
    assert page.images == [ImageRef("https://gz.cri.cn/n/20250722/a.jpg", "一张图")]
    assert page.warnings == ["title", "missing-published_at", "missing-source", "missing-editor"]


def test_large_page_is_fast() -> None:
    import time

    html = page_text("old_template.html").replace(
        "<p>　　本次", "<p>　　本次" + "长" * 50 + "</p><p>　　本次" * 1, 1)
    html = html.replace("</div>\n<div class=\"footer\">",
                        "<div>" + "<p>段落<span>文字</span></p>" * 5000 + "</div></div>\n<div class=\"footer\">")
    start = time.perf_counter()
    parse_article(html, OLD_URL)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(("page_data", "url", "expected"), [
    ('{"total":3,"current":1}', MULTI_URL, MULTI_URL.replace(".html", "_2.html")),
    ("3", MULTI_URL.replace(".html", "_2.html"), MULTI_URL.replace(".html", "_3.html")),
    ("3", MULTI_URL.replace(".html", "_3.html"), None),
    ("", MULTI_URL, None),
    ("{bad json", MULTI_URL, None),
])
def test_continuation_from_page_data(page_data: str, url: str, expected: str | None) -> None:
    html = f"<h1>标题</h1><div id='abody' pageData='{page_data}'><p>正文</p></div>"
    assert parse_article(html, url).next_page == expected
