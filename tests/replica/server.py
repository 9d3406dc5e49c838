"""HTTP side of the replica: routing, validators, injected faults, and the request log."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import gateway, pages
from .config import SECTIONS
from .content import Article
from .images import image_for
from .site import Site

LISTING = re.compile(r"^/(\w+)/(?:index(?:_(\d+))?\.html)?$")
ARTICLE = re.compile(r"^/(?:n/\d{8}|\d{4}-\d{2}-\d{2}|private)/[0-9a-f-]{36}(?:_\d+)?\.html$")
OLD = re.compile(r"^/old/([0-9a-f-]{36})\.html$")


@dataclass
class Response:
    """What the handler sends: status, headers and the exact body bytes."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    article: Article | None = None


@dataclass(frozen=True)
class LogEntry:
    """One request as served; ``body_sha1`` is the SHA-1 of the body bytes actually sent."""

    method: str
    path: str
    headers: dict[str, str]
    status: int
    bytes_sent: int
    body_sha1: str
    time: float
    response_headers: dict[str, str]

    @property
    def from_browser(self) -> bool:
        """Asked by Chromium (it sends client hints), not by Scrapy."""
        return any(k.lower() == "sec-ch-ua" for k in self.headers)


def _html(text: str, encoding: str = "utf-8") -> Response:
    # GB18030 pages rely on their meta tag, as the real site does
    ctype = "text/html; charset=utf-8" if encoding == "utf-8" else "text/html"
    return Response(200, text.encode(encoding), {"Content-Type": ctype})


