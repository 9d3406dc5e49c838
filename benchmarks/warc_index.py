"""Time per closed WARC file of the CDXJ index update, old design vs new (#15).

Both designs are given the same lines (cdxj-indexer's pass over the new file, the same
in both, is left out): an index of ``--levels`` lines is built (synthetic lines shaped
like ours, ~300 bytes, random gz.cri.cn SURT keys), then ``--files`` files of
``--lines`` lines each are closed one after the other:

* ``merge``: the design before #15, every closed file merged into the one sorted
  ``index.cdxj`` and the whole file rewritten (heapq.merge + tmp + fsync + os.replace);
* ``segments``: storage.warc.index.add_lines, the file's own sorted segment, then the
  size-tiered compaction (``FANOUT`` files of one tier merged into the next).

It prints the mean, p50 and max seconds per closed file, the bytes written per closed
file, how often the main was rewritten, the number of index files at the end and the
time to read the whole index back (iter_index, what the reading room and ``warc pack``
read), then checks that both designs hold the same lines.

    .venv/bin/python benchmarks/warc_index.py [--levels 10000,200000] [--files 100]
        [--lines 500] [--designs merge,segments]

(``--designs segments --files 500``: long enough for the main itself to be compacted.)
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.warc import index as ix  # noqa: E402


def synthetic_lines(n: int, filename: str, rng: random.Random) -> list[str]:
    lines = []
    for i in range(n):
        path = f"2026/{rng.randrange(1, 13):02d}/{rng.randrange(1, 29):02d}/a{rng.getrandbits(40):x}"
        url = f"https://gz.cri.cn/{path}.html"
        ts = f"2026{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}{rng.randrange(10**6):06d}"
        body = {"url": url, "mime": "text/html", "status": "200",
                "digest": f"sha1:{rng.getrandbits(160):040X}", "length": str(rng.randrange(2000, 90000)),
                "offset": str(i * 4096), "filename": filename}
        lines.append(f"cn,cri,gz)/{path}.html {ts} {json.dumps(body)}")
    return sorted(lines)


def old_merge(index_path: Path, name: str, new: list[str]) -> None:
    """storage/warc/index.py update_index before #15, minus cdxj-indexer."""
    with ix._locked(index_path):
        if not index_path.exists():
            ix._replace(index_path, new)
            return
        with open(index_path, encoding="utf-8") as old:
            ix._replace(index_path, heapq.merge(ix._not_of(old, name), new))


def written_bytes() -> int:
    with open(f"/proc/{os.getpid()}/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("write_bytes"))


def run(design: str, update: Callable[[Path, str, list[str]], None], level: int,
        files: int, per_file: int, seed: int) -> tuple[dict[str, float], list[str]]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="bench-index-", dir=os.environ.get("TMPDIR")) as tmp:
        index = Path(tmp) / ix.INDEX_NAME
        ix._replace(index, synthetic_lines(level, "gzarchive-base.warc.gz", rng))
        batches = [(f"gzarchive-{k:05d}.warc.gz", synthetic_lines(per_file, f"gzarchive-{k:05d}.warc.gz", rng))
                   for k in range(files)]
        times = []
        main_merges = 0
        before = written_bytes()
        for name, lines in batches:
            inode = index.stat().st_ino
            t0 = time.perf_counter()
            update(index, name, lines)
            times.append(time.perf_counter() - t0)
            main_merges += index.stat().st_ino != inode
        wrote = written_bytes() - before
        t0 = time.perf_counter()
        lines = ix.read_index(index)  # what the reading room and `warc pack` read
        read_s = time.perf_counter() - t0
        result = {"mean": statistics.mean(times), "p50": statistics.median(times),
                  "max": max(times), "mb_per_file": wrote / files / 1e6,
                  "index_files": len(ix.index_files(index)), "main_merges": main_merges,
                  "index_mb": sum(p.stat().st_size for p in ix.index_files(index)) / 1e6,
                  "read_s": read_s}
        return result, lines


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="10000,200000")
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--designs", default="merge,segments")
    args = parser.parse_args(list(argv) if argv is not None else None)
    print(f"load average {os.getloadavg()}; {args.files} closed files of {args.lines} lines; "
          f"FANOUT={ix.FANOUT}, TIER_BYTES={ix.TIER_BYTES}")
    for level in (int(x) for x in args.levels.split(",")):
        results: dict[str, list[str]] = {}
        designs = {"merge": old_merge, "segments": ix.add_lines}
        for design in args.designs.split(","):
            update = designs[design]
            res, lines = run(design, update, level, args.files, args.lines, seed=level)
            results[design] = lines
            print(f"{level:>8} lines  {design:9} mean {res['mean'] * 1000:8.1f} ms  "
                  f"p50 {res['p50'] * 1000:8.1f} ms  max {res['max'] * 1000:8.1f} ms  "
                  f"written {res['mb_per_file']:7.2f} MB/file  "
                  f"main rewritten {res['main_merges']:3.0f}x  "
                  f"{res['index_files']:3d} files, {res['index_mb']:.1f} MB, "
                  f"read whole {res['read_s']:.2f} s", flush=True)
        if len(results) == 2:
            assert results["merge"] == results["segments"], "the designs disagree"
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
