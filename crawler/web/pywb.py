"""pywb mounted under the reading room: a managed ``wayback`` child, proxied.

``gzarchive serve`` replays archived pages with pywb (installed in its own venv, found
as ``gzarchive warc replay`` finds it: storage/warc/replay.py) when it is there:

- one ``wayback`` on a free 127.0.0.1 port, started with the app (or at the first
  replay request), restarted if it died, stopped with the app; its ``config.yaml`` lives
  in a temporary directory (the archive is never written), one collection over
  ``DATA/warc``, also its index directory (``index.cdxj`` and its segments, merged by
  pywb at lookup: storage/warc/index.py), the index pywb already replays;
- pywb is only reached through the app: ``/pywb-KEY/…`` (the collection) and
  ``/pywb-KEY-static/…`` (pywb's scripts) are forwarded with the browser's ``Host``, so
  pywb writes every address it rewrites under the app's own. Its port is loopback only,
  whatever ``--bind`` says;
- every forwarded response gets ``REPLAY_CSP``, a CSP sandbox *with* scripts and
  *without* ``allow-same-origin``: the archived page and pywb's client-side rewriting
  (wombat) run in an opaque origin, so no archived script can read the app's pages,
  cookies or storage, navigate the viewer, submit forms or reach anything outside the
  app. Archived ``Set-Cookie`` headers are dropped;
- KEY is a keyed digest of ``--token`` (random without one). An opaque-origin frame
  sends no SameSite cookie with its subresource requests, so the Guard lets these two
  prefixes through without the token cookie: the key is the capability, it is only
  shown to a holder of the token, and it opens nothing but the archive's replay.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from storage.warc.errors import ToolNotFound, WarcError
from storage.warc.index import INDEX_NAME, has_index
from storage.warc.replay import (
    find_pywb_tool,
    free_port,
    stop_replay,
    wait_for_port,
    wayback_argv,
)

logger = logging.getLogger(__name__)

#: Forwarded pywb responses: scripts run, but sandboxed in an opaque origin; nothing is
#: loaded from, sent to or framed by anything outside the app.
REPLAY_CSP = ("default-src 'self' data: blob:; "
              "script-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; "
              "style-src 'self' 'unsafe-inline' data: blob:; img-src 'self' data: blob:; "
              "font-src 'self' data:; media-src 'self' data: blob:; connect-src 'self'; "
              "frame-src 'self' data: blob:; worker-src 'none'; object-src 'none'; "
              "form-action 'none'; base-uri 'self'; frame-ancestors 'self'; "
              "sandbox allow-scripts")
#: Request headers passed on to pywb (never the token, the cookie or credentials).
FORWARD = ("accept", "accept-language", "range", "if-none-match", "if-modified-since",
           "user-agent")
#: Response headers of pywb kept (its CSP, framing and cookies are ours to decide).
KEEP = ("content-type", "location", "content-range", "accept-ranges", "cache-control",
        "etag", "last-modified", "memento-datetime", "content-disposition")
TIMEOUT = 30.0
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Forwarded:
    """A response of pywb, as the app passes it on."""

    status: int
    headers: dict[str, str]
    body: bytes


class PywbReplay:
    """The ``wayback`` child of the reading room (see the module doc)."""

    def __init__(self, warc_dir: Path, token: str | None = None) -> None:
        self.warc_dir = Path(warc_dir).resolve()
        key = (hmac.new(token.encode(), b"gzarchive-pywb", hashlib.sha256).hexdigest()[:32]
               if token else secrets.token_hex(16))
        self.collection = f"pywb-{key}"
        self.static = f"{self.collection}-static"
        self.wayback: Path | None = None
        self.unavailable: str | None = None
        try:
            self.wayback = find_pywb_tool("wayback")
        except ToolNotFound as exc:
            self.unavailable = str(exc)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._root: Path | None = None
        self._port = 0
        self._ready = False
        self._closed = False

    @property
    def available(self) -> bool:
        return self.wayback is not None and not self._closed

    def owns(self, path: str) -> bool:
        """Whether ``path`` is under one of pywb's two prefixes."""
        first = path.split("/", 2)[1] if path.startswith("/") and path.count("/") >= 2 else ""
        return first in (self.collection, self.static)

    def frame_url(self, url: str, timestamp: str) -> str:
        """The app-relative pywb address of ``url`` at ``timestamp``."""
        return f"/{self.collection}/{timestamp}/{url}"

    # -- the child process ----------------------------------------------------------
    def start(self) -> None:
        """Start ``wayback`` if it is not running (it is not waited for here)."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self.wayback is None or self._closed:
            raise WarcError(self.unavailable or "the reading room is closing")
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:
            logger.warning("pywb (wayback) exited with code %s; starting it again "
                           "(log: %s)", self._proc.returncode, self._log_path())
        index = self.warc_dir / INDEX_NAME
        if not has_index(index):
            raise WarcError(f"no replay index {index} (gzarchive warc index)")
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="gzarchive-pywb-"))
        (self._root / "config.yaml").write_text(
            "# written by gzarchive serve (crawler/web/pywb.py)\n"
            "collections:\n"
            f"  {self.collection}:\n"
            # JSON strings are YAML; a directory: its *.cdxj merged (main and segments)
            f"    index_paths: {json.dumps(str(self.warc_dir) + os.sep)}\n"
            f"    archive_paths: {json.dumps(str(self.warc_dir) + os.sep)}\n"
            f"static_prefix: {self.static}\n"
            "framed_replay: false\nenable_memento: false\n", encoding="utf-8")
        self._port = free_port()
        with self._log_path().open("ab") as log:
            self._proc = subprocess.Popen(
                wayback_argv(self.wayback, self._port),
                cwd=self._root, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        self._ready = False
        logger.info("pywb (wayback, pid %s) replaying %s on 127.0.0.1:%s",
                    self._proc.pid, self.warc_dir, self._port)

    def _log_path(self) -> Path:
        assert self._root is not None
        return self._root / "wayback.log"

    def port(self) -> int:
        """The port of a running, listening ``wayback`` (started or restarted if need be)."""
        with self._lock:
            self._start_locked()
            if not self._ready:
                try:
                    wait_for_port(self._port, timeout=START_TIMEOUT, proc=self._proc)
                except WarcError as exc:
                    tail = self._log_path().read_text(errors="replace").strip()[-300:]
                    raise WarcError(f"pywb did not start: {exc} ({tail})") from exc
                self._ready = True
            return self._port

    def close(self) -> None:
        """Stop ``wayback`` and remove its directory (idempotent)."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
            if proc is not None:
                stop_replay(proc)
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                self._root = None

    # -- forwarding ------------------------------------------------------------------
    def forward(self, method: str, target: str, host: str, scheme: str,
                headers: dict[str, str]) -> Forwarded:
        """Ask pywb for ``target`` (path and query, one of pywb's prefixes) as ``host``."""
        for attempt in (1, 2):
            conn = http.client.HTTPConnection("127.0.0.1", self.port(), timeout=TIMEOUT)
            try:
                sent = {k: v for k, v in headers.items() if k in FORWARD}
                sent.update({"Host": host, "X-Forwarded-Proto": scheme})
                conn.request(method, target, headers=sent)
                response = conn.getresponse()
                body = response.read()
                kept = {k.lower(): v for k, v in response.getheaders() if k.lower() in KEEP}
                return Forwarded(response.status, kept, body)
            except (OSError, http.client.HTTPException) as exc:
                if attempt == 2:
                    raise WarcError(f"pywb did not answer {target}: {exc}") from exc
                logger.warning("pywb did not answer %s (%s): checking it and retrying",
                               target, exc)
                with self._lock:
                    self._ready = False
            finally:
                conn.close()
        raise AssertionError("unreachable")

