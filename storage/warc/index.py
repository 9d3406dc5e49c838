"""CDXJ index of the WARC directory, built with cdxj-indexer (never by hand).

:func:`update_index` indexes one closed ``.warc.gz`` and merges its lines into
``DIR/index.cdxj`` (one streamed pass of a sorted merge, replaced atomically, under an
exclusive ``flock`` so two processes closing files at once do not lose each other's
lines). Re-indexing a file replaces its earlier lines, so the call is idempotent.

The index is the *replay* index (pywb reads it; the WACZ gets one built by the same
rule, storage/warc/pack.py): revisit records of 304 answers are left out of it, see
:func:`replayable`. They stay in the WARC files.
"""

from __future__ import annotations

import fcntl
import heapq
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cdxj_indexer.main import CDXJIndexer

INDEX_NAME = "index.cdxj"
INDEX_MODE = 0o644  # readable like the WARC files it indexes


def replayable(record: Any) -> bool:
    """False for a ``revisit`` whose own HTTP status is 304 (server-not-modified).

    Why they are kept out of the replay index, not rewritten: WARC 1.1 (6.7.3) defines
    such a revisit as the server's 304 (its headers as the block, the payload being the
    original's, which WARC-Refers-To-Target-URI/-Date and WARC-Payload-Digest name; we
    write all three). But neither replayer follows it to that original: pywb
    (warcserver/resource/resolvingloader.py, ``load_headers_and_payload``) serves a
    revisit whose status starts with "3" as it is, Content-Length 0, and wabac.js
    (ReplayWeb.page, ``OnDemandPayloadArchiveDB.loadPayload``) returns an empty payload
    for a 3xx revisit. Indexed, a 304 would be the latest capture of every unchanged
    page and replay as an empty "304 Not Modified". Left out, the latest indexed
    capture is the newest copy that carries (a 200 response) or resolves to (an
    identical-payload-digest revisit, which both replayers follow by its refers-to
    fields and digest) the content the 304 confirmed. Writing a 200 status line for a
    304 would misstate what the server said, so the WARC stays faithful.
    """
    if record.rec_type != "revisit" or record.http_headers is None:
        return True
    return str(record.http_headers.get_statuscode()) != "304"


class ReplayIndexer(CDXJIndexer):  # type: ignore[misc]
    """cdxj-indexer's indexer, minus the records :func:`replayable` rejects."""

    def filter_record(self, record: Any) -> bool:
        return bool(super().filter_record(record)) and replayable(record)


def index_lines(warc_path: Path) -> list[str]:
    """Sorted CDXJ lines (without newline) of one WARC file; filename = basename."""
    warc_path = Path(warc_path)
    with tempfile.NamedTemporaryFile("w+", suffix=".cdxj", encoding="utf-8") as out:
        ReplayIndexer(output=out.name, inputs=[str(warc_path)], sort=True).process_all()
        out.seek(0)
        lines = [line.rstrip("\n") for line in out.read().splitlines()]
    return sorted(line for line in lines if line and not line.startswith(("!", " ")))


def line_filename(line: str) -> str | None:
    """The ``filename`` field of a CDXJ line."""
    parts = line.split(" ", 2)
    if len(parts) < 3:
        return None
    try:
        value = json.loads(parts[2]).get("filename")
    except (ValueError, AttributeError):
        return None
    return None if value is None else str(value)


def _not_of(lines: Iterable[str], name: str) -> Iterator[str]:
    """Lines not belonging to WARC file ``name`` (json-parsed only when it may)."""
    quoted = json.dumps(name)
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        if quoted in line and line_filename(line) == name:
            continue
        yield line


@contextmanager
def _locked(index_path: Path) -> Iterator[None]:
    with open(index_path.with_name(index_path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _replace(index_path: Path, lines: Iterable[str]) -> None:
    fd, tmp = tempfile.mkstemp(dir=index_path.parent, prefix=".index-", suffix=".tmp")
    try:
        os.fchmod(fd, INDEX_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, index_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_index(warc_path: Path, index_path: Path | None = None) -> Path:
    """Index ``warc_path`` and merge it into ``index_path`` (default: beside it).

    The index on disk is sorted, so merging is one streamed pass (heapq.merge of the
    old lines with the new file's): memory holds only the new file's lines."""
    warc_path = Path(warc_path)
    index_path = Path(index_path) if index_path else warc_path.parent / INDEX_NAME
    new = index_lines(warc_path)
    with _locked(index_path):
        if not index_path.exists():
            _replace(index_path, new)
            return index_path
        with open(index_path, encoding="utf-8") as old:
            _replace(index_path, heapq.merge(_not_of(old, warc_path.name), new))
    return index_path


def rebuild_index(directory: Path, index_path: Path | None = None) -> Path:
    """Index every finished ``*.warc.gz`` of ``directory`` from scratch."""
    directory = Path(directory)
    index_path = Path(index_path) if index_path else directory / INDEX_NAME
    lines: list[str] = []
    for warc in sorted(directory.glob("*.warc.gz")):
        lines.extend(index_lines(warc))
    with _locked(index_path):
        _replace(index_path, sorted(lines))
    return index_path


def remove_from_index(name: str, index_path: Path) -> None:
    """Drop the lines of WARC file ``name`` (e.g. a file that was deleted)."""
    if not index_path.exists():
        return
    with _locked(index_path):
        with open(index_path, encoding="utf-8") as old:
            _replace(index_path, _not_of(old, name))
