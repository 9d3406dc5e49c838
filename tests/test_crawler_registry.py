"""The spider's article registry: full state only in flight, a compact trace once done."""

from __future__ import annotations

import tracemalloc

from crawler.spiders.articles import ArticleState
from crawler.spiders.registry import ArticleRegistry

BASE = "http://127.0.0.1:8000/n/20251011/"


def emitted(registry: ArticleRegistry, url: str, sections: set[str],
            urls: set[str] | None = None) -> ArticleState:
    state = ArticleState(url=url, sections=set(sections), urls={url, *(urls or ())})
    registry.add(state)
    assert registry.get(url) is state and url in registry
    state.emitted = True
    registry.done(state)
    return state


def test_done_article_leaves_its_state_but_stays_known() -> None:
    registry = ArticleRegistry()
    url = BASE + "a.html"
    emitted(registry, url, {"Hi,贵州!"}, {url + "?from=home"})
    assert registry.get(url) is None and not registry.in_flight
    assert url in registry and registry.is_done(url) and len(registry) == 1
    assert BASE + "b.html" not in registry
    assert registry.sections(url) == {"Hi,贵州!"}


def test_a_later_link_is_news_once_per_new_section_or_url() -> None:
    registry = ArticleRegistry()
    url = BASE + "a.html"
    alias = url + "?from=home"
    emitted(registry, url, {"Hi,贵州!"}, {alias})
    assert not registry.link(url, "Hi,贵州!", url)          # seen: same section, same URL
    assert not registry.link(url, "Hi,贵州!", alias)        # an alias it was fetched at
    assert registry.link(url, "老外在贵州", url)              # a new section
    assert not registry.link(url, "老外在贵州", url)
    assert registry.link(url, "老外在贵州", url + "?x=1")    # a new URL
    assert not registry.link(url, "Hi,贵州!", url + "?x=1")
    assert registry.sections(url) == {"Hi,贵州!", "老外在贵州"}


def test_merge_returns_the_sections_before() -> None:
    registry = ArticleRegistry()
    url = BASE + "a.html"
    emitted(registry, url, {"A"})
    assert registry.merge(url, {"B"}, {BASE + "old.html"}) == {"A"}
    assert registry.sections(url) == {"A", "B"}
    assert not registry.link(url, "B", BASE + "old.html")


def test_redirects_lead_to_their_final_target() -> None:
    registry = ArticleRegistry()
    old, mid, new = BASE + "old.html", BASE + "mid.html", BASE + "new.html"
    state = ArticleState(url=old, sections={"A"}, urls={old})
    registry.add(state)
    registry.redirected(state, mid)
    assert registry.get(old) is None and old in registry
    second = ArticleState(url=mid, sections={"A"}, urls={mid, old})
    registry.add(second)
    registry.redirected(second, new)
    assert registry.redirect_target(old) == new and registry.redirect_target(mid) == new
    assert registry.redirect_target(new) is None
    # A redirect to its own canonical form is not an alias: the new request replaces it.
    own = ArticleState(url=new, sections={"A"}, urls={new})
    registry.add(own)
    registry.redirected(own, new)
    assert registry.redirect_target(new) is None and registry.get(new) is own


def test_a_done_article_costs_a_fraction_of_its_state() -> None:
    urls = [f"{BASE}{i:08d}-{'x' * 30}.html" for i in range(20_000)]
    sections = ["老外在贵州", "Hi,贵州!"]

    def traced(build: object) -> float:
        tracemalloc.start()
        try:
            kept = build()  # type: ignore[operator]
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        del kept
        return size / len(urls)

    def states() -> dict[str, ArticleState]:
        # What the spider kept before: every emitted state, emptied of its pages.
        return {u: ArticleState(url=u, sections={sections[i % 2]}, urls={u},
                                page_urls=set(), emitted=True) for i, u in enumerate(urls)}

    def registry() -> ArticleRegistry:
        kept = ArticleRegistry()
        for i, u in enumerate(urls):
            emitted(kept, u, {sections[i % 2]}, {u + "?from=home"} if i % 3 == 0 else None)
        return kept

    before, after = traced(states), traced(registry)
    assert after < 300, after                 # bytes per done article
    assert after * 3 < before, (before, after)
