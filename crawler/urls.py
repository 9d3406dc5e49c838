"""Canonical URLs: one story, one URL.

Maps traditional-script gateway twins (``/gate/big5/<host>/<path>``) back to the
simplified site, strips tracking parameters, lower-cases the host and drops
fragments. The scheduler's request fingerprint goes through the same function, so
a twin or a tracked link is never fetched twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

from scrapy import Request
from scrapy.utils.request import RequestFingerprinter
from w3lib.url import canonicalize_url

DEFAULT_TRACKING_PARAMS: tuple[str, ...] = (
    "utm_*", "spm", "from", "isappinstalled", "share*", "wx*", "fbclid", "gclid",
    "source", "src", "ref", "timestamp", "_t",
)

_GATEWAY = re.compile(r"^/gate/big5/(?P<host>[^/?#]+)(?P<path>/.*)?$", re.IGNORECASE)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _is_tracking(name: str, patterns: Iterable[str]) -> bool:
    lowered = name.lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern.endswith("*"):
            if lowered.startswith(pattern[:-1]):
                return True
        elif lowered == pattern:
            return True
    return False


def gateway_target(url: str) -> str | None:
    """The simplified-site URL behind a gateway twin, or None if *url* is not one."""
    parts = urlsplit(url.strip())
    match = _GATEWAY.match(parts.path)
    if not match:
        return None
    return str(urlunsplit((parts.scheme, match["host"], match["path"] or "/", parts.query, "")))


def is_gateway(url: str) -> bool:
    return gateway_target(url) is not None


def _strip_gateways(url: str) -> str:
    # Gateway twins can nest when a gateway page links to another gateway URL; each
    # step shortens the path, so the loop ends.
    while (target := gateway_target(url)) is not None:
        url = target
    return url


def _clean_query(query: str, tracking: tuple[str, ...]) -> str:
    # Work on the raw pairs: decoding and re-encoding them (parse_qsl/urlencode)
    # would mangle GBK-encoded values and blank parameters.
    kept = [pair for pair in query.split("&")
            if pair and not _is_tracking(unquote(pair.split("=", 1)[0]).strip(), tracking)]
    return "&".join(kept)


def _normalise(url: str, tracking: tuple[str, ...]) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: leave the netloc alone
        netloc = parts.netloc.lower()
    else:
        netloc = host
        if port is not None and str(port) != _DEFAULT_PORTS.get(scheme):
            netloc = f"{host}:{port}"
    rebuilt = urlunsplit((scheme, netloc, parts.path or "/",
                          _clean_query(parts.query, tracking), ""))
    try:
        return canonicalize_url(rebuilt, keep_fragments=False)
    except ValueError:  # e.g. a port out of range: keep what we have, never crash a parse
        return rebuilt


def canonicalize(url: str, tracking: Iterable[str] = DEFAULT_TRACKING_PARAMS) -> str:
    """Return the canonical form of *url*; idempotent.

    Gateway twins become the simplified-site URL, tracking parameters (names or
    ``prefix*`` patterns, case-insensitive) and fragments go, the host is
    lower-cased, default ports dropped, the query sorted (w3lib).
    """
    patterns = tuple(tracking)
    current = url.strip()
    # w3lib may decode escapes (``/%67ate/big5/...``) and so reveal a gateway path
    # or a tracking name: normalise to a fixed point so the result is idempotent.
    for _ in range(8):
        result = _normalise(_strip_gateways(current), patterns)
        if result == current:
            break
        current = result
    return current


def gateway_twin(url: str, gateway_base: str) -> str:
    """The gateway (traditional) twin of a canonical URL, e.g. for archiving both scripts.

    *gateway_base* is the gateway's origin (``https://big5.cri.cn``); a URL that is
    already a twin is first mapped back to its target, so twins never nest.
    """
    parts = urlsplit(_strip_gateways(url.strip()))
    base = gateway_base.rstrip("/")
    tail = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"{base}/gate/big5/{parts.netloc}{tail}"


class CanonicalRequestFingerprinter(RequestFingerprinter):
    """Fingerprints requests by canonical URL so twins and tracked links collapse.

    Settings: ``PORTAL_TRACKING_PARAMS`` (list; unset = DEFAULT_TRACKING_PARAMS) and
    ``PORTAL_ARCHIVE_BOTH_SCRIPTS`` (bool; when true a gateway twin keeps a
    fingerprint of its own, still free of tracking parameters and host case). A
    request whose meta has ``portal_raw_fingerprint`` is fingerprinted as is.
    """

    def __init__(self, crawler=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(crawler)
        settings = crawler.settings if crawler else None
        configured = settings.get("PORTAL_TRACKING_PARAMS") if settings else None
        self._tracking: tuple[str, ...] = (
            DEFAULT_TRACKING_PARAMS if configured is None
            else tuple(settings.getlist("PORTAL_TRACKING_PARAMS")))  # type: ignore[union-attr]
        self._both = settings.getbool("PORTAL_ARCHIVE_BOTH_SCRIPTS") if settings else False

    def canonical_url(self, url: str) -> str:
        """The URL the fingerprint is computed from."""
        canonical = canonicalize(url, self._tracking)
        if self._both and is_gateway(url):
            gateway = urlsplit(url.strip())
            base = urlunsplit((gateway.scheme.lower(), gateway.netloc.lower(), "", "", ""))
            return gateway_twin(canonical, base)
        return canonical

    def fingerprint(self, request: Request) -> bytes:
        if request.meta.get("portal_raw_fingerprint"):
            return super().fingerprint(request)
        canonical = self.canonical_url(request.url)
        if canonical == request.url:
            return super().fingerprint(request)
        return super().fingerprint(request.replace(url=canonical))
