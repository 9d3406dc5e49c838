"""CDXJ index of the WARC directory, built with cdxj-indexer (never by hand).

:func:`update_index` indexes one closed ``.warc.gz`` and merges its lines into
``DIR/index.cdxj`` (sorted, replaced atomically, under an exclusive ``flock`` so two
processes closing files at once do not lose each other's lines). Re-indexing a file
replaces its earlier lines, so the call is idempotent.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cdxj_indexer.main import CDXJIndexer

INDEX_NAME = "index.cdxj"


def index_lines(warc_path: Path) -> list[str]:
    """Sorted CDXJ lines (without newline) of one WARC file; filename = basename."""
    warc_path = Path(warc_path)
    with tempfile.NamedTemporaryFile("w+", suffix=".cdxj", encoding="utf-8") as out:
        CDXJIndexer(output=out.name, inputs=[str(warc_path)], sort=True).process_all()
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


@contextmanager
def _locked(index_path: Path) -> Iterator[None]:
    with open(index_path.with_name(index_path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _replace(index_path: Path, lines: list[str]) -> None:
    fd, tmp = tempfile.mkstemp(dir=index_path.parent, prefix=".index-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, index_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_index(warc_path: Path, index_path: Path | None = None) -> Path:
    """Index ``warc_path`` and merge it into ``index_path`` (default: beside it)."""
    warc_path = Path(warc_path)
    index_path = Path(index_path) if index_path else warc_path.parent / INDEX_NAME
    new = index_lines(warc_path)
    with _locked(index_path):
        old: list[str] = []
        if index_path.exists():
            old = index_path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in old if line and line_filename(line) != warc_path.name]
        _replace(index_path, sorted(kept + new))
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
        old = index_path.read_text(encoding="utf-8").splitlines()
        _replace(index_path, [line for line in old if line and line_filename(line) != name])
