"""WARC storage: writing, revisit lookups, crash recovery, CDXJ index, verify, WACZ, replay.

No Scrapy here: the crawler adapts these plain objects (see crawler/archive).
"""

from __future__ import annotations

from .digests import ArchivedCapture, DigestIndex
from .exchange import HttpExchange, RecordLocation
from .recovery import RecoveryReport, recover_open_files
from .writer import (
    PROFILE_IDENTICAL_PAYLOAD,
    PROFILE_SERVER_NOT_MODIFIED,
    WarcWriter,
    sha1_digest,
    warc_date,
)

__all__ = [
    "PROFILE_IDENTICAL_PAYLOAD",
    "PROFILE_SERVER_NOT_MODIFIED",
    "ArchivedCapture",
    "DigestIndex",
    "HttpExchange",
    "RecordLocation",
    "RecoveryReport",
    "WarcWriter",
    "recover_open_files",
    "sha1_digest",
    "warc_date",
]
