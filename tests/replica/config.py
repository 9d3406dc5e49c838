"""Configuration of the offline replica and the fixed facts of the simulated portal."""

from __future__ import annotations

from dataclasses import dataclass

LAOWAI = "老外在贵州"
HI_GZ = "Hi,贵州!"
TARGET_SECTIONS: tuple[str, ...] = (LAOWAI, HI_GZ)


@dataclass(frozen=True)
class SectionDef:
    """One navigation entry: its label, its path (None: a ``#`` link) and its JSON API key."""

    label: str
    slug: str | None
    api: str | None = None
    size: int = 0  # articles generated for non-target sections

    @property
    def index_path(self) -> str | None:
        return f"/{self.slug}/index.html" if self.slug else None

    def page_path(self, page: int) -> str:
        return f"/{self.slug}/index.html" if page == 1 else f"/{self.slug}/index_{page}.html"


# The paths are deliberately unrelated to the labels: a crawler must find sections by label.
SECTIONS: tuple[SectionDef, ...] = (
    SectionDef("要闻", "yw", "yw", size=4),
    SectionDef("城市远洋", None),
    SectionDef("原创", "yc", "yc", size=3),
    SectionDef("视频", None),
    SectionDef("直观中国", "zgzg", "zgzg", size=3),
    SectionDef(LAOWAI, "lwzgz", "lwzgz"),
    SectionDef("热点专题", None),
    SectionDef(HI_GZ, "higz", "hi"),
)


def section_by_label(label: str) -> SectionDef:
    for sec in SECTIONS:
        if sec.label == label:
            return sec
    raise KeyError(f"no section labelled {label!r}")


@dataclass(frozen=True)
class ReplicaConfig:
    """How to build and serve one replica; everything it serves derives from these fields.

    ``js_section`` names the section whose listing is filled in by JavaScript from
    ``/api/list`` (None: every listing is plain HTML, no browser needed).
    """

    seed: int = 7
    articles_per_section: int = 23
    page_size: int = 10
    js_section: str | None = HI_GZ
    faults: bool = False
    gateway: bool = True
    conditional: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    slow_seconds: float = 3.0
    republished: bool = True   # two stories republished a day later with small edits

    def __post_init__(self) -> None:
        if self.articles_per_section < 12:
            raise ValueError("articles_per_section must be >= 12 (shared, multi-page, fault roles)")
        if self.page_size < 1:
            raise ValueError("page_size must be >= 1")
        if self.js_section is not None:
            section_by_label(self.js_section)


PROFILES: dict[str, dict[str, object]] = {
    "default": {"js_section": None},
    "js": {},
    "faults": {"js_section": None, "faults": True},
    "full": {"faults": True},
}
