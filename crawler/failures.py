"""Name a failed request's cause with a short, stable kind for reports and stats."""

from __future__ import annotations

from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import error as neterr
from twisted.python.failure import Failure


def classify_failure(failure: Failure) -> str:
    """``http-404``, ``timeout``, ``connection``, ``dns``, ``robots-disallowed``, …"""
    value = failure.value
    if isinstance(value, HttpError):
        return f"http-{value.response.status}"
    if isinstance(value, neterr.DNSLookupError):
        return "dns"
    if isinstance(value, (neterr.TimeoutError, neterr.TCPTimedOutError)):
        return "timeout"
    if isinstance(value, (neterr.ConnectionRefusedError, neterr.ConnectError,
                          neterr.ConnectionLost, neterr.ConnectionDone)):
        return "connection"
    if isinstance(value, IgnoreRequest):
        message = str(failure.value).lower()
        if "robots" in message:
            return "robots-disallowed"
        if "offsite" in message:
            return "offsite-skipped"
        if "maxsize" in message or "max size" in message or "cancelled" in message:
            return "too-large"
        return "ignored"
    if isinstance(value, DownloadCancelledError) and "max size" in str(value).lower():
        return "too-large"
    name = type(failure.value).__name__
    if "Timeout" in name:
        return "timeout"
    if "ResponseNeverReceived" in name or "Connection" in name:
        return "connection"
    if "Playwright" in name or "BrowserType" in name:
        return "browser"
    return f"error-{name}"
