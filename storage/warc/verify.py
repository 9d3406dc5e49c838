"""Check WARC files: every digest recomputed, every request paired with its response.

Digests are recomputed by hand from the raw block warcio reads
(``no_record_parse``): the block digest over the whole block, the payload digest over
what follows the HTTP headers (for ``application/http`` records) or over the whole
block (other records). Revisit records carry the *original* payload's digest, so only
their block digest is checked. Pairing uses WARC-Concurrent-To in either direction.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from .records import RESPONSE_TYPES
from .writer import OPEN_SUFFIX

_HTTP_TYPES = (*RESPONSE_TYPES, "request")


@dataclass
class FileReport:
    """Result of verifying one file (or noting an unfinished ``.open`` one)."""

    path: Path
    records: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    digest_failures: list[str] = field(default_factory=list)
    requests_without_response: list[str] = field(default_factory=list)
    responses_without_request: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    open_file: bool = False

    @property
    def ok(self) -> bool:
        return not (self.digest_failures or self.requests_without_response
                    or self.responses_without_request or self.errors or self.open_file)


def _matches(digest_header: str, data: bytes) -> bool:
    algo, _, value = digest_header.partition(":")
    try:
        raw = hashlib.new(algo.lower().replace("-", ""), data).digest()
    except ValueError:
        return False
    value = value.strip()
    return value.upper() in (base64.b32encode(raw).decode(), raw.hex().upper()) or \
        value == base64.b64encode(raw).decode()


def verify_file(path: Path) -> FileReport:
    """Verify the digests and request/response pairing of one ``.warc.gz``."""
    report = FileReport(Path(path))
    requests: dict[str, str] = {}   # record id -> concurrent-to
    responses: dict[str, str] = {}
    uris: dict[str, str] = {}
    try:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh, no_record_parse=True):
                report.records += 1
                rtype = str(record.rec_type)
                report.by_type[rtype] = report.by_type.get(rtype, 0) + 1
                headers = record.rec_headers
                rid = str(headers.get_header("WARC-Record-ID") or "")
                uri = str(headers.get_header("WARC-Target-URI") or "")
                block = record.raw_stream.read()
                label = f"{rtype} {uri} {rid}".strip()
                length = headers.get_header("Content-Length")
                if length is not None and int(length) != len(block):
                    report.digest_failures.append(f"{label}: short block")
                block_digest = headers.get_header("WARC-Block-Digest")
                if block_digest and not _matches(block_digest, block):
                    report.digest_failures.append(f"{label}: block digest")
                payload_digest = headers.get_header("WARC-Payload-Digest")
                if payload_digest and rtype != "revisit":
                    payload = block
                    ctype = str(headers.get_header("Content-Type") or "")
                    if rtype in _HTTP_TYPES and ctype.startswith("application/http"):
                        _, sep, payload = block.partition(b"\r\n\r\n")
                        if not sep:
                            payload = b""
                    if not _matches(payload_digest, payload):
                        report.digest_failures.append(f"{label}: payload digest")
                concurrent = str(headers.get_header("WARC-Concurrent-To") or "")
                if rtype == "request":
                    requests[rid] = concurrent
                elif rtype in RESPONSE_TYPES:
                    responses[rid] = concurrent
                uris[rid] = uri
    except Exception as exc:  # noqa: BLE001 - a broken file is a finding, not a crash
        report.errors.append(f"{type(exc).__name__}: {exc}")

    paired_responses = {c for c in requests.values() if c in responses}
    paired_responses |= {r for r, c in responses.items() if c in requests}
    for rid, concurrent in requests.items():
        if concurrent not in responses and not any(c == rid for c in responses.values()):
            report.requests_without_response.append(f"{uris.get(rid, '')} {rid}")
    for rid in responses:
        if rid not in paired_responses:
            report.responses_without_request.append(f"{uris.get(rid, '')} {rid}")
    return report


def verify_directory(directory: Path) -> list[FileReport]:
    """Verify every ``*.warc.gz``; unfinished ``.open`` files are reported, not read."""
    directory = Path(directory)
    reports = [verify_file(p) for p in sorted(directory.glob("*.warc.gz"))]
    reports += [FileReport(p, open_file=True)
                for p in sorted(directory.glob("*.warc.gz" + OPEN_SUFFIX))]
    return reports
