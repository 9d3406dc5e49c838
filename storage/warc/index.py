"""CDXJ index of the WARC directory, built with cdxj-indexer (never by hand).

The index is a small log-structured set of sorted CDXJ files in the WARC directory:
the main ``DIR/index.cdxj`` and *segments* ``DIR/index.*.cdxj``. Every one is sorted;
together (merged at lookup) they are the index:

- :func:`update_index` indexes one closed ``.warc.gz`` into its own segment
  ``index.f-<file>.cdxj``: the cost of a closed file is that file's lines, whatever the
  size of the archive (the whole index used to be merged and rewritten each time);
- segments are then compacted size-tiered (like an LSM tree): when :data:`FANOUT`
  files of one size tier exist (tier ``t``: under ``TIER_BYTES * FANOUT**t`` bytes; the
  main is a member of its own tier), they are merged into one file of the next tier
  (into the main when it is among them). Each line is rewritten about
  ``log_FANOUT(archive / file)`` times over the archive's life, never once per closed
  file, and the number of files stays small (under ``FANOUT`` per tier);
- ``gzarchive warc index`` (:func:`rebuild_index`) rebuilds everything into the main
  and drops the segments.

pywb reads them all: its collection's ``index_paths`` is the WARC directory itself
(storage/warc/replay.py, crawler/web/pywb.py), which it loads as a
``CacheDirectoryIndexSource``: every ``*.cdx``/``*.cdxj`` of the directory, each
binary-searched, the results heap-merged (pywb/warcserver/index/aggregator.py), so
several sorted files answer exactly as one would. Our own readers use
:func:`iter_index` / :func:`read_index` (the same merge). No other ``*.cdxj`` may lie
in the WARC directory (pywb would replay it too).

Every write happens under one exclusive ``flock`` (``index.cdxj.lock``) and is crash
safe: a file is written as ``.index.cdxj-*.tmp`` (a name neither pywb nor we read),
fsynced, then ``os.replace``d; leftover temporaries are removed by the next writer. A
compaction replaces its output before it unlinks its inputs, so a crash in between
leaves lines twice, never missing: the merge drops identical lines (and the next
compaction or a rebuild removes them; pywb would list such a capture twice meanwhile).
Re-indexing a closed file rewrites its segment, so the call is idempotent.

The index is the *replay* index (pywb reads it; the WACZ gets one built by the same
rule, storage/warc/pack.py): revisit records of 304 answers are left out of it, see
:func:`replayable`. They stay in the WARC files.
"""

from __future__ import annotations

import fcntl
import glob
import heapq
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from cdxj_indexer.main import CDXJIndexer

INDEX_NAME = "index.cdxj"
INDEX_MODE = 0o644  # readable like the WARC files it indexes
#: How many files of one size tier are merged into one file of the next tier.
FANOUT = 8
#: Tier 0 is files under this size; tier t under ``TIER_BYTES * FANOUT**t``.
TIER_BYTES = 1 << 20


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


# -- the files of an index ------------------------------------------------------------
def segment_paths(index_path: Path) -> list[Path]:
    """The segments of the index whose main is ``index_path`` (``index.*.cdxj``)."""
    index_path = Path(index_path)
    pattern = f"{glob.escape(index_path.stem)}.*{glob.escape(index_path.suffix)}"
    return sorted(p for p in index_path.parent.glob(pattern) if p.is_file())


def index_files(index_path: Path) -> list[Path]:
    """The main (when it exists) and the segments: together, the index."""
    index_path = Path(index_path)
    return ([index_path] if index_path.is_file() else []) + segment_paths(index_path)


def has_index(index_path: Path) -> bool:
    return bool(index_files(index_path))


def _segment_of(index_path: Path, warc_name: str) -> Path:
    return index_path.with_name(f"{index_path.stem}.f-{warc_name}{index_path.suffix}")


def _new_run(index_path: Path) -> Path:
    return index_path.with_name(
        f"{index_path.stem}.m-{time.time_ns():020d}-{os.getpid()}{index_path.suffix}")


def _merge_lines(handles: Iterable[Iterable[str]]) -> Iterator[str]:
    """Sorted lines (no newline) of sorted inputs, identical lines once."""
    last = None
    for line in heapq.merge(*handles):
        line = line.rstrip("\n")
        if line and line != last:
            last = line
            yield line


