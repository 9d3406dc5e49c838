"""What storing costs per article: the store server's CPU and the MongoDB commands sent.

One replica (``--profile`` js: one JavaScript-filled section; ``--articles`` target
articles, half per section) served from memory with ``--latency-ms`` (50) added to every
answer, and one ``gzarchive crawl`` with Scrapy's politeness (AutoThrottle off, 8 per
domain, no delay; as side_by_side.py (c)) into a fresh temporary directory, run under
benchmarks/opcount.py (a pymongo ``CommandListener`` in the crawler process). Printed:
load average, wall, CPU s of the crawler and of the embedded store server (its own
process, procstats.py), target articles archived (``gzarchive export``), store CPU ms per
article, MongoDB commands in all and per article by command and collection (with the
statements they carried and the client-side seconds they took). ``--py-spy FILE``
records the store server's stacks (``py-spy record --format raw``, collapsed stacks:
``--top`` prints the heaviest frames). ``--recrawl`` crawls the unchanged replica again.

    .venv/bin/python benchmarks/store_cost.py [--articles 1000] [--profile js]
        [--latency-ms 50] [--py-spy FILE] [--recrawl] [--keep DIR] [--set NAME=VALUE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.procstats import Usage, measure, store_pid  # noqa: E402
from benchmarks.side_by_side import POLITE_LIKE_SCRAPY, SECTIONS  # noqa: E402
from tests.replica.bench import serve_from_memory  # noqa: E402
from tests.replica.config import PROFILES, ReplicaConfig  # noqa: E402
from tests.replica.replica import Replica  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


#: Frames of threads waiting (for a request, a timer, a connection), not working.
_IDLE = ("wait (threading.py", "select (", "accept (", "_recv_exactly (", "_readable (",
         "sleep (")


def spy_on_store(data: Path, out: Path, stop: threading.Event) -> subprocess.Popen[bytes] | None:
    """Start py-spy on the store server as soon as it publishes its pid."""
    spy = Path(PY).parent / "py-spy"
    while not stop.is_set():
        pid = store_pid(data)
        if pid is not None:
            return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--format", "raw",
                                     "--rate", "50", "--nonblocking", "-o", str(out)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.05)
    return None


def top_frames(raw: Path, n: int) -> list[str]:
    """Heaviest frames of collapsed stacks: inclusive share (any depth) and self share."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(idle in f for f in frames[-2:] for idle in _IDLE):
            continue  # idle threads
        k = int(count)
        total += k
        for frame in set(frames):
            inclusive[frame] += k
        own[frames[-1]] += k
    out = [f"busy samples: {total}", "inclusive:"]
    out += [f"  {100 * k / total:5.1f} %  {f}" for f, k in inclusive.most_common(n)]
    out += ["self:"]
    out += [f"  {100 * k / total:5.1f} %  {f}" for f, k in own.most_common(n)]
    return out


def crawl(label: str, base: str, data: Path, extra: list[str], spy: Path | None) -> dict:
    ops_file = data / f"ops-{label}.json"
    cmd = [PY, "benchmarks/opcount.py", str(ops_file), "-m", "crawler", "crawl",
           "--portal-url", base, "--data-dir", str(data), *POLITE_LIKE_SCRAPY, *extra,
           *SECTIONS]
    stop = threading.Event()
    spied: list[subprocess.Popen[bytes] | None] = []
    watcher = None
    if spy is not None:
        watcher = threading.Thread(target=lambda: spied.append(spy_on_store(data, spy, stop)))
        watcher.start()
    usage: Usage = measure(cmd, ROOT, extra_pids=lambda: store_pid(data))
    stop.set()
    if watcher is not None:
        watcher.join()
        for proc in spied:
            if proc is not None:
                proc.wait(timeout=60)
    if usage.exit_code != 0:
        print(f"warning: crawl exited {usage.exit_code}: "
              f"{(usage.stderr.strip().splitlines() or [''])[-1]}", file=sys.stderr)
    out = subprocess.run([PY, "-m", "crawler", "export", "--data-dir", str(data)], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    articles = sum(1 for line in out.stdout.splitlines() if line.strip())
    ops = json.loads(ops_file.read_text(encoding="utf-8"))
    return {"usage": usage, "articles": articles, "ops": ops}


def report(label: str, run: dict) -> None:
    u: Usage = run["usage"]
    store = u.cpu_others.get("store server", 0.0)
    arts = run["articles"]
    per = max(1, arts)
    commands = run["ops"]["commands"]
    total = sum(commands.values())
    print(f"## {label}: exit {u.exit_code}, wall {u.wall:.1f} s, articles {arts}, "
          f"load {os.getloadavg()[0]:.1f}")
    others = ", ".join(f"{k} {v:.1f}" for k, v in sorted(u.cpu_others.items(),
                                                      key=lambda kv: -kv[1]) if v >= 0.05)
    print(f"CPU s: all {u.cpu:.1f}, crawler {u.cpu_root:.1f}, others: {others}")
    print(f"store server: {store:.1f} CPU s, {1000 * store / per:.1f} ms per article; "
          f"crawler {1000 * u.cpu_root / per:.1f} ms per article")
    print(f"MongoDB commands: {total}, {total / per:.2f} per article")
    print(f"  {'command collection':42} {'n':>7} {'/art':>7} {'stmts':>7} {'client s':>8}")
    for key, n in commands.items():
        print(f"  {key:42} {n:7d} {n / per:7.2f} {run['ops']['statements'].get(key, 0):7d} "
              f"{run['ops']['seconds'].get(key, 0):8.2f}")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--profile", default="js", choices=sorted(PROFILES))
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--py-spy", type=Path, default=None, metavar="FILE")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--recrawl", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    extra = [x for s in args.set for x in ("--set", s)]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()
    print(f"# store_cost {when}, commit {commit}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, profile {args.profile}, "
          f"{args.articles} target articles, +{args.latency_ms:g} ms per answer", flush=True)
    replica = Replica(ReplicaConfig(**PROFILES[args.profile],  # type: ignore[arg-type]
                                    articles_per_section=max(12, args.articles // 2))).start()
    router = serve_from_memory(replica, 0.0)
    router.latency = args.latency_ms / 1000
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    top = Path(tempfile.mkdtemp(prefix="store-cost-", dir=args.keep))
    try:
        data = top / "data"
        data.mkdir()
        report("first crawl", crawl("first", replica.url, data, extra, args.py_spy))
        if args.py_spy is not None and args.py_spy.exists():
            print("\n".join(top_frames(args.py_spy, args.top)), flush=True)
        if args.recrawl:
            report("recrawl, unchanged", crawl("recrawl", replica.url, data, extra, None))
    finally:
        replica.stop()
        if args.keep is None:
            shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
