"""The section spider's record of this run's articles, bounded by what is in flight.

An article linked from a listing is *in flight* from its request until its item (or its
304 link item) is emitted: the spider keeps its full :class:`ArticleState` (pages,
validators, every URL it was seen at) only for that time. Once emitted, a later link to
it only has to tell whether it brings a new section or URL (a section merge, sent to the
store as a :class:`~crawler.items.SectionLinkItem`), so the run keeps a compact trace:
the article's sections (one shared frozenset per distinct combination) and 8-byte hashes
of its URLs, keyed by an 8-byte hash of its canonical URL. A redirected URL keeps the
canonical URL of its target. Kept whole for the run, the states made the crawler's RSS
grow with every article (issue #15); the trace is ~5x smaller (~200 bytes an article
against ~1,000 for an emptied state).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from hashlib import blake2b
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawler.spiders.articles import ArticleState


_NO_URLS: frozenset[int] = frozenset()  # one shared empty set (each frozenset() is new)


def _key(url: str) -> int:
    # 64 bits: a collision among a run's URLs (~1e5) is ~1e-9 likely. Not hash(): the
    # trace is per process, but a stable key keeps a failure reproducible.
    return int.from_bytes(blake2b(url.encode("utf-8", "surrogatepass"), digest_size=8).digest())


class ArticleRegistry:
    """Articles scheduled in this run: full state in flight, a compact trace once done."""

    def __init__(self) -> None:
        self.in_flight: dict[str, ArticleState] = {}
        # hash(canonical URL) -> (sections, hashes of its other URLs)
        self._done: dict[int, tuple[frozenset[str], frozenset[int]]] = {}
        self._redirects: dict[str, str] = {}  # canonical URL -> canonical URL of its target
        self._sections: dict[frozenset[str], frozenset[str]] = {}

    def __contains__(self, url: object) -> bool:
        """Whether *url* (canonical) was scheduled in this run, in flight or done."""
        if not isinstance(url, str):
            return False
        return url in self.in_flight or url in self._redirects or _key(url) in self._done

    def __len__(self) -> int:
        return len(self.in_flight) + len(self._done) + len(self._redirects)

    def __iter__(self) -> Iterator[str]:
        """The canonical URLs in flight (done articles keep no URL, only its hash)."""
        return iter(self.in_flight)

    def get(self, url: str) -> ArticleState | None:
        """The state of *url* while it is in flight."""
        return self.in_flight.get(url)

    def add(self, state: ArticleState) -> None:
        self.in_flight[state.url] = state

    def redirect_target(self, url: str) -> str | None:
        """The canonical URL *url* redirected to in this run (followed to its end)."""
        target = self._redirects.get(url)
        seen = {url}
        while target is not None and target in self._redirects and target not in seen:
            seen.add(target)
            target = self._redirects[target]
        return target

    def redirected(self, state: ArticleState, target: str) -> None:
        """*state*'s URL redirected to *target* (canonical): it lives on under that URL."""
        if target == state.url:
            return  # its own canonical form: the new request's state replaces it
        if self.in_flight.get(state.url) is state:
            del self.in_flight[state.url]
        self._redirects[state.url] = target

    def done(self, state: ArticleState) -> None:
        """*state* was emitted: keep its sections and URLs only."""
        if self.in_flight.get(state.url) is state:
            del self.in_flight[state.url]
        self._merge(state.url, state.sections, state.urls)

    def is_done(self, url: str) -> bool:
        return _key(url) in self._done

    def sections(self, url: str) -> frozenset[str]:
        """The sections a done article was linked from in this run."""
        return self._done.get(_key(url), (frozenset(), _NO_URLS))[0]

    def link(self, url: str, section: str, href: str) -> bool:
        """A listing of *section* links the done article *url* at *href*: whether that
        is news (a section or URL not seen for it), recorded."""
        key = _key(url)
        sections, hrefs = self._done[key]
        href_key = None if href == url else _key(href)
        if section in sections and (href_key is None or href_key in hrefs):
            return False
        self._merge(url, (section,), (href,))
        return True

    def merge(self, url: str, sections: Iterable[str], urls: Iterable[str]) -> frozenset[str]:
        """Add *sections* and *urls* to the done article *url*; its sections before."""
        before = self.sections(url)
        self._merge(url, sections, urls)
        return before

    def _merge(self, url: str, sections: Iterable[str], urls: Iterable[str]) -> None:
        key = _key(url)
        old_sections, old_hrefs = self._done.get(key, (frozenset(), _NO_URLS))
        merged = old_sections.union(sections)
        shared = self._sections.setdefault(merged, merged)
        others = [_key(u) for u in urls if u != url]
        hrefs = old_hrefs.union(others) if others else old_hrefs
        self._done[key] = (shared, hrefs)


__all__ = ["ArticleRegistry"]