def _not_found() -> Response:
    body = pages._doc("404 页面不存在", '<div class="error">抱歉，您访问的页面不存在。</div>')
    return Response(404, body.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"})


class Router:
    """Turns a request into a Response; holds the first-time fault state."""

    def __init__(self, site: Site, lock: threading.RLock) -> None:
        self.site = site
        self.lock = lock
        self.tripped: set[tuple[str, str]] = set()

    def respond(self, method: str, target: str, headers: dict[str, str]) -> Response:
        path = urlsplit(target).path
        with self.lock:
            fault = self._fault(path)
            if fault is not None and fault.status != 200:
                return fault
            resp = self._resolve(target)
        if fault is not None:
            resp.delay = fault.delay
        return self._conditional(resp, headers)

    def _fault(self, path: str) -> Response | None:
        """Transient faults fire once per path, then the page is served normally."""
        found = self.site.find_page(path)
        if not self.site.cfg.faults or found is None:
            return None
        art = found[0]
        for role in ("error-500", "429", "slow"):
            if role in art.roles and (role, path) not in self.tripped:
                self.tripped.add((role, path))
                if role == "error-500":
                    return Response(500, b"<h1>500 Internal Server Error</h1>",
                                    {"Content-Type": "text/html"})
                if role == "429":
                    return Response(429, b"Too Many Requests",
                                    {"Content-Type": "text/plain", "Retry-After": "1"})
                return Response(200, delay=self.site.cfg.slow_seconds)
        return None

    def _resolve(self, target: str) -> Response:
        parts = urlsplit(target)
        path, site = parts.path, self.site
        gate = gateway.split(path)
        if gate is not None:
            if not site.cfg.gateway:
                return _not_found()
            inner = self._resolve(gate[1] + (f"?{parts.query}" if parts.query else ""))
            return self._to_gateway(inner)
        if path in ("/", "/index.html"):
            return _html(pages.home(site))
        if path == "/robots.txt":
            text = pages.ROBOTS.format(netloc=site.netloc)
            return Response(200, text.encode(), {"Content-Type": "text/plain"})
        if path.endswith(".css"):
            return Response(200, pages.CSS.encode(), {"Content-Type": "text/css"})
        if path == "/api/list":
            return self._api(parse_qs(parts.query))
        img = image_for(path)
        if img is not None:
            return Response(200, img[0], {"Content-Type": img[1], "Cache-Control": "max-age=86400"})
        if m := OLD.match(path):
            art = site.by_uid(m.group(1))
            if art is None:
                return _not_found()
            return Response(301, b"", {"Location": site.base + art.path, "Content-Type": "text/html"})
        if ARTICLE.match(path) and (found := site.find_page(path)):
            art, n = found
            text, enc = pages.article(site, art, n)
            resp = _html(text, enc)
            resp.article = art
            return resp
        if m := LISTING.match(path):
            sec = next((s for s in SECTIONS if s.slug == m.group(1)), None)
            html = pages.listing(site, sec, int(m.group(2) or 1)) if sec else None
            return _html(html) if html else _not_found()
        return _not_found()

    def _api(self, query: dict[str, list[str]]) -> Response:
        key = query.get("section", [""])[0]
        sec = next((s for s in SECTIONS if s.api and s.api == key), None)
        try:
            page = int(query.get("page", ["1"])[0])
        except ValueError:
            page = 0
        data = pages.api_list(self.site, sec, page) if sec and page >= 1 else None
        if data is None:
            return Response(404, b'{"error": "not found"}', {"Content-Type": "application/json"})
        body = pages.api_json(data).encode("utf-8")
        return Response(200, body, {"Content-Type": "application/json; charset=utf-8"})

    def _to_gateway(self, inner: Response) -> Response:
        site = self.site
        loc = inner.headers.get("Location")
        if loc:
            inner.headers["Location"] = gateway.convert(loc, site.base, site.netloc)
        ctype = inner.headers.get("Content-Type", "")
        if inner.status == 200 and (ctype.startswith("text/html") or "json" in ctype):
            enc = "gb18030" if ctype == "text/html" else "utf-8"
            text = gateway.convert(inner.body.decode(enc), site.base, site.netloc)
            inner.body = text.encode("utf-8")
            inner.headers["Content-Type"] = ctype.split(";")[0] + "; charset=utf-8"
        return inner

    def _conditional(self, resp: Response, headers: dict[str, str]) -> Response:
        if resp.article is None or resp.status != 200 or not self.site.cfg.conditional:
            return resp
        modified = resp.article.modified.replace(microsecond=0)
        etag = f'"{hashlib.sha1(resp.body).hexdigest()[:20]}"'
        resp.headers.update({"ETag": etag, "Last-Modified": format_datetime(modified, usegmt=True)})
        inm = headers.get("if-none-match")
        ims = headers.get("if-modified-since")
        fresh = False
        if inm is not None:
            fresh = inm.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in inm.split(",")]
        elif ims:
            try:
                fresh = modified <= parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                fresh = False
        if fresh:
            return Response(304, b"", {"ETag": etag, "Last-Modified": resp.headers["Last-Modified"]},
                            delay=resp.delay)
        return resp


class Handler(BaseHTTPRequestHandler):
    """Serves one request from the Router and appends a LogEntry."""

    protocol_version = "HTTP/1.1"
    server: ReplicaHTTPServer

    def version_string(self) -> str:
        return "nginx"

    def do_GET(self) -> None:  # noqa: N802
        self._serve(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        resp = self.server.router.respond(self.command, self.path, headers)
        if resp.delay:
            time.sleep(resp.delay)
        body = resp.body if send_body and resp.status not in (204, 304) else b""
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if resp.status != 304:
            self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        # logged before the body leaves, so a client never sees a response missing from the log
        self.server.record(LogEntry(self.command, self.path, headers, resp.status, len(body),
                                    hashlib.sha1(body).hexdigest(), time.time(), dict(resp.headers)))
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # the request log is self.server.log


class ReplicaHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that carries the router and the shared request log."""

    daemon_threads = True
    # socketserver's default listen backlog is 5: a crawler opening 16+ connections at
    # once overflowed it (TcpExtListenOverflows) and each dropped connection was retried
    # by the kernel a second later, stalls that were the replica's, not the crawler's.
    request_queue_size = 1024

    def __init__(self, addr: tuple[str, int], router: Router) -> None:
        super().__init__(addr, Handler)
        self.router = router
        self.log: list[LogEntry] = []
        self._log_lock = threading.Lock()

    def record(self, entry: LogEntry) -> None:
        with self._log_lock:
            self.log.append(entry)
