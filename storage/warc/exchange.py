"""Plain data passed from the crawler to the WARC writer: one HTTP exchange, one location.

Nothing here knows about Scrapy: the downloader middleware (crawler/archive) turns a
request/response pair into an :class:`HttpExchange`, the writer turns it into records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class HttpExchange:
    """One HTTP request and the response received for it, bytes as on the wire.

    ``body`` is the entity body as received: still content-encoded (gzip, br …) but
    already de-chunked by the HTTP client, so the writer drops ``Transfer-Encoding``.
    ``date`` is the UTC time the request was sent. ``truncated`` is a WARC-Truncated
    reason (``"length"``, ``"time"``, ``"disconnect"``) or None for a whole body.
    """

    url: str
    method: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    http_version: str
    status: int
    reason: str
    response_headers: list[tuple[str, str]]
    body: bytes
    date: datetime
    ip_address: str | None = None
    truncated: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordLocation:
    """Where a record lives: basename of the *final* ``.warc.gz`` name, offset, length.

    ``record_id`` and ``date`` (WARC-Date) let callers refer to the record later
    (revisits, conversions); ``payload_digest`` is ``sha1:BASE32`` or None.
    """

    file: str
    offset: int
    length: int
    record_id: str = ""
    date: str = ""
    payload_digest: str | None = None

    def as_meta(self) -> dict[str, str | int]:
        """The ``{"file", "offset"}`` form stored in request.meta and in articles."""
        return {"file": self.file, "offset": self.offset}
