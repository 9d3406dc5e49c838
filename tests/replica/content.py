"""The replica's articles, listings and ground truth, generated from a seeded RNG.

Nothing here knows about HTTP: pages.py renders these objects, server.py serves them.
"""

from __future__ import annotations

import random
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import phrases as ph
from . import seed as seed_article
from .config import HI_GZ, LAOWAI, SECTIONS, TARGET_SECTIONS, ReplicaConfig, section_by_label

CUTOFF = datetime(2025, 7, 10)  # articles from this day on use the newer template
OLD_RANGE = (datetime(2024, 1, 3), datetime(2025, 7, 9))
NEW_RANGE = (datetime(2025, 7, 10), datetime(2025, 10, 30))
FAULT_ROLES = ("error-500", "slow", "429", "malformed", "lying-charset", "huge")
HIDDEN_ROLES = {"no-body", "private"}  # listed, but a correct crawler stores nothing


@dataclass
class Block:
    """A paragraph (``kind == "p"``) or an image with its optional caption."""

    kind: str
    text: str = ""
    src: str = ""
    caption: str | None = None


@dataclass
class Article:
    """One story: metadata, blocks split into pages, listing sections, fault roles."""

    uid: str
    template: str
    published: datetime  # Beijing time, naive
    title: str
    source: str
    source_url: str
    editor: str
    chief_editor: str | None
    pages: list[list[Block]]
    sections: list[str] = field(default_factory=list)
    meta_style: str = "text"  # older template: "text" (one run-together line) | "spans"
    roles: set[str] = field(default_factory=set)
    revision: int = 0
    duplicate_of: str | None = None  # path of the original when this is a republished story
    modified: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=UTC))

    @property
    def path(self) -> str:
        return self.page_path(1)

    def page_path(self, n: int) -> str:
        if "private" in self.roles:
            stem = f"/private/{self.uid}"
        elif self.template == "new":
            stem = f"/n/{self.published:%Y%m%d}/{self.uid}"
        else:
            stem = f"/{self.published:%Y-%m-%d}/{self.uid}"
        return f"{stem}.html" if n == 1 else f"{stem}_{n}.html"

    @property
    def date(self) -> str:
        return f"{self.published:%Y-%m-%d}"

    def paragraphs(self) -> list[str]:
        return [b.text for page in self.pages for b in page if b.kind == "p"]

    def images(self) -> list[Block]:
        return [b for page in self.pages for b in page if b.kind == "img"]

    def truth(self, base: str) -> dict[str, Any]:
        return {
            "url": base + self.path,
            "title": self.title,
            "published_at": f"{self.published:%Y-%m-%dT%H:%M:%S}+08:00",
            "source": self.source,
            "editor": self.editor,
            "chief_editor": self.chief_editor,
            "sections": sorted(self.sections),
            "body": "\n".join(self.paragraphs()),
            "images": [{"url": base + b.src, "caption": b.caption} for b in self.images()],
            "template": self.template,
            "pages": len(self.pages),
            "near_duplicate_of": base + self.duplicate_of if self.duplicate_of else None,
        }


@dataclass(frozen=True)
class Entry:
    """One item of a section listing, with its href exactly as the page writes it."""

    href: str
    title: str
    img: str
    time: str
    article: Article | None


