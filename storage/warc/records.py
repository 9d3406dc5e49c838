"""What goes into our WARC records: digests, dates, and WARC/HTTP headers of an exchange.

Pure functions over :class:`~storage.warc.exchange.HttpExchange`; the writer
(storage/warc/writer.py) turns them into records with warcio.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date

from .exchange import HttpExchange

PROFILE_IDENTICAL_PAYLOAD = "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest"
PROFILE_SERVER_NOT_MODIFIED = "http://netpreserve.org/warc/1.0/revisit/server-not-modified"
#: Records answering a request: the writer puts each right before its ``request`` record.
RESPONSE_TYPES = ("response", "revisit")

# The body handed to us is already de-chunked: keeping the header would make readers
# try to de-chunk it again. The original value stays visible under this name.
_RENAMED_HEADERS = {"transfer-encoding": "X-Archive-Orig-Transfer-Encoding"}


def sha1_digest(data: bytes) -> str:
    """``sha1:BASE32`` digest, the form used in WARC-*-Digest headers and CDXJ."""
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def warc_date(dt: datetime) -> str:
    """WARC/1.0 date (``2026-11-25T20:13:00Z``) of an aware or naive-UTC datetime."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return str(datetime_to_iso_date(dt))


def request_target(url: str) -> str:
    """The request-target of an HTTP/1.1 request line (path and query)."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return target


def warc_headers(record_type: str, url: str, date: str, record_id: str,
                 extra: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """The WARC named fields of a record (WARC-Target-URI omitted when ``url`` is '')."""
    headers = {"WARC-Type": record_type, "WARC-Record-ID": record_id, "WARC-Date": date}
    if url:
        headers["WARC-Target-URI"] = url
    headers.update(extra)
    return headers


def request_http_headers(ex: HttpExchange) -> StatusAndHeaders:
    return StatusAndHeaders(f"{ex.method} {request_target(ex.url)} {ex.http_version}",
                            list(ex.request_headers), protocol="")


def response_http_headers(ex: HttpExchange) -> StatusAndHeaders:
    """The real status line and headers (Transfer-Encoding renamed, see above)."""
    headers = [(_RENAMED_HEADERS.get(k.lower(), k), v) for k, v in ex.response_headers]
    statusline = f"{ex.status} {ex.reason}".rstrip()
    return StatusAndHeaders(statusline, headers, protocol=ex.http_version)


def common_extra(ex: HttpExchange, concurrent_to: str) -> list[tuple[str, str]]:
    """Fields every response/revisit record of an exchange carries."""
    extra = [("WARC-Concurrent-To", concurrent_to)]
    if ex.ip_address:
        extra.append(("WARC-IP-Address", ex.ip_address))
    if ex.truncated:
        extra.append(("WARC-Truncated", ex.truncated))
    extra.extend(ex.extra.items())
    return extra
