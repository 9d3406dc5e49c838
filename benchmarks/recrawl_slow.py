"""First crawl vs recrawl of the offline replica when one answer is slow, per throttle.

The issue (#15): with Scrapy's AutoThrottle, one 12-second answer early in a recrawl
kept a 6-8 s delay for every 304 that followed (102 s for the recrawl against 60 s for
the first crawl). For each throttle (``scrapy``: Scrapy's AutoThrottle, ``gzarchive``:
crawler.throttle.RecoveringThrottle, the default) this starts a fresh data directory,
runs ``gzarchive crawl`` (CLI subprocess, plain HTML listings, throttle on, every other
setting as users get it) and then a recrawl of the unchanged replica. Every answer of
the replica takes ``--latency-ms`` more, and in each run one answer takes
``--slow-seconds`` more (12 s, as in the issue): the home page (``--slow home``, every
other request follows it) or the first article request (``--slow article``: requests
already in flight beside it are not held up). It prints per run: requests
served, 304s, wall seconds, the span of the requests after the slow one and their mean
gap and their longest gap, exit code; then recrawl/first per throttle.

    .venv/bin/python benchmarks/recrawl_slow.py [--throttle scrapy,gzarchive]
        [--slow home|article] [--slow-seconds 12] [--latency-ms 50]
        [--articles-per-section 23] [--set NAME=VALUE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.recrawl import wait_for_embedded_server  # noqa: E402
from crawler import settings as project  # noqa: E402
from tests.helpers import run_cli  # noqa: E402
from tests.replica import Replica, ReplicaConfig  # noqa: E402
from tests.replica.server import Response  # noqa: E402

SLOW_TARGETS = {
    "home": re.compile(r"^/(?:index\.html)?$"),
    "article": re.compile(r"^/(?:n/\d{8}|\d{4}-\d{2}-\d{2})/[0-9a-f-]{36}(?:_\d+)?\.html$"),
}
THROTTLES = {
    "gzarchive": ("crawler.throttle.RecoveringThrottle", "scrapy.extensions.throttle.AutoThrottle"),
    "scrapy": ("scrapy.extensions.throttle.AutoThrottle", "crawler.throttle.RecoveringThrottle"),
}


class SlowOnce:
    """Wraps the replica's router: every answer ``latency`` s later, one ``slow`` s later."""

    def __init__(self, replica: Replica, latency: float, slow: float, target: str) -> None:
        server = replica._server  # the replica has no latency knob of its own (yet)
        assert server is not None
        self.inner = server.router.respond
        self.latency, self.slow = latency, slow
        self.target = SLOW_TARGETS[target]
        self.armed = False
        self.slow_at: float | None = None
        server.router.respond = self  # type: ignore[method-assign]

    def arm(self) -> None:
        self.armed, self.slow_at = True, None

    def __call__(self, method: str, target: str, headers: dict[str, str]) -> Response:
        resp = self.inner(method, target, headers)
        resp.delay += self.latency
        if self.armed and self.target.match(target.split("?")[0]):
            self.armed = False
            self.slow_at = time.time() + resp.delay + self.slow
            resp.delay += self.slow
        return resp


@dataclass
class RunFigures:
    throttle: str
    name: str
    requests: int
    not_modified: int
    seconds: float
    after_slow: int       # requests that arrived after the slow answer was sent
    after_span: float     # seconds from the slow answer to the last request
    max_gap: float        # longest pause between two requests after the slow answer
    exit_code: int


def extensions(throttle: str) -> str:
    on, off = THROTTLES[throttle]
    return json.dumps({**project.EXTENSIONS, on: 0, off: None})


