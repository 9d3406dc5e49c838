"""The replica as a benchmark target: every answer rendered once and kept in memory, plus
a fixed added latency (``python -m tests.replica --latency-ms 50 --memory``).

Only for replicas that do not change while served (no ``publish_new``/``edit_article``,
no faults): a cached answer is the one the replica rendered first.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from urllib.parse import urljoin

from .config import SECTIONS
from .replica import Replica
from .server import Response, Router

_LINK = re.compile(r'(?:href|src)="([^"#]+)"|"(?:url|img)":\s*"([^"#]+)"')


class MemoryRouter(Router):
    """A Router whose resolved answers are cached by request target, ``latency`` s later."""

    def __init__(self, base: Router, latency: float = 0.0) -> None:
        super().__init__(base.site, base.lock)
        self.latency = latency
        self._cache: dict[str, Response] = {}
        self._cache_lock = threading.Lock()

    def _resolve(self, target: str) -> Response:
        with self._cache_lock:
            hit = self._cache.get(target)
        if hit is None:
            hit = super()._resolve(target)
            with self._cache_lock:
                self._cache[target] = hit
        return replace(hit, headers=dict(hit.headers))

    def _fault(self, path: str) -> Response | None:
        return None  # serve_from_memory refuses a replica with faults; skip the page lookup

    def respond(self, method: str, target: str, headers: dict[str, str]) -> Response:
        resp = super().respond(method, target, headers)
        resp.delay += self.latency
        return resp

    def warm(self) -> int:
        """Render every page reachable by links from the home page; return how many."""
        base = self.site.base
        todo = ["/"]
        for sec in SECTIONS:  # every listing page and JSON page, linked or not
            for page in range(1, 10_000):
                targets = [f"/api/list?section={sec.api}&page={page}" if sec.api else "",
                           sec.page_path(page) if sec.slug else ""]
                with self.lock:
                    found = [t for t in targets if t and self._resolve(t).status == 200]
                todo += found
                if not found:
                    break
        seen = set(todo)
        # A listing's pager links every page of its section: without this memo the
        # urljoin of the same links from every listing page was most of a large warm-up.
        joined: dict[tuple[str, str], str] = {}
        while todo:
            target = todo.pop()
            with self.lock:
                resp = self._resolve(target)
            ctype = resp.headers.get("Content-Type", "")
            if resp.status != 200 or not ("html" in ctype or "json" in ctype):
                continue
            folder = target.split("?", 1)[0].rsplit("/", 1)[0]  # what a relative link resolves against
            for pair in _LINK.findall(resp.body.decode("utf-8", "replace")):
                raw = (pair[0] or pair[1]).replace("&amp;", "&")
                key = (target if raw.startswith(("?", ";")) else folder, raw)
                link = joined.get(key)
                if link is None:
                    link = urljoin(target, raw)
                    if link.startswith(base):
                        link = link[len(base):] or "/"
                    joined[key] = link
                if link.startswith("/") and not link.startswith("//") and link not in seen:
                    seen.add(link)
                    todo.append(link)
        return len(self._cache)


def serve_from_memory(replica: Replica, latency: float = 0.0, warm: bool = True) -> MemoryRouter:
    """Swap a started replica's router for a MemoryRouter (pre-rendered when ``warm``)."""
    server = replica._server
    if server is None:
        raise RuntimeError("replica not started")
    if replica.config.faults:
        raise ValueError("a replica with faults changes its answers: it cannot be cached")
    router = MemoryRouter(server.router, latency)
    if warm:
        router.warm()
    server.router = router
    return router
