"""Peak RSS of ``gzarchive crawl`` at two (or more) replica sizes, and the ratio.

Issue #15's target: the peak RSS of a 20,000-article crawl ≤ 1.5x that of a 2,000-article
crawl (per-run state bounded). For each ``--sizes`` (target articles, half per target
section) this builds the replica (``--profile js``), serves it from memory with
``--latency-ms`` (0) added, runs one ``gzarchive crawl`` with Scrapy's politeness
(AutoThrottle off, 8 per domain, no delay: the fastest the crawl goes, so the run
fits the time box) into a fresh temp dir, sampled by procstats.py every 0.1 s, and prints
per size: wall, requests, target articles archived, peak RSS of the crawler process and
of each other process (largest sample per name: store server, Chromium's biggest process,
Playwright's driver), the tree sum, and each size's ratio to the first.

    .venv/bin/python benchmarks/memory.py [--sizes 2000,6000] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.procstats import MiB, measure, store_pid  # noqa: E402
from benchmarks.side_by_side import POLITE_LIKE_SCRAPY, PY, ROOT, SECTIONS, canonical  # noqa: E402
from tests.replica.bench import serve_from_memory  # noqa: E402
from tests.replica.config import PROFILES, ReplicaConfig  # noqa: E402
from tests.replica.replica import Replica  # noqa: E402


def one_size(articles: int, latency_ms: float) -> dict[str, object]:
    built = time.perf_counter()
    replica = Replica(ReplicaConfig(**PROFILES["js"],  # type: ignore[arg-type]
                                    articles_per_section=max(12, articles // 2))).start()
    top = Path(tempfile.mkdtemp(prefix=f"memory-{articles}-"))
    try:
        router = serve_from_memory(replica, latency_ms / 1000)
        base = replica.url
        truth = {canonical(a["url"].removeprefix(base)) for a in replica.ground_truth()}
        replica.clear_log()
        print(f"  {articles}: replica ready ({len(router._cache)} answers in memory, "
              f"{time.perf_counter() - built:.0f} s)", flush=True)
        cmd = [PY, "-m", "crawler", "crawl", "--portal-url", base, "--data-dir", str(top),
               "--quiet", *POLITE_LIKE_SCRAPY, *SECTIONS]
        # A 20,000-article crawl on a loaded machine may pass measure()'s default hour.
        usage = measure(cmd, ROOT, extra_pids=lambda: store_pid(top), timeout=3 * 3600.0)
        served = len(replica.log)
        out = measure([PY, "-m", "crawler", "export", "--data-dir", str(top)], ROOT,
                      extra_pids=lambda: store_pid(top))
        archived = sum(1 for line in out.stdout.splitlines() if line.strip())
    finally:
        replica.stop()
        shutil.rmtree(top, ignore_errors=True)
    if usage.exit_code != 0:
        print(f"warning: crawl of {articles} exited {usage.exit_code}: "
              f"{(usage.stderr.strip().splitlines() or [''])[-1]}", file=sys.stderr)
    print(f"  {articles}: crawl {usage.wall:.0f} s, exit {usage.exit_code}, {served} requests, "
          f"{archived} archived, peak RSS crawler {usage.peak_rss_root / MiB:.0f} MiB, tree sum "
          f"{usage.peak_rss_all / MiB:.0f} MiB, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    return {"articles": articles, "targets": len(truth), "usage": usage, "requests": served,
            "archived": archived}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,6000", help="target articles, comma-separated")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# memory {when}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, sizes {sizes}, "
          f"+{args.latency_ms:g} ms per answer, gzarchive crawl with Scrapy's politeness",
          flush=True)
    rows = [one_size(n, args.latency_ms) for n in sizes]
    print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| target articles | exit | wall s | requests | archived | peak RSS crawler MiB "
          "| store server MiB | largest other MiB | tree sum MiB | crawler ÷ first "
          "| tree ÷ first |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    first = rows[0]["usage"]
    for row in rows:
        u = row["usage"]
        per = dict(u.peak_rss_by_name)  # type: ignore[attr-defined]
        store = per.pop("store server", 0)
        other_name, other = max(per.items(), key=lambda kv: kv[1], default=("–", 0))
        print(f"| {row['targets']} | {u.exit_code} | {u.wall:.0f} | {row['requests']} "  # type: ignore[attr-defined]
              f"| {row['archived']} | {u.peak_rss_root / MiB:.0f} | {store / MiB:.0f} "  # type: ignore[attr-defined]
              f"| {other / MiB:.0f} ({other_name}) | {u.peak_rss_all / MiB:.0f} "  # type: ignore[attr-defined]
              f"| {u.peak_rss_root / first.peak_rss_root:.2f} "  # type: ignore[attr-defined]
              f"| {u.peak_rss_all / first.peak_rss_all:.2f} |")  # type: ignore[attr-defined]
    print("\nPeak RSS: the largest of 0.1 s samples, per process (the crawler; the store "
          "server; for others the largest single process of that name); tree sum: the "
          "largest sum over one sample (shared pages counted in each process).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
