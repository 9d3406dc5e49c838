"""Pages/s of a fleet of 1, 2 and 4 workers on one Redis frontier, politeness off.

For each fleet size: a fresh replica (``--articles`` per target section, plain HTML
listings, every answer rendered once and served from memory, in a process of its own
that reports its own CPU, with a listen backlog of 1024), a fresh store server (the
embedded store's SecantusDB server, journaled, in a process of its own) and frontier;
N-1 ``gzarchive worker`` processes are started first (the frontier is marked *seeding*
so they wait for it), then the seeding ``gzarchive crawl --redis-url``; pages/s is the
replica's requests served divided by the span from the first to the last request
(process start-up excluded). ``AUTOTHROTTLE_ENABLED=False``, ``DOWNLOAD_DELAY=0``.
Printed per run: the load average before it, and the CPU seconds of the workers, the
store server, Redis and the replica (sampled with psutil), so a saturated helper shows.
With ``--polite D`` the run is repeated at ``DOWNLOAD_DELAY=D`` and the fleet's per-host
rate is printed (at most 1/D). ``--repeat R`` runs the sizes R times back to back (the
machine is shared: judge by the ratio of neighbouring runs). ``--py-spy DIR`` records
the seeding crawl's stacks, idle ones too, per thread (``py-spy record --format raw
--idle --threads``) into DIR.

    .venv/bin/python benchmarks/fleet.py [--articles 300] [--sizes 1,2,4] [--repeat 1]
        [--polite 0.2] [--py-spy DIR] [--set NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(path: Path, proc: subprocess.Popen[bytes], what: str) -> str:
    deadline = time.time() + 300
    while not path.exists() or not path.read_text().strip():
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)
    return path.read_text().strip()


def serve_replica(articles: int, url_file: Path, log_file: Path) -> int:
    """``--serve-replica``: the replica from memory until SIGTERM, then its log as JSON."""
    from tests.replica.bench import serve_from_memory
    from tests.replica.config import ReplicaConfig
    from tests.replica.replica import Replica
    from tests.replica.server import ReplicaHTTPServer

    # socketserver listens with a backlog of 5: a burst of connections overflows it and
    # each dropped SYN is retried a second later (TcpExtListenOverflows), a 1 s stall of
    # the crawl that is the replica's, not the crawler's. A real server's backlog is large.
    ReplicaHTTPServer.request_queue_size = 1024
    rep = Replica(ReplicaConfig(js_section=None, articles_per_section=articles)).start()
    serve_from_memory(rep)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cpu0 = time.process_time()
    url_file.write_text(rep.url)
    stop.wait()
    cpu = time.process_time() - cpu0
    log = rep.log
    rep.stop()
    log_file.write_text(json.dumps({"cpu": cpu, "times": [e.time for e in log],
                                    "paths": [e.path for e in log]}))
    span = (log[-1].time - log[0].time) if len(log) > 1 else 0.0
    print(f"replica: {len(log)} requests in {span:.1f} s, CPU {cpu:.1f} s "
          f"({len(log) / cpu if cpu else 0:.0f} requests per CPU second)", file=sys.stderr)
    return 0


class CpuSampler:
    """Last user+system CPU seen of each watched process (they exit at different times)."""

    def __init__(self) -> None:
        self.procs: dict[str, psutil.Process] = {}
        self.cpu: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, name: str, pid: int) -> None:
        self.procs[name] = psutil.Process(pid)
        self.cpu[name] = 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def sample(self) -> None:
        for name, proc in list(self.procs.items()):
            try:
                t = proc.cpu_times()
                self.cpu[name] = t.user + t.system
            except psutil.Error:
                pass

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return dict(self.cpu)


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


def _store(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The embedded store's server (production settings) on a data directory of its own,
    staying until stopped (no lease needed)."""
    data = workdir / "store"
    proc = subprocess.Popen([sys.executable, "-m", "storage.mongo.server", "--data-dir",
                             str(data), "--idle-seconds", "1e9"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = data / "db" / "server.json"
    _wait_for(state, proc, "the store server")
    return proc, str(json.loads(state.read_text())["uri"])


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_fleet(size: int, articles: int, delay: float, workdir: Path,
              extra: list[str], spy: Path | None) -> dict[str, Any]:
    url_file, log_file = workdir / "replica.url", workdir / "replica.json"
    rep = subprocess.Popen([sys.executable, __file__, "--serve-replica", "--articles",
                            str(articles), "--url-file", str(url_file), "--log-file",
                            str(log_file)], cwd=ROOT)
    portal = _wait_for(url_file, rep, "the replica")
    store, mongo = _store(workdir)
    redis_proc, url = _redis(workdir)
    client = redis.Redis.from_url(url)
    name = "bench"
    common = ["--data-dir", str(workdir / "data"), "--redis-url", url, "--frontier", name,
              "--mongodb-uri", mongo, "--quiet", "--set", "AUTOTHROTTLE_ENABLED=False",
              "--set", f"DOWNLOAD_DELAY={delay}", *extra]
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    sampler = CpuSampler()
    sampler.watch("store", store.pid)
    sampler.watch("redis", redis_proc.pid)
    procs: list[subprocess.Popen[bytes]] = []
    load = os.getloadavg()[0]
    try:
        # Workers first: they wait while the frontier is marked seeding.
        client.set(f"gzarchive:{name}:config", json.dumps({"PORTAL_URL": portal}))
        client.set(f"gzarchive:{name}:seeding", "bench", px=300_000)
        for i in range(size - 1):
            procs.append(subprocess.Popen([sys.executable, "-m", "crawler", "worker", *common],
                                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL))
            sampler.watch(f"worker{i + 1}", procs[-1].pid)
        while client.hlen(f"gzarchive:{name}:workers") < size - 1:
            time.sleep(0.1)
        crawl = [sys.executable, "-m", "crawler", "crawl", "--portal-url", portal, *common]
        if spy is not None:
            spy.mkdir(parents=True, exist_ok=True)
            crawl = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw",
                     "--rate", "50", "--subprocesses", "--idle", "--threads",
                     "-o", str(spy / f"crawl-{size}w-{int(time.time())}.txt"), "--", *crawl]
        procs.insert(0, subprocess.Popen(crawl, cwd=ROOT, env=env, stdout=subprocess.DEVNULL))
        sampler.watch("crawl", procs[0].pid)
        sampler.start()
        codes = [p.wait(timeout=1800) for p in procs]
        sampler.sample()
    finally:
        cpu = sampler.stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
        _stop(rep)
        _stop(redis_proc)
        _stop(store)
    served = json.loads(log_file.read_text())
    times = served["times"]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    workers = sum(v for k, v in cpu.items() if k.startswith(("crawl", "worker")))
    return {"workers": size, "pages": len(times), "seconds": span,
            "pages_per_s": len(times) / span if span else 0.0,
            "max_per_s_1s": _max_rate(times), "exit": max(codes), "load": load,
            "cpu_workers": workers, "cpu_store": cpu["store"], "cpu_redis": cpu["redis"],
            "cpu_replica": served["cpu"]}


def _max_rate(times: list[float]) -> float:
    """The most requests served within any one second (the fleet's per-host rate)."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return float(best)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=300, help="per target section")
    parser.add_argument("--sizes", default="1,2,4", help="fleet sizes (default 1,2,4)")
    parser.add_argument("--repeat", type=int, default=1, help="run the sizes R times")
    parser.add_argument("--polite", type=float, default=0.0,
                        help="also run at DOWNLOAD_DELAY=D and print the per-host rate")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR",
                        help="record the seeding crawl's stacks into DIR")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every worker (repeatable)")
    parser.add_argument("--serve-replica", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--log-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_replica:
        return serve_replica(args.articles, args.url_file, args.log_file)
    if shutil.which("redis-server") is None:
        print("redis-server not installed (apt-get install -y redis-server)", file=sys.stderr)
        return 2
    extra = [x for s in args.set for x in ("--set", s)]
    delays = [0.0] + ([args.polite] if args.polite > 0 else [])
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"{args.articles} articles per section, settings {args.set or 'as users get'}")
    print(f"{'delay':>5} {'workers':>7} {'pages':>6} {'seconds':>8} {'pages/s':>8} "
          f"{'x one':>6} {'max/1s':>6} {'load':>5}  CPU s: {'workers':>7} {'store':>6} "
          f"{'redis':>5} {'replica':>7} exit")
    for delay in delays:
        for _ in range(args.repeat):
            base: float | None = None
            for size in (int(s) for s in args.sizes.split(",")):
                with tempfile.TemporaryDirectory() as tmp:
                    r = run_fleet(size, args.articles, delay, Path(tmp), extra, args.py_spy)
                if size == 1:
                    base = r["pages_per_s"]
                ratio = r["pages_per_s"] / base if base else float("nan")
                print(f"{delay:>5.2f} {size:>7d} {r['pages']:>6.0f} {r['seconds']:>8.1f} "
                      f"{r['pages_per_s']:>8.1f} {ratio:>6.2f} {r['max_per_s_1s']:>6.0f} "
                      f"{r['load']:>5.1f}         {r['cpu_workers']:>7.1f} "
                      f"{r['cpu_store']:>6.1f} {r['cpu_redis']:>5.1f} "
                      f"{r['cpu_replica']:>7.1f} {r['exit']:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
