"""Side by side on one replica: bare Scrapy, Scrapy + warcio, gzarchive crawl, wget.

The replica (``--profile js``: one JavaScript-filled section; ``--articles`` target
articles, half per target section) is served from memory with ``--latency-ms`` added to
every answer, in this process. Each crawler runs once, as a subprocess, into a fresh
temporary directory:

(a) bare Scrapy following home → section listings → articles (benchmarks/bare_spider.py)
(b) the same spider writing every response to a WARC with warcio
(c) ``gzarchive crawl`` with Scrapy's politeness (AutoThrottle off, 8 per domain, no delay)
(d) ``gzarchive crawl`` at its defaults
(e) ``wget --mirror --warc-file`` of the whole replica (if wget is installed)
then recrawls of the unchanged replica by (c) and (d) into their own directories, and
once more after one slow answer (``--slow-seconds`` 12 more on the first answer to the
``--slow`` target: the home page, or the first article; 0 skips these runs), the case of
the issue where Scrapy's AutoThrottle kept a seconds-long delay for every 304 after it.

Printed: wall seconds, CPU seconds of every process involved (the crawler and what it
starts: the embedded store server, Playwright's driver, Chromium; see procstats.py),
requests served, pages/s, target articles archived and articles/s, peak RSS (crawler
process, whole tree), ratios to (b), and the least wall the added latency allows at 8
requests in flight (how far above it each crawl ran); before it, the replica's own throughput under 500
GETs from 16 threads, with and without the added latency.

    .venv/bin/python benchmarks/side_by_side.py [--articles 72] [--latency-ms 50]
        [--only a,b,c,d,e] [--no-recrawl] [--slow-seconds 12] [--slow home|article]
        [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.procstats import MiB, Usage, measure, store_pid  # noqa: E402
from benchmarks.recrawl_slow import SLOW_TARGETS, SlowOnce  # noqa: E402
from tests.replica.bench import MemoryRouter, serve_from_memory  # noqa: E402
from tests.replica.config import PROFILES, ReplicaConfig  # noqa: E402
from tests.replica.replica import Replica  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SECTIONS = ("老外在貴州", "Hi,貴州!")
POLITE_LIKE_SCRAPY = ["--set", "AUTOTHROTTLE_ENABLED=False", "--set",
                      "CONCURRENT_REQUESTS_PER_DOMAIN=8", "--set", "DOWNLOAD_DELAY=0"]
GATE = re.compile(r"^/gate/big5/[^/]+")


@dataclass
class Row:
    key: str
    label: str
    usage: Usage | None
    requests: int = 0
    articles: int = 0
    note: str = ""


def canonical(path: str) -> str:
    return GATE.sub("", path.split("?", 1)[0])


def throughput(router: MemoryRouter, url: str, paths: list[str], n: int = 500,
               threads: int = 16) -> float:
    def get(i: int) -> int:
        with urllib.request.urlopen(url + paths[i % len(paths)], timeout=30) as resp:
            return len(resp.read())
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(get, range(n)))
    return n / (time.perf_counter() - start)


def warc_articles(files: list[Path], truth: set[str]) -> int:
    found: set[str] = set()
    for path in files:
        with path.open("rb") as fh:
            for rec in ArchiveIterator(fh):
                if rec.rec_type == "response" and rec.http_headers is not None \
                        and rec.http_headers.get_statuscode() == "200":
                    uri = rec.rec_headers.get_header("WARC-Target-URI") or ""
                    found.add(canonical("/" + uri.split("/", 3)[-1]))
    return len(found & truth)


def run_one(key: str, label: str, cmd: list[str], replica: Replica, truth: set[str],
            data: Path, count: str) -> Row:
    first = len(replica.log)
    usage = measure(cmd, ROOT, extra_pids=lambda: store_pid(data))
    entries = replica.log[first:]
    if count == "log":
        arts = len({canonical(e.path) for e in entries if e.status == 200} & truth)
    elif count == "warc":
        arts = warc_articles(sorted(data.rglob("*.warc.gz")), truth)
    else:
        out = measure([PY, "-m", "crawler", "export", "--data-dir", str(data)], ROOT,
                      extra_pids=lambda: store_pid(data))
        arts = sum(1 for line in out.stdout.splitlines() if line.strip())
    note = "" if usage.exit_code == 0 else f"exit {usage.exit_code}"
    if usage.exit_code not in (0, 8):  # wget: 8 = some 404s, expected
        print(f"warning: {label} exited {usage.exit_code}: "
              f"{(usage.stderr.strip().splitlines() or [''])[-1]}", file=sys.stderr)
    return Row(key, label, usage, requests=len(entries), articles=arts, note=note)


def table(rows: list[Row], ref: Row | None) -> list[str]:
    out = ["| run | wall s | CPU s, all processes (crawler + others) | requests | pages/s "
           "| articles | articles/s | peak RSS crawler / tree sum MiB | wall ÷ (b) | CPU ÷ (b) "
           "| CPU ms/request |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        u = r.usage
        if u is None:
            out.append(f"| {r.label} | {r.note} | | | | | | | | | |")
            continue
        others = ", ".join(f"{n} {s:.1f}" for n, s in sorted(u.cpu_others.items(),
                                                             key=lambda x: -x[1]) if s >= 0.05)
        rw = rc = "–"
        if ref is not None and ref.usage is not None:
            rw = f"{u.wall / ref.usage.wall:.2f}"
            rc = f"{u.cpu / ref.usage.cpu:.2f}" if ref.usage.cpu else "–"
        note = f" ({r.note})" if r.note else ""
        out.append(
            f"| {r.label}{note} | {u.wall:.1f} | {u.cpu:.1f} ({u.cpu_root:.1f}"
            f"{' + ' + others if others else ''}) | {r.requests} | {r.requests / u.wall:.1f} "
            f"| {r.articles} | {r.articles / u.wall:.1f} | {u.peak_rss_root / MiB:.0f} / "
            f"{u.peak_rss_all / MiB:.0f} | {rw} | {rc} | "
            f"{1000 * u.cpu / r.requests if r.requests else 0:.1f} |")
    return out


def latency_floors(rows: list[Row], latency: float, in_flight: int = 8) -> str:
    """The least wall the added latency allows each crawl run at *in_flight* requests at a
    time ((a), (b), (c) and its recrawls: (d) and wget keep fewer in flight): requests x
    latency / in_flight, and how far above it the crawl ran."""
    if latency <= 0:
        return ""
    cells = []
    for r in rows:
        if r.usage is not None and r.requests and r.key[0] in "abc":
            floor = r.requests * latency / in_flight
            cells.append(f"({r.key}) {floor:.1f} s (wall {r.usage.wall / floor:.2f}x)")
    return (f"Latency floor at {in_flight} in flight (requests x {1000 * latency:g} ms / "
            f"{in_flight}): " + ", ".join(cells)) if cells else ""


def recrawl_shares(rows: list[Row]) -> list[str]:
    """Each recrawl's wall as a share of its first crawl's (the target: <= 15 %)."""
    walls = {r.key: r.usage.wall for r in rows if r.usage is not None}
    out = ["| crawl | first s | recrawl s (share) | after one slow answer s (share) |",
           "|---|---|---|---|"]
    for key in ("c", "d"):
        if key not in walls:
            continue
        cells = [f"{walls[key]:.1f}"]
        for later in (key + "2", key + "3"):
            cells.append(f"{walls[later]:.1f} ({100 * walls[later] / walls[key]:.0f} %)"
                         if later in walls else "–")
        out.append(f"| ({key}) | " + " | ".join(cells) + " |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=72, help="target articles (both sections)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--only", default="a,b,c,d,e")
    parser.add_argument("--no-recrawl", action="store_true")
    parser.add_argument("--slow-seconds", type=float, default=12.0,
                        help="a last recrawl with one answer this much slower (0: none)")
    parser.add_argument("--slow", choices=sorted(SLOW_TARGETS), default="home")
    parser.add_argument("--keep", type=Path, help="keep the runs' directories under DIR")
    args = parser.parse_args()
    only = set(args.only.split(","))
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# side_by_side {when}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}, {args.articles} target articles, +{args.latency_ms:g} ms "
          f"per answer, one run each", flush=True)
    replica = Replica(ReplicaConfig(**PROFILES["js"],  # type: ignore[arg-type]
                                    articles_per_section=max(12, args.articles // 2))).start()
    router = serve_from_memory(replica, 0.0)
    slow_once = SlowOnce(replica, 0.0, args.slow_seconds, args.slow)  # armed per run below
    paths = sorted(k for k, r in router._cache.items()
                   if r.status == 200 and not k.startswith("/gate/"))
    base = replica.url
    truth = {canonical(a["url"].removeprefix(base)) for a in replica.ground_truth()}
    bare = throughput(router, base, paths)
    router.latency = args.latency_ms / 1000
    slow = throughput(router, base, paths)
    replica.clear_log()
    print(f"replica alone (from memory, {len(router._cache)} answers pre-rendered, "
          f"{len(truth)} target articles): {bare:.0f} GET/s with no added latency, "
          f"{slow:.0f} GET/s at +{args.latency_ms:g} ms (500 GETs, 16 threads)", flush=True)
    top = Path(tempfile.mkdtemp(prefix="side-by-side-", dir=args.keep))
    wget = shutil.which("wget")
    plan = [
        ("a", "(a) bare Scrapy, follows links", "log",
         [PY, "benchmarks/bare_spider.py", base]),
        ("b", "(b) Scrapy + warcio WARC", "warc",
         [PY, "benchmarks/bare_spider.py", base, "--warc", "{dir}/out.warc.gz"]),
        ("c", "(c) gzarchive crawl, Scrapy's politeness", "export",
         [PY, "-m", "crawler", "crawl", "--portal-url", base, "--data-dir", "{dir}",
          *POLITE_LIKE_SCRAPY, *SECTIONS]),
        ("d", "(d) gzarchive crawl, defaults", "export",
         [PY, "-m", "crawler", "crawl", "--portal-url", base, "--data-dir", "{dir}", *SECTIONS]),
        ("e", "(e) wget --mirror --warc-file (whole site)", "warc",
         [wget or "wget", "--mirror", "--warc-file={dir}/wget", "-P", "{dir}/mirror",
          "-e", "robots=on", "--no-verbose", base + "/"]),
    ]
    rows: list[Row] = []
    dirs: dict[str, Path] = {}
    try:
        for key, label, count, cmd in plan:
            if key not in only:
                continue
            if key == "e" and wget is None:
                rows.append(Row(key, label, None, note="wget not installed"))
                continue
            dirs[key] = top / key
            dirs[key].mkdir()
            full = [c.replace("{dir}", str(dirs[key])) for c in cmd]
            rows.append(run_one(key, label, full, replica, truth, dirs[key], count))
            print(f"  done {label}: {rows[-1].usage.wall:.1f} s", flush=True)  # type: ignore[union-attr]
        if not args.no_recrawl:
            for key, label, count, cmd in plan:
                if key in ("c", "d") and key in dirs:
                    full = [c.replace("{dir}", str(dirs[key])) for c in cmd]
                    rows.append(run_one(key + "2", f"{label}: recrawl, unchanged", full,
                                        replica, truth, dirs[key], count))
                    print(f"  done recrawl {key}: {rows[-1].usage.wall:.1f} s", flush=True)  # type: ignore[union-attr]
            for key, label, count, cmd in plan if args.slow_seconds > 0 else ():
                if key in ("c", "d") and key in dirs:
                    full = [c.replace("{dir}", str(dirs[key])) for c in cmd]
                    slow_once.arm()
                    rows.append(run_one(key + "3", f"{label}: recrawl, one {args.slow} answer "
                                        f"{args.slow_seconds:g} s slower", full,
                                        replica, truth, dirs[key], count))
                    print(f"  done slow recrawl {key}: {rows[-1].usage.wall:.1f} s", flush=True)  # type: ignore[union-attr]
    finally:
        replica.stop()
        if args.keep is None:
            shutil.rmtree(top, ignore_errors=True)
    ref = next((r for r in rows if r.key == "b"), None)
    print()
    print("\n".join(table(rows, ref)))
    print()
    print("\n".join(recrawl_shares(rows)))
    print()
    print(latency_floors(rows, args.latency_ms / 1000))
    print("\nCPU: user+system of the crawler and of every process it started (the embedded "
          "store server, Playwright's node driver, Chromium's processes), in brackets the "
          "crawler process and the others by name (benchmarks/procstats.py). Tree RSS: the "
          "largest sum over the processes of one sample (shared pages counted in each). "
          "articles: target articles archived (200 responses in the WARC for (b)/(e), in "
          "the replica's log for (a); `gzarchive export` for (c)/(d): the archive's total "
          "after a recrawl). CPU ms/request counts start-up too.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