def _between(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    day = lo + timedelta(days=rng.randrange((hi - lo).days + 1))
    return day.replace(hour=rng.randint(7, 22), minute=rng.randint(0, 59), second=rng.randint(0, 59))


def _uid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_article(rng: random.Random, published: datetime, sections: list[str],
                     npages: int = 1) -> Article:
    """Build one realistic story from the phrase banks."""
    spot, region = rng.choice(ph.SPOTS)
    ctx = {"person": rng.choice(ph.PEOPLE), "local": rng.choice(ph.LOCALS),
           "nation": rng.choice(ph.NATIONS), "spot": spot, "region": region,
           "activity": rng.choice(ph.ACTIVITIES), "culture": rng.choice(ph.CULTURE),
           "event": rng.choice(ph.EVENTS), "city": rng.choice(ph.CITIES),
           "topic": rng.choice(ph.TOPICS), "count": rng.randint(3, 30), "num": rng.randint(10, 500),
           "guests": rng.randint(40, 300),
           "pct": rng.randint(8, 60), "k": rng.randint(2, 9), "reporter": rng.choice(ph.REPORTERS),
           "md": f"{published.month}月{published.day}日"}
    template = "new" if published >= CUTOFF else "old"
    n_par = max(rng.randint(4, 12), 3 * npages)
    paras = [rng.choice(ph.LEADS).format(**ctx)]
    for _ in range(n_par - 1):
        paras.append("".join(s.format(**ctx) for s in rng.sample(ph.SENTENCES, rng.randint(2, 4))))
    blocks = [Block("p", p) for p in paras]
    for _ in range(rng.randint(1 if template == "old" else 0, 3)):
        caption = None
        if rng.random() < 0.75:
            caption = f"{rng.choice(ph.CAPTIONS).format(**ctx)} 摄影 {rng.choice(ph.PHOTOGRAPHERS)}"
        ext = rng.choice(["JPG", "jpg", "png"])
        src = (f"/photoAlbum/page/performance/img/{published:%Y/%-m/%-d}/"
               f"{rng.getrandbits(64):016x}_fororder_IMG_{rng.randint(1000, 9999)}.{ext}")
        blocks.insert(rng.randint(0, len(blocks)), Block("img", src=src, caption=caption))
    source, source_url = rng.choice(ph.SOURCES)
    chief = rng.choice(ph.CHIEF_EDITORS) if rng.random() < (0.5 if template == "new" else 0.7) else None
    art = Article(uid=_uid(rng), template=template, published=published, title=rng.choice(ph.TITLES).format(**ctx),
                  source=source, source_url=source_url, editor=rng.choice(ph.EDITORS), chief_editor=chief,
                  pages=_split(blocks, npages), sections=list(sections),
                  meta_style=rng.choice(["text", "spans"]))
    art.modified = published.replace(tzinfo=UTC) - timedelta(hours=8) + timedelta(minutes=rng.randint(1, 90))
    return art


def _split(blocks: list[Block], npages: int) -> list[list[Block]]:
    """Cut after paragraphs so that every page holds about the same number of them."""
    total = sum(b.kind == "p" for b in blocks)
    per, pages, cur, seen = -(-total // npages), [], [], 0
    for b in blocks:
        cur.append(b)
        seen += b.kind == "p"
        if b.kind == "p" and seen % per == 0 and len(pages) < npages - 1:
            pages.append(cur)
            cur = []
    pages.append(cur)
    return [p for p in pages if p]


def seed_story() -> Article:
    """The real article of the seed file, older template, in 老外在贵州."""
    published = datetime.strptime(seed_article.PUBLISHED, "%Y-%m-%d %H:%M:%S")
    blocks = []
    for kind, text, caption in seed_article.BLOCKS:
        if kind == "p":
            blocks.append(Block("p", text))
        else:
            src = f"/photoAlbum/page/performance/img/2025/7/6/AIGzm8kxs5B9uGrTcQ2Ld0n8250706_fororder_{text}"
            blocks.append(Block("img", src=src, caption=caption))
    art = Article(uid="20546f75-2754-9e74-dbb8-6c42f3c23bee", template="old", published=published,
                  title=seed_article.TITLE, source=seed_article.SOURCE, source_url="https://www.cri.cn/",
                  editor=seed_article.EDITOR, chief_editor=seed_article.CHIEF_EDITOR,
                  pages=[blocks], sections=[LAOWAI], meta_style="text")
    art.modified = datetime(2025, 7, 6, 8, 30, 12, tzinfo=UTC)
    return art


def build_articles(cfg: ReplicaConfig) -> list[Article]:
    """All stories of the site; the same config always yields the same stories."""
    rng = random.Random(cfg.seed)
    n = cfg.articles_per_section
    out: list[Article] = [seed_story()]
    for label, count in ((LAOWAI, n - 1), (HI_GZ, n - 2)):
        made = []
        for i in range(count):
            lo, hi = NEW_RANGE if i % 2 else OLD_RANGE
            made.append(generate_article(rng, _between(rng, lo, hi), [label]))
        # two multi-page stories a section: one per template
        for template, npages in (("new", 3), ("old", 2)):
            j = next(k for k, a in enumerate(made) if a.template == template and len(a.pages) == 1)
            made[j] = generate_article(rng, made[j].published, [label], npages=npages)
        out.extend(made)
    for art in [a for a in out if a.sections == [LAOWAI] and len(a.pages) == 1][1:3]:
        art.sections.append(HI_GZ)  # listed in both target sections
    for sec in SECTIONS:
        for _ in range(sec.size):
            out.append(generate_article(rng, _between(rng, *NEW_RANGE), [sec.label]))
    if cfg.faults:
        _add_faults(cfg, out)
    if cfg.republished:
        _add_republished(cfg, out)
    return out


def _add_republished(cfg: ReplicaConfig, arts: list[Article]) -> None:
    """A story republished a day later with "（更新）" in its title, and another with one
    paragraph rewritten and listed under the other section: near-duplicates."""
    rng = random.Random(f"{cfg.seed}/republished")
    originals = [a for a in arts if a.sections == [LAOWAI] and len(a.pages) == 1
                 and not a.roles and a.uid != seed_story().uid and len(a.paragraphs()) >= 5]
    for n, (orig, section) in enumerate(zip(originals[3:5], (LAOWAI, HI_GZ), strict=False)):
        copy = deepcopy(orig)
        copy.uid = _uid(rng)
        copy.published = orig.published + timedelta(days=1, minutes=rng.randint(1, 300))
        copy.modified = orig.modified + timedelta(days=1)
        copy.sections = [section]
        copy.duplicate_of = orig.path
        if n == 0:
            copy.title = orig.title + "（更新）"
        else:
            paragraphs = [b for b in copy.pages[0] if b.kind == "p"]
            middle = paragraphs[len(paragraphs) // 2]
            middle.text = middle.text[: len(middle.text) // 2] + "记者从主办方获悉，相关活动还将持续到月底。"
        arts.append(copy)


def _add_faults(cfg: ReplicaConfig, arts: list[Article]) -> None:
    rng = random.Random(f"{cfg.seed}/faults")
    victims = [a for a in arts if a.sections == [LAOWAI] and len(a.pages) == 1 and a.uid != seed_story().uid]
    for role, art in zip(FAULT_ROLES, victims, strict=False):
        art.roles.add(role)
    victims[-1].roles.add("offsite")
    for role in ("no-body", "private"):
        art = generate_article(rng, _between(rng, *NEW_RANGE), [LAOWAI])
        art.roles.add(role)
        arts.append(art)


def fault_extras(cfg: ReplicaConfig, label: str) -> list[tuple[int, str, str]]:
    """(position, href, title) of listing entries that lead nowhere useful (faults only)."""
    if not cfg.faults or label != LAOWAI:
        return []
    rng = random.Random(f"{cfg.seed}/extras")
    return [(1, "http://example.com/news/20250801/a1.html", "外站新闻：多彩贵州欢迎你"),
            (3, f"/n/20250903/{_uid(rng)}.html", "已删除的文章"),
            (12, "http://other.invalid/travel/guizhou.html", "合作网站：贵州旅游攻略"),
            (14, f"/2025-05-20/{_uid(rng)}.html", "页面不存在的旧文章")]


def target(art: Article) -> bool:
    return bool(set(art.sections) & set(TARGET_SECTIONS)) and not (art.roles & HIDDEN_ROLES)


def in_sections(art: Article, labels: list[str]) -> bool:
    return bool(set(art.sections) & {section_by_label(x).label for x in labels})
