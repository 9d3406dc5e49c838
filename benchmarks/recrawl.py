"""What a recrawl of an unchanged portal costs next to the first crawl.

Starts the offline replica (plain HTML listings, no browser), runs ``gzarchive crawl``
(the CLI, in a subprocess, as ``tests.helpers.crawl`` does) into a temporary data
directory, then crawls the unchanged replica again into the same directory. For each
run it prints the requests the replica served (total, how many carried
``If-None-Match``/``If-Modified-Since``, how many were answered 304), the wall seconds
of the subprocess and the bytes of WARC written (``.warc.gz`` files that appeared in
that run), then the recrawl/first ratios.

    .venv/bin/python benchmarks/recrawl.py [--articles-per-section 23] [--keep DIR]
        [--set NAME=VALUE ...]

``AUTOTHROTTLE_ENABLED=False`` is always passed for stable timing (``--set`` adds more).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import crawl  # noqa: E402
from tests.replica import Replica, ReplicaConfig  # noqa: E402

CONDITIONAL = ("if-none-match", "if-modified-since")  # the replica lower-cases header names


@dataclass
class RunFigures:
    name: str
    requests: int
    conditional: int
    not_modified: int
    seconds: float
    warc_bytes: int
    warc_files: int
    grown_bytes: int  # growth of files that existed before the run (expected 0)
    exit_code: int


def warc_sizes(data: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (data / "warc").glob("*.warc.gz")}


def run(name: str, replica: Replica, data: Path, extra: list[str]) -> RunFigures:
    before = warc_sizes(data)
    first_entry = len(replica.log)
    start = time.perf_counter()
    proc = crawl(replica.url, data, *extra)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"warning: {name} crawl exited {proc.returncode}; stderr tail:\n"
              f"{proc.stderr[-1500:]}", file=sys.stderr)
    entries = replica.log[first_entry:]
    after = warc_sizes(data)
    new = {n: s for n, s in after.items() if n not in before}
    grown = sum(s - before[n] for n, s in after.items() if n in before)
    return RunFigures(
        name=name, requests=len(entries),
        conditional=sum(1 for e in entries if any(h in e.headers for h in CONDITIONAL)),
        not_modified=sum(1 for e in entries if e.status == 304),
        seconds=seconds, warc_bytes=sum(new.values()), warc_files=len(new),
        grown_bytes=grown, exit_code=proc.returncode)


def wait_for_embedded_server(data: Path, timeout: float = 15.0) -> None:
    """The embedded store stops itself ~3 s after the last client: let it go first."""
    state = data / "db" / "server.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = int(json.loads(state.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return
        if not psutil.pid_exists(pid):
            return
        time.sleep(0.2)
    print(f"warning: embedded store under {data} still running after {timeout:.0f} s",
          file=sys.stderr)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles-per-section", type=int, default=23)
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="NAME=VALUE", help="extra Scrapy setting for both crawls")
    parser.add_argument("--keep", type=Path, help="use (and keep) this data directory")
    args = parser.parse_args()

    extra: list[str] = []
    for setting in ["AUTOTHROTTLE_ENABLED=False", *args.settings]:
        extra += ["--set", setting]

    tmp = None
    if args.keep:
        data = args.keep
        data.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="recrawl-bench-")
        data = Path(tmp.name)
    replica = Replica(ReplicaConfig(js_section=None,
                                    articles_per_section=args.articles_per_section)).start()
    try:
        stories = len(replica.ground_truth())
        print(f"replica {replica.url}: articles_per_section={args.articles_per_section}, "
              f"{stories} stories in the target sections; data dir {data}")
        first = run("first", replica, data, extra)
        recrawl = run("recrawl", replica, data, extra)
    finally:
        replica.stop()
        wait_for_embedded_server(data)
        if tmp is not None:
            tmp.cleanup()

    print()
    header = (f"{'run':<8} {'requests':>8} {'conditional':>11} {'304':>5} {'seconds':>8} "
              f"{'WARC bytes':>11} {'files':>5} {'exit':>4}")
    print(header)
    print("-" * len(header))
    for r in (first, recrawl):
        print(f"{r.name:<8} {r.requests:>8} {r.conditional:>11} {r.not_modified:>5} "
              f"{r.seconds:>8.1f} {r.warc_bytes:>11,} {r.warc_files:>5} {r.exit_code:>4}")
    print()
    print(f"recrawl/first: requests {ratio(recrawl.requests, first.requests)}, "
          f"seconds {ratio(recrawl.seconds, first.seconds)}, "
          f"WARC bytes {ratio(recrawl.warc_bytes, first.warc_bytes)}")
    if recrawl.grown_bytes or first.grown_bytes:
        print(f"note: existing WARC files grew during a run (first {first.grown_bytes:,} B, "
              f"recrawl {recrawl.grown_bytes:,} B): not counted above")
    return 0 if first.exit_code == 0 and recrawl.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
