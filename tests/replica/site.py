"""Mutable state of one replica: its articles, listings, link variants and mutations."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from . import phrases as ph
from .config import LAOWAI, SECTIONS, TARGET_SECTIONS, ReplicaConfig, SectionDef, section_by_label
from .content import (
    HIDDEN_ROLES,
    Article,
    Entry,
    build_articles,
    fault_extras,
    generate_article,
)

TRACKING = "?spm=C94212.P4pAwXHNnRAC.E8nvV1ZxGgVu.{i}&utm_source=wechat&utm_medium=share"


class Site:
    """Everything the replica serves, as objects; ``base`` is set once the port is known."""

    def __init__(self, cfg: ReplicaConfig) -> None:
        self.cfg = cfg
        self.base = f"http://{cfg.host}:{cfg.port}"
        self.articles: list[Article] = build_articles(cfg)
        # Lookups indexed once rather than scanned per request (a scan per article page
        # made serving every page of N articles O(N^2)); rebuilt when ``articles`` grows,
        # the only change that moves a path or a listing (``edit`` changes neither).
        self._indexed = -1
        self._pages: dict[str, tuple[Article, int]] = {}
        self._uids: dict[str, Article] = {}
        self._listed: dict[str, list[Article]] = {}
        self._entries: dict[tuple[str, str], list[Entry]] = {}
        self.styles: dict[tuple[str, str], str] = {}
        self._assign_styles()
        self.published_count = 0

    @property
    def netloc(self) -> str:
        return self.base.split("://", 1)[1]

    def _assign_styles(self) -> None:
        """Vary how listings link articles: gateway twins, tracking params, a redirect."""
        for label in TARGET_SECTIONS:
            for i, art in enumerate(self.listed(label)):
                style = "absolute" if i % 3 == 0 else "path"
                if i % 7 == 2:
                    style = "gateway" if self.cfg.gateway else "absolute"
                elif i % 7 == 4:
                    style = "tracking"
                elif i == 5 and label == LAOWAI:
                    style = "redirect"
                self.styles[(label, art.uid)] = style

    # ---- lookups -------------------------------------------------------------------
    def _index(self) -> None:
        if self._indexed == len(self.articles):
            return
        self._pages.clear()
        self._uids.clear()
        self._listed.clear()
        self._entries.clear()
        for art in self.articles:  # setdefault: the first article wins, as a scan found it
            self._uids.setdefault(art.uid, art)
            for n in range(1, len(art.pages) + 1):
                self._pages.setdefault(art.page_path(n), (art, n))
        self._indexed = len(self.articles)

    def _sorted(self, label: str) -> list[Article]:
        self._index()
        arts = self._listed.get(label)
        if arts is None:
            arts = sorted((a for a in self.articles if label in a.sections),
                          key=lambda a: a.published, reverse=True)
            self._listed[label] = arts
        return arts

    def listed(self, label: str) -> list[Article]:
        return list(self._sorted(label))

    def find_page(self, path: str) -> tuple[Article, int] | None:
        self._index()
        return self._pages.get(path)

    def by_uid(self, uid: str) -> Article | None:
        self._index()
        return self._uids.get(uid)

    def href(self, label: str, art: Article, i: int) -> str:
        style = self.styles.get((label, art.uid), "path")
        if style == "absolute":
            return self.base + art.path
        if style == "gateway":
            return f"{self.base}/gate/big5/{self.netloc}{art.path}"
        if style == "tracking":
            return art.path + TRACKING.format(i=i)
        if style == "redirect":
            return f"/old/{art.uid}.html"
        return art.path

    def entries(self, sec: SectionDef) -> list[Entry]:
        return list(self._section_entries(sec))

    def _section_entries(self, sec: SectionDef) -> list[Entry]:
        """The section's listing, built once per article count and base URL."""
        self._index()
        key = (sec.label, self.base)
        if key not in self._entries:
            self._entries[key] = self._build_entries(sec)
        return self._entries[key]

    def _build_entries(self, sec: SectionDef) -> list[Entry]:
        out = []
        for i, art in enumerate(self._sorted(sec.label)):
            imgs = art.images()
            img = imgs[0].src if imgs else f"/photoAlbum/thumb/{art.uid}.jpg"
            out.append(Entry(self.href(sec.label, art, i), art.title, img, art.date, art))
        for pos, href, title in fault_extras(self.cfg, sec.label):
            out.insert(min(pos, len(out)), Entry(href, title, "/photoAlbum/thumb/extra.png",
                                                 "2025-08-01", None))
        return out

    def listing_page(self, sec: SectionDef, page: int) -> tuple[list[Entry], int]:
        """Entries of listing page ``page`` (1-based) and the number of pages."""
        entries = self._section_entries(sec)
        size = self.cfg.page_size
        pages = max(1, -(-len(entries) // size))
        return entries[(page - 1) * size: page * size], pages

    def featured(self) -> list[Article]:
        """Home-page picks: never from the JS section, so those are reachable only via JSON."""
        picks = []
        for label in ("要闻", LAOWAI, "直观中国"):
            picks.extend(a for a in self.listed(label)[:2]
                         if self.cfg.js_section not in a.sections and not a.roles)
        return picks

    # ---- truth -----------------------------------------------------------------------
    def ground_truth(self, sections: list[str] | None = None) -> list[dict[str, Any]]:
        wanted = set(sections or TARGET_SECTIONS)
        wanted = {section_by_label(x).label for x in wanted}
        arts = [a for a in self.articles if wanted & set(a.sections) and not a.roles & HIDDEN_ROLES]
        return [a.truth(self.base) for a in sorted(arts, key=lambda a: a.published, reverse=True)]

    def expected_failures(self) -> list[dict[str, str]]:
        out = []
        for _, href, _ in fault_extras(self.cfg, LAOWAI):
            if href.startswith("/"):
                out.append({"url": self.base + href, "kind": "not-found"})
        for art in self.articles:
            if "no-body" in art.roles:
                out.append({"url": self.base + art.path, "kind": "no-body"})
            if "private" in art.roles:
                out.append({"url": self.base + art.path, "kind": "robots-disallowed"})
        return out

    def fault_urls(self) -> dict[str, str]:
        return {role: self.base + a.path for a in self.articles for role in sorted(a.roles)}

    # ---- mutations -------------------------------------------------------------------
    def publish_new(self, n: int, label: str) -> list[Article]:
        sec = section_by_label(label)
        newest = max(a.published for a in self.articles)
        made = []
        for i in range(n):
            self.published_count += 1
            rng = random.Random(f"{self.cfg.seed}/publish/{self.published_count}")
            art = generate_article(rng, newest + timedelta(minutes=37 * (i + 1)), [sec.label])
            self.articles.append(art)
            made.append(art)
        return made

    def edit(self, art: Article) -> Article:
        art.revision += 1
        paras = [b for page in art.pages for b in page if b.kind == "p"]
        block = paras[len(paras) // 2]
        block.text += ph.EDIT_SENTENCES[(art.revision - 1) % len(ph.EDIT_SENTENCES)]
        art.modified += timedelta(days=1)
        return art

    def nav_sections(self) -> tuple[SectionDef, ...]:
        return SECTIONS