def iter_index(index_path: Path) -> Iterator[str]:
    """Every line of the index (main and segments merged), sorted, without newline.

    Lock-free (readers may not write the directory): the files are opened together,
    and listed again if one vanished meanwhile (merged away by a compaction, whose
    output was in place before its inputs went), so the snapshot is whole."""
    index_path = Path(index_path)
    for _attempt in range(20):
        with ExitStack() as stack:
            try:
                handles = [stack.enter_context(open(p, encoding="utf-8"))
                           for p in index_files(index_path)]
            except FileNotFoundError:
                continue
            yield from _merge_lines(handles)
            return
    raise OSError(f"the files of {index_path} kept changing while being opened")


def read_index(index_path: Path) -> list[str]:
    """:func:`iter_index` as a list."""
    return list(iter_index(index_path))


def index_stamp(index_path: Path) -> tuple[tuple[str, int, int], ...]:
    """Changes whenever a file of the index does (for readers caching it)."""
    stamp = []
    for path in index_files(index_path):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        stamp.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(stamp)


# -- writing (always under _locked) ---------------------------------------------------
def _replace(path: Path, lines: Iterable[str]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        os.fchmod(fd, INDEX_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sweep(index_path: Path) -> None:
    """Remove temporaries left by a writer that died (none is live: we hold the lock)."""
    pattern = f".{glob.escape(index_path.stem)}.*.tmp"
    for tmp in index_path.parent.glob(pattern):
        tmp.unlink(missing_ok=True)


def _tier(size: int) -> int:
    tier, limit = 0, TIER_BYTES
    while size >= limit:
        tier, limit = tier + 1, limit * FANOUT
    return tier


def compact(index_path: Path) -> int:
    """Size-tiered compaction (see the module doc); returns the number of merges."""
    index_path = Path(index_path)
    merges = 0
    with _locked(index_path):
        while True:
            tiers: dict[int, list[Path]] = {}
            for path in index_files(index_path):
                tiers.setdefault(_tier(path.stat().st_size), []).append(path)
            full = sorted(t for t, paths in tiers.items() if len(paths) >= FANOUT)
            if not full:
                return merges
            group = tiers[full[0]]
            out = index_path if index_path in group else _new_run(index_path)
            with ExitStack() as stack:
                handles = [stack.enter_context(open(p, encoding="utf-8")) for p in group]
                _replace(out, _merge_lines(handles))
            for path in group:  # only once the output is in place
                if path != out:
                    path.unlink(missing_ok=True)
            merges += 1


def add_lines(index_path: Path, warc_name: str, lines: list[str]) -> None:
    """Write the sorted ``lines`` of WARC file ``warc_name`` as its segment, then compact."""
    index_path = Path(index_path)
    with _locked(index_path):
        _sweep(index_path)
        if not index_path.exists():
            _replace(index_path, [])  # the main always exists once anything is indexed
        _replace(_segment_of(index_path, warc_name), sorted(lines))
    compact(index_path)


def update_index(warc_path: Path, index_path: Path | None = None) -> Path:
    """Index ``warc_path`` into the index ``index_path`` (default: beside it).

    Costs the new file's lines: they become its own segment (written whole, atomically),
    and the compaction that may follow merges files of the same size tier only."""
    warc_path = Path(warc_path)
    index_path = Path(index_path) if index_path else warc_path.parent / INDEX_NAME
    add_lines(index_path, warc_path.name, index_lines(warc_path))
    return index_path


def rebuild_index(directory: Path, index_path: Path | None = None) -> Path:
    """Index every finished ``*.warc.gz`` of ``directory`` from scratch into the main
    (one sorted file); the segments are dropped."""
    directory = Path(directory)
    index_path = Path(index_path) if index_path else directory / INDEX_NAME
    lines: list[str] = []
    for warc in sorted(directory.glob("*.warc.gz")):
        lines.extend(index_lines(warc))
    with _locked(index_path):
        _sweep(index_path)
        _replace(index_path, _merge_lines([sorted(lines)]))
        for segment in segment_paths(index_path):
            segment.unlink(missing_ok=True)
    return index_path


def remove_from_index(name: str, index_path: Path) -> None:
    """Drop the lines of WARC file ``name`` (e.g. a file that was deleted).

    Rare (recovery of a file without one whole record): every file of the index is
    read, and those holding ``name`` rewritten."""
    index_path = Path(index_path)
    if not has_index(index_path):
        return
    quoted = json.dumps(name)
    with _locked(index_path):
        _sweep(index_path)
        _segment_of(index_path, name).unlink(missing_ok=True)
        for path in index_files(index_path):
            with open(path, encoding="utf-8") as fh:
                if not any(quoted in line and line_filename(line.rstrip("\n")) == name
                           for line in fh):
                    continue
                fh.seek(0)
                _replace(path, _not_of(fh, name))
