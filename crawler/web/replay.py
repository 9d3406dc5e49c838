"""Replay inside the viewer: pywb mounted under the app, or our own WARC reader.

``/replay?url=U[&ts=T]`` is the viewer: the capture list of U (every capture the replay
index holds) and a frame showing the chosen capture (the latest good one by default).
With pywb (crawler/web/pywb.py) the frame is ``/pywb-KEY/T/U``, forwarded to the
managed ``wayback`` by :func:`through_pywb`, with ``sandbox="allow-scripts"`` (an
opaque origin: the archived page's scripts run, apart from the app). Without pywb (not
installed, or ``--replay builtin``) the page says so and the frame, with
``sandbox="allow-same-origin"`` (no scripts, no forms, no top navigation), shows
``/archived?url=U&ts=T``: the built-in viewer. ``/archived`` serves the
payload of one capture (a revisit followed to its original) under ``ARCHIVED_CSP``
(itself a CSP sandbox without scripts, nothing loaded from outside the app); HTML has
its image, stylesheet and link addresses pointed back at ``/archived``, so the page is
shown as archived and never hot-links the portal. ``/archived?file=F&offset=O`` serves
the record a WARC pointer of the store names (an article's or a revision's), F a file
the index lists.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urljoin

import lxml.html
from starlette.requests import Request
from starlette.responses import Response

from crawler.extract.charset import decode_html
from crawler.web.archive import ArchiveError, Capture, Payload
from crawler.web.pywb import REPLAY_CSP
from crawler.web.security import ARCHIVED_CSP
from storage.warc.errors import WarcError

if TYPE_CHECKING:
    from crawler.web.app import Room

logger = logging.getLogger(__name__)

REWRITE = (("img", "src"), ("link", "href"), ("a", "href"))


def viewer(room: Room, request: Request) -> Response:
    url = request.query_params.get("url", "")
    ts = request.query_params.get("ts") or None
    if not url:
        return room.error(request, 400, "which page? (?url=…)")
    captures = room.archive.captures(url)
    if not captures:
        return room.error(request, 404, f"{url} is not in the archive's replay index")
    chosen = room.archive.at(url, ts)
    if chosen is None:
        return room.error(request, 404, f"no capture of {url} at {ts}")
    title = None
    doc = room.reader.article(url)
    if doc is not None:
        title = doc.get("title")
    pywb = room.pywb if room.pywb is not None and room.pywb.available else None
    frame = (pywb.frame_url(url, chosen.timestamp) if pywb is not None
             else "/archived?" + urlencode({"url": url, "ts": chosen.timestamp}))
    return room.render(request, "replay.html", url=url, captures=list(reversed(captures)),
                       chosen=chosen, latest=room.archive.latest_good(url), title=title,
                       frame=frame, engine="pywb" if pywb is not None else "builtin",
                       why_builtin=room.replay_note)


def through_pywb(room: Room, request: Request) -> Response:
    """A request under pywb's prefixes, forwarded to the managed ``wayback``."""
    pywb = room.pywb
    if pywb is None or not pywb.available or not pywb.owns(request.url.path):
        return _plain(404, "not found")
    target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    if request.url.query:
        target += "?" + request.url.query
    try:
        answer = pywb.forward(request.method, target, request.headers.get("host", ""),
                              request.url.scheme, dict(request.headers))
    except WarcError as exc:
        logger.warning("replay of %s failed: %s", target, exc)
        return _plain(502, f"pywb: {exc}")
    headers = dict(answer.headers)
    headers["Content-Security-Policy"] = REPLAY_CSP
    return Response(answer.body, status_code=answer.status, headers=headers)


def archived(room: Room, request: Request) -> Response:
    params = request.query_params
    try:
        if "file" in params:
            payload = _by_pointer(room, params.get("file") or "", params.get("offset") or "")
        else:
            capture = room.archive.at(params.get("url") or "", params.get("ts") or None)
            if capture is None:
                return _plain(404, "not in the archive")
            payload = room.archive.payload(capture)
    except ArchiveError as exc:
        return _plain(404, str(exc))
    body = payload.body
    ctype = payload.content_type or "application/octet-stream"
    if ctype.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        body, ctype = _rewrite(payload), "text/html; charset=utf-8"
    return Response(body, status_code=200, media_type=None,
                    headers={"Content-Type": ctype, "Content-Security-Policy": ARCHIVED_CSP,
                             "Cache-Control": "private, max-age=300",
                             "X-Archived-Status": payload.status,
                             "X-Archived-Date": payload.capture.timestamp})


def _plain(status: int, text: str) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain")


def _by_pointer(room: Room, name: str, offset_text: str) -> Payload:
    try:
        offset = int(offset_text)
    except ValueError as exc:
        raise ArchiveError(f"bad offset {offset_text!r}") from exc
    record, _body = room.archive.read(name, offset)
    url = record.rec_headers.get_header("WARC-Target-URI") or ""
    from warcio.timeutils import iso_date_to_timestamp

    ts = iso_date_to_timestamp(record.rec_headers.get_header("WARC-Date") or "")
    capture = Capture(url=url, timestamp=ts, status="", mime=(
        "warc/revisit" if record.rec_type == "revisit" else ""),
        digest=record.rec_headers.get_header("WARC-Payload-Digest") or "",
        filename=name, offset=offset, length=0)
    return room.archive.payload(capture)


def _rewrite(payload: Payload) -> bytes:
    """The archived HTML, decoded by its declared charset, addresses pointed at /archived."""
    charset = None
    ctype = payload.content_type
    if "charset=" in ctype:
        charset = ctype.split("charset=", 1)[1].split(";")[0].strip()
    text = decode_html(payload.body, charset).text
    base = payload.capture.url
    try:
        tree = lxml.html.document_fromstring(text)
    except (ValueError, lxml.etree.ParserError) as exc:
        logger.warning("cannot parse the archived HTML of %s: %s", base, exc)
        return b""
    for tag, attr in REWRITE:
        for el in tree.iter(tag):
            value = el.get(attr)
            if not value or value.startswith(("#", "data:", "javascript:", "mailto:")):
                if value and value.startswith("javascript:"):
                    el.set(attr, "#")
                continue
            el.set(attr, "/archived?" + urlencode({"url": urljoin(base, value)}))
    for el in list(tree.iter("base")):
        el.drop_tree()
    for el in list(tree.iter("meta")):  # the page is re-encoded as UTF-8
        if el.get("charset") or (el.get("http-equiv") or "").lower() == "content-type":
            el.drop_tree()
    out: bytes = lxml.html.tostring(tree, encoding="utf-8", doctype="<!DOCTYPE html>")
    return out
