"""Decode response bodies: BOM, then HTTP header, then ``<meta>``; distrust the label.

CRI pages declare ``gb2312`` but use characters outside it, so every GB label is read
as GB18030. A label that does not decode the bytes is treated as a lie and the body
is sniffed (UTF-8, GB18030, Big5).
"""

from __future__ import annotations

import codecs
import logging
import re

from w3lib.encoding import http_content_type_encoding, read_bom

from crawler.extract.models import DecodedHtml

logger = logging.getLogger(__name__)

_GB_LABELS = {"gb2312", "gbk", "x-gbk", "gb_2312-80", "gb_2312", "gb-2312", "gb2312-80",
              "cp936", "ms936", "windows-936", "euc-cn", "x-euc-cn", "csgb2312", "chinese",
              "iso-ir-58", "csiso58gb231280", "gb18030", "zh_cn", "hz-gb-2312"}
_BIG5_LABELS = {"big5", "big-5", "x-big5", "cn-big5", "csbig5", "big5-hkscs", "cp950"}
_LATIN_LABELS = {"ascii", "us-ascii", "latin1", "latin-1", "iso-8859-1", "iso8859-1"}
_FALLBACKS = ("utf-8", "gb18030", "big5hkscs")

_META_RE = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)
_XML_DECL_RE = re.compile(rb"""^\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9_.\-]+)""")
# A body is "many" errors off when more than this share of its characters fail.
_MAX_ERROR_SHARE = 0.001


def normalize_label(label: str | None) -> str | None:
    """A Python codec name for a charset label (GB labels -> gb18030), or None."""
    if not label:
        return None
    key = label.strip().strip("\"'").lower()
    if key in _GB_LABELS:
        return "gb18030"
    if key in _BIG5_LABELS:
        return "big5hkscs"
    if key in _LATIN_LABELS:
        return "cp1252"
    try:
        info = codecs.lookup(key)
    except (LookupError, ValueError):
        return None
    # base64, rot13, zlib ... are codecs but not text encodings; "undefined" always
    # fails; EBCDIC and the like cannot be what an HTML page declares in ASCII.
    if not getattr(info, "_is_text_encoding", True):
        return None
    if info.name.startswith(("utf-16", "utf-32")):
        return info.name
    try:
        ascii_ok = b"<html charset=x>".decode(info.name) == "<html charset=x>"
    except (UnicodeError, LookupError):
        return None
    return info.name if ascii_ok else None


def declared_charset(body: bytes, header_charset: str | None = None) -> str | None:
    """The charset label of the HTTP header, else of ``<meta>``/XML declaration (raw)."""
    if header_charset:
        if "=" in header_charset or ";" in header_charset:
            found = http_content_type_encoding(header_charset)
            if found:
                return found
        else:
            return header_charset.strip().strip("\"'") or None
    head = body[:8192]
    match = _META_RE.search(head) or _XML_DECL_RE.search(head)
    if match:
        return match.group(1).decode("ascii", "replace")
    return None


def _errors(body: bytes, encoding: str) -> int:
    """How many undecodable sequences *body* has in *encoding* (0: decodes strictly)."""
    try:
        body.decode(encoding)
    except UnicodeDecodeError:
        return max(1, body.decode(encoding, errors="replace").count("\ufffd"))
    except (UnicodeError, LookupError):
        return len(body) + 1
    return 0


def _gb2312_share(text: str) -> float:
    """Share of CJK characters of *text* that GB2312 has (high for real GB text)."""
    cjk = [ch for ch in text if "\u3400" <= ch <= "\u9fff"]
    if not cjk:
        return 1.0
    inside = sum(1 for ch in cjk if _in_gb2312(ch))
    return inside / len(cjk)


def _in_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _sniff(body: bytes, skip: str | None) -> tuple[str, int]:
    """The first fallback codec that decodes *body* strictly, else the least bad one."""
    scored: list[tuple[int, int, str]] = []
    for rank, encoding in enumerate(_FALLBACKS):
        errors = _errors(body, encoding)
        if errors == 0 and encoding == "gb18030" and skip != "big5hkscs":
            # Big5 bytes also decode as (nonsense) GB18030; real GB text is mostly GB2312.
            if _gb2312_share(body.decode(encoding)) < 0.8 and _errors(body, "big5hkscs") == 0:
                return "big5hkscs", 0
        if errors == 0:
            return encoding, 0
        scored.append((errors, rank, encoding))
    errors, _, encoding = min(scored)
    return encoding, errors


def _decode(body: bytes, encoding: str) -> str:
    return body.decode(encoding, errors="replace")


def decode_html(body: bytes, header_charset: str | None = None) -> DecodedHtml:
    """Decode *body*; ``lied`` is True when the declared label did not fit the bytes."""
    if isinstance(body, str):  # already text (e.g. a rendered page)
        return DecodedHtml(body, "utf-8", header_charset, False)
    body = bytes(body or b"")
    try:
        return _decode_html(body, header_charset)
    except (UnicodeError, LookupError):
        # A codec misbehaving on odd input: UTF-8 with replacement is always possible.
        logger.warning("cannot decode body with its label %r", header_charset, exc_info=True)
        return DecodedHtml(_decode(body, "utf-8"), "utf-8", header_charset, True)


def _decode_html(body: bytes, header_charset: str | None) -> DecodedHtml:
    declared = declared_charset(body, header_charset)
    label = normalize_label(declared)
    if label and label.startswith(("utf-16", "utf-32")) and not header_charset:
        label = "utf-8"  # an in-document label cannot be UTF-16 (WHATWG)
    bom_encoding, bom = read_bom(body)
    if bom_encoding and bom:
        bom_codec = normalize_label(bom_encoding) or "utf-8"
        text = _decode(body[len(bom):], bom_codec)
        lied = label is not None and label != bom_codec
        return DecodedHtml(text, bom_codec, declared, lied)
    if label is not None:
        errors = _errors(body, label)
        if errors == 0:
            if label != "utf-8" and not body.isascii() and _errors(body, "utf-8") == 0:
                # Valid multi-byte UTF-8 is never GB/Big5 text by chance: the label lies.
                return DecodedHtml(_decode(body, "utf-8"), "utf-8", declared, True)
            return DecodedHtml(_decode(body, label), label, declared, False)
        encoding, sniffed_errors = _sniff(body, skip=label)
        # One stray bad byte in an otherwise fine page is not a lie.
        tolerable = errors <= max(1, int(len(body) * _MAX_ERROR_SHARE))
        if sniffed_errors and (tolerable or errors <= sniffed_errors):
            return DecodedHtml(_decode(body, label), label, declared, False)
        logger.debug("charset %r does not decode the body (%d errors); using %s",
                     declared, errors, encoding)
        return DecodedHtml(_decode(body, encoding), encoding, declared, True)
    encoding, _ = _sniff(body, skip=None)
    return DecodedHtml(_decode(body, encoding), encoding, declared, declared is not None)


__all__ = ["DecodedHtml", "declared_charset", "decode_html", "normalize_label"]
