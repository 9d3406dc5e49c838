"""HTML rendering of the replica's templates: home, listings, both article templates."""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from . import seed as seed_article
from .config import SECTIONS, SectionDef
from .content import Article, Block
from .site import Site

FOOTER = ('<div class="footer"><p>国际在线版权所有 Copyright &copy; China Radio International. '
          'All Rights Reserved.</p><p>信息产品内容销售声明 | 京ICP证000000号</p>'
          '<p>友情链接：<a href="https://www.cri.cn/">国际在线</a> '
          '<a href="http://www.gog.cn/">多彩贵州网</a></p></div>')
OFFSITE = ('<div class="related"><h3>相关链接</h3><ul>'
           '<li><a href="http://example.com/guizhou/travel.html">外站：贵州自由行</a></li>'
           '<li><a href="http://other.invalid/news/1.html">合作媒体报道</a></li></ul></div>')
SCRIPT = """<script>
(function () {
  var ul = document.getElementById("list"), pager = document.getElementById("pager");
  fetch("/api/list?section=%(api)s&page=%(page)d").then(function (r) { return r.json(); })
    .then(function (data) {
      data.items.forEach(function (it) {
        var li = document.createElement("li");
        li.innerHTML = '<div class="pic"><a href="' + it.url + '"><img src="' + it.img + '"></a></div>' +
          '<div class="title"><a href="' + it.url + '">' + it.title + '</a></div>' +
          '<div class="time">' + it.time + '</div>';
        ul.appendChild(li);
      });
      if (data.next) { pager.innerHTML = '<a href="' + data.next + '">下一页</a>'; }
    });
})();
</script>"""


def nav() -> str:
    items = "".join(f'<li><a href="{s.index_path or "#"}">{escape(s.label)}</a></li>' for s in SECTIONS)
    return f'<div class="nav"><ul><li class="home"><a href="/">首页</a></li>{items}</ul></div>'


def _doc(title: str, body: str, charset: str = "utf-8", meta: str | None = None) -> str:
    head = meta or f'<meta charset="{charset}">'
    return (f"<!DOCTYPE html>\n<html>\n<head>\n{head}\n<title>{escape(title)}</title>\n"
            '<link rel="stylesheet" href="/css/style.css">\n</head>\n<body>\n'
            '<div class="header"><div class="logo"><a href="/"><img src="/img/logo.png" '
            f'alt="国际在线贵州频道"></a></div>\n{nav()}\n</div>\n{body}\n{FOOTER}\n</body>\n</html>\n')


def home(site: Site) -> str:
    lis = "".join(f'<li><a href="{a.path}"><img src="{(a.images() or [Block("img", src="/img/default.jpg")])[0].src}"></a>'
                  f'<p><a href="{a.path}">{escape(a.title)}</a></p></li>' for a in site.featured())
    body = (f'<div class="focus"><h2>今日推荐</h2><ul>{lis}</ul></div>\n'
            '<div class="intro"><p>国际在线贵州频道：讲述贵州故事，展示开放、生态、产业发展的多彩贵州。</p></div>')
    return _doc("国际在线贵州频道", body)


def _li(href: str, title: str, img: str, time: str) -> str:
    return (f'<li><div class="pic"><a href="{escape(href)}"><img src="{img}"></a></div>'
            f'<div class="title"><a href="{escape(href)}">{escape(title)}</a></div>'
            f'<div class="time">{time}</div></li>')


def _pager(sec: SectionDef, page: int, pages: int) -> str:
    if pages == 1:
        return ""
    links = [f'<a href="{sec.page_path(page - 1).rsplit("/", 1)[1]}">上一页</a>'] if page > 1 else []
    for n in range(1, pages + 1):
        name = sec.page_path(n).rsplit("/", 1)[1]
        links.append(f"<span>{n}</span>" if n == page else f'<a href="{name}">{n}</a>')
    if page < pages:
        links.append(f'<a href="{sec.page_path(page + 1).rsplit("/", 1)[1]}">下一页</a>')
    return f'<div class="page" id="pager">{"".join(links)}</div>'


def listing(site: Site, sec: SectionDef, page: int) -> str | None:
    entries, pages = site.listing_page(sec, page)
    if page > pages:
        return None
    crumbs = f'<div class="crumbs"><a href="/">首页</a> &gt; {escape(sec.label)}</div>'
    if site.cfg.js_section == sec.label:
        body = (f'{crumbs}\n<div class="list-box"><ul id="list"></ul></div>\n'
                f'<div class="page" id="pager"></div>\n' + SCRIPT % {"api": sec.api, "page": page})
    else:
        lis = "\n".join(_li(e.href, e.title, e.img, e.time) for e in entries)
        body = f'{crumbs}\n<div class="list-box"><ul>\n{lis}\n</ul></div>\n{_pager(sec, page, pages)}'
    return _doc(f"{sec.label}_国际在线贵州频道", body)


def api_list(site: Site, sec: SectionDef, page: int) -> dict[str, Any] | None:
    entries, pages = site.listing_page(sec, page)
    if page > pages:
        return None
    items = [{"url": e.href if e.href.startswith("http") else site.base + e.href,
              "title": e.title, "img": e.img, "time": e.time} for e in entries]
    nxt = sec.page_path(page + 1).rsplit("/", 1)[1] if page < pages else None
    return {"items": items, "next": nxt}


