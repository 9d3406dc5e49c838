"""What every response of the reading room goes through: methods, token, headers.

- Only GET and HEAD: the app reads; anything else is 405 before any route runs.
- With a token (``gzarchive serve --token T``) every request must carry it: the header
  ``Authorization: Bearer T`` (or ``X-Gzarchive-Token: T``), or ``?token=T`` once, which
  sets an HttpOnly cookie (a keyed digest of the token, not the token) and redirects to
  the same URL without it. Paths ``open_path`` accepts (pywb's, whose key is the
  capability: crawler/web/pywb.py) need no token.
- A Content-Security-Policy on every response (no script anywhere; archived pages get a
  policy of their own, see ``ARCHIVED_CSP``), ``nosniff``, no referrer.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import urlencode

from starlette.datastructures import URL, MutableHeaders, QueryParams
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "gzarchive_session"
ALLOWED_METHODS = ("GET", "HEAD")
#: The app's own pages: its stylesheet, its images and frames, no script at all.
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'self'")
#: Archived responses (untrusted HTML of the portal): sandboxed, no script, nothing from
#: outside the app (a hot-link to the portal is blocked, not fetched).
ARCHIVED_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                "font-src 'self'; base-uri 'none'; form-action 'none'; "
                "frame-ancestors 'self'; sandbox allow-same-origin")


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"gzarchive-session", hashlib.sha256).hexdigest()


class Guard:
    """ASGI middleware: methods, token and security headers (see the module doc)."""

    def __init__(self, app: ASGIApp, token: str | None = None,
                 open_path: Callable[[str], bool] | None = None) -> None:
        self.app = app
        self.token = token or None
        self.open_path = open_path
        self.session = session_value(token) if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", PAGE_CSP)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers.setdefault("X-Frame-Options", "SAMEORIGIN")
                headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            await send(message)

        response = self._refusal(scope)
        if response is not None:
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> Response | None:
        if scope["method"] not in ALLOWED_METHODS:
            return PlainTextResponse("405 method not allowed: the reading room only reads\n",
                                     status_code=405, headers={"Allow": "GET, HEAD"})
        if self.token is None or (self.open_path is not None and self.open_path(scope["path"])):
            return None
        url = URL(scope=scope)
        headers = dict((k.decode("latin-1").lower(), v.decode("latin-1"))
                       for k, v in scope["headers"])
        auth = headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else headers.get(
            "x-gzarchive-token", "")
        if given and hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        params = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        query_token = params.get("token")
        if query_token is not None and hmac.compare_digest(query_token.encode(),
                                                           self.token.encode()):
            rest = [(k, v) for k, v in params.multi_items() if k != "token"]
            target = url.path + ("?" + urlencode(rest) if rest else "")
            redirect = RedirectResponse(target, status_code=303)
            assert self.session is not None
            redirect.set_cookie(COOKIE, self.session, httponly=True, samesite="strict")
            return redirect
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and self.session and hmac.compare_digest(value.encode(),
                                                                       self.session.encode()):
                return None
        return PlainTextResponse("401 a token is needed: open this address with ?token=…\n",
                                 status_code=401)
