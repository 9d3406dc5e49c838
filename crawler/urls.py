"""Canonical URLs: one story, one URL.

Maps traditional-script gateway twins (``/gate/big5/<host>/<path>``) back to the
simplified site, strips tracking parameters, lower-cases the host and drops
fragments. The scheduler's request fingerprint goes through the same function, so
a twin or a tracked link is never fetched twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scrapy import Request
from scrapy.utils.request import RequestFingerprinter
from w3lib.url import canonicalize_url

DEFAULT_TRACKING_PARAMS: tuple[str, ...] = (
    "utm_*", "spm", "from", "isappinstalled", "share*", "wx*", "fbclid", "gclid",
    "source", "src", "ref", "timestamp", "_t",
)

_GATEWAY = re.compile(r"^/gate/big5/(?P<host>[^/]+)(?P<path>/.*)?$", re.IGNORECASE)


def _is_tracking(name: str, patterns: Iterable[str]) -> bool:
    lowered = name.lower()
    for pattern in patterns:
        if pattern.endswith("*"):
            if lowered.startswith(pattern[:-1]):
                return True
        elif lowered == pattern:
            return True
    return False


def gateway_target(url: str) -> str | None:
    """The simplified-site URL behind a gateway twin, or None if *url* is not one."""
    parts = urlsplit(url)
    match = _GATEWAY.match(parts.path)
    if not match:
        return None
    return urlunsplit((parts.scheme, match["host"], match["path"] or "/", parts.query, ""))


def is_gateway(url: str) -> bool:
    return gateway_target(url) is not None


def canonicalize(url: str, tracking: Iterable[str] = DEFAULT_TRACKING_PARAMS) -> str:
    """Return the canonical form of *url*; idempotent."""
    tracking = tuple(tracking)
    # Gateway twins can nest when a gateway page links to another gateway URL.
    for _ in range(3):
        target = gateway_target(url)
        if target is None:
            break
        url = target
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not _is_tracking(k, tracking)]
    netloc = parts.netloc.lower()
    scheme = parts.scheme.lower()
    if (scheme, netloc.rsplit(":", 1)[-1]) in (("http", "80"), ("https", "443")):
        netloc = netloc.rsplit(":", 1)[0]
    rebuilt = urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))
    return canonicalize_url(rebuilt, keep_fragments=False)


def gateway_twin(url: str, gateway_base: str) -> str:
    """The gateway (traditional) twin of a canonical URL, e.g. for archiving both scripts."""
    parts = urlsplit(url)
    base = gateway_base.rstrip("/")
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{base}/gate/big5/{parts.netloc}{tail}"


class CanonicalRequestFingerprinter(RequestFingerprinter):
    """Fingerprints requests by canonical URL so twins and tracked links collapse.

    Settings: ``PORTAL_TRACKING_PARAMS`` (list) and ``PORTAL_ARCHIVE_BOTH_SCRIPTS``
    (bool; when true a gateway twin keeps its own fingerprint). A request whose
    meta has ``portal_raw_fingerprint`` is fingerprinted as is.
    """

    def __init__(self, crawler=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(crawler)
        settings = crawler.settings if crawler else None
        self._tracking = tuple(settings.getlist("PORTAL_TRACKING_PARAMS")) if settings else ()
        self._tracking = self._tracking or DEFAULT_TRACKING_PARAMS
        self._both = settings.getbool("PORTAL_ARCHIVE_BOTH_SCRIPTS") if settings else False

    def fingerprint(self, request: Request) -> bytes:
        if request.meta.get("portal_raw_fingerprint") or (self._both and is_gateway(request.url)):
            return super().fingerprint(request)
        canonical = canonicalize(request.url, self._tracking)
        if canonical == request.url:
            return super().fingerprint(request)
        return super().fingerprint(request.replace(url=canonical))