def api_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


def _blocks(blocks: list[Block], closed: bool = True) -> str:
    end = "</p>" if closed else ""
    out = []
    for b in blocks:
        if b.kind == "p":
            out.append(f"<p>\u3000\u3000{escape(b.text)}{end}")
        else:
            out.append(f'<p style="text-align:center"><img src="{b.src}" alt=""></p>')
            if b.caption:
                out.append(f'<p style="text-align:center">{escape(b.caption)}</p>')
    return "\n".join(out)


def _article_pager(art: Article, n: int) -> str:
    if len(art.pages) == 1:
        return ""
    name = lambda k: art.page_path(k).rsplit("/", 1)[1]  # noqa: E731
    links = [f'<a href="{name(n - 1)}">上一页</a>'] if n > 1 else []
    links += [f"<span>{k}</span>" if k == n else f'<a href="{name(k)}">{k}</a>'
              for k in range(1, len(art.pages) + 1)]
    if n < len(art.pages):
        links.append(f'<a href="{name(n + 1)}">下一页</a>')
    return f'<div class="page">{"".join(links)}</div>'


def article(site: Site, art: Article, n: int) -> tuple[str, str]:
    """HTML of page ``n`` of ``art`` and the encoding its bytes must use."""
    render = _new_template if art.template == "new" else _old_template
    html = render(site, art, n)
    if "malformed" in art.roles:  # unclosed inline tags before the article, a stray end tag
        html = html.replace("<body>\n", '<body>\n<div class="tools"><span><b>字号：大 中 小\n', 1)
        html = re.sub(r'(<div class="(?:list-abody )?abody")', r"</div></span>\n\1", html, count=1)
    if "huge" in art.roles:  # ~3 MB of inline tracking data, outside the article
        html = html.replace("</body>", "<script>var trackData = \"" + "x7Q" * 1_000_000 + "\";</script>\n</body>")
    lying = "lying-charset" in art.roles  # meta says utf-8, bytes are GB18030
    return html, "gb18030" if art.template == "new" or lying else "utf-8"


def _new_template(site: Site, art: Article, n: int) -> str:
    closed = "malformed" not in art.roles
    chief = f'<span class="achiefeditor">责编：{escape(art.chief_editor)}</span>' if art.chief_editor else ""
    brief = (f'<div class="list-brief"><span id="apublishtime" class="apublishtime span-first">'
             f'{art.published:%Y-%m-%d %H:%M:%S}</span><span id="asource" class="asource">来源：'
             f'<a href="{art.source_url}" target="_blank">{escape(art.source)}</a></span>'
             f'<span id="aeditor" class="aeditor">编辑：{escape(art.editor)}</span>{chief}</div>')
    body = f"<div class=\"list-abody abody\" id=\"abody\" pageData=''>\n{_blocks(art.pages[n - 1], closed)}\n</div>"
    if "no-body" in art.roles:
        body = '<div class="list-abody-empty"></div>'
    main = (f'<div class="main">\n<div class="list-title" id="atitle">{escape(art.title)}</div>\n'
            f'{brief}\n{body}\n{_article_pager(art, n)}\n'
            f'{OFFSITE if "offsite" in art.roles else ""}</div>')
    charset = "utf-8" if "lying-charset" in art.roles else "gb2312"
    meta = f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">'
    return _doc(f"{art.title}_国际在线", main, meta=meta)


def _old_template(site: Site, art: Article, n: int) -> str:
    closed = "malformed" not in art.roles
    sec = next((s for s in SECTIONS if s.label in art.sections), SECTIONS[0])
    crumbs = (f'<div class="crumbs"><a href="/">首页</a> &gt; <a href="{sec.index_path}">'
              f'{escape(sec.label)}</a> &gt; 正文</div>')
    when = f"{art.published:%Y-%m-%d %H:%M:%S}"
    if art.meta_style == "text":
        line = f"{when}来源:{art.source}编辑:{art.editor}" + (f"责编:{art.chief_editor}" if art.chief_editor else "")
        meta = f'<div class="acreatedtime">{escape(line)}</div>'
    else:
        chief = f'<span class="achiefeditor">责编:{escape(art.chief_editor)}</span>' if art.chief_editor else ""
        meta = (f'<div class="ainfo"><span class="acreatedtime">{when}</span><span class="asource">来源:'
                f'<a href="{art.source_url}">{escape(art.source)}</a></span>'
                f'<span class="aeditor">编辑:{escape(art.editor)}</span>{chief}</div>')
    statement = "".join(f"<p>{escape(c)}</p>" for c in seed_article.COPYRIGHT)
    main = (f'{crumbs}\n<div class="article-con">\n<div class="atitle">{escape(art.title)}</div>\n{meta}\n'
            f'<div class="abody" id="abody">\n{_blocks(art.pages[n - 1], closed)}\n</div>\n{_article_pager(art, n)}\n'
            f'<div class="copyright">{statement}</div>\n</div>')
    return _doc(f"{art.title}_国际在线", main)


ROBOTS = "User-agent: *\nDisallow: /private/\nDisallow: /gate/big5/{netloc}/private/\n"
CSS = "body{font-family:sans-serif}.nav ul li{display:inline;margin:0 8px}\n"
