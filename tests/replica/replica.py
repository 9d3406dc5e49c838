"""``Replica``: start/stop the fake gz.cri.cn, read its ground truth, change it live."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from .config import LAOWAI, ReplicaConfig
from .server import LogEntry, ReplicaHTTPServer, Router
from .site import Site


class Replica:
    """A deterministic fake of the portal served on 127.0.0.1 from a background thread.

    >>> rep = Replica(ReplicaConfig(js_section=None)).start()
    >>> rep.url            # 'http://127.0.0.1:PORT'
    >>> rep.stop()
    """

    def __init__(self, config: ReplicaConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or ReplicaConfig(), **overrides)
        self._lock = threading.RLock()
        self.site = Site(self.config)
        self._server: ReplicaHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> Replica:
        if self._server is not None:
            return self
        server = ReplicaHTTPServer((self.config.host, self.config.port), Router(self.site, self._lock))
        self.site.base = f"http://{self.config.host}:{server.server_address[1]}"
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="replica-http",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Replica:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what tests read ---------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("replica not started")
        return self.site.base

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log(self) -> list[LogEntry]:
        return self._server.log if self._server is not None else []

    def clear_log(self) -> None:
        if self._server is not None:
            with self._server._log_lock:
                self._server.log.clear()

    def ground_truth(self, sections: list[str] | None = None) -> list[dict[str, Any]]:
        """One dict per story a correct crawler stores (default: the two target sections)."""
        with self._lock:
            return self.site.ground_truth(sections)

    def expected_failures(self) -> list[dict[str, str]]:
        """Listed URLs that must NOT end up stored: {url, kind} (faults only)."""
        with self._lock:
            return self.site.expected_failures()

    def fault_urls(self) -> dict[str, str]:
        """Fault role -> canonical URL of the article that carries it (faults only)."""
        with self._lock:
            return self.site.fault_urls()

    def gateway_url(self, url: str) -> str:
        """Gateway twin of a plain URL of this replica."""
        return f"{self.url}/gate/big5/{self.site.netloc}{url.removeprefix(self.url)}"

    # ---- live changes ------------------------------------------------------------------
    def publish_new(self, n: int = 2, section: str = LAOWAI) -> list[dict[str, Any]]:
        """Add ``n`` newest articles at the top of the section's first listing page."""
        with self._lock:
            return [a.truth(self.site.base) for a in self.site.publish_new(n, section)]

    def edit_article(self, url: str) -> dict[str, Any]:
        """Edit one paragraph in place (new ETag, later Last-Modified); return the new truth."""
        path = url.removeprefix(self.site.base).split("?", 1)[0]
        with self._lock:
            found = self.site.find_page(path)
            if found is None:
                raise KeyError(f"no article at {url}")
            return self.site.edit(found[0]).truth(self.site.base)
