"""What the WARC middleware records of a Scrapy exchange: request/response -> HttpExchange.

The request is stamped when it leaves the downloader middlewares (:func:`stamp_request`:
its date and its final headers, Host and Content-Length included, as sent). The response
is taken as received, before decompression; a body cut short by the server or by
DOWNLOAD_MAXSIZE is marked truncated (``disconnect`` / ``length``). :func:`skip_reason`
says which exchanges are not archived at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from storage.warc.exchange import HttpExchange

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response

META_DATE = "_warc_date"
META_HEADERS = "_warc_request_headers"


def stamp_request(request: Request) -> None:
    """Record, in ``request.meta``, when the request went out and its final headers."""
    request.meta[META_DATE] = datetime.now(UTC)
    request.meta[META_HEADERS] = request_headers(request)


def request_headers(request: Request) -> list[tuple[str, str]]:
    """The request's headers as sent: Host and Content-Length added when Scrapy has not."""
    headers = _pairs(request.headers)
    names = {k.lower() for k, _ in headers}
    if "host" not in names:
        netloc = urlsplit(request.url).netloc.rpartition("@")[2]
        headers.insert(0, ("Host", netloc))
    if request.body and "content-length" not in names:
        headers.append(("Content-Length", str(len(request.body))))
    return headers


def skip_reason(request: Request, response: Response, archive_images: bool) -> str | None:
    """Why this exchange is not archived (a stats key), or None to archive it."""
    if request.meta.get("warc_skip"):
        return "meta"
    if "cached" in response.flags:
        return "cached"
    if not archive_images:
        ctype = response.headers.get(b"Content-Type", b"") or b""
        if request.meta.get("portal_kind") == "image" or ctype.startswith(b"image/"):
            return "image"
    return None


def exchange_of(request: Request, response: Response) -> HttpExchange:
    """The exchange as the writer stores it."""
    truncated = None
    if "dataloss" in response.flags:
        truncated = "disconnect"
    elif "download_stopped" in response.flags:
        truncated = "length"
    ip = getattr(response, "ip_address", None)
    return HttpExchange(
        url=response.url,
        method=request.method,
        request_headers=request.meta.get(META_HEADERS) or request_headers(request),
        request_body=request.body or b"",
        http_version=_http_version(getattr(response, "protocol", None)),
        status=response.status,
        reason=_reason(response.status),
        response_headers=_pairs(response.headers),
        body=response.body,
        date=request.meta.get(META_DATE) or datetime.now(UTC),
        ip_address=str(ip) if ip else None,
        truncated=truncated,
    )


def _pairs(headers: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, values in headers.items():
        name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        for value in values:
            out.append((name, value.decode("latin-1") if isinstance(value, bytes) else str(value)))
    return out


def _http_version(protocol: str | None) -> str:
    if not protocol:
        return "HTTP/1.1"
    if protocol.lower() in ("h2", "http/2", "http/2.0"):
        return "HTTP/2"
    return protocol


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