def run(throttle: str, name: str, replica: Replica, slow: SlowOnce, data: Path,
        extra: list[str]) -> RunFigures:
    first_entry = len(replica.log)
    slow.arm()
    start = time.perf_counter()
    proc = run_cli("crawl", "--portal-url", replica.url, "--data-dir", str(data),
                   "--render", "never", "--quiet", "--set", "AUTOTHROTTLE_ENABLED=True",
                   "--set", f"EXTENSIONS={extensions(throttle)}", *extra)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"warning: {throttle} {name} exited {proc.returncode}; stderr tail:\n"
              f"{proc.stderr[-1500:]}", file=sys.stderr)
    entries = replica.log[first_entry:]
    slow_at = slow.slow_at or 0.0
    after = sorted(e.time for e in entries if e.time > slow_at + 0.001)
    gaps = [b - a for a, b in zip([slow_at, *after], after, strict=False)]
    return RunFigures(
        throttle=throttle, name=name, requests=len(entries),
        not_modified=sum(1 for e in entries if e.status == 304), seconds=seconds,
        after_slow=len(after), after_span=(max(after) - slow_at) if after else 0.0,
        max_gap=max(gaps, default=0.0), exit_code=proc.returncode)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throttle", default="scrapy,gzarchive",
                        help="comma-separated: scrapy, gzarchive")
    parser.add_argument("--slow", choices=sorted(SLOW_TARGETS), default="home",
                        help="which answer of each run is slow")
    parser.add_argument("--slow-seconds", type=float, default=12.0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--articles-per-section", type=int, default=23)
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="NAME=VALUE", help="extra Scrapy setting for every crawl")
    args = parser.parse_args()
    throttles = [t.strip() for t in args.throttle.split(",") if t.strip()]
    unknown = set(throttles) - set(THROTTLES)
    if unknown:
        parser.error(f"unknown throttle(s) {sorted(unknown)}; choose from {sorted(THROTTLES)}")
    extra: list[str] = []
    for setting in args.settings:
        extra += ["--set", setting]

    replica = Replica(ReplicaConfig(js_section=None,
                                    articles_per_section=args.articles_per_section)).start()
    slow = SlowOnce(replica, args.latency_ms / 1000, args.slow_seconds, args.slow)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores; replica {replica.url}: "
          f"{len(replica.ground_truth())} stories, +{args.latency_ms:.0f} ms per answer, "
          f"{args.slow} of each run +{args.slow_seconds:.0f} s", flush=True)
    results: list[RunFigures] = []
    try:
        for throttle in throttles:
            with tempfile.TemporaryDirectory(prefix=f"recrawl-slow-{throttle}-") as tmp:
                data = Path(tmp)
                for name in ("first", "recrawl"):
                    results.append(run(throttle, name, replica, slow, data, extra))
                    print(f"  {throttle} {name}: {results[-1].seconds:.1f} s", flush=True)
                    wait_for_embedded_server(data)
    finally:
        replica.stop()
    print_table(results)
    return 0 if all(r.exit_code == 0 for r in results) else 1


def print_table(results: list[RunFigures]) -> None:
    header = (f"{'throttle':<10} {'run':<8} {'requests':>8} {'304':>4} {'wall s':>7} "
              f"{'after slow':>10} {'span s':>7} {'gap s':>6} {'max gap':>7} {'exit':>4}")
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        gap = r.after_span / r.after_slow if r.after_slow else 0.0
        print(f"{r.throttle:<10} {r.name:<8} {r.requests:>8} {r.not_modified:>4} "
              f"{r.seconds:>7.1f} {r.after_slow:>10} {r.after_span:>7.1f} {gap:>6.2f} "
              f"{r.max_gap:>7.2f} {r.exit_code:>4}")
    print()
    by: dict[str, dict[str, Any]] = {}
    for r in results:
        by.setdefault(r.throttle, {})[r.name] = r
    for throttle, runs in by.items():
        if "first" in runs and "recrawl" in runs:
            first, again = runs["first"], runs["recrawl"]
            print(f"{throttle}: recrawl/first wall {again.seconds / first.seconds:.2f} "
                  f"({again.seconds:.1f} s / {first.seconds:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
