"""Pages/s of a fleet of 1, 2 and 4 workers on one Redis frontier, politeness off.

For each fleet size: a fresh replica (``--articles`` per target section, plain HTML
listings), a fresh SecantusDB server and frontier; N-1 ``gzarchive worker`` processes
are started first (the frontier is marked *seeding* so they wait for it), then the
seeding ``gzarchive crawl --redis-url``; pages/s is the replica's requests served
divided by the span from the first to the last request (process start-up excluded).
``AUTOTHROTTLE_ENABLED=False``, ``DOWNLOAD_DELAY=0``. With ``--polite D`` the run is
repeated at ``DOWNLOAD_DELAY=D`` and the fleet's per-host rate is printed (at most 1/D).

    .venv/bin/python benchmarks/fleet.py [--articles 150] [--sizes 1,2,4] [--polite 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.replica.config import ReplicaConfig  # noqa: E402
from tests.replica.replica import Replica  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def run_fleet(size: int, articles: int, delay: float, workdir: Path) -> dict[str, float]:
    from secantus import SecantusDBServer

    rep = Replica(ReplicaConfig(js_section=None, articles_per_section=articles)).start()
    server = SecantusDBServer(storage_path=str(workdir / "mongo"), sync_on_commit=True,
                              replica_set_name=None)
    server.start()
    redis_proc, url = _redis(workdir)
    mongo = f"{server.uri.rstrip('/')}/?directConnection=true"
    client = redis.Redis.from_url(url)
    name = "bench"
    common = ["--data-dir", str(workdir / "data"), "--redis-url", url, "--frontier", name,
              "--mongodb-uri", mongo, "--quiet", "--set", "AUTOTHROTTLE_ENABLED=False",
              "--set", f"DOWNLOAD_DELAY={delay}"]
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    procs = []
    try:
        # Workers first: they wait while the frontier is marked seeding.
        client.set(f"gzarchive:{name}:config", json.dumps({"PORTAL_URL": rep.url}))
        client.set(f"gzarchive:{name}:seeding", "bench", px=300_000)
        for _ in range(size - 1):
            procs.append(subprocess.Popen([sys.executable, "-m", "crawler", "worker", *common],
                                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL))
        while client.hlen(f"gzarchive:{name}:workers") < size - 1:
            time.sleep(0.1)
        procs.insert(0, subprocess.Popen(
            [sys.executable, "-m", "crawler", "crawl", "--portal-url", rep.url, *common],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL))
        codes = [p.wait(timeout=1800) for p in procs]
        log = rep.log
        span = log[-1].time - log[0].time
        return {"workers": size, "pages": len(log), "seconds": span,
                "pages_per_s": len(log) / span if span else 0.0,
                "max_per_s_1s": _max_rate(log), "exit": max(codes)}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        redis_proc.terminate()
        redis_proc.wait()
        server.stop()
        rep.stop()


def _max_rate(log: list) -> float:
    """The most requests served within any one second (the fleet's per-host rate)."""
    times = sorted(e.time for e in log)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return float(best)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=150, help="per target section")
    parser.add_argument("--sizes", default="1,2,4", help="fleet sizes (default 1,2,4)")
    parser.add_argument("--polite", type=float, default=0.0,
                        help="also run at DOWNLOAD_DELAY=D and print the per-host rate")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        print("redis-server not installed (apt-get install -y redis-server)", file=sys.stderr)
        return 2
    delays = [0.0] + ([args.polite] if args.polite > 0 else [])
    base: float | None = None
    print(f"{'delay':>5} {'workers':>7} {'pages':>6} {'seconds':>8} {'pages/s':>8} "
          f"{'x one':>6} {'max/1s':>6} exit")
    for delay in delays:
        for size in (int(s) for s in args.sizes.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                r = run_fleet(size, args.articles, delay, Path(tmp))
            if delay == 0 and size == 1:
                base = r["pages_per_s"]
            ratio = r["pages_per_s"] / base if base and delay == 0 else float("nan")
            print(f"{delay:>5.2f} {size:>7d} {r['pages']:>6.0f} {r['seconds']:>8.1f} "
                  f"{r['pages_per_s']:>8.1f} {ratio:>6.2f} {r['max_per_s_1s']:>6.0f} "
                  f"{r['exit']:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
